"""Helpers of the cgroup cases: where a container's cgroups are on the host, reading their
control files, and a cgroupsPath unique to a case whose leftovers are removed at teardown."""

from pathlib import Path

import pytest

from harness import host

CGROUP_ROOT = Path("/sys/fs/cgroup")


def v2_host():
    return host.cgroup_mode() == "v2"


def controller_mounts():
    """``{controller or "" for the v2 hierarchy: its mount point}`` in the harness's mount namespace.

    The controllers of a v1 hierarchy are its super options in /proc/self/mountinfo
    ("rw,cpu,cpuacct", "rw,name=systemd").
    """
    found = {}
    for m in host.mounts():
        fstype, mount_point = m.fstype, Path(m.mount_point)
        # a later mount at or above an earlier one hides it (nox -s conformance-v2 binds the v2
        # hierarchy over /sys/fs/cgroup, hiding the v1 hierarchies under it): drop those
        found = {c: p for c, p in found.items() if p != mount_point and mount_point not in p.parents}
        if fstype == "cgroup2":
            found[""] = mount_point
        elif fstype == "cgroup":
            for opt in m.super_options:
                if (
                    opt in ("rw", "ro")
                    or ("=" in opt and not opt.startswith("name="))
                    or opt in ("xattr", "noprefix", "clone_children", "cpuset_v2_mode", "favordynmods")
                ):
                    continue
                found[opt] = mount_point
    return found


def process_cgroups(pid):
    """``{controller: cgroup path}`` from /proc/PID/cgroup; the v2 entry is under ``""``."""
    result = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for ctrl in controllers.split(",") if controllers else [""]:
            result[ctrl] = path
    return result


def cgroup_dir(pid, controller):
    """The host folder of the cgroup of ``pid`` for ``controller`` (ignored on a v2 host)."""
    key = "" if v2_host() else controller
    path = process_cgroups(pid).get(key)
    mount = controller_mounts().get(key)
    assert path is not None and mount is not None, (
        f"process {pid} has no {controller or 'v2'} cgroup: {process_cgroups(pid)}"
    )
    return mount / path.lstrip("/")


def read_control(pid, v1, v2):
    """The content of a control file of the container's cgroup: ``v1`` is (controller, file), ``v2`` a file name."""
    controller, name = v1
    folder = cgroup_dir(pid, controller)
    return (folder / (v2 if v2_host() else name)).read_text().strip()


class CgroupsPath:
    """A cgroupsPath unique to the case, named after one of its container ids: what the runtime
    leaves of it is found, reported and removed by the leak check (harness.leaks), which knows
    it by that id."""

    def __init__(self, name):
        self.name = name
        self.seen = []  # host folders the case saw the runtime make

    def absolute(self):
        return "/" + self.name

    def record(self, pid):
        mounts = controller_mounts()
        for ctrl, path in process_cgroups(pid).items():
            if ctrl in mounts and path.endswith("/" + self.name):
                self.seen.append(mounts[ctrl] / path.lstrip("/"))


@pytest.fixture
def cgroups_path(container_id):
    # nothing to tear down here: removing the runtime's leftovers before the leak check ran
    # (this fixture's teardown comes first) would hide them from it
    return CgroupsPath(f"oci-harness-{container_id()}")


def with_cgroup(path, resources=None):
    def edit(config):
        config["linux"]["cgroupsPath"] = path
        if resources:
            config["linux"].setdefault("resources", {}).update(resources)

    return edit


def created_with(bundle_factory, container_factory, cgroups_path, resources):
    c = container_factory(bundle_factory("exit", "0", edit=with_cgroup(cgroups_path.absolute(), resources)))
    c.create()
    cgroups_path.record(c.pid)
    return c
