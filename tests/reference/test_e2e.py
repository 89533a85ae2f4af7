"""End-to-end: real containers, as root.  Each test's runtime root is a temporary
directory; the `rt` fixture force-deletes whatever is left and checks no mount leaked."""

import array
import json
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest


def test_version_and_features(rt):
    p = rt("--version", check=True) if False else rt.__class__(rt.root)("features", check=True)
    f = json.loads(p.stdout)
    assert f["ociVersionMax"] == "1.3.0"
    assert "createRuntime" in f["hooks"]
    assert "CAP_SYS_ADMIN" in f["linux"]["capabilities"]


def test_run_static_binary(rt, static_bundle):
    b = static_bundle().write()
    p = rt("run", "--bundle", b.path, "s1", check=True)
    assert p.stdout == "hi\n"
    assert rt.ids() == []


def test_run_alpine_shell(rt, alpine_bundle):
    b = alpine_bundle(["sh", "-c", "echo hi; hostname; cat /proc/1/cmdline; true"]).write()
    p = rt("run", "--bundle", b.path, "a1", check=True)
    lines = p.stdout.splitlines()
    assert lines[0] == "hi"
    assert lines[1] == "refhost"
    assert lines[2].startswith("sh\0-c")  # the user program is pid 1 of its pid namespace


def test_run_exit_status(rt, alpine_bundle):
    b = alpine_bundle(["sh", "-c", "exit 7"]).write()
    assert rt("run", "--bundle", b.path, "x1").returncode == 7


def test_lifecycle(rt, static_bundle, tmp_path):
    b = static_bundle(["/hello", "sleep", "100"]).write()
    pidfile = tmp_path / "pid"
    rt("create", "--bundle", b.path, "--pid-file", pidfile, "c1", check=True)
    st = rt.state("c1")
    assert st["status"] == "created"
    assert st["bundle"] == str(b.path)
    assert st["id"] == "c1"
    assert int(pidfile.read_text()) == st["pid"]
    # the init waits: no exec yet
    with open(f"/proc/{st['pid']}/cmdline", "rb") as f:
        assert b"sleep" not in f.read()
    assert rt("create", "--bundle", b.path, "c1").returncode != 0  # id in use
    assert rt("delete", "c1").returncode != 0  # created: not stopped
    rt("start", "c1", check=True)
    assert rt.state("c1")["status"] == "running"
    with open(f"/proc/{st['pid']}/cmdline", "rb") as f:
        assert f.read().startswith(b"/hello\0sleep")
    r = rt("start", "c1")
    assert r.returncode != 0 and r.stderr.startswith("oci-reference: ")
    assert rt("delete", "c1").returncode != 0  # running
    rt("kill", "c1", "KILL", check=True)
    rt.wait_status("c1", "stopped")  # nobody waited for it
    assert rt("kill", "c1").returncode != 0
    rt("delete", "c1", check=True)
    assert rt("state", "c1").returncode != 0


def test_kill_created_container_with_term(rt, static_bundle):
    b = static_bundle(["/hello", "sleep", "100"]).write()
    rt("create", "--bundle", b.path, "k1", check=True)
    rt("kill", "k1", "--signal", "SIGTERM", check=True)
    rt.wait_status("k1", "stopped")
    rt("delete", "k1", check=True)


def test_delete_force(rt, static_bundle):
    b = static_bundle(["/hello", "sleep", "100"]).write()
    rt("create", "--bundle", b.path, "f1", check=True)
    rt("start", "f1", check=True)
    pid = rt.state("f1")["pid"]
    rt("delete", "--force", "f1", check=True)
    assert not os.path.exists(f"/proc/{pid}/status") or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[1][:3]


@pytest.mark.parametrize(
    "args",
    [["state", "nope"], ["start", "nope"], ["kill", "nope"], ["delete", "nope"], ["state", "a/b"], ["create", ".."]],
)
def test_errors_are_one_line(rt, args):
    p = rt(*args)
    assert p.returncode != 0
    assert p.stderr.startswith("oci-reference: ") and p.stderr.count("\n") == 1


def test_missing_executable_fails_at_create(rt, alpine_bundle):
    b = alpine_bundle(["no-such-program"]).write()
    p = rt("create", "--bundle", b.path, "m1")
    assert p.returncode != 0
    assert "no-such-program" in p.stderr
    assert rt.ids() == []


