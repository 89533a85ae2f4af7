"""The runtime adapter, against fake runtimes (small scripts) that misbehave on purpose."""

import json
import os
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from harness import _linux, host, runtime
from harness.runtime import (
    Container,
    Runtime,
    RuntimeCallError,
    RuntimeDefinition,
    RuntimeNotFound,
    RuntimeTimeout,
    State,
    process,
)


def fake_runtime(tmp_path: Path, body: str, name: str = "fakert") -> Path:
    """A runtime binary whose behaviour is the Python ``body`` (argv in ``args``)."""
    path = tmp_path / name
    path.write_text(f"#!{sys.executable}\nimport sys, json, os, time\nargs = sys.argv[1:]\n" + textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def make(tmp_path, body, **defn) -> Runtime:
    binary = fake_runtime(tmp_path, body)
    return Runtime(RuntimeDefinition(name="fakert", binary=str(binary), **defn), tmp_path / "state")


def test_argv_has_global_args_and_state_root(tmp_path):
    rt = make(tmp_path, "print(json.dumps(args))", global_args=("--network=none",), root_flag="--state-dir")
    assert rt.argv("start", "x") == [rt.binary, "--network=none", "--state-dir", str(tmp_path / "state"), "start", "x"]
    out = rt.call("start", "x").stdout.decode()
    assert json.loads(out) == ["--network=none", "--state-dir", str(tmp_path / "state"), "start", "x"]


def test_failed_call_carries_command_exit_code_and_stderr(tmp_path):
    rt = make(tmp_path, "sys.stderr.write('container xyz does not exist\\n'); sys.exit(3)")
    with pytest.raises(RuntimeCallError) as err:
        rt.start("xyz")
    e = err.value
    assert e.returncode == 3 and "does not exist" in e.stderr
    assert e.argv[-2:] == ["start", "xyz"]
    assert "fakert" in str(e) and "exit code: 3" in str(e) and "does not exist" in str(e)


def test_hanging_runtime_times_out(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_TIMEOUT_SCALE", "1")
    rt = make(tmp_path, "time.sleep(60)")
    rt.timeout = 0.5
    with pytest.raises(RuntimeTimeout, match=r"timeout: state gave no answer within 0.5 s \(0.5 s\); killed"):
        rt.state("x")


def test_a_timed_out_call_ends_although_a_child_holds_its_pipes(tmp_path, monkeypatch):
    """A runtime that hangs after starting a process which keeps its stdout and stderr open
    (as a container init can): the call is killed at its deadline and reported, instead of
    waiting for end of file on pipes the child never closes."""
    monkeypatch.setenv("HARNESS_TIMEOUT_SCALE", "1")
    marker = tmp_path / "child.pid"
    rt = make(
        tmp_path,
        f"""
        if os.fork() == 0:
            os.setsid()
            open({str(marker)!r}, "w").write(str(os.getpid()))
            time.sleep(60)
            os._exit(0)
        sys.stderr.write("started a child\\n"); sys.stderr.flush()
        time.sleep(60)
        """,
    )
    rt.timeout = 0.5
    try:
        started = time.monotonic()
        with pytest.raises(RuntimeTimeout, match=r"state gave no answer within 0\.5 s"):
            rt.state("x")
        assert time.monotonic() - started < 0.5 + process.KILLED_PIPE_GRACE + 5
    finally:
        if marker.exists():
            os.kill(int(marker.read_text()), 9)


def test_deadlines_scale_with_the_machine(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_TIMEOUT_SCALE", "2")
    rt = make(tmp_path, "time.sleep(60)")
    rt.timeout = 0.25
    with pytest.raises(
        RuntimeTimeout, match=r"timeout: state gave no answer within 0.5 s \(0.25 s x 2 for this machine's load"
    ):
        rt.state("x")
    monkeypatch.delenv("HARNESS_TIMEOUT_SCALE")
    import harness.runtime as hr
    import harness.runtime.adapter as adapter

    monkeypatch.setattr(adapter.os, "getloadavg", lambda: (100.0, 0.0, 0.0))
    assert hr.timeout_scale() == hr.MAX_SCALE  # a hang is still reported, later
    monkeypatch.setattr(adapter.os, "getloadavg", lambda: (0.1, 0.0, 0.0))
    assert hr.timeout_scale() == 1.0
    monkeypatch.setenv("HARNESS_TIMEOUT_SCALE", "fast")
    with pytest.raises(hr.HarnessError, match="HARNESS_TIMEOUT_SCALE"):
        hr.timeout_scale()


def test_a_given_runtime_timeout_is_not_scaled(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_TIMEOUT_SCALE", "8")
    rt = make(tmp_path, "time.sleep(60)")
    rt.timeout, rt.timeout_given = 0.5, True  # as --runtime-timeout 0.5
    with pytest.raises(RuntimeTimeout, match=r"within 0.5 s \(0.5 s\)"):
        rt.state("x")


@pytest.mark.parametrize(
    "output, problem",
    [
        ("garbage{", "not JSON"),
        ("[1, 2]", "not a state object"),
        ('{"id": 5, "status": "running"}', "not a state object"),
        ("", "not JSON"),
    ],
)
def test_garbage_state_is_an_error_naming_the_runtime(tmp_path, output, problem):
    rt = make(tmp_path, f"print({output!r})")
    with pytest.raises(RuntimeCallError, match=problem) as err:
        rt.state("x")
    assert str(err.value).startswith("fakert:")


def test_state_parses_fields():
    st = State.parse(
        json.dumps(
            {
                "ociVersion": "1.0.2",
                "id": "a",
                "status": "created",
                "pid": 42,
                "bundle": "/b",
                "annotations": {"k": "v"},
            }
        ),
        runtime="r",
        argv=[],
    )
    assert (st.oci_version, st.id, st.status, st.pid, st.bundle, st.annotations) == (
        "1.0.2",
        "a",
        "created",
        42,
        "/b",
        {"k": "v"},
    )
    st = State.parse('{"id": "a", "status": "stopped", "pid": 0}', runtime="r", argv=[])
    assert st.pid is None and st.bundle is None and st.annotations == {}


def test_kill_passes_signal_names(tmp_path):
    log = tmp_path / "log"
    rt = make(tmp_path, f"open({str(log)!r}, 'a').write(' '.join(args[2:]) + '\\n')")
    rt.kill("x", "SIGUSR1")
    rt.kill("x", 9)
    rt.kill("x")
    assert log.read_text().splitlines() == ["kill x USR1", "kill x KILL", "kill x TERM"]


def test_delete_force_flags_come_from_the_definition(tmp_path):
    log = tmp_path / "log"
    rt = make(tmp_path, f"open({str(log)!r}, 'a').write(' '.join(args[2:]) + '\\n')", delete_force=("-f",))
    rt.delete("x")
    rt.delete("x", force=True)
    assert log.read_text().splitlines() == ["delete x", "delete -f x"]


def test_missing_binary_is_runtime_not_found(tmp_path):
    d = RuntimeDefinition(name="ghost", binary="ghost-runtime-not-installed", debian_package="ghost")
    with pytest.raises(RuntimeNotFound, match="apt-get install ghost"):
        Runtime(d, tmp_path)


def test_resolve_known_names_paths_and_unknown(tmp_path):
    assert runtime.resolve("runc").name == "runc"
    assert runtime.resolve("crun").private_mount_namespace is not None
    with pytest.raises(RuntimeNotFound, match=r"unknown runtime 'nope'.*known runtimes are .*runc"):
        runtime.resolve("nope")
    with pytest.raises(RuntimeNotFound, match="no executable file"):
        runtime.resolve(str(tmp_path / "missing"))
    binary = fake_runtime(tmp_path, "pass", name="myrt")
    d = runtime.resolve(str(binary))
    assert (d.name, d.binary) == ("myrt", str(binary))


def test_a_binary_path_with_a_known_name_keeps_its_quirks(tmp_path):
    binary = fake_runtime(tmp_path, "pass", name="runsc")
    d = runtime.resolve(str(binary))
    assert d.binary == str(binary) and "--network=none" in d.global_args


def test_every_shipped_definition_loads():
    defs = runtime.load_definitions()
    assert {"runc", "crun", "runsc", "youki"} <= set(defs)
    for d in defs.values():
        assert d.binary and d.root_flag.startswith("-")


def test_bad_definition_is_a_clear_error(tmp_path):
    (tmp_path / "broken.toml").write_text("name = 'broken'\n")
    with pytest.raises(runtime.HarnessError, match=r"broken.toml: missing or invalid field 'binary'"):
        runtime.load_definitions(tmp_path)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to unshare the mount namespace")
@pytest.mark.requires("root")
def test_private_mount_namespace_quirk_hides_mounts_from_the_runtime_only(tmp_path):
    # The test's own mount (any other mount point may be another run's, gone mid-test), made in a
    # forked child's private mount namespace: if the test is killed, the mount dies with the child
    # instead of staying on the host.
    target = str(tmp_path / "hidden")
    os.mkdir(target)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report the first failed check on the pipe, exit 0 when all hold
        try:
            os.close(read_end)
            from harness import _linux

            _linux.private_mount_namespace()
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "harness-test", target], check=True)
            quirk = runtime.PrivateMountNamespace(frozenset({host.cgroup_mode()}), (target,), "test")
            rt = make(tmp_path, "print(open('/proc/self/mountinfo').read())", private_mount_namespace=quirk)
            inside = rt.call("x").stdout.decode()
            assert f" {target} " not in inside, f"{target} is still mounted for the runtime"
            assert target in [m.mount_point for m in host.mounts()], "the test's namespace lost the mount"
            rt_plain = make(tmp_path, "print(open('/proc/self/mountinfo').read())")
            assert f" {target} " in rt_plain.call("x").stdout.decode(), "a runtime without the quirk lost the mount"
        except BaseException as failure:  # everything goes back to the parent
            os.write(write_end, f"{type(failure).__name__}: {failure}".encode())
            os._exit(1)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        message = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, message or f"the child ended with status {status}"
    assert target not in [m.mount_point for m in host.mounts()], "the test's mount reached the host"


def test_container_create_gives_stdio_files_and_separates_runtime_messages(tmp_path):
    # A fake create: writes a message as the runtime, then "the container" writes later.
    body = """
    if args[2] == 'create':
        sys.stderr.write('runtime: creating\\n'); sys.stderr.flush()
        pid_file = args[args.index('--pid-file') + 1]
        open(pid_file, 'w').write(str(os.getpid()))
    elif args[2] == 'state':
        print(json.dumps({'ociVersion': '1.0.2', 'id': args[-1], 'status': 'created', 'pid': 1}))
    """
    rt = make(tmp_path, body)
    c = Container(rt, "c1", tmp_path, tmp_path / "io")
    c.create()
    assert c.create_stderr == "runtime: creating\n"
    with open(c.stderr_path, "ab") as f:
        f.write(b"from the container\n")
    assert c.stderr() == "from the container\n"
    assert c.pid and c.pid > 0


def test_failed_create_reports_runtime_stderr(tmp_path):
    rt = make(tmp_path, "sys.stderr.write('bad config: no rootfs\\n') if args[2] == 'create' else None; sys.exit(1)")
    c = Container(rt, "c1", tmp_path, tmp_path / "io")
    with pytest.raises(RuntimeCallError, match="create failed") as err:
        c.create()
    assert "bad config: no rootfs" in err.value.stderr and "bad config" in str(err.value)
    assert not c.created


def test_cleanup_kills_a_process_the_runtime_lost_track_of(tmp_path):
    # create starts a long-lived detached "container" process, then the runtime forgets it.
    body = """
    import subprocess
    if args[2] == 'create':
        p = subprocess.Popen(['sleep', '300'], start_new_session=True)
        open(args[args.index('--pid-file') + 1], 'w').write(str(p.pid))
    else:
        sys.exit('no such container')
    """
    rt = make(tmp_path, body)
    c = Container(rt, "lost", tmp_path, tmp_path / "io")
    c.create()
    pid = c.pid
    assert process.alive(pid)
    with pytest.warns(UserWarning, match="still runs; killing it"):
        c.cleanup()
    assert not process.alive(pid), f"process {pid} was left running"


def test_cleanup_kills_waits_for_the_process_then_deletes_without_force(tmp_path):
    # A created container is stopped with the spec's `kill KILL`, its process collected (the
    # whole thread group gone, so its cgroup is empty), and only then deleted, without
    # --force: runc 1.1.5 removes the cgroup of a killed created container as soon as the
    # init's main thread is a zombie, and on cgroup v2 leaves it behind when other threads
    # still exit.
    log = tmp_path / "calls"
    body = f"""
    import signal, subprocess
    pidfile = {str(tmp_path / "initpid")!r}
    verb = args[2]
    if verb == 'create':
        p = subprocess.Popen(['sleep', '300'], start_new_session=True)
        open(args[args.index('--pid-file') + 1], 'w').write(str(p.pid))
        open(pidfile, 'w').write(str(p.pid))
    pid = int(open(pidfile).read())
    if verb == 'kill':
        os.kill(pid, getattr(signal, 'SIG' + args[4]))
    with open({str(log)!r}, 'a') as f:
        f.write(' '.join(a for a in args[2:] if not a.startswith('/')) + (' (process gone)' if not os.path.exists(f'/proc/{{pid}}') else '') + '\\n')
    """
    rt = make(tmp_path, body)
    was_subreaper = _linux.is_child_subreaper()
    _linux.set_child_subreaper()  # as in a harness session: the container's process is ours to collect
    try:
        c = Container(rt, "ctr", tmp_path, tmp_path / "io")
        c.create()
        c.cleanup()
    finally:
        _linux.set_child_subreaper(was_subreaper)
    assert log.read_text().splitlines() == [
        "create --bundle --pid-file ctr",
        "kill ctr KILL",
        "delete ctr (process gone)",
    ]
    assert c.exit is not None and c.exit.signal == 9


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make cgroups")
def test_cleanup_removes_the_cgroups_of_a_lost_container(tmp_path):
    mounts = [m for m in host.mounts() if m.fstype in ("cgroup", "cgroup2")]
    base = next((m.mount_point for m in mounts if "pids" in m.super_options), None) or next(
        m.mount_point for m in mounts if m.fstype == "cgroup2"
    )
    cid = f"lostcg-{os.getpid()}"
    body = f"""
    import subprocess
    if args[2] == 'create':
        os.makedirs({base!r} + '/{cid}', exist_ok=True)
        p = subprocess.Popen(['sleep', '300'], start_new_session=True)
        open({base!r} + '/{cid}/cgroup.procs', 'w').write(str(p.pid))
        open(args[args.index('--pid-file') + 1], 'w').write(str(p.pid))
    else:
        sys.exit('no such container')
    """
    rt = make(tmp_path, body)
    c = Container(rt, cid, tmp_path, tmp_path / "io")
    try:
        c.create()
        assert Path(base, cid) in c.cgroups
        with pytest.warns(UserWarning):
            c.cleanup()
        assert not Path(base, cid).exists(), "the lost container's cgroup was left behind"
    finally:
        if Path(base, cid).exists():
            Path(base, cid).rmdir()


def test_config_version_quirk_rewrites_only_the_harness_default(tmp_path):
    import json

    from harness import spec
    from harness.runtime import ConfigVersion

    rt = make(tmp_path, "pass", config_version=ConfigVersion("1.1.0", "refuses newer versions"))
    bundles = {}
    for name, version in (("ours", spec.OCI_VERSION), ("chosen", "1.2.0")):
        b = tmp_path / name
        b.mkdir()
        (b / "config.json").write_text(json.dumps({"ociVersion": version}))
        bundles[name] = b
        rt.argv("create", "--bundle", str(b), "id")
    assert json.loads((bundles["ours"] / "config.json").read_text())["ociVersion"] == "1.1.0"
    assert json.loads((bundles["chosen"] / "config.json").read_text())["ociVersion"] == "1.2.0"
