"""N identical containers' root filesystems: N raw copies against one image + N overlays.

What is measured is the bundles (no container is created): for N = 1, 10, 100 bundles of the
Alpine minirootfs image, the time to make all N (``setup``) and to remove all N
(``teardown``), and once they all exist the disk they take (``bytes``: st_blocks * 512, each
inode once, mounts not crossed), their inodes and the mounts they hold. For overlay bundles
the shared layer store is part of the cost and is counted once in ``bytes`` and ``inodes``
(``params`` also give the bundles-only figures and the store's). The image's layers are in the
store before timing starts (as they are when an engine has pulled an image); the probe is a
stored one-file layer too. Raw and overlay alternate; journal lines are written before the
timed part.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.image.store import tree_counts

from .runner import BenchContext, Options
from .suites import FunctionSuite

MODES = ("raw", "overlay")


def plan(quick: bool) -> dict[str, Any]:
    if quick:
        return {"ns": (1, 10), "reps": {1: 2, 10: 1}}
    return {"ns": (1, 10, 100), "reps": {1: 5, 10: 3, 100: 2}}


def prepare(options: Options) -> None:
    """The Alpine tarball, found (``--rootfs-tar``, ``$HARNESS_ROOTFS_TAR``, the cache) before any work."""
    from harness import rootfs as _rootfs

    options.rootfs_tar = _rootfs.alpine_tarball(options.rootfs_tar)


def run_scale(ctx: BenchContext) -> None:
    from harness.bundle import create_bundle, remove_bundle
    from harness.image import ImageBuilder, LayerStore, Layout, mounts_under

    p = plan(ctx.quick)
    ctx.progress.stage("scale", 1 + sum(p["reps"][n] * 2 for n in p["ns"]))
    layout = Layout.init(ctx.workdir / "scale-layout")
    b = ImageBuilder(layout)
    try:
        b.base("alpine", rootfs_tar=ctx.options.rootfs_tar)
    except HarnessError as err:
        raise HarnessError(f"scale suite: cannot get the Alpine minirootfs ({err}); give --rootfs-tar PATH") from None
    image = b.commit("alpine")
    ref = f"{layout.path}:alpine"
    store = LayerStore(ctx.workdir / "scale-store")
    store.ensure(image)
    store.file_layer(ctx.probe, "probe")
    store_bytes, store_inodes = tree_counts(store.root)
    ctx.progress.advance("image")
    area = ctx.workdir / "scale"
    area.mkdir()
    for n in p["ns"]:
        for rep in range(p["reps"][n]):
            for mode in MODES if rep % 2 == 0 else MODES[::-1]:
                paths = [area / f"{mode}-{n}-{rep}-{i}" for i in range(n)]
                for path in paths:
                    ctx.journal.record("folder", str(path))
                    if mode == "overlay":
                        ctx.journal.record("mount", str(path / "rootfs"))
                made: list[Path] = []
                try:
                    t0 = time.perf_counter_ns()
                    for path in paths:
                        create_bundle(
                            path, image=ref, mode=mode, store=store, probe_binary=ctx.probe, args=["/bin/true"]
                        )
                        made.append(path)
                    setup = (time.perf_counter_ns() - t0) / 1e9
                    nbytes = ninodes = 0
                    for path in paths:
                        bb, ii = tree_counts(path)
                        nbytes += bb
                        ninodes += ii
                    mounts = len(mounts_under(area))
                    t0 = time.perf_counter_ns()
                    for path in paths:
                        remove_bundle(path)
                        made.remove(path)
                    teardown = (time.perf_counter_ns() - t0) / 1e9
                finally:
                    for path in made:
                        remove_bundle(path)
                    for path in paths:
                        ctx.journal.release("mount", str(path / "rootfs"))
                        ctx.journal.release("folder", str(path))
                shared = mode == "overlay"
                params = {
                    "n": n,
                    "bundles_only_bytes": nbytes,
                    "bundles_only_inodes": ninodes,
                    "store_bytes": store_bytes if shared else 0,
                    "store_inodes": store_inodes if shared else 0,
                }
                common = {"mode": mode, "params": params, "iteration": rep}
                ctx.record("scale", "n-containers", setup, "s", phase="setup", **common)
                ctx.record("scale", "n-containers", teardown, "s", phase="teardown", **common)
                ctx.record("scale", "n-containers", nbytes + params["store_bytes"], "bytes", phase="bytes", **common)
                ctx.record(
                    "scale", "n-containers", ninodes + params["store_inodes"], "inodes", phase="inodes", **common
                )
                ctx.record("scale", "n-containers", mounts, "mounts", phase="mounts", **common)
                ctx.progress.advance(f"N={n} {mode}")
    area.rmdir()
    ctx.summaries["scale"] = summarize(ctx)


def summarize(ctx: BenchContext) -> dict[str, Any]:
    """Per N: the median of each figure per mode, and overlay/raw ratios (with bootstrap
    intervals for the timed ones; sizes, inodes and mounts do not vary between repetitions)."""
    from . import stats
    from .records import read_samples

    rows = [r for r in read_samples(ctx.writer.path) if r["suite"] == "scale" and r["run"] == ctx.run_id]
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        groups.setdefault((r["params"]["n"], r["phase"], r["mode"]), []).append(r["value"])
    medians = {key: stats.summary(values)["median"] for key, values in groups.items()}
    out: dict[str, Any] = {}
    for (n, phase, mode), values in sorted(groups.items(), key=str):
        entry = out.setdefault(f"N={n}", {}).setdefault(phase, {})
        entry[mode] = medians[(n, phase, mode)]
        raw = groups.get((n, phase, "raw"))
        if mode == "overlay" and raw:
            if phase in ("setup", "teardown"):
                try:
                    entry["overlay_over_raw"] = stats.ratio(values, raw)
                except ValueError:
                    pass
            elif medians[(n, phase, "raw")]:
                entry["overlay_over_raw"] = medians[(n, phase, mode)] / medians[(n, phase, "raw")]
    return out


SUITE = FunctionSuite("scale", run_scale, prepare)
