"""Cgroup resources beyond the basic limits (config-linux.md "Memory", "CPU", "Block IO", "Huge page
limits", "Network", "PIDs", "RDMA", "Allowed Device list", "Unified", "Cgroup ownership",
"IntelRdt"; features-linux.md "Cgroup").

Checked from the host: the control files of the container's cgroup (v1 names on a v1 or hybrid
host, v2 names on a pure v2 host), and from inside where the effect is visible (device access).
A case whose controller or control file this host lacks skips, naming it; a property added in a
later spec release skips on a runtime whose features output does not claim that release.
"""

import contextlib
import fcntl
import json
import os
import tempfile
from pathlib import Path

import pytest
from _cgroups import (
    CGROUP_ROOT,
    cgroup_dir,
    created_with,
    read_control,
    v2_host,
    with_cgroup,
)
from _errors import expect_error

from harness import _linux, features, host, spec
from harness.pytest_plugin import USERNS_HOST_ID

pytestmark = pytest.mark.requires("root")

SINCE_1_1 = {"at_least": "1.1.0"}


def refused(bundle_factory, container_factory, cgroups_path, resources, what):
    bundle = bundle_factory("exit", "0")
    bundle.edit(with_cgroup(cgroups_path.absolute(), resources), validate=False)
    expect_error(container_factory(bundle), what)


def v1_root_has(controller, *names):
    """Skip unless the root of the v1 hierarchy of ``controller`` has one of the control files."""
    root = CGROUP_ROOT / controller
    if not any((root / n).exists() for n in names):
        pytest.skip(f"this host's {controller} cgroup controller has no {' or '.join(names)} (see {root})")


# --------------------------------------------------------------------------------------------
# Memory


@pytest.mark.requires("controller-memory")
@pytest.mark.spec("linux.cgroups.memory.unlimited")
def test_memory_limit_minus_one_is_unlimited(runtime, bundle_factory, container_factory, cgroups_path):
    c = created_with(bundle_factory, container_factory, cgroups_path, {"memory": {"limit": -1}})
    value = read_control(c.pid, ("memory", "memory.limit_in_bytes"), "memory.max")
    unlimited = value == "max" if v2_host() else int(value) >= 2**62
    assert unlimited, f"memory limit -1 means unlimited; the cgroup's limit file reads {value!r}"


@pytest.mark.requires("controller-memory")
@pytest.mark.spec("linux.cgroups.memory.swap")
def test_memory_swap_limit(runtime, bundle_factory, container_factory, cgroups_path):
    if not v2_host():
        v1_root_has("memory", "memory.memsw.limit_in_bytes")  # swap accounting
    limit, swap = 64 * 2**20, 96 * 2**20
    c = created_with(bundle_factory, container_factory, cgroups_path, {"memory": {"limit": limit, "swap": swap}})
    if v2_host():  # memory+swap in the spec, swap alone in memory.swap.max
        value, wanted = read_control(c.pid, ("memory", "-"), "memory.swap.max"), str(swap - limit)
    else:
        value, wanted = read_control(c.pid, ("memory", "memory.memsw.limit_in_bytes"), "-"), str(swap)
    assert value == wanted, (
        f"memory+swap limit {swap} with memory limit {limit}: the swap limit file reads {value!r}, expected {wanted}"
    )


@pytest.mark.requires("controller-memory", "cgroup-v1")
@pytest.mark.spec("linux.cgroups.memory.kernel-tcp")
def test_memory_kernel_tcp_limit(runtime, bundle_factory, container_factory, cgroups_path):
    v1_root_has("memory", "memory.kmem.tcp.limit_in_bytes")
    c = created_with(bundle_factory, container_factory, cgroups_path, {"memory": {"kernelTCP": 32 * 2**20}})
    value = read_control(c.pid, ("memory", "memory.kmem.tcp.limit_in_bytes"), "-")
    assert value == str(32 * 2**20), f"memory.kmem.tcp.limit_in_bytes reads {value!r}, expected {32 * 2**20}"


@pytest.mark.requires("controller-memory", "cgroup-v1")
@pytest.mark.spec("linux.cgroups.memory.swappiness")
def test_memory_swappiness(runtime, bundle_factory, container_factory, cgroups_path):
    c = created_with(bundle_factory, container_factory, cgroups_path, {"memory": {"swappiness": 13}})
    value = read_control(c.pid, ("memory", "memory.swappiness"), "-")
    assert value == "13", f"memory.swappiness reads {value!r}, expected 13"


def oom_kill_disable(pid):
    fields = dict(line.split() for line in read_control(pid, ("memory", "memory.oom_control"), "-").splitlines())
    return fields["oom_kill_disable"]


@pytest.mark.requires("controller-memory", "cgroup-v1")
@pytest.mark.spec("linux.cgroups.memory.disable-oom-killer")
def test_disable_oom_killer(runtime, bundle_factory, container_factory, cgroups_path):
    c = created_with(
        bundle_factory, container_factory, cgroups_path, {"memory": {"limit": 64 * 2**20, "disableOOMKiller": True}}
    )
    assert oom_kill_disable(c.pid) == "1", (
        f"disableOOMKiller true: memory.oom_control says oom_kill_disable {oom_kill_disable(c.pid)}"
    )


