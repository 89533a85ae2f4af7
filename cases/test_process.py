"""The process (config.md "Process", "POSIX process", "Linux Process", "User"): the container's
process runs the configured args with the configured environment, working directory, user,
umask, rlimits, capabilities, no_new_privs and oom_score_adj. Checked from inside (the probe's
report) and, for the pid, from outside."""

import os
import resource
import shutil
import time
from pathlib import Path

import pytest
from _errors import expect_error, expect_no_error, refused_at_create

from harness import spec
from harness.bundle import PROBE_PATH
from harness.probe import parse_report
from harness.runtime import RuntimeCallError

pytestmark = pytest.mark.requires("root")

RLIM_INFINITY = 2**64 - 1


# --------------------------------------------------------------------------------------------
# args


@pytest.mark.spec("config.process.args", "runtime.lifecycle.run-user-program")
def test_args_are_passed_exactly(runtime, run_probe):
    # Arguments with spaces, an empty one, quotes, a tab and non-ASCII text; the probe ignores
    # what it writes to /dev/null and prints its own argv.
    verbs = [
        "write",
        "/dev/null",
        "two words",
        "write",
        "/dev/null",
        "",
        "write",
        "/dev/null",
        'ünï\t"q"',
        "cat",
        "/proc/self/cmdline",
    ]
    _, out = run_probe(*verbs)
    expected = [PROBE_PATH, *verbs]
    got = out.split("\0")[:-1] if out.endswith("\0") else out.split("\0")
    assert got == expected, f"argv: expected {expected}, got {got}"


@pytest.mark.spec("config.process.args-path-lookup")
def test_args0_is_searched_in_the_path_of_process_env(runtime, bundle_factory, container_factory):
    bundle = bundle_factory()
    bin_dir = bundle.rootfs / "oci-harness-bin"
    bin_dir.mkdir()
    shutil.copy2(bundle.rootfs / PROBE_PATH.lstrip("/"), bin_dir / "probe-in-path")

    def in_path(config):
        config["process"]["args"] = ["probe-in-path", "cat", "/proc/self/cmdline"]
        config["process"]["env"] = ["PATH=/no-such-dir:/oci-harness-bin", "HOME=/"]

    bundle.edit(in_path)
    c = container_factory(bundle)
    c.create()
    c.start()
    end = c.wait()
    assert end.code in (0, None), (
        f"the probe found through PATH=/no-such-dir:/oci-harness-bin exited with {end}; stderr {c.stderr()!r}"
    )
    assert c.stdout().split("\0")[0] == "probe-in-path", f"argv[0] is not the configured name: {c.stdout()!r}"


@pytest.mark.spec("config.process.args-not-found")
def test_missing_executable_is_an_error(runtime, bundle_factory, container_factory):
    bundle = bundle_factory()
    bundle.edit(lambda config: config["process"].update(args=["/not-in-the-rootfs"]))
    expect_error(container_factory(bundle), "args[0] /not-in-the-rootfs does not exist in the rootfs")


# --------------------------------------------------------------------------------------------
# env and cwd


@pytest.mark.spec("config.process.env")
def test_env_is_exactly_the_configured_list(runtime, run_probe):
    env = ["PATH=/bin", "ZED=first-but-last-letter", "HOME=/home/nobody", "EMPTY=", "SPACES=a b  c", "EQUALS=a=b=c"]
    _, report = run_probe("report", edit=lambda config: config["process"].update(env=env))
    # environ (XBD 8.1) is a set of name=value strings: its order carries no meaning, so the
    # check is the exact strings with their multiplicity, in any order (gVisor reorders them).
    assert sorted(report["env"]) == sorted(env), f"environment: expected {env} (in any order), got {report['env']}"


@pytest.mark.spec("config.process.env")
def test_env_without_home_gets_nothing_added(runtime, run_probe):
    env = ["PATH=/bin", "ONLY=these-two"]
    _, report = run_probe("report", edit=lambda config: config["process"].update(env=env))
    assert sorted(report["env"]) == sorted(env), f"environment: expected exactly {env}, got {report['env']}"


