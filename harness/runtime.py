"""The runtime adapter: drives any binary that speaks the OCI runtime command line.

One class, :class:`Runtime`, turns the spec's operations (create, start, state, kill, delete)
into command lines. What differs between runtimes is data, read from ``runtimes/*.toml``
(:class:`RuntimeDefinition`): global flags, the state-root flag, how ``delete`` is forced, a
private mount namespace some runtime needs on some hosts, expected failures of cases. The code
stays generic: there is no ``if name == "runc"`` anywhere.

Every call has a timeout. Each :class:`Runtime` uses its own state root, so runs and pytest-xdist
workers never see each other's containers. A failed call raises :class:`RuntimeCallError`, which
carries the command line, the exit code and the runtime's stderr.

:class:`Container` is one container's life on a runtime: its files for stdio, create/start/wait
and a ``cleanup`` that always removes the container (``with Container(...) as c:``).
"""

from __future__ import annotations

import errno
import json
import os
import select
import shutil
import signal as _signal
import subprocess
import time
import tomllib
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

from . import _linux, host
from .errors import HarnessError

DEFAULT_TIMEOUT = 30.0
#: the most a busy machine stretches the deadlines (a hang is still reported, just later)
MAX_SCALE = 8.0


def timeout_scale() -> float:
    """How much this machine's deadlines are stretched now: ``$HARNESS_TIMEOUT_SCALE`` if set,
    else the measured load, runnable tasks per CPU over the last minute (``os.getloadavg``),
    between 1 (a quiet machine) and :data:`MAX_SCALE`. A busy CI machine gets longer deadlines
    instead of false timeouts; a real hang still ends in a timeout that names the call."""
    env = os.environ.get("HARNESS_TIMEOUT_SCALE")
    if env:
        try:
            value = float(env)
        except ValueError:
            raise HarnessError(f"HARNESS_TIMEOUT_SCALE={env!r} is not a number (a factor such as 2 or 0.5)") from None
        if value <= 0:
            raise HarnessError(f"HARNESS_TIMEOUT_SCALE={env!r} must be a positive factor")
        return value
    try:
        load = os.getloadavg()[0] / (os.cpu_count() or 1)
    except OSError:
        return 1.0
    return min(max(load, 1.0), MAX_SCALE)


def scaled(seconds: float) -> float:
    """A deadline of ``seconds`` on a quiet machine, stretched for this machine now."""
    return seconds * timeout_scale()


class RuntimeNotFound(HarnessError):
    """The runtime name is not defined, or its binary is not installed."""


class RuntimeCallError(HarnessError):
    """A runtime command failed (non-zero exit), timed out, or answered something unreadable."""

    def __init__(
        self,
        runtime: str,
        argv: list[str],
        message: str,
        *,
        returncode: int | None = None,
        stdout: str = "",
        stderr: str = "",
    ):
        self.runtime = runtime
        self.argv = argv
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        detail = f"\n  command: {_shell_join(argv)}"
        if returncode is not None:
            detail += f"\n  exit code: {returncode}"
        if stderr.strip():
            detail += "\n  stderr: " + stderr.strip().replace("\n", "\n          ")
        super().__init__(f"{runtime}: {message}{detail}")


class RuntimeTimeout(RuntimeCallError):
    """A runtime command did not finish within its timeout (it was killed)."""


def _shell_join(argv: list[str]) -> str:
    import shlex

    return " ".join(shlex.quote(a) for a in argv)


# --------------------------------------------------------------------------------------------
# Definitions (runtimes/*.toml)


def definitions_dir() -> Path:
    """Where the runtime definitions are: next to the package when installed, or the repo's runtimes/."""
    if env := os.environ.get("HARNESS_RUNTIMES_DIR"):
        return Path(env)
    here = Path(__file__).resolve().parent
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
                source=path,
            )
        except _BadExpectedFailure as err:
            raise HarnessError(f"runtime definition {path}: {err}") from None
        except (KeyError, TypeError, ValueError) as err:
            raise HarnessError(f"runtime definition {path}: missing or invalid field {err}") from None

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


