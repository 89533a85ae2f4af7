"""Network devices (config-linux.md "Network Devices" and "Namespace Lifecycle and Container
Termination"; features-linux.md "NetDevices").

The host's own interfaces are never touched: each case makes a network namespace of its own
(held by an ``unshare --net sleep`` process it starts and ends), creates a veth pair there
with ``ip``, and runs the runtime inside that namespace (``Runtime.in_network_namespace``), so
the "runtime namespace" the devices come from is the case's. The container is only created:
its init then exists with its network namespace, which the case reads from the host with
``nsenter --net=/proc/PID/ns/net ip -j addr``. Cases skip on a runtime whose ``features`` does
not claim linux.netDevices.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import pytest

from harness.runtime import RuntimeCallError

pytestmark = [pytest.mark.requires("root"), pytest.mark.feature("linux.netDevices.enabled")]

MAC = "02:00:00:0c:1a:05"
MTU = 1400
ADDRESSES = {("inet", "192.0.2.10", 24), ("inet6", "2001:db8::10", 64)}


class NetNs:
    """A network namespace of the case's own: ``path`` is /proc/PID/ns/net of its holder."""

    def __init__(self) -> None:
        if not shutil.which("ip") or not shutil.which("nsenter") or not shutil.which("unshare"):
            pytest.skip(
                "needs ip (iproute2), nsenter and unshare (util-linux) to make a network namespace with devices"
            )
        self.holder = subprocess.Popen(["unshare", "--net", "--", "sleep", "600"], stdin=subprocess.DEVNULL)
        self.path = f"/proc/{self.holder.pid}/ns/net"
        mine = os.stat("/proc/self/ns/net").st_ino
        deadline = time.monotonic() + 10
        while True:  # ready once the holder is in a network namespace other than ours
            try:
                if os.stat(self.path).st_ino != mine:
                    break
            except FileNotFoundError:
                pass
            if self.holder.poll() is not None or time.monotonic() > deadline:
                self.close()
                pytest.fail("unshare --net did not make a network namespace")
            time.sleep(0.01)

    def ip(self, *args: str) -> str:
        return ip_in(self.path, *args)

    def links(self) -> dict[str, dict]:
        return links_in(self.path)

    def close(self) -> None:
        if self.holder.poll() is None:
            self.holder.kill()
        self.holder.wait()


def ip_in(netns: str, *args: str) -> str:
    proc = subprocess.run(
        ["nsenter", f"--net={netns}", "ip", *args], capture_output=True, text=True, timeout=30, check=False
    )
    if proc.returncode != 0:
        raise AssertionError(f"ip {' '.join(args)} in {netns} failed: {proc.stderr.strip()}")
    return proc.stdout


def links_in(netns: str) -> dict[str, dict]:
    """``ip -j addr`` of a namespace, by interface name."""
    return {link["ifname"]: link for link in json.loads(ip_in(netns, "-j", "addr", "show") or "[]")}


def global_addresses(link: dict) -> set[tuple[str, str, int]]:
    return {(a["family"], a["local"], a["prefixlen"]) for a in link.get("addr_info", []) if a.get("scope") == "global"}


@pytest.fixture
def netns():
    made: list[NetNs] = []

    def make() -> NetNs:
        ns = NetNs()
        made.append(ns)
        return ns

    yield make
    for ns in made:
        ns.close()


def add_veth(ns: NetNs, name: str = "nd0") -> None:
    """A veth pair NAME / NAMEp: NAME gets MTU, hardware address and two global addresses
    (IPv4, IPv6) plus one of host scope; it stays down (the runtime sets it up)."""
    ns.ip("link", "add", name, "type", "veth", "peer", "name", f"{name}p")
    ns.ip("link", "set", name, "mtu", str(MTU), "address", MAC)
    ns.ip("addr", "add", "192.0.2.10/24", "dev", name)
    ns.ip("addr", "add", "2001:db8::10/64", "dev", name, "nodad")
    ns.ip("addr", "add", "198.51.100.7/32", "dev", name, "scope", "host")


