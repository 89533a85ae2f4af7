"""The lifecycle operations: create, start, kill, delete, run.

Processes during `create` (C = the create command):

    C ──fork──► P1: joins the namespaces given by path, unshares the new ones (user first,
                │   so C can write the id maps; cgroup is left to P2), writes time offsets, then
                └──fork──► P2 = container init (pid 1 of a new pid namespace), P1 exits.

Meanwhile C makes the cgroups and, once P1 reports P2's pid, moves P2 into them and sends
their paths; P2 builds the rootfs (mounts, devices) in parallel and waits for that message
only where it needs it: at a cgroup mount, and in any case before the hooks, before its new
cgroup namespace (unshared then, so that its root is the container's cgroup) and before
pivot_root.  A cgroup migration can cost a kernel grace period (see warmup.py), which this
keeps off the critical path.

P2 then pivots, applies the process attributes, tells C "ready" and blocks in accept() on
<state dir>/start.sock.  `start` connects and sends "S"; P2 runs the startContainer hooks and
execve()s args[0]; the CLOEXEC connection closes at exec, which is how `start` learns that
the user program runs.  C and P1/P2 talk over a SOCK_SEQPACKET pair, one message per send:

    child -> C:  U (write my id maps)  P<pid> (init's host pid)  H (run createRuntime hooks)
                 T + fd (console master)  R (ready)  E<message> (failed)
    C -> child:  u  g<pid>  c<cgroup json> (P2 is in its cgroups)  h  t
"""

import _socket
import os
import sys

from oci_reference import SPEC_VERSION, ops
from oci_reference import state as statemod
from oci_reference.errors import HookFailure, RuntimeFailure

_SIGKILL = 9


def _errmsg(e):
    if isinstance(e, RuntimeFailure):
        return str(e)
    if isinstance(e, OSError):
        msg = e.strerror or str(e)
        if e.filename is not None:
            msg = f"{msg}: {e.filename}"
        return msg
    return f"{type(e).__name__}: {e}"


def _now_iso():
    import time

    ns = time.time_ns()
    sec, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{frac:09d}Z"


_unix_addr = ops.unix_addr


def _send_fd(sock, data, fd):
    sock.sendmsg([data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fd.to_bytes(4, sys.byteorder))])


def _recv(sock):
    try:
        data, anc, _flags, _addr = sock.recvmsg(65536, _socket.CMSG_SPACE(4))
    except ConnectionResetError:
        # a child exited leaving one of our messages unread: the kernel reports that once,
        # ahead of what the child sent before exiting (its "E" message); read that next
        data, anc, _flags, _addr = sock.recvmsg(65536, _socket.CMSG_SPACE(4))
    fd = -1
    for level, typ, cdata in anc:
        if level == _socket.SOL_SOCKET and typ == _socket.SCM_RIGHTS and len(cdata) >= 4:
            fd = int.from_bytes(cdata[:4], sys.byteorder)
    return data, fd


def _write_atomic(path, text):
    path = os.path.abspath(path)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


_wait_dead = ops.wait_dead
_kill_cgroup = ops.kill_cgroup


