"""Control groups: one small interface over cgroup v1 (incl. hybrid) and pure cgroup v2.

    cg = cgroups.create(cgroups_path, container_id, resources)   # in the runtime
    cg.join(0)                                                   # in the container process
    cg.pids(); cg.destroy()                                      # at delete
    cgroups.Cgroup.from_dict(cg.to_dict())                       # kept in state.json

The mode is detected at run time: /sys/fs/cgroup/cgroup.controllers exists only on pure v2.
"""

from oci_reference import oslite as os  # not `os` itself: see oslite
from oci_reference.errors import RuntimeFailure

CGROUP_ROOT = "/sys/fs/cgroup"
DEFAULT_PARENT = "/oci-reference"  # the default cgroupsPath is DEFAULT_PARENT/<id>


def is_v2():
    return os.path.exists(CGROUP_ROOT + "/cgroup.controllers")


def _mountinfo():
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            lf = left.split()
            rf = right.split()
            if len(lf) < 5 or len(rf) < 3:
                continue
            yield lf[4].replace("\\040", " "), rf[0], rf[2]


def _known_controllers():
    names = set()
    try:
        with open("/proc/cgroups") as f:
            for line in f:
                if not line.startswith("#"):
                    names.add(line.split()[0])
    except OSError:
        pass
    return names


def v1_hierarchies():
    """[(mountpoint, [controllers or name=...]), ...] for cgroup v1 plus the hybrid v2 mount."""
    out = []
    known = _known_controllers()
    for mp, fstype, sopts in _mountinfo():
        if not mp.startswith(CGROUP_ROOT + "/"):
            continue
        if fstype == "cgroup":
            ctrls = [o for o in sopts.split(",") if o in known or o.startswith("name=")]
            out.append((mp, ctrls))
        elif fstype == "cgroup2":
            out.append((mp, []))
    return out


def _write(path, value):
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError as e:
        raise RuntimeFailure(f"cgroup: cannot write {value!r} to {path}: {e.strerror}") from None


def _exists(d, name):
    return os.path.exists(os.path.join(d, name))


class Cgroup:
    def __init__(self, version, dirs, created, shared=()):
        self.version = version  # 1 or 2
        self.dirs = dirs  # {hierarchy key: absolute directory}
        self.created = created  # directories this container created (removed at delete)
        # parents this runtime owns whoever created them (the default /oci-reference):
        # removed at delete once empty, like created parents
        self.shared = list(shared)

    def to_dict(self):
        return {"version": self.version, "dirs": self.dirs, "created": self.created, "shared": self.shared}

    @classmethod
    def from_dict(cls, d):
        return cls(d["version"], d["dirs"], d["created"], d.get("shared", ()))

    def mount_sources(self):
        """What the container's cgroup mount shows: [(name, host dir, [symlink names])]."""
        if self.version == 2:
            return [("", self.dirs[""], [])]
        return [(k, d, k.split(",") if "," in k else []) for k, d in self.dirs.items()]

    def join(self, pid=0):
        for d in self.dirs.values():
            _write(os.path.join(d, "cgroup.procs"), str(pid))

    def pids(self):
        out = set()
        for d in self.dirs.values():
            try:
                with open(os.path.join(d, "cgroup.procs")) as f:
                    out.update(int(x) for x in f.read().split())
            except OSError:
                pass
        return sorted(out)

    def destroy(self, timeout=5.0):
        """Remove the container's groups, then the parents it created (or this runtime
        owns) that are empty now.  A leaf is retried only while busy (EBUSY: the kernel
        has not finished with an exiting task), with a short backoff and a deadline."""
        leaves = set(self.dirs.values())
        deadline = None
        delay = 0.0002
        for d in sorted(set(self.created) | set(self.shared), key=len, reverse=True):
            while True:
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError as e:
                    if d not in leaves or e.errno != 16:
                        if d in leaves:
                            raise RuntimeFailure(f"cgroup: cannot remove {d}: {e.strerror}") from None
                        break  # a parent still used by other containers
                    import time

                    if deadline is None:
                        deadline = time.monotonic() + timeout
                    elif time.monotonic() > deadline:
                        raise RuntimeFailure(f"cgroup: cannot remove {d}: {e.strerror}") from None
                    time.sleep(delay)
                    delay = min(delay * 2, 0.01)


