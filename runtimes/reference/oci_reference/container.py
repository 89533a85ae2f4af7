"""The lifecycle operations: create, start, kill, delete, run.

Processes during `create` (C = the create command):

    C ──fork──► P1: joins the namespaces given by path, unshares the new ones (user first,
                │   so C can write the id maps; cgroup is left to P2), writes time offsets, then
                └──fork──► P2 = container init (pid 1 of a new pid namespace), P1 exits.

Without namespace paths, time offsets, id-mapped mounts or a user namespace, P1 is skipped:
C unshares the pid namespace for its next child only, forks P2 and takes its own back for
later children; P2 unshares the other new namespaces itself (_init_forked_directly).

Meanwhile C makes the cgroups and, once P1 reports P2's pid, sends their paths, moves P2
into them and says so; P2 builds the rootfs (mounts, devices) in parallel and waits for each
message only where it needs it: for the paths at a cgroup mount, for the move once the rootfs
is prepared (before the hooks, before its new cgroup namespace, unshared then so that its
root is the container's cgroup, and before pivot_root).  A cgroup migration can cost a kernel
grace period (see warmup.py), which this keeps off the critical path.

P2 then pivots, applies the process attributes, tells C "ready" and blocks in accept() on
<state dir>/start.sock.  `start` connects and sends "S"; P2 runs the startContainer hooks and
execve()s args[0]; the CLOEXEC connection closes at exec, which is how `start` learns that
the user program runs.  C and P1/P2 talk over a SOCK_SEQPACKET pair, one message per send:

    child -> C:  U (write my id maps)  P<pid> (init's host pid)  H (run createRuntime hooks)
                 T + fd (console master)  R (ready)  E<message> (failed)
    C -> child:  u  g<pid>  c<cgroup json> (P2's cgroups)  j (P2 is in them)  h  t
"""

import _socket
import sys

from oci_reference import SPEC_VERSION, ops
from oci_reference import oslite as os  # not `os` itself: see oslite
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
# create (runtime.md "Create"; "Lifecycle" steps 1 to 4)
# ======================================================================================
def create(root, cid, bundle=None, pid_file=None, console_socket=None, preserve_fds=0, warn=None):
    """runtime.md "Create": build the container's environment from the bundle's config.json
    without running the user program (Lifecycle steps 1 to 4: the rest of step 2 and step 5
    happen in the init, see _init_main). A failure undoes everything (runtime.md "Errors").
    Returns the state, whose status is "created"."""
    from oci_reference import warmup

    warmup.start()  # no-op when the command line started it already
    cfg, bundle = _read_bundle(cid, bundle)
    from oci_reference import cgroups  # noqa: F401  (loaded before the fork: P1 inherits it)

    _check_process_io(cfg, console_socket, warn)
    _connect_seccomp_agent(cfg)
    d = _claim_container_id(root, cid, cfg)
    c = _Creation(root, cid, cfg, _initial_state(cid, bundle, cfg), d, console_socket)
    try:
        listener = _listen_for_start(d)
        c.sock, child_sock = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
        _become_subreaper()
        c.pid1, c.init_pid = _fork_setup_process(cfg, cid, child_sock, listener, preserve_fds)
        _make_cgroups(c)
        statemod.save(root, c.st)
        if c.init_pid:  # forked directly: no P1 to report its pid
            _place_init(c, c.init_pid)
        _serve_init_until_ready(c)
        return _mark_created(c, pid_file)
    except BaseException as exc:
        _undo_create(c, exc, warn)
        raise


def _read_bundle(cid, bundle):
    """Lifecycle step 1: create is given a bundle and an id (runtime.md "Create"): check the
    id, then read and check the bundle's config.json (config.md). Returns (config, bundle)."""
    statemod.validate_id(cid)
    bundle = os.path.abspath(bundle or os.getcwd())
    from oci_reference import config

    return config.load(bundle), bundle


