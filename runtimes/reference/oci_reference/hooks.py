"""Running lifecycle hooks: the state on stdin, the hook's own args, env and timeout.

No `subprocess` (slow to import): fork, exec, and wait with a deadline on a pidfd.
"""

from oci_reference import jsonlite
from oci_reference import oslite as os  # not `os` itself: see oslite
from oci_reference.errors import HookFailure, RuntimeFailure


def run_hook(hook, state, kind):
    """Run one hook; raise RuntimeFailure if it cannot start, fails or times out."""
    data = jsonlite.dumps(state).encode()
    rfd, wfd = os.pipe()
    path = hook["path"]
    args = hook.get("args") or [path]
    env = {}
    for e in hook.get("env") or ():
        k, _, v = e.partition("=")
        env[k] = v
    errr, errw = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(wfd)
            os.close(errr)
            os.dup2(rfd, 0)
            os.execve(path, args, env)
        except BaseException as e:  # report why exec failed, then leave
            try:
                os.write(errw, (getattr(e, "strerror", None) or str(e)).encode())
            finally:
                os._exit(127)
    os.close(rfd)
    os.close(errw)
    try:
        try:
            os.write(wfd, data)
        except BrokenPipeError:
            pass
    finally:
        os.close(wfd)
    err = os.read(errr, 4096)
    os.close(errr)
    timeout = hook.get("timeout")
    status = _wait(pid, timeout)
    if err:
        raise HookFailure(f"{kind} hook {path}: cannot execute: {err.decode(errors='replace')}")
    if status is None:
        raise HookFailure(f"{kind} hook {path}: timed out after {timeout}s")
    if os.WIFSIGNALED(status):
        raise HookFailure(f"{kind} hook {path}: killed by signal {os.WTERMSIG(status)}")
    code = os.WEXITSTATUS(status)
    if code != 0:
        raise HookFailure(f"{kind} hook {path}: exited with status {code}")


def _wait(pid, timeout):
    if not timeout:
        return os.waitpid(pid, 0)[1]
    import select
    import time

    pfd = os.pidfd_open(pid)
    try:
        deadline = time.monotonic() + timeout
        p = select.poll()
        p.register(pfd, select.POLLIN)
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not p.poll(left * 1000):
                if time.monotonic() < deadline:
                    continue
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                return None
            return os.waitpid(pid, 0)[1]
    finally:
        os.close(pfd)


def run_hooks(hooks, name, state):
    for h in hooks.get(name) or ():
        run_hook(h, state, name)


def run_hooks_warn(hooks, name, state, warn):
    """poststop: a failure is a warning only (runtime.md lifecycle step 13)."""
    for h in hooks.get(name) or ():
        try:
            run_hook(h, state, name)
        except RuntimeFailure as e:
            warn(str(e))
