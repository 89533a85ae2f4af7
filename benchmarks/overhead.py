"""How much the harness's own timing adds: ``harness bench`` timing against hyperfine, side by side.

Run as root: ``python3 benchmarks/overhead.py [--runtime crun] [--runs 2000]``.

The same bundle (the probe, ``/probe exit 0``), the same command line (``RUNTIME --root R run
--bundle B ID``), the same number of runs: measured by the harness's timer (the one
``harness bench`` uses for ``run``: fork+exec to reaped exit on the monotonic clock, waiting on a
pidfd) and by ``hyperfine -N`` (no shell), in many short alternating rounds so machine drift hits
both alike. The harness passes if its median is within 2% of hyperfine's.

Why so many runs: a container start is noisy. On this 2-core VM ``crun run`` has an
interquartile range of about 25% of its median, ``runc run`` about 30% with a flat top, so the
median of 100 runs is itself only known to about +-2-3%, and two such medians differ by more
than 2% often even when the timers agree. 2000 runs of ``crun run`` (about 45 s for both tools)
bring the standard error of the difference to about 0.5%; the default runtime is crun because
its distribution is the tighter one.

A runtime whose definition needs a private mount namespace on this host (crun on a hybrid
cgroup host) gets it once, for this whole script, before anything runs: hyperfine and the
harness's timer then both start the plain command in that namespace and time the same thing.
(``harness bench`` enters it per call instead, and reports that cost on its own as
``floor-preexec``.)

Prints JSON (both medians, the difference in %, a bootstrap interval of the ratio, the raw
samples); exit 1 if the difference is over the tolerance.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness import runtime  # noqa: E402
from harness.bench._timing import WAKEUP, Timer, not_subreaper, timed  # noqa: E402
from harness.bundle import create_bundle  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime", default="crun")
    parser.add_argument("--runs", type=int, default=2000, help="runs per tool (default 2000)")
    parser.add_argument(
        "--rounds", type=int, default=100, help="alternating rounds (default 100: 20 runs per tool per round)"
    )
    parser.add_argument("--warmup", type=int, default=1, help="warm-up runs per round, per tool (default 1)")
    parser.add_argument(
        "--tolerance", type=float, default=2.0, help="allowed difference of the medians in %% (default 2)"
    )
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("containers need root", file=sys.stderr)
        return 2
    hyperfine = shutil.which("hyperfine")
    if not hyperfine:
        print("hyperfine is not installed (apt-get install hyperfine)", file=sys.stderr)
        return 2
    with runtime.open_session(f"overhead-{os.getpid()}-{uuid.uuid4().hex[:8]}") as session:
        work = Path(tempfile.mkdtemp(prefix="harness-overhead-"))
        session.journal.record("folder", str(work))
        try:
            result = measure(args, session, work, hyperfine)
        finally:
            shutil.rmtree(work, ignore_errors=True)
            session.journal.release("folder", str(work))
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0 if result["within_tolerance"] else 1


def measure(args: argparse.Namespace, session: runtime.Session, work: Path, hyperfine: str) -> dict:
    journal = session.journal
    rt = session.runtime(args.runtime)
    namespace = "host"
    if rt.in_private_mount_namespace:
        # once, for this process and so for every child (hyperfine included); before numpy
        # is imported, since unshare(CLONE_NEWNS) refuses a process with threads
        rt.preexec_fn()
        namespace = "private (the runtime definition's quirk, entered once for both tools)"
    bundle = create_bundle(work / "bundle", rootfs="probe", args=["/probe", "exit", "0"]).path
    cid = f"overhead-{uuid.uuid4().hex[:8]}"
    argv = rt.argv("run", "--bundle", str(bundle), cid)
    rt.state_root.mkdir(parents=True, exist_ok=True)
    per_round = max(args.runs // args.rounds, 1)
    timer = Timer()
    ours: list[float] = []
    theirs: list[float] = []
    journal.record("container", cid, runtime=rt.name, state_root=str(rt.state_root))
    with WAKEUP:
        for r in range(args.rounds):
            # alternate which tool goes first, so drift within a round hits both alike
            for tool in ("harness", "hyperfine") if r % 2 == 0 else ("hyperfine", "harness"):
                if tool == "harness":
                    for i in range(args.warmup + per_round):
                        with not_subreaper():  # as harness bench times `run`
                            # the launcher harness bench times the adapter's calls with
                            timer(
                                argv,
                                stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL,
                                preexec=None,
                                timeout=rt.timeout,
                            )
                            t = timer.calls.pop()
                        if t.status != 0:
                            raise SystemExit(f"{' '.join(argv)} failed with {t.status}")
                        if i >= args.warmup:
                            ours.append(t.seconds)
                else:
                    export = work / f"hyperfine-{r}.json"
                    subprocess.run(
                        [
                            hyperfine,
                            "-N",
                            "--style",
                            "none",
                            "--runs",
                            str(per_round),
                            "--warmup",
                            str(args.warmup),
                            "--export-json",
                            str(export),
                            " ".join(argv),
                        ],
                        check=True,
                        stdout=subprocess.DEVNULL,
                    )
                    theirs += json.loads(export.read_text())["results"][0]["times"]
        # the timer's own fixed cost: a trivial process (the static probe, exit 0), both ways
        from harness.probe import build_probe

        null = [str(build_probe()), "exit", "0"]
        null_ours = [timed(null).seconds for _ in range(300)]
        export = work / "hyperfine-null.json"
        subprocess.run(
            [
                hyperfine,
                "-N",
                "--style",
                "none",
                "--runs",
                "300",
                "--warmup",
                "20",
                "--export-json",
                str(export),
                " ".join(null),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        null_theirs = json.loads(export.read_text())["results"][0]["times"]
    journal.release("container", cid)
    from harness.bench import stats

    h, y = stats.summary(ours), stats.summary(theirs)
    diff = 100.0 * (h["median"] - y["median"]) / y["median"]
    result = {
        "runtime": rt.name,
        "version": rt.version(),
        "command": " ".join(argv),
        "mount_namespace": namespace,
        "runs_each": len(ours),
        "harness": {k: h[k] for k in ("median", "ci95_low", "ci95_high", "mean", "std", "n")},
        "hyperfine": {k: y[k] for k in ("median", "ci95_low", "ci95_high", "mean", "std", "n")},
        "difference_percent": diff,
        "ratio_harness_over_hyperfine": stats.ratio(ours, theirs),
        "tolerance_percent": args.tolerance,
        "within_tolerance": abs(diff) <= args.tolerance,
        "null_process": {
            "command": " ".join(null),
            "harness_median": stats.summary(null_ours)["median"],
            "hyperfine_median": stats.summary(null_theirs)["median"],
        },
        "loadavg": os.getloadavg(),
        "samples": {"harness": ours, "hyperfine": theirs},
    }
    return result


if __name__ == "__main__":
    sys.exit(main())