def _check_process_io(cfg, console_socket, warn):
    """config.md "Process": capabilities this runtime cannot grant are dropped with a warning
    (runtimes SHOULD NOT fail on them); process.terminal and --console-socket must agree."""
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


def _connect_seccomp_agent(cfg):
    """config-linux.md "Seccomp" listenerPath: connect to the agent before anything is made,
    so that an unreachable agent fails create with nothing to undo."""
    cfg.seccomp_agent = None
    if cfg.seccomp is not None and cfg.seccomp["listener"]:
        from oci_reference import seccomp

        cfg.seccomp_agent = seccomp.connect_agent(cfg.seccomp["listener"])


def _claim_container_id(root, cid, cfg):
    """runtime.md "Create": an id that is not unique within the runtime's scope MUST be an
    error. The container's state folder is made here, atomically (mkdir); returns its path."""
    os.makedirs(root, 0o700, exist_ok=True)
    d = os.path.join(root, cid)
    try:
        os.mkdir(d, 0o700)
    except FileExistsError:
        if cfg.seccomp_agent is not None:
            cfg.seccomp_agent.close()
        raise RuntimeFailure(f"container {cid} already exists") from None
    return d


def _initial_state(cid, bundle, cfg):
    """runtime.md "State", with this runtime's own fields (the init's start time, its cgroups,
    the hooks that run after create) which `state` leaves out."""
    return {
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


class _Creation:
    """What one `create` has made so far (so that _undo_create undoes exactly that), and its
    end of the channel to the setup processes."""

    def __init__(self, root, cid, cfg, st, d, console_socket):
        self.root, self.cid, self.cfg, self.st, self.dir = root, cid, cfg, st, d
        self.console_socket = console_socket
        self.sock = None  # our end of the SOCK_SEQPACKET pair
        self.cg = None
        self.pid1 = 0
        self.pid1_reaped = False
        self.init_pid = 0


def _listen_for_start(d):
    """runtime.md "Start" runs the user program of a created container: the init waits for
    `start` on <state dir>/start.sock, made now so that it exists before the init does."""
    addr, afd = _unix_addr(d, statemod.START_SOCKET)
    listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        listener.bind(addr)
    finally:
        if afd >= 0:
            os.close(afd)
    listener.listen(1)
    return listener


def _become_subreaper():
    """The init is reparented to this process when P1 exits (which may be before the cgroups
    are made), so this process can reap it if create fails, and `run` can wait for it. After
    a successful `create` it goes on to whoever adopts orphans here."""
    from oci_reference import linux

    linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)


def _fork_setup_process(cfg, cid, child_sock, listener, preserve_fds):
    """Start the container's setup at once (see the module docstring): it makes the namespaces
    while this process creates the cgroups. Returns (P1's pid, 0), or (0, the init's pid) when
    the init is forked directly (_init_forked_directly). The setup modules are loaded here, before
    the fork: loaded after it, each page their import writes costs the child a copy-on-write
    fault (~4 us on this VM), which made the import cost the init twice what it costs here."""
    from oci_reference import caps, linux, mounts, process  # noqa: F401  (the setup modules)

    sys.stdout.flush()
    sys.stderr.flush()
    flags = _new_namespace_flags(cfg)
    direct = _init_forked_directly(cfg)
    pidns = -1
    if direct and flags & linux.CLONE_NEWPID:
        # a new pid namespace for the next child only: this process stays in its own
        pidns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        try:
            _unshare(linux.CLONE_NEWPID)
        except BaseException:
            os.close(pidns)
            raise
    try:
        pid = os.fork()
        if pid == 0:
            if direct:
                _direct_init_main(cfg, cid, child_sock, listener, preserve_fds, flags & ~linux.CLONE_NEWPID)
            else:
                _child_main(cfg, cid, child_sock, listener, preserve_fds, flags)
            os._exit(1)  # not reached
    finally:
        if pidns >= 0:
            linux.setns(pidns, linux.CLONE_NEWPID)  # later children (hooks) in the runtime's pid namespace
            os.close(pidns)
    child_sock.close()
    listener.close()
    if cfg.seccomp_agent is not None:
        cfg.seccomp_agent.close()  # the init sends the state once its filter is loaded
    return (0, pid) if direct else (pid, 0)


