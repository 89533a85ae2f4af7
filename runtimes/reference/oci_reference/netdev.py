"""Network devices (config-linux.md "Network Devices"): move each device named in
linux.netDevices from the runtime's network namespace into the container's, renamed when
`name` is given, keep its attributes and its permanent global addresses, and set it up.

Done by `create` (C) once the container init exists, over rtnetlink (a NETLINK_ROUTE socket
of the stdlib `socket` module): RTM_GETLINK and RTM_GETADDR read the device, RTM_NEWLINK with
IFLA_NET_NS_FD (and IFLA_IFNAME) moves and renames it, and a socket opened inside the
container's namespace sets it up and adds the addresses back (the kernel drops them on a
move; MTU and hardware address travel with the device). Nothing is done at delete: the
device's lifecycle belongs to whoever owns the namespace (the spec's MUST NOT).
"""

import os
import socket
import struct

from oci_reference import linux
from oci_reference.errors import RuntimeFailure

RTM_NEWLINK, RTM_GETLINK, RTM_NEWADDR, RTM_GETADDR = 16, 18, 20, 22
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE, NLM_F_DUMP = 0x1, 0x4, 0x200, 0x400, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
IFLA_IFNAME, IFLA_NET_NS_FD = 3, 28
IFA_ADDRESS, IFA_LOCAL, IFA_LABEL, IFA_BROADCAST, IFA_CACHEINFO, IFA_FLAGS = 1, 2, 3, 4, 6, 8
IFA_F_PERMANENT, IFA_F_NODAD = 0x80, 0x02
RT_SCOPE_UNIVERSE = 0
IFF_UP = 1
IFNAMSIZ = 16


def valid_name(name):
    return 0 < len(name.encode()) < IFNAMSIZ and name not in (".", "..") and not any(c in name for c in "/: \t\n")


def _attr(kind, data):
    if isinstance(data, str):
        data = data.encode() + b"\0"
    n = 4 + len(data)
    return struct.pack("HH", n, kind) + data + b"\0" * ((4 - n % 4) % 4)


def _attrs(buf):
    out = {}
    while len(buf) >= 4:
        n, kind = struct.unpack_from("HH", buf)
        if n < 4:
            break
        out[kind & 0x3FFF] = buf[4:n]
        buf = buf[(n + 3) & ~3 :]
    return out