def _group_path(cgroups_path, cid):
    p = cgroups_path or f"{DEFAULT_PARENT}/{cid}"
    p = "/" + p.strip("/")
    if ".." in p.split("/"):
        raise RuntimeFailure(f"linux.cgroupsPath: {p} must not contain '..'")
    return p


def _umask():
    """This process's umask (read by setting it: two calls, once per process)."""
    global _UMASK
    if _UMASK is None:
        _UMASK = os.umask(0o022)
        os.umask(_UMASK)
    return _UMASK


_UMASK = None


def _mkdirs(base, rel, created, on_new=None):
    parts = rel.strip("/").split("/")
    start = len(parts) - 1  # the usual case first: the parents exist (one mkdir, not one per level)
    for _attempt in range(100):
        cur = os.path.join(base, *parts[:start])
        for part in parts[start:]:
            parent = cur
            cur = os.path.join(cur, part)
            try:
                os.mkdir(cur, 0o755)
            except FileExistsError:
                continue
            except FileNotFoundError:
                # a parent is missing: not made yet, or another container's delete removed an
                # empty one just now; again from the top
                break
            except OSError as e:
                raise RuntimeFailure(f"cgroup: cannot create {cur}: {e.strerror}") from None
            created.append(cur)
            # 0755 whatever the caller's umask: a parent is shared by later containers, and
            # one made 0700 under umask 077 cannot be crossed by a user-namespaced one
            if _umask() & 0o755:
                try:
                    os.chmod(cur, 0o755)
                except FileNotFoundError:
                    break
            if on_new:
                on_new(parent, cur)
        else:
            return cur
        start = 0
    raise RuntimeFailure(f"cgroup: cannot create {base}{rel}: its parents keep vanishing")


def create(cgroups_path, cid, resources):
    rel = _group_path(cgroups_path, cid)
    created = []
    try:
        if is_v2():
            cg = Cgroup(2, {"": _mkdirs(CGROUP_ROOT, rel, created, _v2_enable)}, created)
            if not cgroups_path:
                cg.shared = [CGROUP_ROOT + DEFAULT_PARENT]
            _apply_v2(cg.dirs[""], resources)
        else:
            dirs = {}
            for mp, ctrls in v1_hierarchies():
                dirs[os.path.basename(mp)] = leaf = _mkdirs(mp, rel, created)
                if "cpuset" in ctrls:
                    _cpuset_init(mp, leaf)
            cg = Cgroup(1, dirs, created)
            if not cgroups_path:
                cg.shared = [os.path.dirname(d) for d in dirs.values()]
            _apply_v1(cg, resources)
        return cg
    except BaseException:
        Cgroup(0, {}, created).destroy(timeout=1.0)
        raise


def _cpuset_init(base, leaf):
    """v1 cpuset: a new group starts with empty cpus/mems (no task can join it); copy them
    down from the parent, top-down, for every group on the path.  Top-down and always
    (not only for groups this call made): another container may have just made a parent
    and not filled it in yet."""
    path = base
    parts = leaf[len(base) :].strip("/").split("/")
    for part in parts:
        parent, path = path, os.path.join(path, part)
        for f in ("cpuset.cpus", "cpuset.mems"):
            try:
                with open(os.path.join(path, f)) as fh:
                    if fh.read().strip():
                        continue
                with open(os.path.join(parent, f)) as fh:
                    value = fh.read().strip()
            except FileNotFoundError:
                continue
            try:
                _write(os.path.join(path, f), value)
            except RuntimeFailure:
                # a concurrent writer may have filled it in; only an empty value is fatal
                with open(os.path.join(path, f)) as fh:
                    if not fh.read().strip():
                        raise


