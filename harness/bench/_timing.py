"""Timing one process without a shell in the way: the monotonic clock around fork+exec+exit.

:func:`timed` starts ``argv`` (stdio to files or /dev/null, never pipes we would have to drain),
and waits on a pidfd, so it wakes the moment the process exits (no polling interval is added to
the measurement). While it waits it also reaps the processes the harness adopted as child
subreaper (a gVisor sandbox, a container's init): some runtimes wait in ``delete`` until such a
process is gone. A SIGCHLD handler with a wakeup fd makes that reaping prompt too, so it adds no
polling delay either. The clock is ``time.perf_counter_ns`` (CLOCK_MONOTONIC); the rusage of
the process (user, system time) comes from ``wait4``.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from harness.runtime import process


@contextlib.contextmanager
def not_subreaper() -> Iterator[None]:
    """Run the block with this process not a child subreaper (restored after).

    The harness is a child subreaper so it can wait for containers it ``create``d. A runtime's
    ``run`` does not need that, and is slower when its parent is one (runc 1.1.5 ``run``: about
    2.6 ms, 7%, measured interleaved on this machine), so ``run`` is timed as a shell would run
    it; hyperfine's parent is no subreaper either.
    """
    from harness import _linux

    was = _linux.is_child_subreaper()
    if was:
        _linux.set_child_subreaper(False)
    try:
        yield
    finally:
        if was:
            _linux.set_child_subreaper(True)


class TimedFailure(Exception):
    def __init__(self, argv: list[str], message: str):
        self.argv = argv
        super().__init__(f"{' '.join(argv)}: {message}")


@dataclass
class Timed:
    seconds: float
    status: int  # exit code, or 128 + signal
    user: float
    system: float
    start_ns: int = 0  # perf_counter_ns just before fork
    end_ns: int = 0  # perf_counter_ns once its exit was reaped


class _Wakeup:
    """A SIGCHLD handler with a wakeup fd: select() on it wakes when any child exits."""

    def __init__(self) -> None:
        self.fd = -1
        self._old: Any = None
        self._old_fd = -1
        self._w = -1

    def __enter__(self) -> _Wakeup:
        if threading.current_thread() is not threading.main_thread():
            return self
        r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.fd, self._w = r, w
        self._old = signal.signal(signal.SIGCHLD, lambda *_: None)
        self._old_fd = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
        return self

    def drain(self) -> None:
        if self.fd >= 0:
            try:
                while os.read(self.fd, 512):
                    pass
            except BlockingIOError:
                pass

    def __exit__(self, *exc: object) -> None:
        if self.fd < 0:
            return
        signal.set_wakeup_fd(self._old_fd)
        signal.signal(signal.SIGCHLD, self._old if self._old is not None else signal.SIG_DFL)
        os.close(self.fd)
        os.close(self._w)
        self.fd = -1


WAKEUP = _Wakeup()


def spawn(
    argv: list[str],
    *,
    stdout: Any = subprocess.DEVNULL,
    stderr: Any = subprocess.DEVNULL,
    preexec: Callable[[], None] | None = None,
) -> subprocess.Popen:
    return subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, preexec_fn=preexec, close_fds=True
    )


def wait_all(procs: list[subprocess.Popen], timeout: float) -> list[tuple[int, int, Any]]:
    """Wait for every process (pidfds), reaping adopted orphans meanwhile; returns
    ``(end_ns, status, rusage)`` per process, in order. On timeout all are killed."""
    fds = {os.pidfd_open(p.pid): i for i, p in enumerate(procs)}
    out: list[Any] = [None] * len(procs)
    deadline = time.monotonic() + timeout
    try:
        while fds:
            watch = list(fds) + ([WAKEUP.fd] if WAKEUP.fd >= 0 else [])
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                for p in procs:
                    if out[procs.index(p)] is None:
                        p.kill()
                raise TimedFailure(_argv(procs[0]), f"no exit within {timeout:g} s (killed)")
            ready, _, _ = select.select(watch, [], [], min(remaining, 0.05 if WAKEUP.fd >= 0 else 0.002))
            for fd in ready:
                if fd in fds:
                    i = fds.pop(fd)
                    _, status, usage = os.wait4(procs[i].pid, 0)
                    end = time.perf_counter_ns()
                    os.close(fd)
                    code = os.waitstatus_to_exitcode(status)
                    procs[i].returncode = code
                    out[i] = (end, code if code >= 0 else 128 - code, usage)
            WAKEUP.drain()
            # reap adopted children (not the ones we wait for: their pidfds stay valid until wait4)
            # (one of ours first in line stops it: its pidfd wakes us next)
            process.reap_orphans(keep={p.pid for i, p in enumerate(procs) if out[i] is None})
    finally:
        for fd in fds:
            os.close(fd)
    return out


def timed(
    argv: list[str],
    *,
    stdout: Any = subprocess.DEVNULL,
    stderr: Any = subprocess.DEVNULL,
    preexec: Callable[[], None] | None = None,
    timeout: float = 60.0,
) -> Timed:
    """Run ``argv`` once; wall time from just before fork to just after its exit is reaped."""
    t0 = time.perf_counter_ns()
    proc = spawn(argv, stdout=stdout, stderr=stderr, preexec=preexec)
    ((end, status, usage),) = wait_all([proc], timeout)
    return Timed((end - t0) / 1e9, status, usage.ru_utime, usage.ru_stime, t0, end)


class Timer:
    """A launcher for the adapter (:class:`harness.runtime.process.Launcher`) that times each
    runtime process as :func:`timed` does: ``with rt.launched_by(timer): container.create()``
    runs the adapter's real ``create`` (its checks on the pid the runtime reports, journal and
    all) and leaves the runtime process's time in ``timer.last`` (every one timed since
    ``timer.calls`` was last cleared in ``timer.calls``).

    Output the adapter asks for as a pipe goes to an anonymous file (memfd) instead, read once
    the process has exited: a pipe would have to be drained while the clock runs."""

    def __init__(self) -> None:
        self.calls: list[Timed] = []

    @property
    def last(self) -> Timed | None:
        return self.calls[-1] if self.calls else None

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
        captured: dict[str, Any] = {}

        def unpiped(stream: Any, name: str) -> Any:
            if stream is not subprocess.PIPE:
                return stream
            captured[name] = os.fdopen(os.memfd_create(f"harness-{name}", os.MFD_CLOEXEC), "w+b")
            return captured[name]

        out, err = unpiped(stdout, "stdout"), unpiped(stderr, "stderr")
        try:
            t0 = time.perf_counter_ns()
            proc = subprocess.Popen(argv, stdin=stdin, stdout=out, stderr=err, preexec_fn=preexec, close_fds=True)
            try:
                ((end, status, usage),) = wait_all([proc], timeout)
            except TimedFailure:
                raise process.Timeout(*(_read(captured.get(n)) for n in ("stdout", "stderr"))) from None
            self.calls.append(Timed((end - t0) / 1e9, status, usage.ru_utime, usage.ru_stime, t0, end))
            return proc.returncode, _read(captured.get("stdout")), _read(captured.get("stderr"))
        finally:
            for f in captured.values():
                f.close()


def _read(f: Any) -> bytes | None:
    if f is None:
        return None
    f.seek(0)
    return f.read()


def _argv(proc: subprocess.Popen) -> list[str]:
    """A started process's command line as strings, for an error message."""
    args = proc.args
    if isinstance(args, (str, bytes, os.PathLike)):
        return [os.fsdecode(args)]
    return [os.fsdecode(a) for a in args]
