"""I/O inside the container, raw bundle against overlay bundle of the same image.

The workloads are run by ``iobench`` (``iobench.c``, static, put into each image as a layer),
inside the container, so the container's own view of its root filesystem is measured; it
times every operation batch with CLOCK_MONOTONIC and prints JSON lines. The runtime only
starts it (``--io-runtime``, default runc); its start-up is not in any figure.

Images (seeded, built into a private layout and layer store in the work folder, uncompressed):

* ``io``: ``/data/seq`` and ``/data/rand`` (one layer) and ``/data/lower`` (256 files of 4 KiB).
  Warm cache: one container per mode runs the sequence ``1 + iterations`` times (the first pass
  is warm-up): ``seq-read``, ``rand-read-4k``, ``readdir`` (of the lower folder),
  ``small-files-create``/``-stat``/``-delete`` (1000 files of 4 KiB in a new folder) and
  ``seq-write`` (with fsync). Dropped cache: before each iteration the host runs ``sync`` and
  writes 3 to ``/proc/sys/vm/drop_caches``, then a container runs the read workloads once
  (each reads other files, so each starts cold).
* ``copyup``: ``/copyup/sS`` of S MiB for each size, and ``/wh`` (256 files of 4 KiB). Each
  iteration gets a fresh overlay bundle (a copy-up happens once per file), the raw bundle is
  reused (its ``/wh`` files restored from the host between iterations). ``copy-up`` is the
  first write to the file (open O_WRONLY, write one byte, close); with a warm cache the file
  is read once before, untimed. ``whiteout-delete`` unlinks the 256 lower files.
* ``depthD``: 256 files in ``/deep`` spread over D layers (D = 1, 2, 8, 32, 128);
  ``depth-readdir`` lists ``/deep``, ``depth-stat`` lstat()s every entry.

Raw and overlay alternate in every iteration so drift of the machine hits both alike.
"""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.runtime import Container

from .runner import BenchContext
from .suites import FunctionSuite

MODES = ("raw", "overlay")


def plan(quick: bool) -> dict[str, Any]:
    if quick:
        return {
            "iterations": 2,
            "seq_mib": 8,
            "rand_mib": 8,
            "rand_count": 512,
            "small_files": 200,
            "write_mib": 8,
            "copyup_sizes": (0, 1, 4),
            "depths": (1, 8),
            "lower_files": 64,
        }
    return {
        "iterations": 5,
        "seq_mib": 64,
        "rand_mib": 64,
        "rand_count": 4096,
        "small_files": 1000,
        "write_mib": 64,
        "copyup_sizes": (0, 1, 4, 16, 64, 256),
        "depths": (1, 2, 8, 32, 128),
        "lower_files": 256,
    }


class _Pattern:
    """``size`` bytes of a seeded 1 MiB random block repeated (cheap to make, not compressible
    at the block level, the same for the same seed)."""

    def __init__(self, size: int, seed: int):
        self.left = size
        self.block = random.Random(seed).randbytes(1 << 20)
        self.pos = 0

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            n = self.left
        n = min(n, self.left)
        out = bytearray()
        while len(out) < n:
            take = min(n - len(out), len(self.block) - self.pos)
            out += self.block[self.pos : self.pos + take]
            self.pos = (self.pos + take) % len(self.block)
        self.left -= n
        return bytes(out)