@pytest.mark.spec("config.process.cwd")
def test_cwd_is_the_working_directory(runtime, bundle_factory, container_factory):
    bundle = bundle_factory("report")
    (bundle.rootfs / "work" / "dir").mkdir(parents=True)
    bundle.edit(lambda config: config["process"].update(cwd="/work/dir"))
    c = container_factory(bundle)
    c.create()
    c.start()
    c.wait()
    report = parse_report(c.stdout())
    assert report["cwd"] == "/work/dir", f"cwd: expected /work/dir, got {report['cwd']!r} ({report['errors']})"


@pytest.mark.spec("config.process.cwd")
def test_missing_cwd_is_made_or_an_error(runtime, bundle_factory, container_factory):
    """A cwd the rootfs lacks: runtimes make it (runc, crun) or refuse the config; the process
    must never start somewhere else."""
    bundle = bundle_factory("report", edit=lambda config: config["process"].update(cwd="/not/there/yet"))
    c = container_factory(bundle)
    try:
        c.create()
    except RuntimeCallError:
        return
    c.start()
    c.wait()
    report = parse_report(c.stdout())
    assert report["cwd"] == "/not/there/yet", (
        f"cwd /not/there/yet (missing from the rootfs): the process started in {report['cwd']!r} ({report['errors']})"
    )


@pytest.mark.spec("config.process.cwd-absolute", "config.valid-values.error")
def test_relative_cwd_is_an_error(runtime, bundle_factory, container_factory):
    bundle = bundle_factory("exit", "0")
    (bundle.rootfs / "tmp").mkdir()
    bundle.edit(lambda config: config["process"].update(cwd="tmp"), validate=False)
    expect_error(container_factory(bundle), 'process.cwd "tmp" is not absolute')


# --------------------------------------------------------------------------------------------
# user


def as_user(uid, gid, additional=None):
    def edit(config):
        user = {"uid": uid, "gid": gid}
        if additional is not None:
            user["additionalGids"] = list(additional)
        config["process"]["user"] = user

    return edit


@pytest.mark.spec("config.process.user.uid")
def test_user_uid(runtime, run_probe):
    _, report = run_probe("report", edit=as_user(1234, 2345, [3456]))
    ids = (report["uid"], report["euid"], report["suid"])
    assert ids == (1234, 1234, 1234), f"real, effective, saved uid: expected 1234, got {ids}"


@pytest.mark.spec("config.process.user.gid")
def test_user_gid(runtime, run_probe):
    _, report = run_probe("report", edit=as_user(1234, 2345, [3456]))
    ids = (report["gid"], report["egid"], report["sgid"])
    assert ids == (2345, 2345, 2345), f"real, effective, saved gid: expected 2345, got {ids}"


@pytest.mark.spec("config.process.user.additional-gids")
def test_additional_gids_are_the_groups(runtime, run_probe):
    additional = [5, 3000, 2345, 70000]
    _, report = run_probe("report", edit=as_user(1234, 2345, additional))
    # getgroups may or may not list the effective gid (POSIX leaves it open); nothing else.
    groups = set(report["groups"]) - {2345}
    assert groups == set(additional) - {2345}, (
        f"supplementary groups: expected {sorted(additional)}, got {report['groups']}"
    )


@pytest.mark.spec("config.process.user.additional-gids")
def test_no_additional_gids_means_no_groups(runtime, run_probe):
    _, report = run_probe("report", edit=as_user(1234, 2345))
    extra = set(report["groups"]) - {2345}
    assert not extra, f"without additionalGids the process has groups {report['groups']} (the runtime's groups leaked?)"


@pytest.mark.spec("config.process.user.umask")
def test_umask_is_set(runtime, run_probe):
    _, report = run_probe("report", edit=lambda config: config["process"]["user"].update(umask=0o027))
    assert report["umask"] == 0o027, f"umask: expected 0o027, got {oct(report['umask'])}"


@pytest.mark.spec("config.process.user.umask-inherited")
def test_umask_unset_is_the_callers(runtime, run_probe):
    caller = 0o037  # neither the usual 022 nor 002, nor what the probe could set by itself
    before = os.umask(caller)
    try:
        _, report = run_probe("report", edit=lambda config: config["process"]["user"].pop("umask", None))
    finally:
        os.umask(before)
    assert report["umask"] == caller, (
        f"umask without user.umask: expected the caller's {oct(caller)}, got {oct(report['umask'])}"
    )