# ======================================================================================
# create
# ======================================================================================
def create(root, cid, bundle=None, pid_file=None, console_socket=None, preserve_fds=0, warn=None):
    from oci_reference import warmup

    warmup.start()  # no-op when the command line started it already
    statemod.validate_id(cid)
    from oci_reference import cgroups

    bundle = os.path.abspath(bundle or os.getcwd())
    from oci_reference import config

    cfg = config.load(bundle)
    p = cfg.process
    if p["capabilities"]:
        _drop_ungrantable(p["capabilities"], cfg.warnings)
    if warn:
        for w in cfg.warnings:
            warn(w)
    if p["terminal"] and not console_socket:
        raise RuntimeFailure("process.terminal is true: --console-socket is required")
    if console_socket and not p["terminal"]:
        raise RuntimeFailure("--console-socket given but process.terminal is false")

    cfg.seccomp_agent = None
    if cfg.seccomp is not None and cfg.seccomp["listener"]:
        from oci_reference import seccomp

        cfg.seccomp_agent = seccomp.connect_agent(cfg.seccomp["listener"])

    os.makedirs(root, 0o700, exist_ok=True)
    d = os.path.join(root, cid)
    try:
        os.mkdir(d, 0o700)
    except FileExistsError:
        if cfg.seccomp_agent is not None:
            cfg.seccomp_agent.close()
        raise RuntimeFailure(f"container {cid} already exists") from None

    st = {
        # the version of the spec the state document complies with (runtime.md#state): ours
        "ociVersion": SPEC_VERSION,
        "id": cid,
        "status": "creating",
        "pid": 0,
        "bundle": bundle,
        "rootfs": cfg.root_path,
        "created": _now_iso(),
        "annotations": cfg.annotations,
        "startTime": None,
        "pidns": cfg.new_ns("pid"),
        "cgroup": None,
        "hooks": {k: v for k, v in cfg.hooks.items() if k in ("poststart", "poststop")},
    }
    cg = None
    pid1 = 0
    pid1_reaped = False
    init_pid = 0
    parent_sock = None
    try:
        addr, afd = _unix_addr(d, statemod.START_SOCKET)
        listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            listener.bind(addr)
        finally:
            if afd >= 0:
                os.close(afd)
        listener.listen(1)
        parent_sock, child_sock = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
        # The init is reparented to this process when P1 exits (which may be before the
        # cgroups are made), so this process can reap it if create fails, and `run` can wait
        # for it. After a successful `create` it goes on to whoever adopts orphans here.
        from oci_reference import linux

        linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)
        sys.stdout.flush()
        sys.stderr.flush()
        # P1 starts at once: it loads ctypes and the setup modules, makes the namespaces and
        # forks the init while this process creates the cgroups.
        pid1 = os.fork()
        if pid1 == 0:
            parent_sock.close()
            _child_main(cfg, cid, child_sock, listener, preserve_fds)
            os._exit(1)  # not reached
        child_sock.close()
        listener.close()
        if cfg.seccomp_agent is not None:
            cfg.seccomp_agent.close()  # the init sends the state once its filter is loaded

        cg = cgroups.create(cfg.cgroups_path, cid, cfg.resources)
        st["cgroup"] = cg.to_dict()
        cgroups.device_rules_v1(cg, cfg.resources.get("devices"), cfg.devices)
        if cgroups.wants_delegation(cfg):
            cgroups.delegate(cg, cfg)
        from oci_reference import jsonlite

        statemod.save(root, st)

        while True:
            msg, fd = _recv(parent_sock)
            if not msg:
                raise RuntimeFailure("container init exited unexpectedly")
            tag, body = msg[:1], msg[1:]
            if tag == b"E":
                raise RuntimeFailure(body.decode(errors="replace"))
            if tag == b"F":
                raise HookFailure(body.decode(errors="replace"))
            if tag == b"U":
                _write_id_maps(pid1, cfg)
                parent_sock.send(b"u")
            elif tag == b"P":
                init_pid = int(body)
                os.waitpid(pid1, 0)
                pid1_reaped = True
                try:
                    parent_sock.send(b"g%d" % init_pid)
                    info = statemod.proc_stat(init_pid)
                    if info is None or info[0] == "Z":
                        raise RuntimeFailure("container init exited unexpectedly")
                    st["pid"] = init_pid
                    st["startTime"] = info[1]
                    cg.join(init_pid)
                    if cfg.net_devices:
                        from oci_reference import netdev

                        netdev.move_devices(cfg.net_devices, init_pid)
                    parent_sock.send(b"c" + jsonlite.dumps(cg.to_dict()).encode())
                except (OSError, RuntimeFailure):
                    # the init builds the rootfs meanwhile and may have failed already: its
                    # own message says why, better than the broken pipe or the failed join
                    _raise_reported(parent_sock)
                    raise
            elif tag == b"H":
                from oci_reference import hooks

                statemod.save(root, st)
                hs = statemod.hook_state(st, "creating")
                hooks.run_hooks(cfg.hooks, "prestart", hs)
                hooks.run_hooks(cfg.hooks, "createRuntime", hs)
                parent_sock.send(b"h")
            elif tag == b"T":
                try:
                    _send_console(console_socket, fd, body)
                finally:
                    if fd >= 0:
                        os.close(fd)
                parent_sock.send(b"t")
            elif tag == b"R":
                break
            else:
                raise RuntimeFailure(f"unexpected message from container init: {msg!r}")
        parent_sock.close()
        parent_sock = None
        st["status"] = "created"
        statemod.save(root, st)
        if pid_file:
            _write_atomic(pid_file, str(init_pid))
        return st
    except BaseException as exc:
        if cfg.seccomp_agent is not None:
            cfg.seccomp_agent.close()
        if pid1 and not pid1_reaped:
            # P1 may have forked the init already: let it finish, then learn the init's pid
            # from its "P" message, so that no init is left behind to build a container
            late = _end_p1(pid1, parent_sock)
            info = statemod.proc_stat(late) if late and not init_pid else None
            mine = statemod.proc_stat(os.getpid())
            if info and mine and info[1] >= mine[1]:  # not a pid reused by an older process
                init_pid = late
                st["startTime"] = info[1]
        if parent_sock is not None:
            parent_sock.close()
        if init_pid:
            try:
                os.kill(init_pid, _SIGKILL)
            except ProcessLookupError:
                pass
            try:
                os.waitpid(init_pid, 0)
            except ChildProcessError:  # not reparented to us (P1 had not exited)
                pass
            _wait_dead(init_pid, st["startTime"])
        if cg is not None:
            try:
                _kill_cgroup(cg)
                cg.destroy()
            except RuntimeFailure as e:
                if warn:
                    warn(str(e))
        statemod.remove_dir(d)
        if isinstance(exc, HookFailure) and cfg.hooks.get("poststop"):
            ops.poststop(st, warn)
        raise


