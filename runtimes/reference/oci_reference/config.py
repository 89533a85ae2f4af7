"""Reading and validating config.json.

Unknown properties are ignored (config.md "Extensibility"); a known property with a value
the runtime cannot accept, or cannot apply, is an error that names its JSON path.
The result is a `Config` whose attributes are the checked, normalised values.
"""

from oci_reference import jsonlite
from oci_reference import oslite as os  # not `os` itself: see oslite
from oci_reference.caps import CAP_SETS, CAPABILITIES
from oci_reference.errors import ConfigError, RuntimeFailure

NAMESPACE_TYPES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")
HOOK_NAMES = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
PROPAGATIONS = ("private", "rprivate", "slave", "rslave", "shared", "rshared", "unbindable", "runbindable")
DEVICE_TYPES = ("c", "b", "u", "p")
RLIMITS = {
    "RLIMIT_CPU": 0,
    "RLIMIT_FSIZE": 1,
    "RLIMIT_DATA": 2,
    "RLIMIT_STACK": 3,
    "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5,
    "RLIMIT_NPROC": 6,
    "RLIMIT_NOFILE": 7,
    "RLIMIT_MEMLOCK": 8,
    "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10,
    "RLIMIT_SIGPENDING": 11,
    "RLIMIT_MSGQUEUE": 12,
    "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14,
    "RLIMIT_RTTIME": 15,
}
U64_MAX = (1 << 64) - 1
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


# --- small typed getters -----------------------------------------------------------------
def _obj(v, path, required=False):
    if v is None:
        if required:
            raise ConfigError(path, "is required")
        return None
    if not isinstance(v, dict):
        raise ConfigError(path, "must be an object")
    return v


def _str(v, path, required=False):
    if v is None:
        if required:
            raise ConfigError(path, "is required")
        return None
    if not isinstance(v, str):
        raise ConfigError(path, "must be a string")
    return v


def _bool(v, path):
    if v is None:
        return False
    if not isinstance(v, bool):
        raise ConfigError(path, "must be a boolean")
    return v


def _int(v, path, required=False, lo=None, hi=None):
    if v is None:
        if required:
            raise ConfigError(path, "is required")
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigError(path, "must be an integer")
    if lo is not None and v < lo:
        raise ConfigError(path, f"must be >= {lo}")
    if hi is not None and v > hi:
        raise ConfigError(path, f"must be <= {hi}")
    return v


def _list(v, path):
    if v is None:
        return []
    if not isinstance(v, list):
        raise ConfigError(path, "must be an array")
    return v


def _strlist(v, path):
    items = _list(v, path)
    for i, s in enumerate(items):
        if not isinstance(s, str):
            raise ConfigError(f"{path}[{i}]", "must be a string")
    return items


def _unsupported(v, path, what=None):
    """A known property this runtime cannot apply: error if it asks for anything."""
    if v not in (None, "", [], {}):
        raise ConfigError(path, f"{what or 'this property'} is not supported by oci-reference")


class Config:
    """Validated contents of config.json."""

    def __init__(self):
        self.raw = {}
        self.bundle = ""
        self.oci_version = ""
        self.root_path = ""
        self.root_readonly = False
        self.mounts = []
        self.process = None
        self.hostname = None
        self.domainname = None
        self.hooks = {}
        self.annotations = {}
        self.namespaces = []  # list of (type, path or None)
        self.uid_mappings = []
        self.gid_mappings = []
        self.time_offsets = {}
        self.devices = []
        self.cgroups_path = None
        self.resources = {}
        self.rootfs_propagation = None
        self.seccomp = None
        self.sysctl = {}
        self.net_devices = {}  # host name -> name inside (None: the same)
        self.masked_paths = []
        self.readonly_paths = []
        self.personality = None
        self.memory_policy = None  # (mode | flags, [nodes]) for set_mempolicy(2)
        self.warnings = []  # problems that are only warnings (runtime.md "Warnings")

    def ns(self, kind):
        """(present, path) for a namespace type."""
        for t, p in self.namespaces:
            if t == kind:
                return True, p
        return False, None

    def new_ns(self, kind):
        present, path = self.ns(kind)
        return present and not path


def load(bundle):
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise RuntimeFailure(f"no config.json in bundle {bundle}") from None
    except OSError as e:
        raise RuntimeFailure(f"cannot read {path}: {e.strerror}") from None
    try:
        raw = jsonlite.loads(data)
    except ValueError as e:
        raise RuntimeFailure(f"config.json: invalid JSON: {e}") from None
    return validate(raw, bundle)


