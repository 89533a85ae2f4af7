"""The OCI runtime config model: defaults, edits and validation.

A config is kept as the plain ``dict`` that ``json.load`` gives: that is what a runtime reads, so
the harness never hides a field behind a model class. This module

* builds the default config (:func:`default_config`), the same content ``runc spec`` writes, and
  its rootless variant;
* validates a config against the spec's JSON Schema and the rules of config.md and
  config-linux.md the schema cannot express (:func:`validate`), returning every violation with
  the JSON path of the offending value;
* reads and writes ``config.json`` with errors that name the file and the problem.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import atomic
from .errors import ConfigError

#: The version of the runtime spec the harness writes into configs it makes.
OCI_VERSION = "1.3.0"

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
    """The default config, with the content ``runc spec`` (or ``runc spec --rootless``) writes,
    except ``ociVersion``: the spec version the harness follows (:data:`OCI_VERSION`).

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
            {
                "destination": "/dev/mqueue",
                "type": "mqueue",
                "source": "mqueue",
                "options": ["nosuid", "noexec", "nodev"],
            },
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
        raise ConfigError(
            f"{path}: no such file; a bundle needs a config.json (write one with `harness spec`)"
        ) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read it: {err}") from None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: not valid JSON at line {err.lineno} column {err.colno}: {err.msg}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: the top level must be a JSON object, not {_json_type(config)}")
    return config


def dump(config: dict[str, Any], path: Path, *, new: bool = False) -> None:
    """Write ``config`` to ``path`` atomically (a reader never sees half a file).

    ``new``: ``path`` does not exist yet and nothing reads it before this returns (the config
    of a bundle being made): written in place, refusing an existing file, with no temporary
    file to make, rename and remove."""
    data = (json.dumps(config, indent="\t") + "\n").encode("utf-8")
    if new:
        atomic.write_new(Path(path), data)
    else:
        atomic.write_bytes(Path(path), data)


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
#
# Two layers: the spec's own JSON Schemas (harness.schema: types, required properties, enums,
# integer ranges, patterns), then the rules the schemas cannot express, written here. A value of
# the wrong type is the schema's to report; the checks below skip it silently.


@dataclass(frozen=True)
class Violation:
    """One broken rule: where (a JSON path like ``$.process.args``), what, and the spec section
    (or, for a schema violation, the schema's path)."""

    path: str
    message: str
    section: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message} ({self.section})"


