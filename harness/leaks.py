"""What a runtime left on the host after its containers were deleted: leaks are findings.

runtime.md ("delete"): deleting a container MUST delete the resources that were created during
the create step. After a case's containers are deleted, :func:`find` looks on the host for what
still carries the case's names: mounts of the harness's own mount namespace at or under a
bundle, cgroup folders on any cgroup mount whose name holds one of the case's tokens (container
ids, and the names cases derive from them, like ``oci-harness-<id>`` cgroups paths) with all the
folders inside them (``oci-harness-<id>/inner`` of a nested cgroupsPath), processes
whose root or working folder is inside a bundle, and entries of the runtime's state root named
after a container. Only what carries the case's own tokens or bundle paths is attributed to it:
other runs on the machine create things at the same moment. :func:`remove` then takes away what
was found (detaching mounts, removing empty cgroup folders deepest first, killing processes,
deleting state entries), so a leak does not spill into later cases.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from . import _linux, host

#: how deep folders are looked at below a cgroup mount point and below the harness's own
#: cgroup on it (where a relative cgroupsPath lands): runtimes nest their groups a few levels
CGROUP_DEPTH = 3


@dataclass(frozen=True)
class Leak:
    kind: str  # "mount", "cgroup", "process", "state"
    what: str  # the mount point, the folder, "pid N (cmdline)", the state entry

    def __str__(self) -> str:
        return f"{self.kind} {self.what}"


def under(path: str, roots: Iterable[str]) -> bool:
    """Whether ``path`` is one of ``roots`` or inside one (by its text: no symlink resolved)."""
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def mount_points(bundles: list[str]) -> set[str]:
    """Mount points of our mount namespace at or under one of the bundle folders."""
    return {m.mount_point for m in host.mounts() if under(m.mount_point, bundles)}


#: how deep the folders below a folder named after the case are taken with it
SUBTREE_DEPTH = 16


def cgroup_folders(tokens: list[str]) -> list[Path]:
    """Folders on every cgroup mount whose name contains one of ``tokens``, and every folder
    below such a folder, deepest first.

    A folder named after the case is the case's with everything in it: a nested cgroupsPath
    ``oci-harness-<id>/inner`` puts the container's own group in a folder whose name carries
    no token, and the parent cannot be removed while that child is there."""
    found: set[Path] = set()
    starts: set[str] = set()
    if not tokens:
        return []
    named = re.compile("|".join(re.escape(t) for t in tokens)).search
    own = _own_cgroup_paths()
    for m in host.mounts():
        if m.fstype not in ("cgroup", "cgroup2"):
            continue
        starts.add(m.mount_point)
        key = "" if m.fstype == "cgroup2" else next((o for o in m.super_options if o in own), "-")
        if own.get(key, "/") != "/" and m.root == "/":
            starts.add(m.mount_point + own[key])
    for start in starts:
        stack = [(start, 0)]
        while stack:
            folder, depth = stack.pop()
            for e in _folders_in(folder):
                if named(e.name):
                    found.add(Path(e.path))
                    found.update(_subfolders(Path(e.path)))
                elif depth + 1 < CGROUP_DEPTH and _may_hold_folders(e):
                    stack.append((e.path, depth + 1))
    return sorted(found, key=lambda p: -len(p.parts))


def _folders_in(folder: str) -> list[os.DirEntry[str]]:
    """The folders in ``folder`` (none if it cannot be listed); a cgroup folder is mostly
    control files, told apart by the listing's file types without a ``stat`` each."""
    try:
        with os.scandir(folder) as it:
            entries = list(it)
    except OSError:  # gone meanwhile
        return []
    found = []
    for e in entries:  # an entry whose type is unknown and gone before its stat is skipped
        try:
            if e.is_dir(follow_symlinks=False):
                found.append(e)
        except OSError:
            continue
    return found


