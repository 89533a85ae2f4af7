"""Where a bundle's root filesystem comes from.

Sources (:func:`populate`):

- ``probe``: nothing; the bundle code puts the static probe binary in (the seed's "single static
  binary" rootfs).
- ``alpine``: the official Alpine minirootfs for this machine's architecture, downloaded once,
  checked against a pinned sha256 and cached (:func:`fetch_alpine`), or a local copy given with
  ``--rootfs-tar`` or ``$HARNESS_ROOTFS_TAR`` (:func:`alpine_tarball`).
- a folder: copied (symlinks stay symlinks, hard links stay linked, modes, owners when root,
  times, device nodes when root).
- a file: a tar archive (plain, gzip, bzip2 or xz), extracted safely (:mod:`harness._safetar`).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import logging
import os
import platform
import stat
from pathlib import Path
from typing import BinaryIO

from harness import atomic, download
from harness._paths import cache_dir
from harness._safetar import EntryMeta, ExtractResult, TreeWriter, extract
from harness.errors import RootfsError

__all__ = [
    "ALPINE_SHA256",
    "ALPINE_VERSION",
    "alpine_arch",
    "alpine_filename",
    "alpine_url",
    "copy_tree",
    "fetch_alpine",
    "populate",
    "verify_alpine_tarball",
]

log = logging.getLogger(__name__)

ALPINE_VERSION = "3.20.3"
ALPINE_BRANCH = "v" + ".".join(ALPINE_VERSION.split(".")[:2])
DEFAULT_MIRROR = "https://dl-cdn.alpinelinux.org/alpine"
MIRROR_ENV = "HARNESS_ALPINE_MIRROR"

# sha256 of alpine-minirootfs-3.20.3-<arch>.tar.gz. Only values seen in public sources are pinned:
# - x86_64: the copy in the project's shared/rootfs (byte for byte upstream), and pinned in public
#   scripts (an Apptainer definition, a renderer-sandbox build-rootfs.sh, a proot distro plug-in).
# - aarch64: pinned identically in several unrelated public scripts (an Android runtime's
#   scripts/build-runtime.sh, a microVM asset script, the same build-rootfs.sh and distro plug-in,
#   a Kotlin rootfs registry that also records the size, 3,947,906 bytes).
# - armv7: a proot distro plug-in (TARBALL_SHA256['arm']), a Kotlin installer checked "against
#   the .sha256 sidecars", and a README listing the sums verified against the official .sha256.
# - x86, riscv64: a proot distro plug-in for "Alpine Linux 3.20.3" whose x86_64, aarch64 and armv7
#   sums agree with the ones above.
# ppc64le, s390x: no public source found, so not pinned (fetching them says so).
ALPINE_SHA256: dict[str, str] = {
    "x86_64": "d4e6fd67dcf75e40c451560ac7265166c2b72a0f38ddc9aae756a7de3d1efa0c",
    "aarch64": "041fa34a81788242df9e78fa69b97ab45b8ec47ddbf88864755610414a7bf3de",
    "armv7": "ea8823fb4c4cf5f71f1d180e47904fb36ae74d3ded06c980230116b129fc5f07",
    "x86": "4c7ba1c9e6642692dd5cb302e5e58943221901f2e15991af7d5cb4ded80dc7b9",
    "riscv64": "290d402a3e2770a74e86caf1e43205dbf337b9aec1610c6c6d8ffbd2d52796a1",
}

# platform.machine() (and common aliases) -> Alpine's architecture names.
_MACHINE_TO_ALPINE = {
    "x86_64": "x86_64",
    "amd64": "x86_64",
    "aarch64": "aarch64",
    "arm64": "aarch64",
    "armv7l": "armv7",
    "armv7": "armv7",
    "armv8l": "armv7",
    "armv6l": "armhf",
    "armhf": "armhf",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "i386": "x86",
    "i486": "x86",
    "i586": "x86",
    "i686": "x86",
    "x86": "x86",
}

_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
_CHUNK = 1 << 20


def alpine_arch(machine: str | None = None) -> str:
    """Alpine's name for ``machine`` (default: this machine, from ``platform.machine()``)."""
    name = (machine or platform.machine()).strip()
    try:
        return _MACHINE_TO_ALPINE[name.lower()]
    except KeyError:
        raise RootfsError(
            f"Alpine has no minirootfs for the machine type {name!r}; pass a root filesystem "
            "tarball with --rootfs-tar PATH or use another rootfs source"
        ) from None


def alpine_filename(arch: str) -> str:
    return f"alpine-minirootfs-{ALPINE_VERSION}-{arch}.tar.gz"