def validate(raw, bundle):
    if not isinstance(raw, dict):
        raise ConfigError("(document)", "must be a JSON object")
    c = Config()
    c.raw = raw
    c.bundle = bundle

    v = _str(raw.get("ociVersion"), "ociVersion", required=True)
    parts = v.split("-", 1)[0].split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ConfigError("ociVersion", f"{v!r} is not a SemVer version")
    if parts[0] != "1":
        raise ConfigError("ociVersion", f"version {v} is not supported (this runtime implements 1.x)")
    c.oci_version = v

    root = _obj(raw.get("root"), "root", required=True)
    rp = _str(root.get("path"), "root.path", required=True)
    if not rp:
        raise ConfigError("root.path", "must not be empty")
    c.root_path = os.path.normpath(os.path.join(bundle, rp))
    if not os.path.isdir(c.root_path):
        raise ConfigError("root.path", f"{c.root_path} is not a directory")
    c.root_readonly = _bool(root.get("readonly"), "root.readonly")

    for i, m in enumerate(_list(raw.get("mounts"), "mounts")):
        c.mounts.append(_mount(m, f"mounts[{i}]", bundle))

    if raw.get("process") is not None:
        c.process = _process(_obj(raw["process"], "process"), c.warnings)

    c.hostname = _str(raw.get("hostname"), "hostname")
    c.domainname = _str(raw.get("domainname"), "domainname")

    hooks = _obj(raw.get("hooks"), "hooks") or {}
    for name in HOOK_NAMES:
        lst = []
        for i, h in enumerate(_list(hooks.get(name), f"hooks.{name}")):
            p = f"hooks.{name}[{i}]"
            _obj(h, p)
            hp = _str(h.get("path"), p + ".path", required=True)
            if not hp.startswith("/"):
                raise ConfigError(p + ".path", "must be an absolute path")
            hook = {"path": hp, "args": _strlist(h.get("args"), p + ".args"), "env": _strlist(h.get("env"), p + ".env")}
            t = _int(h.get("timeout"), p + ".timeout")
            if t is not None:
                if t <= 0:
                    raise ConfigError(p + ".timeout", "must be greater than zero")
                hook["timeout"] = t
            lst.append(hook)
        if lst:
            c.hooks[name] = lst

    ann = _obj(raw.get("annotations"), "annotations") or {}
    for k, val in ann.items():
        if not k:
            raise ConfigError("annotations", "keys must not be empty")
        if not isinstance(val, str):
            raise ConfigError(f"annotations.{k}", "must be a string")
    c.annotations = ann

    linux = _obj(raw.get("linux"), "linux")
    if linux is not None:
        _linux(c, linux)

    _cross_checks(c)
    return c


def _mount(m, p, bundle):
    _obj(m, p)
    dest = _str(m.get("destination"), p + ".destination", required=True)
    if not dest:
        raise ConfigError(p + ".destination", "must not be empty")
    if not dest.startswith("/"):
        dest = "/" + dest  # relative destinations are taken relative to the container's /
    typ = _str(m.get("type"), p + ".type") or ""
    src = _str(m.get("source"), p + ".source") or ""
    opts = _strlist(m.get("options"), p + ".options")
    bind = typ == "bind" or "bind" in opts or "rbind" in opts
    idmap = _mount_idmap(m, p, opts, bind)
    opts = [o for o in opts if o not in ("idmap", "ridmap")]
    if bind:
        if not src:
            raise ConfigError(p + ".source", "a bind mount needs a source")
        src = os.path.normpath(os.path.join(bundle, src))
    copyup = "tmpcopyup" in opts
    if copyup:
        if typ != "tmpfs":
            raise ConfigError(p + ".options", "tmpcopyup needs a tmpfs mount")
        opts = [o for o in opts if o != "tmpcopyup"]
    return {
        "destination": os.path.normpath(dest),
        "type": typ,
        "source": src,
        "options": opts,
        "bind": bind,
        "copyup": copyup,
        "idmap": idmap,
    }