def net_devices(devices, join=None):
    def edit(config):
        config["linux"]["netDevices"] = devices
        if join:
            config["linux"]["namespaces"] = [n for n in config["linux"]["namespaces"] if n["type"] != "network"] + [
                {"type": "network", "path": join}
            ]

    return edit


def create_in(runtime, ns, container_factory, bundle):
    c = container_factory(bundle)
    with runtime.in_network_namespace(ns.path):
        c.create()
    return c


def container_links(runtime, c) -> dict[str, dict]:
    return links_in(f"/proc/{runtime.state(c.id).pid}/ns/net")


def expect_create_error_in(runtime, ns, c, what):
    """_errors.expect_create_error with create run in the network namespace ``ns``: the refusal
    must be create's own ("create failed"), not a failure to enter ``ns``."""
    with runtime.in_network_namespace(ns.path), pytest.raises(RuntimeCallError, match="create failed"):
        c.create()
        pytest.fail(f"{what}: create succeeded; expected an error")
    with pytest.raises(RuntimeCallError):
        runtime.state(c.id)


# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [None, "ctr0"], ids=["same-name", "renamed"])
@pytest.mark.spec("linux.netdevices.available", "linux.netdevices.name", "features.linux.netdevices")
def test_device_is_moved_into_the_container(runtime, bundle_factory, container_factory, netns, name):
    ns = netns()
    add_veth(ns)
    c = create_in(
        runtime,
        ns,
        container_factory,
        bundle_factory("exit", "0", edit=net_devices({"nd0": {"name": name} if name else {}})),
    )
    inside = container_links(runtime, c)
    expected = name or "nd0"
    assert expected in inside, (
        f"netDevices nd0{' -> ' + name if name else ''}: the container's network namespace should hold {expected!r}; it holds {sorted(inside)}"
    )
    if name:
        assert "nd0" not in inside, (
            f"nd0 was to be renamed {name!r} inside, yet the container holds both: {sorted(inside)}"
        )
    assert "nd0" not in ns.links(), "nd0 is still in the runtime's network namespace after create: it was not moved"


@pytest.mark.spec("linux.netdevices.attributes")
def test_device_keeps_its_attributes_and_global_addresses(runtime, bundle_factory, container_factory, netns):
    ns = netns()
    add_veth(ns)
    c = create_in(
        runtime, ns, container_factory, bundle_factory("exit", "0", edit=net_devices({"nd0": {"name": "ctr0"}}))
    )
    link = container_links(runtime, c).get("ctr0")
    assert link is not None, "ctr0 is not in the container's network namespace"
    assert (link["mtu"], link["address"]) == (MTU, MAC), (
        f"MTU and hardware address should be kept ({MTU}, {MAC}); inside they are ({link['mtu']}, {link['address']})"
    )
    missing = ADDRESSES - global_addresses(link)
    assert not missing, (
        f"the permanent global addresses {sorted(ADDRESSES)} MUST be preserved; inside ctr0 lacks {sorted(missing)} (it has {sorted(global_addresses(link))})"
    )


@pytest.mark.spec("linux.netdevices.up")
def test_device_is_up_after_the_move(runtime, bundle_factory, container_factory, netns):
    ns = netns()
    add_veth(ns)
    c = create_in(runtime, ns, container_factory, bundle_factory("exit", "0", edit=net_devices({"nd0": {}})))
    link = container_links(runtime, c).get("nd0")
    assert link is not None, "nd0 is not in the container's network namespace"
    assert "UP" in link["flags"], (
        f"the runtime MUST set the device up after the move; its flags inside are {link['flags']}"
    )