def _new_namespace_flags(cfg):
    """The CLONE_NEW* flags of the namespaces to make (listed without a path); the cgroup one
    is made later by the init, once it is in its cgroups."""
    from oci_reference import linux

    flags = 0
    for t, path in cfg.namespaces:
        if not path and t not in ("user", "cgroup"):  # cgroup: P2, once in its cgroups
            flags |= linux.NAMESPACE_FLAGS[t]
    return flags


def _init_forked_directly(cfg):
    """Whether the init can be forked by this process, skipping P1: when no namespace is joined
    by path, none of user or time is made (a user namespace must exist before the others, a
    time namespace takes its offsets before its first process), no mount is id-mapped, and no
    network device is moved (_place_init moves it into the network namespace of the init's pid
    as soon as the init exists: a direct init may not have made its own yet). A new pid
    namespace is then unshared here for that one child (unshare(2): CLONE_NEWPID applies to
    the caller's next children, not to itself)."""
    if cfg.time_offsets or cfg.ns("user")[0] or cfg.ns("time")[0] or cfg.net_devices:
        return False
    if any(path for _t, path in cfg.namespaces):
        return False
    return not any(m.get("idmap") for m in cfg.mounts)


def _unshare(flags):
    from oci_reference import linux

    try:
        linux.unshare(flags)
    except OSError as e:
        raise RuntimeFailure(f"linux.namespaces: unshare: {e.strerror}") from None


def _make_cgroups(c):
    """config-linux.md "Control groups": the container's cgroups at cgroupsPath with its
    resources, the allowed device list (cgroup v1) and, when asked, their delegation
    ("Cgroup ownership"). The init joins them once P1 reports its pid."""
    from oci_reference import cgroups

    cfg = c.cfg
    cg = c.cg = cgroups.create(cfg.cgroups_path, c.cid, cfg.resources)
    c.st["cgroup"] = cg.to_dict()
    cgroups.device_rules_v1(cg, cfg.resources.get("devices"), cfg.devices)
    if cgroups.wants_delegation(cfg):
        cgroups.delegate(cg, cfg)


def _serve_init_until_ready(c):
    """Do for the setup processes what needs the runtime's namespaces, as they ask (messages
    in the module docstring), until the init reports it is ready for `start`."""
    while True:
        msg, fd = _recv(c.sock)
        if not msg:
            raise RuntimeFailure("container init exited unexpectedly")
        tag, body = msg[:1], msg[1:]
        if tag == b"E":
            raise RuntimeFailure(body.decode(errors="replace"))
        if tag == b"F":
            raise HookFailure(body.decode(errors="replace"))
        if tag == b"U":
            _write_id_maps(c.pid1, c.cfg)
            c.sock.send(b"u")
        elif tag == b"P":
            _place_init(c, int(body))
        elif tag == b"H":
            _run_runtime_namespace_hooks(c)
        elif tag == b"T":
            _pass_console(c, fd, body)
        elif tag == b"R":
            break
        else:
            raise RuntimeFailure(f"unexpected message from container init: {msg!r}")
    c.sock.close()
    c.sock = None


