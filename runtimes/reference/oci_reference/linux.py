"""Thin ctypes wrappers around the Linux system calls Python's `os` module lacks.

Every wrapper raises OSError (with errno set) on failure, naming the call and its target.
"""

import _ctypes
import errno

from oci_reference import oslite as os  # not `os` itself: see oslite

# A minimal foreign-function layer on the _ctypes extension itself: importing the `ctypes`
# package (struct, types, _endian, dozens of classes) costs ~2 ms per process, and the
# create path runs this module in two of them.  Structures are passed as bytes.


class _c_int(_ctypes._SimpleCData):
    _type_ = "i"


class _c_uint(_ctypes._SimpleCData):
    _type_ = "I"


class _c_long(_ctypes._SimpleCData):
    _type_ = "l"


class _c_ulong(_ctypes._SimpleCData):
    _type_ = "L"


class _c_char_p(_ctypes._SimpleCData):
    _type_ = "z"


class _c_void_p(_ctypes._SimpleCData):
    _type_ = "P"


class _c_char(_ctypes._SimpleCData):
    _type_ = "c"


class _u64_pair(_ctypes.Array):  # struct rlimit64, written by the kernel
    _type_ = _c_char
    _length_ = 16


class _Func(_ctypes.CFuncPtr):
    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
    _restype_ = _c_int


class _Lib:
    def __init__(self):
        self._handle = _ctypes.dlopen(None, os.RTLD_NOW)

    def __getattr__(self, name):
        f = _Func((name, self))
        setattr(self, name, f)
        return f


_libc = _Lib()

# --- constants -------------------------------------------------------------------------
CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

NAMESPACE_FLAGS = {
    "pid": CLONE_NEWPID,
    "network": CLONE_NEWNET,
    "mount": CLONE_NEWNS,
    "ipc": CLONE_NEWIPC,
    "uts": CLONE_NEWUTS,
    "user": CLONE_NEWUSER,
    "cgroup": CLONE_NEWCGROUP,
    "time": CLONE_NEWTIME,
}
# the name of each namespace under /proc/<pid>/ns/
NAMESPACE_PROC_NAMES = {
    "pid": "pid",
    "network": "net",
    "mount": "mnt",
    "ipc": "ipc",
    "uts": "uts",
    "user": "user",
    "cgroup": "cgroup",
    "time": "time",
}

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_I_VERSION = 1 << 23
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25
MS_PROPAGATION = MS_SHARED | MS_SLAVE | MS_PRIVATE | MS_UNBINDABLE

MNT_DETACH = 2

# statvfs f_flag bits
ST_RDONLY = 1
ST_NOSUID = 2
ST_NODEV = 4
ST_NOEXEC = 8
ST_NOATIME = 1024
ST_NODIRATIME = 2048
ST_RELATIME = 4096

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_SET_NAME = 15
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

# open_how.resolve flags for openat2
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

# mount_setattr
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR__ATIME = 0x70
MOUNT_ATTR_RELATIME = 0x0
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_NOSYMFOLLOW = 0x200000
MOUNT_ATTR_IDMAP = 0x100000
OPEN_TREE_CLONE = 1
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOVE_MOUNT_T_EMPTY_PATH = 0x40

# x86_64 system call numbers (the runtime targets x86_64; others via libc where possible)
SYS_capget = 125
SYS_prlimit64 = 302
SYS_close_range = 436
SYS_capset = 126
SYS_pivot_root = 155
SYS_ioprio_set = 251
SYS_set_mempolicy = 238
SYS_sched_setattr = 314
SYS_open_tree = 428
SYS_move_mount = 429
SYS_openat2 = 437
SYS_mount_setattr = 442


_mount = _libc.mount
_mount.argtypes = (_c_char_p, _c_char_p, _c_char_p, _c_ulong, _c_char_p)
_umount2 = _libc.umount2
_umount2.argtypes = (_c_char_p, _c_int)
_unshare = _libc.unshare
_unshare.argtypes = (_c_int,)
_setns = _libc.setns
_setns.argtypes = (_c_int, _c_int)
_sethostname = _libc.sethostname
_sethostname.argtypes = (_c_char_p, _c_ulong)
_setdomainname = _libc.setdomainname
_setdomainname.argtypes = (_c_char_p, _c_ulong)
_prctl = _libc.prctl
_prctl.argtypes = (_c_int, _c_ulong, _c_ulong, _c_ulong, _c_ulong)
_personality = _libc.personality
_personality.argtypes = (_c_ulong,)
_syscall = _libc.syscall
_syscall.restype = _c_long