# --------------------------------------------------------------------------------------------
# State


@dataclass(frozen=True)
class State:
    """A container's state as the runtime reports it (runtime.md, "State")."""

    oci_version: str | None
    id: str
    status: str
    pid: int | None
    bundle: str | None
    annotations: dict[str, str]
    raw: dict[str, Any]

    @classmethod
    def parse(cls, text: str, *, runtime: str, argv: list[str]) -> State:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as err:
            raise RuntimeCallError(
                runtime, argv, f"state output is not JSON ({err.msg} at char {err.pos})", stdout=text
            ) from None
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not isinstance(raw.get("status"), str):
            raise RuntimeCallError(
                runtime, argv, "state output is not a state object (needs string 'id' and 'status')", stdout=text
            )
        pid = raw.get("pid")
        bundle = raw.get("bundle", raw.get("bundlePath"))
        annotations = raw.get("annotations")
        return cls(
            oci_version=raw.get("ociVersion") if isinstance(raw.get("ociVersion"), str) else None,
            id=raw["id"],
            status=raw["status"],
            pid=pid if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 else None,
            bundle=bundle if isinstance(bundle, str) else None,
            annotations=annotations if isinstance(annotations, dict) else {},
            raw=raw,
        )


# --------------------------------------------------------------------------------------------
# The adapter


def default_state_root_base() -> Path:
    """A folder for state roots: /run when root (tmpfs, like the runtimes' own defaults), else a tmp dir."""
    if os.environ.get("HARNESS_STATE_DIR"):
        return Path(os.environ["HARNESS_STATE_DIR"])
    if os.geteuid() == 0 and os.access("/run", os.W_OK):
        return Path("/run/oci-harness")
    return Path(os.environ.get("XDG_RUNTIME_DIR") or "/tmp") / "oci-harness"