def _mount_idmap(m, p, opts, bind):
    """config.md "POSIX-platform Mounts" uidMappings/gidMappings and the idmap/ridmap options:
    None, or {"recursive": bool, "uid": [...], "gid": [...]} (empty lists: the container's user
    namespace mapping, resolved in _cross_checks)."""
    uid = _idmap(m.get("uidMappings"), p + ".uidMappings") if m.get("uidMappings") is not None else None
    gid = _idmap(m.get("gidMappings"), p + ".gidMappings") if m.get("gidMappings") is not None else None
    if (uid is None) != (gid is None):
        have, lack = ("uidMappings", "gidMappings") if gid is None else ("gidMappings", "uidMappings")
        raise ConfigError(f"{p}.{have}", f"must be specified along with {lack}")
    asked = [o for o in opts if o in ("idmap", "ridmap")]
    if uid is None and not asked:
        return None
    if not bind:
        raise ConfigError(p + ".options", "id-mapped mounts are supported for bind mounts only (bind or rbind)")
    if uid is not None and (not uid or not gid):
        raise ConfigError(p + ".uidMappings", "an id-mapped mount needs at least one uid and one gid mapping")
    return {"recursive": bool(asked) and asked[-1] == "ridmap", "uid": uid or [], "gid": gid or []}


def _process(pr, warnings):
    p = {}
    p["terminal"] = _bool(pr.get("terminal"), "process.terminal")
    cs = _obj(pr.get("consoleSize"), "process.consoleSize")
    if cs is not None:
        p["consoleSize"] = (
            _int(cs.get("height"), "process.consoleSize.height", True, 0, 65535),
            _int(cs.get("width"), "process.consoleSize.width", True, 0, 65535),
        )
    cwd = _str(pr.get("cwd"), "process.cwd", required=True)
    if not cwd.startswith("/"):
        raise ConfigError("process.cwd", "must be an absolute path")
    p["cwd"] = cwd
    p["env"] = _strlist(pr.get("env"), "process.env")
    args = _strlist(pr.get("args"), "process.args")
    if not args:
        raise ConfigError("process.args", "must hold at least one entry")
    if not args[0]:
        raise ConfigError("process.args[0]", "must not be empty")
    p["args"] = args

    seen = set()
    rl = []
    for i, r in enumerate(_list(pr.get("rlimits"), "process.rlimits")):
        rp = f"process.rlimits[{i}]"
        _obj(r, rp)
        t = _str(r.get("type"), rp + ".type", required=True)
        if t not in RLIMITS:
            raise ConfigError(rp + ".type", f"unknown rlimit {t!r}")
        if t in seen:
            raise ConfigError(rp + ".type", f"duplicate rlimit {t}")
        seen.add(t)
        soft = _int(r.get("soft"), rp + ".soft", True, 0, U64_MAX)
        hard = _int(r.get("hard"), rp + ".hard", True, 0, U64_MAX)
        if soft > hard:
            raise ConfigError(rp, "soft limit is greater than the hard limit")
        rl.append((RLIMITS[t], soft, hard))
    p["rlimits"] = rl

    capso = _obj(pr.get("capabilities"), "process.capabilities")
    if capso is not None:
        caps = {}
        for s in CAP_SETS:
            names = _strlist(capso.get(s), f"process.capabilities.{s}")
            for n in names:
                if n not in CAPABILITIES:
                    # config.md "Linux Process": a capability that cannot be mapped to the
                    # kernel is a warning, and the operation goes on without it
                    warnings.append(f"process.capabilities.{s}: unknown capability {n!r} ignored")
            caps[s] = [n for n in names if n in CAPABILITIES]
        p["capabilities"] = caps
    else:
        p["capabilities"] = None
    p["noNewPrivileges"] = _bool(pr.get("noNewPrivileges"), "process.noNewPrivileges")
    p["oomScoreAdj"] = _int(pr.get("oomScoreAdj"), "process.oomScoreAdj", lo=-1000, hi=1000)

    user = _obj(pr.get("user"), "process.user") or {}
    p["uid"] = _int(user.get("uid"), "process.user.uid", lo=0, hi=0xFFFFFFFE) or 0
    p["gid"] = _int(user.get("gid"), "process.user.gid", lo=0, hi=0xFFFFFFFE) or 0
    um = _int(user.get("umask"), "process.user.umask", lo=0, hi=0o777)
    p["umask"] = um  # None: keep the caller's umask (config.md "POSIX-platform User")
    gids = _list(user.get("additionalGids"), "process.user.additionalGids")
    for i, g in enumerate(gids):
        _int(g, f"process.user.additionalGids[{i}]", lo=0, hi=0xFFFFFFFE)
    p["additionalGids"] = gids
    _unsupported(user.get("username"), "process.user.username", "user names")

    _unsupported(pr.get("apparmorProfile"), "process.apparmorProfile", "AppArmor")
    _unsupported(pr.get("selinuxLabel"), "process.selinuxLabel", "SELinux")
    _unsupported(pr.get("execCPUAffinity"), "process.execCPUAffinity", "execCPUAffinity")

    io = _obj(pr.get("ioPriority"), "process.ioPriority")
    if io is not None:
        classes = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}
        cl = _str(io.get("class"), "process.ioPriority.class", required=True)
        if cl not in classes:
            raise ConfigError("process.ioPriority.class", f"unknown class {cl!r}")
        prio = _int(io.get("priority"), "process.ioPriority.priority", lo=0, hi=7) or 0
        p["ioPriority"] = (classes[cl] << 13) | prio

    sch = _obj(pr.get("scheduler"), "process.scheduler")
    if sch is not None:
        p["scheduler"] = _scheduler(sch)
    return p