def _unread(sock):
    """The messages still waiting on the channel, without blocking, up to EOF."""
    sock.setblocking(False)
    try:
        while True:
            try:
                msg = sock.recv(65536)
            except ConnectionResetError:
                continue  # reported once, ahead of the messages still queued (see _recv)
            except OSError:
                return
            if not msg:
                return
            yield msg
    finally:
        sock.setblocking(True)


def _raise_reported(sock):
    """Raise the failure a child reported ("E"/"F" message) if one is waiting unread."""
    for msg in _unread(sock):
        if msg[:1] == b"E":
            raise RuntimeFailure(msg[1:].decode(errors="replace"))
        if msg[:1] == b"F":
            raise HookFailure(msg[1:].decode(errors="replace"))


def _end_p1(pid1, sock, grace=2.0):
    """After a failure in `create` before P1 was reaped: close our side of the channel (a
    child waiting on it sees EOF and exits), give P1 `grace` seconds to exit, else kill it;
    reap it, and return the init pid from a "P" message still unread, or 0."""
    if sock is not None:
        try:
            sock.shutdown(_socket.SHUT_WR)
        except OSError:
            pass
    try:
        pfd = os.pidfd_open(pid1)
    except OSError:
        pfd = -1
    if pfd >= 0:
        import select

        try:
            exited = bool(select.select([pfd], [], [], grace)[0])
        finally:
            os.close(pfd)
    else:
        exited = False
    if not exited:
        try:
            os.kill(pid1, _SIGKILL)
        except ProcessLookupError:
            pass
    os.waitpid(pid1, 0)
    for msg in _unread(sock) if sock is not None else ():
        if msg[:1] == b"P" and msg[1:].isdigit():
            return int(msg[1:])
    return 0


def _drop_ungrantable(cset, warnings):
    """Capabilities outside this runtime's permitted and bounding sets cannot be granted:
    a warning, not a failure (config.md "Linux Process": runtimes SHOULD NOT fail)."""
    prm = bnd = None
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"CapPrm:"):
                    prm = int(line.split()[1], 16)
                elif line.startswith(b"CapBnd:"):
                    bnd = int(line.split()[1], 16)
    except OSError:
        return
    if prm is None or bnd is None:
        return
    ok = prm & bnd
    from oci_reference.caps import CAPABILITIES

    for s, names in cset.items():
        bad = [n for n in names if not ok >> CAPABILITIES[n] & 1]
        if bad:
            warnings.append(f"process.capabilities.{s}: {', '.join(bad)} cannot be granted here, ignored")
            cset[s] = [n for n in names if n not in bad]


