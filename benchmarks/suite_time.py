#!/usr/bin/env python3
"""The conformance suite's wall time on one runtime, two commits side by side.

    python3 benchmarks/suite_time.py [--base main] [--head HEAD] [--runtime reference]
                                     [--repeat 3] [--workers auto] [--same-cases] [--json FILE]
                                     [-- extra pytest args]

Each of ``--base`` and ``--head`` is a commit (checked out into a temporary git worktree,
removed at the end, also on Ctrl-C) or the path of an existing checkout (used as it is). The
suite (``pytest cases --runtime R -n WORKERS``) runs in each, alternating, ``--repeat`` times,
the order swapped every round (base, head; head, base; ...), so a change in the machine's load
falls on both sides alike. A shared machine makes absolute times vary from one minute to the
next: the figure to quote is the ratio head/base of the medians, with the spread of each side
(min-max) and the load average around each run.

Per run it records the wall time, the CPU time of the suite's processes (user + system of the
pytest process and everything it waited for: xdist workers, runtime calls, containers reaped
by the harness), the load average before and after, and every case's outcome from the run's
``results.jsonl``. The two sides must give the same outcome for every case: a speed-up that
comes from a dropped or skipped case is no speed-up, so a difference is printed and makes the
exit status 1. Exit status 2: a run could not be made at all.

When the two commits have different suites (cases added, renamed or removed between them),
``--same-cases`` compares like with like: each side collects its cases (``--collect-only``), and
both run only the case ids they have in common, so the ratio is the same cases' time before and
after. The cases each side has alone are counted and named in the output.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: One pass of the suite taking longer than this is a hang, not a measurement (seconds).
RUN_LIMIT = 1800.0


@dataclass
class Run:
    side: str
    round: int
    wall: float
    cpu: float
    load_before: float
    load_after: float
    exit_status: int
    outcomes: dict[str, str] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return dict(sorted(collections.Counter(self.outcomes.values()).items()))


def _load() -> float:
    return os.getloadavg()[0]


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def read_outcomes(path: Path) -> dict[str, str]:
    out = {}
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            out[record["case"]] = record["outcome"]
    return out


def suite_command(
    python: str, runtime: str, workers: str, results: Path, extra: list[str], cases: list[str] | None = None
) -> list[str]:
    """The suite's command line; ``cases`` (node ids) instead of the whole ``cases`` folder."""
    return [
        python,
        "-m",
        "pytest",
        *(cases or ["cases"]),
        "--runtime",
        runtime,
        "-n",
        workers,
        "-q",
        "-p",
        "no:cacheprovider",
        f"--results={results}",
        *extra,
    ]


