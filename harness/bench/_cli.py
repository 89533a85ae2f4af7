"""``harness bench``: the command line of the benchmark suites."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.errors import HarnessError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "bench", help="benchmarks: lifecycle latency per runtime, raw vs overlay I/O, N containers",
        description="Measure runtimes and bundle modes; samples, environment and a hyperfine-format export go to --output.")
    p.add_argument("--runtime", help="runtimes to measure, comma-separated (default: every runtime whose binary is installed)")
    p.add_argument("--suite", default="lifecycle,io,scale", help="suites to run, comma-separated: lifecycle, io, scale (default: all)")
    p.add_argument("--quick", action="store_true", help="a few iterations, small sizes, one depth set: seconds, for CI")
    p.add_argument("--output", type=Path, help="output folder (default results/bench/<UTC timestamp>/)")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the lifecycle timings in hyperfine's JSON export format to FILE")
    p.add_argument("--rootfs-tar", type=Path, metavar="PATH", help="a local Alpine minirootfs tarball (scale suite) instead of downloading it")
    p.add_argument("--io-runtime", help="the runtime that runs the I/O workloads (default: runc, else crun, else the first one)")
    p.add_argument("--seed", type=int, default=1, help="seed of the block order and the generated images (default 1)")
    p.add_argument("--workdir", type=Path, help="where bundles are made (default /var/tmp, or $HARNESS_BENCH_DIR); its filesystem is recorded")
    p.add_argument("--no-drop-caches", action="store_true", help="measure I/O with a warm page cache only")
    p.add_argument("--no-progress", action="store_true", help="no progress display")
    p.set_defaults(func=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    from .runner import Options, installed_runtimes, run_bench

    names = [n for n in (args.runtime or "").split(",") if n] or installed_runtimes()
    if not names:
        raise HarnessError("no runtime installed; give --runtime NAME or a binary path")
    suites = [s for s in args.suite.split(",") if s]
    options = Options(runtimes=names, suites=suites, quick=args.quick, output=args.output, json_path=args.json, seed=args.seed,
                      workdir=args.workdir, rootfs_tar=args.rootfs_tar, io_runtime=args.io_runtime,
                      drop_caches=not args.no_drop_caches, progress=not args.no_progress)
    try:
        out = run_bench(options, argv=sys.argv)
    except KeyboardInterrupt:
        print("harness bench: interrupted; everything it made was removed", file=sys.stderr)
        return 130
    print(out)
    return 0
