"""The run journal and `harness cleanup`, including a run killed with SIGKILL mid-suite."""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from harness import host, journal
from harness.runtime import process

ROOT = Path(__file__).resolve().parents[1]


def test_record_release_and_read(tmp_path):
    j = journal.Journal("run1", tmp_path)
    j.record("folder", "/x")
    j.record("container", "c1", runtime="runc", state_root="/s")
    j.record("container", "c1", runtime="runc", state_root="/s", pid=5)
    j.release("folder", "/x")
    entries = journal.read(j.path)
    assert entries.owner["pid"] == os.getpid() and entries.owner_alive
    assert [(e["kind"], e["key"], e.get("pid")) for e in entries.pending] == [("container", "c1", 5)]
    j.close()
    assert j.path.exists(), "a journal with pending entries must stay for cleanup"


def test_journal_of_a_finished_run_is_removed(tmp_path):
    j = journal.Journal("run2", tmp_path)
    j.record("folder", "/x")
    j.release("folder", "/x")
    j.close()
    assert not j.path.exists()


def test_a_torn_last_line_is_ignored(tmp_path):
    j = journal.Journal("run3", tmp_path)
    j.record("folder", "/x")
    j.close(remove=False)
    with open(j.path, "a") as f:
        f.write('{"kind": "folder", "key": "/y"')  # killed mid-write
    assert [e["key"] for e in journal.read(j.path).pending] == ["/x"]


def dead_owner_journal(tmp_path, entries):
    """A journal whose owner is a process that has exited."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    path = tmp_path / "dead.jsonl"
    lines = [{"kind": "owner", "pid": int(proc.stdout), "start": 1}, *entries]
    path.write_text("".join(json.dumps(e) + "\n" for e in lines))
    return path


def test_cleanup_removes_what_a_dead_run_left(tmp_path):
    left = tmp_path / "left-behind"
    (left / "sub").mkdir(parents=True)
    kept = tmp_path / "released"
    kept.mkdir()
    path = dead_owner_journal(
        tmp_path,
        [
            {"kind": "folder", "key": str(left)},
            {"kind": "folder", "key": str(kept)},
            {"kind": "released", "of": "folder", "key": str(kept)},
        ],
    )
    assert list(journal.cleanup(tmp_path, dry_run=True).removed) == [f"would remove folder {left}"]
    assert left.exists()
    report = journal.cleanup(tmp_path)
    assert report.removed == [f"folder {left}"] and not report.errors
    assert not left.exists() and kept.exists() and not path.exists()


def test_cleanup_leaves_live_runs_alone(tmp_path):
    j = journal.Journal("live", tmp_path)
    folder = tmp_path / "in-use"
    folder.mkdir()
    j.record("folder", str(folder))
    report = journal.cleanup(tmp_path)
    assert folder.exists() and report.skipped and not report.removed
    j.close(remove=False)


def test_cleanup_never_kills_a_reused_pid(tmp_path):
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        dead_owner_journal(tmp_path, [{"kind": "process", "key": str(sleeper.pid), "pid": sleeper.pid, "start": 1}])
        journal.cleanup(tmp_path)
        assert sleeper.poll() is None, "cleanup killed a process whose start time does not match the journal"
    finally:
        sleeper.kill()
        sleeper.wait()


KILLED_RUN = """
import pathlib, pytest

def test_long_running(runtime, bundle_factory, container_factory):
    c = container_factory(bundle_factory("pause"))
    c.create()
    c.start()
    c.wait_status("running")
    cgroups = open(f"/proc/{c.pid}/cgroup").read()
    pathlib.Path(READY).write_text(f"{c.id} {c.pid}\\n" + cgroups)
    import time
    time.sleep(600)