class _Netlink:
    def __init__(self):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self):
        self.sock.close()

    def request(self, kind, flags, body):
        """Send one message; return the payloads of the answers (a dump: all of them)."""
        self.seq += 1
        self.sock.send(struct.pack("IHHII", 16 + len(body), kind, NLM_F_REQUEST | flags, self.seq, 0) + body)
        out = []
        while True:
            data = self.sock.recv(65536)
            while len(data) >= 16:
                n, typ, _, seq, _ = struct.unpack_from("IHHII", data)
                payload, data = data[16:n], data[(n + 3) & ~3 :]
                if seq != self.seq:
                    continue
                if typ == NLMSG_ERROR:
                    err = -struct.unpack_from("i", payload)[0]
                    if err:
                        raise OSError(err, os.strerror(err))
                    return out
                if typ == NLMSG_DONE:
                    return out
                out.append((typ, payload))
                if not flags & NLM_F_DUMP and not flags & NLM_F_ACK:
                    return out

    def link(self, name=None, index=0):
        """(index, name) of a device by name or index; None if there is none."""
        body = struct.pack("BxHiII", 0, 0, index, 0, 0) + (_attr(IFLA_IFNAME, name) if name else b"")
        try:
            found = self.request(RTM_GETLINK, 0, body)
        except OSError as e:
            if e.errno in (19, 2):  # ENODEV, ENOENT
                return None
            raise
        payload = found[0][1]
        idx = struct.unpack_from("i", payload, 4)[0]
        return idx, _attrs(payload[16:])[IFLA_IFNAME].rstrip(b"\0").decode()

    def permanent_global_addresses(self, index):
        """The addresses to carry along: IFA_F_PERMANENT, scope universe (any family)."""
        keep = []
        for _typ, payload in self.request(RTM_GETADDR, NLM_F_DUMP, struct.pack("BBBBI", 0, 0, 0, 0, 0)):
            family, prefix, flags, scope, idx = struct.unpack_from("BBBBI", payload)
            if idx != index or scope != RT_SCOPE_UNIVERSE:
                continue
            attrs = _attrs(payload[8:])
            if IFA_FLAGS in attrs:
                flags = struct.unpack("I", attrs[IFA_FLAGS][:4])[0]
            if flags & IFA_F_PERMANENT:
                keep.append((family, prefix, flags, scope, attrs))
        return keep

    def move(self, index, netns_fd, new_name):
        body = struct.pack("BxHiII", 0, 0, index, 0, 0) + _attr(IFLA_NET_NS_FD, struct.pack("I", netns_fd))
        if new_name:
            body += _attr(IFLA_IFNAME, new_name)
        self.request(RTM_NEWLINK, NLM_F_ACK, body)

    def set_up(self, index):
        self.request(RTM_NEWLINK, NLM_F_ACK, struct.pack("BxHiII", 0, 0, index, IFF_UP, IFF_UP))

    def add_address(self, index, family, prefix, flags, scope, attrs):
        body = struct.pack("BBBBI", family, prefix, flags & 0xFF, scope, index)
        for kind in (IFA_LOCAL, IFA_ADDRESS, IFA_BROADCAST):
            if kind in attrs:
                body += _attr(kind, attrs[kind])
        body += _attr(IFA_FLAGS, struct.pack("I", flags | IFA_F_NODAD))
        self.request(RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, body)


def _netlink_in(netns_fd):
    """A netlink socket of the network namespace `netns_fd` (this process stays where it is)."""
    here = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        linux.setns(netns_fd, linux.CLONE_NEWNET)
        try:
            return _Netlink()
        finally:
            linux.setns(here, linux.CLONE_NEWNET)
    finally:
        os.close(here)


def move_devices(devices, init_pid):
    """Move `devices` ({host name: name inside or None}) into the network namespace of
    `init_pid`; a RuntimeFailure names the device and the problem."""
    target = os.open(f"/proc/{init_pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    here = _Netlink()
    inside = None
    try:
        inside = _netlink_in(target)
        for host_name, name in devices.items():
            where = f"linux.netDevices.{host_name}"
            found = here.link(host_name)
            if found is None:
                raise RuntimeFailure(f"{where}: no network device {host_name!r} in the runtime's network namespace")
            index = found[0]
            new_name = name or host_name
            if "%d" not in new_name and inside.link(new_name) is not None:
                raise RuntimeFailure(
                    f"{where}: a network device named {new_name!r} already exists in the container's network namespace"
                )
            addresses = here.permanent_global_addresses(index)
            try:
                here.move(index, target, name if name and name != host_name else None)
            except OSError as e:
                raise RuntimeFailure(
                    f"{where}: cannot move {host_name!r} into the container's network namespace: {e.strerror}"
                ) from None
            if "%d" in new_name:  # the kernel picked the name; the index stays unless taken
                moved = inside.link(index=index)
                if moved is not None and not moved[1].startswith(new_name.split("%d")[0]):
                    moved = None
            else:
                moved = inside.link(new_name)
            if moved is None:
                raise RuntimeFailure(
                    f"{where}: {host_name!r} was moved but cannot be found in the container's network namespace"
                )
            try:
                inside.set_up(moved[0])
                for family, prefix, flags, scope, attrs in addresses:
                    inside.add_address(moved[0], family, prefix, flags, scope, attrs)
            except OSError as e:
                raise RuntimeFailure(f"{where}: cannot set up {moved[1]!r} in the container: {e.strerror}") from None
    finally:
        here.close()
        if inside is not None:
            inside.close()
        os.close(target)