def _enc(s):
    if s is None:
        return None
    if isinstance(s, bytes):
        return s
    return os.fsencode(s)


def _fail(what, target=None):
    e = _ctypes.get_errno()
    msg = f"{what} {target}: {os.strerror(e)}" if target is not None else f"{what}: {os.strerror(e)}"
    raise OSError(e, msg)


def mount(source, target, fstype, flags=0, data=None):
    if _mount(_enc(source), _enc(target), _enc(fstype), flags, _enc(data)) != 0:
        _fail("mount", target)


def umount2(target, flags=0):
    if _umount2(_enc(target), flags) != 0:
        _fail("umount2", target)


def unshare(flags):
    if _unshare(flags) != 0:
        _fail("unshare")


def setns(fd, nstype=0):
    if _setns(fd, nstype) != 0:
        _fail("setns")


def pivot_root(new_root, put_old):
    if _syscall(_c_long(SYS_pivot_root), _c_char_p(_enc(new_root)), _c_char_p(_enc(put_old))) != 0:
        _fail("pivot_root", new_root)


def sethostname(name):
    b = _enc(name)
    if _sethostname(b, len(b)) != 0:
        _fail("sethostname")


def setdomainname(name):
    b = _enc(name)
    if _setdomainname(b, len(b)) != 0:
        _fail("setdomainname")


def prctl(option, a2=0, a3=0, a4=0, a5=0):
    r = _prctl(option, a2, a3, a4, a5)
    if r < 0:
        _fail(f"prctl({option})")
    return r


def personality(persona):
    if _personality(persona) == -1:
        _fail("personality")


def ioprio_set(which, who, prio):
    if _syscall(_c_long(SYS_ioprio_set), _c_int(which), _c_int(who), _c_int(prio)) != 0:
        _fail("ioprio_set")


def sched_setattr(policy, flags, nice, priority, runtime, deadline, period):
    """sched_setattr(2) on the calling thread; a fair policy takes the nice value here, a
    real-time one gets it with setpriority (the spec gives both)."""
    attr = (
        b"".join(v.to_bytes(4, "little") for v in (56, policy))
        + flags.to_bytes(8, "little")
        + nice.to_bytes(4, "little", signed=True)
        + priority.to_bytes(4, "little")
        + _u64s(runtime, deadline, period)
        + bytes(8)
    )
    if _syscall(_c_long(SYS_sched_setattr), _c_int(0), _c_char_p(attr), _c_uint(0)) != 0:
        _fail("sched_setattr")
    if policy in (1, 2, 6) and nice:
        os.setpriority(os.PRIO_PROCESS, 0, nice)