# --------------------------------------------------------------------------------------------
# rlimits (all below the harness's own hard limits: lowering needs no privilege)

RLIMITS = [
    {"type": "RLIMIT_NOFILE", "soft": 321, "hard": 654},
    {"type": "RLIMIT_CORE", "soft": 4096, "hard": 8192},
    {"type": "RLIMIT_MSGQUEUE", "soft": 8000, "hard": 16000},
    {"type": "RLIMIT_NPROC", "soft": 1111, "hard": 2222},
    {"type": "RLIMIT_CPU", "soft": 3600, "hard": RLIM_INFINITY},
    {"type": "RLIMIT_FSIZE", "soft": RLIM_INFINITY, "hard": RLIM_INFINITY},
    {"type": "RLIMIT_MEMLOCK", "soft": 32768, "hard": 65536},
    {"type": "RLIMIT_SIGPENDING", "soft": 300, "hard": 600},
    {"type": "RLIMIT_STACK", "soft": 4 << 20, "hard": 16 << 20},
]


def set_rlimits(config):
    config["process"]["rlimits"] = [dict(r) for r in RLIMITS]


def assert_rlimits_applied(run_probe, which, field):
    """The process's ``which`` ("soft" or "hard") limits, read by getrlimit as ``field``, are the
    configured RLIMITS'."""
    _, report = run_probe("report", edit=set_rlimits)
    got = {r["type"]: (report["rlimits"].get(r["type"]) or {}).get(which) for r in RLIMITS}
    expected = {r["type"]: r[which] for r in RLIMITS}
    assert got == expected, f"{which} limits ({field}): expected {expected}, got {got}; probe errors {report['errors']}"


@pytest.mark.spec("config.process.rlimits.soft", "config.process.rlimits.getrlimit")
def test_rlimit_soft_values(runtime, run_probe):
    assert_rlimits_applied(run_probe, "soft", "rlim_cur")


@pytest.mark.spec("config.process.rlimits.hard", "config.process.rlimits.getrlimit")
def test_rlimit_hard_values(runtime, run_probe):
    assert_rlimits_applied(run_probe, "hard", "rlim_max")


