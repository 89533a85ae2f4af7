"""Fixtures for the reference runtime's tests: the package path, bundles, a runtime root."""

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import pytest

REF_DIR = Path(__file__).resolve().parents[2] / "runtimes" / "reference"
LAUNCHER = REF_DIR / "bin" / "oci-reference"
ALPINE = Path(os.environ.get("HARNESS_ROOTFS_TAR") or "$HARNESS_ROOTFS_TAR (unset)")

if str(REF_DIR) not in sys.path:
    sys.path.insert(0, str(REF_DIR))

HELLO_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "sleep") == 0) { sleep(argc > 2 ? atoi(argv[2]) : 100); return 0; }
    if (argc > 1 && strcmp(argv[1], "exit") == 0) { return atoi(argv[2]); }
    printf("hi\n");
    return 0;
}
"""


def needs_root():
    return pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def base_config(args, readonly=True):
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    return {
        "ociVersion": "1.3.0",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": readonly},
        "hostname": "refhost",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
            },
            {
                "destination": "/dev/pts",
                "type": "devpts",
                "source": "devpts",
                "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
            },
            {
                "destination": "/dev/shm",
                "type": "tmpfs",
                "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            },
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        ],
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": ["/proc/kcore"],
            "readonlyPaths": ["/proc/sys"],
        },
    }


@pytest.fixture(scope="session")
def hello_binary(tmp_path_factory):
    if not shutil.which("cc"):
        pytest.skip("no C compiler")
    d = tmp_path_factory.mktemp("hello")
    src = d / "hello.c"
    src.write_text(HELLO_C)
    out = d / "hello"
    subprocess.run(["cc", "-static", "-O2", "-o", str(out), str(src)], check=True, timeout=120)
    return out


@pytest.fixture(scope="session")
def alpine_rootfs(tmp_path_factory):
    if not ALPINE.exists():
        pytest.skip("no Alpine minirootfs")
    d = tmp_path_factory.mktemp("alpine") / "rootfs"
    d.mkdir()
    with tarfile.open(ALPINE) as t:
        t.extractall(d, filter="fully_trusted") if hasattr(tarfile, "data_filter") else t.extractall(d)
    return d


class Bundle:
    def __init__(self, path, config):
        self.path = path
        self.config = config

    def write(self):
        (self.path / "config.json").write_text(json.dumps(self.config, indent=1))
        return self


@pytest.fixture
def static_bundle(tmp_path, hello_binary):
    def make(args=None, **kw):
        b = tmp_path / f"sb{len(list(tmp_path.iterdir()))}"
        (b / "rootfs").mkdir(parents=True)
        shutil.copy(hello_binary, b / "rootfs" / "hello")
        return Bundle(b, base_config(args or ["/hello"], **kw))

    return make


@pytest.fixture
def alpine_bundle(tmp_path, alpine_rootfs):
    def make(args=None, **kw):
        b = tmp_path / f"ab{len(list(tmp_path.iterdir()))}"
        b.mkdir()
        (b / "rootfs").symlink_to(alpine_rootfs)
        return Bundle(b, base_config(args or ["sh", "-c", "echo hi"], **kw))

    return make


def _mounts_under(path):
    """Mount points at or below `path` (other test runs may mount elsewhere meanwhile)."""
    prefix = str(path).rstrip("/")
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4].replace("\\040", " ") for line in f]
    return sorted(p for p in points if p == prefix or p.startswith(prefix + "/"))


class Runtime:
    def __init__(self, root):
        self.root = root

    def __call__(self, *args, timeout=30, check=False, stdin=subprocess.DEVNULL):
        # regular files, not pipes: after `create` the container holds its stdio open
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            r = subprocess.run(
                [str(LAUNCHER), "--root", str(self.root), *map(str, args)],
                stdout=out,
                stderr=err,
                timeout=timeout,
                stdin=stdin,
            )
            out.seek(0)
            err.seek(0)
            p = subprocess.CompletedProcess(r.args, r.returncode, out.read(), err.read())
        if check and p.returncode != 0:
            raise AssertionError(f"oci-reference {' '.join(map(str, args))} failed ({p.returncode}): {p.stderr}")
        return p

    def state(self, cid):
        p = self("state", cid, check=True)
        return json.loads(p.stdout)

    def wait_status(self, cid, want, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            s = self.state(cid)["status"]
            if s == want:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"container {cid} is {s}, expected {want}")
            time.sleep(0.01)

    def ids(self):
        try:
            return sorted(os.listdir(self.root))
        except FileNotFoundError:
            return []


@pytest.fixture
def rt(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    r = Runtime(tmp_path / "state-root")
    yield r
    for cid in r.ids():
        r("delete", "--force", cid)
    assert r.ids() == [], "containers left behind"
    # mounts live in the containers' own namespaces: nothing may leak to ours
    leaked = _mounts_under(tmp_path.parent)  # this session's temporary folder: bundles, rootfs, state
    assert not leaked, f"mounts leaked into the test's mount namespace: {leaked}"
