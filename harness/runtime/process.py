"""Processes: who a pid is, reaping, waiting. The one place that reads ``/proc/PID/stat`` and
collects exit statuses.

A pid alone does not name a process: the kernel reuses pids. A process is its pid *and* its
start time (``/proc/PID/stat`` field 22, clock ticks since boot); :func:`alive` with a start
time is true only for that very process, so nothing here signals or waits for a stranger that
got a reused pid.

The harness is a child subreaper (``prctl``), so it adopts what runtimes leave running: a
container's init once ``create`` returns, a gVisor sandbox. Some runtimes wait in ``delete``
until such a process is gone, so whoever waits for a runtime process also reaps the others
(:func:`reap_orphans`). A status reaped that way is kept here, by pid, until its owner asks for
it (:func:`collect`): a container's exit status is never lost to someone else's reaping.
"""

from __future__ import annotations

import os
import select
import selectors
import subprocess
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class Stat:
    """What ``/proc/PID/stat`` says of a process (the fields the harness uses)."""

    pid: int
    comm: str
    state: str  # R, S, D, Z (zombie), X (dead), ...
    ppid: int
    start: int  # start time, clock ticks since boot

    @property
    def ended(self) -> bool:
        """Exited (a zombie not yet reaped, or dead)."""
        return self.state in ("Z", "X")


def stat(pid: int | None) -> Stat | None:
    """The process's stat, or None if there is no such process (or no pid)."""
    if pid is None:
        return None
    try:
        # os.open and os.read, not pathlib: this runs for every process on the host in the
        # traces scans and in every poll of a process's life (a third of the time per call)
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
        try:
            text = os.read(fd, 4096).decode()
        finally:
            os.close(fd)
        # comm is in parentheses and may itself contain spaces and parentheses: split at the last ")"
        fields = text.rsplit(")", 1)[1].split()
        return Stat(pid, text[text.index("(") + 1 : text.rindex(")")], fields[0], int(fields[1]), int(fields[19]))
    except (OSError, IndexError, ValueError):
        return None


def start_time(pid: int | None) -> int | None:
    """A process's start time in clock ticks since boot, or None if it does not exist."""
    s = stat(pid)
    return s.start if s else None


def alive(pid: int | None, start: int | None = None) -> bool:
    """The process exists and has not exited; with ``start``, it is also that very process (not
    a reused pid)."""
    s = stat(pid)
    return s is not None and not s.ended and (start is None or s.start == start)


def is_child(pid: int | None) -> bool:
    """Whether ``pid`` is a child of this process (its status is ours to collect)."""
    s = stat(pid)
    return s is not None and s.ppid == os.getpid()


def ancestors() -> set[int]:
    """This process and its ancestors up to (not including) init."""
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        s = stat(pid)
        if s is None:
            break
        pid = s.ppid
    return pids


def boot_ticks() -> int:
    """Now, in the clock ticks since boot that start times use."""
    return int(float(Path("/proc/uptime").read_text().split()[0]) * os.sysconf("SC_CLK_TCK"))


def made_since(pid: int | None, start: int | None, ticks: int) -> bool:
    """Whether ``pid`` (started at ``start``) started at or after ``ticks`` and is not this process
    or one of its ancestors: a process a call we made since ``ticks`` can have made."""
    return pid is not None and start is not None and start >= ticks - 1 and pid not in ancestors()


# --------------------------------------------------------------------------------------------
# Exit statuses


@dataclass
class Exit:
    """How a process ended: ``code`` (exit status) or ``signal``; both None if unknown."""

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


#: Wait statuses of children reaped while waiting for something else, by pid, until collected.
_reaped: dict[int, int] = {}