SCHED_POLICIES = {
    "SCHED_OTHER": 0,
    "SCHED_FIFO": 1,
    "SCHED_RR": 2,
    "SCHED_BATCH": 3,
    "SCHED_IDLE": 5,
    "SCHED_DEADLINE": 6,
}
SCHED_FLAGS = {
    "SCHED_FLAG_RESET_ON_FORK": 0x01,
    "SCHED_FLAG_RECLAIM": 0x02,
    "SCHED_FLAG_DL_OVERRUN": 0x04,
    "SCHED_FLAG_KEEP_POLICY": 0x08,
    "SCHED_FLAG_KEEP_PARAMS": 0x10,
    "SCHED_FLAG_UTIL_CLAMP_MIN": 0x20,
    "SCHED_FLAG_UTIL_CLAMP_MAX": 0x40,
}


def _scheduler(sch):
    """process.scheduler as the fields of sched_setattr(2): (policy, flags, nice, priority,
    runtime, deadline, period); an unset number is 0 (config.md "Linux Process")."""
    pol = _str(sch.get("policy"), "process.scheduler.policy", required=True)
    if pol == "SCHED_ISO":
        raise ConfigError("process.scheduler.policy", "SCHED_ISO is not implemented by the Linux kernel")
    if pol not in SCHED_POLICIES:
        raise ConfigError("process.scheduler.policy", f"unknown policy {pol!r} (known: {', '.join(SCHED_POLICIES)})")
    flags = 0
    for i, f in enumerate(_strlist(sch.get("flags"), "process.scheduler.flags")):
        if f not in SCHED_FLAGS:
            raise ConfigError(f"process.scheduler.flags[{i}]", f"unknown flag {f!r} (known: {', '.join(SCHED_FLAGS)})")
        flags |= SCHED_FLAGS[f]
    return (
        SCHED_POLICIES[pol],
        flags,
        _int(sch.get("nice"), "process.scheduler.nice", lo=-20, hi=19) or 0,
        _int(sch.get("priority"), "process.scheduler.priority", lo=0, hi=99) or 0,
        *(_int(sch.get(k), f"process.scheduler.{k}", lo=0, hi=U64_MAX) or 0 for k in ("runtime", "deadline", "period")),
    )


MPOL_MODES = {
    "MPOL_DEFAULT": 0,
    "MPOL_PREFERRED": 1,
    "MPOL_BIND": 2,
    "MPOL_INTERLEAVE": 3,
    "MPOL_LOCAL": 4,
    "MPOL_PREFERRED_MANY": 5,
    "MPOL_WEIGHTED_INTERLEAVE": 6,
}
MPOL_FLAGS = {"MPOL_F_NUMA_BALANCING": 1 << 13, "MPOL_F_RELATIVE_NODES": 1 << 14, "MPOL_F_STATIC_NODES": 1 << 15}
_MPOL_NO_NODES = ("MPOL_DEFAULT", "MPOL_LOCAL")
_MPOL_NEED_NODES = ("MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_WEIGHTED_INTERLEAVE", "MPOL_PREFERRED_MANY")


def parse_list(text, path):
    """A list like "0-3,7" as a sorted list of numbers."""
    out = set()
    for part in text.split(","):
        lo, dash, hi = part.strip().partition("-")
        if not lo.isdigit() or (dash and not hi.isdigit()):
            raise ConfigError(path, f"{text!r} is not a list like 0-3,7")
        a, b = int(lo), int(hi) if dash else int(lo)
        if b < a or b > 4095:
            raise ConfigError(path, f"{text!r}: range {part!r} is empty or too large")
        out.update(range(a, b + 1))
    return sorted(out)


