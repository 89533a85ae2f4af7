"""Unit tests: config validation, JSON, signals, ids and the status state machine."""

import json
import os
import time

import pytest
from oci_reference import config, jsonlite, oslite, signals, state
from oci_reference.errors import ConfigError, RuntimeFailure

from conftest import base_config


@pytest.fixture
def bundle(tmp_path):
    (tmp_path / "rootfs").mkdir()
    return tmp_path


def check(bundle, cfg):
    return config.validate(json.loads(json.dumps(cfg)), str(bundle))


def test_valid_config_is_normalised(bundle):
    c = check(bundle, base_config(["/hello"]))
    assert c.root_path == str(bundle / "rootfs")
    assert c.process["args"] == ["/hello"]
    assert c.process["umask"] is None  # unset: the caller's umask is kept
    assert c.new_ns("pid") and not c.ns("user")[0]
    assert c.mounts[0]["destination"] == "/proc"


def test_unknown_properties_are_ignored(bundle):
    cfg = base_config(["/hello"])
    cfg["somethingNew"] = {"x": 1}
    cfg["process"]["futureField"] = True
    cfg["linux"]["aFutureLinuxField"] = {"eth0": {}}
    check(bundle, cfg)


@pytest.mark.parametrize(
    "edit, path",
    [
        (lambda c: c["process"].__setitem__("cwd", "relative"), "process.cwd"),
        (lambda c: c["process"].__setitem__("args", []), "process.args"),
        (
            lambda c: c["process"]["rlimits"].append({"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}),
            "process.rlimits[1].type",
        ),
        (
            lambda c: c["process"]["rlimits"].append({"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1}),
            "process.rlimits[1].type",
        ),
        (lambda c: c["linux"]["namespaces"].append({"type": "pid"}), "linux.namespaces[5].type"),
        (lambda c: c["linux"]["namespaces"].append({"type": "bogus"}), "linux.namespaces[5].type"),
        (lambda c: c.__setitem__("ociVersion", "2.0.0"), "ociVersion"),
        (lambda c: c["root"].__setitem__("path", "missing"), "root.path"),
        (lambda c: c["process"].__setitem__("terminal", "yes"), "process.terminal"),
        (lambda c: c["mounts"].append({"destination": "/x", "type": "none", "options": ["bind"]}), "mounts[5].source"),
        (lambda c: c["process"].__setitem__("selinuxLabel", "x"), "process.selinuxLabel"),
        (lambda c: c["linux"].__setitem__("sysctl", {"kernel.panic": "1"}), "linux.sysctl.kernel.panic"),
        (lambda c: c["linux"].__setitem__("rootfsPropagation", "sideways"), "linux.rootfsPropagation"),
        (lambda c: c.__setitem__("hooks", {"prestart": [{"path": "rel"}]}), "hooks.prestart[0].path"),
        (
            lambda c: c.__setitem__("hooks", {"poststop": [{"path": "/bin/true", "timeout": 0}]}),
            "hooks.poststop[0].timeout",
        ),
    ],
)
def test_invalid_values_name_their_path(bundle, edit, path):
    cfg = base_config(["/hello"])
    edit(cfg)
    with pytest.raises(ConfigError) as e:
        check(bundle, cfg)
    assert e.value.path == path, str(e.value)


def test_unknown_capability_is_a_warning(bundle):
    cfg = base_config(["/hello"])
    cfg["process"]["capabilities"]["bounding"].append("CAP_NOPE")
    c = check(bundle, cfg)
    assert "CAP_NOPE" not in c.process["capabilities"]["bounding"]
    assert any("CAP_NOPE" in w for w in c.warnings), c.warnings


@pytest.mark.parametrize("action", ["SCMP_ACT_ALLOW", "SCMP_ACT_KILL"])
def test_errno_ret_needs_an_errno_action(bundle, action):
    cfg = base_config(["/hello"])
    cfg["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getcwd"], "action": action, "errnoRet": 1}],
    }
    with pytest.raises(ConfigError) as e:
        check(bundle, cfg)
    assert e.value.path == "linux.seccomp.syscalls[0].errnoRet"
    cfg["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1}
    with pytest.raises(ConfigError) as e:
        check(bundle, cfg)
    assert e.value.path == "linux.seccomp.defaultErrnoRet"


def test_hostname_needs_uts_namespace(bundle):
    cfg = base_config(["/hello"])
    cfg["linux"]["namespaces"] = [{"type": "mount"}]
    with pytest.raises(ConfigError, match="hostname"):
        check(bundle, cfg)
    cfg["hostname"] = None
    cfg["domainname"] = "example.org"
    with pytest.raises(ConfigError, match="domainname"):
        check(bundle, cfg)


def test_user_namespace_needs_mappings(bundle):
    cfg = base_config(["/hello"])
    cfg["linux"]["namespaces"].append({"type": "user"})
    with pytest.raises(ConfigError, match="uidMappings"):
        check(bundle, cfg)


def test_idmapped_mount_validation(bundle):
    maps = [{"containerID": 0, "hostID": 2000, "size": 10}]

    def with_mount(**extra):
        cfg = base_config(["/hello"])
        cfg["mounts"].append(
            {"destination": "/data", "type": "bind", "source": "/tmp", "options": ["rbind", "idmap"], **extra}
        )
        return cfg

    c = check(bundle, with_mount(uidMappings=maps, gidMappings=maps))
    assert c.mounts[-1]["idmap"] == {"recursive": False, "uid": [(0, 2000, 10)], "gid": [(0, 2000, 10)]}
    assert "idmap" not in c.mounts[-1]["options"]  # never passed to mount(2)
    with pytest.raises(ConfigError, match="must be specified along with gidMappings"):
        check(bundle, with_mount(uidMappings=maps))
    with pytest.raises(ConfigError, match="needs a user namespace"):
        check(bundle, with_mount())
    cfg = with_mount()
    cfg["linux"]["namespaces"].append({"type": "user"})
    cfg["linux"]["uidMappings"] = cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    assert check(bundle, cfg).mounts[-1]["idmap"]["uid"] == [(0, 100000, 65536)]  # the user namespace's mapping


def test_net_devices_validation(bundle):
    cfg = base_config(["/hello"])
    cfg["linux"]["netDevices"] = {"eth0": {"name": "ctr0"}, "eth1": {}}
    assert check(bundle, cfg).net_devices == {"eth0": "ctr0", "eth1": None}
    cfg["linux"]["netDevices"] = {"eth0": {"name": "a/b"}}
    with pytest.raises(ConfigError, match="not a valid network device name"):
        check(bundle, cfg)
    cfg["linux"]["netDevices"] = {"eth0": {}}
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "network"]
    with pytest.raises(ConfigError, match="needs a network namespace"):
        check(bundle, cfg)


def test_seccomp_validation(bundle):
    cfg = base_config(["/hello"])
    cfg["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_NOPE"}
    with pytest.raises(ConfigError, match=r"linux.seccomp.defaultAction"):
        check(bundle, cfg)
    cfg["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}]}
        ],
    }
    with pytest.raises(ConfigError, match=r"syscalls\[0\]\.args\[0\]\.index"):
        check(bundle, cfg)