@pytest.mark.requires("controller-memory", "cgroup-v1")
@pytest.mark.spec("linux.cgroups.memory.oom-killer-default")
@pytest.mark.parametrize("setting", [None, False], ids=["unset", "false"])
def test_oom_killer_enabled_by_default(runtime, bundle_factory, container_factory, cgroups_path, setting):
    memory = {"limit": 64 * 2**20} | ({} if setting is None else {"disableOOMKiller": setting})
    c = created_with(bundle_factory, container_factory, cgroups_path, {"memory": memory})
    assert oom_kill_disable(c.pid) == "0", (
        f"disableOOMKiller {setting}: memory.oom_control says oom_kill_disable {oom_kill_disable(c.pid)}"
    )


@pytest.mark.requires("controller-memory", "cgroup-v2")
@pytest.mark.spec("linux.cgroups.unified.conversion-error", "runtime.errors.no-change")
def test_v1_only_memory_setting_on_v2_is_an_error(runtime, bundle_factory, container_factory, cgroups_path):
    refused(
        bundle_factory,
        container_factory,
        cgroups_path,
        {"memory": {"kernelTCP": 32 * 2**20}},
        "memory.kernelTCP on cgroup v2",
    )


# --------------------------------------------------------------------------------------------
# CPU


@pytest.mark.requires("controller-cpu")
@pytest.mark.feature("ociVersionMax", what="linux.resources.cpu.burst", **SINCE_1_1)
@pytest.mark.spec("linux.cgroups.cpu.burst")
def test_cpu_burst(runtime, bundle_factory, container_factory, cgroups_path):
    if not v2_host():
        v1_root_has("cpu", "cpu.cfs_burst_us")
    c = created_with(
        bundle_factory, container_factory, cgroups_path, {"cpu": {"quota": 50000, "period": 100000, "burst": 20000}}
    )
    value = read_control(c.pid, ("cpu", "cpu.cfs_burst_us"), "cpu.max.burst")
    assert value == "20000", f"the cgroup's CPU burst reads {value!r}, expected 20000"


@pytest.mark.requires("controller-cpu")
@pytest.mark.feature("ociVersionMax", what="linux.resources.cpu.idle", **SINCE_1_1)
@pytest.mark.spec("linux.cgroups.cpu.idle")
@pytest.mark.parametrize("idle", [1, 0])
def test_cpu_idle(runtime, bundle_factory, container_factory, cgroups_path, idle):
    if not v2_host():
        v1_root_has("cpu", "cpu.idle")
    c = created_with(bundle_factory, container_factory, cgroups_path, {"cpu": {"idle": idle}})
    value = read_control(c.pid, ("cpu", "cpu.idle"), "cpu.idle")
    assert value == str(idle), f"cpu.idle reads {value!r}, expected {idle}"


@pytest.mark.requires("controller-cpu", "cgroup-v1")
@pytest.mark.spec("linux.cgroups.cpu.realtime-runtime", "linux.cgroups.cpu.realtime-period")
def test_cpu_realtime_runtime_and_period(runtime, bundle_factory, container_factory, cgroups_path):
    v1_root_has("cpu", "cpu.rt_runtime_us")
    # a small share of the root group's real-time budget (cgroupsPath is right under the root)
    c = created_with(
        bundle_factory, container_factory, cgroups_path, {"cpu": {"realtimeRuntime": 20000, "realtimePeriod": 500000}}
    )
    got = (
        read_control(c.pid, ("cpu", "cpu.rt_runtime_us"), "-"),
        read_control(c.pid, ("cpu", "cpu.rt_period_us"), "-"),
    )
    assert got == ("20000", "500000"), (
        f"cpu.rt_runtime_us and cpu.rt_period_us read {got}, expected ('20000', '500000')"
    )


@pytest.mark.requires("controller-cpu", "cgroup-v1")
@pytest.mark.spec("linux.cgroups.cpu.shares")
@pytest.mark.parametrize("shares", [262144], ids=["maximum"])
def test_cpu_shares_at_the_kernel_bounds(runtime, bundle_factory, container_factory, cgroups_path, shares):
    # Not the minimum (2): a container that light is starved on a loaded host, and its create
    # then takes seconds (the init does its setup inside the cgroup).
    c = created_with(bundle_factory, container_factory, cgroups_path, {"cpu": {"shares": shares}})
    value = read_control(c.pid, ("cpu", "cpu.shares"), "-")
    assert value == str(shares), f"cpu.shares reads {value!r}, expected {shares}"


# --------------------------------------------------------------------------------------------
# PIDs


@pytest.mark.requires("controller-pids")
@pytest.mark.spec("linux.cgroups.pids.unlimited")
def test_pids_limit_minus_one_is_max(runtime, bundle_factory, container_factory, cgroups_path):
    c = created_with(bundle_factory, container_factory, cgroups_path, {"pids": {"limit": -1}})
    value = read_control(c.pid, ("pids", "pids.max"), "pids.max")
    assert value == "max", f"pids limit -1 means no limit: pids.max reads {value!r}, expected max"