def reap_orphans(keep: Collection[int] = ()) -> None:
    """Reap exited children without blocking (what the harness adopted as subreaper), keeping
    their statuses for :func:`collect`.

    Stops at a child in ``keep`` (a process whose status its waiter collects itself: a Popen,
    a pidfd being watched): children are seen in order, and it is first in line.
    """
    while True:
        try:
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        if info is None or info.si_pid in keep:
            return
        try:
            pid, status = os.waitpid(info.si_pid, os.WNOHANG)
        except ChildProcessError:
            continue
        if pid:
            _reaped[pid] = status


def collect(pid: int | None) -> Exit | None:
    """The exit of our child ``pid`` if it has ended (reaped now, or earlier by
    :func:`reap_orphans`); None while it runs or when it is not our child."""
    if pid is None:
        return None
    if pid in _reaped:
        return Exit.from_wait_status(_reaped.pop(pid))
    try:
        got, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    return Exit.from_wait_status(status) if got else None


def pending(pid: int | None) -> bool:
    """Whether an exit status of ``pid`` waits to be collected (reaped already, or our child)."""
    return pid is not None and (pid in _reaped or is_child(pid))


# --------------------------------------------------------------------------------------------
# Waiting


def until(predicate: Callable[[], Any], timeout: float) -> bool:
    """Poll ``predicate`` with a growing interval (2 ms to 50 ms) until it is true or ``timeout``
    seconds passed; whether it became true."""
    deadline = time.monotonic() + timeout
    delay = 0.002
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
    return True


def wait(pid: int, start: int | None, timeout: float, *, every: Callable[[], None] | None = None) -> Exit | None:
    """Wait for process ``pid`` (started at ``start``) to end, at most ``timeout`` seconds.

    Its status is known when it is our child; a process that ended but is not our child gives
    ``Exit()`` (unknown status). None on timeout. Wakes when the process ends (a pidfd); with
    ``every`` (called each turn, e.g. to copy output as it grows) also every 50 ms.
    """
    deadline = time.monotonic() + timeout
    try:
        pidfd: int | None = os.pidfd_open(pid)
    except ProcessLookupError:
        pidfd = None
    try:
        while True:
            if every is not None:
                every()
            end = collect(pid)
            if end is None and not alive(pid, start) and not is_child(pid):
                end = Exit()  # ended, but not our child: the status is not ours to read
            if end is not None:
                return end
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            select.select(
                [pidfd] if pidfd is not None else [],
                [],
                [],
                min(remaining, 0.05 if every is not None or pidfd is None else remaining),
            )
    finally:
        if pidfd is not None:
            os.close(pidfd)


class Timeout(Exception):
    """A process did not end within its deadline; it was killed. Carries what it wrote."""

    def __init__(self, stdout: Any, stderr: Any):
        super().__init__("timeout")
        self.stdout = stdout
        self.stderr = stderr


def communicate(proc: subprocess.Popen, timeout: float) -> tuple[Any, Any]:
    """Wait for ``proc`` with a deadline, reading its pipes and reaping our other exited
    children meanwhile (see the module's doc); on timeout kill it and raise :class:`Timeout`.

    It wakes when the process writes, closes its pipes or ends (a pidfd), not on a timer; the
    timer (2 ms, growing to 20 ms) only paces the reaping of other children while it runs."""
    if proc.stdin is not None:  # a stdin pipe: Popen.communicate closes it for us
        return _communicate_polling(proc, timeout)
    try:
        pidfd = os.pidfd_open(proc.pid)
    except OSError:  # a kernel without pidfds
        return _communicate_polling(proc, timeout)
    deadline = time.monotonic() + timeout
    #: what each pipe (stdout, stderr) wrote so far; None: not a pipe
    chunks: list[list[bytes] | None] = [None, None]
    sel = selectors.DefaultSelector()
    try:
        for i, pipe in enumerate((proc.stdout, proc.stderr)):
            if pipe is not None:
                chunks[i] = []
                sel.register(pipe.fileno(), selectors.EVENT_READ, chunks[i])
        sel.register(pidfd, selectors.EVENT_READ)
        open_fds, ended = sum(c is not None for c in chunks), False
        tick = 0.002
        next_reap = time.monotonic() + tick
        while open_fds or not ended:
            now = time.monotonic()
            if now >= deadline:
                proc.kill()
                out, err = _drain_killed(proc)
                raise Timeout(*_joined(chunks, out, err))
            if now >= next_reap:
                reap_orphans(keep=(proc.pid,))
                tick = min(tick * 2, 0.02)
                next_reap = now + tick
            for key, _ in sel.select(min(next_reap, deadline) - now):
                if key.fd == pidfd:
                    ended = True
                    sel.unregister(pidfd)
                    continue
                data = os.read(key.fd, 65536)
                if data:
                    key.data.append(data)
                else:
                    sel.unregister(key.fd)
                    open_fds -= 1
    finally:
        sel.close()
        os.close(pidfd)
    out, err = _joined(chunks)
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()
    proc.wait()  # it has ended: this reaps it without waiting
    return out, err


