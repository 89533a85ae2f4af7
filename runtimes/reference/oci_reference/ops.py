"""start, kill and delete: the small commands, kept lean.

Each is its own short-lived process, so start-up cost is most of their latency: this module
imports only `posix`, `_socket`, `time` (built in) and the runtime's `state`/`errors`, never
`os` or `ctypes`; hooks and the full cgroup code are imported only when needed.
"""

import _socket
import posix

from oci_reference import state as statemod
from oci_reference.errors import HookFailure, RuntimeFailure

_SIGKILL = 9
_EBUSY = 16


def unix_addr(d, name):
    """A socket address for d/name, going through /proc/self/fd when the path is long."""
    p = f"{d}/{name}"
    if len(p.encode()) < 100:
        return p, -1
    fd = posix.open(d, posix.O_PATH | posix.O_DIRECTORY | posix.O_CLOEXEC)
    return f"/proc/self/fd/{fd}/{name}", fd


def wait_dead(pid, start_time, timeout=10.0):
    import time

    deadline = time.monotonic() + timeout
    delay = 0.0002
    while statemod.is_alive(pid, start_time):
        if time.monotonic() > deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.01)
    return True


def kill_cgroup(cg, timeout=10.0):
    import time

    deadline = time.monotonic() + timeout
    delay = 0.0002
    while True:
        pids = cg.pids()
        if not pids:
            return
        for p in pids:
            try:
                posix.kill(p, _SIGKILL)
            except ProcessLookupError:
                pass
        if time.monotonic() > deadline:
            return
        time.sleep(delay)
        delay = min(delay * 2, 0.01)


def poststop(st, warn):
    from oci_reference import hooks

    hooks.run_hooks_warn(st["hooks"], "poststop", statemod.hook_state(st, "stopped"), warn or (lambda m: None))


def start(root, cid, warn=None):
    st = statemod.load(root, cid)
    s = statemod.status(st)
    if s != "created":
        raise RuntimeFailure(f"container {cid} is {s}, not created: cannot start it")
    d = statemod.container_dir(root, cid)
    addr, afd = unix_addr(d, statemod.START_SOCKET)
    conn = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        try:
            conn.connect(addr)
        except OSError as e:
            raise RuntimeFailure(f"container {cid}: cannot reach its init: {e.strerror}") from None
        finally:
            if afd >= 0:
                posix.close(afd)
        conn.send(b"S")
        # the init's end of the connection is close-on-exec: EOF means the program runs
        reply = conn.recv(65536)
    finally:
        conn.close()
    if reply[:1] == b"F":
        # a startContainer hook failed: stop, destroy (step 12), poststop (step 13)
        destroy(root, cid, st)
        if st.get("hooks", {}).get("poststop"):
            poststop(st, warn)
        raise HookFailure(reply[1:].decode(errors="replace"))
    if reply[:1] == b"E":
        st["status"] = "stopped"
        statemod.save(root, st)
        raise RuntimeFailure(reply[1:].decode(errors="replace"))
    st["status"] = "running"
    statemod.save(root, st)
    try:
        posix.unlink(f"{d}/{statemod.START_SOCKET}")
    except FileNotFoundError:
        pass
    if st.get("hooks", {}).get("poststart"):
        from oci_reference import hooks

        try:
            hooks.run_hooks(st["hooks"], "poststart", statemod.hook_state(st, "running"))
        except RuntimeFailure as e:
            # runtime.md lifecycle step 9 (v1.3.0): generate an error, stop the container and
            # continue at step 12 (destroy), then 13 (poststop hooks)
            destroy(root, cid, st)
            if st.get("hooks", {}).get("poststop"):
                poststop(st, warn)
            raise HookFailure(str(e)) from None
    return st


def kill(root, cid, sig, all_processes=False):
    st = statemod.load(root, cid)
    s = statemod.status(st)
    if s not in ("created", "running"):
        raise RuntimeFailure(f"container {cid} is {s}: cannot send it a signal")
    try:
        posix.kill(st["pid"], sig)
    except ProcessLookupError:
        raise RuntimeFailure(f"container {cid} is not running") from None
    if all_processes and st.get("cgroup"):
        from oci_reference.cgroups import Cgroup

        for p in Cgroup.from_dict(st["cgroup"]).pids():
            try:
                posix.kill(p, sig)
            except ProcessLookupError:
                pass


def delete(root, cid, force=False, warn=None):
    st = statemod.load(root, cid)
    s = statemod.status(st)
    if s != "stopped" and not force:
        raise RuntimeFailure(f"container {cid} is {s}: cannot delete it (stop it first, or use --force)")
    destroy(root, cid, st)
    if st.get("hooks", {}).get("poststop"):
        poststop(st, warn)


def destroy(root, cid, st):
    pid = st.get("pid") or 0
    if pid and statemod.is_alive(pid, st.get("startTime")):
        try:
            posix.kill(pid, _SIGKILL)
        except ProcessLookupError:
            pass
        if not wait_dead(pid, st.get("startTime")):
            raise RuntimeFailure(f"container {cid}: process {pid} did not die")
    if st.get("cgroup"):
        # with a pid namespace of its own, the container's processes all died with its
        # init; without one, some may remain in its groups: kill them first
        remove_cgroup(st["cgroup"], kill_first=not st.get("pidns"))
    statemod.remove_dir(statemod.container_dir(root, cid))


def remove_cgroup(cgd, kill_first=False):
    """Remove the container's groups: rmdir each leaf once (an empty group goes at once);
    only if one is busy, kill what is left in it and retry with a short backoff."""
    leaves = set(cgd["dirs"].values())
    created = set(cgd["created"])
    busy = kill_first
    for d in () if busy else leaves & created:
        try:
            posix.rmdir(d)
        except FileNotFoundError:
            pass
        except OSError as e:
            if e.errno != _EBUSY:
                raise RuntimeFailure(f"cgroup: cannot remove {d}: {e.strerror}") from None
            busy = True
    if busy:
        from oci_reference.cgroups import Cgroup

        cg = Cgroup.from_dict(cgd)
        kill_cgroup(cg)
        cg.destroy()
        return
    # parents this container made, or the runtime's own default parent: removed once empty
    for d in sorted((created | set(cgd.get("shared", ()))) - leaves, key=len, reverse=True):
        try:
            posix.rmdir(d)
        except OSError:
            pass  # still used by other containers (EBUSY), or gone already
