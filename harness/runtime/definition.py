"""Runtime definitions: what differs between runtimes, as data (``runtimes/*.toml``).

Global flags, the state-root flag, how ``delete`` is forced, quirks (a private mount namespace
some runtime needs on some hosts, a config version it refuses past), expected failures of cases
and known leaks. :func:`resolve` turns a name or a binary path into a definition.
"""

from __future__ import annotations

import os
import re
import shutil
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import host
from ..errors import HarnessError

DEFAULT_TIMEOUT = 30.0


class RuntimeNotFound(HarnessError):
    """The runtime name is not defined, or its binary is not installed."""


def definitions_dir() -> Path:
    """Where the runtime definitions are: next to the package when installed, or the repo's runtimes/."""
    if env := os.environ.get("HARNESS_RUNTIMES_DIR"):
        return Path(env)
    here = Path(__file__).resolve().parents[1]  # the harness package
    installed = here / "_runtimes"
    return installed if installed.is_dir() else here.parent / "runtimes"


@dataclass(frozen=True)
class ConfigVersion:
    """The newest ``ociVersion`` a runtime accepts in config.json, for a runtime that refuses the
    harness's spec version and has no ``features`` document to say so. Configs the harness made
    (``ociVersion`` = :data:`harness.spec.OCI_VERSION`) are written with this version just before
    ``create``; a config that names another version on purpose is left alone."""

    version: str
    reason: str


@dataclass(frozen=True)
class PrivateMountNamespace:
    """Run the runtime in a private mount namespace without some mounts, on some hosts."""

    when: frozenset[str]  # cgroup modes ("v1", "hybrid", "v2") it applies to
    unmount: tuple[str, ...]
    reason: str

    def applies(self) -> bool:
        return host.cgroup_mode() in self.when


class _BadExpectedFailure(ValueError):
    pass


@dataclass(frozen=True)
class ExpectedFailure:
    """A known deviation of a runtime: one case, one specific failing check.

    In ``runtimes/NAME.toml``::

        [expected_failures."test_x[param]"]
        reason = "what the runtime does instead"
        spec = "runtime.md#delete"                       # file#anchor of the v1.3.0 spec
        sentence = "the spec sentence, verbatim"          # the rule the failure breaks
        match = "regex searched in the failure message"   # the assertion and its observed value

    The case runs as a strict xfail; it counts as this deviation only if its failure message
    matches ``match``. A runtime failing the same case for another reason is a plain failure.
    """

    reason: str
    spec: str
    sentence: str
    match: str

    FIELDS = ("reason", "spec", "sentence", "match")

    @classmethod
    def parse(cls, key: str, value: Any) -> ExpectedFailure:
        import re

        where = f"expected failure {key!r}"
        if not isinstance(value, dict):
            raise _BadExpectedFailure(
                f"{where} is a {type(value).__name__}; write it as a table "
                f'[expected_failures."{key}"] with reason, spec, sentence and match (see runtimes/README.md)'
            )
        missing = [f for f in cls.FIELDS if not isinstance(value.get(f), str) or not value[f].strip()]
        unknown = sorted(set(value) - set(cls.FIELDS))
        if missing or unknown:
            raise _BadExpectedFailure(
                f"{where}: "
                + "; ".join(
                    ([f"needs {', '.join(missing)} (non-empty strings)"] if missing else [])
                    + ([f"unknown keys {', '.join(unknown)}"] if unknown else [])
                )
            )
        if "#" not in value["spec"] or not value["spec"].split("#", 1)[0].endswith(".md"):
            raise _BadExpectedFailure(f"{where}: spec {value['spec']!r} is not FILE.md#anchor")
        try:
            re.compile(value["match"])
        except re.error as err:
            raise _BadExpectedFailure(f"{where}: match {value['match']!r} is not a regular expression: {err}") from None
        return cls(**{f: value[f] for f in cls.FIELDS})

    def matches(self, message: str) -> bool:
        import re

        return re.search(self.match, message) is not None

    def __str__(self) -> str:
        return f"{self.reason} ({self.spec}: {self.sentence})"