def _write_id_maps(pid, cfg):
    def fmt(m):
        return "".join(f"{c} {h} {s}\n" for c, h, s in m)

    try:
        with open(f"/proc/{pid}/uid_map", "w") as f:
            f.write(fmt(cfg.uid_mappings))
        with open(f"/proc/{pid}/gid_map", "w") as f:
            f.write(fmt(cfg.gid_mappings))
    except OSError as e:
        raise RuntimeFailure(f"linux.uidMappings/gidMappings: cannot write id maps: {e.strerror}") from None


def _send_console(path, fd, name):
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        try:
            s.connect(path)
        except OSError as e:
            raise RuntimeFailure(f"--console-socket {path}: {e.strerror}") from None
        _send_fd(s, name or b"/dev/ptmx", fd)
    finally:
        s.close()


# --------------------------------------------------------------------------------------
# in the children
# --------------------------------------------------------------------------------------
def _child_main(cfg, cid, sock, listener, preserve_fds):
    """P1: namespaces; fork the init; report its pid; exit."""
    try:
        from oci_reference import caps, cgroups, jsonlite, linux, mounts, process  # noqa: F401

        last_cap = caps.last_cap()
        if cfg.seccomp is not None:
            from oci_reference import seccomp

            if not seccomp.available():
                raise RuntimeFailure("linux.seccomp is set but libseccomp.so.2 cannot be loaded")
        if any(m.get("idmap") for m in cfg.mounts):
            from oci_reference import idmap

            idmap.prepare(cfg)
        joins = []
        for t, path in cfg.namespaces:
            if path:
                try:
                    joins.append((t, os.open(path, os.O_RDONLY | os.O_CLOEXEC)))
                except OSError as e:
                    raise RuntimeFailure(f"linux.namespaces: cannot open {t} namespace {path}: {e.strerror}") from None
        order = {"user": 0, "mount": 2}
        joins.sort(key=lambda j: order.get(j[0], 1))
        for t, fd in joins:
            try:
                linux.setns(fd, linux.NAMESPACE_FLAGS[t])
            except OSError as e:
                raise RuntimeFailure(f"linux.namespaces: cannot join {t} namespace: {e.strerror}") from None
            os.close(fd)
        if cfg.new_ns("user"):
            linux.unshare(linux.CLONE_NEWUSER)
            sock.send(b"U")
            if sock.recv(16) != b"u":
                os._exit(1)
        if cfg.ns("user")[0]:
            # become root of the (new or joined) user namespace: host ids mean nothing there
            try:
                os.setresgid(0, 0, 0)
                os.setresuid(0, 0, 0)
            except OSError:
                pass
            # an id change clears "dumpable", which makes /proc/self/* root-owned (host)
            linux.prctl(linux.PR_SET_DUMPABLE, 1)
        flags = 0
        for t, path in cfg.namespaces:
            if not path and t not in ("user", "cgroup"):  # cgroup: P2, once in its cgroups
                flags |= linux.NAMESPACE_FLAGS[t]
        try:
            linux.unshare(flags)
        except OSError as e:
            raise RuntimeFailure(f"linux.namespaces: unshare: {e.strerror}") from None
        if cfg.time_offsets:
            lines = "".join(f"{clk} {s} {ns}\n" for clk, (s, ns) in cfg.time_offsets.items())
            try:
                with open("/proc/self/timens_offsets", "w") as f:
                    f.write(lines)
            except OSError as e:
                raise RuntimeFailure(f"linux.timeOffsets: {e.strerror}") from None
        pid2 = os.fork()
        if pid2 == 0:
            _init_main(cfg, cid, sock, listener, preserve_fds, last_cap)
            os._exit(1)  # not reached
        sock.send(b"P%d" % pid2)
        os._exit(0)
    except BaseException as e:
        try:
            sock.send(b"E" + _errmsg(e).encode())
        finally:
            os._exit(1)


def _exit_on_signal(signum, frame):
    os._exit(128 + signum)


_TERMINATING = (1, 2, 3, 10, 12, 14, 15)  # HUP INT QUIT USR1 USR2 ALRM TERM


