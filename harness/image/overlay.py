"""Mounting overlayfs over stored layers, for any depth of layers.

The classic ``mount(2)`` call passes every lowerdir in one option string, which the kernel caps at
a page (4096 bytes): with layer store paths of ~100 bytes that is ~40 layers. The harness uses
the new mount API instead (``fsopen("overlay")``, then one ``fsconfig(FSCONFIG_SET_STRING,
"lowerdir+", path)`` per layer, kernel 6.8 or later, then ``fsmount`` and ``move_mount``), which
has no such limit: each layer path is its own string. Where the kernel lacks it (ENOSYS, or
``lowerdir+`` refused), the classic call is used if the options fit in a page, and a clear error
says what to do if they do not.

The system calls themselves are in :mod:`harness._linux`.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from harness import _linux

from .layout import ImageError

__all__ = ["mount_overlay", "mounts_under", "new_mount_api_available", "unmount"]

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _kernel_log(fs_fd: int) -> str:
    """The messages the kernel queued on an fs context (``e overlay: ...`` lines)."""
    lines = []
    while True:
        try:
            data = os.read(fs_fd, 4096)
        except OSError:
            break
        if not data:
            break
        lines.append(data.decode(errors="replace").strip())
    return "; ".join(lines)


def _check_dirs(lowers: list[Path], upper: Path, work: Path) -> None:
    for p in [*lowers, upper, work]:
        if "," in str(p) or ":" in str(p):
            # overlayfs splits option values at these (escaping is not portable)
            raise ImageError(f"overlay paths may not contain ',' or ':': {p}")
        if not p.is_dir():
            raise ImageError(f"overlay layer folder {p} does not exist")


def new_mount_api_available() -> bool:
    try:
        fd = _linux.fsopen("overlay")
    except OSError:
        return False
    os.close(fd)
    return True


def mount_overlay(target: Path, lowers: list[Path], upper: Path, work: Path) -> str:
    """Mount overlayfs at ``target``: ``lowers`` top first, ``upper`` and ``work`` folders on
    one filesystem. Returns which API mounted it (``"fsconfig"`` or ``"mount"``). Raises
    :class:`~harness.image.layout.ImageError` with the kernel's reason on failure."""
    target, upper, work = Path(target), Path(upper), Path(work)
    lowers = [Path(p) for p in lowers]
    if not lowers:
        raise ImageError("an overlay mount needs at least one lower layer")
    _check_dirs(lowers, upper, work)
    try:
        _mount_fsconfig(target, lowers, upper, work)
        return "fsconfig"
    except _Unsupported as why:
        options = f"lowerdir={':'.join(str(p) for p in lowers)},upperdir={upper},workdir={work}"
        if len(options) >= _PAGE:
            raise ImageError(
                f"cannot mount {len(lowers)} layers at {target}: this kernel lacks overlayfs's "
                f"'lowerdir+' ({why}), and the classic mount options would be {len(options)} "
                f"bytes, over the kernel's limit of {_PAGE - 1}; use kernel 6.8 or later, or "
                "a raw bundle"
            ) from None
        try:
            _linux.mount("overlay", str(target), "overlay", 0, options)
        except OSError as err:
            raise ImageError(f"cannot mount overlayfs at {target}: {err.strerror}") from None
        return "mount"


class _Unsupported(Exception):
    pass


def _mount_fsconfig(target: Path, lowers: list[Path], upper: Path, work: Path) -> None:
    try:
        fs_fd = _linux.fsopen("overlay")
    except OSError as err:
        if err.errno == errno.ENOSYS:
            raise _Unsupported("no fsopen") from None
        raise ImageError(f"cannot mount overlayfs at {target}: fsopen: {err.strerror}") from None
    mnt_fd = -1
    try:

        def config(key: str, value: str | None, cmd: int = _linux.FSCONFIG_SET_STRING) -> None:
            try:
                _linux.fsconfig(fs_fd, cmd, key, value)
            except OSError as err:
                log = _kernel_log(fs_fd)
                if key == "lowerdir+" and err.errno == errno.EINVAL and "lowerdir+" in log:
                    raise _Unsupported(log) from None
                what = f"{key}={value}" if key else "create"
                raise ImageError(
                    f"cannot mount overlayfs at {target}: {what}: {err.strerror}" + (f" (kernel: {log})" if log else "")
                ) from None

        for lower in lowers:
            config("lowerdir+", str(lower))
        config("upperdir", str(upper))
        config("workdir", str(work))
        config("", None, _linux.FSCONFIG_CMD_CREATE)
        try:
            mnt_fd = _linux.fsmount(fs_fd)
            _linux.move_mount_to(mnt_fd, str(target))
        except OSError as err:
            raise ImageError(f"cannot mount overlayfs at {target}: {err.strerror}") from None
    finally:
        if mnt_fd >= 0:
            os.close(mnt_fd)
        os.close(fs_fd)


def mounts_under(path: Path) -> list[Path]:
    """Mount points at or below ``path`` in this mount namespace, deepest (latest) first."""
    from .. import host

    base = os.path.realpath(path)
    found = [
        m.mount_point
        for m in host.mounts()
        if m.mount_point == base or m.mount_point.startswith(base.rstrip("/") + "/")
    ]
    return [Path(p) for p in reversed(found)]


def unmount(target: Path) -> None:
    """Unmount ``target``; if it is busy, detach it (lazy unmount) so it is gone from the tree."""
    try:
        _linux.umount2(str(target), 0)
    except OSError as err:
        if err.errno == errno.EINVAL:  # not a mount point (any more)
            return
        if err.errno != errno.EBUSY:
            raise ImageError(f"cannot unmount {target}: {err.strerror}") from None
        try:
            _linux.umount2(str(target), _linux.MNT_DETACH)
        except OSError as err2:
            raise ImageError(f"cannot unmount {target}: {err2.strerror}") from None