@pytest.mark.spec("config.process.rlimits.hard", "runtime.create.cannot-apply")
def test_rlimit_above_the_callers_hard_limit(runtime, bundle_factory, container_factory):
    """Raising a hard limit needs CAP_SYS_RESOURCE: the runtime applies it, or generates an error."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_MSGQUEUE)
    if hard == resource.RLIM_INFINITY:
        pytest.skip("the harness's RLIMIT_MSGQUEUE hard limit is unlimited: nothing lies above it")
    wanted = {"type": "RLIMIT_MSGQUEUE", "soft": hard, "hard": hard * 2}
    bundle = bundle_factory("report", edit=lambda config: config["process"].update(rlimits=[wanted]))
    c = container_factory(bundle)
    if refused_at_create(c):
        return  # an error, and no container: allowed when the limit cannot be raised
    c.start()
    c.wait()
    got = parse_report(c.stdout())["rlimits"]["RLIMIT_MSGQUEUE"]
    assert got == {"soft": wanted["soft"], "hard": wanted["hard"]}, (
        f"create succeeded but RLIMIT_MSGQUEUE is {got}, not {wanted}"
    )


@pytest.mark.spec("config.process.rlimits.unmappable-error", "runtime.errors.no-change")
def test_unknown_rlimit_type_is_an_error(runtime, bundle_factory, container_factory):
    bundle = bundle_factory("exit", "0")
    bundle.edit(
        lambda config: config["process"]["rlimits"].append({"type": "RLIMIT_NOT_A_LIMIT", "soft": 1, "hard": 1}),
        validate=False,
    )
    expect_error(container_factory(bundle), "rlimit type RLIMIT_NOT_A_LIMIT")


@pytest.mark.spec("config.process.rlimits.duplicate-error")
def test_duplicate_rlimit_type_is_an_error(runtime, bundle_factory, container_factory):
    bundle = bundle_factory("exit", "0")
    # Both entries lower the limit (no privilege needed): only the duplication is wrong.
    duplicates = [
        {"type": "RLIMIT_NOFILE", "soft": 300, "hard": 400},
        {"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200},
    ]
    bundle.edit(lambda config: config["process"].update(rlimits=duplicates), validate=False)
    expect_error(container_factory(bundle), "two RLIMIT_NOFILE entries in process.rlimits")


@pytest.mark.spec("config.process.rlimits.unsettable-error", "runtime.errors.no-change")
def test_rlimit_soft_above_hard_is_an_error(runtime, bundle_factory, container_factory):
    # lower than the caller's limits (no privilege involved): only soft > hard is wrong
    bundle = bundle_factory("exit", "0")
    bundle.edit(
        lambda config: config["process"].update(rlimits=[{"type": "RLIMIT_NOFILE", "soft": 200, "hard": 100}]),
        validate=False,
    )
    expect_error(
        container_factory(bundle),
        "RLIMIT_NOFILE soft 200 above hard 100 (the kernel refuses it, so rlim_cur cannot match)",
    )


@pytest.mark.spec("config.process.rlimits.unsettable-error", "runtime.errors.no-change")
def test_rlimit_above_the_kernel_maximum_is_an_error(runtime, bundle_factory, container_factory):
    try:
        nr_open = int(Path("/proc/sys/fs/nr_open").read_text())
    except (OSError, ValueError):
        pytest.skip("needs /proc/sys/fs/nr_open, the kernel's maximum for RLIMIT_NOFILE")
    too_many = nr_open + 1
    bundle = bundle_factory(
        "exit",
        "0",
        edit=lambda config: config["process"].update(
            rlimits=[{"type": "RLIMIT_NOFILE", "soft": too_many, "hard": too_many}]
        ),
    )
    expect_error(
        container_factory(bundle), f"RLIMIT_NOFILE {too_many}, above the kernel's maximum fs.nr_open = {nr_open}"
    )


# --------------------------------------------------------------------------------------------
# capabilities, no_new_privs, oom_score_adj

BOUNDING = ["CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SETUID"]
INHERITABLE = ["CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
AMBIENT = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]

# Sets the kernel keeps as they are across execve (capabilities(7)): for root, permitted and
# effective are bounding | inheritable; for another user, they are the ambient set.
CAPABILITY_CONFIGS = {
    "root": (
        0,
        {
            "bounding": BOUNDING,
            "effective": BOUNDING,
            "inheritable": INHERITABLE,
            "permitted": BOUNDING,
            "ambient": AMBIENT,
        },
    ),
    "non-root": (
        1000,
        {
            "bounding": BOUNDING,
            "effective": AMBIENT,
            "inheritable": INHERITABLE,
            "permitted": AMBIENT,
            "ambient": AMBIENT,
        },
    ),
}


@pytest.mark.parametrize("user", list(CAPABILITY_CONFIGS))
@pytest.mark.spec("config.process.capabilities.sets")
def test_capability_sets(runtime, run_probe, user):
    uid, sets = CAPABILITY_CONFIGS[user]

    def edit(config):
        config["process"]["user"] = {"uid": uid, "gid": uid}
        config["process"]["capabilities"] = {name: list(caps) for name, caps in sets.items()}

    _, report = run_probe("report", edit=edit)
    wrong = {
        name: {"expected": sorted(caps), "got": report["capabilities"][name]}
        for name, caps in sets.items()
        if report["capabilities"][name] != sorted(caps)
    }
    assert not wrong, f"capability sets of a uid {uid} process differ from the config: {wrong}"


@pytest.mark.spec("config.process.capabilities.unmappable-warning")
def test_unknown_capability_is_only_a_warning(runtime, bundle_factory, container_factory):
    def edit(config):
        for name in ("bounding", "effective", "permitted"):
            config["process"]["capabilities"][name] = ["CAP_KILL", "CAP_NOT_A_CAPABILITY", "CAP_CHOWN"]
        config["process"]["capabilities"]["inheritable"] = []
        config["process"]["capabilities"]["ambient"] = []

    bundle = bundle_factory("report")
    bundle.edit(edit, validate=False)
    c = container_factory(bundle)
    expect_no_error(c, "an unknown capability must be a warning, and the operation must go on; it failed")
    c.wait()
    caps = parse_report(c.stdout())["capabilities"]
    for name in ("bounding", "effective", "permitted"):
        assert caps[name] == ["CAP_CHOWN", "CAP_KILL"], (
            f"{name}: expected the known capabilities CAP_CHOWN, CAP_KILL, got {caps[name]}"
        )


def _host_bounding_set() -> set[str]:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            mask = int(line.split()[1], 16)
            return {name for bit, name in enumerate(spec.CAPABILITIES) if mask >> bit & 1}
    return set(spec.CAPABILITIES)


@pytest.mark.spec("config.process.capabilities.ungrantable-no-fail", "config.process.capabilities.unmappable-warning")
def test_ungrantable_capability_does_not_fail(runtime, bundle_factory, container_factory):
    missing = sorted(
        set(spec.CAPABILITIES[: int(Path("/proc/sys/kernel/cap_last_cap").read_text()) + 1]) - _host_bounding_set()
    )
    if not missing:
        pytest.skip("the harness holds every capability the kernel knows: none is ungrantable here")
    ungrantable = missing[0]

    def edit(config):
        for name in ("bounding", "effective", "permitted"):
            config["process"]["capabilities"][name] = ["CAP_KILL", ungrantable]
        config["process"]["capabilities"]["inheritable"] = []
        config["process"]["capabilities"]["ambient"] = []

    c = container_factory(bundle_factory("report", edit=edit))
    expect_no_error(
        c,
        f"{ungrantable} is not in the runtime's bounding set and cannot be granted; the runtime failed instead of warning",
    )
    c.wait()
    caps = parse_report(c.stdout())["capabilities"]
    assert "CAP_KILL" in caps["effective"], f"the grantable CAP_KILL is missing: {caps}"


@pytest.mark.parametrize("value", [True, False], ids=["true", "false"])
@pytest.mark.spec("config.process.no-new-privileges")
def test_no_new_privileges(runtime, run_probe, value):
    _, report = run_probe("report", edit=lambda config: config["process"].update(noNewPrivileges=value))
    assert report["no_new_privs"] is value, f"noNewPrivileges {value}: no_new_privs is {report['no_new_privs']}"


@pytest.mark.spec("config.process.oom-score-adj.set")
def test_oom_score_adj_is_set(runtime, run_probe):
    # Raising the value needs no privilege; lowering it below the caller's would.
    _, report = run_probe("report", edit=lambda config: config["process"].update(oomScoreAdj=423))
    assert report["oom_score_adj"] == 423, (
        f"oom_score_adj: expected 423, got {report['oom_score_adj']} ({report['errors']})"
    )


@pytest.mark.spec("config.process.oom-score-adj.unchanged")
def test_oom_score_adj_unset_is_unchanged(runtime, run_probe):
    # a caller's value that is not the default 0, so that "reset to 0" shows; ours is put back
    own = Path("/proc/self/oom_score_adj")
    before = own.read_text()
    own.write_text("211")
    try:
        caller = int(own.read_text())
        _, report = run_probe("report", edit=lambda config: config["process"].pop("oomScoreAdj", None))
    finally:
        own.write_text(before)
    assert report["oom_score_adj"] == caller, (
        f"oom_score_adj without oomScoreAdj: expected the caller's {caller}, got {report['oom_score_adj']}"
    )


# --------------------------------------------------------------------------------------------
# the pid


@pytest.mark.spec("runtime.state.pid")
def test_pid_file_names_the_container_process(runtime, bundle_factory, container_factory):
    bundle = bundle_factory("write", "/ready", "1", "pause")
    c = container_factory(bundle)
    c.create()
    pid = int(c.pid_file.read_text())
    assert pid == c.state().pid, f"--pid-file holds {pid}, state says {c.state().pid}"
    c.start()
    # the probe's ready mark says the user program runs (no `state` poll for "running" needed)
    assert _poll_file(bundle.rootfs / "ready"), "the probe never started"
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
    assert cmdline == [PROBE_PATH.encode(), b"write", b"/ready", b"1", b"pause"], (
        f"pid {pid} from --pid-file runs {cmdline}, not the user program"
    )
    c.kill("TERM")
    c.wait()


def _poll_file(path: Path, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    delay = 0.002
    while not path.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
    return True