def _init_main(cfg, cid, sock, listener, preserve_fds, last_cap):
    """P2, the container init: build the container, block until start, exec."""
    conn = None
    host_pid = 0
    cgroup = None
    try:
        import _signal

        def parent_pid():
            # C answers P1's "P" with "g<pid>"; read it before the first exchange with C
            nonlocal host_pid
            if not host_pid:
                msg = sock.recv(64)
                if msg[:1] != b"g":
                    os._exit(1)
                host_pid = int(msg[1:])
            return host_pid

        def in_cgroup():
            # then "c<json>": this process is in its cgroups now; a new cgroup namespace
            # is made here, so that its root is the container's own cgroup
            nonlocal cgroup
            if cgroup is None:
                parent_pid()
                msg = sock.recv(65536)
                if msg[:1] != b"c":
                    os._exit(1)
                cgroup = cgroups.Cgroup.from_dict(jsonlite.loads(msg[1:]))
                if cfg.new_ns("cgroup"):
                    try:
                        linux.unshare(linux.CLONE_NEWCGROUP)
                    except OSError as e:
                        raise RuntimeFailure(f"linux.namespaces: unshare cgroup: {e.strerror}") from None
            return cgroup

        if os.getpid() == 1:
            # pid 1 of a namespace ignores signals it has no handler for; until exec,
            # let the usual terminating signals end it
            for s in _TERMINATING:
                _signal.signal(s, _exit_on_signal)
        os.setsid()
        old_umask = os.umask(0)
        keep = 3 + preserve_fds
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            if fd >= keep:
                try:
                    os.set_inheritable(fd, False)
                except OSError:
                    pass
        p = cfg.process
        from oci_reference import cgroups, jsonlite, linux, process
        from oci_reference.mounts import RootfsBuilder

        if p["oomScoreAdj"] is not None:
            process.set_oom_score_adj(p["oomScoreAdj"])
        if cfg.hostname is not None and cfg.ns("uts")[0]:
            linux.sethostname(cfg.hostname)
        if cfg.domainname is not None and cfg.ns("uts")[0]:
            linux.setdomainname(cfg.domainname)
        # after pivot_root the host's Python library is out of reach: import now
        if p["rlimits"]:
            import resource  # noqa: F401  (process.set_rlimits)
        if cfg.hooks.get("startContainer"):
            from oci_reference import hooks

            if any(h.get("timeout") for h in cfg.hooks["startContainer"]):
                import select  # noqa: F401
                import time  # noqa: F401
        if p["terminal"]:
            import fcntl  # noqa: F401
            import termios  # noqa: F401
        install_seccomp = None
        if cfg.seccomp is not None:
            from oci_reference import seccomp

            build = seccomp.build(cfg.seccomp, p["noNewPrivileges"])

            def install_seccomp(status):
                fd = build()
                if fd >= 0:  # SCMP_ACT_NOTIFY: the container process state to the agent
                    pid = parent_pid()
                    payload = {
                        "ociVersion": SPEC_VERSION,
                        "fds": ["seccompFd"],
                        "pid": pid,
                        "metadata": cfg.seccomp["metadata"],
                        "state": {
                            "ociVersion": SPEC_VERSION,
                            "id": cid,
                            "status": status,
                            "pid": pid,
                            "bundle": cfg.bundle,
                            "annotations": cfg.annotations,
                        },
                    }
                    seccomp.send_state(cfg.seccomp_agent, fd, jsonlite.dumps(payload).encode())

        builder = RootfsBuilder(cfg, cfg.ns("user")[0], lambda: in_cgroup().mount_sources())
        builder.prepare()
        in_cgroup()
        if cfg.hooks.get("prestart") or cfg.hooks.get("createRuntime"):
            sock.send(b"H")
            if sock.recv(16) != b"h":
                os._exit(1)
        if cfg.hooks.get("createContainer"):
            from oci_reference import hooks

            hs = {
                "ociVersion": SPEC_VERSION,
                "id": cid,
                "status": "creating",
                "pid": os.getpid(),
                "bundle": cfg.bundle,
                "annotations": cfg.annotations,
            }
            hooks.run_hooks(cfg.hooks, "createContainer", hs)
        builder.pivot()
        for k, v in cfg.sysctl.items():
            try:
                with open("/proc/sys/" + k.replace(".", "/"), "w") as f:
                    f.write(v)
            except OSError as e:
                raise RuntimeFailure(f"linux.sysctl.{k}: {e.strerror}") from None
        if not os.path.isdir(p["cwd"]):
            try:  # before the rootfs may turn read-only
                os.makedirs(p["cwd"], 0o755, exist_ok=True)
            except OSError as e:
                raise RuntimeFailure(f"process.cwd {p['cwd']}: {e.strerror}") from None
        builder.finish()
        if cfg.personality is not None:
            linux.personality(cfg.personality)
        if "ioPriority" in p:
            linux.ioprio_set(1, 0, p["ioPriority"])
        if cfg.memory_policy is not None:
            try:
                linux.set_mempolicy(*cfg.memory_policy)
            except OSError as e:
                raise RuntimeFailure(f"linux.memoryPolicy: {e}") from None
        if "scheduler" in p:
            try:
                linux.sched_setattr(*p["scheduler"])
            except OSError as e:
                raise RuntimeFailure(f"process.scheduler: {e}") from None
        process.set_rlimits(p["rlimits"])
        if p["terminal"]:
            parent_pid()
            _setup_terminal(p, sock)
        if p["noNewPrivileges"]:
            linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
        elif install_seccomp is not None:
            install_seccomp("creating")  # needs CAP_SYS_ADMIN without no_new_privs: before dropping caps
            install_seccomp = None
        process.set_identity_and_caps(p, last_cap)
        process.chdir(p["cwd"])
        exe = process.find_executable(p["args"][0], p["env"])
        env = process.env_dict(p["env"])
        os.umask(old_umask if p["umask"] is None else p["umask"])
        parent_pid()
        sock.send(b"R")
        sock.close()
        sock = None

        cfd, _ = listener._accept()
        conn = _socket.socket(fileno=cfd)
        listener.close()
        if conn.recv(16) != b"S":
            os._exit(1)
        if cfg.hooks.get("startContainer"):
            from oci_reference import hooks

            hs = {
                "ociVersion": SPEC_VERSION,
                "id": cid,
                "status": "created",
                "pid": os.getpid(),
                "bundle": cfg.bundle,
                "annotations": cfg.annotations,
            }
            hooks.run_hooks(cfg.hooks, "startContainer", hs)
        if install_seccomp is not None:
            install_seccomp("created")
        for s in (*_TERMINATING, 13, 25):  # + PIPE, XFSZ that Python ignores
            _signal.signal(s, _signal.SIG_DFL)
        os.execve(exe, p["args"], env)
    except BaseException as e:
        target = conn if conn is not None else sock
        try:
            if target is not None:
                target.send((b"F" if isinstance(e, HookFailure) else b"E") + _errmsg(e).encode())
        finally:
            os._exit(1)


