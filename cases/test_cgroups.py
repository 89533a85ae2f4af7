"""Control groups (config-linux.md "Control groups", "Cgroups Path", "Memory", "CPU", "PIDs",
"Unified", "Cgroup ownership"): the container process is placed in the cgroup cgroupsPath names,
the resources are written to that cgroup's files, and delete removes it (runtime.md "Delete").

Checked from outside: /proc/PID/cgroup of the state pid and the cgroup files on the host. On a
v1 or hybrid host the v1 controller files are read (memory.limit_in_bytes...), on a pure v2 host
the unified ones (memory.max...); a check that exists on one kind only says so with requires.
"""

import os
from pathlib import Path

import pytest
from _cgroups import (
    cgroup_dir,
    controller_mounts,
    created_with,
    process_cgroups,
    read_control,
    v2_host,
    with_cgroup,
)
from _errors import expect_create_error

from harness import spec
from harness.pytest_plugin import USERNS_HOST_ID

pytestmark = pytest.mark.requires("root")


# --------------------------------------------------------------------------------------------
# cgroupsPath


@pytest.mark.requires("controller-pids", "controller-memory")
@pytest.mark.spec("linux.cgroups.path-absolute", "runtime.create.applies-config")
def test_absolute_cgroups_path_is_under_the_mount_point(runtime, bundle_factory, container_factory, cgroups_path):
    c = created_with(
        bundle_factory, container_factory, cgroups_path, {"pids": {"limit": 100}, "memory": {"limit": 256 * 2**20}}
    )
    placed = process_cgroups(c.pid)
    wanted = [""] if v2_host() else ["pids", "memory"]
    for ctrl in wanted:
        assert placed.get(ctrl) == cgroups_path.absolute(), (
            f"the container is in {ctrl or 'v2'} cgroup {placed.get(ctrl)!r}, expected {cgroups_path.absolute()!r} (relative to the mount point)"
        )
        assert cgroup_dir(c.pid, ctrl) == controller_mounts()["" if v2_host() else ctrl] / cgroups_path.name


def places_of_two_containers(bundle_factory, container_factory, cgroups_path, path):
    """The pids cgroup folder of each of two containers run one after the other with the same
    cgroupsPath ``path``."""
    places = []
    for _ in range(2):
        c = container_factory(bundle_factory("exit", "0", edit=with_cgroup(path, {"pids": {"limit": 100}})))
        c.create()
        cgroups_path.record(c.pid)
        places.append(cgroup_dir(c.pid, "pids"))
        c.start()
        c.wait()
        c.delete()
    return places


@pytest.mark.requires("controller-pids")
@pytest.mark.spec("linux.cgroups.path-relative", "linux.cgroups.path-consistent")
def test_relative_cgroups_path_is_consistent(runtime, bundle_factory, container_factory, cgroups_path):
    places = places_of_two_containers(bundle_factory, container_factory, cgroups_path, cgroups_path.name)
    assert places[0] == places[1], f"the same relative cgroupsPath {cgroups_path.name!r} gave two places: {places}"
    assert places[0].name == cgroups_path.name, f"relative cgroupsPath {cgroups_path.name!r} ended up at {places[0]}"


@pytest.mark.requires("controller-pids")
@pytest.mark.spec("linux.cgroups.path-consistent")
def test_absolute_cgroups_path_is_consistent(runtime, bundle_factory, container_factory, cgroups_path):
    places = places_of_two_containers(bundle_factory, container_factory, cgroups_path, cgroups_path.absolute())
    assert places[0] == places[1], f"the same cgroupsPath {cgroups_path.absolute()!r} gave two places: {places}"


@pytest.mark.requires("controller-pids")
@pytest.mark.spec("runtime.delete.removes-resources", "runtime.lifecycle.destroy", "linux.cgroups.created")
def test_delete_removes_the_cgroup(runtime, bundle_factory, container_factory, cgroups_path):
    c = created_with(bundle_factory, container_factory, cgroups_path, {"pids": {"limit": 100}})
    made = list(cgroups_path.seen)
    assert made, f"the container is in no cgroup named {cgroups_path.name}: {process_cgroups(c.pid)}"
    assert all(folder.is_dir() for folder in made)
    c.start()
    c.wait()
    c.delete()
    left = [str(folder) for folder in made if folder.exists()]
    assert not left, f"delete left the container's cgroups behind: {left}"