def run_once(side: str, rnd: int, checkout: Path, argv: list[str], results: Path, log: Path) -> Run:
    load_before = _load()
    cpu_before = _children_cpu()
    start = time.perf_counter()
    with open(log, "wb") as out:
        # its own process group: on Ctrl-C, SIGTERM or a hang the whole suite (controller and
        # xdist workers) gets SIGINT and removes its containers as an interrupted run does
        proc = subprocess.Popen(argv, cwd=checkout, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            status = proc.wait(timeout=RUN_LIMIT)
        except subprocess.TimeoutExpired:
            _stop(proc)
            status = -1
        except BaseException:
            _stop(proc)
            raise
    wall = time.perf_counter() - start
    cpu = _children_cpu() - cpu_before
    return Run(side, rnd, wall, cpu, load_before, _load(), status, read_outcomes(results / "results.jsonl"))


def _stop(proc: subprocess.Popen) -> None:
    """SIGINT to the suite's process group, then SIGKILL if it has not ended within a minute."""
    for sig, grace in ((signal.SIGINT, 60.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def compare(runs: list[Run]) -> dict[str, Any]:
    """Medians, spreads and head/base ratios of wall and CPU time; outcome differences."""
    out: dict[str, Any] = {}
    for side in ("base", "head"):
        mine = [r for r in runs if r.side == side]
        out[side] = {
            "wall": summary([r.wall for r in mine]),
            "cpu": summary([r.cpu for r in mine]),
            "counts": mine[0].counts() if mine else {},
            "cases": len(mine[0].outcomes) if mine else 0,
        }
    for what in ("wall", "cpu"):
        out[f"{what}_ratio"] = out["head"][what]["median"] / out["base"][what]["median"]
    out["differences"] = differences(runs)
    return out


def differences(runs: list[Run]) -> list[str]:
    """Cases whose outcome is not the same in every run of both sides (absent counts)."""
    cases = sorted(set().union(*(r.outcomes for r in runs)))
    found = []
    for case in cases:
        seen = {f"{r.side}#{r.round}": r.outcomes.get(case, "absent") for r in runs}
        if len(set(seen.values())) > 1:
            found.append(f"{case}: " + ", ".join(f"{k} {v}" for k, v in seen.items()))
    return found


def collected(python: str, checkout: Path, runtime: str, extra: list[str]) -> list[str]:
    """The case ids the suite in ``checkout`` collects for ``runtime`` (after its own deselection)."""
    argv = [python, "-m", "pytest", "cases", "--runtime", runtime, "--collect-only", "-q", "-p", "no:cacheprovider"]
    done = subprocess.run([*argv, *extra], cwd=checkout, capture_output=True, text=True, timeout=600)
    ids = [line.strip() for line in done.stdout.splitlines() if line.startswith("cases/") and "::" in line]
    if done.returncode != 0 or not ids:
        tail = (done.stdout + done.stderr)[-2000:]
        raise SystemExit(f"suite_time: collecting the cases in {checkout} failed (exit {done.returncode}):\n{tail}")
    return ids


def common_cases(base: list[str], head: list[str]) -> tuple[list[str], list[str], list[str]]:
    """The ids both sides have (in head's order), and those only base or only head has."""
    in_base, in_head = set(base), set(head)
    return [c for c in head if c in in_base], sorted(in_base - in_head), sorted(in_head - in_base)


def checkout(rev_or_path: str, where: Path, made: list[Path]) -> Path:
    """An existing checkout's path, or a new detached worktree of commit ``rev_or_path``."""
    path = Path(rev_or_path)
    if path.is_dir() and (path / "harness").is_dir() and (path / "cases").is_dir():
        return path.resolve()
    sha = subprocess.run(
        ["git", "rev-parse", "--verify", f"{rev_or_path}^{{commit}}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if sha.returncode != 0:
        raise SystemExit(f"suite_time: {rev_or_path!r} is neither a checkout folder nor a commit of {ROOT}")
    target = where / f"{rev_or_path.replace('/', '_')}-{sha.stdout.strip()[:10]}"
    subprocess.run(["git", "worktree", "add", "--detach", "-q", str(target), sha.stdout.strip()], cwd=ROOT, check=True)
    made.append(target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="main", help="commit or checkout folder to compare against (default main)")
    parser.add_argument("--head", default="HEAD", help="commit or checkout folder measured (default HEAD)")
    parser.add_argument("--runtime", default="reference", help="the one runtime the suite runs on")
    parser.add_argument("--repeat", type=int, default=3, help="runs per side (default 3)")
    parser.add_argument("--workers", default="auto", help="pytest-xdist -n (default auto)")
    parser.add_argument(
        "--same-cases",
        action="store_true",
        help="run only the case ids both sides collect (for commits whose suites differ)",
    )
    parser.add_argument("--json", type=Path, help="write every run and the comparison to this file")
    parser.add_argument("--python", default=sys.executable, help="the Python that runs pytest (default: this one)")
    parser.add_argument("extra", nargs="*", help="more pytest arguments, after --")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    signal.signal(signal.SIGTERM, _interrupt)
    made: list[Path] = []
    scratch = Path(tempfile.mkdtemp(prefix="suite-time-"))
    runs: list[Run] = []
    try:
        sides = {
            "base": checkout(args.base, scratch, made),
            "head": checkout(args.head, scratch, made),
        }
        print(f"base {args.base}: {sides['base']}\nhead {args.head}: {sides['head']}", flush=True)
        print(f"{os.cpu_count()} cpus; load average now {os.getloadavg()}", flush=True)
        cases: list[str] | None = None
        if args.same_cases:
            base_ids = collected(args.python, sides["base"], args.runtime, args.extra)
            head_ids = collected(args.python, sides["head"], args.runtime, args.extra)
            cases, only_base, only_head = common_cases(base_ids, head_ids)
            print(
                f"same cases: {len(cases)} in common (base collects {len(base_ids)}, head {len(head_ids)}); "
                f"{len(only_base)} only in base, {len(only_head)} only in head",
                flush=True,
            )
            for case in only_base:
                print(f"  only in base: {case}", flush=True)
            if not cases:
                print("suite_time: the two sides have no case in common", file=sys.stderr)
                return 2
        for rnd in range(args.repeat):
            order = ("base", "head") if rnd % 2 == 0 else ("head", "base")
            for side in order:
                results = scratch / f"results-{side}-{rnd}"
                cmd = suite_command(args.python, args.runtime, args.workers, results, args.extra, cases)
                run = run_once(side, rnd, sides[side], cmd, results, scratch / f"log-{side}-{rnd}.txt")
                runs.append(run)
                print(
                    f"round {rnd + 1} {side}: {run.wall:6.1f} s wall, {run.cpu:6.1f} s cpu, "
                    f"load {run.load_before:.1f}->{run.load_after:.1f}, exit {run.exit_status}, {run.counts()}",
                    flush=True,
                )
                if run.exit_status not in (0, 1) or not run.outcomes:
                    print(scratch.joinpath(f"log-{side}-{rnd}.txt").read_text(errors="replace")[-3000:])
                    print(f"suite_time: the {side} run could not be made (exit {run.exit_status})", file=sys.stderr)
                    return 2
    except KeyboardInterrupt:
        print("suite_time: interrupted", file=sys.stderr)
        return 130
    finally:
        for path in made:
            subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, capture_output=True)
        shutil.rmtree(scratch, ignore_errors=True)

    result = compare(runs)
    for side in ("base", "head"):
        w, c = result[side]["wall"], result[side]["cpu"]
        print(
            f"{side}: wall median {w['median']:.1f} s (min {w['min']:.1f}, max {w['max']:.1f}); "
            f"cpu median {c['median']:.1f} s (min {c['min']:.1f}, max {c['max']:.1f}); "
            f"{result[side]['cases']} cases {result[side]['counts']}"
        )
    cases = max(result["head"]["cases"], 1)
    print(
        f"head/base: wall {result['wall_ratio']:.2f}, cpu {result['cpu_ratio']:.2f}; "
        f"head: {1000 * result['head']['wall']['median'] / cases:.0f} ms wall and "
        f"{1000 * result['head']['cpu']['median'] / cases:.0f} ms cpu per case"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps({"runs": [asdict(r) for r in runs], "comparison": result, "args": vars(args)}, default=str)
        )
    if result["differences"]:
        print("outcomes differ between runs:\n  " + "\n  ".join(result["differences"]))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
