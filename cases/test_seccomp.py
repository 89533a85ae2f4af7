"""Seccomp (config-linux.md "Seccomp"): the profile puts a filter on the container process;
matched calls get the rule's action (an errno, or death by SIGSYS), arguments narrow a rule, and
what the runtime cannot apply is an error. The probe's `report` calls getcwd (its "cwd" and the
error recorded when that fails) and reads the seccomp mode from /proc/self/status."""

import errno
import os
import signal

import pytest
from _errors import expect_create_error, refused_at_create

from harness.probe import parse_report
from harness.runtime import RuntimeCallError

pytestmark = pytest.mark.requires("root")

ALLOW, ERRNO = "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO"
O_CREAT = 0o100  # asm-generic value, x86_64 and arm64 alike


def profile(*rules, **fields):
    return {"defaultAction": ALLOW, **fields, "syscalls": list(rules)}


def with_seccomp(seccomp):
    return lambda config: config["linux"].__setitem__("seccomp", seccomp)


@pytest.mark.spec("linux.seccomp.applied")
def test_seccomp_filter_installed(runtime, run_probe):
    _, report = run_probe("report", edit=with_seccomp(profile({"names": ["getcwd"], "action": ERRNO})))
    assert report["seccomp"] == 2, f"the process's seccomp mode is {report['seccomp']}, expected 2 (filter)"


@pytest.mark.spec("linux.seccomp.errno-ret")
def test_errno_rule_returns_errno_ret(runtime, run_probe):
    _, report = run_probe(
        "report", edit=with_seccomp(profile({"names": ["getcwd"], "action": ERRNO, "errnoRet": errno.EOPNOTSUPP}))
    )
    expected = f"getcwd: {os.strerror(errno.EOPNOTSUPP)}"
    assert report["cwd"] is None and report["errors"].get("cwd") == expected, (
        f"getcwd should fail with {expected!r}; cwd {report['cwd']!r}, error {report['errors'].get('cwd')!r}"
    )


@pytest.mark.spec("linux.seccomp.errno-ret-default")
def test_errno_rule_defaults_to_eperm(runtime, run_probe):
    _, report = run_probe("report", edit=with_seccomp(profile({"names": ["getcwd"], "action": ERRNO})))
    expected = f"getcwd: {os.strerror(errno.EPERM)}"
    assert report["cwd"] is None and report["errors"].get("cwd") == expected, (
        f"getcwd should fail with {expected!r}; cwd {report['cwd']!r}, error {report['errors'].get('cwd')!r}"
    )


@pytest.mark.spec("linux.seccomp.args")
def test_rule_arguments_narrow_the_match(runtime, bundle_factory, container_factory):
    # openat(dirfd, path, flags, mode): refuse only the opens that create (flags & O_CREAT).
    rule = {
        "names": ["openat"],
        "action": ERRNO,
        "errnoRet": errno.EMLINK,
        "args": [{"index": 2, "value": O_CREAT, "valueTwo": O_CREAT, "op": "SCMP_CMP_MASKED_EQ"}],
    }
    c = container_factory(
        bundle_factory("cat", "/proc/self/comm", "write", "/made", "x", edit=with_seccomp(profile(rule)))
    )
    c.create()
    c.start()
    end = c.wait()
    assert c.stdout() == "probe\n", (
        f"an open without O_CREAT was refused too: stdout {c.stdout()!r}, stderr {c.stderr()!r}"
    )
    assert end.code == 1 and os.strerror(errno.EMLINK) in c.stderr(), (
        f"the creating open should fail with {os.strerror(errno.EMLINK)!r}; exit {end}, stderr {c.stderr()!r}"
    )
    assert not (c.bundle / "rootfs" / "made").exists()


@pytest.mark.spec("linux.seccomp.actions")
def test_kill_process_action(runtime, bundle_factory, container_factory):
    rule = {"names": ["getcwd"], "action": "SCMP_ACT_KILL_PROCESS"}
    c = container_factory(bundle_factory("report", edit=with_seccomp(profile(rule))))
    c.create()
    c.start()
    end = c.wait()
    assert end.signal == signal.SIGSYS, f"the process should die of SIGSYS at getcwd; it ended with {end}"


@pytest.mark.parametrize("action", ["SCMP_ACT_ALLOW", "SCMP_ACT_KILL"])
@pytest.mark.spec("linux.seccomp.errno-unsupported", "runtime.errors.no-change")
def test_errno_ret_on_action_without_errno_is_an_error(runtime, bundle_factory, container_factory, action):
    rule = {"names": ["getcwd"], "action": action, "errnoRet": errno.EPERM}
    bundle = bundle_factory("exit", "0", edit=with_seccomp(profile(rule)))
    expect_create_error(container_factory(bundle), f"errnoRet is given for {action}, which returns no errno")


@pytest.mark.spec("linux.seccomp.default-errno-unsupported", "runtime.errors.no-change")
def test_default_errno_ret_with_allow_is_an_error(runtime, bundle_factory, container_factory):
    bundle = bundle_factory("exit", "0", edit=with_seccomp(profile(defaultErrnoRet=errno.EPERM)))
    expect_create_error(container_factory(bundle), "defaultErrnoRet is given with defaultAction SCMP_ACT_ALLOW")


UNKNOWN = {
    "action": profile({"names": ["getcwd"], "action": "SCMP_ACT_NO_SUCH_ACTION"}),
    "default-action": {"defaultAction": "SCMP_ACT_NO_SUCH_ACTION"},
    "architecture": profile({"names": ["getcwd"], "action": ERRNO}, architectures=["SCMP_ARCH_NO_SUCH_ARCH"]),
    "operator": profile(
        {"names": ["getcwd"], "action": ERRNO, "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_NO_SUCH_OP"}]}
    ),
}