def test_stdio_goes_to_create_files(rt, alpine_bundle, tmp_path):
    b = alpine_bundle(["sh", "-c", "read x; echo out:$x; echo err >&2"]).write()
    inp, out, err = tmp_path / "in", tmp_path / "out", tmp_path / "err"
    inp.write_text("hello\n")
    with open(inp) as i, open(out, "w") as o, open(err, "w") as e:
        p = subprocess.run(
            [
                str(rt.__class__.__call__.__globals__["LAUNCHER"]),
                "--root",
                str(rt.root),
                "create",
                "--bundle",
                str(b.path),
                "io1",
            ],
            stdin=i,
            stdout=o,
            stderr=e,
            timeout=30,
        )
    assert p.returncode == 0
    rt("start", "io1", check=True)
    rt.wait_status("io1", "stopped")
    assert out.read_text() == "out:hello\n"
    assert err.read_text() == "err\n"
    rt("delete", "io1", check=True)


def test_process_attributes(rt, alpine_bundle):
    b = alpine_bundle(
        [
            "sh",
            "-c",
            "id -u; id -g; id -G; umask; pwd; ulimit -n; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; cat /proc/self/oom_score_adj; echo $FOO",
        ]
    )
    p = b.config["process"]
    p["user"] = {"uid": 1000, "gid": 1001, "additionalGids": [5, 6], "umask": 0o027}
    p["cwd"] = "/tmp/work"
    p["env"].append("FOO=bar")
    p["oomScoreAdj"] = 123
    p["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256}]
    b.write()
    out = rt("run", "--bundle", b.path, "p1", check=True).stdout.split("\n")
    assert out[0:3] == ["1000", "1001", "1001 5 6"]
    assert out[3] == "0027"
    assert out[4] == "/tmp/work"
    assert out[5] == "256"
    assert out[6] == "CapEff:\t0000000000000000"  # non-root without ambient caps: cleared at exec
    assert out[7] == "NoNewPrivs:\t1"
    assert out[8] == "123"
    assert out[9] == "bar"


def test_namespaces_are_new(rt, static_bundle):
    b = static_bundle(["/hello", "sleep", "100"]).write()
    rt("create", "--bundle", b.path, "n1", check=True)
    pid = rt.state("n1")["pid"]
    for ns in ("pid", "net", "ipc", "uts", "mnt"):
        assert os.readlink(f"/proc/{pid}/ns/{ns}") != os.readlink(f"/proc/self/ns/{ns}"), ns
    assert os.readlink(f"/proc/{pid}/ns/user") == os.readlink("/proc/self/ns/user")
    rt("delete", "--force", "n1", check=True)


def test_mounts_masked_readonly_and_binds(rt, alpine_bundle, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "f").write_text("data\n")
    b = alpine_bundle(
        [
            "sh",
            "-c",
            "cat /mnt/in/f; touch /mnt/in/g 2>/dev/null && echo RW || echo RO; "
            "cat /proc/kcore | wc -c; echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null || echo SYSRO; "
            "touch /x 2>/dev/null || echo ROOTRO; grep ' /tmp ' /proc/mounts",
        ]
    )
    b.config["mounts"] += [
        {"destination": "/mnt/in", "type": "none", "source": str(shared), "options": ["rbind", "ro"]},
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "size=1m"]},
    ]
    b.write()
    out = rt("run", "--bundle", b.path, "mt1", check=True).stdout.split("\n")
    assert out[0:5] == ["data", "RO", "0", "SYSRO", "ROOTRO"]
    assert "tmpfs /tmp tmpfs rw,nosuid" in out[5]


def test_symlink_cannot_escape_rootfs(rt, static_bundle, tmp_path):
    b = static_bundle()
    victim = tmp_path / "victim"
    victim.mkdir()
    (b.path / "rootfs" / "escape").symlink_to(victim)  # absolute symlink out of the rootfs
    b.config["mounts"].append({"destination": "/escape/sub", "type": "tmpfs", "source": "tmpfs"})
    b.write()
    rt("run", "--bundle", b.path, "sy1", check=True)
    assert list(victim.iterdir()) == []  # the mount went to rootfs/<victim path>, not the host
    assert (b.path / "rootfs" / str(victim).lstrip("/") / "sub").is_dir()


