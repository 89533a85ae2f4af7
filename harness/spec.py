"""The OCI runtime config model: defaults, edits and validation.

A config is kept as the plain ``dict`` that ``json.load`` gives: that is what a runtime reads, so
the harness never hides a field behind a model class. This module

* builds the default config (:func:`default_config`), the same content ``runc spec`` writes, and
  its rootless variant;
* validates a config against the rules of runtime-spec's config.md and config-linux.md
  (:func:`validate`), returning every violation with the JSON path of the offending value;
* reads and writes ``config.json`` with errors that name the file and the problem.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError

#: The version of the runtime spec the harness writes into configs it makes.
OCI_VERSION = "1.0.2-dev"

_DEFAULT_MASKED = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
]
_DEFAULT_READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
_DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]


def default_config(*, rootless: bool = False, uid: int | None = None, gid: int | None = None) -> dict[str, Any]:
    """The default config, with the content ``runc spec`` (or ``runc spec --rootless``) writes.

    ``rootless`` maps the calling user (or ``uid``/``gid``) to root in a new user namespace,
    drops the network namespace and the cgroup limits, and bind-mounts the host's /sys, as a
    rootless runtime needs.
    """
    caps = {name: list(_DEFAULT_CAPS) for name in ("bounding", "effective", "permitted", "ambient")}
    devpts_options = ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]
    if not rootless:
        devpts_options.append("gid=5")
    sysfs: dict[str, Any] = {
        "destination": "/sys",
        "type": "sysfs",
        "source": "sysfs",
        "options": ["nosuid", "noexec", "nodev", "ro"],
    }
    if rootless:
        sysfs = {
            "destination": "/sys",
            "type": "none",
            "source": "/sys",
            "options": ["rbind", "nosuid", "noexec", "nodev", "ro"],
        }
    config: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": True,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": caps,
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "runc",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
            },
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": devpts_options},
            {
                "destination": "/dev/shm",
                "type": "tmpfs",
                "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            },
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            sysfs,
            {
                "destination": "/sys/fs/cgroup",
                "type": "cgroup",
                "source": "cgroup",
                "options": ["nosuid", "noexec", "nodev", "relatime", "ro"],
            },
        ],
        "linux": {},
    }
    linux = config["linux"]
    if rootless:
        host_uid = os.getuid() if uid is None else uid
        host_gid = os.getgid() if gid is None else gid
        linux["uidMappings"] = [{"containerID": 0, "hostID": host_uid, "size": 1}]
        linux["gidMappings"] = [{"containerID": 0, "hostID": host_gid, "size": 1}]
        linux["namespaces"] = [{"type": t} for t in ("pid", "ipc", "uts", "mount", "user")]
    else:
        linux["resources"] = {"devices": [{"allow": False, "access": "rwm"}]}
        linux["namespaces"] = [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")]
    linux["maskedPaths"] = list(_DEFAULT_MASKED)
    linux["readonlyPaths"] = list(_DEFAULT_READONLY)
    return config


# --------------------------------------------------------------------------------------------
# Reading and writing


def load(path: Path) -> dict[str, Any]:
    """Read a config.json; a missing, unreadable or malformed file is a :class:`ConfigError`."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file; a bundle needs a config.json (write one with `harness spec`)") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read it: {err}") from None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: not valid JSON at line {err.lineno} column {err.colno}: {err.msg}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: the top level must be a JSON object, not {_json_type(config)}")
    return config