def test_jsonlite_round_trip():
    doc = {"a": [1, 2.5, True, None, 'é\n"x"'], "b": {}, "c": [], "n": -3}
    for indent in (None, 2):
        text = jsonlite.dumps(doc, indent=indent)
        assert json.loads(text) == doc
        assert jsonlite.loads(text) == doc
    for bad in ("{", "[1,]", "1 2", ""):
        with pytest.raises(ValueError):
            jsonlite.loads(bad)


PATHS = ["", "/", "//", "///a", "a", "a/", "/a/b/", "a//b", "/a/./b/../c", "../x", "./", ".", "a/..", "/..", "é/x"]


def test_oslite_matches_os():
    """The create path's `os` (oslite) gives the same paths as `os` itself."""
    for p in PATHS:
        for f in ("split", "dirname", "basename", "normpath", "abspath"):
            assert getattr(oslite.path, f)(p) == getattr(os.path, f)(p), (f, p)
        for q in PATHS:
            assert oslite.path.join(p, q) == os.path.join(p, q), (p, q)
            assert oslite.path.join(p, q, "z") == os.path.join(p, q, "z"), (p, q)
    assert oslite.path.relpath("/a/b/c", "/a") == "b/c"
    assert oslite.fsencode("\udcffé") == os.fsencode("\udcffé")
    assert oslite.open is os.open and oslite._exit is os._exit and oslite.O_PATH == os.O_PATH


