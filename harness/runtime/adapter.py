"""The runtime adapter: drives any binary that speaks the OCI runtime command line.

One class, :class:`Runtime`, turns the spec's operations (create, start, state, kill, delete)
into command lines. What differs between runtimes is data (:mod:`.definition`). The code stays
generic: there is no ``if name == "runc"`` anywhere.

Every call has a timeout. Each :class:`Runtime` uses its own state root, so runs and pytest-xdist
workers never see each other's containers. A failed call raises :class:`RuntimeCallError`, which
carries the command line, the exit code and the runtime's stderr.
"""

from __future__ import annotations

import json
import os
import signal as _signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from .. import _linux, host
from ..errors import HarnessError
from . import process
from .definition import RuntimeDefinition, RuntimeNotFound

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
        #: the session that made this runtime (:meth:`harness.runtime.Session.runtime`), if any
        self.session: Any = None
        pmn = definition.private_mount_namespace
        self._quirk = partial(_linux.private_mount_namespace, pmn.unmount) if pmn and pmn.applies() else None
        #: the network namespace the runtime's calls run in (None: the harness's own)
        self.netns: str | None = None
        #: further steps between fork and exec, added by :meth:`with_process_setup`
        self._setup_steps: list[Callable[[], None]] = []
        #: how each runtime process is started and waited for (see :meth:`launched_by`)
        self._launcher: process.Launcher = process.launch

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

    @contextmanager
    def launched_by(self, launcher: process.Launcher) -> Iterator[None]:
        """Start and wait for this runtime's processes with ``launcher`` while the block lasts
        (the bench's timer): every call is otherwise the same, checks and all."""
        old, self._launcher = self._launcher, launcher
        try:
            yield
        finally:
            self._launcher = old

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
        # a create or run outlives a harness killed meanwhile: journaled by its command line
        # (its state root and container id are the run's own), so `harness cleanup` ends it
        call = f"{args[0]} {args[-1]}" if self.journal is not None and args[0] in ("create", "run") else None
        if call is not None:
            self.journal.record("call", call, argv=argv[1:])
        try:
            returncode, out, err_out = self._launcher(
                argv, stdin=stdin, stdout=stdout, stderr=stderr, preexec=self._preexec, timeout=timeout
            )
        except OSError as err:
            raise RuntimeCallError(self.name, argv, f"cannot execute: {err}") from None
        except subprocess.SubprocessError:  # the quirk failed in the child ("Exception occurred in preexec_fn")
            raise RuntimeCallError(self.name, argv, self._quirk_failure()) from None
        except process.Timeout as t:
            raise RuntimeTimeout(
                self.name,
                argv,
                f"timeout: {args[0]} gave no answer within {timeout:.3g} s ({how}); killed",
                stdout=_text(t.stdout),
                stderr=_text(t.stderr),
            ) from None
        finally:
            if call is not None:
                self.journal.release("call", call)
        proc = subprocess.CompletedProcess(argv, returncode, out, err_out)
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
        from .. import spec

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

    def run(
        self,
        container_id: str,
        bundle: Path,
        *,
        stdout: Any = subprocess.DEVNULL,
        stderr: Any = subprocess.PIPE,
        timeout: float | None = None,
    ) -> subprocess.CompletedProcess:
        """``run --bundle B ID``: create, start, wait and delete in one command (not one of the
        spec's operations, but every runtime CLI has it). Its exit code is the container's, so a
        non-zero one is returned, not raised."""
        args = ["run", "--bundle", str(Path(bundle).resolve()), container_id]
        return self.call(*args, stdout=stdout, stderr=stderr, timeout=timeout, check=False)

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
        return self.definition.version()


def _signal_name(sig: str | int) -> str:
    """Signals go to the runtime as names without SIG (``TERM``), which every runtime CLI reads."""
    if isinstance(sig, int):
        return _signal.Signals(sig).name.removeprefix("SIG")
    return sig.upper().removeprefix("SIG")


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode("utf-8", "replace")
