"""Image bundle benchmarks (run as root): ``python3 benchmarks/image_bundles.py [--quick]``.

1. Overlay bundle creation from an image whose layers are already stored, for a small and a
   large image (and a 128-layer one): median and interquartile range over many runs.
2. Disk: 100 overlay bundles against 100 raw bundles of the Alpine image (bytes from st_blocks,
   each inode once).
3. Raw unpack throughput against ``umoci raw unpack`` on the same images, side by side (MB/s of
   file data written; both start from the same layout; umoci's time includes its process start,
   so ours is given in-process and as a ``python3 -m harness`` process).

Prints the results as JSON (and writes them to ``--out`` if given).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness.bundle import create_bundle, remove_bundle  # noqa: E402
from harness.image import RAW, ImageBuilder, LayerStore, Layout, generate_image, tree_bytes, unpack_layer  # noqa: E402
from harness.probe import build_probe  # noqa: E402
from harness.rootfs import local_alpine_tarball  # noqa: E402

ALPINE = local_alpine_tarball()


def quartiles(xs: list[float]) -> dict[str, float]:
    q = statistics.quantiles(xs, n=4) if len(xs) > 1 else [xs[0]] * 3
    return {"median": statistics.median(xs), "q1": q[0], "q3": q[2], "n": len(xs)}


def file_bytes(root: Path) -> int:
    total, seen = 0, set()
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            st = os.lstat(os.path.join(dirpath, name))
            if (st.st_dev, st.st_ino) not in seen and not os.path.islink(os.path.join(dirpath, name)):
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def build_images(work: Path, quick: bool) -> dict[str, object]:
    layout = Layout.init(work / "layout")
    images = {}
    if ALPINE.exists():
        b = ImageBuilder(layout)
        b.base("alpine", rootfs_tar=ALPINE)
        b.add_changes([{"op": "file", "path": "etc/bench", "content": "x"}, {"op": "delete", "path": "etc/motd"}])
        images["alpine"] = b.commit("alpine")
    images["small"] = generate_image(layout, "small", layers=4, files=16, size=4096, seed=1)
    big_files = 64 if quick else 256
    images["large"] = generate_image(layout, "large", layers=16, files=big_files, size=(4096, 65536), seed=2)
    images["deep128"] = generate_image(layout, "deep128", layers=128, files=4, size=1024, seed=3)
    return images


def bench_overlay(work: Path, images: dict, store: LayerStore, probe: Path, runs: int) -> dict:
    out = {}
    for name, image in images.items():
        store.ensure(image)
        store.file_layer(probe, "probe")
        times = []
        for i in range(runs):
            target = work / f"ovl-{name}-{i}"
            t0 = time.perf_counter()
            create_bundle(
                target,
                image=f"{image.layout.path}:{image.ref}",
                mode="overlay",
                store=store,
                probe_binary=probe,
                args=["/probe", "hostname"],
            )
            times.append((time.perf_counter() - t0) * 1000)
            remove_bundle(target)
        image_mb = sum(d.size for d in image.layers) / 1e6
        out[name] = {"layers": len(image.layers), "blob_MB": round(image_mb, 2), "ms": quartiles(times)}
    return out


def bench_disk(work: Path, image, store: LayerStore, probe: Path, count: int) -> dict:
    ref = f"{image.layout.path}:{image.ref}"
    raw_total = ovl_total = 0
    ovl = []
    for i in range(count):
        ovl.append(
            create_bundle(
                work / f"disk-ovl-{i}",
                image=ref,
                mode="overlay",
                store=store,
                probe_binary=probe,
                args=["/probe", "hostname"],
            )
        )
    try:
        for b in ovl:
            ovl_total += tree_bytes(b.path)  # does not cross into the overlay mount
    finally:
        for b in ovl:
            remove_bundle(b.path)
    for i in range(count):
        b = create_bundle(
            work / f"disk-raw-{i}", image=ref, mode="raw", probe_binary=probe, args=["/probe", "hostname"]
        )
        raw_total += tree_bytes(b.path)
        remove_bundle(b.path)  # one at a time: the total is the same, the disk need not hold all
    return {
        "bundles": count,
        "raw_bytes": raw_total,
        "overlay_bytes": ovl_total,
        "overlay_over_raw_percent": round(100 * ovl_total / raw_total, 3),
        "store_bytes_shared": store.disk_usage(),
    }


def bench_unpack(work: Path, images: dict, runs: int) -> dict:
    umoci = shutil.which("umoci")
    out = {}
    for name, image in images.items():
        ref = f"{image.layout.path}:{image.ref}"
        probe_dir = work / f"size-{name}"
        for d, i in zip(image.layers, image.diff_ids, strict=False):
            unpack_layer(image.layout, d, i, probe_dir, form=RAW)
        data = file_bytes(probe_dir)
        shutil.rmtree(probe_dir)
        rows = {"file_MB": round(data / 1e6, 2)}
        ours, ours_cli, theirs = [], [], []
        for r in range(runs):
            target = work / f"raw-{name}-{r}"
            t0 = time.perf_counter()
            for d, i in zip(image.layers, image.diff_ids, strict=False):
                unpack_layer(image.layout, d, i, target / "rootfs", form=RAW)
            ours.append(time.perf_counter() - t0)
            shutil.rmtree(target)
            t0 = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "harness",
                    "bundle",
                    str(target),
                    "--image",
                    ref,
                    "--mode",
                    "raw",
                    "--no-probe",
                    "--",
                    "/bin/true",
                ],
                check=True,
                cwd=REPO,
                capture_output=True,
            )
            ours_cli.append(time.perf_counter() - t0)
            shutil.rmtree(target)
            if umoci:
                t0 = time.perf_counter()
                subprocess.run([umoci, "raw", "unpack", "--image", ref, str(target)], check=True, capture_output=True)
                theirs.append(time.perf_counter() - t0)
                shutil.rmtree(target)
        for key, xs in (("harness_in_process", ours), ("harness_cli", ours_cli), ("umoci", theirs)):
            if xs:
                med = statistics.median(xs)
                rows[key] = {"median_s": round(med, 4), "MB_per_s": round(data / 1e6 / med, 1)}
        out[name] = rows
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs, smaller images")
    parser.add_argument("--out", type=Path, help="also write the JSON results to this file")
    parser.add_argument("--only", choices=("overlay", "disk", "unpack"), action="append", help="run only these parts")
    parser.add_argument("--work", type=Path, help="work folder (default: a temporary one, removed)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("overlay bundles need root", file=sys.stderr)
        return 2
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="harness-bench-"))
    try:
        images = build_images(work, args.quick)
        store = LayerStore(work / "store")
        probe = build_probe()
        want = set(args.only or ("overlay", "disk", "unpack"))
        results = {}
        if "overlay" in want:
            results["overlay_create"] = bench_overlay(work, images, store, probe, 10 if args.quick else 50)
        if "disk" in want and "alpine" in images:
            results["disk"] = bench_disk(work, images["alpine"], store, probe, 10 if args.quick else 100)
        if "unpack" in want:
            results["raw_unpack"] = bench_unpack(
                work, {k: v for k, v in images.items() if k in ("alpine", "large", "deep128")}, 3 if args.quick else 7
            )
    finally:
        if not args.work:
            for bundle in work.glob("*"):
                if (bundle / ".harness-bundle.json").exists():
                    remove_bundle(bundle)
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
