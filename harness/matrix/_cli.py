"""``harness matrix``: cells of kernel x cgroup mode x runtimes, each in a VM, one merged report."""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

from ..errors import HarnessError

DEFAULT_OUTPUT = "results/matrix"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "matrix",
        help="the suite on other kernels and cgroup modes, each cell in a VM (virtme-ng), one merged report",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Cells of kernel x cgroup mode (v1, hybrid, v2), each booted in a QEMU VM by virtme-ng on a\n"
            "copy-on-write view of this host (its Python, virtualenv, runtimes and this checkout), running\n"
            "the cases (or a selection: PATHS, -k) on the runtimes. Kernels are Debian packages (apt-get\n"
            "download), checked against the package index's SHA256 and cached by it in --kernel-cache.\n"
            "Each cell's results land in OUTPUT/<kernel>-<mode>/results (the usual --results folder, its\n"
            "environment.json naming the kernel, cgroup layout and runtime versions); OUTPUT/matrix.json\n"
            "says how each cell went (a VM that did not boot is 'did-not-boot', not failed cases) and\n"
            "OUTPUT/report.html merges them, differences between cells first.\n\n"
            "KVM is used when a test boot under it works, else QEMU emulates (TCG: boot about a minute,\n"
            "cases 16-26x slower). Ctrl-C or SIGTERM stops every VM and removes its temporary files.\n"
            "Needs: pip install 'oci-harness[matrix]'; apt-get install qemu-system-x86 kmod busybox-static file.\n\n"
            "Exit status: 0 every cell passed, 1 cases failed in some cell, 3 some cell did not run to its end."
        ),
        epilog=(
            "examples:\n"
            "  harness matrix --kernel 6.1 --cgroup v2 -k cgroup            # one cell, the cgroup cases\n"
            "  harness matrix --kernel 6.1,6.12 --runtime reference,runc cases/test_cgroups.py\n"
            "  harness matrix --kernel ./linux-image-6.6.deb --cgroup v1,v2 --jobs 1"
        ),
    )
    p.add_argument("paths", nargs="*", metavar="PATHS", help="case files or folders to run (default: cases)")
    p.add_argument("-k", dest="keyword", metavar="EXPR", help="pytest -k: run the cases matching EXPR")
    p.add_argument(
        "--kernel",
        default="6.1,6.12",
        help="kernels, comma-separated: a version (6.1), a Debian package, a .deb or a vmlinuz-<release> (default: 6.1,6.12)",
    )
    p.add_argument("--cgroup", default="v1,hybrid,v2", help="cgroup modes, comma-separated (default: v1,hybrid,v2)")
    p.add_argument("--runtime", default="reference,runc", help="runtimes each cell runs (default: reference,runc)")
    p.add_argument("--output", "-o", default=DEFAULT_OUTPUT, help=f"results folder (default: {DEFAULT_OUTPUT})")
    p.add_argument(
        "--kernel-cache", metavar="DIR", help="where kernels are cached (default: $HARNESS_CACHE_DIR/kernels)"
    )
    p.add_argument("--jobs", "-j", default="auto", help="cells at once (default: as many as cores and memory allow)")
    p.add_argument("--cpus", type=int, default=1, help="vCPUs per VM (default: 1)")
    p.add_argument("--memory", default="1G", help="memory per VM, as QEMU takes it (default: 1G)")
    p.add_argument(
        "--accel", choices=("auto", "kvm", "tcg"), default="auto", help="auto: KVM if it boots the kernel, else TCG"
    )
    p.add_argument(
        "--cell-timeout",
        type=float,
        default=45,
        metavar="MIN",
        help="minutes a cell may take, boot included (default: 45)",
    )
    p.add_argument(
        "--timeout-scale",
        type=float,
        metavar="X",
        help="HARNESS_TIMEOUT_SCALE inside the VM (default: 20 under TCG, 2 under KVM)",
    )
    p.add_argument("--no-report", action="store_true", help="do not write OUTPUT/report.html")
    p.set_defaults(func=cmd_matrix)


def _memory_mb(text: str) -> int:
    match = re.fullmatch(r"(\d+)([MG]?)", text.strip().upper().removesuffix("B"))
    if not match:
        raise HarnessError(f"--memory {text}: expected a size like 512M or 1G")
    return int(match.group(1)) * (1024 if match.group(2) == "G" else 1)


