"""Pay the kernel's cgroup-migration toll early, off the critical path.

The first write to any ``cgroup.procs`` after a quiet spell waits for an RCU grace period
(the kernel switches its global threadgroup lock to the writer's slow path): 6-8 ms on this
2-core VM, sometimes twice that, and the writer holds ``cgroup_mutex`` the whole time, so a
``mkdir`` in any cgroup hierarchy waits too.  For about 15 ms after a migration ends, the next
ones are cheap (0.2 ms).  A container's join is such a migration, so ``create`` and ``run``
start a no-op migration (this process into the cgroup it is already in) at once, on a thread:
the grace period then passes while Python imports modules and reads the config, and the
container's cgroups are made and joined inside the cheap window.

Posix-only on purpose: it runs before ``os`` is imported.  Best effort: any failure is
ignored (the join then just pays the toll itself).  On a host whose cgroups are mounted with
``favordynmods`` the toll does not exist and this costs a thread start.
"""

import posix

_started = False


def _read_own_cgroups():
    try:
        fd = posix.open("/proc/self/cgroup", posix.O_RDONLY | posix.O_CLOEXEC)
        try:
            return posix.read(fd, 65536).decode()
        finally:
            posix.close(fd)
    except OSError:
        return ""


def _exists(path):
    return posix.access(path, posix.F_OK)


def target(proc_self_cgroup, exists=_exists):
    """cgroup.procs of this process's own group, from the text of /proc/self/cgroup: the
    v2 one (pure v2, or hybrid's /sys/fs/cgroup/unified), else one of a v1 controller."""
    lines = [line.split(":", 2) for line in proc_self_cgroup.splitlines() if line.count(":") >= 2]
    for num, ctrls, path in lines:
        if num == "0" and not ctrls:
            for base in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
                if exists(base + "/cgroup.procs"):
                    return base + path.rstrip("/") + "/cgroup.procs"
    for _num, ctrls, path in lines:
        if ctrls and "," not in ctrls and not ctrls.startswith("name="):
            procs = f"/sys/fs/cgroup/{ctrls}{path.rstrip('/')}/cgroup.procs"
            if exists(procs):
                return procs
    return None


def start():
    """Start the no-op migration on a thread and return once the thread is about to write
    (so it is not left waiting for the GIL).  Idempotent within a process."""
    global _started
    if _started:
        return
    _started = True
    procs = target(_read_own_cgroups())
    if procs is None:
        return
    import _thread

    ready = _thread.allocate_lock()
    ready.acquire()
    pid = str(posix.getpid()).encode()

    def run():
        try:
            fd = posix.open(procs, posix.O_WRONLY | posix.O_CLOEXEC)
        except OSError:
            ready.release()
            return
        ready.release()
        try:
            posix.write(fd, pid)  # releases the GIL for the whole grace period
        except OSError:
            pass
        finally:
            posix.close(fd)

    _thread.start_new_thread(run, ())
    ready.acquire(True, 0.05)
