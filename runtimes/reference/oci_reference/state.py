"""Container state on disk (<root>/<id>/state.json) and the status state machine.

Status is derived, not trusted: the stored value says how far the lifecycle got
(creating -> created -> running), and liveness of the recorded pid (checked against the
process start time saved at create, so a reused pid is not mistaken for the container)
turns any of them into `stopped`.
"""

import posix  # not `os`: the small commands (state, start, kill, delete) skip its import

from oci_reference import jsonlite
from oci_reference.errors import RuntimeFailure

STATE_FILE = "state.json"
START_SOCKET = "start.sock"


def validate_id(cid):
    if not cid:
        raise RuntimeFailure("container id must not be empty")
    if cid in (".", "..") or len(cid) > 1024:
        raise RuntimeFailure(f"invalid container id {cid!r}")
    for ch in cid:
        if not (ch.isascii() and (ch.isalnum() or ch in "_.+-")):
            raise RuntimeFailure(f"invalid container id {cid!r}: must match ^[A-Za-z0-9_.+-]+$")


def container_dir(root, cid):
    validate_id(cid)
    return f"{root.rstrip('/')}/{cid}" if root != "/" else f"/{cid}"


def _read(path):
    fd = posix.open(path, posix.O_RDONLY | posix.O_CLOEXEC)
    try:
        chunks = []
        while True:
            b = posix.read(fd, 65536)
            if not b:
                return b"".join(chunks)
            chunks.append(b)
    finally:
        posix.close(fd)


def proc_stat(pid):
    """Return (state letter, start time) of /proc/<pid>, or None if it does not exist."""
    try:
        data = _read(f"/proc/{pid}/stat")
    except OSError:
        return None
    rest = data[data.rindex(b")") + 2 :].split()
    # rest[0] is field 3 (state); field 22 (starttime) is rest[19]
    return rest[0].decode(), int(rest[19])


def is_alive(pid, start_time):
    if not pid or pid <= 0:
        return False
    st = proc_stat(pid)
    if st is None:
        return False
    letter, started = st
    if letter in ("Z", "X", "x"):
        return False
    return start_time is None or started == start_time


def load(root, cid):
    d = container_dir(root, cid)
    try:
        data = _read(f"{d}/{STATE_FILE}")
    except FileNotFoundError:
        raise RuntimeFailure(f"container {cid} does not exist") from None
    except NotADirectoryError:
        raise RuntimeFailure(f"container {cid} does not exist") from None
    try:
        return jsonlite.loads(data)
    except ValueError as e:
        raise RuntimeFailure(f"container {cid}: corrupt state file: {e}") from None


def remove_dir(d):
    """Remove a container's state directory (flat: files and the socket), quietly."""
    try:
        names = posix.listdir(d)
    except FileNotFoundError:
        return
    for n in names:
        try:
            posix.unlink(f"{d}/{n}")
        except IsADirectoryError:
            remove_dir(f"{d}/{n}")
        except FileNotFoundError:
            pass
    try:
        posix.rmdir(d)
    except FileNotFoundError:
        pass


def save(root, st):
    # atomic (write a temporary file, rename it over); no fsync: the state lives on
    # /run (tmpfs) and a crash loses the containers anyway
    d = container_dir(root, st["id"])
    tmp = f"{d}/.{STATE_FILE}.{posix.getpid()}"
    fd = posix.open(tmp, posix.O_WRONLY | posix.O_CREAT | posix.O_TRUNC | posix.O_CLOEXEC, 0o600)
    try:
        data = jsonlite.dumps(st).encode()
        while data:
            data = data[posix.write(fd, data) :]
    finally:
        posix.close(fd)
    posix.replace(tmp, f"{d}/{STATE_FILE}")


def status(st):
    stored = st.get("status", "creating")
    if stored == "stopped":
        return "stopped"
    pid = st.get("pid") or 0
    if not pid:
        return stored
    if not is_alive(pid, st.get("startTime")):
        return "stopped"
    return stored


def public(st, status_value=None):
    """The state document per the runtime spec (what `state` prints and hooks receive)."""
    s = status_value or status(st)
    return {
        "ociVersion": st.get("ociVersion", ""),
        "id": st["id"],
        "status": s,
        "pid": st.get("pid", 0) if s != "stopped" else 0,
        "bundle": st.get("bundle", ""),
        "rootfs": st.get("rootfs", ""),
        "created": st.get("created", ""),
        "annotations": st.get("annotations") or {},
    }


def hook_state(st, status_value):
    """State for hooks: the pid stays in, whatever the status."""
    return {
        "ociVersion": st.get("ociVersion", ""),
        "id": st["id"],
        "status": status_value,
        "pid": st.get("pid", 0),
        "bundle": st.get("bundle", ""),
        "annotations": st.get("annotations") or {},
    }