def _memory_policy(mp):
    """linux.memoryPolicy as set_mempolicy(2) arguments: (mode | flags, [nodes]) (config-linux.md
    "Memory policy"); modes that take no nodes, or need some, are checked here so a bad
    config fails before anything is made."""
    mode = _str(mp.get("mode"), "linux.memoryPolicy.mode", required=True)
    if mode not in MPOL_MODES:
        raise ConfigError("linux.memoryPolicy.mode", f"unknown mode {mode!r} (known: {', '.join(MPOL_MODES)})")
    text = _str(mp.get("nodes"), "linux.memoryPolicy.nodes")
    nodes = parse_list(text, "linux.memoryPolicy.nodes") if text else []
    if nodes and mode in _MPOL_NO_NODES:
        raise ConfigError("linux.memoryPolicy.nodes", f"{mode} takes no nodes")
    if not nodes and mode in _MPOL_NEED_NODES:
        raise ConfigError("linux.memoryPolicy.nodes", f"{mode} needs at least one node")
    value = MPOL_MODES[mode]
    for i, f in enumerate(_strlist(mp.get("flags"), "linux.memoryPolicy.flags")):
        if f not in MPOL_FLAGS:
            raise ConfigError(f"linux.memoryPolicy.flags[{i}]", f"unknown flag {f!r} (known: {', '.join(MPOL_FLAGS)})")
        value |= MPOL_FLAGS[f]
    return value, nodes


def _ns_list(c, linux):
    seen = set()
    for i, n in enumerate(_list(linux.get("namespaces"), "linux.namespaces")):
        p = f"linux.namespaces[{i}]"
        _obj(n, p)
        t = _str(n.get("type"), p + ".type", required=True)
        if t not in NAMESPACE_TYPES:
            raise ConfigError(p + ".type", f"unknown namespace type {t!r}")
        if t in seen:
            raise ConfigError(p + ".type", f"namespace type {t!r} is listed twice")
        seen.add(t)
        path = _str(n.get("path"), p + ".path") or None
        if path is not None and not os.path.exists(path):
            raise ConfigError(p + ".path", f"{path} does not exist")
        c.namespaces.append((t, path))


def _idmap(v, p):
    out = []
    for i, m in enumerate(_list(v, p)):
        mp = f"{p}[{i}]"
        _obj(m, mp)
        out.append(
            (
                _int(m.get("containerID"), mp + ".containerID", True, 0, 0xFFFFFFFF),
                _int(m.get("hostID"), mp + ".hostID", True, 0, 0xFFFFFFFF),
                _int(m.get("size"), mp + ".size", True, 1, 0xFFFFFFFF),
            )
        )
    return out


