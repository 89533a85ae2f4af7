"""``harness bench``: the command line of the benchmark suites."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness.errors import HarnessError

SMOKE = "a smoke run (--quick): few samples and small sizes, to see that every workload runs; its figures are not measurements to compare"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "bench",
        help="benchmarks: lifecycle latency per runtime, raw vs overlay I/O, N containers",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Benchmarks: lifecycle latency per runtime, raw vs overlay I/O, N containers.\n\n"
        "Measures runtimes and bundle modes; samples.jsonl, environment.json (with the run's status),\n"
        "summary.json and a hyperfine-format export go to --output, and the headline figures are\n"
        "printed at the end. Needs root and the analysis extra (pip install 'oci-harness[analysis]').\n"
        "A full run takes about 5 minutes; --quick is a smoke run of seconds, not a measurement.",
        epilog="examples:\n"
        "  harness bench --quick                                # smoke run: every workload, seconds\n"
        "  harness bench --runtime reference,runc,crun --output results/bench/full\n"
        "  harness bench --suite lifecycle --runtime runc --json hyperfine.json\n"
        "  harness report results/bench/full                    # then the report",
    )
    p.add_argument(
        "--runtime",
        metavar="A,B",
        help="runtimes to measure, comma-separated (default: every runtime whose binary is installed)",
    )
    p.add_argument(
        "--suite",
        default="lifecycle,io,scale",
        metavar="S,S",
        help="suites to run, comma-separated: lifecycle, io, scale (default: all)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: a few iterations, small sizes, one depth set (seconds, for CI); not a measurement",
    )
    p.add_argument("--output", type=Path, metavar="DIR", help="output folder (default: results/bench/<UTC timestamp>/)")
    p.add_argument(
        "--json",
        type=Path,
        metavar="FILE",
        help="also write the lifecycle timings in hyperfine's JSON export format to FILE",
    )
    p.add_argument(
        "--rootfs-tar",
        type=Path,
        metavar="PATH",
        help="a local Alpine minirootfs tarball (scale suite) instead of downloading it (default: $HARNESS_ROOTFS_TAR)",
    )
    p.add_argument(
        "--io-runtime",
        metavar="NAME",
        help="the runtime that runs the I/O workloads (default: runc, else crun, else the first one)",
    )
    p.add_argument("--seed", type=int, default=1, help="seed of the block order and the generated images (default: 1)")
    p.add_argument(
        "--workdir",
        type=Path,
        metavar="DIR",
        help="where bundles are made (default: /var/tmp, or $HARNESS_BENCH_DIR); its filesystem is recorded",
    )
    p.add_argument(
        "--no-drop-caches",
        action="store_true",
        help="measure I/O with a warm page cache only. Without it, the I/O suite's cold-cache samples "
        "sync and drop the whole host's page cache (3 > /proc/sys/vm/drop_caches) before each one, "
        "which slows other work on the machine for a while",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress display")
    p.set_defaults(func=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    from harness.errors import require_analysis

    require_analysis("bench")
    from .runner import Options, installed_runtimes, run_bench

    names = [n for n in (args.runtime or "").split(",") if n] or installed_runtimes()
    if not names:
        raise HarnessError("no runtime installed; give --runtime NAME or a binary path")
    suites = [s for s in args.suite.split(",") if s]
    options = Options(
        runtimes=names,
        suites=suites,
        quick=args.quick,
        output=args.output,
        json_path=args.json,
        seed=args.seed,
        workdir=args.workdir,
        rootfs_tar=args.rootfs_tar,
        io_runtime=args.io_runtime,
        drop_caches=not args.no_drop_caches,
        progress=not args.no_progress,
    )
    if args.quick:
        print(f"harness bench: {SMOKE}", file=sys.stderr)
    try:
        out = run_bench(options, argv=sys.argv)
    except KeyboardInterrupt:
        print(
            "harness bench: interrupted; everything it made was removed (the run is marked interrupted)",
            file=sys.stderr,
        )
        return 130
    for line in headline(out):
        print(line)
    print(out)
    return 0


def headline(output: Path) -> list[str]:
    """The figures a reader wants first, from a finished run's folder: median latency of a
    container run per runtime, the copy-up cost per MiB, disk for N containers raw against
    overlay. Intervals carry their real coverage (or say there are too few samples)."""
    from . import stats
    from .records import read_samples

    path = Path(output) / "samples.jsonl"
    if not path.is_file():
        return []
    samples = [s for s in read_samples(path) if not s.get("warmup")]
    env = {}
    try:
        env = json.loads((Path(output) / "environment.json").read_text())
    except (OSError, ValueError):
        pass
    lines = []
    if (env.get("options") or {}).get("quick"):
        lines.append(f"NOTE: {SMOKE}.")

    def median(values: list[float], scale: float = 1e3, unit: str = "ms") -> str:
        s = stats.summary(values)
        note = stats.interval_note(s["n"], s["ci_coverage"])
        if note.startswith("too few"):
            return f"{s['median'] * scale:.3g} {unit} ({note})"
        label = note if note else "95%"
        return f"{s['median'] * scale:.3g} {unit} [{s['ci95_low'] * scale:.3g}, {s['ci95_high'] * scale:.3g}] ({label})"

    runs: dict[str, list[float]] = {}
    for s in samples:
        if s["suite"] == "lifecycle" and s["workload"] == "lifecycle" and s.get("phase") == "run" and s.get("runtime"):
            runs.setdefault(s["runtime"], []).append(s["value"])
    if runs:
        lines.append("container run (create, start, wait, delete), median latency:")
        lines += [
            f"  {rt:<12} {median(v)}" for rt, v in sorted(runs.items(), key=lambda kv: stats.summary(kv[1])["median"])
        ]
    fits = (
        (
            json.loads((Path(output) / "summary.json").read_text()) if (Path(output) / "summary.json").is_file() else {}
        ).get("io")
        or {}
    ).get("copy_up_fit") or {}
    overlay = {k: f for k, f in fits.items() if "overlay" in k}
    if overlay:
        lines.append("overlay copy-up, least-squares cost per MiB of the file written:")
        lines += [
            f"  {k:<26} {f['slope'] * 1e3:.3g} ms/MiB ± {f['slope_stderr'] * 1e3:.2g} (r² {f['r2']:.2f}, n={f['n']})"
            for k, f in sorted(overlay.items())
        ]
    disk: dict[tuple[int, str], list[float]] = {}
    for s in samples:
        if s["suite"] == "scale" and s.get("phase") == "bytes" and s.get("mode") in ("raw", "overlay"):
            disk.setdefault((int(s["params"].get("n", 0)), s["mode"]), []).append(s["value"])
    if disk:
        top = max(n for n, _ in disk)
        raw, ov = disk.get((top, "raw")), disk.get((top, "overlay"))
        if raw and ov:
            r, o = stats.summary(raw)["median"], stats.summary(ov)["median"]
            lines.append(
                f"disk for {top} containers: raw copies {r / 2**20:.1f} MiB, overlay {o / 2**20:.1f} MiB ({o / r:.2f}× of raw)"
            )
    return lines