def test_hooks_run_in_order_with_state(rt, alpine_bundle, tmp_path):
    log = tmp_path / "hooks.log"
    b = alpine_bundle(["sh", "-c", "true"])
    hooks = {}
    for name in ("prestart", "createRuntime", "createContainer", "poststart", "poststop"):
        hooks[name] = [{"path": "/bin/sh", "args": ["sh", "-c", f"(echo {name}; cat; echo) >> {log}"]}]
    b.config["hooks"] = hooks
    b.write()
    rt("create", "--bundle", b.path, "hk1", check=True)
    rt("start", "hk1", check=True)
    rt.wait_status("hk1", "stopped")
    rt("delete", "hk1", check=True)
    lines = log.read_text().split("\n")
    names = lines[0::2][:5]
    assert names == ["prestart", "createRuntime", "createContainer", "poststart", "poststop"]
    states = [json.loads(x) for x in lines[1::2][:5]]
    assert [s["status"] for s in states] == ["creating", "creating", "creating", "running", "stopped"]
    assert all(s["id"] == "hk1" and s["bundle"] == str(b.path) for s in states)


def test_failing_hook_undoes_create(rt, static_bundle):
    b = static_bundle()
    b.config["hooks"] = {"createRuntime": [{"path": "/bin/false"}]}
    b.write()
    p = rt("create", "--bundle", b.path, "hf1")
    assert p.returncode != 0 and "createRuntime" in p.stderr
    assert rt.ids() == []


def _children_of(pid):
    """pid -> state of the processes whose parent is `pid` (zombies included)."""
    found = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    data = f.read()
            except OSError:
                continue
            fields = data[data.rindex(")") + 2 :].split()
            if int(fields[1]) == pid:
                found[int(name)] = fields[0]
    return found


def test_create_failing_after_the_fork_leaves_no_process(rt, static_bundle):
    # the resources fail to apply while the init is already being built; create must end
    # and reap both children, handing no process (not even a zombie) to whoever adopts
    # orphans. This test process adopts them while it runs (child subreaper), so only the
    # orphans of its own creates can show up, whatever runs beside it.
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_child_subreaper = 36
    b = static_bundle()
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        b.config["linux"]["resources"] = {"unified": {"nosuchcontroller.max": "1"}}
    else:
        # a CPU this host does not have: the kernel refuses the write to cpuset.cpus
        b.config["linux"]["resources"] = {"cpu": {"cpus": "64-65"}}
    b.config["linux"]["cgroupsPath"] = "/oci-reference-test/fail1"
    b.write()
    earlier = _children_of(os.getpid())  # unwaited children of earlier tests are not ours
    assert libc.prctl(pr_set_child_subreaper, 1, 0, 0, 0) == 0
    adopted = {}
    try:
        for i in range(5):
            p = rt("create", "--bundle", b.path, f"fa{i}")
            assert p.returncode == 1 and p.stderr.count("\n") == 1, p.stderr
        time.sleep(0.1)
        adopted = {pid: state for pid, state in _children_of(os.getpid()).items() if pid not in earlier}
    finally:
        libc.prctl(pr_set_child_subreaper, 0, 0, 0, 0)
        for pid in adopted:
            if adopted[pid] != "Z":
                os.kill(pid, 9)
            os.waitpid(pid, 0)
    assert not adopted, f"failed creates left processes behind (pid: state): {adopted}"
    assert rt.ids() == []
    assert not os.path.exists("/sys/fs/cgroup/pids/oci-reference-test/fail1")
    assert not os.path.exists("/sys/fs/cgroup/oci-reference-test/fail1")


def test_an_early_init_failure_is_reported_in_its_own_words(rt, static_bundle):
    # the init fails at its first mount, possibly before create has even answered P1: the
    # error must still be the init's, never a broken pipe or a reset connection
    b = static_bundle()
    b.config["mounts"].insert(
        0, {"destination": "/x", "type": "bind", "source": "/nonexistent/src", "options": ["bind"]}
    )
    b.write()
    for i in range(20):
        p = rt("create", "--bundle", b.path, f"ef{i}")
        assert p.returncode == 1
        assert p.stderr == "oci-reference: bind source /nonexistent/src: No such file or directory\n", p.stderr
    assert rt.ids() == []