def _place_init(c, init_pid):
    """P1 forked the init and is exiting: record the init in the state (runtime.md "State":
    pid), send it the paths of its cgroups (for a cgroup mount), put it in them, move the
    network devices into its namespace (config-linux.md "Network Devices"), then tell it
    that is done. P1 is reaped later (_mark_created,
    or _end_p1 on failure): waiting here for it to finish exiting would hold up the init, which
    waits for its cgroups."""
    cfg, st, cg, parent_sock = c.cfg, c.st, c.cg, c.sock
    c.init_pid = init_pid
    try:
        parent_sock.send(b"g%d" % init_pid)
        info = statemod.proc_stat(init_pid)
        if info is None or info[0] == "Z":
            raise RuntimeFailure("container init exited unexpectedly")
        st["pid"] = init_pid
        st["startTime"] = info[1]
        from oci_reference import jsonlite

        # the paths first: the init mounts them while the join below may wait for a grace period
        parent_sock.send(b"c" + jsonlite.dumps(cg.to_dict()).encode())
        cg.join(init_pid)
        if cfg.net_devices:
            from oci_reference import netdev

            netdev.move_devices(cfg.net_devices, init_pid)
        parent_sock.send(b"j")
    except (OSError, RuntimeFailure):
        # the init builds the rootfs meanwhile and may have failed already: its
        # own message says why, better than the broken pipe or the failed join
        _raise_reported(parent_sock)
        raise


def _run_runtime_namespace_hooks(c):
    """Lifecycle steps 3 and 4: the prestart and createRuntime hooks, in the runtime namespace,
    once the container's namespaces exist (config.md "Prestart", "CreateRuntime Hooks"). A
    failing hook is a HookFailure: _undo_create then goes on at steps 12 and 13."""
    from oci_reference import hooks

    cfg, st = c.cfg, c.st
    statemod.save(c.root, st)
    hs = statemod.hook_state(st, "creating")
    hooks.run_hooks(cfg.hooks, "prestart", hs)
    hooks.run_hooks(cfg.hooks, "createRuntime", hs)
    c.sock.send(b"h")


def _pass_console(c, fd, body):
    """config.md "Process" terminal: the pseudoterminal's master goes to --console-socket."""
    try:
        _send_console(c.console_socket, fd, body)
    finally:
        if fd >= 0:
            os.close(fd)
    c.sock.send(b"t")


def _mark_created(c, pid_file):
    """runtime.md "State": the container is now "created"; --pid-file names its init."""
    if c.pid1 and not c.pid1_reaped:  # long gone by now (it exited after its "P" message)
        os.waitpid(c.pid1, 0)
        c.pid1_reaped = True
    st = c.st
    st["status"] = "created"
    statemod.save(c.root, st)
    if pid_file:
        _write_atomic(pid_file, str(c.init_pid))
    return st


def _undo_create(c, exc, warn):
    """runtime.md "Errors": a failed create leaves the host as if it had not been attempted: no
    init, no cgroups, no state. After a failing prestart or createRuntime hook the lifecycle
    goes on at step 12 (this undoing) and step 13 (the poststop hooks)."""
    cfg, st, init_pid, cg = c.cfg, c.st, c.init_pid, c.cg
    if cfg.seccomp_agent is not None:
        cfg.seccomp_agent.close()
    if c.pid1 and not c.pid1_reaped:
        # P1 may have forked the init already: let it finish, then learn the init's pid
        # from its "P" message, so that no init is left behind to build a container
        late = _end_p1(c.pid1, c.sock)
        info = statemod.proc_stat(late) if late and not init_pid else None
        mine = statemod.proc_stat(os.getpid())
        if info and mine and info[1] >= mine[1]:  # not a pid reused by an older process
            init_pid = late
            st["startTime"] = info[1]
    if c.sock is not None:
        c.sock.close()
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
    statemod.remove_dir(c.dir)
    if isinstance(exc, HookFailure) and cfg.hooks.get("poststop"):
        ops.poststop(st, warn)


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
def _load_setup_modules(cfg):
    """What the setup processes need loaded (before pivot_root), and the last capability."""
    from oci_reference import caps, cgroups, jsonlite, linux, mounts, process  # noqa: F401

    if cfg.seccomp is not None:
        from oci_reference import seccomp

        if not seccomp.available():
            raise RuntimeFailure("linux.seccomp is set but libseccomp.so.2 cannot be loaded")
    return caps.last_cap()


