"""What a folder on disk holds, as plain data, for tests that compare trees: the one place that
walks a tree for a test (symlinks are never followed)."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def snapshot(folder: Path) -> dict[str, tuple]:
    """Everything about a tree that an escape, or a copy, could change: per entry (and each
    folder's own ``.``) its mode, owner, group, link count, mtime and content (a file's bytes, a
    symlink's target, a folder's sorted names)."""
    state: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        for name in dirnames + filenames + ["."]:
            path = Path(dirpath, name)
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode):
                content: object = path.read_bytes()
            elif stat.S_ISLNK(st.st_mode):
                content = os.readlink(path)
            else:
                content = sorted(os.listdir(path)) if stat.S_ISDIR(st.st_mode) else None
            state[str(path.relative_to(folder))] = (
                st.st_mode,
                st.st_uid,
                st.st_gid,
                st.st_nlink,
                st.st_mtime_ns,
                content,
            )
    return state


def contents(root: Path) -> dict[str, tuple]:
    """What a rootfs holds, whichever way it was made (unpacked, copied, overlaid): per entry its
    type, permission bits, owner, group and content (a file's bytes, a symlink's target, a device's
    number); times and link counts left out."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as fh:
                    what: object = fh.read()
            elif stat.S_ISLNK(st.st_mode):
                what = os.readlink(p)
            else:
                what = st.st_rdev
            out[os.path.relpath(p, root)] = (
                stat.S_IFMT(st.st_mode),
                stat.S_IMODE(st.st_mode),
                st.st_uid,
                st.st_gid,
                what,
            )
    return out