def _linux(c, linux):
    _ns_list(c, linux)
    c.uid_mappings = _idmap(linux.get("uidMappings"), "linux.uidMappings")
    c.gid_mappings = _idmap(linux.get("gidMappings"), "linux.gidMappings")

    to = _obj(linux.get("timeOffsets"), "linux.timeOffsets") or {}
    for clock, off in to.items():
        p = f"linux.timeOffsets.{clock}"
        if clock not in ("monotonic", "boottime"):
            raise ConfigError(p, "only monotonic and boottime clocks can be offset")
        _obj(off, p)
        c.time_offsets[clock] = (
            _int(off.get("secs"), p + ".secs") or 0,
            _int(off.get("nanosecs"), p + ".nanosecs", lo=0, hi=999999999) or 0,
        )

    for i, d in enumerate(_list(linux.get("devices"), "linux.devices")):
        p = f"linux.devices[{i}]"
        _obj(d, p)
        path = _str(d.get("path"), p + ".path", required=True)
        if not path.startswith("/"):
            raise ConfigError(p + ".path", "must be an absolute path")
        typ = _str(d.get("type"), p + ".type", required=True)
        if typ not in DEVICE_TYPES:
            raise ConfigError(p + ".type", f"unknown device type {typ!r}")
        major = _int(d.get("major"), p + ".major", typ != "p", 0)
        minor = _int(d.get("minor"), p + ".minor", typ != "p", 0)
        mode = _int(d.get("fileMode"), p + ".fileMode", lo=0, hi=0o7777)
        c.devices.append(
            {
                "path": os.path.normpath(path),
                "type": typ,
                "major": major or 0,
                "minor": minor or 0,
                "fileMode": 0o666 if mode is None else mode,
                "uid": _int(d.get("uid"), p + ".uid", lo=0) or 0,
                "gid": _int(d.get("gid"), p + ".gid", lo=0) or 0,
            }
        )

    cp = _str(linux.get("cgroupsPath"), "linux.cgroupsPath")
    if cp:
        if ":" in cp:
            raise ConfigError("linux.cgroupsPath", "systemd-style cgroup paths (slice:prefix:name) are not supported")
        c.cgroups_path = cp
    c.resources = _resources(_obj(linux.get("resources"), "linux.resources") or {})

    prop = _str(linux.get("rootfsPropagation"), "linux.rootfsPropagation")
    if prop:
        if prop not in PROPAGATIONS:
            raise ConfigError("linux.rootfsPropagation", f"unknown propagation {prop!r}")
        c.rootfs_propagation = prop

    sc = _obj(linux.get("seccomp"), "linux.seccomp")
    if sc is not None:
        from oci_reference import seccomp

        c.seccomp = seccomp.validate(sc)

    sy = _obj(linux.get("sysctl"), "linux.sysctl") or {}
    for k, val in sy.items():
        if not isinstance(val, str):
            raise ConfigError(f"linux.sysctl.{k}", "must be a string")
        if not k or ".." in k or k.startswith((".", "/")):
            raise ConfigError(f"linux.sysctl.{k}", "invalid sysctl name")
    c.sysctl = sy

    nd = _obj(linux.get("netDevices"), "linux.netDevices") or {}
    if nd:
        # only then: netdev imports `socket` (and with it enum, collections, selectors),
        # a good part of the start-up time of a `create` that moves no devices
        from oci_reference.netdev import valid_name

    for host_name, dev in nd.items():
        p = f"linux.netDevices.{host_name}"
        if not valid_name(host_name):
            raise ConfigError(p, "is not a valid network device name")
        _obj(dev, p)
        name = _str(dev.get("name"), p + ".name")
        if name is not None and not valid_name(name):
            raise ConfigError(p + ".name", f"{name!r} is not a valid network device name")
        c.net_devices[host_name] = name
    if c.net_devices and not c.ns("network")[0]:
        raise ConfigError(
            "linux.netDevices", "moving network devices needs a network namespace for the container (linux.namespaces)"
        )

    c.masked_paths = _strlist(linux.get("maskedPaths"), "linux.maskedPaths")
    c.readonly_paths = _strlist(linux.get("readonlyPaths"), "linux.readonlyPaths")
    for lst, p in ((c.masked_paths, "linux.maskedPaths"), (c.readonly_paths, "linux.readonlyPaths")):
        for i, s in enumerate(lst):
            if not s.startswith("/"):
                raise ConfigError(f"{p}[{i}]", "must be an absolute path")

    _unsupported(linux.get("mountLabel"), "linux.mountLabel", "SELinux mount labels")
    if linux.get("intelRdt") is not None:
        _obj(linux.get("intelRdt"), "linux.intelRdt")
        if not _resctrl_mounted():
            raise ConfigError(
                "linux.intelRdt",
                "no resctrl filesystem is mounted in the runtime's mount namespace "
                "(config-linux.md: an error); mount it (mount -t resctrl resctrl /sys/fs/resctrl) "
                "on a CPU with Intel RDT, or remove linux.intelRdt",
            )
        raise ConfigError("linux.intelRdt", "Intel RDT is not supported by oci-reference")
    mp = _obj(linux.get("memoryPolicy"), "linux.memoryPolicy")
    if mp is not None:
        c.memory_policy = _memory_policy(mp)

    pers = _obj(linux.get("personality"), "linux.personality")
    if pers is not None:
        dom = _str(pers.get("domain"), "linux.personality.domain", required=True)
        domains = {"LINUX": 0x0000, "LINUX32": 0x0008}
        if dom not in domains:
            raise ConfigError("linux.personality.domain", f"unknown domain {dom!r}")
        _unsupported(pers.get("flags"), "linux.personality.flags", "personality flags")
        c.personality = domains[dom]


def _resctrl_mounted():
    try:
        with open("/proc/self/mountinfo") as f:
            return any(line.partition(" - ")[2].split(" ", 1)[0] == "resctrl" for line in f)
    except OSError:
        return False