# --- v2 --------------------------------------------------------------------------------
_V2_CONTROLLERS = ("cpu", "cpuset", "memory", "pids", "io")


def _v2_enable(parent, cur):
    try:
        with open(os.path.join(parent, "cgroup.controllers")) as f:
            avail = f.read().split()
    except OSError:
        return
    for c in _V2_CONTROLLERS:
        if c in avail:
            try:
                with open(os.path.join(parent, "cgroup.subtree_control"), "w") as f:
                    f.write("+" + c)
            except OSError:
                pass


def _write_v2(d, name, value):
    """Write a v2 control file; one that does not exist means its controller is not enabled
    here (not offered by the parent, or bound to a v1 hierarchy): say so, by name."""
    path = os.path.join(d, name)
    if not os.path.exists(path):
        try:
            with open(os.path.join(os.path.dirname(d), "cgroup.subtree_control")) as f:
                enabled = f.read().split()
        except OSError:
            enabled = []
        ctrl = name.split(".", 1)[0]
        if ctrl in enabled or ctrl == "cgroup":
            raise RuntimeFailure(f"cgroup: cannot set {name}: {d} has no such control file")
        raise RuntimeFailure(
            f"cgroup: cannot set {name}: the {ctrl} controller is not available to {d} "
            f"(enabled for it: {', '.join(enabled) or 'none'})"
        )
    _write(path, value)


def _max(v):
    return "max" if v is None or v < 0 else str(v)


