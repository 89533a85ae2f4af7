"""The cgroups a runtime made for a container, found and removed when it leaves them behind.

A created container's groups are those of its process named after the container id
(:func:`own_cgroups`). A create that fails has no pid to ask, yet some runtimes leave its
cgroup (crun when it cannot raise RLIMIT_MEMLOCK): :func:`named_cgroups` finds the folders named
exactly after the id. :func:`remove_empty_cgroups` removes them once their last process is gone.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from .. import host
from . import process


def own_cgroups(pid: int | None, container_id: str) -> list[Path]:
    """The host cgroup folders of ``pid`` whose name is the container id (the ones a runtime
    made for this container, whatever its layout), deepest first."""
    found = []
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return []
    mounts = [m for m in host.mounts() if m.fstype in ("cgroup", "cgroup2")]
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if not path.rstrip("/").endswith("/" + container_id):
            continue
        for m in mounts:
            # v1 "4:memory:/p" or "9:name=systemd:/p" lives on the mount with those options;
            # v2 "0::/p" on the cgroup2 mount.
            if (m.fstype == "cgroup2") if not controllers else set(controllers.split(",")) <= set(m.super_options):
                found.append(Path(m.mount_point) / path.lstrip("/"))
    return sorted(set(found), key=lambda p: -len(p.parts))


def named_cgroups(container_id: str, bundle: Path | None = None, default_parent: str | None = None) -> list[Path]:
    """Cgroup folders a runtime may have made for a container it never finished creating (so
    there is no pid to ask): on every cgroup mount, the bundle's ``linux.cgroupsPath`` (a plain
    path), the common default ``/<id>`` and the runtime's own default ``<default_parent>/<id>``
    (its definition's ``default_cgroups_parent``). Only folders named exactly after the container
    id are returned; the harness's ids are unique to a run, so no one else's group can match."""
    paths = {"/" + container_id}
    if default_parent:
        paths.add("/" + default_parent.strip("/") + "/" + container_id)
    if bundle is not None:
        try:
            configured = json.loads((Path(bundle) / "config.json").read_text()).get("linux", {}).get("cgroupsPath")
        except (OSError, ValueError, AttributeError):
            configured = None
        if isinstance(configured, str) and ":" not in configured:
            paths.add("/" + configured.strip("/"))
    found = []
    for m in host.mounts():
        if m.fstype not in ("cgroup", "cgroup2"):
            continue
        for path in paths:
            folder = Path(m.mount_point) / path.lstrip("/")
            if folder.name == container_id and folder.is_dir():
                found.append(folder)
    return sorted(set(found), key=lambda p: -len(p.parts))


def _emptied(procs: Path) -> bool:
    """Whether a cgroup's ``cgroup.procs`` is gone or lists no process."""
    return not procs.exists() or not procs.read_text().strip()


def remove_empty_cgroups(folders: list[Path], timeout: float = 5.0) -> list[Path]:
    """rmdir the cgroup folders a runtime left behind, once their last process has gone (the
    kernel refuses populated ones; a killed container's helpers may take a moment to exit).
    Returns the folders removed."""
    removed: list[Path] = []
    for folder in folders:
        if not folder.is_dir():
            continue
        procs = folder / "cgroup.procs"
        process.until(functools.partial(_emptied, procs), timeout)
        try:
            folder.rmdir()
            removed.append(folder)
        except OSError:
            pass
    return removed
