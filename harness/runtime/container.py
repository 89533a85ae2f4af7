"""One container's life on a runtime: its files for stdio, create/start/wait and a ``cleanup``
that always removes the container (``with Container(...) as c:``)."""

from __future__ import annotations

import errno
import os
import signal as _signal
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import HarnessError
from . import process
from .adapter import Runtime, RuntimeCallError, RuntimeTimeout, State, scaled
from .cgroups import named_cgroups, own_cgroups, remove_empty_cgroups
from .definition import DEFAULT_TIMEOUT
from .process import Exit


class Container:
    """A container on a runtime, with its stdio in files under ``workdir``, always cleaned up.

    ``create()`` leaves it created; ``start()`` runs the user program; ``wait()`` waits for its
    process to end; ``cleanup()`` (also on ``__exit__``) kills it, waits for its process to end and
    deletes it if it still exists, and reaps its process.
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
        #: this object saw the container go (its delete succeeded) or never come (a failed
        #: create after which ``state`` did not know it): cleanup need not ask ``state`` again
        self._gone = False
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
            journal.record(
                "container",
                self.id,
                runtime=ref,
                state_root=str(self.runtime.state_root),
                bundle=str(self.bundle),
                **details,
            )

    def create(
        self, *, stdin: Any = subprocess.DEVNULL, timeout: float | None = None, extra: tuple[str, ...] = ()
    ) -> None:
        """``create`` with stdio in files; ``extra`` are more create options (``--console-socket P``)."""
        self._journal()  # before: a run killed during create must still find it
        self._gone = False
        started = process.boot_ticks()
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
                self._gone = not self.created
                if not self.created:  # some runtimes leave the cgroup of a failed create
                    named = named_cgroups(self.id, self.bundle, self.runtime.definition.default_cgroups_parent)
                    removed = remove_empty_cgroups(named, timeout=1.0)
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
        self._pid_start = process.start_time(self.pid)
        if not process.made_since(self.pid, self._pid_start, started):
            # Not a process this create made (a runtime reporting a wrong pid): never signal it.
            self._pid_start = None
        self.cgroups = own_cgroups(self.pid, self.id) if self._pid_start is not None else []
        self._journal(pid=self.pid, pid_start=self._pid_start, cgroups=[str(p) for p in self.cgroups])

    def start(self, *, timeout: float | None = None) -> None:
        self._gone = False
        self.runtime.start(self.id, timeout=timeout)

    def run(self, *, timeout: float | None = None) -> Exit:
        """``run``: create, start, wait and delete in one runtime command, stdio in files; how
        the container's process ended as the runtime reports it (its exit code). A container run
        to a zero exit is gone (the runtime deleted it); otherwise :meth:`cleanup` removes what
        is left."""
        self._journal()  # before: a run killed meanwhile must still find it
        self._gone = False
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            proc = self.runtime.run(self.id, self.bundle, stdout=out, stderr=err, timeout=timeout)
        self.exit = Exit(code=proc.returncode) if proc.returncode >= 0 else Exit(signal=-proc.returncode)
        if proc.returncode == 0 and self.runtime.journal is not None:
            self.runtime.journal.release("container", self.id)
        return self.exit

    def state(self) -> State:
        return self.runtime.state(self.id)

    def kill(self, sig: str | int = "TERM") -> None:
        self._gone = False
        self.runtime.kill(self.id, sig)

    def delete(self, *, force: bool = False) -> None:
        self._gone = False
        self.runtime.delete(self.id, force=force)
        self.created = False
        self._gone = True
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
        offsets = [0, self._stderr_offset]

        def copy() -> None:
            if stream:
                _copy_new(self.stdout_path, offsets, 0, stream[0])
                _copy_new(self.stderr_path, offsets, 1, stream[1])

        self.exit = process.wait(self.pid, self._pid_start, timeout, every=copy if stream else None)
        if self.exit is None:
            raise HarnessError(f"container {self.id} (pid {self.pid}) still running after {timeout:g} s")
        copy()
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
            if self.pid is not None and not process.alive(self.pid):
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
        # One this object created and did not delete is removed straight away: asking `state`
        # first would cost a runtime call per container. Whether it exists is asked when this
        # object never saw it created (unless it saw it go: its own delete succeeded, or
        # `state` did not know it after a failed create), and when that delete fails.
        if self.created or (not self._gone and self._exists()):
            self._stop_and_delete()
        self.created = False
        self.end_process()
        self.left_behind += [f"cgroup {p}" for p in remove_empty_cgroups(self.cgroups)]
        if self.runtime.journal is not None:
            self.runtime.journal.release("container", self.id)

    def _stop_and_delete(self) -> None:
        """Stop the container with the spec's operations, then delete it: ``kill KILL`` if its
        process may still run, a wait until that process has ended, then a plain ``delete`` of
        the stopped container.

        Not ``delete --force`` on a live container (no spec operation), and not ``delete`` of a
        ``created`` one: runc 1.1.5 then SIGKILLs its init (``runc init``, multi-threaded Go) and
        removes the container's cgroup as soon as the init's main thread is a zombie, while its
        other threads may still be exiting. On cgroup v2 that removal is tried once; it fails
        with EBUSY on a busy machine, and runc logs the error and exits 0 with the cgroup left
        behind. The wait here ends only when the whole thread group is gone (the status is
        collected, or the pidfd is readable). ``--force`` stays the fallback for a runtime
        whose plain delete refuses.
        """
        killed = False
        if self._may_run():
            try:
                self.runtime.kill(self.id, "KILL")
                killed = True
            except RuntimeCallError:
                pass  # it stopped meanwhile, or the runtime lost it: the delete below tells
        # Also when it ended by itself: a process whose main thread has exited looks ended (a
        # zombie) while its other threads still exit, and they hold its cgroup until they have.
        if self.exit is None and (killed or not self._may_run()):
            self._wait_stopped()
        try:
            self.runtime.delete(self.id)
            return
        except RuntimeCallError:
            if not self._exists():
                return
        try:
            self.runtime.delete(self.id, force=True)
        except RuntimeCallError:
            if self._exists():
                raise

    def _may_run(self) -> bool:
        """Whether the container's process may still be running (or be created, not started)."""
        if self.exit is not None:
            return False
        if self.pid is None or self._pid_start is None:
            return True  # not a process this object can watch: ask the runtime to kill it
        return process.alive(self.pid, self._pid_start)

    def _wait_stopped(self) -> None:
        """Wait until the container's process has ended (its status
        collected when it is our child), or the runtime reports it stopped when the process is
        not one this object can watch. A container that does not stop is left to the delete
        below to report."""
        limit = scaled(10.0)
        if self.pid is not None and self._pid_start is not None:
            self.exit = process.wait(self.pid, self._pid_start, limit)
            return

        def stopped() -> bool:
            try:
                return self.runtime.state(self.id, timeout=min(10.0, self.runtime.timeout)).status == "stopped"
            except RuntimeCallError:
                return True  # gone: nothing left to wait for

        process.until(stopped, limit)

    def end_process(self) -> None:
        """End the container's process if it outlived its container (the runtime lost track of
        it, or could not delete the container), only if it is still that very process; then
        collect its exit status and our other exited children."""
        self._kill_if_left_behind()
        self._reap()

    def _kill_if_left_behind(self) -> None:
        """End the container's process if it outlived its container (the runtime lost track of it)."""
        if self.pid is None or self._pid_start is None or not process.alive(self.pid, self._pid_start):
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
        process.until(lambda: not process.alive(self.pid), 5.0)

    def _exists(self) -> bool:
        try:
            self.runtime.state(self.id, timeout=min(10.0, self.runtime.timeout))
            return True
        except RuntimeCallError:
            return False

    def _reap(self) -> None:
        """Collect our exited children: the container's init (once reparented to us) and helpers."""
        if self.pid is not None and self.exit is None and process.pending(self.pid):
            process.until(self._try_reap_into_exit, 5.0)
        process.reap_orphans()

    def _try_reap_into_exit(self) -> bool:
        status = process.collect(self.pid)
        if status is not None:
            self.exit = status
            return True
        return not process.alive(self.pid)


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