def auto_jobs(cpus: int, memory_mb: int) -> int:
    """As many cells as there are cores for their vCPUs and memory for them (keeping 1 GB)."""
    cores = len(os.sched_getaffinity(0))
    available = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) // 1024
    except OSError:
        pass
    by_memory = max(1, (available - 1024) // memory_mb) if available else 1
    return max(1, min(cores // max(1, cpus), by_memory))


def cmd_matrix(args: argparse.Namespace) -> int:
    from . import kernels as kmod
    from . import run

    modes = [m.strip() for m in args.cgroup.split(",") if m.strip()]
    bad = [m for m in modes if m not in run.MODES]
    if bad or not modes:
        raise HarnessError(f"--cgroup {args.cgroup}: modes are {', '.join(run.MODES)}")
    names = [k.strip() for k in args.kernel.split(",") if k.strip()]
    if not names:
        raise HarnessError("--kernel: name at least one kernel (6.1, a package, a .deb)")
    if os.geteuid() != 0:
        raise HarnessError("harness matrix runs as root (containers in the VM run as the host user, root)")
    memory_mb = _memory_mb(args.memory)
    jobs = auto_jobs(args.cpus, memory_mb) if args.jobs == "auto" else int(args.jobs)
    if jobs < 1 or args.cpus < 1 or args.cell_timeout <= 0:
        raise HarnessError("--jobs, --cpus and --cell-timeout must be positive")
    run.check_host()
    run.vng_binary()

    def log(text: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)

    cache = Path(args.kernel_cache) if args.kernel_cache else None
    kernels = [kmod.fetch(n, cache, log=log) for n in names]
    labels = [k.label for k in kernels]
    if len(set(labels)) != len(labels):
        raise HarnessError(f"--kernel {args.kernel}: two kernels share the label {labels}; name each once")
    output = Path(args.output).resolve()
    output.mkdir(parents=True, exist_ok=True)
    pytest_args = [*(args.paths or ["cases"]), "--runtime", args.runtime, "-v", "-p", "no:cacheprovider"]
    if args.cpus > 1:
        pytest_args += ["-n", str(args.cpus)]
    if args.keyword:
        pytest_args += ["-k", args.keyword]
    from .._paths import cache_dir
    from ..probe import build_probe

    build_probe()  # once on the host, copied into each VM: compiling under emulation is slow
    cells = run.plan(kernels, modes, output)
    log(
        f"{len(cells)} cells, {jobs} at a time, {args.cpus} vCPU and {args.memory} each: {', '.join(c.label for c in cells)}"
    )
    started = time.monotonic()
    try:
        outcomes = run.run_cells(
            cells,
            pytest_args=pytest_args,
            jobs=jobs,
            cpus=args.cpus,
            memory=args.memory,
            accel=args.accel,
            timeout=args.cell_timeout * 60,
            timeout_scale=args.timeout_scale,
            host_cache=cache_dir(),
            log=log,
        )
    except KeyboardInterrupt:
        log("interrupted: every VM is stopped; the cells' folders keep what they had written")
        return 130
    wall = time.monotonic() - started
    summary = run.write_summary(output, outcomes, wall, pytest_args)
    print(f"matrix: {len(outcomes)} cells in {wall / 60:.1f} min ({summary})")
    for o in outcomes:
        print(f"  {o.line()}")
    if not args.no_report:
        report = write_report(output, outcomes, log)
        if report:
            print(f"report: {report}")
    if any(o.status not in ("passed", "failed") for o in outcomes):
        return 3
    return 1 if any(o.status == "failed" for o in outcomes) else 0


def write_report(output: Path, outcomes, log) -> Path | None:
    """The cells' results merged into one report (the ones that did not run are named in it)."""
    try:
        from ..errors import require_analysis

        require_analysis("report")
    except HarnessError as err:
        log(f"no report: {err}")
        return None
    from .. import atomic
    from ..report.load import load_run
    from ..report.render import build_report
    from ..requirements import collect_cases

    ran = [o for o in outcomes if (o.cell.out / "results" / "results.jsonl").is_file()]
    if not ran:
        log("no report: no cell brought back results")
        return None
    run_ = load_run(",".join(str(o.cell.out / "results") for o in ran), merge=True, allow_partial=True)
    run_.label = "matrix"
    for o in outcomes:
        if o.status not in ("passed", "failed"):
            run_.notes.append(f"cell {o.cell.label} ({o.cell.kernel.release}, {o.cell.mode}): {o.status}. {o.detail}")
    covered = None
    if Path("cases").is_dir():
        try:
            covered = collect_cases(Path("cases"))
        except HarnessError:
            covered = None
    html, markdown = build_report([run_], covered=covered, title="oci-harness matrix")
    path = output / "report.html"
    atomic.write_text(path, html, parents=True)
    atomic.write_text(output / "report.md", markdown, parents=True)
    return path
