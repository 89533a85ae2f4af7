#!/usr/bin/env python3
"""Run the conformance suite several times and report every case whose outcome changed.

    python3 benchmarks/stability.py --runs 5 --runtime reference,runc [-- extra pytest args]

Each run writes its results.jsonl (pytest --results) under --output (default
results/stability/<timestamp>/run-N); the outcomes of all runs are compared case by case
(a case is its node id, which includes the runtime). Exit status 0 when every case had the same
outcome in every run, 1 otherwise. Also prints each run's wall time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.results import read_jsonl  # noqa: E402


def outcomes(path: Path) -> dict[str, str]:
    return {r["case"]: r["outcome"] for r in read_jsonl(path)}


def flips(runs: list[dict[str, str]]) -> dict[str, list[str]]:
    """Cases whose outcome is not the same in every run (a case missing from a run counts)."""
    cases = set().union(*runs) if runs else set()
    changed = {}
    for case in sorted(cases):
        seen = [run.get(case, "absent") for run in runs]
        if len(set(seen)) > 1:
            changed[case] = seen
    return changed


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--runtime", default="reference,runc")
    parser.add_argument("--output", type=Path, default=ROOT / "results" / "stability" / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
    parser.add_argument("--workers", default="auto", help="pytest-xdist workers (-n)")
    args = parser.parse_args(argv)
    runs = []
    for i in range(1, args.runs + 1):
        out = args.output / f"run-{i}"
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "cases", "-q", "-p", "no:cacheprovider", "-n", args.workers, "--runtime", args.runtime, f"--results={out}", *extra],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        took = time.monotonic() - started
        summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "(no output)"
        print(f"run {i}: {took:.1f} s, pytest exit {proc.returncode}: {summary}", flush=True)
        if not (out / "results.jsonl").exists():
            print(f"run {i} wrote no results.jsonl; pytest said:\n{proc.stdout[-3000:]}", file=sys.stderr)
            return 2
        runs.append(outcomes(out / "results.jsonl"))
    changed = flips(runs)
    report = {"runs": args.runs, "runtime": args.runtime, "cases": len(set().union(*runs)), "changed": changed}
    (args.output / "stability.json").write_text(json.dumps(report, indent=2) + "\n")
    if changed:
        print(f"{len(changed)} case(s) changed outcome across {args.runs} runs:")
        for case, seen in changed.items():
            print(f"  {case}: {' '.join(seen)}")
        return 1
    print(f"stable: {report['cases']} case outcomes identical in all {args.runs} runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