def dump(config: dict[str, Any], path: Path) -> None:
    """Write ``config`` to ``path`` atomically (a reader never sees half a file)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(config, indent="\t") + "\n", encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
# Edits: small helpers the CLI, bundle factories and cases share


def set_namespace(config: dict[str, Any], ns_type: str, path: str | None = None, *, present: bool = True) -> None:
    """Add (optionally joined by ``path``), replace or remove (``present=False``) a namespace in place."""
    namespaces = config.setdefault("linux", {}).setdefault("namespaces", [])
    namespaces[:] = [ns for ns in namespaces if ns.get("type") != ns_type]
    if present:
        entry: dict[str, Any] = {"type": ns_type}
        if path is not None:
            entry["path"] = path
        namespaces.append(entry)


# --------------------------------------------------------------------------------------------
# Validation


@dataclass(frozen=True)
class Violation:
    """One broken rule: where (a JSON path like ``$.process.args``), what, and the spec section."""

    path: str
    message: str
    section: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message} ({self.section})"


NAMESPACE_TYPES = frozenset({"pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"})
RLIMIT_TYPES = frozenset(
    "RLIMIT_" + n
    for n in (
        "CPU FSIZE DATA STACK CORE RSS NPROC NOFILE MEMLOCK AS LOCKS SIGPENDING MSGQUEUE NICE RTPRIO RTTIME".split()
    )
)
CAPABILITIES = (
    "CAP_CHOWN CAP_DAC_OVERRIDE CAP_DAC_READ_SEARCH CAP_FOWNER CAP_FSETID CAP_KILL CAP_SETGID CAP_SETUID "
    "CAP_SETPCAP CAP_LINUX_IMMUTABLE CAP_NET_BIND_SERVICE CAP_NET_BROADCAST CAP_NET_ADMIN CAP_NET_RAW "
    "CAP_IPC_LOCK CAP_IPC_OWNER CAP_SYS_MODULE CAP_SYS_RAWIO CAP_SYS_CHROOT CAP_SYS_PTRACE CAP_SYS_PACCT "
    "CAP_SYS_ADMIN CAP_SYS_BOOT CAP_SYS_NICE CAP_SYS_RESOURCE CAP_SYS_TIME CAP_SYS_TTY_CONFIG CAP_MKNOD "
    "CAP_LEASE CAP_AUDIT_WRITE CAP_AUDIT_CONTROL CAP_SETFCAP CAP_MAC_OVERRIDE CAP_MAC_ADMIN CAP_SYSLOG "
    "CAP_WAKE_ALARM CAP_BLOCK_SUSPEND CAP_AUDIT_READ CAP_PERFMON CAP_BPF CAP_CHECKPOINT_RESTORE"
).split()
_CAP_SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")
_DEVICE_TYPES = frozenset({"c", "b", "u", "p"})
_SEMVER = re.compile(r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
_HOOK_KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
_UINT32 = 2**32 - 1
_UINT64 = 2**64 - 1

# Section anchors of the spec documents, used in violation messages.
_CFG = "config.md"
_LNX = "config-linux.md"


class _Checker:
    def __init__(self) -> None:
        self.violations: list[Violation] = []

    def add(self, path: str, message: str, section: str) -> None:
        self.violations.append(Violation(path, message, section))

    # Type checks return True when the value has the expected type (and record a violation if not).
    def is_type(self, value: Any, kind: type | tuple[type, ...], path: str, section: str, what: str) -> bool:
        if kind is int or kind == (int,):
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            ok = isinstance(value, kind) and not (isinstance(value, bool) and bool not in _as_tuple(kind))
        if not ok:
            self.add(path, f"must be {what}, not {_json_type(value)}", section)
        return ok

    def uint(self, value: Any, path: str, section: str, bits: int = 32) -> bool:
        top = _UINT32 if bits == 32 else _UINT64
        if not self.is_type(value, int, path, section, f"an unsigned {bits}-bit integer"):
            return False
        if not 0 <= value <= top:
            self.add(path, f"{value} is outside 0..{top}", section)
            return False
        return True

    def str_list(self, value: Any, path: str, section: str) -> bool:
        if not self.is_type(value, list, path, section, "an array of strings"):
            return False
        good = True
        for i, item in enumerate(value):
            good &= self.is_type(item, str, f"{path}[{i}]", section, "a string")
        return good

    def abs_path(self, value: Any, path: str, section: str) -> None:
        if self.is_type(value, str, path, section, "a string") and not value.startswith("/"):
            self.add(path, f"must be an absolute path, not {value!r}", section)


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def validate(config: Any, *, platform: str = "linux") -> list[Violation]:
    """Every violation of the spec's config rules in ``config`` (empty list: valid).

    Covers the REQUIRED properties and their types, and the Linux rules a runtime must enforce
    (namespace types unique, absolute paths, known rlimit and capability names, device types,
    id mappings). Properties the spec does not know are allowed: the spec tells runtimes to
    ignore them.
    """
    c = _Checker()
    if not isinstance(config, dict):
        c.add("$", f"must be an object, not {_json_type(config)}", _CFG + "#configuration")
        return c.violations
    if "ociVersion" not in config:
        c.add("$.ociVersion", "is REQUIRED", _CFG + "#specification-version")
    elif c.is_type(config["ociVersion"], str, "$.ociVersion", _CFG + "#specification-version", "a string"):
        if not _SEMVER.match(config["ociVersion"]):
            c.add("$.ociVersion", f"{config['ociVersion']!r} is not a SemVer 2.0.0 version", _CFG + "#specification-version")
    _check_root(c, config, platform)
    _check_mounts(c, config.get("mounts"))
    if "process" in config:
        _check_process(c, config["process"])
    for key in ("hostname", "domainname"):
        if key in config:
            c.is_type(config[key], str, f"$.{key}", _CFG + f"#{key}", "a string")
    _check_hooks(c, config.get("hooks"))
    _check_annotations(c, config.get("annotations"))
    if platform == "linux" and "linux" in config:
        _check_linux(c, config)
    return c.violations


def check(config: Any, *, source: str = "config.json") -> None:
    """Raise a :class:`ConfigError` listing every violation, if there is any."""
    violations = validate(config)
    if violations:
        lines = "\n".join(f"  {v}" for v in violations)
        raise ConfigError(f"{source} breaks the runtime spec in {len(violations)} place(s):\n{lines}")


def _check_root(c: _Checker, config: dict[str, Any], platform: str) -> None:
    section = _CFG + "#root"
    if "root" not in config:
        if platform != "windows":
            c.add("$.root", "is REQUIRED on this platform", section)
        return
    root = config["root"]
    if not c.is_type(root, dict, "$.root", section, "an object"):
        return
    if "path" not in root:
        c.add("$.root.path", "is REQUIRED", section)
    elif c.is_type(root["path"], str, "$.root.path", section, "a string") and not root["path"]:
        c.add("$.root.path", "must not be empty", section)
    if "readonly" in root:
        c.is_type(root["readonly"], bool, "$.root.readonly", section, "a boolean")


def _check_mounts(c: _Checker, mounts: Any) -> None:
    section = _CFG + "#mounts"
    if mounts is None:
        return
    if not c.is_type(mounts, list, "$.mounts", section, "an array"):
        return
    for i, mount in enumerate(mounts):
        path = f"$.mounts[{i}]"
        if not c.is_type(mount, dict, path, section, "an object"):
            continue
        if "destination" not in mount:
            c.add(f"{path}.destination", "is REQUIRED", section)
        elif c.is_type(mount["destination"], str, f"{path}.destination", section, "a string") and not mount["destination"]:
            c.add(f"{path}.destination", "must not be empty", section)
        for key in ("type", "source"):
            if key in mount:
                c.is_type(mount[key], str, f"{path}.{key}", section, "a string")
        if "options" in mount:
            c.str_list(mount["options"], f"{path}.options", section)
        for key in ("uidMappings", "gidMappings"):
            if key in mount:
                _check_id_mappings(c, mount[key], f"{path}.{key}", section)


def _check_process(c: _Checker, process: Any) -> None:
    section = _CFG + "#process"
    if not c.is_type(process, dict, "$.process", section, "an object"):
        return
    if "terminal" in process:
        c.is_type(process["terminal"], bool, "$.process.terminal", section, "a boolean")
    if "consoleSize" in process and c.is_type(process["consoleSize"], dict, "$.process.consoleSize", section, "an object"):
        for key in ("height", "width"):
            if key not in process["consoleSize"]:
                c.add(f"$.process.consoleSize.{key}", "is REQUIRED", section)
            else:
                c.uint(process["consoleSize"][key], f"$.process.consoleSize.{key}", section)
    if "cwd" not in process:
        c.add("$.process.cwd", "is REQUIRED", section)
    else:
        c.abs_path(process["cwd"], "$.process.cwd", section)
    if "env" in process and c.str_list(process["env"], "$.process.env", section):
        for i, item in enumerate(process["env"]):
            if "=" not in item:
                c.add(f"$.process.env[{i}]", f"{item!r} is not of the form KEY=value", section)
    if "args" not in process:
        c.add("$.process.args", "is REQUIRED on this platform", section)
    elif c.str_list(process["args"], "$.process.args", section) and not process["args"]:
        c.add("$.process.args", "must hold at least one entry", section)
    if "rlimits" in process and c.is_type(process["rlimits"], list, "$.process.rlimits", section, "an array"):
        seen: set[str] = set()
        for i, rl in enumerate(process["rlimits"]):
            path = f"$.process.rlimits[{i}]"
            if not c.is_type(rl, dict, path, section, "an object"):
                continue
            rtype = rl.get("type")
            if rtype is None:
                c.add(f"{path}.type", "is REQUIRED", section)
            elif c.is_type(rtype, str, f"{path}.type", section, "a string"):
                if rtype not in RLIMIT_TYPES:
                    c.add(f"{path}.type", f"{rtype!r} is not a Linux rlimit", section)
                elif rtype in seen:
                    c.add(f"{path}.type", f"{rtype} is listed twice", section)
                seen.add(rtype)
            for key in ("soft", "hard"):
                if key not in rl:
                    c.add(f"{path}.{key}", "is REQUIRED", section)
                else:
                    c.uint(rl[key], f"{path}.{key}", section, bits=64)
    if "user" in process:
        _check_user(c, process["user"])
    if "capabilities" in process:
        _check_capabilities(c, process["capabilities"])
    if "noNewPrivileges" in process:
        c.is_type(process["noNewPrivileges"], bool, "$.process.noNewPrivileges", section, "a boolean")
    if "oomScoreAdj" in process and c.is_type(process["oomScoreAdj"], int, "$.process.oomScoreAdj", section, "an integer"):
        if not -1000 <= process["oomScoreAdj"] <= 1000:
            c.add("$.process.oomScoreAdj", f"{process['oomScoreAdj']} is outside -1000..1000", section)
    for key in ("apparmorProfile", "selinuxLabel"):
        if key in process:
            c.is_type(process[key], str, f"$.process.{key}", section, "a string")


def _check_user(c: _Checker, user: Any) -> None:
    section = _CFG + "#posix-platform-user"
    if not c.is_type(user, dict, "$.process.user", section, "an object"):
        return
    for key in ("uid", "gid"):
        if key not in user:
            c.add(f"$.process.user.{key}", "is REQUIRED", section)
        else:
            c.uint(user[key], f"$.process.user.{key}", section)
    if "umask" in user:
        c.uint(user["umask"], "$.process.user.umask", section)
    if "additionalGids" in user and c.is_type(user["additionalGids"], list, "$.process.user.additionalGids", section, "an array"):
        for i, gid in enumerate(user["additionalGids"]):
            c.uint(gid, f"$.process.user.additionalGids[{i}]", section)


def _check_capabilities(c: _Checker, caps: Any) -> None:
    section = _CFG + "#linux-process"
    if not c.is_type(caps, dict, "$.process.capabilities", section, "an object"):
        return
    known = set(CAPABILITIES)
    for key in _CAP_SETS:
        if key in caps and c.str_list(caps[key], f"$.process.capabilities.{key}", section):
            for i, name in enumerate(caps[key]):
                if name not in known:
                    c.add(f"$.process.capabilities.{key}[{i}]", f"{name!r} is not a Linux capability", section)


def _check_hooks(c: _Checker, hooks: Any) -> None:
    section = _CFG + "#posix-platform-hooks"
    if hooks is None:
        return
    if not c.is_type(hooks, dict, "$.hooks", section, "an object"):
        return
    for kind in _HOOK_KINDS:
        if kind not in hooks or not c.is_type(hooks[kind], list, f"$.hooks.{kind}", section, "an array"):
            continue
        for i, hook in enumerate(hooks[kind]):
            path = f"$.hooks.{kind}[{i}]"
            if not c.is_type(hook, dict, path, section, "an object"):
                continue
            if "path" not in hook:
                c.add(f"{path}.path", "is REQUIRED", section)
            else:
                c.abs_path(hook["path"], f"{path}.path", section)
            for key in ("args", "env"):
                if key in hook:
                    c.str_list(hook[key], f"{path}.{key}", section)
            if "timeout" in hook and c.is_type(hook["timeout"], int, f"{path}.timeout", section, "an integer"):
                if hook["timeout"] <= 0:
                    c.add(f"{path}.timeout", "must be greater than zero", section)


def _check_annotations(c: _Checker, annotations: Any) -> None:
    section = _CFG + "#annotations"
    if annotations is None or not c.is_type(annotations, dict, "$.annotations", section, "an object"):
        return
    for key, value in annotations.items():
        if not key:
            c.add("$.annotations", "keys must not be empty", section)
        c.is_type(value, str, f"$.annotations[{key!r}]", section, "a string")


def _check_id_mappings(c: _Checker, mappings: Any, path: str, section: str) -> None:
    if not c.is_type(mappings, list, path, section, "an array"):
        return
    for i, m in enumerate(mappings):
        if not c.is_type(m, dict, f"{path}[{i}]", section, "an object"):
            continue
        for key in ("containerID", "hostID", "size"):
            if key not in m:
                c.add(f"{path}[{i}].{key}", "is REQUIRED", section)
            else:
                c.uint(m[key], f"{path}[{i}].{key}", section)


def _check_linux(c: _Checker, config: dict[str, Any]) -> None:
    linux = config["linux"]
    if not c.is_type(linux, dict, "$.linux", _LNX, "an object"):
        return
    section = _LNX + "#namespaces"
    types: set[str] = set()
    if "namespaces" in linux and c.is_type(linux["namespaces"], list, "$.linux.namespaces", section, "an array"):
        for i, ns in enumerate(linux["namespaces"]):
            path = f"$.linux.namespaces[{i}]"
            if not c.is_type(ns, dict, path, section, "an object"):
                continue
            ns_type = ns.get("type")
            if ns_type is None:
                c.add(f"{path}.type", "is REQUIRED", section)
            elif c.is_type(ns_type, str, f"{path}.type", section, "a string"):
                if ns_type not in NAMESPACE_TYPES:
                    c.add(f"{path}.type", f"{ns_type!r} is not a namespace type", section)
                elif ns_type in types:
                    c.add(f"{path}.type", f"namespace {ns_type!r} is listed more than once", section)
                types.add(ns_type)
            if "path" in ns:
                c.abs_path(ns["path"], f"{path}.path", section)
    for key in ("uidMappings", "gidMappings"):
        if key in linux:
            _check_id_mappings(c, linux[key], f"$.linux.{key}", _LNX + "#user-namespace-mappings")
    if "devices" in linux and c.is_type(linux["devices"], list, "$.linux.devices", _LNX + "#devices", "an array"):
        for i, dev in enumerate(linux["devices"]):
            _check_device(c, dev, f"$.linux.devices[{i}]")
    if "sysctl" in linux and c.is_type(linux["sysctl"], dict, "$.linux.sysctl", _LNX + "#sysctl", "an object"):
        for key, value in linux["sysctl"].items():
            c.is_type(value, str, f"$.linux.sysctl[{key!r}]", _LNX + "#sysctl", "a string")
    for key in ("maskedPaths", "readonlyPaths"):
        anchor = _LNX + ("#masked-paths" if key == "maskedPaths" else "#readonly-paths")
        if key in linux and c.str_list(linux[key], f"$.linux.{key}", anchor):
            for i, item in enumerate(linux[key]):
                c.abs_path(item, f"$.linux.{key}[{i}]", anchor)
    if "cgroupsPath" in linux:
        c.is_type(linux["cgroupsPath"], str, "$.linux.cgroupsPath", _LNX + "#cgroups-path", "a string")
    if "rootfsPropagation" in linux:
        value = linux["rootfsPropagation"]
        allowed = {"shared", "slave", "private", "unbindable"}
        if c.is_type(value, str, "$.linux.rootfsPropagation", _LNX + "#rootfs-mount-propagation", "a string") and value not in allowed:
            c.add("$.linux.rootfsPropagation", f"{value!r} is not one of {sorted(allowed)}", _LNX + "#rootfs-mount-propagation")
    if "timeOffsets" in linux and "time" not in types:
        c.add("$.linux.timeOffsets", "is set but there is no new time namespace", _LNX + "#offset-for-time-namespace")


def _check_device(c: _Checker, dev: Any, path: str) -> None:
    section = _LNX + "#devices"
    if not c.is_type(dev, dict, path, section, "an object"):
        return
    dtype = dev.get("type")
    if dtype is None:
        c.add(f"{path}.type", "is REQUIRED", section)
    elif c.is_type(dtype, str, f"{path}.type", section, "a string") and dtype not in _DEVICE_TYPES:
        c.add(f"{path}.type", f"{dtype!r} is not one of c, b, u, p", section)
    if "path" not in dev:
        c.add(f"{path}.path", "is REQUIRED", section)
    else:
        c.abs_path(dev["path"], f"{path}.path", section)
    for key in ("major", "minor"):
        if key in dev:
            c.is_type(dev[key], int, f"{path}.{key}", section, "an integer")
        elif dtype in ("c", "b", "u"):
            c.add(f"{path}.{key}", f"is REQUIRED for device type {dtype!r}", section)
    if "fileMode" in dev:
        c.uint(dev["fileMode"], f"{path}.fileMode", section)
    for key in ("uid", "gid"):
        if key in dev:
            c.uint(dev[key], f"{path}.{key}", section)