RLIMIT_TYPES = frozenset(
    "RLIMIT_" + n
    for n in (
        [
            "CPU",
            "FSIZE",
            "DATA",
            "STACK",
            "CORE",
            "RSS",
            "NPROC",
            "NOFILE",
            "MEMLOCK",
            "AS",
            "LOCKS",
            "SIGPENDING",
            "MSGQUEUE",
            "NICE",
            "RTPRIO",
            "RTTIME",
        ]
    )
)
CAPABILITIES = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
]
_CAP_SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")
_SEMVER = re.compile(r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
_HOOK_KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")

# Section anchors of the spec documents, used in violation messages.
_CFG = "config.md"
_LNX = "config-linux.md"


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _dict(parent: Any, key: str) -> dict[str, Any] | None:
    value = parent.get(key) if isinstance(parent, dict) else None
    return value if isinstance(value, dict) else None


def _list(parent: Any, key: str) -> list[Any]:
    value = parent.get(key) if isinstance(parent, dict) else None
    return value if isinstance(value, list) else []


class _Checker:
    def __init__(self) -> None:
        self.violations: list[Violation] = []

    def add(self, path: str, message: str, section: str) -> None:
        self.violations.append(Violation(path, message, section))

    def abs_path(self, value: Any, path: str, section: str) -> None:
        if isinstance(value, str) and not value.startswith("/"):
            self.add(path, f"must be an absolute path, not {value!r}", section)


def validate(config: Any, *, platform: str = "linux") -> list[Violation]:
    """Every violation of the spec's config rules in ``config`` (empty list: valid).

    First the spec's JSON Schema (``schema/config-schema.json`` of the pinned spec folder, see
    :mod:`harness.schema`), each violation naming the schema's path; then what the schema cannot
    say: REQUIRED properties the schema leaves optional (root, process.args, user ids), SemVer,
    absolute paths, non-empty values, known rlimit and capability names, no duplicated rlimit or
    namespace types, device numbers, timeOffsets with a time namespace. Properties the spec does
    not know are allowed: runtimes must ignore them.
    """
    from . import schema

    found = [Violation(e.path, e.message, e.schema_path) for e in schema.validate(config, "config")]
    if isinstance(config, dict):
        c = _Checker()
        _semantics(c, config, platform)
        found += c.violations
    return found


def check(config: Any, *, source: str = "config.json") -> None:
    """Raise a :class:`ConfigError` listing every violation, if there is any."""
    violations = validate(config)
    if violations:
        lines = "\n".join(f"  {v}" for v in violations)
        raise ConfigError(f"{source} breaks the runtime spec in {len(violations)} place(s):\n{lines}")


def _semantics(c: _Checker, config: dict[str, Any], platform: str) -> None:
    version = config.get("ociVersion")
    if isinstance(version, str) and not _SEMVER.match(version):
        c.add("$.ociVersion", f"{version!r} is not a SemVer 2.0.0 version", _CFG + "#specification-version")
    if "root" not in config:
        if platform != "windows":
            c.add("$.root", "is REQUIRED on this platform", _CFG + "#root")
    elif isinstance(config["root"], dict) and config["root"].get("path") == "":
        c.add("$.root.path", "must not be empty", _CFG + "#root")
    for i, mount in enumerate(_list(config, "mounts")):
        if isinstance(mount, dict) and mount.get("destination") == "":
            c.add(f"$.mounts[{i}].destination", "must not be empty", _CFG + "#mounts")
    process = _dict(config, "process")
    if process is not None:
        _process(c, process, platform)
    hooks = _dict(config, "hooks")
    for kind in _HOOK_KINDS:
        for i, hook in enumerate(_list(hooks, kind)):
            if isinstance(hook, dict):
                c.abs_path(hook.get("path"), f"$.hooks.{kind}[{i}].path", _CFG + "#posix-platform-hooks")
    annotations = _dict(config, "annotations")
    if annotations is not None and "" in annotations:
        c.add("$.annotations", "keys must not be empty", _CFG + "#annotations")
    linux = _dict(config, "linux")
    if platform == "linux" and linux is not None:
        _linux(c, linux)


def _process(c: _Checker, process: dict[str, Any], platform: str) -> None:
    section = _CFG + "#process"
    c.abs_path(process.get("cwd"), "$.process.cwd", section)
    for i, item in enumerate(_list(process, "env")):
        if isinstance(item, str) and "=" not in item:
            c.add(f"$.process.env[{i}]", f"{item!r} is not of the form KEY=value", section)
    if platform != "windows":
        if "args" not in process:
            c.add("$.process.args", "is REQUIRED on this platform", section)
        elif process["args"] == []:
            c.add("$.process.args", "must hold at least one entry", section)
    seen: set[str] = set()
    for i, rl in enumerate(_list(process, "rlimits")):
        rtype = rl.get("type") if isinstance(rl, dict) else None
        if not isinstance(rtype, str):
            continue
        if platform == "linux" and rtype not in RLIMIT_TYPES:
            c.add(f"$.process.rlimits[{i}].type", f"{rtype!r} is not a Linux rlimit", _CFG + "#posix-process")
        elif rtype in seen:
            c.add(f"$.process.rlimits[{i}].type", f"{rtype} is listed twice", _CFG + "#posix-process")
        seen.add(rtype)
    user = _dict(process, "user")
    if user is not None and platform != "windows":
        for key in ("uid", "gid"):
            if key not in user:
                c.add(f"$.process.user.{key}", "is REQUIRED", _CFG + "#posix-platform-user")
    caps = _dict(process, "capabilities")
    known = set(CAPABILITIES)
    for key in _CAP_SETS:
        for i, name in enumerate(_list(caps, key)):
            if isinstance(name, str) and name not in known:
                c.add(
                    f"$.process.capabilities.{key}[{i}]", f"{name!r} is not a Linux capability", _CFG + "#linux-process"
                )
    score = process.get("oomScoreAdj")
    if isinstance(score, int) and _int(score) and not -1000 <= score <= 1000:
        c.add("$.process.oomScoreAdj", f"{score} is outside -1000..1000", _CFG + "#linux-process")


def _linux(c: _Checker, linux: dict[str, Any]) -> None:
    section = _LNX + "#namespaces"
    types: set[str] = set()
    for i, ns in enumerate(_list(linux, "namespaces")):
        if not isinstance(ns, dict):
            continue
        ns_type = ns.get("type")
        if isinstance(ns_type, str):
            if ns_type in types:
                c.add(f"$.linux.namespaces[{i}].type", f"namespace {ns_type!r} is listed more than once", section)
            types.add(ns_type)
        if "path" in ns:
            c.abs_path(ns["path"], f"$.linux.namespaces[{i}].path", section)
    for i, dev in enumerate(_list(linux, "devices")):
        if not isinstance(dev, dict):
            continue
        c.abs_path(dev.get("path"), f"$.linux.devices[{i}].path", _LNX + "#devices")
        dtype = dev.get("type")
        for key in ("major", "minor"):
            if key not in dev and dtype in ("c", "b", "u"):
                c.add(f"$.linux.devices[{i}].{key}", f"is REQUIRED for device type {dtype!r}", _LNX + "#devices")
    for key in ("maskedPaths", "readonlyPaths"):
        anchor = _LNX + ("#masked-paths" if key == "maskedPaths" else "#readonly-paths")
        for i, item in enumerate(_list(linux, key)):
            c.abs_path(item, f"$.linux.{key}[{i}]", anchor)
    if "timeOffsets" in linux and "time" not in types:
        c.add("$.linux.timeOffsets", "is set but there is no new time namespace", _LNX + "#offset-for-time-namespace")


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