def _joined(chunks: list[list[bytes] | None], *more: Any) -> tuple[Any, Any]:
    """What was read from each pipe (None for one that is not a pipe), with ``more`` after it."""
    got: list[bytes | None] = []
    for i, parts in enumerate(chunks):
        extra = more[i] if i < len(more) else None
        got.append(None if parts is None else b"".join(parts) + (extra or b""))
    return got[0], got[1]


def _communicate_polling(proc: subprocess.Popen, timeout: float) -> tuple[Any, Any]:
    """:func:`communicate` without a pidfd: Popen.communicate in growing ticks."""
    deadline = time.monotonic() + timeout
    tick = 0.002
    while True:
        try:
            return proc.communicate(timeout=min(tick, max(deadline - time.monotonic(), 0.001)))
        except subprocess.TimeoutExpired:
            pass
        reap_orphans(keep=(proc.pid,))
        if time.monotonic() >= deadline:
            proc.kill()
            raise Timeout(*_drain_killed(proc))
        tick = min(tick * 2, 0.02)


#: How long to read a killed process's pipes before giving up on their end of file.
KILLED_PIPE_GRACE = 2.0


def _drain_killed(proc: subprocess.Popen) -> tuple[Any, Any]:
    """What a process just killed with SIGKILL wrote. Its pipes reach end of file only when
    every holder has closed them: a container process the runtime started may hold them open
    indefinitely, so read them for a short grace period, then take what was read and close them
    (waiting for end of file there would hang the whole run on one timed-out call)."""
    try:
        return proc.communicate(timeout=KILLED_PIPE_GRACE)
    except subprocess.TimeoutExpired as held:
        proc.wait()
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
        return held.output, held.stderr


class Launcher(Protocol):
    """How one runtime process is started and waited for. :func:`launch` is the adapter's;
    the bench's timer is another (it times the process from just before fork to its reaped
    exit), so the bench times the adapter's own calls (``Runtime.launched_by``)."""

    def __call__(
        self,
        argv: list[str],
        *,
        stdin: Any,
        stdout: Any,
        stderr: Any,
        preexec: Callable[[], None] | None,
        timeout: float,
    ) -> tuple[int, Any, Any]:
        """Run ``argv`` with this stdio (``subprocess.PIPE`` for output to return) and
        ``preexec`` between fork and exec; its exit code (negative: killed by that signal) and
        what it wrote to the pipes. Raises ``OSError`` if it cannot be executed,
        ``subprocess.SubprocessError`` if ``preexec`` failed, :class:`Timeout` if it did not
        end within ``timeout`` seconds (it was killed)."""
        ...


def launch(
    argv: list[str],
    *,
    stdin: Any,
    stdout: Any,
    stderr: Any,
    preexec: Callable[[], None] | None,
    timeout: float,
) -> tuple[int, Any, Any]:
    """The adapter's :class:`Launcher`: Popen, then :func:`communicate`."""
    proc = subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=stderr, preexec_fn=preexec)
    out, err = communicate(proc, timeout)
    return proc.returncode, out, err
