"""Several cgroup limits in one config (config-linux.md "Memory", "CPU", "PIDs"): each one is
written, not only the first the runtime meets. Read from the host's cgroup files as in
_cgroups.py."""

import pytest
from _cgroups import created_with, read_control, v2_host

pytestmark = pytest.mark.requires("root")


@pytest.mark.requires("controller-memory", "controller-pids", "controller-cpu")
@pytest.mark.spec(
    "linux.cgroups.memory.limit",
    "linux.cgroups.memory.reservation",
    "linux.cgroups.pids.limit",
    "linux.cgroups.cpu.shares",
    "linux.cgroups.cpu.quota",
    "linux.cgroups.cpu.period",
)
def test_memory_pids_and_cpu_limits_together(runtime, bundle_factory, container_factory, cgroups_path):
    limit, reservation = 96 * 2**20, 48 * 2**20
    resources = {
        "memory": {"limit": limit, "reservation": reservation},
        "pids": {"limit": 41},
        "cpu": {"shares": 640, "quota": 35000, "period": 70000},
    }
    c = created_with(bundle_factory, container_factory, cgroups_path, resources)
    seen = {
        "memory.limit": read_control(c.pid, ("memory", "memory.limit_in_bytes"), "memory.max"),
        "memory.reservation": read_control(c.pid, ("memory", "memory.soft_limit_in_bytes"), "memory.low"),
        "pids.limit": read_control(c.pid, ("pids", "pids.max"), "pids.max"),
    }
    expected = {"memory.limit": str(limit), "memory.reservation": str(reservation), "pids.limit": "41"}
    if v2_host():
        seen["cpu.quota period"] = read_control(c.pid, ("cpu", "-"), "cpu.max")
        expected["cpu.quota period"] = "35000 70000"
    else:
        seen["cpu.shares"] = read_control(c.pid, ("cpu", "cpu.shares"), "-")
        seen["cpu.quota"] = read_control(c.pid, ("cpu", "cpu.cfs_quota_us"), "-")
        seen["cpu.period"] = read_control(c.pid, ("cpu", "cpu.cfs_period_us"), "-")
        expected.update({"cpu.shares": "640", "cpu.quota": "35000", "cpu.period": "70000"})
    wrong = {k: (seen[k], expected[k]) for k in expected if seen[k] != expected[k]}
    assert not wrong, f"limits set together, read back (got, expected): {wrong}"