"""


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runc"), reason="needs root and runc")
def test_kill_9_mid_suite_then_cleanup_leaves_nothing(tmp_path):
    state_dir = tmp_path / "state"
    ready = tmp_path / "ready"
    case = tmp_path / "test_killed.py"
    case.write_text(f"READY = {str(ready)!r}\n" + textwrap.dedent(KILLED_RUN))
    env = {**os.environ, "HARNESS_STATE_DIR": str(state_dir), "PYTHONPATH": str(ROOT)}
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            str(case),
            "--runtime",
            "runc",
            "-p",
            "harness.pytest_plugin",
            "-p",
            "no:cacheprovider",
            "-q",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() or not ready.read_text().strip():
            assert run.poll() is None, "the run ended before its container was running"
            assert time.monotonic() < deadline, "the container never became ready"
            time.sleep(0.05)
        first, *cgroup_lines = ready.read_text().splitlines()
        cid, pid = first.split()
        pid = int(pid)
        pid_start = process.start_time(pid)
    finally:
        run.send_signal(signal.SIGKILL)  # the run we started, by its pid
        run.wait()
    assert process.alive(pid), "the container should outlive its killed run (that is the point)"
    cleanup = subprocess.run(
        [sys.executable, "-m", "harness", "cleanup"], env=env, capture_output=True, text=True, timeout=120
    )
    assert cleanup.returncode == 0, cleanup.stderr
    assert f"container {cid}" in cleanup.stdout, cleanup.stdout
    process.reap_orphans()
    assert not process.alive(pid, pid_start), f"the container process {pid} still runs"
    journals = list((state_dir / "journal").glob("*.jsonl")) if (state_dir / "journal").exists() else []
    assert journals == [], f"journals left: {journals}"
    leftover_state = [p for p in state_dir.rglob("*") if p.name != "journal"]
    assert leftover_state == [], f"state left behind: {leftover_state}"
    # the container's cgroups (v1 controllers and the v2 hierarchy) are gone
    for line in cgroup_lines:
        _, controllers, path = line.split(":", 2)
        if path in ("", "/"):
            continue
        for name in controllers.split(",") if controllers else ["unified"]:
            name = name.removeprefix("name=")
            base = Path("/sys/fs/cgroup") / name
            if base.is_dir() and path.endswith(cid):
                assert not (base / path.lstrip("/")).exists(), f"cgroup {base / path.lstrip('/')} left behind"
    assert not [m for m in host.mounts() if str(tmp_path) in m.mount_point], "mounts left behind"
    again = subprocess.run(
        [sys.executable, "-m", "harness", "cleanup"], env=env, capture_output=True, text=True, timeout=60
    )
    assert again.stdout.strip() == "nothing to clean up"


def _cleanup_cli(state_dir):
    env = {**os.environ, "HARNESS_STATE_DIR": str(state_dir)}
    return subprocess.run(
        [sys.executable, "-m", "harness", "cleanup"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_cleanup_creates_nothing(tmp_path):
    # a container whose state root is already gone: asking its runtime about it would make the
    # state root again (the harness's adapter and runc both create a missing --root)
    state = tmp_path / "state"
    (state / "journal").mkdir(parents=True)
    gone = state / "run-gone" / "reference"
    dead_owner_journal(
        state / "journal", [{"kind": "container", "key": "hgone-1", "runtime": "reference", "state_root": str(gone)}]
    )
    p = _cleanup_cli(state)
    assert p.returncode == 0, p.stderr
    assert "removed container hgone-1" in p.stdout, p.stdout
    assert sorted(str(x.relative_to(state)) for x in state.rglob("*")) == ["journal"], "cleanup made folders"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (a mount inside the folder)")
def test_cleanup_says_what_it_cannot_remove_and_why(tmp_path):
    from harness import _linux

    state = tmp_path / "state"
    (state / "journal").mkdir(parents=True)
    folder = tmp_path / "left"
    (folder / "busy").mkdir(parents=True)
    path = dead_owner_journal(state / "journal", [{"kind": "folder", "key": str(folder)}])
    _linux.mount("tmpfs", str(folder / "busy"), "tmpfs", 0, "size=64k")
    try:
        p = _cleanup_cli(state)
    finally:
        _linux.umount2(str(folder / "busy"), _linux.MNT_DETACH)
    assert p.returncode == 1, p.stdout + p.stderr
    assert f"could not remove folder {folder}: cannot remove {folder / 'busy'}: Device or resource busy" in p.stderr, (
        p.stderr
    )
    assert path.exists(), "the journal of what could not be removed must stay for the next cleanup"
    p = _cleanup_cli(state)
    assert p.returncode == 0 and f"removed folder {folder}" in p.stdout and not folder.exists(), p.stdout + p.stderr


def test_cleanup_of_one_run_leaves_the_others(tmp_path):
    ours, theirs = tmp_path / "ours-left", tmp_path / "theirs-left"
    ours.mkdir()
    theirs.mkdir()
    dead_owner_journal(tmp_path, [{"kind": "folder", "key": str(ours)}]).rename(tmp_path / "st1-gw0.jsonl")
    dead_owner_journal(tmp_path, [{"kind": "folder", "key": str(theirs)}]).rename(tmp_path / "st12-gw0.jsonl")
    report = journal.cleanup(tmp_path, run="st1")
    assert report.removed == [f"folder {ours}"] and not report.errors, report
    assert not ours.exists() and theirs.exists() and (tmp_path / "st12-gw0.jsonl").exists()


HANGING_CREATE = """#!{python}
import os, sys, time
if "create" in sys.argv:
    open(os.environ["HANG_MARK"], "w").write(str(os.getpid()))
    time.sleep(120)
"""

RUN_THAT_CREATES = """
import sys
from pathlib import Path
from harness import journal
from harness.runtime import Runtime, RuntimeDefinition
tmp = Path(sys.argv[1])
rt = Runtime(RuntimeDefinition(name="hang", binary=str(tmp / "hang")), tmp / "state", timeout=120)
rt.journal = journal.Journal("hang-run", tmp / "journal")
rt.create("hcid-orphan", tmp / "bundle")
"""


def test_cleanup_ends_a_create_the_killed_run_left_running(tmp_path):
    """A runtime's create outlives a harness killed with SIGKILL meanwhile: the journal names
    the call by its command line, and cleanup ends it."""
    (tmp_path / "hang").write_text(HANGING_CREATE.format(python=sys.executable))
    (tmp_path / "hang").chmod(0o755)
    mark = tmp_path / "create.pid"
    run = subprocess.Popen(
        [sys.executable, "-c", RUN_THAT_CREATES, str(tmp_path)],
        cwd=ROOT,
        env={**os.environ, "HANG_MARK": str(mark), "PYTHONPATH": str(ROOT)},
    )
    create = None
    try:
        assert process.until(lambda: mark.exists() and mark.read_text(), 60), "the fake create never started"
        create = int(mark.read_text())
        start = process.start_time(create)
        run.send_signal(signal.SIGKILL)  # the run we started, by its pid
        run.wait()
        assert process.alive(create, start), "the create should outlive the killed run"
        report = journal.cleanup(tmp_path / "journal")
        assert not report.errors, report.errors
        assert process.until(lambda: not process.alive(create, start), 10), "cleanup left the create running"
        assert not list((tmp_path / "journal").glob("*.jsonl"))
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        if create is not None and process.alive(create, start):
            os.kill(create, signal.SIGKILL)