@pytest.mark.spec("linux.netdevices.name-clash")
def test_name_taken_in_the_container_is_an_error(runtime, bundle_factory, container_factory, netns):
    ns = netns()
    add_veth(ns)
    c = container_factory(bundle_factory("exit", "0", edit=net_devices({"nd0": {"name": "lo"}})))
    expect_create_error_in(runtime, ns, c, "netDevices nd0 -> 'lo', a name a new network namespace already holds")
    assert "nd0" in ns.links(), (
        "after the refused move nd0 should still be in the runtime's network namespace (the move is checked first)"
    )


@pytest.mark.spec("linux.netdevices.name-clash", "linux.netdevices.name-template")
def test_name_template_gets_a_free_name(runtime, bundle_factory, container_factory, netns):
    ns, joined = netns(), netns()
    add_veth(ns)
    joined.ip("link", "add", "eth0", "type", "veth", "peer", "name", "eth0p")  # eth0 is taken there
    c = create_in(
        runtime,
        ns,
        container_factory,
        bundle_factory("exit", "0", edit=net_devices({"nd0": {"name": "eth%d"}}, join=joined.path)),
    )
    inside = joined.links()
    assert "eth1" in inside and "nd0" not in inside, (
        f"netDevices nd0 -> 'eth%d' into a namespace holding eth0: the kernel should name it eth1; the namespace holds {sorted(inside)}"
    )
    assert runtime.state(c.id).status == "created"


@pytest.mark.spec("linux.netdevices.check-possible", "runtime.errors.no-change")
def test_missing_device_is_an_error(runtime, bundle_factory, container_factory, netns):
    ns = netns()
    c = container_factory(bundle_factory("exit", "0", edit=net_devices({"nd9": {}})))
    expect_create_error_in(runtime, ns, c, "netDevices names nd9, which does not exist")


@pytest.mark.spec("linux.netdevices.no-lifecycle-management")
def test_device_stays_in_a_joined_namespace_after_delete(runtime, bundle_factory, container_factory, netns):
    ns, joined = netns(), netns()
    add_veth(ns)
    c = create_in(
        runtime,
        ns,
        container_factory,
        bundle_factory("exit", "0", edit=net_devices({"nd0": {"name": "ctr0"}}, join=joined.path)),
    )
    assert "ctr0" in joined.links(), f"ctr0 is not in the joined network namespace: {sorted(joined.links())}"
    with runtime.in_network_namespace(ns.path):
        c.kill("KILL")
        c.wait()
        c.delete()
    assert "ctr0" in joined.links(), (
        f"the container joined a network namespace it does not own: after delete its device must stay there as it is; the namespace holds {sorted(joined.links())}"
    )
    back = sorted(set(ns.links()) & {"nd0", "ctr0"})
    assert not back, f"the runtime moved the device back out to its own namespace ({back}) at delete"


@pytest.mark.spec("linux.netdevices.not-moved-out")
def test_device_is_not_moved_out_before_delete(runtime, bundle_factory, container_factory, netns):
    """The case holds the container's network namespace open (an fd), so it outlives the
    container: after kill and delete the device must still be in it, not back in the runtime's."""
    ns = netns()
    add_veth(ns)
    c = create_in(
        runtime, ns, container_factory, bundle_factory("exit", "0", edit=net_devices({"nd0": {"name": "ctr0"}}))
    )
    held = os.open(f"/proc/{runtime.state(c.id).pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        with runtime.in_network_namespace(ns.path):
            c.kill("KILL")
            c.wait()
            c.delete()
        inside = links_in(f"/proc/{os.getpid()}/fd/{held}")
        back = sorted(set(ns.links()) & {"nd0", "ctr0"})
        assert not back, (
            f"after delete the device is back in the runtime's network namespace as {back}: it MUST NOT be moved out of the container's"
        )
        assert "ctr0" in inside, (
            f"the container's network namespace (held open by the case) should still hold ctr0 after delete; it holds {sorted(inside)}"
        )
    finally:
        os.close(held)