@dataclass(frozen=True)
class RuntimeDefinition:
    name: str
    binary: str
    description: str = ""
    global_args: tuple[str, ...] = ()
    root_flag: str = "--root"
    delete_force: tuple[str, ...] = ("--force",)
    version_args: tuple[str, ...] = ("--version",)
    timeout: float = DEFAULT_TIMEOUT
    debian_package: str | None = None
    private_mount_namespace: PrivateMountNamespace | None = None
    config_version: ConfigVersion | None = None
    expected_failures: dict[str, ExpectedFailure] = field(default_factory=dict)
    #: cases after which this runtime is known to leave something on the host (see harness.leaks)
    known_leaks: dict[str, str] = field(default_factory=dict)
    #: what this runtime is known to leave after any case where it happens at all, by a
    #: regular expression on the leak's line (``re.search``) -> the reason: for a leak that
    #: depends on timing, not on the case (a race in the runtime's own cleanup)
    known_leak_patterns: dict[str, str] = field(default_factory=dict)
    #: where the runtime puts a container's cgroup when its config has no cgroupsPath
    #: (``<parent>/<id>``), besides the common ``/<id>``: a failed create may leave it
    default_cgroups_parent: str | None = None
    source: Path | None = None

    @classmethod
    def from_toml(cls, path: Path) -> RuntimeDefinition:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as err:
            raise HarnessError(f"runtime definition {path}: {err}") from None
        try:
            cli = data.get("cli", {})
            pmn = data.get("quirks", {}).get("private_mount_namespace")
            cv = data.get("quirks", {}).get("config_version")
            return cls(
                name=data.get("name", path.stem),
                binary=data["binary"],
                description=data.get("description", ""),
                global_args=tuple(cli.get("global", ())),
                root_flag=cli.get("root", "--root"),
                delete_force=tuple(cli.get("delete_force", ("--force",))),
                version_args=tuple(cli.get("version", ("--version",))),
                timeout=float(data.get("timeout", DEFAULT_TIMEOUT)),
                debian_package=data.get("packages", {}).get("debian"),
                private_mount_namespace=None
                if pmn is None
                else PrivateMountNamespace(
                    frozenset(pmn.get("when", ("v1", "hybrid", "v2"))),
                    tuple(pmn.get("unmount", ())),
                    pmn.get("reason", ""),
                ),
                config_version=None if cv is None else ConfigVersion(str(cv["version"]), str(cv.get("reason", ""))),
                expected_failures={
                    k: ExpectedFailure.parse(k, v) for k, v in data.get("expected_failures", {}).items()
                },
                known_leaks=dict(data.get("known_leaks", {})),
                known_leak_patterns=_leak_patterns(data.get("known_leak_patterns", {})),
                default_cgroups_parent=data.get("default_cgroups_parent"),
                source=path,
            )
        except _BadExpectedFailure as err:
            raise HarnessError(f"runtime definition {path}: {err}") from None
        except (KeyError, TypeError, ValueError) as err:
            raise HarnessError(f"runtime definition {path}: missing or invalid field {err}") from None

    def version(self) -> str:
        """The first line of the binary's version output ("" if it has none or is not installed);
        no state root is involved."""
        import subprocess

        binary = self.find_binary()
        if binary is None:
            return ""
        try:
            proc = subprocess.run([binary, *self.version_args], capture_output=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        out = (proc.stdout or proc.stderr).decode("utf-8", "replace").strip()
        return out.splitlines()[0] if out else ""

    def find_binary(self) -> str | None:
        """The absolute path of the binary, or None if it is not installed.

        A relative path with a slash (``reference/bin/oci-reference``) is relative to the folder
        of the definition file; a bare name is looked up in PATH (and the sbin folders).
        """
        if "/" in self.binary:
            path = self.binary
            if not os.path.isabs(path) and self.source is not None:
                path = str(self.source.parent / path)
            return path if os.access(path, os.X_OK) and not os.path.isdir(path) else None
        return shutil.which(self.binary) or next(
            (
                str(p)
                for p in (Path("/usr/sbin") / self.binary, Path("/usr/local/sbin") / self.binary)
                if os.access(p, os.X_OK)
            ),
            None,
        )


def load_definitions(directory: Path | None = None) -> dict[str, RuntimeDefinition]:
    """All runtime definitions by name."""
    directory = directory or definitions_dir()
    defs = {}
    for path in sorted(directory.glob("*.toml")):
        d = RuntimeDefinition.from_toml(path)
        defs[d.name] = d
    return defs


def resolve(name_or_path: str) -> RuntimeDefinition:
    """The definition for a runtime name (``runc``) or an executable path (``/opt/bin/myrt``)."""
    defs = load_definitions()
    if name_or_path in defs:
        return defs[name_or_path]
    if "/" in name_or_path:
        path = os.path.abspath(name_or_path)
        if not os.access(path, os.X_OK) or os.path.isdir(path):
            raise RuntimeNotFound(f"runtime {name_or_path!r}: no executable file at {path}")
        # A binary under a known name gets that name's definition (flags, quirks), at this path.
        known = defs.get(os.path.basename(path))
        if known is not None:
            return RuntimeDefinition(**{**known.__dict__, "binary": path})
        return RuntimeDefinition(name=os.path.basename(path), binary=path, description="runtime given by path")
    raise RuntimeNotFound(
        f"unknown runtime {name_or_path!r}: known runtimes are {', '.join(sorted(defs)) or 'none'} "
        f"(definitions in {definitions_dir()}); or give the path of a runtime binary"
    )


def _leak_patterns(table: dict[str, Any]) -> dict[str, str]:
    """``[known_leak_patterns]``: each key must be a regular expression, each value its reason."""
    for pattern, reason in table.items():
        try:
            re.compile(pattern)
        except re.error as err:
            raise ValueError(f"known_leak_patterns: {pattern!r} is not a regular expression ({err})") from None
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError(f"known_leak_patterns: {pattern!r} needs a reason (the sentence the leak breaks)")
    return dict(table)