def _apply_v2(d, r):
    mem = r.get("memory") or {}
    for k in ("swappiness", "disableOOMKiller", "kernel", "kernelTCP"):
        if mem.get(k) not in (None, False):
            raise RuntimeFailure(f"linux.resources.memory.{k} cannot be applied on cgroup v2")
    if "limit" in mem:
        _write_v2(d, "memory.max", _max(mem["limit"]))
    if "reservation" in mem:
        _write_v2(d, "memory.low", _max(mem["reservation"]))
    if "swap" in mem:
        sw = mem["swap"]
        lim = mem.get("limit")
        if sw < 0:
            val = "max"
        elif lim is not None and lim >= 0:
            val = str(max(sw - lim, 0))
        else:
            raise RuntimeFailure("linux.resources.memory.swap needs memory.limit on cgroup v2")
        _write_v2(d, "memory.swap.max", val)
    pids = r.get("pids")
    if pids:
        lim = pids["limit"]
        _write_v2(d, "pids.max", _max(lim))  # 0 is a limit (config-linux.md "PIDs")
    cpu = r.get("cpu") or {}
    for k in ("realtimeRuntime", "realtimePeriod"):
        if cpu.get(k) not in (None, 0):
            raise RuntimeFailure(f"linux.resources.cpu.{k} cannot be applied on cgroup v2")
    if cpu.get("shares"):
        s = cpu["shares"]
        _write_v2(d, "cpu.weight", str(1 + ((max(s, 2) - 2) * 9999) // 262142))
    if "quota" in cpu or "period" in cpu:
        q = cpu.get("quota")
        _write_v2(d, "cpu.max", f"{_max(q)} {cpu.get('period') or 100000}")
    if "burst" in cpu:
        _write_v2(d, "cpu.max.burst", str(cpu["burst"]))
    if "idle" in cpu:
        _write_v2(d, "cpu.idle", str(cpu["idle"]))
    if "cpus" in cpu:
        _write_v2(d, "cpuset.cpus", cpu["cpus"])
    if "mems" in cpu:
        _write_v2(d, "cpuset.mems", cpu["mems"])
    bio = r.get("blockIO")
    if bio:
        _io_v2(d, bio)
    for h in r.get("hugepageLimits") or ():
        _enable_v2(d, "hugetlb", "linux.resources.hugepageLimits")
        _hugetlb(d, h, "hugetlb.{}.max", "hugetlb.{}.rsvd.max")
    if r.get("network"):
        raise RuntimeFailure(
            "linux.resources.network (net_cls, net_prio) cannot be applied on cgroup v2: "
            "the v2 hierarchy has no such controllers"
        )
    if r.get("rdma"):
        _enable_v2(d, "rdma", "linux.resources.rdma")
        _rdma(d, r["rdma"], lambda path, value: _write_v2(d, os.path.basename(path), value))
    # device rules need an eBPF program on v2; not implemented (documented in README)
    for k, v in (r.get("unified") or {}).items():
        ctrl = k.split(".", 1)[0]
        if ctrl != "cgroup":  # cgroup.* are core files, there in every cgroup
            _enable_v2(d, ctrl, f"linux.resources.unified.{k}")
        _write_v2(d, k, v)


def _enable_v2(d, ctrl, what):
    """Make sure controller ``ctrl`` is enabled for cgroup ``d`` (config-linux.md "Unified": the
    runtime MUST ensure the needed controllers are enabled): it must be offered at the root,
    then it is added to cgroup.subtree_control of every ancestor that lacks it."""
    try:
        with open(os.path.join(CGROUP_ROOT, "cgroup.controllers")) as f:
            offered = f.read().split()
    except OSError as e:
        raise RuntimeFailure(f"{what}: cannot read {CGROUP_ROOT}/cgroup.controllers: {e.strerror}") from None
    if ctrl not in offered:
        raise RuntimeFailure(
            f"{what}: the {ctrl} cgroup controller is not present in the cgroup v2 hierarchy "
            f"(offered: {', '.join(offered) or 'none'})"
        )
    parts = os.path.relpath(d, CGROUP_ROOT).split("/")
    cur = CGROUP_ROOT
    for part in parts:
        control = os.path.join(cur, "cgroup.subtree_control")
        with open(control) as f:
            enabled = f.read().split()
        if ctrl not in enabled:
            try:
                with open(control, "w") as f:
                    f.write("+" + ctrl)
            except OSError as e:
                raise RuntimeFailure(
                    f"{what}: the {ctrl} controller cannot be enabled in {cur}: {e.strerror}"
                ) from None
        cur = os.path.join(cur, part)


def _io_v2(d, bio):
    """blockIO on v2: io.weight (or io.bfq.weight) and io.max ("MAJOR:MINOR rbps=N ...")."""
    if "leafWeight" in bio or any("leafWeight" in e for e in bio.get("weightDevice", ())):
        raise RuntimeFailure("linux.resources.blockIO.leafWeight has no cgroup v2 equivalent")

    def weight_file():
        for name in ("io.weight", "io.bfq.weight"):
            if _exists(d, name):
                return name
        raise RuntimeFailure(f"linux.resources.blockIO.weight: no io.weight in {d} (io controller not enabled)")

    def v2_weight(w):  # blkio weight 10..1000 -> io weight 1..10000
        return 1 + (max(w, 10) - 10) * 9999 // 990

    if "weight" in bio:
        _write_v2(d, weight_file(), f"default {v2_weight(bio['weight'])}")
    for e in bio.get("weightDevice", ()):
        _write_v2(d, weight_file(), f"{e['major']}:{e['minor']} {v2_weight(e['weight'])}")
    keys = {
        "throttleReadBpsDevice": "rbps",
        "throttleWriteBpsDevice": "wbps",
        "throttleReadIOPSDevice": "riops",
        "throttleWriteIOPSDevice": "wiops",
    }
    for key, name in keys.items():
        for e in bio.get(key, ()):
            _write_v2(d, "io.max", f"{e['major']}:{e['minor']} {name}={e['rate']}")


# --- v1 --------------------------------------------------------------------------------
def _apply_v1(cg, r):
    if r.get("unified"):
        raise RuntimeFailure("linux.resources.unified needs cgroup v2")
    dirs = cg.dirs

    def need(ctrl, what):
        d = dirs.get(ctrl)
        if d is None:
            for k, v in dirs.items():
                if ctrl in k.split(","):
                    return v
            raise RuntimeFailure(f"{what}: the {ctrl} cgroup controller is not available")
        return d

    mem = r.get("memory") or {}
    if mem:
        d = need("memory", "linux.resources.memory")
        if "limit" in mem:
            _write(os.path.join(d, "memory.limit_in_bytes"), str(mem["limit"]))
        if "swap" in mem:
            if not _exists(d, "memory.memsw.limit_in_bytes"):
                raise RuntimeFailure("linux.resources.memory.swap: swap accounting is not enabled")
            _write(os.path.join(d, "memory.memsw.limit_in_bytes"), str(mem["swap"]))
        if "reservation" in mem:
            _write(os.path.join(d, "memory.soft_limit_in_bytes"), str(mem["reservation"]))
        if "swappiness" in mem:
            _write(os.path.join(d, "memory.swappiness"), str(mem["swappiness"]))
        if mem.get("disableOOMKiller"):
            _write(os.path.join(d, "memory.oom_control"), "1")
        for k, f in (("kernel", "memory.kmem.limit_in_bytes"), ("kernelTCP", "memory.kmem.tcp.limit_in_bytes")):
            if k in mem:
                if not _exists(d, f):
                    raise RuntimeFailure(f"linux.resources.memory.{k} is not supported by this kernel")
                _write(os.path.join(d, f), str(mem[k]))
    pids = r.get("pids")
    if pids:
        d = need("pids", "linux.resources.pids")
        lim = pids["limit"]
        _write(os.path.join(d, "pids.max"), _max(lim))  # 0 is a limit (config-linux.md "PIDs")
    cpu = r.get("cpu") or {}
    if any(k in cpu for k in ("shares", "quota", "period", "realtimeRuntime", "realtimePeriod", "burst", "idle")):
        d = need("cpu", "linux.resources.cpu")
        if "idle" in cpu:
            if not _exists(d, "cpu.idle"):
                raise RuntimeFailure("linux.resources.cpu.idle: this kernel has no cpu.idle (Linux 5.15 or later)")
            _write(os.path.join(d, "cpu.idle"), str(cpu["idle"]))
        if cpu.get("shares"):
            _write(os.path.join(d, "cpu.shares"), str(cpu["shares"]))
        if cpu.get("period"):
            _write(os.path.join(d, "cpu.cfs_period_us"), str(cpu["period"]))
        if "quota" in cpu:
            _write(os.path.join(d, "cpu.cfs_quota_us"), str(cpu["quota"]))
        if "burst" in cpu:
            _write(os.path.join(d, "cpu.cfs_burst_us"), str(cpu["burst"]))
        if cpu.get("realtimePeriod"):
            _write(os.path.join(d, "cpu.rt_period_us"), str(cpu["realtimePeriod"]))
        if "realtimeRuntime" in cpu:
            _write(os.path.join(d, "cpu.rt_runtime_us"), str(cpu["realtimeRuntime"]))
    if "cpus" in cpu or "mems" in cpu:
        d = need("cpuset", "linux.resources.cpu.cpus")
        if "cpus" in cpu:
            _write(os.path.join(d, "cpuset.cpus"), cpu["cpus"])
        if "mems" in cpu:
            _write(os.path.join(d, "cpuset.mems"), cpu["mems"])
    bio = r.get("blockIO")
    if bio:
        _blkio_v1(need("blkio", "linux.resources.blockIO"), bio)
    for h in r.get("hugepageLimits") or ():
        d = need("hugetlb", "linux.resources.hugepageLimits")
        _hugetlb(d, h, "hugetlb.{}.limit_in_bytes", "hugetlb.{}.rsvd.limit_in_bytes")
    net = r.get("network")
    if net:
        if "classID" in net:
            _write(
                os.path.join(need("net_cls", "linux.resources.network.classID"), "net_cls.classid"), str(net["classID"])
            )
        for name, prio in net.get("priorities", ()):
            _write(
                os.path.join(need("net_prio", "linux.resources.network.priorities"), "net_prio.ifpriomap"),
                f"{name} {prio}",
            )
    if r.get("rdma"):
        _rdma(need("rdma", "linux.resources.rdma"), r["rdma"], _write)


# --- resources written the same way on v1 and v2 ------------------------------------------
def _blkio_v1(d, bio):
    """blockIO on v1: blkio.weight (or blkio.bfq.weight when BFQ provides it), per-device
    weights, and the throttle files ("MAJOR:MINOR VALUE" lines)."""

    def weight_file(base):
        for name in (f"blkio.{base}", f"blkio.bfq.{base}"):
            if _exists(d, name):
                return os.path.join(d, name)
        raise RuntimeFailure(
            f"linux.resources.blockIO: this host's blkio controller has no blkio.{base} "
            f"(nor blkio.bfq.{base}: the BFQ I/O scheduler is not in use)"
        )

    if "weight" in bio:
        _write(weight_file("weight"), str(bio["weight"]))
    if "leafWeight" in bio:
        if not _exists(d, "blkio.leaf_weight"):
            raise RuntimeFailure(
                "linux.resources.blockIO.leafWeight: this kernel has no blkio.leaf_weight (CFQ is gone)"
            )
        _write(os.path.join(d, "blkio.leaf_weight"), str(bio["leafWeight"]))
    for e in bio.get("weightDevice", ()):
        if "weight" in e:
            _write(weight_file("weight_device"), f"{e['major']}:{e['minor']} {e['weight']}")
        if "leafWeight" in e:
            if not _exists(d, "blkio.leaf_weight_device"):
                raise RuntimeFailure(
                    "linux.resources.blockIO.weightDevice.leafWeight: this kernel has no blkio.leaf_weight_device"
                )
            _write(os.path.join(d, "blkio.leaf_weight_device"), f"{e['major']}:{e['minor']} {e['leafWeight']}")
    for key, name in _THROTTLES:
        for e in bio.get(key, ()):
            _write(os.path.join(d, f"blkio.throttle.{name}_device"), f"{e['major']}:{e['minor']} {e['rate']}")


_THROTTLES = (
    ("throttleReadBpsDevice", "read_bps"),
    ("throttleWriteBpsDevice", "write_bps"),
    ("throttleReadIOPSDevice", "read_iops"),
    ("throttleWriteIOPSDevice", "write_iops"),
)


def _hugetlb(d, h, limit_name, rsvd_name):
    """One hugepageLimits entry: the limit, and the reservation limit where the kernel
    accounts reservations (config-linux.md "Huge page limits")."""
    size = h["pageSize"]
    path = os.path.join(d, limit_name.format(size))
    if not os.path.exists(path):
        raise RuntimeFailure(
            f"linux.resources.hugepageLimits: no {os.path.basename(path)} in {d}: "
            f"this host has no {size} huge pages (see /sys/kernel/mm/hugepages)"
        )
    rsvd = os.path.join(d, rsvd_name.format(size))
    if os.path.exists(rsvd):
        _write(rsvd, str(h["limit"]))
    _write(path, str(h["limit"]))


def _rdma(d, limits, write):
    for dev, lim in limits.items():
        parts = [f"hca_handle={lim['hcaHandles']}"] if lim.get("hcaHandles") is not None else []
        if lim.get("hcaObjects") is not None:
            parts.append(f"hca_object={lim['hcaObjects']}")
        write(os.path.join(d, "rdma.max"), f"{dev} {' '.join(parts)}")


class _ControlFiles:
    """Control files kept open across writes: one open() per file, one write() per value (the
    kernel parses each write on its own), in the order given."""

    def __init__(self):
        self.fds = {}

    def write(self, path, value):
        try:
            fd = self.fds.get(path)
            if fd is None:
                fd = self.fds[path] = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            os.write(fd, value.encode())
        except OSError as e:
            raise RuntimeFailure(f"cgroup: cannot write {value!r} to {path}: {e.strerror}") from None

    def close(self):
        for fd in self.fds.values():
            os.close(fd)
        self.fds = {}


def device_rules_v1(cg, rules, extra_devices):
    """Apply linux.resources.devices on v1, then allow the devices every container needs."""
    if cg.version != 1 or not rules:
        return
    d = None
    for k, v in cg.dirs.items():
        if "devices" in k.split(","):
            d = v
    if d is None:
        raise RuntimeFailure("linux.resources.devices: the devices cgroup controller is not available")

    def rule(typ, major, minor, access):
        return f"{typ} {'*' if major is None or major < 0 else major}:{'*' if minor is None or minor < 0 else minor} {access}"

    defaults = [
        ("c", None, None, "m"),
        ("b", None, None, "m"),
        ("c", 1, 3, "rwm"),
        ("c", 1, 5, "rwm"),
        ("c", 1, 7, "rwm"),
        ("c", 1, 8, "rwm"),
        ("c", 1, 9, "rwm"),
        ("c", 5, 0, "rwm"),
        ("c", 5, 1, "rwm"),
        ("c", 5, 2, "rwm"),
        ("c", 136, None, "rwm"),
        ("c", 10, 200, "rwm"),
    ]
    for dev in extra_devices:
        if dev["type"] in ("c", "u", "b"):
            defaults.append(("b" if dev["type"] == "b" else "c", dev["major"], dev["minor"], "rwm"))
    files = _ControlFiles()
    try:
        for r in rules:
            files.write(
                os.path.join(d, "devices.allow" if r["allow"] else "devices.deny"),
                rule(r["type"], r["major"], r["minor"], r["access"]),
            )
        for typ, ma, mi, acc in defaults:
            files.write(os.path.join(d, "devices.allow"), rule(typ, ma, mi, acc))
    finally:
        files.close()


# --- ownership (config-linux.md "Cgroup ownership") ---------------------------------------
DELEGATE_LIST = "/sys/kernel/cgroup/delegate"
DELEGATE_FALLBACK = ("cgroup.procs", "cgroup.subtree_control", "cgroup.threads")


def wants_delegation(cfg):
    """Change the owner only on cgroup v2, with a new cgroup namespace (and a user namespace
    to map the owner into), and a read/write cgroup mount at /sys/fs/cgroup."""
    if not is_v2() or not cfg.new_ns("cgroup") or not cfg.ns("user")[0]:
        return False
    return any(
        m["source"] == "cgroup" and m["destination"] == "/sys/fs/cgroup" and "ro" not in m["options"]
        for m in cfg.mounts
    )


def _host_id(mappings, cid):
    for inside, outside, size in mappings:
        if inside <= cid < inside + size:
            return outside + cid - inside
    return None


def delegate(cg, cfg):
    """Give the container's cgroup folder, and the files of /sys/kernel/cgroup/delegate that
    exist in it (cgroup.procs, cgroup.subtree_control, cgroup.threads when that list is
    missing), to the host user that process.user.uid maps to; nothing else."""
    uid = _host_id(cfg.uid_mappings, cfg.process["uid"])
    gid = _host_id(cfg.gid_mappings, cfg.process["gid"])
    if uid is None or gid is None:
        return
    try:
        with open(DELEGATE_LIST) as f:
            names = [line.strip() for line in f if line.strip()]
    except FileNotFoundError:
        names = list(DELEGATE_FALLBACK)
    d = cg.dirs[""]
    os.chown(d, uid, gid)
    for name in names:
        try:
            os.chown(os.path.join(d, name), uid, gid, follow_symlinks=False)
        except FileNotFoundError:
            pass  # listed files need not exist in every cgroup