def _resources(r):
    out = {}
    mem = _obj(r.get("memory"), "linux.resources.memory")
    if mem:
        m = {}
        for k in ("limit", "reservation", "swap", "kernel", "kernelTCP"):
            v = _int(mem.get(k), f"linux.resources.memory.{k}", lo=-1)
            if v is not None:
                m[k] = v
        sw = _int(mem.get("swappiness"), "linux.resources.memory.swappiness", lo=0, hi=100)
        if sw is not None:
            m["swappiness"] = sw
        if mem.get("disableOOMKiller") is not None:
            m["disableOOMKiller"] = _bool(mem.get("disableOOMKiller"), "linux.resources.memory.disableOOMKiller")
        if mem.get("useHierarchy") is not None:
            m["useHierarchy"] = _bool(mem.get("useHierarchy"), "linux.resources.memory.useHierarchy")
        if mem.get("checkBeforeUpdate") is not None:
            _bool(mem.get("checkBeforeUpdate"), "linux.resources.memory.checkBeforeUpdate")
        if m:
            out["memory"] = m
    cpu = _obj(r.get("cpu"), "linux.resources.cpu")
    if cpu:
        cc = {}
        for k in ("shares", "quota", "period", "realtimeRuntime", "realtimePeriod", "burst"):
            v = _int(cpu.get(k), f"linux.resources.cpu.{k}", lo=-1)
            if v is not None:
                cc[k] = v
        for k in ("cpus", "mems"):
            v = _str(cpu.get(k), f"linux.resources.cpu.{k}")
            if v:
                cc[k] = v
        if cpu.get("idle") is not None:
            cc["idle"] = _int(cpu.get("idle"), "linux.resources.cpu.idle", lo=0, hi=1)
        if cc:
            out["cpu"] = cc
    pids = _obj(r.get("pids"), "linux.resources.pids")
    if pids and pids.get("limit") is not None:
        out["pids"] = {"limit": _int(pids.get("limit"), "linux.resources.pids.limit")}
    devs = []
    for i, d in enumerate(_list(r.get("devices"), "linux.resources.devices")):
        p = f"linux.resources.devices[{i}]"
        _obj(d, p)
        if not isinstance(d.get("allow"), bool):
            raise ConfigError(p + ".allow", "is required and must be a boolean")
        typ = _str(d.get("type"), p + ".type") or "a"
        if typ not in ("a", "c", "b"):
            raise ConfigError(p + ".type", f"unknown device type {typ!r}")
        access = _str(d.get("access"), p + ".access") or "rwm"
        if not access or any(ch not in "rwm" for ch in access):
            raise ConfigError(p + ".access", f"invalid access {access!r}")
        devs.append(
            {
                "allow": d["allow"],
                "type": typ,
                "major": _int(d.get("major"), p + ".major"),
                "minor": _int(d.get("minor"), p + ".minor"),
                "access": access,
            }
        )
    if devs:
        out["devices"] = devs
    uni = _obj(r.get("unified"), "linux.resources.unified")
    if uni:
        for k, v in uni.items():
            if not isinstance(v, str):
                raise ConfigError(f"linux.resources.unified.{k}", "must be a string")
            if "/" in k or k.startswith("."):
                raise ConfigError(f"linux.resources.unified.{k}", "invalid cgroup file name")
        out["unified"] = uni
    bio = _obj(r.get("blockIO"), "linux.resources.blockIO")
    if bio:
        b = {}
        for k in ("weight", "leafWeight"):
            v = _int(bio.get(k), f"linux.resources.blockIO.{k}", lo=0, hi=65535)
            if v is not None:
                b[k] = v
        for k in (
            "weightDevice",
            "throttleReadBpsDevice",
            "throttleWriteBpsDevice",
            "throttleReadIOPSDevice",
            "throttleWriteIOPSDevice",
        ):
            entries = []
            for i, d in enumerate(_list(bio.get(k), f"linux.resources.blockIO.{k}")):
                p = f"linux.resources.blockIO.{k}[{i}]"
                _obj(d, p)
                e = {
                    "major": _int(d.get("major"), p + ".major", True, 0),
                    "minor": _int(d.get("minor"), p + ".minor", True, 0),
                }
                if k == "weightDevice":
                    for w in ("weight", "leafWeight"):
                        v = _int(d.get(w), f"{p}.{w}", lo=0, hi=65535)
                        if v is not None:
                            e[w] = v
                    if len(e) == 2:
                        raise ConfigError(p, "needs weight or leafWeight")
                else:
                    e["rate"] = _int(d.get("rate"), p + ".rate", True, 0, U64_MAX)
                entries.append(e)
            if entries:
                b[k] = entries
        if b:
            out["blockIO"] = b
    huge = []
    for i, h in enumerate(_list(r.get("hugepageLimits"), "linux.resources.hugepageLimits")):
        p = f"linux.resources.hugepageLimits[{i}]"
        _obj(h, p)
        size = _str(h.get("pageSize"), p + ".pageSize", required=True)
        num, unit = size[:-2], size[-2:]
        if not num.isdigit() or unit not in ("KB", "MB", "GB", "TB"):
            raise ConfigError(p + ".pageSize", f"{size!r} is not a size like 2MB or 1GB")
        huge.append({"pageSize": size, "limit": _int(h.get("limit"), p + ".limit", True, 0, U64_MAX)})
    if huge:
        out["hugepageLimits"] = huge
    net = _obj(r.get("network"), "linux.resources.network")
    if net:
        n = {}
        cid = _int(net.get("classID"), "linux.resources.network.classID", lo=0, hi=0xFFFFFFFF)
        if cid is not None:
            n["classID"] = cid
        prios = []
        for i, e in enumerate(_list(net.get("priorities"), "linux.resources.network.priorities")):
            p = f"linux.resources.network.priorities[{i}]"
            _obj(e, p)
            prios.append(
                (
                    _str(e.get("name"), p + ".name", required=True),
                    _int(e.get("priority"), p + ".priority", True, 0, 0xFFFFFFFF),
                )
            )
        if prios:
            n["priorities"] = prios
        if n:
            out["network"] = n
    rdma = _obj(r.get("rdma"), "linux.resources.rdma")
    if rdma:
        out["rdma"] = {}
        for dev, e in rdma.items():
            p = f"linux.resources.rdma.{dev}"
            _obj(e, p)
            lim = {k: _int(e.get(k), f"{p}.{k}", lo=0, hi=0xFFFFFFFF) for k in ("hcaHandles", "hcaObjects")}
            if all(v is None for v in lim.values()):
                raise ConfigError(p, "needs hcaHandles or hcaObjects")
            out["rdma"][dev] = lim
    return out


