"""The Linux system calls the harness needs that Python's ``os`` module lacks (via ctypes), and
their constants: the one place the harness (and its cases) spell a syscall number or a flag.

mount, umount2, unshare, setns, prctl go through libc; openat2 and the new mount API (fsopen,
fsconfig, fsmount, move_mount) through ``syscall(2)`` by number: those numbers are the same on
every architecture (they were added after the syscall tables were unified).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from functools import lru_cache

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000

# mount(2) flags (linux/mount.h)
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MNT_DETACH = 2

PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37

# syscall numbers, the same on every architecture
SYS_MOVE_MOUNT = 429
SYS_FSOPEN = 430
SYS_FSCONFIG = 431
SYS_FSMOUNT = 432
SYS_OPENAT2 = 437

# openat2(2) resolve flags
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10

# the new mount API (linux/mount.h)
FSOPEN_CLOEXEC = 1
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6
FSMOUNT_CLOEXEC = 1
MOVE_MOUNT_F_EMPTY_PATH = 0x4
AT_FDCWD = -100


@lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _check(result: int, what: str) -> int:
    if result == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def unshare(flags: int) -> None:
    _check(_libc().unshare(ctypes.c_int(flags)), "unshare")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = lambda s: None if s is None else s.encode()  # noqa: E731
    _check(_libc().mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)), f"mount {target}")


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc().umount2(target.encode(), ctypes.c_int(flags)), f"umount {target}")


def enter_network_namespace(path: str) -> None:
    """Move the calling process (meant for a child between fork and exec) into the network
    namespace at ``path`` (``/proc/PID/ns/net``, or a file bound to one)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _check(_libc().setns(ctypes.c_int(fd), ctypes.c_int(CLONE_NEWNET)), f"setns {path}")
    finally:
        os.close(fd)


def enter_mount_namespace(path: str) -> None:
    """Move the calling process (a child between fork and exec: single-threaded, its own fs
    state) into the mount namespace at ``path`` (``/proc/PID/ns/mnt``)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _check(_libc().setns(ctypes.c_int(fd), ctypes.c_int(CLONE_NEWNS)), f"setns {path}")
    finally:
        os.close(fd)


def set_child_subreaper(on: bool = True) -> None:
    """Adopt orphaned descendants (a container's init after ``create`` exits) so we can wait for them."""
    _check(
        _libc().prctl(PR_SET_CHILD_SUBREAPER, ctypes.c_ulong(1 if on else 0), 0, 0, 0), "prctl(PR_SET_CHILD_SUBREAPER)"
    )


def is_child_subreaper() -> bool:
    value = ctypes.c_int(0)
    _check(_libc().prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(value), 0, 0, 0), "prctl(PR_GET_CHILD_SUBREAPER)")
    return bool(value.value)


def private_mount_namespace(unmount: tuple[str, ...] = ()) -> None:
    """Move the calling process into a new mount namespace, private, without the given mounts.

    Meant to run in a child between fork and exec (``preexec_fn``): the parent is not affected.
    A path that is not mounted is skipped.
    """
    unshare(CLONE_NEWNS)
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    for path in unmount:
        try:
            umount2(path, MNT_DETACH)
        except OSError as err:
            if err.errno not in (errno.EINVAL, errno.ENOENT):
                raise


def _syscall(number: int, *args: object) -> int:
    """``syscall(number, *args)``; a negative result is an OSError with the errno."""
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    result = libc.syscall(ctypes.c_long(number), *args)
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return int(result)


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def openat2(dir_fd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    """openat2(2): an fd of ``path`` relative to ``dir_fd``, resolved under ``resolve``
    (``RESOLVE_IN_ROOT``...). ENOSYS on kernels before 5.6."""
    how = _OpenHow(flags, mode, resolve)
    return _syscall(
        SYS_OPENAT2, ctypes.c_int(dir_fd), path.encode(), ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how))
    )


def fsopen(fstype: str, flags: int = FSOPEN_CLOEXEC) -> int:
    """fsopen(2): a file system context fd (its kernel messages are read from it)."""
    return _syscall(SYS_FSOPEN, fstype.encode(), ctypes.c_uint(flags))


def fsconfig(fs_fd: int, cmd: int, key: str | None = None, value: str | None = None) -> None:
    """fsconfig(2): ``FSCONFIG_SET_STRING`` key=value, or a command such as ``FSCONFIG_CMD_CREATE``."""
    _syscall(
        SYS_FSCONFIG,
        ctypes.c_int(fs_fd),
        ctypes.c_uint(cmd),
        key.encode() if key else None,
        value.encode() if value is not None else None,
        ctypes.c_int(0),
    )


def fsmount(fs_fd: int, flags: int = FSMOUNT_CLOEXEC, attr_flags: int = 0) -> int:
    """fsmount(2): a detached mount of a created context, as an fd."""
    return _syscall(SYS_FSMOUNT, ctypes.c_int(fs_fd), ctypes.c_uint(flags), ctypes.c_uint(attr_flags))


def move_mount_to(mount_fd: int, target: str) -> None:
    """move_mount(2) of a detached mount (an fd from :func:`fsmount`) onto ``target``."""
    _syscall(
        SYS_MOVE_MOUNT,
        ctypes.c_int(mount_fd),
        b"",
        ctypes.c_int(AT_FDCWD),
        target.encode(),
        ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH),
    )