@pytest.mark.parametrize("what", list(UNKNOWN))
@pytest.mark.spec("runtime.create.cannot-apply", "runtime.lifecycle.create-error", "runtime.errors.no-change")
def test_unknown_seccomp_constant_is_an_error(runtime, bundle_factory, container_factory, what):
    bundle = bundle_factory("exit", "0")
    bundle.edit(with_seccomp(UNKNOWN[what]), validate=False)  # the schema's enums refuse it: the runtime must too
    expect_create_error(container_factory(bundle), f"the profile holds an unknown {what}")


# --------------------------------------------------------------------------------------------
# SCMP_ACT_NOTIFY: the container process state goes to a seccomp agent at listenerPath


class Agent:
    """A seccomp agent: accepts connections on a unix socket and keeps what each one carried.

    It closes every received seccomp fd at once, so notified calls fail with ENOSYS instead of
    waiting for an answer.
    """

    def __init__(self, path):
        import socket
        import threading

        self.path = str(path)
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.path)
        self.server.listen(4)
        self.server.settimeout(0.2)
        self.connections = []  # (payload bytes, fd count, number of messages carrying fds)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        import array
        import socket

        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(10)
                payload, fds, messages_with_fds = b"", 0, 0
                try:
                    while True:
                        data, ancdata, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(16 * 4))
                        for level, kind, blob in ancdata:
                            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                                received = array.array("i")
                                received.frombytes(blob[: len(blob) - len(blob) % 4])
                                for fd in received:
                                    os.close(fd)
                                fds += len(received)
                                messages_with_fds += 1
                        if not data:
                            break
                        payload += data
                except OSError:
                    pass
                self.connections.append((payload, fds, messages_with_fds))

    def wait_for(self, count, timeout=10.0):
        """Wait (with a deadline) until ``count`` connections have been read to their end: the
        agent's thread records one only after the runtime closed it."""
        import time

        deadline = time.monotonic() + timeout
        while len(self.connections) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return len(self.connections)

    def close(self):
        self._stop.set()
        self.server.close()
        self._thread.join(timeout=5)


@pytest.fixture
def seccomp_agent(tmp_path):
    agent = Agent(tmp_path / "agent.sock")
    yield agent
    agent.close()


def notify_profile(listener_path):
    return profile(
        {"names": ["getcwd"], "action": "SCMP_ACT_NOTIFY"},
        listenerPath=str(listener_path),
        listenerMetadata="case=notify",
    )


@pytest.mark.spec(
    "linux.seccomp.listener-socket", "linux.seccomp.listener-one-state", "linux.seccomp.process-state-format"
)
def test_notify_sends_process_state_to_listener(runtime, bundle_factory, container_factory, seccomp_agent):
    import json

    c = container_factory(bundle_factory("report", edit=with_seccomp(notify_profile(seccomp_agent.path))))
    c.create()
    c.start()
    end = c.wait()
    assert end.code == 0, f"the probe ended with {end}; stderr {c.stderr()!r}"
    report = parse_report(c.stdout())
    assert seccomp_agent.wait_for(1) == 1, f"expected one connection to the agent, got {len(seccomp_agent.connections)}"
    payload, fds, messages_with_fds = seccomp_agent.connections[0]
    state = json.loads(payload)
    assert state.get("fds") == ["seccompFd"] and fds == 1, (
        f"expected one fd named seccompFd; state fds {state.get('fds')}, {fds} fds received"
    )
    assert messages_with_fds == 1
    assert state.get("pid") == c.pid, f"state pid {state.get('pid')}, container pid {c.pid}"
    assert state.get("metadata") == "case=notify", f"metadata {state.get('metadata')!r}"
    assert isinstance(state.get("ociVersion"), str)
    assert state.get("state", {}).get("id") == c.id, f"the container state sent is {state.get('state')}"
    assert report["errors"].get("cwd") == f"getcwd: {os.strerror(errno.ENOSYS)}", (
        f"with the agent gone, the notified getcwd should fail with ENOSYS; cwd error {report['errors'].get('cwd')!r}"
    )


@pytest.mark.spec("linux.seccomp.listener-send-fails", "runtime.errors.no-change")
def test_notify_without_listener_is_an_error(runtime, bundle_factory, container_factory, tmp_path, seccomp_agent):
    """config-linux.md#seccomp: "If sending to this socket fails, the runtime MUST generate an
    error." The spec does not say which operation sends the state (the filter may be loaded
    at create or at start), so either may fail. The same profile with an agent listening must
    work: only then is the failure the send's, not the profile's or the action's."""
    control = container_factory(bundle_factory("exit", "0", edit=with_seccomp(notify_profile(seccomp_agent.path))))
    try:
        control.create()
        control.start()
    except RuntimeCallError as err:
        pytest.fail(
            f"the notify profile fails even with an agent listening at listenerPath, so a failure without one says nothing about the send: {err}"
        )
    control.wait()
    bundle = bundle_factory("write", "/ran", "yes", edit=with_seccomp(notify_profile(tmp_path / "nobody-listens.sock")))
    c = container_factory(bundle)
    if refused_at_create(c):
        return
    with pytest.raises(RuntimeCallError):
        c.start()
        pytest.fail("create and start succeeded although nothing listens at listenerPath")
    assert not (bundle.rootfs / "ran").exists(), "the user program ran although the seccomp state could not be sent"
