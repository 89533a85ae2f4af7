"""What a container operation leaves on the host, attributable to one container.

runtime.md#errors: "Unless otherwise stated, generating an error MUST leave the state of the
environment as if the operation were never attempted (modulo any possible trivial ancillary
changes)." A failed operation is checked through more than ``state`` failing: the mounts, the
processes, the cgroups and the state directory it could have left behind. Only what carries
this case's own paths or container id is looked at: other runs create things at the same time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from . import host, leaks
from .runtime import process


@dataclass(frozen=True)
class Traces:
    mounts: frozenset[tuple[str, str]]  # (mount point, fstype) under our folders
    processes: frozenset[tuple[int, str]]  # (pid, command) of our children and of processes rooted in our folders
    cgroups: frozenset[str]  # cgroup folders named after the container id
    state: frozenset[str]  # entries of the runtime's state root

    def changes(self, later: Traces) -> list[str]:
        """What ``later`` has that this snapshot had not, or lost, in words (empty: no change)."""
        out = []
        for name in ("mounts", "processes", "cgroups", "state"):
            before, after = getattr(self, name), getattr(later, name)
            if after - before:
                out.append(f"{name} added: {sorted(after - before)}")
            if before - after:
                out.append(f"{name} removed: {sorted(before - after)}")
        return out


def _processes(folders: tuple[str, ...]) -> set[tuple[int, str]]:
    me = os.getpid()
    found = set()
    # A child subreaper's children, and whatever processes its runtime calls left rooted in
    # its folders, are all among its descendants: only they are looked at.
    for pid in leaks.watched_pids():
        stat = process.stat(pid)
        if stat is None or stat.ended:
            continue
        ours = stat.ppid == me
        if not ours:
            for link in ("root", "cwd"):
                try:
                    if leaks.under(os.readlink(f"/proc/{pid}/{link}"), folders):
                        ours = True
                        break
                except OSError:
                    pass
        if ours:
            found.add((pid, stat.comm))
    return found


def snapshot(
    container_id: str, *, folders: list[Path | str], state_root: Path | None, bundle: Path | None = None
) -> Traces:
    """The traces of ``container_id``: mounts and processes whose paths are under ``folders``
    (the case's tmp folder, its bundles, the state root), children of this process (container
    inits are reparented to the harness, a child subreaper), cgroups named after the id, and the
    state root's entries."""
    from .runtime import named_cgroups

    roots = tuple(os.path.realpath(str(f)) for f in folders)
    if state_root is not None:
        roots += (os.path.realpath(str(state_root)),)
    # a mount point with a component named after the id is ours too ("" and "." name nothing)
    named = container_id not in ("", ".", "..") and "/" not in container_id
    mounts = frozenset(
        (m.mount_point, m.fstype)
        for m in host.mounts()
        if leaks.under(m.mount_point, roots) or (named and container_id in m.mount_point.split("/"))
    )
    state = frozenset(os.listdir(state_root)) if state_root is not None and os.path.isdir(state_root) else frozenset()
    return Traces(
        mounts=mounts,
        processes=frozenset(_processes(roots)),
        cgroups=frozenset(str(p) for p in named_cgroups(container_id, bundle)),
        state=state,
    )


def changes_after(before: Traces, take, timeout: float = 5.0) -> list[str]:
    """``before.changes(take())``, polled until empty or ``timeout``: a process the runtime has
    killed may need a moment to exit, a cgroup to be emptied. What remains after the deadline
    is what the operation left behind."""
    import time

    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        changes = before.changes(take())
        if not changes or time.monotonic() > deadline:
            return changes
        time.sleep(delay)
        delay = min(delay * 2, 0.2)
