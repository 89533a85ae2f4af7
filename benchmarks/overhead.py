"""How much the harness's own timing adds: ``harness bench`` timing against hyperfine, side by side.

Run as root: ``python3 benchmarks/overhead.py [--runtime runc] [--runs 100]``.

The same bundle (the probe, ``/probe exit 0``), the same command line (``RUNTIME --root R run
--bundle B ID``), the same number of runs: measured by the harness's timer (the one
``harness bench`` uses for ``run``: fork+exec to reaped exit on the monotonic clock, waiting on a
pidfd) and by ``hyperfine -N`` (no shell), in alternating rounds so machine drift hits both
alike. The harness passes if its median is within 2% of hyperfine's. A runtime whose
definition needs a private mount namespace on this host (crun on a hybrid cgroup host) is
refused: hyperfine could not apply that quirk, so the two would not time the same thing.

Prints JSON (both medians, the difference in %, a bootstrap interval of the ratio); exit 1 if
the difference is over the tolerance.
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

from harness import _linux, runtime  # noqa: E402
from harness.bench import stats  # noqa: E402
from harness.bench._timing import WAKEUP, not_subreaper, timed  # noqa: E402
from harness.bundle import create_bundle  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime", default="runc")
    parser.add_argument("--runs", type=int, default=100, help="runs per tool (default 100)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up runs per round, per tool")
    parser.add_argument("--tolerance", type=float, default=2.0, help="allowed difference of the medians in %% (default 2)")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("containers need root", file=sys.stderr)
        return 2
    hyperfine = shutil.which("hyperfine")
    if not hyperfine:
        print("hyperfine is not installed (apt-get install hyperfine)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="harness-overhead-"))
    state = runtime.default_state_root_base() / f"overhead-{os.getpid()}"
    from harness.journal import Journal

    journal = Journal()
    journal.record("folder", str(work))
    journal.record("state_root", str(state))
    try:
        rt = runtime.Runtime(runtime.resolve(args.runtime), state)
        if rt.in_private_mount_namespace:
            print(f"{rt.name} needs a private mount namespace on this host; hyperfine cannot time the same thing. Use --runtime runc",
                  file=sys.stderr)
            return 2
        bundle = create_bundle(work / "bundle", rootfs="probe", args=["/probe", "exit", "0"]).path
        cid = f"overhead-{uuid.uuid4().hex[:8]}"
        argv = rt.argv("run", "--bundle", str(bundle), cid)
        state.mkdir(parents=True, exist_ok=True)
        _linux.set_child_subreaper()
        per_round = max(args.runs // args.rounds, 1)
        ours: list[float] = []
        theirs: list[float] = []
        journal.record("container", cid, runtime=rt.name, state_root=str(state))
        with WAKEUP:
            for r in range(args.rounds):
                # alternate which tool goes first, so drift within a round hits both alike
                for tool in (("harness", "hyperfine") if r % 2 == 0 else ("hyperfine", "harness")):
                    if tool == "harness":
                        for i in range(args.warmup + per_round):
                            with not_subreaper():  # as harness bench times `run`
                                t = timed(argv, timeout=rt.timeout)
                            if t.status != 0:
                                raise SystemExit(f"{' '.join(argv)} failed with {t.status}")
                            if i >= args.warmup:
                                ours.append(t.seconds)
                    else:
                        export = work / f"hyperfine-{r}.json"
                        subprocess.run([hyperfine, "-N", "--style", "none", "--runs", str(per_round), "--warmup", str(args.warmup),
                                        "--export-json", str(export), " ".join(argv)], check=True, stdout=subprocess.DEVNULL)
                        theirs += json.loads(export.read_text())["results"][0]["times"]
            # the timer's own fixed cost: a trivial process (the static probe, exit 0), both ways
            from harness.probe import build_probe

            null = [str(build_probe()), "exit", "0"]
            null_ours = [timed(null).seconds for _ in range(300)]
            export = work / "hyperfine-null.json"
            subprocess.run([hyperfine, "-N", "--style", "none", "--runs", "300", "--warmup", "20", "--export-json", str(export),
                            " ".join(null)], check=True, stdout=subprocess.DEVNULL)
            null_theirs = json.loads(export.read_text())["results"][0]["times"]
        journal.release("container", cid)
        h, y = stats.summary(ours), stats.summary(theirs)
        diff = 100.0 * (h["median"] - y["median"]) / y["median"]
        result = {
            "runtime": rt.name, "version": rt.version(), "command": " ".join(argv), "runs_each": len(ours),
            "harness": {k: h[k] for k in ("median", "ci95_low", "ci95_high", "mean", "std", "n")},
            "hyperfine": {k: y[k] for k in ("median", "ci95_low", "ci95_high", "mean", "std", "n")},
            "difference_percent": diff,
            "ratio_harness_over_hyperfine": stats.ratio(ours, theirs),
            "tolerance_percent": args.tolerance,
            "within_tolerance": abs(diff) <= args.tolerance,
            "null_process": {"command": " ".join(null), "harness_median": stats.summary(null_ours)["median"],
                             "hyperfine_median": stats.summary(null_theirs)["median"]},
            "loadavg": os.getloadavg(),
        }
    finally:
        shutil.rmtree(state, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
        journal.release("state_root", str(state))
        journal.release("folder", str(work))
        journal.close()
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0 if result["within_tolerance"] else 1


if __name__ == "__main__":
    sys.exit(main())