class Runtime:
    """One runtime, driven through its command line, with its own state root."""

    def __init__(self, definition: RuntimeDefinition, state_root: Path, *, timeout: float | None = None):
        binary = definition.find_binary()
        if binary is None:
            hint = f" (apt-get install {definition.debian_package})" if definition.debian_package else ""
            raise RuntimeNotFound(f"runtime {definition.name!r}: binary {definition.binary!r} is not installed{hint}")
        self.definition = definition
        self.name = definition.name
        self.binary = binary
        self.state_root = Path(state_root)
        self.timeout = timeout if timeout is not None else definition.timeout
        #: a --runtime-timeout given by the user is taken as is; the definition's default scales
        self.timeout_given = timeout is not None
        #: where containers made through this runtime are recorded (see harness.journal)
        self.journal: Any = None
        pmn = definition.private_mount_namespace
        self._quirk = partial(_linux.private_mount_namespace, pmn.unmount) if pmn and pmn.applies() else None
        #: the network namespace the runtime's calls run in (None: the harness's own)
        self.netns: str | None = None
        #: further steps between fork and exec, added by :meth:`with_process_setup`
        self._setup_steps: list[Callable[[], None]] = []

    def __repr__(self) -> str:
        return f"Runtime({self.name!r}, root={str(self.state_root)!r})"

    @property
    def _preexec(self) -> Any:
        steps: list[Callable[[], None]] = []
        if self.netns is not None:
            steps.append(partial(_linux.enter_network_namespace, self.netns))
        if self._quirk is not None:
            steps.append(self._quirk)
        steps += self._setup_steps
        if len(steps) <= 1:
            return steps[0] if steps else None

        def run_all() -> None:
            for step in steps:
                step()

        return run_all

    @contextmanager
    def with_process_setup(self, step: Callable[[], None]) -> Iterator[None]:
        """Run ``step`` in the runtime's process between fork and exec (after the network
        namespace and the definition's quirk) while the block lasts: for a case that runs the
        runtime in surroundings of its own making, such as a private mount namespace with a
        file hidden. ``step`` must never change what the host sees."""
        self._setup_steps.append(step)
        try:
            yield
        finally:
            self._setup_steps.remove(step)

    @property
    def preexec_fn(self) -> Any:
        """What runs in the runtime's process between fork and exec (a definition's quirk, the
        network namespace of :meth:`in_network_namespace`, or None): for callers that start the
        runtime themselves, like the benchmarks' timer."""
        return self._preexec

    @property
    def in_private_mount_namespace(self) -> bool:
        """Whether the adapter runs this runtime in a private mount namespace on this host (a
        quirk of its definition): mounts and mount namespaces made on the host are then not
        seen by the runtime the way they would be otherwise."""
        return self._quirk is not None

    @contextmanager
    def in_network_namespace(self, path: str) -> Iterator[None]:
        """Run this runtime's calls inside the network namespace at ``path`` while the block
        lasts: its "runtime namespace" is then one a case made (and owns), not the host's."""
        old, self.netns = self.netns, path
        try:
            yield
        finally:
            self.netns = old

    def _quirk_failure(self) -> str:
        pmn = self.definition.private_mount_namespace
        why = f" ({pmn.reason})" if pmn and pmn.reason else ""
        if os.geteuid() != 0:
            return (
                f"its definition runs it in a private mount namespace on this {host.cgroup_mode()} cgroup host{why}, "
                "and making one needs root (CAP_SYS_ADMIN): run the harness as root, or pick another runtime"
            )
        return f"cannot set up the private mount namespace its definition asks for{why}"

    def argv(self, *args: str) -> list[str]:
        """The full command line for a runtime subcommand. For ``create`` and ``run`` the
        bundle's config gets the definition's ``config_version`` quirk first, whoever runs it."""
        if args and args[0] in ("create", "run") and "--bundle" in args[:-1]:
            self._config_version_quirk(Path(args[args.index("--bundle") + 1]))
        return [self.binary, *self.definition.global_args, self.definition.root_flag, str(self.state_root), *args]

    def call(
        self,
        *args: str,
        timeout: float | None = None,
        stdin: Any = subprocess.DEVNULL,
        stdout: Any = subprocess.PIPE,
        stderr: Any = subprocess.PIPE,
        check: bool = True,
    ) -> subprocess.CompletedProcess:
        """Run one subcommand; raise :class:`RuntimeCallError` on failure or :class:`RuntimeTimeout`."""
        if self._quirk is not None and os.geteuid() != 0:
            # the private mount namespace cannot be made: say so before touching the bundle
            raise RuntimeCallError(self.name, [self.binary, *args], self._quirk_failure())
        argv = self.argv(*args)
        self.state_root.mkdir(parents=True, exist_ok=True, mode=0o700)
        base = self.timeout if timeout is None else timeout
        factor = 1.0 if self.timeout_given and timeout is None else timeout_scale()
        timeout = base * factor
        how = (
            f"{base:g} s"
            if factor == 1.0
            else f"{base:g} s x {factor:.2g} for this machine's load (HARNESS_TIMEOUT_SCALE sets the factor)"
        )
        try:
            proc = subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=stderr, preexec_fn=self._preexec)
        except OSError as err:
            raise RuntimeCallError(self.name, argv, f"cannot execute: {err}") from None
        except subprocess.SubprocessError:  # the quirk failed in the child ("Exception occurred in preexec_fn")
            raise RuntimeCallError(self.name, argv, self._quirk_failure()) from None
        out, err_out = _communicate(
            proc,
            timeout,
            lambda o, e: RuntimeTimeout(
                self.name,
                argv,
                f"timeout: {args[0]} gave no answer within {timeout:.3g} s ({how}); killed",
                stdout=_text(o),
                stderr=_text(e),
            ),
        )
        proc = subprocess.CompletedProcess(argv, proc.returncode, out, err_out)
        if check and proc.returncode != 0:
            raise RuntimeCallError(
                self.name,
                argv,
                f"{args[0]} failed",
                returncode=proc.returncode,
                stdout=_text(proc.stdout),
                stderr=_text(proc.stderr),
            )
        return proc

    def _config_version_quirk(self, bundle: Path) -> None:
        quirk = self.definition.config_version
        if quirk is None:
            return
        from . import spec

        path = bundle / "config.json"
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return  # the runtime reports what is wrong with it
        if isinstance(config, dict) and config.get("ociVersion") == spec.OCI_VERSION:
            config["ociVersion"] = quirk.version
            spec.dump(config, path)

    # The spec's operations ------------------------------------------------------------------

    def create(
        self,
        container_id: str,
        bundle: Path,
        *,
        pid_file: Path | None = None,
        stdin: Any = subprocess.DEVNULL,
        stdout: Any = subprocess.DEVNULL,
        stderr: Any = subprocess.PIPE,
        extra: tuple[str, ...] = (),
        timeout: float | None = None,
    ) -> subprocess.CompletedProcess:
        """``create --bundle B [--pid-file F] ID``. The container inherits stdin/stdout/stderr.

        Give the container's stdio as files (or DEVNULL), never pipes you wait on: the
        container keeps them open after ``create`` returns.
        """
        args = ["create", "--bundle", str(Path(bundle).resolve())]
        if pid_file is not None:
            args += ["--pid-file", str(pid_file)]
        return self.call(*args, *extra, container_id, stdin=stdin, stdout=stdout, stderr=stderr, timeout=timeout)

    def start(self, container_id: str, *, timeout: float | None = None) -> None:
        self.call("start", container_id, timeout=timeout)

    def state(self, container_id: str, *, timeout: float | None = None) -> State:
        proc = self.call("state", container_id, timeout=timeout)
        return State.parse(_text(proc.stdout), runtime=self.name, argv=self.argv("state", container_id))

    def kill(self, container_id: str, sig: str | int = "TERM", *, timeout: float | None = None) -> None:
        self.call("kill", container_id, _signal_name(sig), timeout=timeout)

    def delete(self, container_id: str, *, force: bool = False, timeout: float | None = None) -> None:
        args = ["delete", *(self.definition.delete_force if force else ()), container_id]
        self.call(*args, timeout=timeout)

    def version(self) -> str:
        """The first line of the runtime's version output ("" if it has none)."""
        try:
            proc = subprocess.run(
                [self.binary, *self.definition.version_args], capture_output=True, timeout=10, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return ""
        out = _text(proc.stdout) or _text(proc.stderr)
        return out.strip().splitlines()[0] if out.strip() else ""


#: Exit statuses of adopted processes reaped while waiting for something else, by pid.
_REAPED: dict[int, int] = {}


def _communicate(proc: subprocess.Popen, timeout: float, on_timeout: Any) -> tuple[Any, Any]:
    """Wait for ``proc`` with a deadline, reaping our other exited children meanwhile.

    As child subreaper the harness adopts what runtimes leave running (a container's init, a
    gVisor sandbox); some runtimes wait in ``delete`` until such a process is gone, which needs
    us to reap it while the runtime call is still running.
    """
    deadline = time.monotonic() + timeout
    tick = 0.002
    while True:
        try:
            return proc.communicate(timeout=min(tick, max(deadline - time.monotonic(), 0.001)))
        except subprocess.TimeoutExpired:
            pass
        reap_orphans(exclude=proc.pid)
        if time.monotonic() >= deadline:
            proc.kill()
            out, err = proc.communicate()
            raise on_timeout(out, err)
        tick = min(tick * 2, 0.02)


def _signal_name(sig: str | int) -> str:
    """Signals go to the runtime as names without SIG (``TERM``), which every runtime CLI reads."""
    if isinstance(sig, int):
        return _signal.Signals(sig).name.removeprefix("SIG")
    return sig.upper().removeprefix("SIG")


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode("utf-8", "replace")


# --------------------------------------------------------------------------------------------
# One container's life


@dataclass
class Exit:
    """How a container's process ended: ``code`` (exit status) or ``signal``; both None if unknown."""

    code: int | None = None
    signal: int | None = None

    @classmethod
    def from_wait_status(cls, status: int) -> Exit:
        if os.WIFSIGNALED(status):
            return cls(signal=os.WTERMSIG(status))
        return cls(code=os.WEXITSTATUS(status))

    @property
    def shell_code(self) -> int | None:
        """The exit code a shell would show (128 + signal for a killed process)."""
        return 128 + self.signal if self.signal is not None else self.code


class Container:
    """A container on a runtime, with its stdio in files under ``workdir``, always cleaned up.

    ``create()`` leaves it created; ``start()`` runs the user program; ``wait()`` waits for its
    process to end; ``cleanup()`` (also on ``__exit__``) kills and force-deletes it if it still
    exists and reaps its process.
    """

    def __init__(self, runtime: Runtime, container_id: str, bundle: Path, workdir: Path):
        self.runtime = runtime
        self.id = container_id
        self.bundle = Path(bundle)
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.stdout_path = self.workdir / f"{container_id}.stdout"
        self.stderr_path = self.workdir / f"{container_id}.stderr"
        self.pid_file = self.workdir / f"{container_id}.pid"
        self.created = False
        self.pid: int | None = None
        self.exit: Exit | None = None
        self.create_stderr = ""
        self._stderr_offset = 0
        self._pid_start: int | None = None  # start time of self.pid: tells it from a reused pid
        self.cgroups: list[Path] = []  # host cgroup folders named after this container
        #: what the runtime left and the harness removed for it (reported by harness.leaks)
        self.left_behind: list[str] = []

    def __enter__(self) -> Container:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def _journal(self, **details: Any) -> None:
        journal = self.runtime.journal
        if journal is not None:
            d = self.runtime.definition
            ref = d.name if d.source is not None else self.runtime.binary
            journal.record("container", self.id, runtime=ref, state_root=str(self.runtime.state_root), **details)

    def create(
        self, *, stdin: Any = subprocess.DEVNULL, timeout: float | None = None, extra: tuple[str, ...] = ()
    ) -> None:
        """``create`` with stdio in files; ``extra`` are more create options (``--console-socket P``)."""
        self._journal()  # before: a run killed during create must still find it
        started = _boot_ticks()
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            try:
                self.runtime.create(
                    self.id,
                    self.bundle,
                    pid_file=self.pid_file,
                    stdin=stdin,
                    stdout=out,
                    stderr=err,
                    extra=extra,
                    timeout=timeout,
                )
            except RuntimeCallError as failure:
                if failure.returncode is None and not isinstance(failure, RuntimeTimeout):
                    raise  # the runtime never ran (cannot execute it, or its quirk failed): already said
                failure.stderr = self.stderr_path.read_text(errors="replace")
                self.created = self._exists()
                if not self.created:  # some runtimes leave the cgroup of a failed create
                    removed = remove_empty_cgroups(named_cgroups(self.id, self.bundle), timeout=1.0)
                    self.left_behind += [f"cgroup {p} (of a failed create)" for p in removed]
                raise RuntimeCallError(
                    self.runtime.name,
                    failure.argv,
                    "create failed",
                    returncode=failure.returncode,
                    stderr=failure.stderr,
                ) from None
        self.created = True
        self.create_stderr = self.stderr_path.read_text(errors="replace")
        self._stderr_offset = len(self.create_stderr.encode())
        try:
            self.pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            self.pid = self.runtime.state(self.id).pid
        self._pid_start = _start_time(self.pid)
        if not _made_since(self.pid, self._pid_start, started):
            # Not a process this create made (a runtime reporting a wrong pid): never signal it.
            self._pid_start = None
        self.cgroups = _own_cgroups(self.pid, self.id) if self._pid_start is not None else []
        self._journal(pid=self.pid, pid_start=self._pid_start, cgroups=[str(p) for p in self.cgroups])

    def start(self, *, timeout: float | None = None) -> None:
        self.runtime.start(self.id, timeout=timeout)

    def state(self) -> State:
        return self.runtime.state(self.id)

    def kill(self, sig: str | int = "TERM") -> None:
        self.runtime.kill(self.id, sig)

    def delete(self, *, force: bool = False) -> None:
        self.runtime.delete(self.id, force=force)
        self.created = False
        self._reap()

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""

    def stderr(self) -> str:
        """What the container wrote to stderr (the runtime's own create messages excluded)."""
        if not self.stderr_path.exists():
            return ""
        with open(self.stderr_path, "rb") as f:
            f.seek(self._stderr_offset)
            return f.read().decode(errors="replace")

    def wait(self, timeout: float = DEFAULT_TIMEOUT, *, stream: tuple[BinaryIO, BinaryIO] | None = None) -> Exit:
        """Wait for the container's process to end, with a deadline; returns how it ended.

        The exit status is known when the process is our child (the harness makes itself a child
        subreaper, so a container's init becomes its child once ``create`` returns); otherwise
        the wait is on the process's exit only, and the status is unknown. ``stream`` copies the
        container's stdout and stderr to two binary files as they grow.
        """
        if self.exit is not None:
            return self.exit
        if self.pid is None:
            raise HarnessError(f"container {self.id}: no pid to wait for (was it created?)")
        if self._pid_start is None:
            raise HarnessError(
                f"{self.runtime.name}: container {self.id} has pid {self.pid}, which is not a process its create made; cannot wait for it"
            )
        timeout = scaled(timeout)
        deadline = time.monotonic() + timeout
        offsets = [0, self._stderr_offset]
        try:
            pidfd: int | None = os.pidfd_open(self.pid)
        except ProcessLookupError:
            pidfd = None
        try:
            while True:
                if stream:
                    _copy_new(self.stdout_path, offsets, 0, stream[0])
                    _copy_new(self.stderr_path, offsets, 1, stream[1])
                self.exit = self._try_reap()
                if self.exit is None and not _alive(self.pid) and not _is_child(self.pid):
                    self.exit = Exit()  # ended, but not our child: the status is not ours to read
                if self.exit is not None:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise HarnessError(f"container {self.id} (pid {self.pid}) still running after {timeout:g} s")
                # A pidfd becomes readable when the process ends; poll anyway while streaming.
                select.select(
                    [pidfd] if pidfd is not None else [],
                    [],
                    [],
                    min(remaining, 0.05 if stream or pidfd is None else remaining),
                )
        finally:
            if pidfd is not None:
                os.close(pidfd)
        if stream:
            _copy_new(self.stdout_path, offsets, 0, stream[0])
            _copy_new(self.stderr_path, offsets, 1, stream[1])
        return self.exit

    def wait_status(self, status: str, timeout: float = 10.0) -> State:
        """Poll ``state`` until it reports ``status``; the last state is in the error otherwise."""
        timeout = scaled(timeout)
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            st = self.state()
            if st.status == status:
                return st
            if time.monotonic() > deadline:
                raise HarnessError(
                    f"container {self.id}: status stayed {st.status!r}, expected {status!r} within {timeout:g} s"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    def wait_ready(self, marker: Path, timeout: float = 10.0) -> None:
        """Wait until the user program has written ``marker`` (a host path, e.g. the probe's
        ``write /ready 1 pause`` seen as ``bundle.rootfs / "ready"``).

        A ``running`` status is not readiness: runtimes report it once ``start`` released the
        init, which may still be the runtime's own code, not the user program. A signal sent
        then can be lost (pid 1 of a pid namespace ignores signals it has no handler for). The
        wait ends early, with the reason, when the process ends before writing the mark.
        """
        timeout = scaled(timeout)
        deadline = time.monotonic() + timeout
        delay = 0.002
        while not marker.exists():
            if self.pid is not None and not _alive(self.pid):
                raise HarnessError(
                    f"container {self.id}: its process {self.pid} ended before writing its readiness mark {marker}; stderr: {self.stderr()!r}"
                )
            if time.monotonic() > deadline:
                raise HarnessError(
                    f"container {self.id}: no readiness mark {marker} within {timeout:g} s (status {self.state().status!r})"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def cleanup(self) -> None:
        """Remove the container whatever state it is in; never raises for an already gone one."""
        # One this object created and did not delete is deleted straight away: asking `state`
        # first would cost a runtime call per container. Whether it exists is asked when this
        # object never saw it created, and when that delete fails.
        if self.created or self._exists():
            try:
                self.runtime.delete(self.id, force=True)
            except RuntimeCallError:
                if self._exists():
                    # Some runtimes refuse --force on a created container; kill it, then delete.
                    try:
                        self.runtime.kill(self.id, "KILL")
                    except RuntimeCallError:
                        pass
                    _poll(lambda: not _alive(self.pid), 5.0)
                    try:
                        self.runtime.delete(self.id, force=True)
                    except RuntimeCallError:
                        if self._exists():
                            raise
        self.created = False
        self._kill_if_left_behind()
        self._reap()
        self.left_behind += [f"cgroup {p}" for p in remove_empty_cgroups(self.cgroups)]
        if self.runtime.journal is not None:
            self.runtime.journal.release("container", self.id)

    def _kill_if_left_behind(self) -> None:
        """End the container's process if it outlived its container (the runtime lost track of it)."""
        if (
            self.pid is None
            or self._pid_start is None
            or not _alive(self.pid)
            or _start_time(self.pid) != self._pid_start
        ):
            return
        warnings.warn(
            f"{self.runtime.name}: container {self.id} is gone but its process {self.pid} still runs; killing it",
            stacklevel=2,
        )
        self.left_behind.append(f"process {self.pid} of container {self.id} (the container was deleted)")
        try:
            os.kill(self.pid, _signal.SIGKILL)
        except ProcessLookupError:
            return
        _poll(lambda: not _alive(self.pid), 5.0)

    def _exists(self) -> bool:
        try:
            self.runtime.state(self.id, timeout=min(10.0, self.runtime.timeout))
            return True
        except RuntimeCallError:
            return False

    def _try_reap(self) -> Exit | None:
        if self.pid is None:
            return None
        if self.pid in _REAPED:
            return Exit.from_wait_status(_REAPED.pop(self.pid))
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            return None
        return Exit.from_wait_status(status) if pid else None

    def _reap(self) -> None:
        """Collect our exited children: the container's init (once reparented to us) and helpers."""
        if self.pid is not None and self.exit is None and (self.pid in _REAPED or _is_child(self.pid)):
            _poll(lambda: self._try_reap_into_exit(), 5.0)
        reap_orphans()

    def _try_reap_into_exit(self) -> bool:
        status = self._try_reap()
        if status is not None:
            self.exit = status
            return True
        return not _alive(self.pid)


def reap_orphans(exclude: int | None = None) -> None:
    """Reap exited children without blocking (processes the harness adopted as subreaper).

    Stops at ``exclude`` (a subprocess whose status its Popen object must collect). Statuses are
    kept in ``_REAPED`` so a container's exit status is not lost to this.
    """
    while True:
        try:
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        if info is None or info.si_pid == exclude:
            return
        try:
            pid, status = os.waitpid(info.si_pid, os.WNOHANG)
        except ChildProcessError:
            continue
        if pid:
            _REAPED[pid] = status


def _is_child(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid()


def _own_cgroups(pid: int | None, container_id: str) -> list[Path]:
    """The host cgroup folders of ``pid`` whose name is the container id (the ones a runtime
    made for this container, whatever its layout), deepest first."""
    found = []
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return []
    mounts = [m for m in host.mounts() if m.fstype in ("cgroup", "cgroup2")]
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if not path.rstrip("/").endswith("/" + container_id):
            continue
        for m in mounts:
            # v1 "4:memory:/p" or "9:name=systemd:/p" lives on the mount with those options;
            # v2 "0::/p" on the cgroup2 mount.
            if (m.fstype == "cgroup2") if not controllers else set(controllers.split(",")) <= set(m.super_options):
                found.append(Path(m.mount_point) / path.lstrip("/"))
    return sorted(set(found), key=lambda p: -len(p.parts))


def named_cgroups(container_id: str, bundle: Path | None = None) -> list[Path]:
    """Cgroup folders a runtime may have made for a container it never finished creating (so
    there is no pid to ask): on every cgroup mount, the bundle's ``linux.cgroupsPath`` (a plain
    path) and the common default ``/<id>``. Only folders named exactly after the container id
    are returned; the harness's ids are unique to a run, so no one else's group can match."""
    paths = {"/" + container_id}
    if bundle is not None:
        try:
            configured = json.loads((Path(bundle) / "config.json").read_text()).get("linux", {}).get("cgroupsPath")
        except (OSError, ValueError, AttributeError):
            configured = None
        if isinstance(configured, str) and ":" not in configured:
            paths.add("/" + configured.strip("/"))
    found = []
    for m in host.mounts():
        if m.fstype not in ("cgroup", "cgroup2"):
            continue
        for path in paths:
            folder = Path(m.mount_point) / path.lstrip("/")
            if folder.name == container_id and folder.is_dir():
                found.append(folder)
    return sorted(set(found), key=lambda p: -len(p.parts))


def remove_empty_cgroups(folders: list[Path], timeout: float = 5.0) -> list[Path]:
    """rmdir the cgroup folders a runtime left behind, once their last process has gone (the
    kernel refuses populated ones; a killed container's helpers may take a moment to exit).
    Returns the folders removed."""
    removed = []
    for folder in folders:
        if not folder.is_dir():
            continue
        procs = folder / "cgroup.procs"
        _poll(lambda procs=procs: not procs.exists() or not procs.read_text().strip(), timeout)
        try:
            folder.rmdir()
            removed.append(folder)
        except OSError:
            pass
    return removed


def _boot_ticks() -> int:
    """Now, in the clock ticks since boot that /proc/PID/stat start times use."""
    return int(float(Path("/proc/uptime").read_text().split()[0]) * os.sysconf("SC_CLK_TCK"))


def _ancestors() -> set[int]:
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
    return pids


def _made_since(pid: int | None, start: int | None, ticks: int) -> bool:
    """Whether ``pid`` is a process started at or after ``ticks`` and is not us or an ancestor."""
    return pid is not None and start is not None and start >= ticks - 1 and pid not in _ancestors()


def _start_time(pid: int | None) -> int | None:
    """A process's start time in clock ticks since boot (/proc/PID/stat field 22), or None."""
    if pid is None:
        return None
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _alive(pid: int | None) -> bool:
    """True while the process exists and is not a zombie."""
    if pid is None:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _poll(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    delay = 0.002
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
    return True


def _copy_new(path: Path, offsets: list[int], index: int, out: BinaryIO) -> None:
    try:
        with open(path, "rb") as f:
            f.seek(offsets[index])
            data = f.read()
    except OSError as err:
        if err.errno == errno.ENOENT:
            return
        raise
    if data:
        offsets[index] += len(data)
        out.write(data)
        out.flush()
