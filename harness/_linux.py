"""The few Linux system calls the harness needs that Python's ``os`` module lacks (via ctypes)."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from functools import lru_cache

CLONE_NEWNS = 0x00020000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37


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


CLONE_NEWNET = 0x40000000


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