@pytest.mark.requires("controller-pids")
@pytest.mark.spec("linux.cgroups.pids.zero")
def test_pids_limit_zero_is_a_limit(runtime, bundle_factory, container_factory, cgroups_path):
    c = created_with(bundle_factory, container_factory, cgroups_path, {"pids": {"limit": 0}})
    value = read_control(c.pid, ("pids", "pids.max"), "pids.max")
    assert value == "0", (
        f"pids limit 0 is a valid limit (no new task), not 'unset': pids.max reads {value!r}, expected 0"
    )


# --------------------------------------------------------------------------------------------
# Block IO


def a_disk():
    """(major, minor) of a whole disk of this host (throttling takes disks, not partitions)."""
    for entry in sorted(Path("/sys/block").iterdir()):
        if entry.name.startswith(("loop", "ram", "zram", "nbd", "sr", "md", "dm-")):
            continue
        major, minor = (entry / "dev").read_text().split(":")
        return int(major), int(minor)
    pytest.skip("this host has no disk in /sys/block to throttle")


def io_files(pid):
    """The throttle settings of the container's cgroup: {(major, minor, key): value}, keys rbps/wbps/riops/wiops."""
    found = {}
    if v2_host():
        for line in read_control(pid, ("blkio", "-"), "io.max").splitlines():
            dev, *pairs = line.split()
            major, minor = map(int, dev.split(":"))
            for pair in pairs:
                key, _, value = pair.partition("=")
                found[(major, minor, key)] = value
        return found
    names = {"rbps": "read_bps", "wbps": "write_bps", "riops": "read_iops", "wiops": "write_iops"}
    for key, name in names.items():
        for line in read_control(pid, ("blkio", f"blkio.throttle.{name}_device"), "-").splitlines():
            dev, value = line.split()
            major, minor = map(int, dev.split(":"))
            found[(major, minor, key)] = value
    return found


def assert_throttled(bundle_factory, container_factory, cgroups_path, what, read, write):
    """blockIO's throttleRead{what}Device and throttleWrite{what}Device, ``read`` and ``write``
    as (file key, rate) on a disk, are the container cgroup's read and write limits for it."""
    major, minor = a_disk()
    bio = {f"throttleRead{what}Device": [{"major": major, "minor": minor, "rate": read[1]}],
           f"throttleWrite{what}Device": [{"major": major, "minor": minor, "rate": write[1]}]}  # fmt: skip
    c = created_with(bundle_factory, container_factory, cgroups_path, {"blockIO": bio})
    seen = io_files(c.pid)
    got = (seen.get((major, minor, read[0])), seen.get((major, minor, write[0])))
    expected = (str(read[1]), str(write[1]))
    assert got == expected, f"read/write {what} limits of {major}:{minor}: {got}, expected {expected}; all: {seen}"


# io on a cgroup v2 host, blkio on v1
IO_CONTROLLER = "controller-io" if os.path.exists(CGROUP_ROOT / "cgroup.controllers") else "controller-blkio"


@pytest.mark.requires(IO_CONTROLLER)
@pytest.mark.spec("linux.cgroups.blkio.throttle-bps")
def test_blkio_throttle_bps(runtime, bundle_factory, container_factory, cgroups_path):
    assert_throttled(bundle_factory, container_factory, cgroups_path, "Bps", ("rbps", 2097152), ("wbps", 1048576))


@pytest.mark.requires(IO_CONTROLLER)
@pytest.mark.spec("linux.cgroups.blkio.throttle-iops")
def test_blkio_throttle_iops(runtime, bundle_factory, container_factory, cgroups_path):
    assert_throttled(bundle_factory, container_factory, cgroups_path, "IOPS", ("riops", 300), ("wiops", 120))


def weight_of(text, device=None):
    """A weight from a v1 blkio/bfq or v2 io weight file ("300", "default 300", "8:0 300")."""
    for line in text.splitlines():
        parts = line.split()
        if device is None and (len(parts) == 1 or parts[0] == "default"):
            return parts[-1]
        if device is not None and parts[0] == device:
            return parts[-1]
    return None


@pytest.mark.requires("controller-blkio", "cgroup-v1")
@pytest.mark.spec("linux.cgroups.blkio.weight")
def test_blkio_weight(runtime, bundle_factory, container_factory, cgroups_path):
    v1_root_has("blkio", "blkio.weight", "blkio.bfq.weight")
    c = created_with(bundle_factory, container_factory, cgroups_path, {"blockIO": {"weight": 300}})
    folder = cgroup_dir(c.pid, "blkio")
    name = "blkio.weight" if (folder / "blkio.weight").exists() else "blkio.bfq.weight"
    value = weight_of((folder / name).read_text())
    assert value == "300", f"{name} reads {value!r}, expected 300"


