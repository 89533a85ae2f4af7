#!/usr/bin/env python3
"""Run the conformance suite several times and report every case whose outcome changed.

    python3 benchmarks/stability.py --runs 5 --runtime reference,runc [--load] [--cgroup-v2] [-- extra pytest args]

Each run writes its results.jsonl (pytest --results) under --output (default
results/stability/<timestamp>/run-N); the outcomes of all runs are compared case by case
(a case is its node id, which includes the runtime). Exit status 0 when every case had the same
outcome in every run, 1 otherwise. Prints each run's wall time and outcome counts, and for
every case that changed, what it said in each run (its failure message, or its skip reason).

``--load`` keeps the machine busy while the suite runs: quiet runs do not find races that real,
busy CI machines hit. The load is the distribution's ``stress-ng`` (CPU workers on every core,
one memory worker, one I/O worker), started here in its own process group, bounded by its own
``--timeout`` and stopped when the runs end, also on Ctrl-C or SIGTERM. ``--cgroup-v2`` runs
each pass as ``nox -s conformance-v2`` does: on a hybrid host, in a private mount namespace
whose /sys/fs/cgroup is the host's v2 hierarchy.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness import host, journal, leaks  # noqa: E402  (needs the checkout on sys.path, above)
from harness.results import read_jsonl  # noqa: E402
from harness.runtime import default_state_root_base  # noqa: E402

#: What one pass of the suite may take at most under load before it counts as hung (seconds).
RUN_LIMIT = 3600.0


def outcomes(path: Path) -> dict[str, str]:
    return {r["case"]: r["outcome"] for r in read_jsonl(path)}


def details(path: Path) -> dict[str, str]:
    """What each case said: its failure message, or its skip / xfail reason ("" if nothing)."""
    return {r["case"]: (r.get("message") or r.get("reason") or "") for r in read_jsonl(path)}


def flips(runs: list[dict[str, str]]) -> dict[str, list[str]]:
    """Cases whose outcome is not the same in every run (a case missing from a run counts)."""
    cases = set().union(*runs) if runs else set()
    changed = {}
    for case in sorted(cases):
        seen = [run.get(case, "absent") for run in runs]
        if len(set(seen)) > 1:
            changed[case] = seen
    return changed


def counts(run: dict[str, str]) -> dict[str, int]:
    return dict(sorted(collections.Counter(run.values()).items()))


def excerpt(text: str, lines: int = 12) -> str:
    """The end of a failure message: where pytest puts the assertion and the error."""
    rows = [r for r in text.strip().splitlines() if r.strip()]
    return "\n".join(rows[-lines:])


# --------------------------------------------------------------------------------------------
# The load


def load_command(seconds: int, cpus: int | None = None) -> list[str]:
    """stress-ng busy on every core (CPU), one memory and one I/O worker, ending by itself."""
    cpus = cpus or os.cpu_count() or 1
    return [
        "stress-ng",
        "--cpu",
        str(cpus),
        "--vm",
        "1",
        "--vm-bytes",
        "256M",
        "--io",
        "1",
        "--timeout",
        f"{seconds}s",
        "--quiet",
    ]


class Load:
    """stress-ng in its own process group, from ``start()`` to ``stop()`` (idempotent).

    It is bounded twice: by stress-ng's own ``--timeout`` (so a harness killed with SIGKILL
    leaves it running no longer than that), and by ``stop()``, which ends the whole group.
    """

    def __init__(self, seconds: int):
        self.seconds = seconds
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if shutil.which("stress-ng") is None:
            raise SystemExit("--load needs stress-ng, which is not installed (as root: apt-get install stress-ng)")
        self.proc = subprocess.Popen(
            load_command(self.seconds),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        time.sleep(0.5)
        if self.proc.poll() is not None:
            raise SystemExit(
                f"stress-ng exited at once with status {self.proc.returncode}: {' '.join(load_command(self.seconds))}"
            )

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(proc.pid, sig)  # its workers are in its group (start_new_session)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                continue
        # stress-ng's workers may outlive their parent for a moment: wait for the group to go
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def __enter__(self) -> Load:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _sigterm_as_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


# --------------------------------------------------------------------------------------------
# What a run left on the host


def host_values() -> dict[str, str]:
    return {k: Path("/proc/sys/kernel", k).read_text().strip() for k in ("hostname", "domainname")}


def left_on_host(tag: str, basetemp: Path, values_before: dict[str, str]) -> list[str]:
    """What still carries this run's name after it ended: every pass runs with its own
    HARNESS_RUN_ID (``tag``: container ids ``h<tag>-...``, state roots ``<tag>-...``) and its
    own --basetemp (bundles), so nothing another run on the machine makes is counted. Cgroup
    folders on every cgroup mount (the v2 hierarchy included), mounts, processes rooted in the
    run's folders, state roots and journals; and the host's hostname and domainname."""
    found = [f"cgroup {p}" for p in leaks.cgroup_folders([f"h{tag}-"])]
    base = str(basetemp.resolve())
    found += [
        f"mount {m.mount_point}"
        for m in host.mounts()
        if m.mount_point == base or m.mount_point.startswith(base + "/") or f"/{tag}-" in m.mount_point
    ]
    found += [f"process {pid} ({cmd})" for pid, cmd in leaks.processes([base])]
    state = default_state_root_base()
    for folder in (state, state / "journal"):
        try:
            found += [f"state {folder / n}" for n in sorted(os.listdir(folder)) if n.startswith(f"{tag}-")]
        except OSError:
            pass
    now = host_values()
    found += [f"host {k} is {now[k]!r}, was {v!r}" for k, v in values_before.items() if now.get(k) != v]
    return found


# --------------------------------------------------------------------------------------------
# The runs


def pytest_command(args: argparse.Namespace, out: Path, extra: list[str], basetemp: Path | None = None) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "cases",
        "-q",
        "-p",
        "no:cacheprovider",
        "-n",
        args.workers,
        "--runtime",
        args.runtime,
        f"--results={out}",
        *([f"--basetemp={basetemp}"] if basetemp is not None else []),
        *extra,
    ]
    if args.cgroup_v2:
        return [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            'mount --bind /sys/fs/cgroup/unified /sys/fs/cgroup && exec "$@"',
            "sh",
            *cmd,
        ]
    return cmd


def snapshot(dst: Path) -> Path:
    """A copy of the project for the passes to run from: a run lasts many minutes, and a change
    landed meanwhile (a pull, a merge) would mix two versions into one pytest session (modules
    imported late, such as the one writing environment.json, come from the new one)."""
    shutil.copytree(
        ROOT,
        dst,
        ignore=shutil.ignore_patterns(
            ".git", "results", ".nox", ".hypothesis", "__pycache__", "*.egg-info", "build", "dist"
        ),
    )
    return dst


#: the signals that stop the script; held while pytest is being started (see run_once)
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _unblock_stop_signals() -> None:
    """In pytest's process, before exec: the mask is inherited, and pytest must hear them."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def run_once(args: argparse.Namespace, i: int, extra: list[str], tag: str) -> tuple[Path, float, int, str]:
    out = args.output / f"run-{i}"
    started = time.monotonic()
    # Ctrl-C here reaches pytest through us (SIGINT), which ends it and its workers. A Ctrl-C
    # that came while Popen was starting it (pytest running, ``proc`` not yet known) would leave
    # pytest running on its own: SIGINT and SIGTERM wait until ``proc`` is known.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    proc = None
    try:
        proc = subprocess.Popen(
            pytest_command(args, out, extra, basetemp=args.output / f"tmp-{i}"),
            cwd=args.src,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "HARNESS_RUN_ID": tag},
            preexec_fn=_unblock_stop_signals,
        )
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # a pending Ctrl-C is raised here
        stdout, _ = proc.communicate(timeout=args.run_limit)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # pytest then tears down its fixtures: containers are removed
        stdout, _ = proc.communicate()
        stdout += f"\n(stopped: the run took more than {args.run_limit:g} s)"
    except KeyboardInterrupt:
        if proc is not None:
            proc.send_signal(signal.SIGINT)
            proc.communicate()
        raise
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    (args.output / f"run-{i}.log").write_text(stdout)
    return out, time.monotonic() - started, proc.returncode, stdout


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--runtime", default="reference,runc")
    parser.add_argument(
        "--output", type=Path, default=ROOT / "results" / "stability" / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    )
    parser.add_argument("--workers", default="auto", help="pytest-xdist workers (-n)")
    parser.add_argument(
        "--load", action="store_true", help="run the suite under a CPU, memory and I/O load (stress-ng)"
    )
    parser.add_argument(
        "--cgroup-v2",
        action="store_true",
        help="on a hybrid host, run as if the host were pure cgroup v2 (as nox -s conformance-v2)",
    )
    parser.add_argument(
        "--run-limit",
        type=float,
        default=RUN_LIMIT,
        help="seconds one pass may take before it is stopped (default %(default)s)",
    )
    args = parser.parse_args(argv)
    if args.cgroup_v2 and not os.path.exists("/sys/fs/cgroup/unified/cgroup.procs"):
        parser.error("--cgroup-v2 needs a hybrid cgroup host (a v2 hierarchy at /sys/fs/cgroup/unified)")
    args.output.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(args.output / "src", ignore_errors=True)
    args.src = snapshot(args.output / "src")
    load = Load(int(args.runs * args.run_limit) + 60) if args.load else None
    previous = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    # Ctrl-C stops the run even when we were started with SIGINT ignored, as a shell without job
    # control starts a background job (`cmd &`): Python then keeps it ignored, and so would pytest
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    runs: list[dict[str, str]] = []
    said: list[dict[str, str]] = []
    per_run: list[dict[str, Any]] = []
    left_behind: dict[str, list[str]] = {}
    try:
        if load is not None:
            load.start()
            print(
                f"load: {' '.join(load_command(load.seconds))} (pid {load.proc.pid if load.proc else '?'})", flush=True
            )
        for i in range(1, args.runs + 1):
            tag = f"st{uuid.uuid4().hex[:6]}{i}"
            values = host_values()
            out, took, code, stdout = run_once(args, i, extra, tag)
            left = left_on_host(tag, args.output / f"tmp-{i}", values)
            if left:
                # a pass stopped at its limit (or a crashed worker) leaves its containers: what
                # harness cleanup would do, for this pass's journals only
                swept = journal.cleanup(run=tag)
                left += [f"(removed by harness cleanup: {r})" for r in swept.removed]
                left += [f"(harness cleanup could not remove: {e})" for e in swept.errors]
                left_behind[f"run {i}"] = left
                print(f"run {i} (HARNESS_RUN_ID {tag}) left on the host:\n  " + "\n  ".join(left), flush=True)
            shutil.rmtree(args.output / f"tmp-{i}", ignore_errors=True)
            summary = stdout.strip().splitlines()[-1] if stdout.strip() else "(no output)"
            loaded = "" if load is None else (" (under load)" if load.running() else " (the load had ended!)")
            if not (out / "results.jsonl").exists():
                print(f"run {i} wrote no results.jsonl; pytest said:\n{stdout[-3000:]}", file=sys.stderr)
                return 2
            runs.append(outcomes(out / "results.jsonl"))
            said.append(details(out / "results.jsonl"))
            per_run.append({"run": i, "seconds": round(took, 1), "pytest_exit": code, "counts": counts(runs[-1])})
            print(f"run {i}: {took:.1f} s{loaded}, pytest exit {code}: {summary}; {counts(runs[-1])}", flush=True)
    except KeyboardInterrupt:
        print("interrupted: load stopped, no verdict", file=sys.stderr)
        return 130
    finally:
        if load is not None:
            load.stop()
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
        shutil.rmtree(args.src, ignore_errors=True)
    changed = flips(runs)
    report = {
        "runs": args.runs,
        "runtime": args.runtime,
        "load": load_command(load.seconds) if load is not None else None,
        "cgroup_v2": args.cgroup_v2,
        "cases": len(set().union(*runs)) if runs else 0,
        "per_run": per_run,
        "changed": {
            case: {"outcomes": seen, "said": [s.get(case, "") for s in said]} for case, seen in changed.items()
        },
        "left_on_host": left_behind,
    }
    (args.output / "stability.json").write_text(json.dumps(report, indent=2) + "\n")
    if changed:
        print(f"{len(changed)} case(s) changed outcome across {args.runs} runs:")
        for case, seen in changed.items():
            print(f"  {case}: {' '.join(seen)}")
            for i, (outcome, s) in enumerate(zip(seen, said, strict=False), 1):
                text = excerpt(s.get(case, ""))
                if text and outcome not in ("passed", "xfailed"):
                    print(f"    run {i} ({outcome}):\n      " + text.replace("\n", "\n      "))
        print(f"(all of it in {args.output / 'stability.json'})")
        return 1
    if left_behind:
        print(f"stable outcomes, but {len(left_behind)} run(s) left something on the host (above)")
        return 1
    print(f"stable: {report['cases']} case outcomes identical in all {args.runs} runs; nothing left on the host")
    return 0


if __name__ == "__main__":
    sys.exit(main())
