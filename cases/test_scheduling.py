"""How the container process is scheduled and placed (config.md "Linux Process": `scheduler`,
`ioPriority`; config-linux.md "Memory policy", "Personality"). Checked from inside: the probe
asks the kernel (sched_getattr, ioprio_get, get_mempolicy, personality) and prints the answer.

These properties came with spec v1.1.0 (scheduler, ioPriority) and v1.3.0 (memoryPolicy, which
features-linux.md lets a runtime claim); a runtime that does not claim them skips, saying so.
"""

import json
import os
from pathlib import Path

import pytest
from _errors import expect_error

from harness import features, host

pytestmark = pytest.mark.requires("root")

SCHEDULER = pytest.mark.feature("ociVersionMax", at_least="1.1.0", what="process.scheduler")
IO_PRIORITY = pytest.mark.feature("ociVersionMax", at_least="1.1.0", what="process.ioPriority")


def probe_json(run_probe, verb, edit):
    _, out = run_probe(verb, edit=edit)
    return json.loads(out)


def refused(bundle_factory, container_factory, change, what):
    bundle = bundle_factory("mempolicy")
    bundle.edit(change, validate=False)
    expect_error(container_factory(bundle), what)


# --------------------------------------------------------------------------------------------
# process.scheduler


def scheduler(**fields):
    def edit(config):
        config["process"]["scheduler"] = fields

    return edit


def realtime_allowed(config, cgroups_path):
    """On cgroup v1 with RT group scheduling a new cpu cgroup has no real-time runtime, and the
    kernel refuses SCHED_FIFO/SCHED_RR in it: give the container's cgroup a little, right under
    the root cgroup (which has the host's real-time budget to share)."""
    if host.cgroup_mode() != "v2" and Path("/sys/fs/cgroup/cpu/cpu.rt_runtime_us").exists():
        config["linux"]["cgroupsPath"] = cgroups_path.absolute()
        config["linux"].setdefault("resources", {})["cpu"] = {"realtimeRuntime": 10000, "realtimePeriod": 1000000}


@SCHEDULER
@pytest.mark.spec("config.process.scheduler.policy")
@pytest.mark.parametrize("policy", ["SCHED_BATCH", "SCHED_IDLE"])
def test_scheduler_policy(runtime, run_probe, policy):
    seen = probe_json(run_probe, "sched", scheduler(policy=policy))
    assert seen["policy"] == policy, f"the container process runs under {seen['policy']}, expected {policy}"


@SCHEDULER
@pytest.mark.spec("config.process.scheduler.nice", "config.process.scheduler.policy")
def test_scheduler_nice(runtime, run_probe):
    seen = probe_json(run_probe, "sched", scheduler(policy="SCHED_OTHER", nice=7))
    assert (seen["policy"], seen["nice"]) == ("SCHED_OTHER", 7), (
        f"scheduler seen inside: {seen}, expected SCHED_OTHER with nice 7"
    )


@SCHEDULER
@pytest.mark.spec("config.process.scheduler.nice-default", "config.process.scheduler.priority-default")
def test_scheduler_unset_nice_and_priority_are_zero(runtime, run_probe):
    seen = probe_json(run_probe, "sched", scheduler(policy="SCHED_BATCH"))
    assert (seen["policy"], seen["nice"], seen["priority"]) == ("SCHED_BATCH", 0, 0), (
        f"scheduler seen inside: {seen}, expected SCHED_BATCH with nice 0 and priority 0 (unset values are 0)"
    )


@SCHEDULER
@pytest.mark.spec("config.process.scheduler.priority", "config.process.scheduler.policy")
@pytest.mark.parametrize("policy,priority", [("SCHED_FIFO", 10), ("SCHED_RR", 3)])
def test_scheduler_realtime_priority(runtime, run_probe, cgroups_path, policy, priority):
    def edit(config):
        scheduler(policy=policy, priority=priority)(config)
        realtime_allowed(config, cgroups_path)

    seen = probe_json(run_probe, "sched", edit)
    assert (seen["policy"], seen["priority"]) == (policy, priority), (
        f"scheduler seen inside: {seen}, expected {policy} priority {priority}"
    )


@SCHEDULER
@pytest.mark.spec("config.process.scheduler.flags")
def test_scheduler_reset_on_fork_flag(runtime, run_probe):
    seen = probe_json(run_probe, "sched", scheduler(policy="SCHED_BATCH", flags=["SCHED_FLAG_RESET_ON_FORK"]))
    assert seen["policy"] == "SCHED_BATCH" and "SCHED_FLAG_RESET_ON_FORK" in seen["flags"], (
        f"scheduler seen inside: {seen}, expected SCHED_BATCH with SCHED_FLAG_RESET_ON_FORK"
    )