def set_mempolicy(mode, nodes):
    """set_mempolicy(2) with the nodes as a bitmask (the kernel reads maxnode - 1 bits)."""
    mask = 0
    for n in nodes:
        mask |= 1 << n
    words = (max(nodes) // 64 + 1) if nodes else 0
    raw = mask.to_bytes(8 * words, "little") if words else None
    if (
        _syscall(_c_long(SYS_set_mempolicy), _c_int(mode), _c_char_p(raw), _c_ulong(64 * words + 1 if words else 0))
        != 0
    ):
        _fail("set_mempolicy")


def _u64s(*values):
    return b"".join(v.to_bytes(8, "little") for v in values)


#: openat2(2): with RESOLVE_IN_ROOT or RESOLVE_BENEATH, a ".." in the walk fails with EAGAIN
#: when a rename or mount anywhere on the system raced it, and "the caller may choose to retry"
OPENAT2_ATTEMPTS = 100


def openat2(dirfd, path, flags, resolve, mode=0):
    how = _u64s(flags | os.O_CLOEXEC, mode, resolve)  # struct open_how
    for _ in range(OPENAT2_ATTEMPTS):
        fd = _syscall(_c_long(SYS_openat2), _c_int(dirfd), _c_char_p(_enc(path)), _c_char_p(how), _c_ulong(24))
        if fd >= 0:
            return fd
        if _ctypes.get_errno() != errno.EAGAIN or not resolve & (RESOLVE_IN_ROOT | RESOLVE_BENEATH):
            _fail("openat2", path)
    raise OSError(
        errno.EAGAIN,
        f"openat2 {path}: {os.strerror(errno.EAGAIN)} {OPENAT2_ATTEMPTS} times in a row (renames or mounts elsewhere "
        "on the host kept racing the walk of its '..' inside the root); try again when the host is quieter",
    )


def mount_setattr(fd, attr_set, attr_clr, recursive=True, propagation=0, userns_fd=0):
    attr = _u64s(attr_set, attr_clr, propagation, userns_fd)  # struct mount_attr
    flags = AT_EMPTY_PATH | (AT_RECURSIVE if recursive else 0)
    if (
        _syscall(_c_long(SYS_mount_setattr), _c_int(fd), _c_char_p(b""), _c_uint(flags), _c_char_p(attr), _c_ulong(32))
        != 0
    ):
        _fail("mount_setattr")


def open_tree(path, recursive):
    """A detached copy of the mount tree at `path` (of the mount alone unless `recursive`)."""
    flags = OPEN_TREE_CLONE | os.O_CLOEXEC | (AT_RECURSIVE if recursive else 0)
    fd = _syscall(_c_long(SYS_open_tree), _c_int(-100), _c_char_p(_enc(path)), _c_uint(flags))
    if fd < 0:
        _fail("open_tree", path)
    return fd


def move_mount(fd, target_fd):
    """Attach the detached mount `fd` onto the file or folder open at `target_fd` (an O_PATH fd:
    a /proc/self/fd path would name the magic link itself, which move_mount does not follow)."""
    if (
        _syscall(
            _c_long(SYS_move_mount),
            _c_int(fd),
            _c_char_p(b""),
            _c_int(target_fd),
            _c_char_p(b""),
            _c_uint(MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH),
        )
        != 0
    ):
        _fail("move_mount", f"/proc/self/fd/{target_fd}")


CLOSE_RANGE_CLOEXEC = 1 << 2
RLIM_INFINITY = (1 << 64) - 1


def close_range_cloexec(first):
    """Mark every fd from `first` up close-on-exec, in one call (close_range(2), Linux 5.11)."""
    if _syscall(_c_long(SYS_close_range), _c_uint(first), _c_uint(0xFFFFFFFF), _c_uint(CLOSE_RANGE_CLOEXEC)) != 0:
        _fail("close_range")


def prlimit(resource, limits=None):
    """prlimit(2) on this process: set (soft, hard) when given; return the (soft, hard) before.
    RLIM_INFINITY is (1 << 64) - 1. One system call, and no `resource` module to load."""
    new = _u64s(*limits) if limits is not None else None
    old = _u64_pair()
    if _syscall(_c_long(SYS_prlimit64), _c_int(0), _c_int(resource), _c_char_p(new), old) != 0:
        _fail(f"setrlimit({resource})" if limits is not None else f"getrlimit({resource})")
    raw = old.raw
    return int.from_bytes(raw[:8], "little"), int.from_bytes(raw[8:], "little")


# --- capabilities ----------------------------------------------------------------------
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def _u32s(*values):
    return b"".join((v & 0xFFFFFFFF).to_bytes(4, "little") for v in values)


def capset(effective, permitted, inheritable):
    """Set the three capability sets of this thread from 64-bit masks."""
    hdr = _u32s(_LINUX_CAPABILITY_VERSION_3, 0)
    data = _u32s(effective, permitted, inheritable, effective >> 32, permitted >> 32, inheritable >> 32)
    if _syscall(_c_long(SYS_capset), _c_char_p(hdr), _c_char_p(data)) != 0:
        _fail("capset")


def capget():
    """(effective, permitted, inheritable) of this process, from /proc/self/status."""
    eff = prm = inh = 0
    with open("/proc/self/status", "rb") as f:
        for line in f:
            if line.startswith(b"CapEff:"):
                eff = int(line.split()[1], 16)
            elif line.startswith(b"CapPrm:"):
                prm = int(line.split()[1], 16)
            elif line.startswith(b"CapInh:"):
                inh = int(line.split()[1], 16)
    return eff, prm, inh