def _may_hold_folders(entry: os.DirEntry[str]) -> bool:
    """Whether a cgroup folder may have folders in it. A cgroup file system (kernfs) counts a
    folder's subfolders in its link count (2 + subfolders), so a leaf cgroup, the most of
    them, is not listed (a listing of its 15-30 control files costs several times a ``stat``).
    A file system that does not count them (a link count below 2) is listed all the same."""
    try:
        return entry.stat(follow_symlinks=False).st_nlink != 2
    except OSError:
        return True


def _subfolders(top: Path) -> list[Path]:
    """Every folder below ``top`` (not following symlinks), down to ``SUBTREE_DEPTH``."""
    found = []
    stack = [(top, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for e in entries:
            try:
                if e.is_dir(follow_symlinks=False):
                    found.append(Path(e.path))
                    if depth + 1 < SUBTREE_DEPTH:
                        stack.append((Path(e.path), depth + 1))
            except OSError:
                continue
    return found


def _own_cgroup_paths() -> dict[str, str]:
    """This process's cgroup per v1 controller (and "" for v2), from /proc/self/cgroup."""
    paths = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return {}
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if not controllers:
            paths[""] = path
        for c in controllers.split(","):
            if c:
                paths[c] = path
    return paths


def processes(bundles: list[str], among: Iterable[int] | None = None) -> list[tuple[int, str]]:
    """Processes (not us) whose root or working folder is inside one of the bundles, or whose
    command line names one as its bundle (``--bundle B``, ``--bundle=B``): a sandboxing runtime's
    helpers (runsc's sandbox and gofer) keep neither their root nor their cwd in the bundle.

    ``among``: the pids to look at (:func:`watched_pids`); every process on the host if None."""
    found = []
    me = os.getpid()
    for pid in _every_pid() if among is None else among:
        if pid == me:
            continue
        try:
            raw = _read(f"/proc/{pid}/cmdline")
        except OSError:
            raw = b""
        argv = raw.split(b"\0")
        if b"--bundle" in raw and _names_bundle(argv, bundles):
            found.append((pid, _command(argv)))
            continue
        for link in ("root", "cwd"):
            try:
                target = os.readlink(f"/proc/{pid}/{link}")
            except OSError:
                continue
            if under(target, bundles):
                found.append((pid, _command(argv)))
                break
    return found


def _command(argv: list[bytes]) -> str:
    return b" ".join(argv).decode(errors="replace").strip() or "?"


def _read(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        parts = []
        while chunk := os.read(fd, 65536):
            parts.append(chunk)
        return b"".join(parts)
    finally:
        os.close(fd)


def _every_pid() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def watched_pids() -> list[int]:
    """The processes to look at for what a case's runtime calls left running: this process's
    :func:`descendants` when it is a child subreaper (as a harness session is); otherwise, or
    where the kernel does not list children, every process on the host."""
    found = descendants() if _linux.is_child_subreaper() else None
    return _every_pid() if found is None else found


def descendants(pid: int | None = None) -> list[int] | None:
    """Every descendant of ``pid`` (default: this process), from ``/proc/PID/task/TID/children``;
    None where the kernel does not list children (then look at every process).

    The harness is a child subreaper (:mod:`harness.runtime.process`): whatever a runtime call
    started, and whatever those processes started, stays its descendant however it was
    orphaned (daemonized, double-forked, its runtime gone), until reaped. So a process a case's
    runtime left running is among them, and other runs' processes, which cannot carry the
    case's bundles anyway, are not looked at."""
    top = os.getpid() if pid is None else pid
    if not os.path.exists(f"/proc/{top}/task/{top}/children"):
        return None
    found: list[int] = []
    stack = [top]
    seen = {top}
    while stack:
        parent = stack.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                kids = _read(f"/proc/{parent}/task/{tid}/children").split()
            except OSError:
                continue
            for kid in map(int, kids):
                if kid not in seen:
                    seen.add(kid)
                    found.append(kid)
                    stack.append(kid)
    return found


def _names_bundle(argv: list[bytes], bundles: list[str]) -> bool:
    """Whether a command line gives one of ``bundles`` as its ``--bundle``."""
    args = [a.decode(errors="replace") for a in argv]
    for i, arg in enumerate(args):
        value = arg.removeprefix("--bundle=") if arg.startswith("--bundle=") else None
        if value is None and arg == "--bundle" and i + 1 < len(args):
            value = args[i + 1]
        if value is not None and os.path.realpath(value) in bundles:
            return True
    return False


def state_entries(state_root: Path, ids: list[str]) -> list[Path]:
    try:
        names = os.listdir(state_root)
    except OSError:
        return []
    return [state_root / n for n in names if any(i in n for i in ids)]


def find(
    *,
    ids: list[str],
    tokens: list[str],
    bundles: list[str],
    state_roots: list[Path],
    mounts_before: set[str],
    own_processes: bool = False,
) -> list[Leak]:
    """Everything that still carries the case's ids, tokens or bundle paths. ``own_processes``:
    only this process's descendants are looked at for processes (:func:`descendants`: a caller
    that ran the case's runtime calls itself, as a child subreaper), not the whole host."""
    bundles = [os.path.realpath(b) for b in bundles]
    leaks = [Leak("mount", p) for p in sorted(mount_points(bundles) - mounts_before)]
    leaks += [Leak("cgroup", str(p)) for p in cgroup_folders(tokens)]
    among = watched_pids() if own_processes else None
    leaks += [Leak("process", f"pid {pid} ({cmd})") for pid, cmd in processes(bundles, among)]
    for root in state_roots:
        leaks += [Leak("state", str(p)) for p in state_entries(root, ids)]
    return leaks


def remove(leaks: list[Leak]) -> list[str]:
    """Take away what was found; returns what could not be removed, with why."""
    problems = []
    for leak in leaks:
        if leak.kind == "process":
            pid = int(leak.what.split()[1])
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            except OSError as err:
                problems.append(f"{leak}: {err.strerror}")
    for leak in sorted((x for x in leaks if x.kind == "mount"), key=lambda x: -len(x.what)):
        try:
            _linux.umount2(leak.what, _linux.MNT_DETACH)
        except OSError as err:
            problems.append(f"{leak}: umount: {err.strerror}")
    deadline = time.monotonic() + 5.0
    for leak in (x for x in leaks if x.kind == "cgroup"):  # deepest first (cgroup_folders' order)
        while True:
            try:
                os.rmdir(leak.what)
                break
            except FileNotFoundError:
                break
            except OSError as err:
                if time.monotonic() > deadline:  # still populated: its processes take time to go
                    problems.append(f"{leak}: rmdir: {err.strerror}")
                    break
                time.sleep(0.05)
    for leak in (x for x in leaks if x.kind == "state"):
        path = Path(leak.what)
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:
            pass
        except OSError as err:
            problems.append(f"{leak}: {err.strerror}")
    return problems


# --------------------------------------------------------------------------------------------
# The mount namespace a runtime runs in, when it is not the harness's own


class RuntimeMountNamespace:
    """A private mount namespace, held by a process for as long as a case lasts, that every
    runtime call of the case enters (``enter`` runs between fork and exec).

    A case whose container has no mount namespace of its own (it shares the runtime's) runs
    the runtime in a private mount namespace, so that what the runtime does there cannot reach
    the host. Made afresh for each call (as a definition's quirk does), it would vanish with the
    call, and so would anything the runtime left mounted there: on a real host, where the
    runtime namespace is the host's, that is a leak. Held for the whole case, its mount table
    is compared before and after (:meth:`changes`). It is a copy of the caller's when made: the
    host's mounts are private, so mounts made on the host later are not seen in it."""

    def __init__(self, unmount: tuple[str, ...] = ()):
        self.holder = subprocess.Popen(
            ["sleep", "infinity"],
            stdin=subprocess.DEVNULL,
            preexec_fn=functools.partial(_linux.private_mount_namespace, tuple(unmount)),
        )
        self.path = f"/proc/{self.holder.pid}/ns/mnt"
        self.before = self._table()

    def enter(self) -> None:
        _linux.enter_mount_namespace(self.path)

    def _table(self) -> dict[int, host.Mount]:
        return {m.mount_id: m for m in host.mounts(self.holder.pid)}

    def changes(self, folders: list[str]) -> list[str]:
        """What is mounted at or under ``folders`` (the case's bundles) in the namespace now
        that was not when the case began, and what went from there; mount ids tell a mount
        from another at the same place. Elsewhere the namespace follows the host's (removing
        a mount point unmounts it in every namespace), where other runs work at the same time."""
        folders = [os.path.realpath(f) for f in folders]
        after = self._table()
        found = [
            f"{m.mount_point} ({m.fstype} from {m.source}{'' if m.root == '/' else ':' + m.root})"
            for i, m in sorted(after.items())
            if i not in self.before and under(m.mount_point, folders)
        ]
        found += [
            f"{m.mount_point} unmounted"
            for i, m in sorted(self.before.items())
            if i not in after and under(m.mount_point, folders)
        ]
        return found

    def close(self) -> None:
        """End the holder: the namespace, and what was left mounted in it, goes with it (once
        no container process is in it any more)."""
        if self.holder.poll() is None:
            self.holder.kill()
        self.holder.wait()


# --------------------------------------------------------------------------------------------
# Host state a runtime must not change: it belongs to the namespaces the container was to get


#: sysctls read before and after every case, besides those a case's configs set
WATCHED_SYSCTLS = ("kernel.hostname", "kernel.domainname")


def _sysctl_path(key: str) -> Path:
    return Path("/proc/sys") / key.replace(".", "/")


#: The sysctls of the namespaces a container is given (UTS, IPC, network), as globs under
#: /proc/sys: what a runtime that skips one of them would write on the host.
NAMESPACED_SYSCTLS = (
    "kernel/hostname",
    "kernel/domainname",
    "kernel/shm*",
    "kernel/msg*",
    "kernel/sem*",
    "fs/mqueue/*",
)
#: ... and the network namespace's, every file below /proc/sys/net but those of single devices
#: (``net.ipv4.conf.eth0.*``, ``net.ipv6.neigh.eth0.*``; ``all`` and ``default`` are read)
NET_SYSCTLS = "net"
_PER_DEVICE = ("conf", "neigh")


def host_baseline() -> dict[str, str]:
    """The host's values of every namespaced sysctl (:data:`NAMESPACED_SYSCTLS`, and all of
    ``net.*``), keyed as in ``linux.sysctl``: taken once for a run, before any container starts
    (under xdist by the controller, which hands it to the workers), so that what one worker's
    container changed is never taken for the host's own value by another worker."""
    root = Path("/proc/sys")
    files = [p for pattern in NAMESPACED_SYSCTLS for p in root.glob(pattern)]
    for folder, subfolders, names in os.walk(root / NET_SYSCTLS):
        if Path(folder).name in _PER_DEVICE:
            subfolders[:] = [d for d in subfolders if d in ("all", "default")]
        files += [Path(folder) / n for n in names]
    state = {}
    for path in files:
        parts = path.relative_to(root).parts
        if any("." in part for part in parts):  # "eth0.100": no sysctl key names it unambiguously
            continue
        try:
            state[".".join(parts)] = path.read_text()
        except OSError:
            continue
    return state


def host_state(
    sysctls: set[str] | frozenset[str] = frozenset(),
    devices: set[str] | frozenset[str] = frozenset(),
    links: set[str] | frozenset[str] = frozenset(),
) -> dict[str, str]:
    """What the host has of what a case's configs ask the container to have in its own
    namespaces, as this process sees it: the watched sysctls (hostname and domainname among
    them) and ``sysctls`` (``linux.sysctl`` keys), the host's ``/dev`` nodes at the
    ``linux.devices`` paths (keys ``dev:/dev/...``) and the links of our network namespace named
    by ``linux.netDevices`` (keys ``link:NAME``). Only what the configs name is looked at: other
    runs change the rest of the host at the same time."""
    state = {}
    for key in sorted(set(WATCHED_SYSCTLS) | set(sysctls)):
        if ".." in key.split(".") or "/" in key:
            continue
        try:
            state[key] = _sysctl_path(key).read_text()
        except OSError:
            continue
    for path in sorted(devices):
        host_path = os.path.normpath("/" + path.lstrip("/"))
        if host_path.startswith("/dev/") and ".." not in host_path.split("/"):
            state["dev:" + host_path] = _device(host_path)
    for name in sorted(links):
        if name and "/" not in name and name not in (".", ".."):
            state["link:" + name] = "present" if name in _links() else "absent"
    return state


def _links() -> set[str]:
    """The network links of our network namespace (/sys/class/net shows the namespace sysfs
    was mounted in, which need not be ours)."""
    try:
        return {name for _, name in socket.if_nameindex()}
    except OSError:
        return set()


def _device(path: str) -> str:
    """What is at ``path``: "absent", or its type, device numbers, mode and owner."""
    try:
        st = os.lstat(path)
    except OSError:
        return "absent"
    kind = {0o020000: "char", 0o060000: "block"}.get(st.st_mode & 0o170000, "other")
    return f"{kind} {os.major(st.st_rdev)}:{os.minor(st.st_rdev)} mode {st.st_mode & 0o7777:o} owner {st.st_uid}:{st.st_gid}"


def restore_host_state(before: dict[str, str]) -> tuple[list[str], list[str]]:
    """Put back every value that changed since ``before``; returns (what changed, what could not
    be restored). A runtime that skipped a namespace it was asked for changes the host's own:
    its sysctls, hostname, domainname, a device node in the host's /dev, a network link in the
    host's network namespace."""
    changed: list[str] = []
    problems: list[str] = []
    for key, value in before.items():
        if key.startswith("dev:"):
            _restore_device(key[4:], value, changed, problems)
            continue
        if key.startswith("link:"):
            _restore_link(key[5:], value, changed, problems)
            continue
        try:
            now = _sysctl_path(key).read_text()
        except OSError:
            continue
        if now == value:
            continue
        changed.append(f"host sysctl {key} changed from {value.strip()!r} to {now.strip()!r} (restored)")
        try:
            _sysctl_path(key).write_text(value)
        except OSError as err:
            problems.append(f"host sysctl {key}: cannot restore {value.strip()!r}: {err.strerror}")
    return changed, problems


def _restore_device(path: str, was: str, changed: list[str], problems: list[str]) -> None:
    now = _device(path)
    if now == was:
        return
    if was != "absent":  # never remove or remake a host device that was there: say so
        changed.append(f"host device {path} changed from {was} to {now}")
        problems.append(f"host device {path}: not restored (it was {was}); check the host's /dev")
        return
    try:
        os.unlink(path)
        changed.append(f"host device {path} appeared ({now}) (removed)")
    except OSError as err:
        changed.append(f"host device {path} appeared ({now})")
        problems.append(f"host device {path}: cannot remove: {err.strerror}")


def _restore_link(name: str, was: str, changed: list[str], problems: list[str]) -> None:
    now = "present" if name in _links() else "absent"
    if now == was:
        return
    if was == "present":
        changed.append(f"host network link {name} vanished from the host's network namespace")
        problems.append(f"host network link {name}: cannot be brought back by the harness")
        return
    proc = subprocess.run(["ip", "link", "delete", name], capture_output=True, text=True, check=False)
    if proc.returncode == 0:
        changed.append(f"host network link {name} appeared in the host's network namespace (deleted)")
    else:
        changed.append(f"host network link {name} appeared in the host's network namespace")
        problems.append(f"host network link {name}: cannot delete: {proc.stderr.strip()}")
