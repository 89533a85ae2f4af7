"""Facts about the host that decide what a run can do and how to read its results."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 3 < len(field) and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


@dataclass(frozen=True)
class Mount:
    mount_id: int
    parent_id: int
    root: str
    mount_point: str
    options: tuple[str, ...]
    fstype: str
    source: str
    super_options: tuple[str, ...] = ()
    #: the optional fields (``shared:N``, ``master:N``, ``propagate_from:N``, ``unbindable``)
    optional: tuple[str, ...] = ()


def mounts(pid: int | str = "self") -> list[Mount]:
    """The mount table of a process, parsed from /proc/PID/mountinfo (the harness's one parser
    of it; proc(5) describes the fields), in the kernel's order: a later mount at a place hides
    an earlier one."""
    text = Path(f"/proc/{pid}/mountinfo").read_text()
    # Read several times per case (before and after each container, by the leak check) while
    # it rarely changes: the table parsed last is reused when the text is the same.
    global _last_mounts
    if _last_mounts is not None and _last_mounts[0] == text:
        return list(_last_mounts[1])
    result = []
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        f = left.split()
        r = right.split()
        result.append(
            Mount(
                int(f[0]),
                int(f[1]),
                _unescape(f[3]),
                _unescape(f[4]),
                tuple(f[5].split(",")),
                r[0],
                _unescape(r[1]),
                tuple(r[2].split(",")) if len(r) > 2 else (),
                tuple(f[6:]),
            )
        )
    _last_mounts = (text, tuple(result))
    return result


#: the last mountinfo text parsed by :func:`mounts`, and its (immutable) mounts
_last_mounts: tuple[str, tuple[Mount, ...]] | None = None


@lru_cache(maxsize=1)
def cgroup_mode() -> str:
    """``"v2"`` (unified), ``"hybrid"`` (v1 controllers plus a v2 hierarchy) or ``"v1"``."""
    table = {m.mount_point: m.fstype for m in mounts()}
    if table.get("/sys/fs/cgroup") == "cgroup2":
        return "v2"
    if any(fs == "cgroup2" for fs in table.values()):
        return "hybrid"
    return "v1"


@lru_cache(maxsize=1)
def cgroup_controllers() -> frozenset[str]:
    """The cgroup controllers a container can be given here: on a pure v2 host those the root
    cgroup offers (/sys/fs/cgroup/cgroup.controllers), otherwise those of the mounted v1
    hierarchies (a controller bound to v1 is not available in a hybrid host's v2 hierarchy)."""
    if cgroup_mode() == "v2":
        try:
            return frozenset(Path("/sys/fs/cgroup/cgroup.controllers").read_text().split())
        except OSError:
            return frozenset()
    try:  # the kernel's controller names tell them from the other super options (rw, xattr...)
        known = {
            line.split()[0]
            for line in Path("/proc/cgroups").read_text().splitlines()
            if line.strip() and not line.startswith("#")
        }
    except OSError:
        known = set()
    return frozenset(opt for m in mounts() if m.fstype == "cgroup" for opt in m.super_options if opt in known)


def namespace_inodes(pid: int | str = "self") -> dict[str, int]:
    """The inode of each /proc/PID/ns/* entry: two processes share a namespace iff the inodes match."""
    base = Path(f"/proc/{pid}/ns")
    return {entry.name: os.stat(entry).st_ino for entry in base.iterdir()}


def is_root() -> bool:
    return os.geteuid() == 0


def user_namespaces_available() -> bool:
    try:
        return int(Path("/proc/sys/user/max_user_namespaces").read_text()) > 0
    except (OSError, ValueError):
        return False