# --------------------------------------------------------------------------------------------
# Resources


@pytest.mark.requires("controller-memory")
@pytest.mark.spec("linux.cgroups.memory.limit")
def test_memory_limit(runtime, bundle_factory, container_factory, cgroups_path):
    limit = 96 * 2**20
    c = created_with(bundle_factory, container_factory, cgroups_path, {"memory": {"limit": limit}})
    value = read_control(c.pid, ("memory", "memory.limit_in_bytes"), "memory.max")
    assert value == str(limit), f"memory limit file reads {value!r}, expected {limit}"


@pytest.mark.requires("controller-memory")
@pytest.mark.spec("linux.cgroups.memory.reservation")
def test_memory_reservation(runtime, bundle_factory, container_factory, cgroups_path):
    limit, reservation = 96 * 2**20, 48 * 2**20
    c = created_with(
        bundle_factory, container_factory, cgroups_path, {"memory": {"limit": limit, "reservation": reservation}}
    )
    value = read_control(c.pid, ("memory", "memory.soft_limit_in_bytes"), "memory.low")
    assert value == str(reservation), f"memory soft limit file reads {value!r}, expected {reservation}"


@pytest.mark.requires("controller-pids")
@pytest.mark.spec("linux.cgroups.pids.limit")
def test_pids_limit(runtime, bundle_factory, container_factory, cgroups_path):
    c = created_with(bundle_factory, container_factory, cgroups_path, {"pids": {"limit": 37}})
    value = read_control(c.pid, ("pids", "pids.max"), "pids.max")
    assert value == "37", f"pids.max reads {value!r}, expected 37"


@pytest.mark.requires("controller-cpu")
@pytest.mark.requires("cgroup-v1")
@pytest.mark.spec("linux.cgroups.cpu.shares")
def test_cpu_shares(runtime, bundle_factory, container_factory, cgroups_path):
    # cgroup v1 only: on v2 shares become cpu.weight by a conversion the spec does not define.
    c = created_with(bundle_factory, container_factory, cgroups_path, {"cpu": {"shares": 512}})
    value = read_control(c.pid, ("cpu", "cpu.shares"), "cpu.weight")
    assert value == "512", f"cpu.shares reads {value!r}, expected 512"


def cpu_bandwidth(pid, field):
    """The container cgroup's CPU ``field``, "quota" or "period": cpu.max's first or second
    value on cgroup v2, cpu.cfs_quota_us or cpu.cfs_period_us on v1."""
    if v2_host():
        return read_control(pid, ("cpu", "-"), "cpu.max").split()[("quota", "period").index(field)]
    return read_control(pid, ("cpu", f"cpu.cfs_{field}_us"), "-")


@pytest.mark.requires("controller-cpu")
@pytest.mark.spec("linux.cgroups.cpu.quota")
def test_cpu_quota(runtime, bundle_factory, container_factory, cgroups_path):
    c = created_with(bundle_factory, container_factory, cgroups_path, {"cpu": {"quota": 25000, "period": 100000}})
    quota = cpu_bandwidth(c.pid, "quota")
    assert quota == "25000", f"the cgroup's CPU quota is {quota!r}, expected 25000"


@pytest.mark.requires("controller-cpu")
@pytest.mark.spec("linux.cgroups.cpu.period")
def test_cpu_period(runtime, bundle_factory, container_factory, cgroups_path):
    c = created_with(bundle_factory, container_factory, cgroups_path, {"cpu": {"quota": 30000, "period": 60000}})
    period = cpu_bandwidth(c.pid, "period")
    assert period == "60000", f"the cgroup's CPU period is {period!r}, expected 60000"


def _first_cpu_and_node():
    cpus = sorted(os.sched_getaffinity(0))
    nodes = Path("/sys/devices/system/node/online")
    node = nodes.read_text().strip().split(",")[0].split("-")[0] if nodes.exists() else "0"
    return str(cpus[-1]), node


