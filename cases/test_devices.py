"""Devices (config-linux.md "Devices", "Default Devices") and runtime-linux.md ("File
descriptors", "Dev symbolic links"): the listed devices and the default ones exist in the
container as nodes of the right type and numbers; /dev/fd, /dev/std* and /dev/ptmx are links to
the right places; only stdio is open. Checked from inside (the probe's stat, ls, cat, write) and
from outside (/proc/PID/root and /proc/PID/fd of a created container)."""

import os

import pytest

from harness.runtime import RuntimeCallError

pytestmark = pytest.mark.requires("root")

STAT_TYPE = {"c": "char", "u": "char", "b": "block", "p": "fifo"}


def stat_lines(out):
    import json

    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def add_devices(*devices):
    def edit(config):
        config["linux"]["devices"] = list(devices)

    return edit


@pytest.mark.parametrize(
    "device",
    [
        {"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3},
        {"path": "/dev/myunbuf", "type": "u", "major": 1, "minor": 5},
        {"path": "/dev/myblock", "type": "b", "major": 7, "minor": 200},
        {"path": "/dev/myfifo", "type": "p"},
    ],
    ids=["char", "unbuffered", "block", "fifo"],
)
@pytest.mark.spec("linux.devices.available")
def test_listed_device_exists(runtime, run_probe, device):
    _, out = run_probe("stat", device["path"], edit=add_devices(device))
    st = stat_lines(out)[0]
    expected = STAT_TYPE[device["type"]]
    assert st["type"] == expected, f"{device['path']}: expected a {expected} device node, found a {st['type']}"
    if device["type"] != "p":
        numbers = (st["rdev_major"], st["rdev_minor"])
        assert numbers == (device["major"], device["minor"]), (
            f"{device['path']}: expected {device['major']}:{device['minor']}, found {numbers[0]}:{numbers[1]}"
        )


@pytest.mark.spec("linux.devices.available")
def test_listed_device_is_usable(runtime, run_probe):
    device = {"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666}
    _, out = run_probe("write", "/dev/mynull", "discarded", "cat", "/dev/mynull", "exit", "0", edit=add_devices(device))
    assert out == "", f"/dev/mynull (1:3) should take writes and read empty, the probe printed {out!r}"


@pytest.mark.spec("linux.devices.file-mode")
def test_device_file_mode(runtime, run_probe):
    device = {"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640}
    _, out = run_probe("stat", "/dev/mynull", edit=add_devices(device))
    mode = stat_lines(out)[0]["mode"]
    assert mode == 0o640, f"fileMode 0640: /dev/mynull has mode {mode:04o}"


@pytest.mark.spec("linux.devices.owner")
def test_device_owner(runtime, run_probe):
    device = {"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "uid": 1234, "gid": 5678}
    _, out = run_probe("stat", "/dev/mynull", edit=add_devices(device))
    st = stat_lines(out)[0]
    assert (st["uid"], st["gid"]) == (1234, 5678), (
        f"uid 1234, gid 5678: /dev/mynull is owned by {st['uid']}:{st['gid']}"
    )


@pytest.mark.spec("linux.devices.path-anywhere")
def test_device_outside_dev(runtime, run_probe):
    device = {"path": "/devices-elsewhere/mynull", "type": "c", "major": 1, "minor": 3}
    _, out = run_probe("stat", device["path"], edit=add_devices(device))
    st = stat_lines(out)[0]
    assert (st["type"], st["rdev_major"], st["rdev_minor"]) == ("char", 1, 3), (
        f"{device['path']}: expected char 1:3, found {st['type']} {st['rdev_major']}:{st['rdev_minor']}"
    )


@pytest.mark.spec("linux.devices.path-conflict")
def test_device_path_taken_by_other_file_is_an_error(runtime, bundle_factory, container_factory):
    bundle = bundle_factory("stat", "/taken", edit=add_devices({"path": "/taken", "type": "c", "major": 1, "minor": 3}))
    (bundle.rootfs / "taken").write_text("a regular file, not device 1:3")
    c = container_factory(bundle)
    with pytest.raises(RuntimeCallError):
        c.create()
        c.start()
        c.wait()
        pytest.fail(
            f"a regular file exists at /taken where char device 1:3 is requested, yet the container ran; it saw: {c.stdout().strip()}"
        )


DEFAULT_DEVICES = {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8), "urandom": (1, 9), "tty": (5, 0)}


@pytest.mark.parametrize("name", list(DEFAULT_DEVICES))
@pytest.mark.spec("linux.default-devices")
def test_default_device(runtime, run_probe, name):
    _, out = run_probe("stat", f"/dev/{name}")
    st = stat_lines(out)[0]
    major, minor = DEFAULT_DEVICES[name]
    found = (st["type"], st["rdev_major"], st["rdev_minor"])
    assert found == ("char", major, minor), (
        f"/dev/{name}: expected char {major}:{minor}, found {found[0]} {found[1]}:{found[2]}"
    )


@pytest.fixture
def created(runtime, bundle_factory, container_factory):
    """A created (not started) container: its filesystem is set up, seen through /proc/PID/root."""
    c = container_factory(bundle_factory("exit", "0"))
    c.create()
    return c


@pytest.mark.spec("linux.default-devices.ptmx")
def test_dev_ptmx(created):
    root = f"/proc/{created.pid}/root"
    ptmx = f"{root}/dev/ptmx"
    if os.path.islink(ptmx):
        target = os.readlink(ptmx)
        assert target in ("pts/ptmx", "/dev/pts/ptmx"), (
            f"/dev/ptmx is a symlink to {target!r}, not to the container's /dev/pts/ptmx"
        )
    else:
        a, b = os.stat(ptmx), os.stat(f"{root}/dev/pts/ptmx")
        assert (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino), (
            "/dev/ptmx is neither a symlink to nor a bind mount of /dev/pts/ptmx"
        )


@pytest.mark.parametrize(
    "link, target",
    [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ],
)
@pytest.mark.spec("runtime-linux.dev-symlinks")
def test_dev_symlink(created, link, target):
    path = f"/proc/{created.pid}/root/dev/{link}"
    assert os.path.islink(path), f"/dev/{link} is not a symlink in the created container"
    assert os.readlink(path) == target, f"/dev/{link} points to {os.readlink(path)!r}, expected {target!r}"


@pytest.mark.spec("runtime-linux.file-descriptors")
def test_only_stdio_is_open(runtime, run_probe):
    _, out = run_probe("ls", "/proc/self/fd")
    fds = sorted(int(n) for n in out.split())
    # 0, 1, 2 and the one fd the probe itself holds open to read the folder
    assert fds[:3] == [0, 1, 2] and len(fds) == 4, (
        f"expected only fds 0, 1, 2 (and the probe's own directory fd), found {fds}"
    )