# sysctls that are namespaced, and the namespace they need
_IPC_SYSCTLS = {
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
}


def _cross_checks(c):
    if c.process is None:
        raise ConfigError("process", "is required (this runtime needs it at create)")
    if (c.uid_mappings or c.gid_mappings) and not c.ns("user")[0]:
        # (joined by path: the namespace has its mappings already; these are not written)
        raise ConfigError("linux.uidMappings", "mappings need a user namespace")
    if c.new_ns("user") and not (c.uid_mappings and c.gid_mappings):
        raise ConfigError("linux.uidMappings", "a new user namespace needs uidMappings and gidMappings")
    for i, m in enumerate(c.mounts):
        if m["idmap"] is not None and not m["idmap"]["uid"]:
            # config.md idmap/ridmap: without mappings of its own the mount MAY take the
            # container's user namespace mapping; without one either, an error MUST be returned
            userns, path = c.ns("user")
            if not userns:
                raise ConfigError(
                    f"mounts[{i}]",
                    "idmap/ridmap without uidMappings and gidMappings needs a user namespace for the container",
                )
            if path:
                m["idmap"]["userns_path"] = path
            else:
                m["idmap"]["uid"], m["idmap"]["gid"] = c.uid_mappings, c.gid_mappings
    if c.time_offsets and not c.new_ns("time"):
        raise ConfigError("linux.timeOffsets", "time offsets need a new time namespace")
    if c.hostname and not c.ns("uts")[0]:
        raise ConfigError("hostname", "cannot set the hostname without a UTS namespace")
    if c.domainname and not c.ns("uts")[0]:
        raise ConfigError("domainname", "cannot set the domainname without a UTS namespace")
    if not c.ns("mount")[0]:
        # the container shares the runtime's mount namespace: mounting anything would change
        # the runtime's (the host's) mounts, so what needs a mount is refused
        for what, wanted in (
            ("mounts", c.mounts),
            ("linux.maskedPaths", c.masked_paths),
            ("linux.readonlyPaths", c.readonly_paths),
            ("root.readonly", c.root_readonly),
            ("linux.rootfsPropagation", c.rootfs_propagation),
        ):
            if wanted:
                raise ConfigError(
                    what,
                    "needs a mount namespace: without one the container shares the runtime's, where oci-reference mounts nothing",
                )
    for k in c.sysctl:
        if k in _IPC_SYSCTLS or k.startswith("fs.mqueue."):
            if not c.ns("ipc")[0]:
                raise ConfigError(f"linux.sysctl.{k}", "needs an IPC namespace")
        elif k.startswith("net."):
            if not c.ns("network")[0]:
                raise ConfigError(f"linux.sysctl.{k}", "needs a network namespace")
        elif k in ("kernel.hostname", "kernel.domainname"):
            if not c.ns("uts")[0]:
                raise ConfigError(f"linux.sysctl.{k}", "needs a UTS namespace")
        else:
            raise ConfigError(f"linux.sysctl.{k}", "is not a namespaced sysctl")