@pytest.mark.requires("controller-cpuset")
@pytest.mark.spec("linux.cgroups.cpu.cpus")
def test_cpuset_cpus(runtime, bundle_factory, container_factory, cgroups_path):
    cpu, node = _first_cpu_and_node()
    c = created_with(bundle_factory, container_factory, cgroups_path, {"cpu": {"cpus": cpu, "mems": node}})
    value = read_control(c.pid, ("cpuset", "cpuset.cpus"), "cpuset.cpus")
    assert value == cpu, f"cpuset.cpus reads {value!r}, expected {cpu!r}"
    allowed = sorted(os.sched_getaffinity(c.pid))
    assert allowed == [int(cpu)], f"the container process may run on CPUs {allowed}, expected only {cpu}"


@pytest.mark.requires("controller-cpuset")
@pytest.mark.spec("linux.cgroups.cpu.mems")
def test_cpuset_mems(runtime, bundle_factory, container_factory, cgroups_path):
    cpu, node = _first_cpu_and_node()
    c = created_with(bundle_factory, container_factory, cgroups_path, {"cpu": {"cpus": cpu, "mems": node}})
    value = read_control(c.pid, ("cpuset", "cpuset.mems"), "cpuset.mems")
    assert value == node, f"cpuset.mems reads {value!r}, expected {node!r}"


@pytest.mark.requires("controller-pids", "controller-memory")
@pytest.mark.requires("cgroup-v2")
@pytest.mark.spec("linux.cgroups.unified.written")
def test_unified_entry_written(runtime, bundle_factory, container_factory, cgroups_path):
    c = created_with(
        bundle_factory, container_factory, cgroups_path, {"unified": {"pids.max": "23", "memory.high": "50331648"}}
    )
    assert read_control(c.pid, ("pids", "-"), "pids.max") == "23"
    assert read_control(c.pid, ("memory", "-"), "memory.high") == "50331648"


@pytest.mark.requires("cgroup-v2")
@pytest.mark.spec("linux.cgroups.unified.missing-controller", "runtime.errors.no-change")
def test_unified_entry_of_missing_controller_is_an_error(runtime, bundle_factory, container_factory, cgroups_path):
    bundle = bundle_factory(
        "exit", "0", edit=with_cgroup(cgroups_path.absolute(), {"unified": {"nosuchcontroller.max": "1"}})
    )
    expect_create_error(container_factory(bundle), "unified names a controller that does not exist")


# --------------------------------------------------------------------------------------------
# Ownership (user namespaces)

HOST_ID = USERNS_HOST_ID


def _writable_cgroup_mount(config):
    for m in config["mounts"]:
        if m.get("destination") == "/sys/fs/cgroup":
            m["options"] = [o for o in m.get("options", []) if o != "ro"]


def assert_cgroups_not_chowned(userns_bundle, container_factory, cgroups_path, cgroupns, where):
    """A user-namespaced container with a pids limit and a writable cgroup mount, with a new
    cgroup namespace or not (``cgroupns``): its cgroups stay root's, as they must ``where``."""

    def edit(config):
        with_cgroup(cgroups_path.absolute(), {"pids": {"limit": 100}})(config)
        spec.set_namespace(config, "cgroup", present=cgroupns)
        _writable_cgroup_mount(config)

    c = container_factory(userns_bundle("exit", "0", edit=edit))
    c.create()
    cgroups_path.record(c.pid)
    owners = {str(folder): os.stat(folder).st_uid for folder in cgroups_path.seen if folder.exists()}
    assert owners, f"the container is in no cgroup named {cgroups_path.name}"
    chowned = {folder: uid for folder, uid in owners.items() if uid != 0}
    assert not chowned, f"{where} the container's cgroups were given to other owners: {chowned}"


@pytest.mark.requires("controller-pids")
@pytest.mark.requires("cgroup-v1", "userns")
@pytest.mark.spec("linux.cgroups.ownership-v1")
def test_no_cgroup_chown_on_v1(runtime, userns_bundle, container_factory, cgroups_path):
    assert_cgroups_not_chowned(userns_bundle, container_factory, cgroups_path, True, "on cgroup v1")


@pytest.mark.requires("controller-pids")
@pytest.mark.requires("userns")
@pytest.mark.spec("linux.cgroups.ownership-needs-cgroupns")
def test_no_cgroup_chown_without_cgroup_namespace(runtime, userns_bundle, container_factory, cgroups_path):
    assert_cgroups_not_chowned(userns_bundle, container_factory, cgroups_path, False, "without a new cgroup namespace")