@pytest.mark.requires("controller-blkio", "cgroup-v1")
@pytest.mark.spec("linux.cgroups.blkio.weight-device")
def test_blkio_weight_device(runtime, bundle_factory, container_factory, cgroups_path):
    v1_root_has("blkio", "blkio.weight_device", "blkio.bfq.weight_device")
    major, minor = a_disk()
    c = created_with(
        bundle_factory,
        container_factory,
        cgroups_path,
        {"blockIO": {"weightDevice": [{"major": major, "minor": minor, "weight": 400}]}},
    )
    folder = cgroup_dir(c.pid, "blkio")
    name = "blkio.weight_device" if (folder / "blkio.weight_device").exists() else "blkio.bfq.weight_device"
    value = weight_of((folder / name).read_text(), f"{major}:{minor}")
    assert value == "400", f"{name} gives {major}:{minor} weight {value!r}, expected 400"


# --------------------------------------------------------------------------------------------
# Huge page limits


def page_sizes():
    """The hugepage sizes of this host as the spec writes them ("2MB", "1GB")."""
    sizes = []
    for entry in sorted(Path("/sys/kernel/mm/hugepages").glob("hugepages-*kB")):
        kb = int(entry.name[len("hugepages-") : -2])
        for unit, factor in (("GB", 2**20), ("MB", 2**10), ("KB", 1)):
            if kb % factor == 0:
                sizes.append(f"{kb // factor}{unit}")
                break
    return sizes or ["2MB"]