@SCHEDULER
@pytest.mark.spec("config.process.scheduler.deadline", "config.process.scheduler.policy")
def test_scheduler_deadline_parameters(runtime, run_probe):
    # 1 ms of every 20 ms: far below the kernel's admission limit (95% of a CPU).
    wanted = {"runtime": 1_000_000, "deadline": 10_000_000, "period": 20_000_000}
    seen = probe_json(run_probe, "sched", scheduler(policy="SCHED_DEADLINE", **wanted))
    got = {k: seen[k] for k in wanted}
    assert seen["policy"] == "SCHED_DEADLINE" and got == wanted, (
        f"scheduler seen inside: {seen}, expected SCHED_DEADLINE with {wanted}"
    )


# --------------------------------------------------------------------------------------------
# process.ioPriority


@IO_PRIORITY
@pytest.mark.spec("config.process.io-priority")
@pytest.mark.parametrize("klass,priority", [("IOPRIO_CLASS_BE", 6), ("IOPRIO_CLASS_IDLE", 0), ("IOPRIO_CLASS_RT", 2)])
def test_io_priority(runtime, run_probe, klass, priority):
    def edit(config):
        config["process"]["ioPriority"] = {"class": klass, "priority": priority}

    seen = probe_json(run_probe, "ioprio", edit)
    assert seen == {"class": klass, "priority": priority}, (
        f"I/O priority seen inside: {seen}, expected {klass} {priority}"
    )


# --------------------------------------------------------------------------------------------
# linux.memoryPolicy


def first_node():
    online = Path("/sys/devices/system/node/online")
    return int(online.read_text().strip().split(",")[0].split("-")[0]) if online.exists() else 0


def memory_policy(mode, nodes=None, flags=None):
    def edit(config):
        policy = {"mode": mode}
        if nodes is not None:
            policy["nodes"] = nodes
        if flags is not None:
            policy["flags"] = flags
        config["linux"]["memoryPolicy"] = policy

    return edit


def features_gate(runtime, path, value):
    """The ``feature(path, contains=value)`` marker for a value the case is parametrized with."""
    reason = features.unclaimed(features.document(runtime), path, value, runtime.name)
    if reason:
        pytest.skip(reason)


NODE = first_node()
WITH_NODES = ["MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_WEIGHTED_INTERLEAVE", "MPOL_PREFERRED", "MPOL_PREFERRED_MANY"]


@pytest.mark.spec("linux.memoryPolicy.mode", "linux.memoryPolicy.nodes", "features.linux.memory-policy.modes")
@pytest.mark.parametrize("mode", WITH_NODES)
def test_memory_policy_mode_and_nodes(runtime, run_probe, mode):
    features_gate(runtime, "linux.memoryPolicy.modes", mode)
    seen = probe_json(run_probe, "mempolicy", memory_policy(mode, nodes=str(NODE)))
    assert (seen["mode"], seen["nodes"]) == (mode, [NODE]), (
        f"memory policy seen inside: {seen}, expected {mode} on node {NODE}"
    )


@pytest.mark.spec("linux.memoryPolicy.mode", "features.linux.memory-policy.modes")
@pytest.mark.parametrize("mode", ["MPOL_DEFAULT", "MPOL_LOCAL"])
def test_memory_policy_mode_without_nodes(runtime, run_probe, mode):
    features_gate(runtime, "linux.memoryPolicy.modes", mode)
    seen = probe_json(run_probe, "mempolicy", memory_policy(mode))
    assert (seen["mode"], seen["nodes"]) == (mode, []), (
        f"memory policy seen inside: {seen}, expected {mode} without nodes"
    )


@pytest.mark.spec("linux.memoryPolicy.nodes")
def test_memory_policy_node_range(runtime, run_probe):
    features_gate(runtime, "linux.memoryPolicy.modes", "MPOL_BIND")
    seen = probe_json(run_probe, "mempolicy", memory_policy("MPOL_BIND", nodes=f"{NODE}-{NODE}"))
    assert (seen["mode"], seen["nodes"]) == ("MPOL_BIND", [NODE]), (
        f"memory policy seen inside: {seen}, expected MPOL_BIND on node {NODE} (nodes {NODE}-{NODE})"
    )


