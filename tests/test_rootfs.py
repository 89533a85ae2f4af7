"""Root filesystem sources: the pinned Alpine download (against a local HTTP server), local
tarballs, folder copies, and the errors users meet."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
import tarfile
import threading
from pathlib import Path

import pytest
from _folder_state import snapshot
from _http import FolderServer

from harness import rootfs
from harness.errors import RootfsError
from harness.rootfs import (
    ALPINE_SHA256,
    ALPINE_VERSION,
    alpine_arch,
    alpine_url,
    fetch_alpine,
    local_alpine_tarball,
    populate,
    verify_alpine_tarball,
)

ALPINE_NAME = f"alpine-minirootfs-{ALPINE_VERSION}-x86_64.tar.gz"
ALPINE_SHA = "d4e6fd67dcf75e40c451560ac7265166c2b72a0f38ddc9aae756a7de3d1efa0c"
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (owners, device nodes)")


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch) -> Path:
    """Never touch the user's cache or a mirror set in the environment."""
    cache = tmp_path / "default-cache"
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(cache))
    monkeypatch.delenv("HARNESS_ALPINE_MIRROR", raising=False)
    # a local tarball given to the whole run must not stand in for the downloads tested here
    monkeypatch.delenv("HARNESS_ROOTFS_TAR", raising=False)
    return cache


@pytest.fixture(scope="session")
def given_alpine() -> Path:
    """The local tarball given to the run, read before ``private_cache`` (function-scoped, so
    instantiated after this) hides $HARNESS_ROOTFS_TAR from the code under test."""
    return local_alpine_tarball()


@pytest.fixture
def alpine(given_alpine) -> Path:
    path = given_alpine
    if not path.is_file():
        pytest.skip(f"the Alpine minirootfs is not at {path}: set HARNESS_ROOTFS_TAR to a local copy")
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- a local mirror -------------------------------------------------------------------------------
class Mirror(FolderServer):
    """An HTTP server on 127.0.0.1 laid out like dl-cdn.alpinelinux.org/alpine."""

    def file(self, arch: str = "x86_64") -> Path:
        return self.root / "v3.20" / "releases" / arch / rootfs.alpine_filename(arch)

    def serve(self, data: bytes, arch: str = "x86_64") -> None:
        path = self.file(arch)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


@pytest.fixture
def mirror(tmp_path):
    m = Mirror(tmp_path / "mirror")
    m.root.mkdir()
    try:
        yield m
    finally:
        m.close()


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "cache"


# -- architectures and addresses ------------------------------------------------------------------
@pytest.mark.parametrize(
    "machine, arch",
    [
        ("x86_64", "x86_64"),
        ("AMD64", "x86_64"),
        ("aarch64", "aarch64"),
        ("arm64", "aarch64"),
        ("armv7l", "armv7"),
        ("ppc64le", "ppc64le"),
        ("s390x", "s390x"),
        ("riscv64", "riscv64"),
        ("i686", "x86"),
        ("i386", "x86"),
    ],
)
def test_machine_names_map_to_alpine(machine, arch):
    assert alpine_arch(machine) == arch


def test_host_machine_is_used_by_default(monkeypatch):
    monkeypatch.setattr(rootfs.platform, "machine", lambda: "aarch64")
    assert alpine_arch() == "aarch64"


def test_unknown_machine():
    with pytest.raises(RootfsError, match=r"'vax'.*--rootfs-tar"):
        alpine_arch("vax")


def test_pins_are_well_formed():
    assert ALPINE_SHA256["x86_64"] == ALPINE_SHA
    for arch, digest in ALPINE_SHA256.items():
        assert arch in set(rootfs._MACHINE_TO_ALPINE.values())
        assert len(digest) == 64 and int(digest, 16) >= 0


def test_url(monkeypatch):
    assert alpine_url("aarch64") == (
        "https://dl-cdn.alpinelinux.org/alpine/v3.20/releases/aarch64/alpine-minirootfs-3.20.3-aarch64.tar.gz"
    )
    monkeypatch.setenv("HARNESS_ALPINE_MIRROR", "http://mirror.example/alpine/")
    assert alpine_url("x86_64").startswith("http://mirror.example/alpine/v3.20/releases/x86_64/")
    assert alpine_url("x86_64", "http://other/").startswith("http://other/v3.20/")


# -- fetching -------------------------------------------------------------------------------------
def test_fetch_downloads_verifies_and_caches(alpine, mirror, cache):
    mirror.serve(alpine.read_bytes())
    path = fetch_alpine(arch="x86_64", mirror=mirror.url, cache=cache)
    assert path == cache / ALPINE_NAME
    assert sha256(path) == ALPINE_SHA
    assert mirror.requests == [f"/v3.20/releases/x86_64/{ALPINE_NAME}"]
    assert sorted(p.name for p in cache.iterdir()) == [ALPINE_NAME]  # no temp files left

    again = fetch_alpine(arch="x86_64", mirror=mirror.url, cache=cache)
    assert again == path
    assert len(mirror.requests) == 1, "the cached tarball should have been used"


