"""Namespaces (config-linux.md "Namespaces"): each listed namespace without a path is new; a
namespace not listed is inherited from the runtime. Checked from inside (the probe's
/proc/self/ns inodes) and from outside (/proc/PID/ns of the state pid)."""

import pytest

from harness import host, spec

pytestmark = pytest.mark.requires("root")

# config.json type -> /proc/PID/ns entry
NS_FILE = {"pid": "pid", "network": "net", "ipc": "ipc", "uts": "uts", "mount": "mnt"}
DEFAULT_NEW = ["pid", "network", "ipc", "uts", "mount"]


@pytest.mark.parametrize("ns_type", DEFAULT_NEW)
@pytest.mark.spec("linux.namespaces.new")
def test_new_namespace_inside(runtime, run_probe, host_namespaces, ns_type):
    _, report = run_probe("report")
    name = NS_FILE[ns_type]
    inside = report["namespaces"].get(name)
    assert inside is not None, f"the probe could not read /proc/self/ns/{name}: {report['errors']}"
    assert inside != host_namespaces[name], f"{ns_type} namespace is the host's (inode {inside})"


@pytest.mark.parametrize("ns_type", DEFAULT_NEW)
@pytest.mark.spec("linux.namespaces.new")
def test_new_namespace_outside(runtime, bundle_factory, container_factory, host_namespaces, ns_type):
    c = container_factory(bundle_factory("exit", "0"))
    c.create()
    pid = c.state().pid
    outside = host.namespace_inodes(pid)
    name = NS_FILE[ns_type]
    assert outside[name] != host_namespaces[name], f"process {pid} is in the host's {ns_type} namespace"


@pytest.mark.parametrize("ns_type", ["network", "ipc", "uts"])
@pytest.mark.spec("linux.namespaces.inherit")
def test_unlisted_namespace_is_inherited(runtime, run_probe, host_namespaces, ns_type):
    def drop(config):
        spec.set_namespace(config, ns_type, present=False)
        if ns_type == "uts":
            config.pop("hostname", None)

    _, report = run_probe("report", edit=drop)
    name = NS_FILE[ns_type]
    assert report["namespaces"].get(name) == host_namespaces[name], f"{ns_type} namespace was not inherited from the host"


@pytest.mark.spec("linux.namespaces.pid-isolation")
def test_process_is_pid_1(runtime, run_probe):
    _, report = run_probe("report")
    assert report["pid"] == 1, f"the container's process is pid {report['pid']} inside its pid namespace"
    assert report["ppid"] == 0, f"pid 1 of a new pid namespace has ppid 0, not {report['ppid']}"