@pytest.mark.spec("linux.memoryPolicy.flags", "features.linux.memory-policy.flags")
@pytest.mark.parametrize("flag", ["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES", "MPOL_F_NUMA_BALANCING"])
def test_memory_policy_flag(runtime, run_probe, flag):
    features_gate(runtime, "linux.memoryPolicy.flags", flag)
    seen = probe_json(run_probe, "mempolicy", memory_policy("MPOL_BIND", nodes=str(NODE), flags=[flag]))
    assert seen["mode"] == "MPOL_BIND" and flag in seen["flags"], (
        f"memory policy seen inside: {seen}, expected MPOL_BIND with {flag}"
    )


@pytest.mark.spec("linux.memoryPolicy.mode-invalid", "runtime.errors.no-change")
def test_memory_policy_unknown_mode_is_an_error(runtime, bundle_factory, container_factory):
    features_gate(runtime, "linux.memoryPolicy.modes", "MPOL_BIND")
    refused(
        bundle_factory,
        container_factory,
        memory_policy("MPOL_NO_SUCH_MODE"),
        "linux.memoryPolicy.mode MPOL_NO_SUCH_MODE",
    )


@pytest.mark.spec("linux.memoryPolicy.flag-invalid", "runtime.errors.no-change")
def test_memory_policy_unknown_flag_is_an_error(runtime, bundle_factory, container_factory):
    features_gate(runtime, "linux.memoryPolicy.flags", "MPOL_F_STATIC_NODES")
    change = memory_policy("MPOL_BIND", nodes=str(NODE), flags=["MPOL_F_NO_SUCH_FLAG"])
    refused(bundle_factory, container_factory, change, "linux.memoryPolicy.flags [MPOL_F_NO_SUCH_FLAG]")


@pytest.mark.spec("linux.memoryPolicy.nodes-forbidden", "runtime.errors.no-change")
@pytest.mark.parametrize("mode", ["MPOL_DEFAULT", "MPOL_LOCAL"])
def test_memory_policy_nodes_where_none_are_allowed_is_an_error(runtime, bundle_factory, container_factory, mode):
    features_gate(runtime, "linux.memoryPolicy.modes", mode)
    refused(bundle_factory, container_factory, memory_policy(mode, nodes=str(NODE)), f"{mode} with nodes {NODE}")


@pytest.mark.spec("linux.memoryPolicy.nodes-required", "runtime.errors.no-change")
@pytest.mark.parametrize("mode", ["MPOL_BIND", "MPOL_INTERLEAVE"])
def test_memory_policy_without_the_nodes_it_needs_is_an_error(runtime, bundle_factory, container_factory, mode):
    features_gate(runtime, "linux.memoryPolicy.modes", mode)
    refused(bundle_factory, container_factory, memory_policy(mode), f"{mode} without nodes")


# --------------------------------------------------------------------------------------------
# linux.personality


def personality(domain):
    def edit(config):
        config["linux"]["personality"] = {"domain": domain}

    return edit


PERSONALITY = pytest.mark.feature("ociVersionMax", at_least="1.0.2", what="linux.personality")


@PERSONALITY
@pytest.mark.spec("linux.personality.domain")
def test_personality_linux32(runtime, run_probe):
    seen = probe_json(run_probe, "personality", personality("LINUX32"))
    assert seen["persona"] & 0xFF == 0x0008, (
        f"the container's personality is {seen['persona']:#x}, expected PER_LINUX32 (0x8)"
    )
    assert seen["machine"] in ("i686", "i386", "armv7l", "armv8l", "s390", "ppc"), (
        f"uname shows machine {seen['machine']!r}: not a 32-bit CPU type"
    )


@PERSONALITY
@pytest.mark.spec("linux.personality.domain")
def test_personality_linux(runtime, run_probe):
    seen = probe_json(run_probe, "personality", personality("LINUX"))
    assert seen["persona"] & 0xFF == 0, f"the container's personality is {seen['persona']:#x}, expected PER_LINUX (0)"
    assert seen["machine"] == os.uname().machine, (
        f"uname shows machine {seen['machine']!r}, the host's is {os.uname().machine!r}"
    )


@PERSONALITY
@pytest.mark.spec("linux.personality.domain-invalid", "runtime.errors.no-change")
def test_personality_unknown_domain_is_an_error(runtime, bundle_factory, container_factory):
    bundle = bundle_factory("personality")
    bundle.edit(personality("BSD"), validate=False)
    expect_error(container_factory(bundle), "linux.personality.domain BSD")
