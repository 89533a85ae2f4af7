import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location(
    "stability", Path(__file__).resolve().parents[1] / "benchmarks" / "stability.py"
)
stability = importlib.util.module_from_spec(spec)
spec.loader.exec_module(stability)


def test_flips_finds_changed_and_missing_cases():
    runs = [
        {"a": "passed", "b": "failed", "c": "passed"},
        {"a": "passed", "b": "passed", "c": "passed"},
        {"a": "passed", "b": "failed"},
    ]
    assert stability.flips(runs) == {"b": ["failed", "passed", "failed"], "c": ["passed", "passed", "absent"]}


def test_no_flips_when_identical():
    assert stability.flips([{"a": "xfailed"}, {"a": "xfailed"}]) == {}


needs_stress = pytest.mark.skipif(
    shutil.which("stress-ng") is None, reason="needs stress-ng (apt-get install stress-ng)"
)


def _group_alive(pgid):
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def test_load_is_bounded_by_its_own_timeout():
    cmd = stability.load_command(7, cpus=2)
    assert cmd[0] == "stress-ng" and cmd[cmd.index("--timeout") + 1] == "7s"
    assert cmd[cmd.index("--cpu") + 1] == "2"


@needs_stress
def test_load_starts_and_stops_its_whole_group():
    load = stability.Load(60)
    with load:
        pgid = load.proc.pid
        assert load.running() and _group_alive(pgid)
        time.sleep(0.5)
        workers = subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True, text=True, check=False).stdout.split()
        assert len(workers) > 1, "stress-ng started no workers"
    assert not load.running()
    assert not _group_alive(pgid), "stress-ng workers outlived stop()"
    load.stop()  # again: nothing to do


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@needs_stress
@pytest.mark.parametrize("sigint", ["default", "ignored"])
def test_ctrl_c_stops_the_load(tmp_path, sigint):
    """Ctrl-C while the suite runs under load: the load is gone and no verdict is given. Also
    when the script starts with SIGINT ignored, as a shell without job control starts `cmd &`
    (Python keeps it ignored): this test once waited out its deadline, run that way."""
    proc = subprocess.Popen(
        [
            sys.executable,
            str(Path(stability.__file__)),
            "--load",
            "--runs",
            "3",
            "--runtime",
            "reference",
            "--output",
            str(tmp_path),
            "--workers",
            "0",
            "--",
            "-k",
            "test_start_makes_it_running",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_ignore_sigint if sigint == "ignored" else None,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("load: stress-ng"), line
        pgid = int(line.rsplit("(pid ", 1)[1].rstrip(")\n"))
        assert _group_alive(pgid)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=300)  # pytest ends its case first; slow on a busy machine
    finally:
        if proc.poll() is None:  # the script we started, by its pid: SIGTERM stops it and its load
            proc.terminate()
            proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "load stopped" in err
    assert not _group_alive(pgid), "Ctrl-C left stress-ng running"
    assert not (tmp_path / "stability.json").exists()


def test_cgroup_v2_runs_in_a_private_mount_namespace(tmp_path):
    import argparse

    args = argparse.Namespace(workers="2", runtime="reference", cgroup_v2=True)
    cmd = stability.pytest_command(args, tmp_path, ["-k", "x"])
    assert cmd[:4] == ["unshare", "--mount", "--propagation", "private"]
    assert "mount --bind /sys/fs/cgroup/unified /sys/fs/cgroup" in cmd[cmd.index("-c") + 1]
    assert cmd[-2:] == ["-k", "x"] and f"--results={tmp_path}" in cmd


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (a cgroup folder and a mount)")
def test_what_a_run_left_is_found_by_its_run_id_and_folder(tmp_path):
    import uuid

    from harness import _linux, host

    tag = "st" + uuid.uuid4().hex[:6]
    base = next(Path(m.mount_point) for m in host.mounts() if m.fstype in ("cgroup", "cgroup2"))
    ours, theirs = base / f"oci-harness-h{tag}-gw0-3", base / f"oci-harness-hother{tag}-gw0-3"
    (ours / "inner").mkdir(parents=True)
    theirs.mkdir()
    (tmp_path / "bundle").mkdir()
    _linux.mount("tmpfs", str(tmp_path / "bundle"), "tmpfs", 0, "size=64k")
    try:
        left = stability.left_on_host(tag, tmp_path, stability.host_values())
    finally:
        _linux.umount2(str(tmp_path / "bundle"), _linux.MNT_DETACH)
        for d in (ours / "inner", ours, theirs):
            d.rmdir()
    assert sorted(left) == sorted([f"cgroup {ours / 'inner'}", f"cgroup {ours}", f"mount {tmp_path / 'bundle'}"]), left
