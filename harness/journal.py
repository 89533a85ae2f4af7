"""The run journal: what a run created on the host, so that nothing is left behind.

Every run (a pytest session or xdist worker, a ``harness run``, a ``harness diff``) appends to
its own file ``<state base>/journal/<run>.jsonl`` a line *before* it creates something
(a container, a state root, a mount, a folder) and a ``released`` line once it has removed it.
The first line names the owner process (pid and start time). ``harness cleanup`` reads the
journals whose owner is gone (killed with SIGKILL, crashed, lost power) and removes what was
never released: containers (force-deleted with the runtime that made them, and their process
killed if it outlived them), mounts, folders; then the journal itself.

Lines are appended with O_APPEND in one write each, so a journal is never half a line short
of what happened, whatever kills the writer.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .runtime.process import alive, start_time


def journal_dir() -> Path:
    from .runtime import default_state_root_base

    return default_state_root_base() / "journal"


class Journal:
    """The journal of one run. ``record`` before creating, ``release`` after removing."""

    def __init__(self, name: str | None = None, directory: Path | None = None):
        self.directory = Path(directory) if directory else journal_dir()
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.name = name or f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.path = self.directory / f"{self.name}.jsonl"
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        self._write({"kind": "owner", "pid": os.getpid(), "start": start_time(os.getpid()), "time": time.time()})

    def _write(self, entry: dict[str, Any]) -> None:
        os.write(self._fd, (json.dumps(entry, sort_keys=True) + "\n").encode())

    def record(self, kind: str, key: str, **details: Any) -> None:
        self._write({"kind": kind, "key": key, **details})

    def release(self, kind: str, key: str) -> None:
        self._write({"kind": "released", "of": kind, "key": key})

    def close(self, *, remove: bool = True) -> None:
        """End the run; the file is removed when everything it recorded was released."""
        if self._fd < 0:
            return
        os.close(self._fd)
        self._fd = -1
        if remove and not read(self.path).pending:
            self.path.unlink(missing_ok=True)


@dataclass
class Entries:
    owner: dict[str, Any]
    pending: list[dict[str, Any]] = field(default_factory=list)

    @property
    def owner_alive(self) -> bool:
        return bool(self.owner) and alive(self.owner["pid"], self.owner.get("start"))


def read(path: Path) -> Entries:
    """The owner and the entries not released, in the order they were recorded."""
    owner: dict[str, Any] = {}
    pending: dict[tuple[str, str], dict[str, Any]] = {}
    for line in Path(path).read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a crash: what it recorded was not created yet
        if entry.get("kind") == "owner":
            owner = entry
        elif entry.get("kind") == "released":
            pending.pop((entry.get("of"), entry.get("key")), None)
        else:
            pending[(entry.get("kind"), entry.get("key"))] = entry
    return Entries(owner, list(pending.values()))


@dataclass
class CleanupReport:
    removed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # journals of runs still going
    errors: list[str] = field(default_factory=list)


def cleanup(
    directory: Path | None = None, *, dry_run: bool = False, include_live: bool = False, run: str = ""
) -> CleanupReport:
    """Remove what dead runs left behind, newest entries first (containers before their state roots).
    ``run``: only the journals of that run (its HARNESS_RUN_ID: ``<run>-<worker>.jsonl``)."""
    directory = Path(directory) if directory else journal_dir()
    report = CleanupReport()
    if not os.access(directory, os.F_OK) and os.access(directory.parent, os.X_OK):
        return report  # no journals: nothing ran here
    if not os.access(directory, os.R_OK | os.X_OK):
        try:
            owner = f"uid {directory.stat().st_uid}"
        except OSError:
            owner = "another user"
        report.errors.append(
            f"{directory}: cannot read the run journals (permission denied: they belong to {owner}, this is uid {os.geteuid()}); "
            "run harness cleanup as the user who ran the harness (root for containers)"
        )
        return report
    for path in sorted(directory.glob(f"{run}-*.jsonl" if run else "*.jsonl")):
        entries = read(path)
        if entries.owner_alive and not include_live:
            report.skipped.append(f"{path.name}: run {entries.owner.get('pid')} is still going")
            continue
        failed = False
        for entry in reversed(entries.pending):
            what = f"{entry['kind']} {entry['key']}"
            if dry_run:
                report.removed.append(f"would remove {what}")
                continue
            try:
                left = remove_entry(entry)
            except PermissionError as err:
                failed = True
                report.errors.append(
                    f"{what}: cannot remove it, permission denied ({err.filename or err}); run harness cleanup as root"
                )
            except Exception as err:
                failed = True
                report.errors.append(f"{what}: {err}")
            else:
                if left:
                    failed = True
                    report.errors += [f"{what}: {why}" for why in left]
                else:
                    report.removed.append(what)
        if not dry_run and not failed:
            path.unlink(missing_ok=True)
    return report


def remove_entry(entry: dict[str, Any]) -> list[str]:
    """Remove what one entry recorded (a container with the runtime that made it, a process if it
    is still that very one, a mount, a folder); returns what is still there, each with why (nothing
    is made here: cleanup must not create what it is meant to remove)."""
    kind = entry["kind"]
    if kind == "container":
        return _remove_container(entry)
    if kind == "process":
        _kill(entry["pid"], entry.get("start"))
        return [] if not alive(entry["pid"], entry.get("start")) else [f"process {entry['pid']} survived SIGKILL"]
    if kind == "call":
        return _end_call(entry["argv"])
    if kind == "mount":
        from . import _linux, host

        if entry["key"] in {m.mount_point for m in host.mounts()}:
            _linux.umount2(entry["key"], _linux.MNT_DETACH)
        return []
    if kind in ("folder", "state_root"):
        return _remove_tree(Path(entry["key"]))
    raise ValueError(f"unknown journal entry kind {kind!r}")


def _remove_tree(top: Path) -> list[str]:
    """rmtree, saying which path could not be removed and why (a mount inside, permissions)."""
    problems: list[str] = []

    def failed(_func: Any, path: str, exc: BaseException) -> None:
        if isinstance(exc, FileNotFoundError):
            return
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        problems.append(f"cannot remove {path}: {why}")

    if sys.version_info >= (3, 12):
        shutil.rmtree(top, onexc=failed)
    else:
        shutil.rmtree(top, onerror=lambda f, p, info: failed(f, p, info[1]))
    return problems


def _remove_container(entry: dict[str, Any]) -> list[str]:
    from .errors import HarnessError
    from .runtime import Runtime, RuntimeCallError, named_cgroups, remove_empty_cgroups, resolve

    cid = entry["key"]
    state_root = Path(entry["state_root"])
    problems = []
    # A runtime keeps its containers in its state root: without one there is nothing to ask it
    # about, and asking would make the folder again (runc creates its --root on any command).
    if state_root.is_dir():
        try:
            rt: Runtime | None = Runtime(resolve(entry["runtime"]), state_root)
        except HarnessError as err:
            rt = None
            problems.append(f"cannot ask its runtime to delete it: {err}")
        if rt is not None:
            try:
                rt.state(cid, timeout=10)
                exists = True
            except RuntimeCallError:
                exists = False
            if exists:
                try:
                    rt.delete(cid, force=True, timeout=30)
                except RuntimeCallError:
                    try:
                        rt.kill(cid, "KILL", timeout=10)
                    except RuntimeCallError:
                        pass
                    try:
                        rt.delete(cid, force=True, timeout=30)
                    except RuntimeCallError as err:
                        problems.append(f"{rt.name} could not delete it: {err}")
    if entry.get("pid"):
        _kill(entry["pid"], entry.get("pid_start"))
        if alive(entry["pid"], entry.get("pid_start")):
            problems.append(f"its process {entry['pid']} survived SIGKILL")
    # the recorded ones, and (for a create that never finished) those named after the id: at
    # /<id>, at the bundle's cgroupsPath and under the runtime's default parent
    try:
        parent = resolve(entry["runtime"]).default_cgroups_parent
    except HarnessError:
        parent = None
    bundle = Path(entry["bundle"]) if entry.get("bundle") else None
    cgroups = [Path(p) for p in entry.get("cgroups", [])] + named_cgroups(cid, bundle, parent)
    remove_empty_cgroups(cgroups)
    for folder in cgroups:
        if folder.is_dir():
            try:
                procs = (folder / "cgroup.procs").read_text().split()
            except OSError:
                procs = []
            why = f"processes {', '.join(procs)} are still in it" if procs else "it has cgroups inside or is busy"
            problems.append(f"cgroup {folder} is still there: {why}")
    return problems


def calls(argv: list[str]) -> list[tuple[int, int | None]]:
    """The processes (pid, start time) whose command line ends with ``argv``: a runtime call
    the journal recorded (its arguments name the run's own state root and container id; the
    program may show as its interpreter and script)."""
    want = [a.encode() for a in argv]
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmdline = f.read().split(b"\0")[:-1]
        except OSError:
            continue
        if want and cmdline[-len(want) :] == want and len(cmdline) > len(want):
            found.append((int(name), start_time(int(name))))
    return found


def _end_call(argv: list[str]) -> list[str]:
    """SIGKILL a runtime call (create, run) that outlived the run that made it."""
    left = []
    for pid, start in calls(argv):
        _kill(pid, start)
        if alive(pid, start):
            left.append(f"process {pid} ({' '.join(argv)}) survived SIGKILL")
    return left


def _kill(pid: int, start: int | None) -> None:
    """SIGKILL a process the journal recorded, only if it is still that very process."""
    if start is None or not alive(pid, start):
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 5
    while alive(pid, start) and time.monotonic() < deadline:
        time.sleep(0.01)
