"""Sysctl (config-linux.md "Sysctl"): the kernel parameters in linux.sysctl are set for the
container, in its own namespaces, and the host keeps its values. Read inside with the probe's
`cat /proc/sys/...`; a parameter the runtime cannot set is an error (runtime.md "Create")."""

from pathlib import Path

import pytest
from _errors import expect_create_error

pytestmark = pytest.mark.requires("root")

# (key, the namespace it belongs to)
PARAMETERS = [
    ("kernel.shm_rmid_forced", "ipc"),
    ("net.ipv4.ip_forward", "network"),
    ("net.ipv4.tcp_keepalive_time", "network"),
]


def proc_path(key):
    return "/proc/sys/" + key.replace(".", "/")


def other_value(key, host_baseline):
    """A valid value that differs from the host's (its value before the run: under xdist a
    neighbour's container on a runtime that fails to isolate may have changed it since)."""
    current = host_baseline[key].strip()
    if key == "net.ipv4.tcp_keepalive_time":
        return str(int(current) + 17)
    return "0" if current == "1" else "1"


@pytest.mark.parametrize("key", [k for k, _ in PARAMETERS])
@pytest.mark.spec("linux.sysctl.applied")
def test_sysctl_applied(runtime, run_probe, host_baseline, key):
    value = other_value(key, host_baseline)
    _, out = run_probe("cat", proc_path(key), edit=lambda config: config["linux"].__setitem__("sysctl", {key: value}))
    assert out.strip() == value, f"{key} reads {out.strip()!r} inside the container, expected {value!r}"


@pytest.mark.spec("linux.sysctl.applied")
def test_several_sysctls_of_different_namespaces_applied_together(runtime, run_probe, host_baseline):
    wanted = {key: other_value(key, host_baseline) for key, _ in PARAMETERS}
    verbs = [w for key in wanted for w in ("cat", proc_path(key))]
    _, out = run_probe(*verbs, edit=lambda config: config["linux"].__setitem__("sysctl", dict(wanted)))
    seen = dict(zip(wanted, out.split(), strict=False))
    assert seen == wanted, (
        f"with {len(wanted)} sysctls (IPC and network) in one config, the container reads {seen}, expected {wanted}"
    )


@pytest.mark.parametrize("key", [k for k, _ in PARAMETERS])
@pytest.mark.spec("linux.sysctl.container-only")
def test_sysctl_leaves_host_unchanged(runtime, run_probe, host_baseline, key):
    # a runtime that changed the host's value: the leak check puts the run's baseline back
    before = host_baseline[key].strip()
    value = other_value(key, host_baseline)
    _, out = run_probe("cat", proc_path(key), edit=lambda config: config["linux"].__setitem__("sysctl", {key: value}))
    after = Path(proc_path(key)).read_text().strip()
    assert out.strip() == value, f"the sysctl was not applied inside ({out.strip()!r}), so this case proves nothing"
    assert after == before, f"the host's {key} changed from {before!r} to {after!r}"


@pytest.mark.parametrize(
    "sysctl",
    [{"net.ipv4.no_such_parameter": "1"}, {"net.ipv4.ip_forward": "banana"}],
    ids=["unknown-key", "invalid-value"],
)
@pytest.mark.spec(
    "linux.sysctl.applied", "runtime.create.cannot-apply", "runtime.lifecycle.create-error", "runtime.errors.no-change"
)
def test_sysctl_that_cannot_be_set_is_an_error(runtime, bundle_factory, container_factory, sysctl):
    bundle = bundle_factory("write", "/ran", "yes", edit=lambda config: config["linux"].__setitem__("sysctl", sysctl))
    expect_create_error(container_factory(bundle), f"sysctl {sysctl} cannot be set")
    assert not (bundle.rootfs / "ran").exists()