def alpine_url(arch: str, mirror: str | None = None) -> str:
    """The download address; the mirror base is ``mirror``, else ``$HARNESS_ALPINE_MIRROR``,
    else the Alpine CDN."""
    base = (mirror or os.environ.get(MIRROR_ENV) or DEFAULT_MIRROR).rstrip("/")
    return f"{base}/{ALPINE_BRANCH}/releases/{arch}/{alpine_filename(arch)}"


def _sha256_fd(fd: int) -> str:
    digest = hashlib.sha256()
    while chunk := os.read(fd, _CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def _sha256_file(path: Path) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as err:
        raise RootfsError(f"cannot read {path}: {err.strerror}") from None
    try:
        return _sha256_fd(fd)
    except OSError as err:
        raise RootfsError(f"cannot read {path}: {err.strerror}") from None
    finally:
        os.close(fd)


def _cached_is_good(path: Path, expected: str) -> bool:
    """Whether the cached tarball matches; a bad one is removed (unless another process has
    replaced it meanwhile)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError as err:
        raise RootfsError(f"cannot read the cached {path}: {err.strerror}") from None
    try:
        good = _sha256_fd(fd) == expected
        st = os.fstat(fd)
    except OSError as err:
        raise RootfsError(f"cannot read the cached {path}: {err.strerror}") from None
    finally:
        os.close(fd)
    if good:
        return True
    log.warning("cached %s does not match its pinned sha256; downloading it again", path)
    try:
        now = os.stat(path)
        if (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino):
            os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as err:
        raise RootfsError(f"cannot remove the bad cached file {path}: {err.strerror}") from None
    return False


#: a local Alpine minirootfs tarball for every command that needs one (harness bundle, image
#: build, bench, the test and nox sessions): one setting instead of --rootfs-tar on each
ROOTFS_TAR_ENV = "HARNESS_ROOTFS_TAR"


def _offline_hint() -> str:
    return (
        "if this machine cannot reach it, download the file elsewhere and pass it with "
        f"--rootfs-tar PATH, or set {ROOTFS_TAR_ENV}=PATH once for every command "
        "(harness, harness bench, the nox sessions)"
    )


def local_alpine_tarball() -> Path:
    """``$HARNESS_ROOTFS_TAR`` as a path, unchecked (tests and benchmarks skip when it does not
    exist); when the variable is unset, a relative path naming it, which never exists."""
    return Path(os.environ.get(ROOTFS_TAR_ENV) or f"${ROOTFS_TAR_ENV} (unset)")


def alpine_tarball(rootfs_tar: Path | None = None) -> Path:
    """The Alpine minirootfs tarball to use: ``rootfs_tar`` (``--rootfs-tar``), else
    ``$HARNESS_ROOTFS_TAR``, else the verified cached download (:func:`fetch_alpine`).

    Commands call this before they make anything, so a machine without network access and
    without a local tarball fails at once, with one error naming both ways to give one.
    """
    origin = "--rootfs-tar"
    if rootfs_tar is None and os.environ.get(ROOTFS_TAR_ENV):
        rootfs_tar, origin = Path(os.environ[ROOTFS_TAR_ENV]), f"${ROOTFS_TAR_ENV}"
    if rootfs_tar is not None:
        try:
            verify_alpine_tarball(Path(rootfs_tar))
        except RootfsError as err:
            raise RootfsError(f"{origin}: {err}") from None
        return Path(rootfs_tar)
    return fetch_alpine()


def fetch_alpine(
    *, arch: str | None = None, mirror: str | None = None, cache: Path | None = None, timeout: float = 60
) -> Path:
    """The verified Alpine minirootfs tarball for ``arch`` (default: this machine), downloading
    it on first use.

    ``cache`` is the folder the tarball is kept in (default ``cache_dir() / "rootfs"``); a
    cached file is checked against the pinned sha256 on every call and downloaded again if it
    does not match. The download goes to a temporary file in the same folder, hashed while it
    streams, and is moved into place atomically, so concurrent callers are safe and a failed or
    mismatching download leaves nothing behind. ``mirror`` (or ``$HARNESS_ALPINE_MIRROR``)
    replaces ``https://dl-cdn.alpinelinux.org/alpine``.

    Raises :class:`RootfsError` for an architecture without a pinned checksum, a network
    failure (naming the URL and suggesting ``--rootfs-tar``) or a checksum mismatch.
    """
    arch = alpine_arch(arch)
    expected = ALPINE_SHA256.get(arch)
    name = alpine_filename(arch)
    if expected is None:
        raise RootfsError(
            f"the harness has no pinned sha256 for {name} (Alpine {ALPINE_VERSION} on {arch}), "
            "so it will not download it unchecked; get a root filesystem tarball yourself and "
            "pass it with --rootfs-tar PATH"
        )
    folder = Path(cache) if cache is not None else cache_dir() / "rootfs"
    path = folder / name
    if _cached_is_good(path, expected):
        return path

    url = alpine_url(arch, mirror)
    with contextlib.ExitStack() as replacing:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = replacing.enter_context(atomic.replacing(path, suffix=".part"))
        except OSError as err:
            raise RootfsError(f"cannot write to the cache folder {folder}: {err.strerror}") from None
        with tmp.open("wb") as out:
            digest = _download(url, out, timeout)
        if digest != expected:
            raise RootfsError(
                f"checksum mismatch for {url}: expected sha256 {expected}, got {digest}; the "
                "download is corrupt or the mirror serves another file. Nothing was cached; "
                "try again, or " + _offline_hint()
            )
    log.info("downloaded %s to %s", url, path)
    return path


def _download(url: str, out: BinaryIO, timeout: float) -> str:
    """Stream ``url`` into ``out``; the sha256 of what was written."""
    try:
        return download.download(url, out, timeout)
    except download.WriteFailed as err:
        raise RootfsError(f"cannot write the download of {url} to the cache: {err.reason}") from None
    except download.DownloadFailed as err:
        raise RootfsError(f"cannot download {url}: {err.reason}; " + _offline_hint()) from None


def verify_alpine_tarball(path: Path, arch: str | None = None) -> None:
    """Check a local tarball given with ``--rootfs-tar``.

    A file named like a pinned Alpine minirootfs (``alpine-minirootfs-3.20.3-<arch>.tar.gz``;
    only ``arch``'s name when ``arch`` is given) must match that pin; a file with any other name
    is the user's own tarball and is accepted as it is. A missing or unreadable file raises
    :class:`RootfsError` naming it.
    """
    path = Path(path)
    if not path.is_file():
        what = "does not exist" if not path.exists() else "is not a file"
        raise RootfsError(f"rootfs tarball {path} {what}")
    if not os.access(path, os.R_OK):
        raise RootfsError(f"rootfs tarball {path} is not readable")
    arches = [alpine_arch(arch)] if arch else list(ALPINE_SHA256)
    for a in arches:
        expected = ALPINE_SHA256.get(a)
        if expected is None or path.name != alpine_filename(a):
            continue
        actual = _sha256_file(path)
        if actual != expected:
            raise RootfsError(
                f"{path} is named like the official Alpine {ALPINE_VERSION} minirootfs for {a}, "
                f"but its sha256 is {actual}, not {expected}; download it again (or rename it "
                "if it is a tarball of your own)"
            )
        return


def _log_warnings(result: ExtractResult, source: object) -> None:
    for warning in result.warnings:
        log.warning("rootfs from %s: %s", source, warning)


def _looks_like_path(source: str) -> bool:
    return os.sep in source or source.startswith((".", "~")) or source.lower().endswith(_TAR_SUFFIXES)


def populate(source: str, dest: Path, *, rootfs_tar: Path | None = None) -> None:
    """Fill the existing, empty folder ``dest`` from ``source``.

    ``source`` is ``"probe"`` (leave it empty: the bundle adds the probe binary), ``"alpine"``
    (extract ``rootfs_tar`` after :func:`verify_alpine_tarball`, or the tarball from
    :func:`fetch_alpine`), a folder (copied, see :func:`copy_tree`) or a file (a tar archive in
    any compression, extracted safely). ``rootfs_tar`` only goes with ``"alpine"``.

    Raises :class:`RootfsError`; on error ``dest`` is left in whatever state it reached, and
    removing it is the caller's job.
    """
    dest = Path(dest)
    if not dest.is_dir():
        raise RootfsError(f"the rootfs folder {dest} does not exist")
    if any(dest.iterdir()):
        raise RootfsError(f"the rootfs folder {dest} is not empty")
    if rootfs_tar is not None and source != "alpine":
        raise RootfsError(f"--rootfs-tar goes with the alpine rootfs source, not {source!r}")

    if source == "probe":
        return
    if source == "alpine":
        tarball = alpine_tarball(rootfs_tar)
        _log_warnings(extract(tarball, dest), tarball)
        return

    path = Path(source).expanduser()
    if not os.path.lexists(path):
        if _looks_like_path(source):
            raise RootfsError(f"rootfs source {source!r} does not exist")
        raise RootfsError(f"unknown rootfs source {source!r}: use probe, alpine, a folder or a tarball")
    if path.is_dir():
        _log_warnings(copy_tree(path, dest), path)
    elif path.is_file():
        _log_warnings(extract(path, dest), path)
    else:
        raise RootfsError(f"rootfs source {source!r} is neither a folder nor a tarball")


# -- copying a folder -----------------------------------------------------------------------------
_SRC_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_SRC_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _copy_data(src_fd: int, dst_fd: int) -> int:
    total = 0
    try:
        while n := os.sendfile(dst_fd, src_fd, None, _CHUNK * 8):
            total += n
        return total
    except OSError as err:
        if err.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP) or total:
            raise
    while chunk := os.read(src_fd, _CHUNK):
        view = memoryview(chunk)
        while view:
            view = view[os.write(dst_fd, view) :]
        total += len(chunk)
    return total


def _src_xattrs(target: int, result: ExtractResult, label: str) -> dict[str, bytes]:
    """Extended attributes of a source entry (``target`` an fd); unreadable ones are warnings."""
    try:
        names = os.listxattr(target)
    except OSError as err:
        if err.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP):
            result.warnings.append(f"could not list xattrs of {label!r}: {err.strerror}")
        return {}
    values = {}
    for name in names:
        try:
            values[name] = os.getxattr(target, name)
        except OSError as err:
            result.warnings.append(f"could not read xattr {name} of {label!r}: {err.strerror}")
    return values


def _meta_of(st: os.stat_result, xattrs: dict[str, bytes] | None = None) -> EntryMeta:
    return EntryMeta(stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime_ns, st.st_atime_ns, xattrs or {})


def copy_tree(src: Path, dest: Path) -> ExtractResult:
    """Copy the folder ``src`` into the existing folder ``dest`` (its contents, and its own mode,
    owner and times onto ``dest``).

    Symlinks are copied as symlinks and never followed; files hard-linked together inside
    ``src`` stay linked; modes (setuid/setgid too), times and xattrs are kept, owners and device
    nodes only when root (device nodes are skipped with a warning otherwise). Sockets are skipped
    with a warning. Writes go through the same descriptor-based writer as archive extraction.
    Copying a folder into itself (``dest`` inside ``src``) is refused.
    """
    src, dest = Path(src), Path(dest)
    real_src, real_dest = src.resolve(), dest.resolve()
    if real_dest == real_src or real_src in real_dest.parents:
        raise RootfsError(f"refusing to copy the folder {src} into itself ({dest} is inside it)")
    try:
        dest_st = os.stat(dest)
        root_fd = os.open(src, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as err:
        raise RootfsError(f"cannot open {err.filename}: {err.strerror}") from None
    result = ExtractResult()
    links: dict[tuple[int, int], tuple[str, ...]] = {}
    dest_id = (dest_st.st_dev, dest_st.st_ino)

    def label_of(parts: tuple[str, ...]) -> str:
        return "/".join(parts) or "."

    def copy_dir(dir_fd: int, parts: tuple[str, ...], writer: TreeWriter) -> None:
        with os.scandir(dir_fd) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            child = (*parts, entry.name)
            label = label_of(child)
            st = entry.stat(follow_symlinks=False)
            result.entries += 1
            mode = st.st_mode
            if not stat.S_ISDIR(mode) and st.st_nlink > 1:
                key = (st.st_dev, st.st_ino)
                if key in links:
                    writer.hardlink(child, links[key], label, label_of(links[key]))
                    continue
                links[key] = child
            if stat.S_ISDIR(mode):
                if (st.st_dev, st.st_ino) == dest_id:
                    raise RootfsError(f"refusing to copy the folder {src} into itself ({dest} is inside it)")
                fd = os.open(entry.name, _SRC_DIR_FLAGS, dir_fd=dir_fd)
                try:
                    writer.directory(child, _meta_of(st, _src_xattrs(fd, result, label)), label)
                    copy_dir(fd, child, writer)
                finally:
                    os.close(fd)
            elif stat.S_ISREG(mode):
                fd = os.open(entry.name, _SRC_FILE_FLAGS, dir_fd=dir_fd)
                try:
                    now = os.fstat(fd)
                    if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
                        raise RootfsError(f"{src}/{label} changed while it was being copied")
                    meta = _meta_of(st, _src_xattrs(fd, result, label))
                    writer.regular(child, meta, label, functools.partial(_copy_data, fd))
                finally:
                    os.close(fd)
            elif stat.S_ISLNK(mode):
                target = os.readlink(entry.name, dir_fd=dir_fd)
                writer.symlink(child, target, _meta_of(st), label)
            elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
                writer.node(child, stat.S_IFMT(mode), _meta_of(st), label, (os.major(st.st_rdev), os.minor(st.st_rdev)))
            else:
                result.warnings.append(f"skipped {label!r}: sockets and other special files are not copied")

    try:
        with TreeWriter(dest, result) as writer:
            root_st = os.fstat(root_fd)
            writer.directory((), _meta_of(root_st, _src_xattrs(root_fd, result, ".")), ".")
            copy_dir(root_fd, (), writer)
            writer.finish()
    except OSError as err:
        raise RootfsError(f"cannot copy {src} to {dest}: {err}") from None
    finally:
        os.close(root_fd)
    return result