def test_oslite_file_checks_and_makedirs(tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    for p in (str(tmp_path), str(f), str(tmp_path / "missing"), str(f / "below"), "bad\0name"):
        assert oslite.path.exists(p) == os.path.exists(p), p
        assert oslite.path.isdir(p) == os.path.isdir(p), p
    deep = str(tmp_path / "a" / "b" / "c")
    oslite.makedirs(deep, 0o700)
    assert os.path.isdir(deep) and os.stat(deep).st_mode & 0o777 == 0o700
    oslite.makedirs(deep, 0o700, exist_ok=True)
    with pytest.raises(FileExistsError):
        oslite.makedirs(deep)
    with pytest.raises(FileExistsError):
        oslite.makedirs(str(f), exist_ok=True)  # a file is not a folder


@pytest.mark.parametrize(
    "text, num", [("TERM", 15), ("SIGTERM", 15), ("sigkill", 9), ("9", 9), ("SIGRTMIN+2", 36), ("USR1", 10)]
)
def test_signal_names(text, num):
    assert signals.parse(text) == num


@pytest.mark.parametrize("bad", ["", "NOPE", "0", "65", "SIGRTMAX+1"])
def test_bad_signals(bad):
    with pytest.raises(RuntimeFailure):
        signals.parse(bad)


@pytest.mark.parametrize("cid", ["a", "A-b_c.d+e", "x" * 100])
def test_valid_ids(cid):
    state.validate_id(cid)


@pytest.mark.parametrize("cid", ["", ".", "..", "a/b", "a b", "é", "a\n"])
def test_invalid_ids(cid):
    with pytest.raises(RuntimeFailure):
        state.validate_id(cid)


def test_status_follows_the_process(tmp_path):
    pid = os.fork()
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    try:
        start = state.proc_stat(pid)[1]
        st = {"id": "x", "status": "created", "pid": pid, "startTime": start}
        assert state.status(st) == "created"
        st["status"] = "running"
        assert state.status(st) == "running"
        # a different start time means the pid was reused: the container is gone
        assert state.status(dict(st, startTime=start + 1)) == "stopped"
        os.kill(pid, 9)
        deadline = time.monotonic() + 10
        while state.proc_stat(pid)[0] != "Z":  # unreaped: a zombie counts as exited
            assert time.monotonic() < deadline
            time.sleep(0.005)
        assert state.status(st) == "stopped"
        assert state.public(st)["status"] == "stopped"
    finally:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
    assert state.status(st) == "stopped"


def test_state_save_and_load(tmp_path):
    (tmp_path / "c1").mkdir()
    st = {"ociVersion": "1.2.0", "id": "c1", "status": "created", "pid": 0, "bundle": "/b", "annotations": {"k": "v"}}
    state.save(str(tmp_path), st)
    assert state.load(str(tmp_path), "c1") == st
    with pytest.raises(RuntimeFailure, match="does not exist"):
        state.load(str(tmp_path), "c2")
    pub = state.public(st)
    assert set(pub) >= {"ociVersion", "id", "status", "pid", "bundle", "annotations"}


HYBRID = "9:name=systemd:/\n8:pids:/\n4:memory:/a/b\n1:cpu:/\n0::/user.slice/x\n"
PURE_V2 = "0::/user.slice/x\n"
V1_ONLY = "3:cpu,cpuacct:/\n2:name=systemd:/s\n1:pids:/p\n"


@pytest.mark.parametrize(
    "text, present, expected",
    [
        (HYBRID, {"/sys/fs/cgroup/unified/cgroup.procs"}, "/sys/fs/cgroup/unified/user.slice/x/cgroup.procs"),
        (PURE_V2, {"/sys/fs/cgroup/cgroup.procs"}, "/sys/fs/cgroup/user.slice/x/cgroup.procs"),
        # a single-controller v1 hierarchy, never a joint or named one
        (V1_ONLY, {"/sys/fs/cgroup/pids/p/cgroup.procs"}, "/sys/fs/cgroup/pids/p/cgroup.procs"),
        ("0::/\n", {"/sys/fs/cgroup/cgroup.procs"}, "/sys/fs/cgroup/cgroup.procs"),
        (HYBRID, set(), None),  # nothing mounted: no warm-up, no error
        ("", {"/sys/fs/cgroup/cgroup.procs"}, None),
    ],
)
def test_warmup_target(text, present, expected):
    from oci_reference import warmup

    assert warmup.target(text, present.__contains__) == expected


def test_v2_missing_controller_is_named(tmp_path):
    from oci_reference import cgroups

    (tmp_path / "cgroup.subtree_control").write_text("hugetlb\n")
    leaf = tmp_path / "c1"
    leaf.mkdir()
    with pytest.raises(
        RuntimeFailure, match=r"pids\.max: the pids controller is not available to .*c1 \(enabled for it: hugetlb\)"
    ):
        cgroups._apply_v2(str(leaf), {"pids": {"limit": 10}})
    (leaf / "pids.max").write_text("max")
    cgroups._apply_v2(str(leaf), {"pids": {"limit": 10}})
    assert (leaf / "pids.max").read_text() == "10"


def test_no_mount_namespace_refuses_only_what_needs_a_mount(bundle):
    """An unlisted mount namespace is inherited (config-linux.md#namespaces); nothing may then
    be mounted, so what needs a mount is refused by name."""
    cfg = base_config(["/hello"])
    cfg["linux"]["namespaces"] = [{"type": t} for t in ("pid", "uts")]
    with pytest.raises(ConfigError) as e:
        check(bundle, cfg)
    assert e.value.path == "mounts" and "mount namespace" in str(e.value)
    cfg["mounts"] = []
    cfg["linux"].pop("maskedPaths", None)
    cfg["linux"].pop("readonlyPaths", None)
    cfg["root"]["readonly"] = False
    c = check(bundle, cfg)
    assert not c.ns("mount")[0]