def build_images(ctx: BenchContext, p: dict[str, Any]) -> dict[str, Any]:
    from harness.image import ImageBuilder, Layout

    layout = Layout.init(ctx.workdir / "layout")
    iob = ctx.iobench.read_bytes()
    seed = ctx.options.seed
    rng = random.Random(seed)
    images = {}

    def base(b: ImageBuilder) -> None:
        with b.layer("iobench") as w:
            w.file("iobench", iob, mode=0o755)

    b = ImageBuilder(layout, compress=False)
    base(b)
    with b.layer("io data") as w:
        w.file("data/seq", _Pattern(p["seq_mib"] << 20, seed), size=p["seq_mib"] << 20)
        w.file("data/rand", _Pattern(p["rand_mib"] << 20, seed + 1), size=p["rand_mib"] << 20)
        for i in range(p["lower_files"]):
            w.file(f"data/lower/f{i:06d}", rng.randbytes(4096))
    images["io"] = b.commit("io")

    b = ImageBuilder(layout, compress=False)
    base(b)
    with b.layer("copy-up files") as w:
        for s in p["copyup_sizes"]:
            w.file(f"copyup/s{s}", _Pattern(s << 20, seed + 10 + s), size=s << 20)
        for i in range(p["lower_files"]):
            w.file(f"wh/f{i:06d}", rng.randbytes(4096))
    images["copyup"] = b.commit("copyup")

    total = 256
    for d in p["depths"]:
        b = ImageBuilder(layout, compress=False)
        base(b)
        per = [total // d + (1 if i < total % d else 0) for i in range(d)]
        for layer, count in enumerate(per):
            with b.layer(f"deep {layer}") as w:
                w.dir("deep")
                for j in range(count):
                    w.file(f"deep/l{layer:04d}-{j:04d}", b"x" * 64)
        images[f"depth{d}"] = b.commit(f"depth{d}")
    return images


def drop_caches() -> None:
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def _io_runtime(ctx: BenchContext) -> Any:
    name = ctx.options.io_runtime
    if name:
        if name in ctx.runtimes:
            return ctx.runtimes[name]
        rt = ctx.session.runtime(name, key=f"io-{name}")
        ctx.runtimes.setdefault(f"io:{name}", rt)
        return rt
    for pref in ("runc", "crun"):
        if pref in ctx.runtimes:
            return ctx.runtimes[pref]
    return next(iter(ctx.runtimes.values()))


def run_in(ctx: BenchContext, rt: Any, bundle: Path, args: list[str], timeout: float = 600) -> list[dict[str, Any]]:
    """Run ``/iobench ARGS`` in a container of ``bundle``; its JSON lines."""
    cfg = bundle / "config.json"
    config = json.loads(cfg.read_text())
    config["process"]["args"] = ["/iobench", *args]
    cfg.write_text(json.dumps(config))
    io = ctx.workdir / "io-stdio"
    with Container(rt, ctx.new_id(), bundle, io) as c:
        c.create()
        c.start()
        end = c.wait(timeout=timeout)
        out, err = c.stdout(), c.stderr()
    if end.code not in (0, None):
        raise HarnessError(f"iobench in {bundle.name} exited {end.shell_code}: {err.strip()[-2000:]}")
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def run_io(ctx: BenchContext) -> None:
    from harness.image import LayerStore

    p = plan(ctx.quick)
    rt = _io_runtime(ctx)
    its = p["iterations"]
    caches = ["warm", "dropped"] if ctx.options.drop_caches else ["warm"]
    if ctx.options.drop_caches:
        print(
            "bench io: the cold-cache samples drop the whole host's page cache before each one "
            "(--no-drop-caches: warm cache only)",
            file=sys.stderr,
            flush=True,
        )
    n_dropped = its if "dropped" in caches else 0
    steps = 2 + 2 * n_dropped + 2 * its * len(caches) + len(p["depths"]) * 2 * (1 + n_dropped) + 1
    ctx.progress.stage("io", steps)
    images = build_images(ctx, p)
    ctx.progress.advance("images")
    store = LayerStore(ctx.workdir / "store")
    refs = {name: f"{img.layout.path}:{img.ref}" for name, img in images.items()}
    base_params = {"runtime_io": rt.name}

    def bundle(image: str, mode: str, tag: str) -> Path:
        return ctx.make_bundle(
            f"io-{image}-{mode}-{tag}", image=refs[image], mode=mode, store=store, readonly=False, args=["/iobench"]
        ).path

    def keep(
        line: dict[str, Any], mode: str, cache: str, it: int, warm: bool, workload: str | None = None, **params: Any
    ) -> None:
        ctx.record(
            "io",
            workload or line["op"],
            line["seconds"],
            runtime=rt.name,
            mode=mode,
            iteration=it,
            warmup=warm,
            params={**base_params, "cache": cache, "count": line["count"], "bytes": line["bytes"], **params},
        )

    def reads(seed: int) -> list[str]:
        """The probe verbs of the read workloads, run warm and with caches dropped alike:
        sequential read, random reads (from ``seed``), readdir."""
        return [
            "seq-read",
            "/data/seq",
            "rand-read",
            "/data/rand",
            str(p["rand_count"]),
            str(seed),
            "readdir",
            "/data/lower",
        ]

    # -- io image: warm sequence, then dropped read workloads
    main = {m: bundle("io", m, "main") for m in MODES}
    for mode in MODES:
        args: list[str] = []
        for k in range(its + 1):
            args += [
                *reads(k + 1),
                "files-create",
                f"/sf{k}",
                str(p["small_files"]),
                "4096",
                "files-stat",
                f"/sf{k}",
                str(p["small_files"]),
                "files-delete",
                f"/sf{k}",
                str(p["small_files"]),
                "seq-write",
                "/wtest",
                str(p["write_mib"]),
            ]
        lines = run_in(ctx, rt, main[mode], args)
        per_pass = 7
        for i, line in enumerate(lines):
            k = i // per_pass
            keep(line, mode, "warm", max(k - 1, 0) if k else 0, k == 0)
        ctx.progress.advance(f"warm {mode}")
    for k in range(n_dropped):
        for mode in MODES if k % 2 == 0 else MODES[::-1]:
            drop_caches()
            lines = run_in(ctx, rt, main[mode], reads(k + 1))
            for line in lines:
                keep(line, mode, "dropped", k, False)
            ctx.progress.advance(f"dropped {mode}")
    for m in MODES:
        ctx.drop_bundle(main[m])

    # -- copy-up and whiteouts
    raw_cu = bundle("copyup", "raw", "main")
    wh_data = {}
    for name in sorted(os.listdir(raw_cu / "rootfs" / "wh")):
        wh_data[name] = (raw_cu / "rootfs" / "wh" / name).read_bytes()
    copyup: dict[str, dict[int, list[float]]] = {m: {} for m in MODES}
    for cache in caches:
        for k in range(its):
            for mode in MODES if k % 2 == 0 else MODES[::-1]:
                if mode == "raw":
                    b = raw_cu
                    for name, data in wh_data.items():
                        (b / "rootfs" / "wh" / name).write_bytes(data)
                else:
                    b = bundle("copyup", "overlay", f"{cache}{k}")
                args = []
                for s in p["copyup_sizes"]:
                    if cache == "warm":
                        args += ["seq-read", f"/copyup/s{s}"]
                    args += ["copy-up", f"/copyup/s{s}"]
                args += ["unlink-all", "/wh"]
                os.sync()  # restored or copied-up files are not dirty when the workload starts
                if cache == "dropped":
                    drop_caches()
                lines = [line for line in run_in(ctx, rt, b, args) if line["op"] != "seq-read"]
                for s, line in zip(p["copyup_sizes"], lines, strict=False):
                    keep(line, mode, cache, k, False, "copy-up", size_mib=s)
                    if cache == "warm":
                        copyup[mode].setdefault(s, []).append(line["seconds"])
                keep(lines[-1], mode, cache, k, False, "whiteout-delete")
                if mode == "overlay":
                    ctx.drop_bundle(b)
                ctx.progress.advance(f"copy-up {cache} {mode}")
    ctx.drop_bundle(raw_cu)

    # -- layer depth
    depth: dict[str, dict[int, dict[str, list[float]]]] = {m: {} for m in MODES}
    for d in p["depths"]:
        bs = {m: bundle(f"depth{d}", m, "main") for m in MODES}
        for mode in MODES:
            args = []
            for _ in range(its + 1):
                args += ["readdir", "/deep", "stat-all", "/deep"]
            for i, line in enumerate(run_in(ctx, rt, bs[mode], args)):
                k = i // 2
                wl = "depth-readdir" if line["op"] == "readdir" else "depth-stat"
                keep(line, mode, "warm", max(k - 1, 0), k == 0, wl, depth=d)
                if k:
                    depth[mode].setdefault(d, {}).setdefault(wl, []).append(line["seconds"])
            ctx.progress.advance(f"depth {d} {mode}")
        for k in range(n_dropped):
            for mode in MODES if k % 2 == 0 else MODES[::-1]:
                drop_caches()
                for line in run_in(ctx, rt, bs[mode], ["readdir", "/deep", "stat-all", "/deep"]):
                    wl = "depth-readdir" if line["op"] == "readdir" else "depth-stat"
                    keep(line, mode, "dropped", k, False, wl, depth=d)
                ctx.progress.advance(f"depth {d} dropped")
        for m in MODES:
            ctx.drop_bundle(bs[m])
    ctx.summaries["io"] = summarize(ctx)


def summarize(ctx: BenchContext) -> dict[str, Any]:
    """Overlay/raw ratios per workload and cache, the copy-up fit, the depth curve (from samples)."""
    from . import stats
    from .records import read_samples

    rows = [
        r for r in read_samples(ctx.writer.path) if r["suite"] == "io" and not r["warmup"] and r["run"] == ctx.run_id
    ]
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        key = (
            r["workload"],
            r["params"].get("cache"),
            r["params"].get("size_mib"),
            r["params"].get("depth"),
            r["mode"],
        )
        groups.setdefault(key, []).append(r["value"])
    ratios = {}
    medians = {}
    for key, values in groups.items():
        wl, cache, size, depth, mode = key
        label = (
            wl
            + (f" {size}MiB" if size is not None else "")
            + (f" depth{depth}" if depth is not None else "")
            + f" {cache}"
        )
        medians[f"{label} {mode}"] = stats.summary(values)["median"]
        if mode == "overlay" and (wl, cache, size, depth, "raw") in groups:
            try:
                ratios[label] = stats.ratio(values, groups[(wl, cache, size, depth, "raw")])
            except ValueError:
                pass
    fits = {}
    for mode in MODES:
        for cache in ("warm", "dropped"):
            xs, ys = [], []
            for (wl, c, size, _d, m), values in groups.items():
                if wl == "copy-up" and c == cache and m == mode:
                    xs += [size] * len(values)
                    ys += values
            if len(set(xs)) >= 2:
                fits[f"copy-up {mode} {cache}"] = stats.linear_fit(xs, ys)
    return {"overlay_over_raw": ratios, "medians": medians, "copy_up_fit": fits}


SUITE = FunctionSuite("io", run_io)