def _direct_init_main(cfg, cid, sock, listener, preserve_fds, flags):
    """The init forked directly by C (_init_forked_directly): already in its pid namespace, it
    makes the other new namespaces itself, then goes on as any init."""
    try:
        last_cap = _load_setup_modules(cfg)
        _unshare(flags)
    except BaseException as e:
        try:
            sock.send(b"E" + _errmsg(e).encode())
        finally:
            os._exit(1)
    _init_main(cfg, cid, sock, listener, preserve_fds, last_cap)


def _child_main(cfg, cid, sock, listener, preserve_fds, flags):
    """P1: namespaces; fork the init; report its pid; exit."""
    try:
        from oci_reference import linux

        last_cap = _load_setup_modules(cfg)
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
        _unshare(flags)
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


class _CreatorLink:
    """The init's end of the channel to the create command (C): what it learns from C, asked
    for only where it is needed (see the module docstring), so that C's cgroup work overlaps
    the rootfs being built."""

    def __init__(self, cfg, sock):
        self.cfg = cfg
        self.sock = sock
        self._host_pid = 0
        self._cgroup = None
        self._joined = False

    def host_pid(self):
        """The init's pid in the runtime's pid namespace. C answers P1's "P" with "g<pid>":
        read it before the first exchange with C."""
        if not self._host_pid:
            msg = self.sock.recv(64)
            if msg[:1] != b"g":
                os._exit(1)
            self._host_pid = int(msg[1:])
        return self._host_pid

    def cgroup(self):
        """The container's cgroups ("c<json>"), which C sends before it puts this process in
        them: a cgroup mount needs only their paths."""
        if self._cgroup is None:
            self.host_pid()
            msg = self.sock.recv(65536)
            if msg[:1] != b"c":
                os._exit(1)
            from oci_reference import cgroups, jsonlite

            self._cgroup = cgroups.Cgroup.from_dict(jsonlite.loads(msg[1:]))
        return self._cgroup

    def in_cgroup(self):
        """Wait until C has put this process in its cgroups ("j"). A new cgroup namespace is
        made then (config-linux.md "Namespaces": cgroup), so that its root is the container's
        own cgroup."""
        if not self._joined:
            self.cgroup()
            if self.sock.recv(16) != b"j":
                os._exit(1)
            self._joined = True
            if self.cfg.new_ns("cgroup"):
                from oci_reference import linux

                try:
                    linux.unshare(linux.CLONE_NEWCGROUP)
                except OSError as e:
                    raise RuntimeFailure(f"linux.namespaces: unshare cgroup: {e.strerror}") from None

    def ask(self, request, answer):
        """Send `request` to C and wait until it answers `answer` (it did the work)."""
        self.sock.send(request)
        if self.sock.recv(16) != answer:
            os._exit(1)


def _init_main(cfg, cid, sock, listener, preserve_fds, last_cap):
    """P2, the container init: the rest of Lifecycle step 2 (runtime.md) and step 5 inside the
    container, then, once `start` asks, steps 7 and 8. One function per step, in order."""
    link = _CreatorLink(cfg, sock)
    conn = None
    try:
        _until_exec_terminating_signals_end_the_init()
        old_umask = _detach_from_the_runtime(preserve_fds)
        p = cfg.process
        _set_oom_score_adj_and_uts_names(cfg, p)
        _import_before_pivot(cfg, p)
        install_seccomp = _seccomp_installer(cfg, cid, link)
        from oci_reference.mounts import RootfsBuilder

        builder = RootfsBuilder(cfg, cfg.ns("user")[0], lambda: link.cgroup().mount_sources())
        builder.prepare()
        link.cgroup()
        if _hooks_before_pivot(cfg):
            link.in_cgroup()  # the hooks see the container in its cgroups
        _ask_for_runtime_namespace_hooks(cfg, link)
        _run_create_container_hooks(cfg, cid)
        builder.pivot()
        _write_sysctls(cfg)
        _make_cwd(p)
        builder.finish()
        link.in_cgroup()  # at the latest before the capabilities are dropped
        install_seccomp = _apply_process_attributes(cfg, p, link, install_seccomp, last_cap)
        exe, env = _prepare_exec(p, old_umask)
        conn = _report_ready_and_wait_for_start(link, listener)
        _run_start_container_hooks(cfg, cid)
        if install_seccomp is not None:
            install_seccomp("created")
        _exec_user_program(exe, p, env)
    except BaseException as e:
        target = conn if conn is not None else link.sock
        try:
            if target is not None:
                target.send((b"F" if isinstance(e, HookFailure) else b"E") + _errmsg(e).encode())
        finally:
            os._exit(1)