def test_hook_timeout(rt, static_bundle):
    b = static_bundle()
    b.config["hooks"] = {"prestart": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]}
    b.write()
    t = time.monotonic()
    p = rt("create", "--bundle", b.path, "ht1")
    assert p.returncode != 0 and "timed out" in p.stderr
    assert time.monotonic() - t < 15


def test_cgroup_limits(rt, static_bundle):
    b = static_bundle(["/hello", "sleep", "100"])
    b.config["linux"]["resources"] = {"memory": {"limit": 64 << 20}, "pids": {"limit": 50}, "cpu": {"shares": 512}}
    b.config["linux"]["cgroupsPath"] = "/oci-reference-test/cg1"
    b.write()
    rt("create", "--bundle", b.path, "cg1", check=True)
    pid = rt.state("cg1")["pid"]
    with open(f"/proc/{pid}/cgroup") as f:
        cg = f.read()
    assert "/oci-reference-test/cg1" in cg
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        base = "/sys/fs/cgroup/oci-reference-test/cg1"
        assert Path(base + "/memory.max").read_text().strip() == str(64 << 20)
        assert Path(base + "/pids.max").read_text().strip() == "50"
    else:
        assert Path("/sys/fs/cgroup/memory/oci-reference-test/cg1/memory.limit_in_bytes").read_text().strip() == str(
            64 << 20
        )
        assert Path("/sys/fs/cgroup/pids/oci-reference-test/cg1/pids.max").read_text().strip() == "50"
        assert Path("/sys/fs/cgroup/cpu/oci-reference-test/cg1/cpu.shares").read_text().strip() == "512"
    rt("delete", "--force", "cg1", check=True)
    assert not os.path.exists("/sys/fs/cgroup/pids/oci-reference-test/cg1")
    assert not os.path.exists("/sys/fs/cgroup/oci-reference-test/cg1")
    # the parent this container created goes too, once empty
    assert not os.path.exists("/sys/fs/cgroup/pids/oci-reference-test")
    assert not os.path.exists("/sys/fs/cgroup/oci-reference-test")


@pytest.mark.parametrize("cgroupns", [False, True])
def test_run_init_is_in_its_cgroups_before_the_program(rt, alpine_bundle, cgroupns):
    # create moves the init into its cgroups while the init builds the rootfs; by the time
    # the program runs it is there, and a new cgroup namespace is rooted at that cgroup
    b = alpine_bundle(["cat", "/proc/self/cgroup"])
    b.config["linux"]["cgroupsPath"] = "/oci-reference-test/ns1"
    if cgroupns:
        b.config["linux"]["namespaces"].append({"type": "cgroup"})
    b.write()
    lines = rt("run", "--bundle", b.path, "ns1", check=True).stdout.splitlines()
    assert lines
    for line in lines:
        path = line.split(":", 2)[2]
        assert path == ("/" if cgroupns else "/oci-reference-test/ns1"), lines
    assert not os.path.exists("/sys/fs/cgroup/pids/oci-reference-test")


def test_cgroup_folders_do_not_take_the_callers_umask(rt, static_bundle):
    # a parent made under umask 077 would be 0700, and later user-namespaced containers
    # sharing it (host uid 100000, no rights on host-owned folders) could not bind their group
    b = static_bundle(["/hello", "sleep", "100"])
    b.config["linux"]["cgroupsPath"] = f"/oci-reference-test-umask-{os.getpid()}/um1"
    b.write()
    old = os.umask(0o077)
    try:
        rt("create", "--bundle", b.path, "um1", check=True)
    finally:
        os.umask(old)
    made = [
        f"{m}/oci-reference-test-umask-{os.getpid()}"
        for m in ("/sys/fs/cgroup", *(f"/sys/fs/cgroup/{h}" for h in os.listdir("/sys/fs/cgroup")))
    ]
    made = [p for p in made if os.path.isdir(p)]
    modes = {p: oct(os.stat(p).st_mode & 0o777) for p in made + [p + "/um1" for p in made]}
    rt("delete", "--force", "um1", check=True)
    assert made and set(modes.values()) == {"0o755"}, modes


def _default_parents():
    return [p for p in ("/sys/fs/cgroup/oci-reference", "/sys/fs/cgroup/pids/oci-reference") if os.path.isdir(p)]