@contextlib.contextmanager
def _root_lock():
    """Cases that may enable a controller at the root of the v2 hierarchy run one at a time."""
    with open(Path(tempfile.gettempdir()) / "oci-harness-cgroup-root.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


@pytest.fixture
def v2_root_controllers():
    """The runtime must enable the controllers unified and hugepageLimits need (config-linux.md
    "Unified"), up to the root of the v2 hierarchy: a host-wide change on a host where they
    are not enabled there yet. Record the root's cgroup.subtree_control, and give back what
    the case turned on once its containers are gone (request this fixture before
    container_factory, so that it is torn down after it)."""
    control = CGROUP_ROOT / "cgroup.subtree_control"
    if not v2_host():
        yield
        return
    with _root_lock():
        before = set(control.read_text().split())
        yield
        for ctrl in set(control.read_text().split()) - before:
            with contextlib.suppress(OSError):  # EBUSY: in use below the root by others now
                control.write_text("-" + ctrl)


def hugetlb_file(pid, size, rsvd=False):
    folder = cgroup_dir(pid, "hugetlb")
    if v2_host():
        return folder / (f"hugetlb.{size}.rsvd.max" if rsvd else f"hugetlb.{size}.max")
    return folder / (f"hugetlb.{size}.rsvd.limit_in_bytes" if rsvd else f"hugetlb.{size}.limit_in_bytes")


@pytest.mark.requires("controller-hugetlb")
@pytest.mark.spec("linux.cgroups.hugepage.limit", "linux.cgroups.hugepage.page-size")
@pytest.mark.parametrize("size", page_sizes())
def test_hugepage_limit(runtime, v2_root_controllers, bundle_factory, container_factory, cgroups_path, size):
    limit = 4 * 2**30
    c = created_with(
        bundle_factory, container_factory, cgroups_path, {"hugepageLimits": [{"pageSize": size, "limit": limit}]}
    )
    path = hugetlb_file(c.pid, size)
    value = path.read_text().strip()
    assert value == str(limit), f"{path.name} reads {value!r}, expected {limit}"


@pytest.mark.requires("controller-hugetlb")
@pytest.mark.feature("ociVersionMax", what="hugetlb reservation limits (rsvd)", **SINCE_1_1)
@pytest.mark.spec("linux.cgroups.hugepage.reservation")
def test_hugepage_reservation_limit(runtime, v2_root_controllers, bundle_factory, container_factory, cgroups_path):
    size = page_sizes()[0]
    limit = 4 * 2**30
    c = created_with(
        bundle_factory, container_factory, cgroups_path, {"hugepageLimits": [{"pageSize": size, "limit": limit}]}
    )
    path = hugetlb_file(c.pid, size, rsvd=True)
    if not path.exists():
        pytest.skip(f"this kernel has no hugetlb reservation accounting ({path.name})")
    value = path.read_text().strip()
    assert value == str(limit), (
        f"{path.name} reads {value!r}, expected {limit} (reservations are limited where the kernel supports it)"
    )


# --------------------------------------------------------------------------------------------
# Network (net_cls, net_prio: cgroup v1 only)


@pytest.mark.requires("controller-net_cls", "cgroup-v1")
@pytest.mark.spec("linux.cgroups.network.class-id")
def test_network_class_id(runtime, bundle_factory, container_factory, cgroups_path):
    c = created_with(bundle_factory, container_factory, cgroups_path, {"network": {"classID": 1048577}})
    value = read_control(c.pid, ("net_cls", "net_cls.classid"), "-")
    assert value == "1048577", f"net_cls.classid reads {value!r}, expected 1048577"


@pytest.mark.requires("controller-net_prio", "cgroup-v1")
@pytest.mark.spec("linux.cgroups.network.priorities")
def test_network_priorities(runtime, bundle_factory, container_factory, cgroups_path):
    c = created_with(
        bundle_factory, container_factory, cgroups_path, {"network": {"priorities": [{"name": "lo", "priority": 5}]}}
    )
    table = dict(line.split() for line in read_control(c.pid, ("net_prio", "net_prio.ifpriomap"), "-").splitlines())
    assert table.get("lo") == "5", f"net_prio.ifpriomap gives lo priority {table.get('lo')!r}, expected 5"


# --------------------------------------------------------------------------------------------
# RDMA


def an_rdma_device():
    devices = (
        sorted(p.name for p in Path("/sys/class/infiniband").glob("*"))
        if Path("/sys/class/infiniband").is_dir()
        else []
    )
    if not devices:
        pytest.skip("this host has no RDMA device (/sys/class/infiniband is empty)")
    return devices[0]


@pytest.mark.requires("controller-rdma")
@pytest.mark.spec("linux.cgroups.rdma.limits")
def test_rdma_limits(runtime, v2_root_controllers, bundle_factory, container_factory, cgroups_path):
    dev = an_rdma_device()
    c = created_with(
        bundle_factory, container_factory, cgroups_path, {"rdma": {dev: {"hcaHandles": 3, "hcaObjects": 1000}}}
    )
    lines = {
        line.split()[0]: line.split()[1:] for line in read_control(c.pid, ("rdma", "rdma.max"), "rdma.max").splitlines()
    }
    assert sorted(lines.get(dev, [])) == ["hca_handle=3", "hca_object=1000"], (
        f"rdma.max: {lines}, expected {dev} hca_handle=3 hca_object=1000"
    )


# --------------------------------------------------------------------------------------------
# Allowed device list: the rules apply in the listed order


TEST_DEVICE = (240, 7)  # a char major for local/experimental use: no driver answers it


def device_rules_bundle(bundle_factory, verbs, rules):
    bundle = bundle_factory(*verbs)
    os.mknod(bundle.rootfs / "oci-harness-dev", 0o666 | 0o020000, os.makedev(*TEST_DEVICE))

    def edit(config):
        config["linux"].setdefault("resources", {})["devices"] = rules

    bundle.edit(edit)
    return bundle


def access_result(bundle_factory, container_factory, verbs, rules):
    """What opening the test device says: "denied" (EPERM from the devices cgroup) or
    "allowed" (the cgroup let the open through to the kernel, which has no driver: ENXIO)."""
    c = container_factory(device_rules_bundle(bundle_factory, verbs, rules))
    c.create()
    c.start()
    end = c.wait(timeout=30)
    err = c.stderr()
    if "Operation not permitted" in err:
        return "denied"
    if "No such device or address" in err:
        return "allowed"
    raise AssertionError(f"probe {' '.join(verbs)} ended with {end}, stderr {err!r}: neither EPERM nor ENXIO")


MAJOR, MINOR = TEST_DEVICE
DENY_ALL = {"allow": False, "access": "rwm"}
ALLOW_RW = {"allow": True, "type": "c", "major": MAJOR, "minor": MINOR, "access": "rw"}
DENY_R = {"allow": False, "type": "c", "major": MAJOR, "minor": MINOR, "access": "r"}


@pytest.mark.requires("controller-devices")
@pytest.mark.spec("linux.cgroups.devices.allowlist", "linux.cgroups.devices.order")
def test_device_allowed_after_deny_all(runtime, bundle_factory, container_factory):
    seen = access_result(bundle_factory, container_factory, ["cat", "/oci-harness-dev"], [DENY_ALL, ALLOW_RW])
    assert seen == "allowed", (
        f"rules [deny all, allow c {MAJOR}:{MINOR} rw]: reading the device was {seen}; the later allow must win"
    )


@pytest.mark.requires("controller-devices")
@pytest.mark.spec("linux.cgroups.devices.allowlist", "linux.cgroups.devices.order")
@pytest.mark.parametrize("verb,wanted", [("cat", "denied"), ("write", "allowed")], ids=["read", "write"])
def test_later_device_rule_overrides_earlier(runtime, bundle_factory, container_factory, verb, wanted):
    verbs = ["cat", "/oci-harness-dev"] if verb == "cat" else ["write", "/oci-harness-dev", "x"]
    seen = access_result(bundle_factory, container_factory, verbs, [DENY_ALL, ALLOW_RW, DENY_R])
    assert seen == wanted, (
        f"rules [deny all, allow c {MAJOR}:{MINOR} rw, deny c {MAJOR}:{MINOR} r]: {verb} was {seen}, expected {wanted} (later entries override earlier)"
    )


@pytest.mark.requires("controller-devices", "cgroup-v1")
@pytest.mark.spec("linux.cgroups.devices.order")
def test_device_rules_in_order_in_devices_list(runtime, bundle_factory, container_factory):
    c = container_factory(device_rules_bundle(bundle_factory, ["exit", "0"], [DENY_ALL, ALLOW_RW, DENY_R]))
    c.create()
    listed = read_control(c.pid, ("devices", "devices.list"), "-").splitlines()
    mine = [line for line in listed if line.startswith(f"c {MAJOR}:{MINOR} ")]
    assert mine == [f"c {MAJOR}:{MINOR} w"], (
        f"devices.list has {mine} for the test device, expected only write access left ('c {MAJOR}:{MINOR} w')"
    )


# --------------------------------------------------------------------------------------------
# Unified


@pytest.mark.requires("cgroup-v2", "controller-hugetlb")
@pytest.mark.spec("linux.cgroups.unified.enable-controllers", "linux.cgroups.unified.written")
def test_unified_enables_the_controller_it_needs(
    runtime, v2_root_controllers, bundle_factory, container_factory, cgroups_path
):
    size = page_sizes()[0]
    c = created_with(
        bundle_factory, container_factory, cgroups_path, {"unified": {f"hugetlb.{size}.max": str(4 * 2**30)}}
    )
    folder = cgroup_dir(c.pid, "")
    enabled = (folder.parent / "cgroup.subtree_control").read_text().split()
    assert "hugetlb" in enabled, (
        f"the hugetlb controller is not enabled for the container's cgroup (parent's subtree_control: {enabled})"
    )
    value = (folder / f"hugetlb.{size}.max").read_text().strip()
    assert value == str(4 * 2**30), f"hugetlb.{size}.max reads {value!r}, expected {4 * 2**30}"


@pytest.mark.requires("cgroup-v2")
@pytest.mark.spec("linux.cgroups.unified.keys", "runtime.errors.no-change")
def test_unified_key_naming_no_file_is_an_error(runtime, bundle_factory, container_factory, cgroups_path):
    refused(
        bundle_factory,
        container_factory,
        cgroups_path,
        {"unified": {"cgroup.no_such_file": "1"}},
        "unified key cgroup.no_such_file",
    )


@pytest.mark.requires("cgroup-v1", "controller-pids")
@pytest.mark.spec("linux.cgroups.unified.missing-controller", "runtime.errors.no-change")
def test_unified_on_a_v1_host_is_an_error(runtime, bundle_factory, container_factory, cgroups_path):
    # pids is bound to a v1 hierarchy here: it is not present in (or cannot be enabled on) v2
    refused(
        bundle_factory,
        container_factory,
        cgroups_path,
        {"unified": {"pids.max": "10"}},
        "unified pids.max on a cgroup v1 host",
    )


# --------------------------------------------------------------------------------------------
# Cgroup ownership (cgroup v2, user namespace, cgroup namespace)

DELEGATE_LIST = Path("/sys/kernel/cgroup/delegate")
FALLBACK = ["cgroup.procs", "cgroup.subtree_control", "cgroup.threads"]
OWNERSHIP = pytest.mark.feature("ociVersionMax", what="cgroup ownership", **SINCE_1_1)


def delegation_config(cgroups_path, read_only):
    def edit(config):
        config["linux"]["cgroupsPath"] = cgroups_path.absolute()
        spec.set_namespace(config, "cgroup")
        mounts = [m for m in config["mounts"] if m.get("destination") != "/sys/fs/cgroup"]
        options = ["nosuid", "noexec", "nodev", "relatime"] + (["ro"] if read_only else [])
        mounts.append({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": options})
        config["mounts"] = mounts

    return edit


def owners(pid):
    folder = cgroup_dir(pid, "")
    return (
        folder,
        os.stat(folder).st_uid,
        {entry.name: entry.stat(follow_symlinks=False).st_uid for entry in folder.iterdir()},
    )


@OWNERSHIP
@pytest.mark.requires("cgroup-v2", "userns")
@pytest.mark.spec(
    "linux.cgroups.ownership-rw-mount", "linux.cgroups.ownership-owner", "linux.cgroups.ownership-missing-files"
)
def test_cgroup_given_to_the_container_user_with_a_rw_cgroup_mount(
    runtime, userns_bundle, container_factory, cgroups_path
):
    c = container_factory(userns_bundle("exit", "0", edit=delegation_config(cgroups_path, read_only=False)))
    c.create()  # must not fail although delegate lists files this cgroup lacks
    folder, dir_owner, _ = owners(c.pid)
    assert dir_owner == USERNS_HOST_ID, (
        f"{folder} is owned by uid {dir_owner}, expected {USERNS_HOST_ID} (the host uid of process.user.uid 0)"
    )


@OWNERSHIP
@pytest.mark.requires("cgroup-v2", "userns")
@pytest.mark.spec(
    "linux.cgroups.ownership-delegate-list",
    "linux.cgroups.ownership-existing-files",
    "linux.cgroups.ownership-no-other-files",
)
def test_only_the_delegated_files_change_owner(runtime, userns_bundle, container_factory, cgroups_path):
    c = container_factory(userns_bundle("exit", "0", edit=delegation_config(cgroups_path, read_only=False)))
    c.create()
    folder, _, files = owners(c.pid)
    listed = DELEGATE_LIST.read_text().split() if DELEGATE_LIST.exists() else FALLBACK
    wanted = sorted(name for name in listed if name in files)
    given = sorted(name for name, uid in files.items() if uid == USERNS_HOST_ID)
    assert given == wanted, (
        f"files of {folder} given to uid {USERNS_HOST_ID}: {given}; expected those of {DELEGATE_LIST} that exist: {wanted}"
    )
    others = {name: uid for name, uid in files.items() if uid not in (0, USERNS_HOST_ID)}
    assert not others, f"files of {folder} given to other owners: {others}"


@OWNERSHIP
@pytest.mark.requires("cgroup-v2", "userns")
@pytest.mark.spec("linux.cgroups.ownership-no-mount")
def test_cgroup_not_given_away_with_a_read_only_cgroup_mount(runtime, userns_bundle, container_factory, cgroups_path):
    c = container_factory(userns_bundle("exit", "0", edit=delegation_config(cgroups_path, read_only=True)))
    c.create()
    folder, dir_owner, files = owners(c.pid)
    given = sorted(name for name, uid in files.items() if uid != 0)
    assert dir_owner == 0 and not given, (
        f"with a read-only cgroup mount {folder} is owned by {dir_owner} and {given} changed owner; nothing should"
    )


@contextlib.contextmanager
def delegate_list_hidden(runtime):
    """Run the runtime where /sys/kernel/cgroup/delegate does not exist: in a private mount
    namespace (after the definition's own quirk, if any) with an empty tmpfs over
    /sys/kernel/cgroup. The host's mounts are not touched."""

    def hide() -> None:
        if not runtime.in_private_mount_namespace:
            _linux.private_mount_namespace()
        _linux.mount("tmpfs", "/sys/kernel/cgroup", "tmpfs", 0, "size=4k")

    with runtime.with_process_setup(hide):
        yield


@OWNERSHIP
@pytest.mark.requires("cgroup-v2", "userns")
@pytest.mark.spec("linux.cgroups.ownership-fallback")
def test_fallback_files_change_owner_without_a_delegate_list(runtime, userns_bundle, container_factory, cgroups_path):
    c = container_factory(userns_bundle("exit", "0", edit=delegation_config(cgroups_path, read_only=False)))
    with delegate_list_hidden(runtime):
        c.create()
    folder, _, files = owners(c.pid)
    wanted = sorted(name for name in FALLBACK if name in files)
    given = sorted(name for name, uid in files.items() if uid == USERNS_HOST_ID)
    assert given == wanted, (
        f"without {DELEGATE_LIST} the files of {folder} given to uid {USERNS_HOST_ID} are {given}; expected the fallback list {wanted}"
    )


# --------------------------------------------------------------------------------------------
# IntelRdt


def resctrl_mount():
    for m in host.mounts():
        if m.fstype == "resctrl":
            return Path(m.mount_point)
    return None


@pytest.mark.parametrize(
    "intel_rdt",
    [{"closID": "oci-harness"}, {}, {"enableMonitoring": True}],
    ids=["closID", "empty", "monitoring"],
)
@pytest.mark.spec("linux.intelRdt.no-resctrl", "runtime.errors.no-change")
def test_intel_rdt_without_resctrl_is_an_error(runtime, bundle_factory, container_factory, intel_rdt):
    """config-linux.md "IntelRdt": "If `intelRdt` is set" and no resctrl is mounted, create
    MUST fail, whatever the object holds: an empty one, or enableMonitoring alone, is set too."""
    if resctrl_mount() is not None:
        pytest.skip(f"this host has resctrl mounted at {resctrl_mount()}: the error case needs a host without it")
    bundle = bundle_factory("exit", "0")
    bundle.edit(lambda config: config["linux"].update(intelRdt=intel_rdt), validate=False)
    expect_error(container_factory(bundle), "linux.intelRdt on a host without a mounted resctrl")


RDT = pytest.mark.feature("linux.intelRdt.enabled")


@RDT
@pytest.mark.requires("resctrl")
@pytest.mark.spec(
    "linux.intelRdt.tasks", "linux.intelRdt.default-closid", "linux.intelRdt.remove-created", "features.linux.intel-rdt"
)
def test_intel_rdt_default_clos_is_the_container_id(runtime, bundle_factory, container_factory):
    resctrl = resctrl_mount()
    bundle = bundle_factory("pause")
    bundle.edit(lambda config: config["linux"].update(intelRdt={}))
    c = container_factory(bundle)
    c.create()
    group = resctrl / c.id
    try:
        tasks = (group / "tasks").read_text().split()
        assert str(c.pid) in tasks, f"the container's pid {c.pid} is not in {group}/tasks: {tasks}"
        c.kill("SIGKILL")
        c.wait(timeout=30)
        c.delete()
        assert not group.exists(), f"delete left {group}, which the runtime created (no closID)"
    finally:
        if group.exists() and not (group / "tasks").read_text().split():
            group.rmdir()


@RDT
@pytest.mark.requires("resctrl")
@pytest.mark.spec("linux.intelRdt.closid-preconfigured", "linux.intelRdt.keep-closid", "linux.intelRdt.tasks")
def test_intel_rdt_preconfigured_clos(runtime, bundle_factory, container_factory, container_id):
    resctrl = resctrl_mount()
    group = resctrl / f"oci-harness-{container_id()}"
    group.mkdir()
    try:
        bundle = bundle_factory("pause")
        bundle.edit(lambda config: config["linux"].update(intelRdt={"closID": group.name}))
        c = container_factory(bundle)
        c.create()
        tasks = (group / "tasks").read_text().split()
        assert str(c.pid) in tasks, f"the container's pid {c.pid} is not in the pre-configured {group}/tasks: {tasks}"
        c.kill("SIGKILL")
        c.wait(timeout=30)
        c.delete()
        assert group.is_dir(), f"delete removed {group}, a closID the runtime did not create"
    finally:
        if group.exists():
            group.rmdir()


@RDT
@pytest.mark.requires("resctrl")
@pytest.mark.spec("linux.intelRdt.closid-preconfigured", "runtime.errors.no-change")
def test_intel_rdt_missing_preconfigured_clos_is_an_error(runtime, bundle_factory, container_factory, container_id):
    name = f"oci-harness-missing-{container_id()}"
    bundle = bundle_factory("exit", "0")
    bundle.edit(lambda config: config["linux"].update(intelRdt={"closID": name}))
    expect_error(container_factory(bundle), f"intelRdt closID {name} that does not exist, without schemata")
    assert not (resctrl_mount() / name).exists(), f"the runtime made {name} although no schema was given"


@RDT
@pytest.mark.requires("resctrl")
@pytest.mark.spec("linux.intelRdt.closid-root", "linux.intelRdt.tasks")
def test_intel_rdt_closid_slash_is_the_default_clos(runtime, bundle_factory, container_factory):
    resctrl = resctrl_mount()
    bundle = bundle_factory("pause")
    bundle.edit(lambda config: config["linux"].update(intelRdt={"closID": "/"}))
    c = container_factory(bundle)
    c.create()
    tasks = (resctrl / "tasks").read_text().split()
    assert str(c.pid) in tasks, f"closID '/': the container's pid {c.pid} is not in the default CLOS ({resctrl}/tasks)"


@RDT
@pytest.mark.feature("linux.intelRdt.schemata")
@pytest.mark.requires("resctrl")
@pytest.mark.spec("linux.intelRdt.schemata", "linux.intelRdt.closid-create", "linux.intelRdt.keep-closid")
def test_intel_rdt_schemata_written_to_a_new_clos(runtime, bundle_factory, container_factory, container_id):
    resctrl = resctrl_mount()
    # the root group's own schemata are valid on this hardware whatever its cache layout
    lines = [line.strip() for line in (resctrl / "schemata").read_text().splitlines() if line.strip()]
    group = resctrl / f"oci-harness-{container_id()}"
    try:
        bundle = bundle_factory("exit", "0")
        bundle.edit(lambda config: config["linux"].update(intelRdt={"closID": group.name, "schemata": lines}))
        c = container_factory(bundle)
        c.create()
        assert group.is_dir(), f"closID {group.name} did not exist: the runtime must create it"
        written = [line.strip() for line in (group / "schemata").read_text().splitlines() if line.strip()]
        assert written == lines, f"{group}/schemata holds {written}, expected {lines}"
        c.kill("SIGKILL")
        c.wait(timeout=30)
        c.delete()
        assert group.is_dir(), f"delete removed {group}, although closID was set"
    finally:
        if group.exists():
            group.rmdir()


@RDT
@pytest.mark.requires("resctrl")
@pytest.mark.spec("linux.intelRdt.unset-untouched")
def test_no_intel_rdt_leaves_resctrl_alone(runtime, bundle_factory, container_factory):
    c = container_factory(bundle_factory("exit", "0"))
    c.create()
    made = list(resctrl_mount().rglob(f"*{c.id}*"))
    assert not made, f"without intelRdt the runtime made {made} in resctrl"


# --------------------------------------------------------------------------------------------
# features: the cgroup versions a runtime claims


@pytest.mark.requires("controller-pids")
@pytest.mark.spec("features.linux.cgroup")
def test_claimed_cgroup_version_is_applied(runtime, bundle_factory, container_factory, cgroups_path):
    doc = features.document(runtime)
    version = "v2" if v2_host() else "v1"
    claim = features.lookup(doc or {}, f"linux.cgroup.{version}")
    if claim is not True:
        pytest.skip(
            f"{runtime.name} does not claim linux.cgroup.{version} in its features output ({json.dumps(claim) if claim is not features.MISSING else 'absent'})"
        )
    c = created_with(bundle_factory, container_factory, cgroups_path, {"pids": {"limit": 41}})
    value = read_control(c.pid, ("pids", "pids.max"), "pids.max")
    assert value == "41", (
        f"{runtime.name} claims cgroup {version} support, yet pids.max of its container reads {value!r}, expected 41"
    )