def _hooks_before_pivot(cfg):
    """Whether hooks run before pivot_root. Without them, the init pivots (and detaches the old
    root, which waits for an RCU grace period) while C moves it into its cgroups (which may
    wait for another one), and makes its cgroup namespace afterwards."""
    return any(cfg.hooks.get(k) for k in ("prestart", "createRuntime", "createContainer"))


def _until_exec_terminating_signals_end_the_init():
    """pid 1 of a namespace ignores signals it has no handler for; until exec, let the usual
    terminating signals end it (so that a kill or a failed create can stop it)."""
    if os.getpid() == 1:
        import _signal

        for s in _TERMINATING:
            _signal.signal(s, _exit_on_signal)


def _detach_from_the_runtime(preserve_fds):
    """runtime-linux.md "File descriptors": only stdio and the preserved fds reach the user
    program (the others become close-on-exec); a session of its own; umask 0 while the rootfs
    is built (process.umask, or the runtime's, is set back before exec). Returns the old umask."""
    from oci_reference import linux

    os.setsid()
    old_umask = os.umask(0)
    keep = 3 + preserve_fds
    try:
        linux.close_range_cloexec(keep)
    except OSError:  # before Linux 5.11: one fd at a time
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            if fd >= keep:
                try:
                    os.set_inheritable(fd, False)
                except OSError:
                    pass
    return old_umask


def _set_oom_score_adj_and_uts_names(cfg, p):
    """config.md "Linux Process" oomScoreAdj; config.md "Hostname" and "Domainname", set in the
    container's UTS namespace."""
    from oci_reference import linux, process

    if p["oomScoreAdj"] is not None:
        process.set_oom_score_adj(p["oomScoreAdj"])
    if cfg.hostname is not None and cfg.ns("uts")[0]:
        linux.sethostname(cfg.hostname)
    if cfg.domainname is not None and cfg.ns("uts")[0]:
        linux.setdomainname(cfg.domainname)


def _import_before_pivot(cfg, p):
    """After pivot_root the host's Python library is out of reach: import now what the later
    steps need, and only that (each import costs start-up time)."""
    if cfg.hooks.get("startContainer"):
        from oci_reference import hooks  # noqa: F401

        if any(h.get("timeout") for h in cfg.hooks["startContainer"]):
            import select  # noqa: F401
            import time  # noqa: F401
    if p["terminal"]:
        import fcntl  # noqa: F401
        import termios  # noqa: F401


def _seccomp_installer(cfg, cid, link):
    """config-linux.md "Seccomp": compile the filter now (libseccomp is a host library) and
    return the function that loads it, or None. With SCMP_ACT_NOTIFY the listener fd goes to
    the agent with the container process state ("The Container Process State")."""
    if cfg.seccomp is None:
        return None
    from oci_reference import jsonlite, seccomp

    build = seccomp.build(cfg.seccomp, cfg.process["noNewPrivileges"])

    def install_seccomp(status):
        fd = build()
        if fd >= 0:  # SCMP_ACT_NOTIFY: the container process state to the agent
            pid = link.host_pid()
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

    return install_seccomp