def test_fetch_uses_env_mirror_and_default_cache(alpine, mirror, monkeypatch, private_cache):
    mirror.serve(alpine.read_bytes())
    monkeypatch.setenv("HARNESS_ALPINE_MIRROR", mirror.url)
    monkeypatch.setattr(rootfs.platform, "machine", lambda: "x86_64")
    path = fetch_alpine()
    assert path == private_cache / "rootfs" / ALPINE_NAME
    assert sha256(path) == ALPINE_SHA
    assert len(mirror.requests) == 1


def test_fetch_checksum_mismatch_leaves_nothing(mirror, cache):
    bad = b"not the alpine minirootfs" * 1000
    mirror.serve(bad)
    with pytest.raises(RootfsError) as err:
        fetch_alpine(arch="x86_64", mirror=mirror.url, cache=cache)
    message = str(err.value)
    assert f"{mirror.url}/v3.20/releases/x86_64/{ALPINE_NAME}" in message
    assert ALPINE_SHA in message
    assert hashlib.sha256(bad).hexdigest() in message
    assert list(cache.iterdir()) == []


def test_fetch_404_names_the_url(mirror, cache):
    with pytest.raises(RootfsError) as err:
        fetch_alpine(arch="x86_64", mirror=mirror.url, cache=cache)
    message = str(err.value)
    assert f"{mirror.url}/v3.20/releases/x86_64/{ALPINE_NAME}" in message
    assert "404" in message and "--rootfs-tar" in message
    assert not cache.exists() or list(cache.iterdir()) == []


def test_fetch_unreachable_server(cache):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with pytest.raises(RootfsError, match=f"cannot download {url}/v3.20/.*--rootfs-tar PATH"):
        fetch_alpine(arch="x86_64", mirror=url, cache=cache, timeout=5)
    assert not cache.exists() or list(cache.iterdir()) == []


def test_corrupted_cache_is_downloaded_again(alpine, mirror, cache):
    mirror.serve(alpine.read_bytes())
    cache.mkdir()
    (cache / ALPINE_NAME).write_bytes(alpine.read_bytes()[:100_000])
    path = fetch_alpine(arch="x86_64", mirror=mirror.url, cache=cache)
    assert sha256(path) == ALPINE_SHA
    assert len(mirror.requests) == 1


def test_corrupted_cache_and_bad_mirror_leave_nothing(mirror, cache):
    mirror.serve(b"wrong")
    cache.mkdir()
    (cache / ALPINE_NAME).write_bytes(b"also wrong")
    with pytest.raises(RootfsError, match="checksum mismatch"):
        fetch_alpine(arch="x86_64", mirror=mirror.url, cache=cache)
    assert list(cache.iterdir()) == []


def test_fetch_unpinned_arch(mirror, cache):
    with pytest.raises(RootfsError, match=r"no pinned sha256.*s390x.*--rootfs-tar PATH"):
        fetch_alpine(arch="s390x", mirror=mirror.url, cache=cache)
    assert mirror.requests == []


def test_concurrent_fetches(alpine, mirror, cache):
    mirror.serve(alpine.read_bytes())
    results: list[object] = []

    def run():
        try:
            results.append(fetch_alpine(arch="x86_64", mirror=mirror.url, cache=cache))
        except Exception as err:
            results.append(err)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [cache / ALPINE_NAME] * 4
    assert sha256(cache / ALPINE_NAME) == ALPINE_SHA
    assert sorted(p.name for p in cache.iterdir()) == [ALPINE_NAME]


# -- local tarballs -------------------------------------------------------------------------------
def test_verify_real_tarball(alpine):
    verify_alpine_tarball(alpine)
    verify_alpine_tarball(alpine, arch="x86_64")