def _setup_terminal(p, sock):
    import fcntl
    import termios

    master, slave = os.openpty()
    if "consoleSize" in p:
        h, w = p["consoleSize"]
        fcntl.ioctl(master, termios.TIOCSWINSZ, h.to_bytes(2, sys.byteorder) + w.to_bytes(2, sys.byteorder) + bytes(4))
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    name = os.ttyname(slave)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)
    _send_fd(sock, b"T" + name.encode(), master)
    os.close(master)
    if sock.recv(16) != b"t":
        os._exit(1)


# ======================================================================================
# start, kill, delete (in ops, kept lean for their own processes), run
# ======================================================================================
from oci_reference.ops import delete, kill, start  # noqa: E402,F401


def run(root, cid, bundle=None, pid_file=None, console_socket=None, preserve_fds=0, detach=False, warn=None):
    st = create(root, cid, bundle, pid_file, console_socket, preserve_fds, warn)
    pid = st["pid"]
    try:
        start(root, cid, warn)
    except BaseException:
        try:
            delete(root, cid, force=True, warn=warn)
        finally:
            _reap(pid, detach)
        raise
    if detach:
        return 0
    import _signal

    def forward(signum, frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for s in (1, 2, 3, 10, 12, 15, 28):
        _signal.signal(s, forward)
    status = _reap(pid, False)
    code = 255
    if status is not None:
        if os.WIFEXITED(status):
            code = os.WEXITSTATUS(status)
        elif os.WIFSIGNALED(status):
            code = 128 + os.WTERMSIG(status)
    delete(root, cid, force=True, warn=warn)
    return code


def _reap(pid, detach):
    if detach:
        return None
    while True:
        try:
            wpid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return None
        if wpid == pid:
            return status