def test_default_cgroup_parent_removed_when_empty(rt, static_bundle):
    def others():  # groups of containers not made by this test (another run may share the parent)
        return {n for p in _default_parents() for n in os.listdir(p) if os.path.isdir(f"{p}/{n}")} - {"dp1", "dp2"}

    b = static_bundle(["/hello", "sleep", "100"]).write()
    rt("create", "--bundle", b.path, "dp1", check=True)
    rt("create", "--bundle", b.path, "dp2", check=True)
    rt("delete", "--force", "dp1", check=True)
    assert _default_parents(), "the default parent went while dp2 still uses it"
    rt("delete", "--force", "dp2", check=True)
    if not others():
        assert not _default_parents(), "the empty default parent cgroup was left behind"


def test_user_namespace(rt, alpine_bundle):
    b = alpine_bundle(["sh", "-c", "id -u; cat /proc/self/uid_map"])
    b.config["linux"]["namespaces"].append({"type": "user"})
    # container root is host root (so it can reach the 0700 pytest tmp dirs); the rest is shifted
    maps = [{"containerID": 0, "hostID": 0, "size": 1}, {"containerID": 1, "hostID": 200001, "size": 65535}]
    b.config["linux"]["uidMappings"] = maps
    b.config["linux"]["gidMappings"] = maps
    b.write()
    out = rt("run", "--bundle", b.path, "u1", check=True).stdout.split("\n")
    assert out[0] == "0"
    assert out[1].split() == ["0", "0", "1"]
    assert out[2].split() == ["1", "200001", "65535"]


def test_time_namespace(rt, alpine_bundle):
    b = alpine_bundle(["sh", "-c", "cut -d. -f1 /proc/uptime"])
    b.config["linux"]["namespaces"].append({"type": "time"})
    b.config["linux"]["timeOffsets"] = {"boottime": {"secs": 1000000, "nanosecs": 0}}
    b.write()
    up = int(rt("run", "--bundle", b.path, "tn1", check=True).stdout)
    assert up >= 1000000


def test_seccomp_errno(rt, alpine_bundle):
    b = alpine_bundle(["sh", "-c", "mkdir /tmp/x 2>&1 || true"], readonly=False)
    b.config["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"})
    b.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}],
    }
    b.write()
    out = rt("run", "--bundle", b.path, "sc1", check=True).stdout
    assert "Operation not permitted" in out


def test_terminal_with_console_socket(rt, alpine_bundle, tmp_path):
    b = alpine_bundle(["sh", "-c", "tty; echo done"])
    b.config["process"]["terminal"] = True
    b.write()
    sock_path = str(tmp_path / "console.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(1)
    got = {}

    def accept():
        conn, _ = srv.accept()
        fds = array.array("i")
        _msg, anc, _, _ = conn.recvmsg(1024, socket.CMSG_SPACE(4))
        for _level, _typ, data in anc:
            fds.frombytes(data[: len(data) - len(data) % 4])
        got["fd"] = fds[0]
        conn.close()

    t = threading.Thread(target=accept)
    t.start()
    rt("create", "--bundle", b.path, "--console-socket", sock_path, "tty1", check=True)
    t.join(10)
    srv.close()
    master = got["fd"]
    try:
        rt("start", "tty1", check=True)
        data = b""
        deadline = time.monotonic() + 10
        while b"done" not in data and time.monotonic() < deadline:
            try:
                chunk = os.read(master, 1024)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
        assert b"/dev/pts/0" in data
    finally:
        os.close(master)
    rt.wait_status("tty1", "stopped")
    rt("delete", "tty1", check=True)


def test_join_namespace_by_path(rt, static_bundle):
    b1 = static_bundle(["/hello", "sleep", "100"]).write()
    rt("create", "--bundle", b1.path, "j1", check=True)
    pid = rt.state("j1")["pid"]
    b2 = static_bundle(["/hello", "sleep", "100"])
    b2.config["linux"]["namespaces"] = [{"type": "mount"}, {"type": "network", "path": f"/proc/{pid}/ns/net"}]
    b2.config["hostname"] = None
    b2.write()
    rt("create", "--bundle", b2.path, "j2", check=True)
    pid2 = rt.state("j2")["pid"]
    assert os.readlink(f"/proc/{pid2}/ns/net") == os.readlink(f"/proc/{pid}/ns/net")
    rt("delete", "--force", "j2", check=True)
    rt("delete", "--force", "j1", check=True)