def test_verify_rejects_tampered_copy_with_official_name(alpine, tmp_path):
    fake = tmp_path / ALPINE_NAME
    fake.write_bytes(alpine.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(RootfsError, match=f"{fake}.*named like the official.*{ALPINE_SHA}"):
        verify_alpine_tarball(fake)


def test_verify_accepts_own_tarball(tmp_path):
    own = tmp_path / "my-rootfs.tar.gz"
    own.write_bytes(b"anything")
    verify_alpine_tarball(own)


def test_verify_missing_file(tmp_path):
    with pytest.raises(RootfsError, match=f"{tmp_path / 'nope.tar.gz'} does not exist"):
        verify_alpine_tarball(tmp_path / "nope.tar.gz")
    with pytest.raises(RootfsError, match="is not a file"):
        verify_alpine_tarball(tmp_path)


# -- populate -------------------------------------------------------------------------------------
@pytest.fixture
def dest(tmp_path) -> Path:
    d = tmp_path / "bundle" / "rootfs"
    d.mkdir(parents=True)
    return d


def test_populate_probe_leaves_it_empty(dest):
    populate("probe", dest)
    assert list(dest.iterdir()) == []


def test_populate_alpine_from_local_tarball(alpine, dest):
    populate("alpine", dest, rootfs_tar=alpine)
    assert (dest / "etc/alpine-release").read_text().strip() == "3.20.3"
    assert os.readlink(dest / "bin/sh") == "/bin/busybox"


def test_populate_alpine_rejects_tampered_tarball(alpine, dest, tmp_path):
    fake = tmp_path / ALPINE_NAME
    fake.write_bytes(b"tampered")
    with pytest.raises(RootfsError, match="named like the official"):
        populate("alpine", dest, rootfs_tar=fake)
    assert list(dest.iterdir()) == []


def test_populate_alpine_downloads(alpine, mirror, dest, monkeypatch, private_cache):
    mirror.serve(alpine.read_bytes())
    monkeypatch.setenv("HARNESS_ALPINE_MIRROR", mirror.url)
    monkeypatch.setattr(rootfs.platform, "machine", lambda: "x86_64")
    populate("alpine", dest)
    assert (dest / "etc/alpine-release").read_text().strip() == "3.20.3"
    assert (private_cache / "rootfs" / ALPINE_NAME).is_file()


def test_populate_from_tarball(dest, tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as tf:
        info = tarfile.TarInfo("bin/hello")
        info.size, info.mode = 5, 0o755
        tf.addfile(info, io.BytesIO(b"hello"))
    archive = tmp_path / "custom.rootfs"  # any name: the content tells
    archive.write_bytes(buf.getvalue())
    populate(str(archive), dest)
    assert (dest / "bin/hello").read_bytes() == b"hello"
    assert stat.S_IMODE((dest / "bin/hello").stat().st_mode) == 0o755


def test_populate_from_hostile_tarball_is_refused(dest, tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("../../escape")
        tf.addfile(info, io.BytesIO(b""))
    archive = tmp_path / "evil.tar"
    archive.write_bytes(buf.getvalue())
    with pytest.raises(RootfsError, match="would write outside"):
        populate(str(archive), dest)
    assert not (tmp_path / "escape").exists()


@pytest.fixture
def source_tree(tmp_path) -> tuple[Path, Path]:
    """A folder to copy, and a sentinel folder outside it that a symlink points to."""
    outside = tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    (outside / "deep" / "secret").write_text("outside\n")
    src = tmp_path / "src"
    (src / "etc").mkdir(parents=True)
    (src / "etc" / "hostname").write_text("box\n")
    os.chmod(src / "etc" / "hostname", 0o640)
    (src / "bin").mkdir()
    (src / "bin" / "tool").write_bytes(b"\x7fELF tool")
    os.chmod(src / "bin" / "tool", 0o4755)
    os.link(src / "bin" / "tool", src / "bin" / "tool-again")
    os.symlink("tool", src / "bin" / "rel-link")
    os.symlink(str(outside), src / "escape")  # a symlink out of the source
    os.symlink(str(outside / "deep" / "secret"), src / "etc" / "secret-link")
    os.mkfifo(src / "fifo", 0o600)
    os.utime(src / "etc" / "hostname", ns=(1_500_000_000 * 10**9, 1_500_000_000 * 10**9))
    os.chmod(src / "etc", 0o711)
    os.utime(src / "etc", ns=(1_400_000_000 * 10**9, 1_400_000_000 * 10**9))
    return src, outside


def test_populate_from_folder(source_tree, dest):
    src, outside = source_tree
    before = snapshot(outside)
    populate(str(src), dest)
    assert (dest / "etc/hostname").read_text() == "box\n"
    assert stat.S_IMODE(os.lstat(dest / "etc/hostname").st_mode) == 0o640
    assert os.lstat(dest / "etc/hostname").st_mtime == 1_500_000_000
    assert stat.S_IMODE(os.lstat(dest / "etc").st_mode) == 0o711
    assert os.lstat(dest / "etc").st_mtime == 1_400_000_000
    assert stat.S_IMODE(os.lstat(dest / "bin/tool").st_mode) == 0o4755
    assert os.lstat(dest / "bin/tool").st_ino == os.lstat(dest / "bin/tool-again").st_ino
    assert os.readlink(dest / "bin/rel-link") == "tool"
    # The symlink out of the source is copied as a symlink, not followed.
    assert os.path.islink(dest / "escape")
    assert os.readlink(dest / "escape") == str(outside)
    assert os.readlink(dest / "etc/secret-link") == str(outside / "deep" / "secret")
    assert stat.S_ISFIFO(os.lstat(dest / "fifo").st_mode)
    assert snapshot(outside) == before
    # Nothing in the copy shares an inode with the source.
    assert os.lstat(dest / "bin/tool").st_ino != os.lstat(src / "bin/tool").st_ino


@as_root
def test_populate_from_folder_keeps_owners_and_devices(source_tree, dest):
    src, _ = source_tree
    os.chown(src / "etc" / "hostname", 1234, 5678)
    os.lchown(src / "bin" / "rel-link", 4321, 8765)
    (src / "dev").mkdir()
    os.mknod(src / "dev" / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    populate(str(src), dest)
    st = os.lstat(dest / "etc/hostname")
    assert (st.st_uid, st.st_gid) == (1234, 5678)
    st = os.lstat(dest / "bin/rel-link")
    assert (st.st_uid, st.st_gid) == (4321, 8765)
    st = os.lstat(dest / "dev/null")
    assert stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 3


def test_populate_refuses_folder_into_itself(source_tree):
    src, _ = source_tree
    inner = src / "bundle-rootfs"
    inner.mkdir()
    with pytest.raises(RootfsError, match="into itself"):
        populate(str(src), inner)
    assert list(inner.iterdir()) == []


def test_populate_from_folder_given_as_symlink(source_tree, dest, tmp_path):
    src, _ = source_tree
    alias = tmp_path / "alias"
    os.symlink(src, alias)
    populate(str(alias), dest)
    assert (dest / "etc/hostname").read_text() == "box\n"


def test_populate_unknown_source(dest, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RootfsError, match="unknown rootfs source 'debian': use probe, alpine, a folder or a tarball"):
        populate("debian", dest)


@pytest.mark.parametrize("name", ["nope", "nope.tar.gz", "./nope"])
def test_populate_missing_path(dest, tmp_path, name):
    missing = str(tmp_path / name) if name == "nope" else name
    with pytest.raises(RootfsError, match=f"rootfs source '{missing}' does not exist"):
        populate(missing, dest)


def test_populate_needs_an_empty_existing_folder(dest, tmp_path):
    with pytest.raises(RootfsError, match="does not exist"):
        populate("probe", tmp_path / "missing")
    (dest / "stray").write_text("x")
    with pytest.raises(RootfsError, match="is not empty"):
        populate("probe", dest)


def test_rootfs_tar_only_goes_with_alpine(dest, tmp_path):
    with pytest.raises(RootfsError, match="--rootfs-tar goes with the alpine"):
        populate("probe", dest, rootfs_tar=tmp_path / "x.tar")


def test_alpine_folder_round_trip(alpine, tmp_path, dest):
    """Extracting Alpine, then copying that folder, gives the same tree."""
    first = tmp_path / "first"
    first.mkdir()
    populate("alpine", first, rootfs_tar=alpine)
    populate(str(first), dest)
    assert snapshot(dest) == snapshot(first)
    shutil.rmtree(first)


# --------------------------------------------------------------------------------------------
# One local tarball for every command: --rootfs-tar, else $HARNESS_ROOTFS_TAR; offline fails at once


def test_env_tarball_that_does_not_exist_is_named(private_cache, monkeypatch, tmp_path):
    monkeypatch.setenv("HARNESS_ROOTFS_TAR", str(tmp_path / "missing.tar.gz"))
    with pytest.raises(RootfsError, match=r"\$HARNESS_ROOTFS_TAR: .*missing\.tar\.gz"):
        rootfs.alpine_tarball()


def test_env_tarball_is_used_and_the_option_wins(private_cache, alpine, monkeypatch, tmp_path):
    local = str(alpine)
    monkeypatch.setenv("HARNESS_ROOTFS_TAR", local)
    assert rootfs.alpine_tarball() == Path(local)
    monkeypatch.setenv("HARNESS_ROOTFS_TAR", str(tmp_path / "missing.tar.gz"))
    assert rootfs.alpine_tarball(Path(local)) == Path(local)  # --rootfs-tar wins over the variable


def test_offline_bundle_fails_first_naming_both_settings(private_cache, monkeypatch, tmp_path):
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "HARNESS_ROOTFS_TAR"}
    env.update(HARNESS_CACHE_DIR=str(private_cache), HARNESS_ALPINE_MIRROR="http://127.0.0.1:9/alpine")
    target = tmp_path / "b"
    p = subprocess.run(
        [sys.executable, "-m", "harness", "bundle", str(target), "--rootfs", "alpine"],
        env=env,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        check=False,
    )
    assert p.returncode == 2, p.stderr
    assert "--rootfs-tar" in p.stderr and "HARNESS_ROOTFS_TAR" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert not target.exists(), "the bundle folder was made before the rootfs was known to be there"
