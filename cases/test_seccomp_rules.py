"""Seccomp rules in their less common forms (config-linux.md "Seccomp"): the default action
for every syscall no rule names, each argument operator at its boundary, a rule naming several
syscalls, the kill actions, and a filter without noNewPrivileges.

The probe's `exit N` ends in exit_group(N), whose first argument the case chooses: a rule
killing the process at exit_group when the argument compares as given shows exactly which
values a filter matched."""

import ctypes
import errno
import os
import signal

import pytest

pytestmark = pytest.mark.requires("root")

ALLOW, ERRNO, KILL_PROCESS = "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL_PROCESS"


def profile(*rules, **fields):
    return {"defaultAction": ALLOW, **fields, "syscalls": list(rules)}


def with_seccomp(seccomp, **process):
    def edit(config):
        config["linux"]["seccomp"] = seccomp
        config["process"].update(process)

    return edit


def run_to_end(bundle_factory, container_factory, *verbs, edit):
    c = container_factory(bundle_factory(*verbs, edit=edit))
    c.create()
    c.start()
    return c, c.wait()


def native_syscall_names():
    """Every syscall name libseccomp knows on this machine's architecture."""
    try:
        lib = ctypes.CDLL("libseccomp.so.2")
    except OSError:
        pytest.skip("libseccomp.so.2 is not installed: cannot list this architecture's syscalls")
    lib.seccomp_syscall_resolve_num_arch.restype = ctypes.c_void_p
    lib.seccomp_syscall_resolve_num_arch.argtypes = (ctypes.c_uint32, ctypes.c_int)
    libc = ctypes.CDLL(None)
    libc.free.argtypes = (ctypes.c_void_p,)
    names = []
    for nr in range(1024):
        p = lib.seccomp_syscall_resolve_num_arch(0, nr)  # 0: SCMP_ARCH_NATIVE
        if p:
            names.append(ctypes.string_at(p).decode())
            libc.free(p)
    return names


@pytest.mark.spec("linux.seccomp.applied")
def test_default_action_applies_to_every_unnamed_syscall(runtime, run_probe):
    # default: fail with EOPNOTSUPP; one rule allows every syscall but getcwd
    allowed = [n for n in native_syscall_names() if n != "getcwd"]
    seccomp = {
        "defaultAction": ERRNO,
        "defaultErrnoRet": errno.EOPNOTSUPP,
        "syscalls": [{"names": allowed, "action": ALLOW}],
    }
    _, report = run_probe("report", edit=with_seccomp(seccomp))
    expected = f"getcwd: {os.strerror(errno.EOPNOTSUPP)}"
    assert report["cwd"] is None and report["errors"].get("cwd") == expected, (
        f"getcwd is named by no rule, so defaultAction applies: expected {expected!r}; cwd {report['cwd']!r}, error {report['errors'].get('cwd')!r}"
    )


@pytest.mark.spec("linux.seccomp.applied", "config.process.no-new-privileges")
def test_filter_applies_without_no_new_privileges(runtime, run_probe):
    # a syscall neither the probe nor a runtime's init makes: runc loads a filter without
    # no_new_privs before its last checks (getcwd among them)
    rule = {"names": ["acct"], "action": ERRNO, "errnoRet": errno.EOPNOTSUPP}
    _, report = run_probe("report", edit=with_seccomp(profile(rule), noNewPrivileges=False))
    assert report["seccomp"] == 2, (
        f"with noNewPrivileges false the process's seccomp mode is {report['seccomp']}, expected 2 (filter)"
    )


@pytest.mark.spec("linux.seccomp.applied", "linux.seccomp.errno-ret")
def test_rule_naming_several_syscalls_applies_to_each(runtime, run_probe):
    rule = {"names": ["sethostname", "getcwd", "setdomainname"], "action": ERRNO, "errnoRet": errno.EOPNOTSUPP}
    _, report = run_probe("report", edit=with_seccomp(profile(rule)))
    assert report["errors"].get("cwd") == f"getcwd: {os.strerror(errno.EOPNOTSUPP)}", (
        f"getcwd is the second name of the rule and should fail with EOPNOTSUPP: cwd {report['cwd']!r}, errors {report['errors']}"
    )


# (operator, value, valueTwo, an exit status the rule must not match, one it must match)
OPERATORS = [
    ("SCMP_CMP_NE", 5, 0, 5, 4),
    ("SCMP_CMP_LT", 5, 0, 5, 4),
    ("SCMP_CMP_LE", 5, 0, 6, 5),
    ("SCMP_CMP_EQ", 5, 0, 4, 5),
    ("SCMP_CMP_GE", 5, 0, 4, 5),
    ("SCMP_CMP_GT", 5, 0, 5, 6),
    ("SCMP_CMP_MASKED_EQ", 4, 4, 3, 6),  # (arg & 4) == 4
]


@pytest.mark.parametrize("op,value,value_two,unmatched,matched", OPERATORS, ids=[o[0] for o in OPERATORS])
@pytest.mark.spec("linux.seccomp.args")
def test_argument_operator_at_its_boundary(
    runtime, bundle_factory, container_factory, op, value, value_two, unmatched, matched
):
    rule = {
        "names": ["exit_group"],
        "action": KILL_PROCESS,
        "args": [{"index": 0, "op": op, "value": value, "valueTwo": value_two}],
    }
    for status, killed in ((unmatched, False), (matched, True)):
        _, end = run_to_end(bundle_factory, container_factory, "exit", str(status), edit=with_seccomp(profile(rule)))
        if killed:
            assert end.signal == signal.SIGSYS, (
                f"exit_group({status}) matches {op} {value}/{value_two}: expected death by SIGSYS, got {end}"
            )
        else:
            assert end.code == status, (
                f"exit_group({status}) does not match {op} {value}/{value_two}: expected exit status {status}, got {end}"
            )


@pytest.mark.parametrize("action", ["SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP"])
@pytest.mark.spec("linux.seccomp.actions")
def test_kill_and_trap_actions_end_the_process_with_sigsys(runtime, bundle_factory, container_factory, action):
    rule = {"names": ["exit_group"], "action": action}
    _, end = run_to_end(bundle_factory, container_factory, "exit", "3", edit=with_seccomp(profile(rule)))
    assert end.signal == signal.SIGSYS, f"{action} on exit_group: the process should die of SIGSYS, it ended with {end}"