def _ask_for_runtime_namespace_hooks(cfg, link):
    """Lifecycle steps 3 and 4 run in the runtime namespace: C runs the prestart and
    createRuntime hooks now that the container's namespaces exist (_run_runtime_namespace_hooks)."""
    if cfg.hooks.get("prestart") or cfg.hooks.get("createRuntime"):
        link.ask(b"H", b"h")


def _run_create_container_hooks(cfg, cid):
    """Lifecycle step 5: the createContainer hooks, in the container namespace, after the
    createRuntime hooks and before pivot_root (config.md "CreateContainer Hooks")."""
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


def _write_sysctls(cfg):
    """config-linux.md "Sysctl": the kernel parameters, in the container's namespaces (its own
    /proc, after pivot_root)."""
    for k, v in cfg.sysctl.items():
        try:
            with open("/proc/sys/" + k.replace(".", "/"), "w") as f:
                f.write(v)
        except OSError as e:
            raise RuntimeFailure(f"linux.sysctl.{k}: {e.strerror}") from None


def _make_cwd(p):
    """config.md "Process" cwd: made when missing, before the rootfs may turn read-only."""
    if not os.path.isdir(p["cwd"]):
        try:  # before the rootfs may turn read-only
            os.makedirs(p["cwd"], 0o755, exist_ok=True)
        except OSError as e:
            raise RuntimeFailure(f"process.cwd {p['cwd']}: {e.strerror}") from None


def _apply_process_attributes(cfg, p, link, install_seccomp, last_cap):
    """config.md "Linux Process" and "POSIX process", config-linux.md "Personality" and "Memory
    policy": the attributes of the process, ending with its user, groups and capabilities
    (config.md "User") and its cwd. Without noNewPrivileges the seccomp filter is loaded here,
    while CAP_SYS_ADMIN is still held; returns the installer still to run at start, or None."""
    from oci_reference import linux, process

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
        link.host_pid()
        _setup_terminal(p, link.sock)
    if p["noNewPrivileges"]:
        linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
    elif install_seccomp is not None:
        install_seccomp("creating")  # needs CAP_SYS_ADMIN without no_new_privs: before dropping caps
        install_seccomp = None
    process.set_identity_and_caps(p, last_cap)
    process.chdir(p["cwd"])
    return install_seccomp


def _prepare_exec(p, old_umask):
    """config.md "Process": args[0] is looked up (PATH from env) and env built now, so that the
    user program starts with no more work than the hooks; the umask is the process's own."""
    from oci_reference import process

    exe = process.find_executable(p["args"][0], p["env"])
    env = process.env_dict(p["env"])
    os.umask(old_umask if p["umask"] is None else p["umask"])
    return exe, env


def _report_ready_and_wait_for_start(link, listener):
    """The container is created (runtime.md "Create"): tell C, then block until `start`
    connects to start.sock and sends "S" (runtime.md "Start"). Returns that connection; it is
    close-on-exec, so its EOF tells `start` that the user program runs."""
    link.host_pid()
    link.sock.send(b"R")
    link.sock.close()
    link.sock = None

    cfd, _ = listener._accept()
    conn = _socket.socket(fileno=cfd)
    listener.close()
    if conn.recv(16) != b"S":
        os._exit(1)
    return conn


def _run_start_container_hooks(cfg, cid):
    """Lifecycle step 7: the startContainer hooks, in the container namespace, before the user
    program runs (config.md "StartContainer Hooks")."""
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


def _exec_user_program(exe, p, env):
    """Lifecycle step 8: run the user program (config.md "Process"), with the default action
    for the signals this init handled or Python ignores."""
    import _signal

    for s in (*_TERMINATING, 13, 25):  # + PIPE, XFSZ that Python ignores
        _signal.signal(s, _signal.SIG_DFL)
    os.execve(exe, p["args"], env)


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
