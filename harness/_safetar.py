"""Extract a tar archive into a folder without ever writing outside it.

Whatever an archive holds (``../`` names, absolute names, symlinks that point out of the tree and
entries that then try to write through them, hard links to files outside), nothing outside the
target folder is created, changed or removed.

How: host paths are never built by joining strings. Every write happens relative to a file
descriptor of the entry's parent folder, and that descriptor is reached by walking the entry's
path one component at a time from a descriptor of the target, opening each component with
``O_PATH | O_DIRECTORY | O_NOFOLLOW``. A symlink in the extracted tree therefore cannot redirect
a write: walking into it fails, and the entry is refused. Entries are then created with the
``*at`` calls (``O_CREAT | O_EXCL | O_NOFOLLOW``, ``mkdirat``, ``symlinkat``, ``linkat`` without
following, ``mknodat``), so the final component is never followed either.

Symlinks are created as they are in the archive: their target text is content, resolved later only
inside the container.

:class:`TreeWriter` is the part that creates entries safely; :func:`extract` feeds it from a tar
archive, and :mod:`harness.rootfs` feeds it from a folder.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import shutil
import stat
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import BinaryIO, Protocol

from harness.errors import RootfsError

__all__ = ["EntryMeta", "ExtractResult", "TreeWriter", "apply_archive", "extract", "normalize_name", "write_member"]

_CHUNK = 1 << 20
_WALK_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_XATTR_PREFIX = "SCHILY.xattr."


@dataclass
class ExtractResult:
    """What :func:`extract` (or a folder copy) did."""

    entries: int = 0
    """Archive members seen (every member counts, also skipped device nodes)."""
    bytes: int = 0
    """Bytes of regular-file data written."""
    warnings: list[str] = field(default_factory=list)
    """Things that could not be reproduced but do not make the tree unusable (device nodes when
    not root, xattrs the filesystem or kernel refused, owners that could not be set)."""


@dataclass
class EntryMeta:
    """The metadata of one entry: permission bits (with setuid/setgid/sticky), numeric owner,
    times in nanoseconds and extended attributes."""

    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    mtime_ns: int = 0
    atime_ns: int | None = None
    xattrs: dict[str, bytes] = field(default_factory=dict)

    @property
    def times_ns(self) -> tuple[int, int]:
        return (self.mtime_ns if self.atime_ns is None else self.atime_ns, self.mtime_ns)


Parts = tuple[str, ...]


PATH_MAX = 4096


def normalize_name(name: str) -> Parts:
    """The components of an archive entry name, or :class:`RootfsError` if it would leave the
    target. ``./`` prefixes, empty and ``.`` components are dropped; the root entry gives ``()``.
    """
    if "\0" in name:
        raise RootfsError(f"refusing archive entry {name!r}: its name contains a NUL byte")
    if len(name.encode(errors="surrogateescape")) > PATH_MAX:
        # No real file has such a path; unpacking it would build a huge tree of folders.
        raise RootfsError(
            f"refusing archive entry {name[:60]!r}...: its name is {len(name)} characters long, more than PATH_MAX ({PATH_MAX})"
        )
    if name.startswith("/"):
        raise RootfsError(f"refusing archive entry {name!r}: it would write outside the target")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise RootfsError(f"refusing archive entry {name!r}: it would write outside the target")
    return parts


class TreeWriter:
    """Creates entries below ``root`` through directory descriptors only.

    Entry paths are tuples of components, already checked by :func:`normalize_name` (or built
    from a folder listing). Parent folders missing from the input are created (mode 0755).
    Directory owner, mode and times are applied by :meth:`finish`, deepest first, so that
    creating children does not change them afterwards and a read-only folder can still be filled.
    Use as a context manager; call :meth:`finish` once everything is written.
    """

    def __init__(self, root: Path, result: ExtractResult) -> None:
        self.result = result
        self.is_root = os.geteuid() == 0
        try:
            self._root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as err:
            raise RootfsError(f"cannot open the target folder {root}: {err.strerror}") from None
        # The chain of open parent folders of the most recent entry; consecutive entries share
        # most of it. It always holds exactly the parents of the entry being written, so an entry
        # never replaces a folder whose descriptor is kept here.
        self._stack: list[tuple[str, int]] = []
        self._dirs: dict[Parts, EntryMeta] = {}
        self._chown_failures: list[str] = []

    # -- context ----------------------------------------------------------------------------------
    def __enter__(self) -> TreeWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._truncate(0)
        if self._root_fd >= 0:
            os.close(self._root_fd)
            self._root_fd = -1

    # -- walking ----------------------------------------------------------------------------------
    def _truncate(self, depth: int) -> None:
        while len(self._stack) > depth:
            os.close(self._stack.pop()[1])

    def _open_component(self, cur: int, comp: str, parts: Parts, i: int, *, create: bool, what: str) -> int:
        try:
            return os.open(comp, _WALK_FLAGS, dir_fd=cur)
        except FileNotFoundError:
            if not create:
                raise RootfsError(f"{what}: {'/'.join(parts[: i + 1])!r} does not exist") from None
            os.mkdir(comp, 0o755, dir_fd=cur)
            return os.open(comp, _WALK_FLAGS, dir_fd=cur)
        except (NotADirectoryError, OSError) as err:
            prefix = "/".join(parts[: i + 1])
            try:
                st = os.lstat(comp, dir_fd=cur)
            except OSError:
                raise RootfsError(f"{what}: cannot open {prefix!r}: {err.strerror}") from None
            if stat.S_ISLNK(st.st_mode):
                raise RootfsError(
                    f"{what}: {prefix!r} is a symlink, and following it could write outside the target"
                ) from None
            if not stat.S_ISDIR(st.st_mode):
                raise RootfsError(f"{what}: {prefix!r} is not a directory") from None
            raise RootfsError(f"{what}: cannot open {prefix!r}: {err.strerror}") from None

    def _parent(self, parents: Parts, *, create: bool, what: str) -> int:
        """A descriptor of the folder ``parents`` (owned by the stack; do not close it)."""
        common = 0
        limit = min(len(self._stack), len(parents))
        while common < limit and self._stack[common][0] == parents[common]:
            common += 1
        self._truncate(common)
        cur = self._stack[-1][1] if self._stack else self._root_fd
        for i in range(common, len(parents)):
            fd = self._open_component(cur, parents[i], parents, i, create=create, what=what)
            self._stack.append((parents[i], fd))
            cur = fd
        return cur

    def _resolve_private(self, parents: Parts, what: str) -> int:
        """Like :meth:`_parent` without creating anything or touching the stack; the caller
        closes the returned descriptor."""
        cur = os.dup(self._root_fd)
        try:
            for i, comp in enumerate(parents):
                nxt = self._open_component(cur, comp, parents, i, create=False, what=what)
                os.close(cur)
                cur = nxt
        except BaseException:
            os.close(cur)
            raise
        return cur

    # -- replacing --------------------------------------------------------------------------------
    def _forget_dirs(self, parts: Parts) -> None:
        n = len(parts)
        for key in [k for k in self._dirs if k[:n] == parts]:
            del self._dirs[key]

    def _remove(self, parent: int, name: str, parts: Parts) -> None:
        st = os.lstat(name, dir_fd=parent)
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(name, dir_fd=parent)  # dir-fd based, never follows symlinks
        else:
            os.unlink(name, dir_fd=parent)
        self._forget_dirs(parts)

    def _create(self, parent: int, name: str, parts: Parts, make: Callable[[], int | None]):
        """Run ``make`` (an ``*at`` call creating ``name``); if something is already there,
        remove it and try once more."""
        try:
            return make()
        except FileExistsError:
            self._remove(parent, name, parts)
            return make()

    # -- metadata helpers -------------------------------------------------------------------------
    def _owner_failed(self, label: str, err: OSError) -> None:
        self._chown_failures.append(f"{label!r}: {err.strerror}")

    def _set_xattrs_fd(self, fd: int, meta: EntryMeta, label: str) -> None:
        for key, value in meta.xattrs.items():
            try:
                os.setxattr(fd, key, value)
            except OSError as err:
                self.result.warnings.append(f"could not set xattr {key} on {label!r}: {err.strerror}")

    def _xattrs_unsupported(self, meta: EntryMeta, label: str, kind: str) -> None:
        if meta.xattrs:
            self.result.warnings.append(f"xattrs of {kind} {label!r} not applied ({', '.join(sorted(meta.xattrs))})")

    def _finish_fd(self, fd: int, meta: EntryMeta, label: str) -> None:
        """Owner, then mode (chown clears setuid/setgid), then xattrs (chown clears
        security.capability), then times."""
        if self.is_root:
            try:
                os.fchown(fd, meta.uid, meta.gid)
            except OSError as err:
                self._owner_failed(label, err)
        os.fchmod(fd, meta.mode & 0o7777)
        self._set_xattrs_fd(fd, meta, label)
        os.utime(fd, ns=meta.times_ns)

    def _finish_at(self, parent: int, name: str, meta: EntryMeta, label: str, *, chmod: bool) -> None:
        """Metadata of a node that cannot be opened for writing (symlink, fifo, device)."""
        if self.is_root:
            try:
                os.chown(name, meta.uid, meta.gid, dir_fd=parent, follow_symlinks=False)
            except OSError as err:
                self._owner_failed(label, err)
        if chmod:
            # Linux has no lchmod; the node was created a moment ago by us in this folder.
            os.chmod(name, meta.mode & 0o7777, dir_fd=parent)
        os.utime(name, ns=meta.times_ns, dir_fd=parent, follow_symlinks=False)

    # -- entries ----------------------------------------------------------------------------------
    def directory(self, parts: Parts, meta: EntryMeta, label: str) -> None:
        """A folder; an existing folder is kept (its metadata is replaced), anything else at the
        path is removed first. ``parts == ()`` is the target itself."""
        if parts:
            parent = self._parent(parts[:-1], create=True, what=f"refusing archive entry {label!r}")
            name = parts[-1]
            try:
                os.mkdir(name, 0o700, dir_fd=parent)
            except FileExistsError:
                st = os.lstat(name, dir_fd=parent)
                if not stat.S_ISDIR(st.st_mode):
                    self._remove(parent, name, parts)
                    os.mkdir(name, 0o700, dir_fd=parent)
            if meta.xattrs:
                fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
                try:
                    self._set_xattrs_fd(fd, meta, label)
                finally:
                    os.close(fd)
        else:
            self._set_xattrs_fd(self._root_fd, meta, label)
        self._dirs[parts] = meta

    def regular(self, parts: Parts, meta: EntryMeta, label: str, write: Callable[[int], int]) -> None:
        """A regular file whose data ``write(fd)`` writes (returning the byte count)."""
        if not parts:
            raise RootfsError(f"refusing archive entry {label!r}: the root must be a directory")
        parent = self._parent(parts[:-1], create=True, what=f"refusing archive entry {label!r}")
        name = parts[-1]
        fd = self._create(parent, name, parts, lambda: os.open(name, _NEW_FILE_FLAGS, 0o600, dir_fd=parent))
        try:
            self.result.bytes += write(fd)
            self._finish_fd(fd, meta, label)
        finally:
            os.close(fd)

    def symlink(self, parts: Parts, target: str, meta: EntryMeta, label: str) -> None:
        """A symlink with ``target`` as its text (not checked, never followed)."""
        if not parts:
            raise RootfsError(f"refusing archive entry {label!r}: the root must be a directory")
        if "\0" in target:
            raise RootfsError(f"refusing archive entry {label!r}: its link target has a NUL byte")
        parent = self._parent(parts[:-1], create=True, what=f"refusing archive entry {label!r}")
        name = parts[-1]
        self._create(parent, name, parts, lambda: os.symlink(target, name, dir_fd=parent))
        self._finish_at(parent, name, meta, label, chmod=False)
        self._xattrs_unsupported(meta, label, "symlink")

    def hardlink(self, parts: Parts, target: Parts, label: str, target_label: str) -> None:
        """A hard link to the existing non-directory ``target`` (found by the same safe walk; if
        ``target`` is a symlink, the link is to the symlink itself)."""
        if not parts or not target:
            raise RootfsError(f"refusing archive entry {label!r}: a hard link cannot be the root or point to it")
        if parts == target:
            return
        what = f"refusing hard link {label!r} to {target_label!r}"
        src_parent = self._resolve_private(target[:-1], what)
        try:
            try:
                st = os.lstat(target[-1], dir_fd=src_parent)
            except FileNotFoundError:
                raise RootfsError(f"{what}: the archive has no such entry before it") from None
            if stat.S_ISDIR(st.st_mode):
                raise RootfsError(f"{what}: it is a directory")
            parent = self._parent(parts[:-1], create=True, what=f"refusing archive entry {label!r}")
            name = parts[-1]
            self._create(
                parent,
                name,
                parts,
                lambda: os.link(target[-1], name, src_dir_fd=src_parent, dst_dir_fd=parent, follow_symlinks=False),
            )
        finally:
            os.close(src_parent)

    def node(self, parts: Parts, kind: int, meta: EntryMeta, label: str, device: tuple[int, int] = (0, 0)) -> None:
        """A fifo (``kind == stat.S_IFIFO``) or a device node (``S_IFCHR``/``S_IFBLK``); device
        nodes are skipped with a warning when not root (or when the kernel says no)."""
        if not parts:
            raise RootfsError(f"refusing archive entry {label!r}: the root must be a directory")
        if kind != stat.S_IFIFO and not self.is_root:
            self.result.warnings.append(f"skipped device node {label!r}: creating it needs root")
            return
        parent = self._parent(parts[:-1], create=True, what=f"refusing archive entry {label!r}")
        name = parts[-1]
        if kind == stat.S_IFIFO:
            self._create(parent, name, parts, lambda: os.mkfifo(name, 0o600, dir_fd=parent))
        else:
            try:
                self._create(
                    parent, name, parts, lambda: os.mknod(name, kind | 0o600, os.makedev(*device), dir_fd=parent)
                )
            except PermissionError as err:
                self.result.warnings.append(f"skipped device node {label!r}: {err.strerror}")
                return
        self._finish_at(parent, name, meta, label, chmod=True)
        self._xattrs_unsupported(meta, label, "special file")

    # -- looking and removing (layer whiteouts) -----------------------------------------------------
    def _existing_parent(self, parents: Parts, what: str) -> int | None:
        """A descriptor of the existing folder ``parents`` (owned by the stack), or None when a
        component is missing or not a folder. A symlink on the way is refused: following it could
        reach outside the target."""
        try:
            return self._parent(parents, create=False, what=what)
        except RootfsError as err:
            if "is a symlink" in str(err):
                raise
            return None

    def lookup(self, parts: Parts, label: str) -> os.stat_result | None:
        """``lstat`` of ``parts`` (never followed), or None if it does not exist. A symlink among
        its parents raises :class:`RootfsError` naming ``label``."""
        if not parts:
            return os.fstat(self._root_fd)
        parent = self._existing_parent(parts[:-1], f"refusing archive entry {label!r}")
        if parent is None:
            return None
        try:
            return os.lstat(parts[-1], dir_fd=parent)
        except FileNotFoundError:
            return None

    def remove(self, parts: Parts, label: str) -> bool:
        """Remove ``parts`` (a folder with everything in it) if it exists; whether it did. Never
        follows a symlink: a symlink is removed itself, one among the parents is refused."""
        if not parts:
            raise RootfsError(f"refusing archive entry {label!r}: it would remove the target itself")
        parent = self._existing_parent(parts[:-1], f"refusing archive entry {label!r}")
        if parent is None:
            return False
        try:
            self._remove(parent, parts[-1], parts)
        except FileNotFoundError:
            return False
        return True

    def listdir(self, parts: Parts, label: str) -> list[str]:
        """The names in the folder ``parts`` (empty if it is missing or not a folder)."""
        if parts:
            parent = self._existing_parent(parts[:-1], f"refusing archive entry {label!r}")
            if parent is None:
                return []
            try:
                fd = os.open(parts[-1], _DIR_FLAGS, dir_fd=parent)
            except OSError:
                try:
                    st = os.lstat(parts[-1], dir_fd=parent)
                except OSError:
                    return []
                if stat.S_ISLNK(st.st_mode):
                    raise RootfsError(
                        f"refusing archive entry {label!r}: {'/'.join(parts)!r} is a symlink, and "
                        "following it could reach outside the target"
                    ) from None
                return []
        else:
            fd = os.dup(self._root_fd)
        try:
            return os.listdir(fd)
        finally:
            os.close(fd)

    def set_dir_xattr(self, parts: Parts, key: str, value: bytes, label: str) -> None:
        """Set one extended attribute on the existing folder ``parts``; a refusal is an error
        (this is for attributes the tree needs, such as overlayfs's opaque marker)."""
        if parts:
            parent = self._parent(parts[:-1], create=False, what=f"refusing archive entry {label!r}")
            fd = os.open(parts[-1], _DIR_FLAGS, dir_fd=parent)
        else:
            fd = os.dup(self._root_fd)
        try:
            os.setxattr(fd, key, value)
        except OSError as err:
            raise RootfsError(f"cannot set xattr {key} on {label!r}: {err.strerror}") from None
        finally:
            os.close(fd)

    def open_private(self, parts: Parts, label: str) -> int:
        """A descriptor (``O_PATH``) of the folder ``parts`` for the caller to close."""
        return self._resolve_private(parts, f"refusing archive entry {label!r}")

    def finish(self) -> None:
        """Apply folder owners, modes and times, deepest first, then report owner failures."""
        for parts in sorted(self._dirs, key=len, reverse=True):
            meta = self._dirs[parts]
            label = "/".join(parts) or "."
            if parts:
                parent = self._parent(parts[:-1], create=False, what=f"folder {label!r}")
                fd = os.open(parts[-1], _DIR_FLAGS, dir_fd=parent)
            else:
                fd = os.dup(self._root_fd)
            try:
                meta_no_xattrs = EntryMeta(meta.mode, meta.uid, meta.gid, meta.mtime_ns, meta.atime_ns)
                self._finish_fd(fd, meta_no_xattrs, label)
            finally:
                os.close(fd)
        self._dirs.clear()
        self._truncate(0)
        if self._chown_failures:
            first = self._chown_failures[0]
            self.result.warnings.append(
                f"could not set the owner of {len(self._chown_failures)} entries (first: {first})"
            )
            self._chown_failures.clear()


# -- reading archives -----------------------------------------------------------------------------
class _Corrupt(Exception):
    """The archive bytes could not be read or decompressed."""


_READ_ERRORS = (EOFError, OSError, zlib.error, lzma.LZMAError, ValueError)


class _Reader:
    """The archive's (decompressed) bytes, read forward only.

    Gives tarfile ``read``, ``tell`` and forward ``seek`` so that it can run in its ordinary
    (non-stream) mode, and remembers the last read so :func:`extract` can tell a proper
    end-of-archive block from a truncated or garbled header (which tarfile silently takes as the
    end of the archive).
    """

    def __init__(self, source: Readable, prefix: bytes = b"", *, owns: bool = False) -> None:
        self._src = source
        self._owns = owns
        self._prefix = prefix
        self._pos = 0
        self.last_pos = -1
        self.last_data = b""

    def _raw_read(self, n: int) -> bytes:
        if self._prefix:
            data = self._prefix[:n]
            self._prefix = self._prefix[n:]
            if len(data) == n:
                return data
            return data + self._raw_read(n - len(data))
        chunks = []
        want = n
        while want > 0:
            try:
                chunk = self._src.read(want)
            except _READ_ERRORS as err:
                raise _Corrupt(str(err) or type(err).__name__) from err
            if not chunk:
                break
            chunks.append(chunk)
            want -= len(chunk)
        return b"".join(chunks)

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            parts = []
            while chunk := self.read(_CHUNK):
                parts.append(chunk)
            return b"".join(parts)
        data = self._raw_read(n)
        self.last_pos, self.last_data = self._pos, data
        self._pos += len(data)
        return data

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_CUR:
            pos += self._pos
        elif whence != os.SEEK_SET:
            raise _Corrupt("the archive needs seeking from its end, which a stream cannot do")
        if pos < self._pos:
            back = self._pos - pos
            if self.last_pos >= 0 and pos >= self.last_pos and self._pos == self.last_pos + len(self.last_data):
                # Step back within the last read by handing its tail out again.
                self._prefix = self.last_data[pos - self.last_pos :] + self._prefix
                self._pos = pos
                return pos
            raise _Corrupt(f"the archive needs seeking back {back} bytes, which a stream cannot do")
        while self._pos < pos:
            step = min(pos - self._pos, _CHUNK)
            got = self._raw_read(step)
            self._pos += len(got)
            if len(got) < step:
                break
        return self._pos

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def close(self) -> None:
        """Close the decompressor this reader created (never the caller's file)."""
        if self._owns and isinstance(self._src, io.IOBase):
            self._src.close()


class Readable(Protocol):
    """What an archive is read from: a file, a decompressor, or a wrapper that hashes as it reads."""

    def read(self, n: int = -1, /) -> bytes: ...


def decompressed(source: Readable, label: str) -> _Reader:
    """Wrap ``source`` in a decompressor chosen by its first bytes (gzip, bzip2, xz, none)."""
    try:
        head = source.read(6)
        while 0 < len(head) < 6:
            more = source.read(6 - len(head))
            if not more:
                break
            head += more
    except OSError as err:
        raise _Corrupt(str(err)) from err
    if not head:
        raise _Corrupt("the file is empty")
    first = _Reader(source, head)
    if head.startswith(b"\x1f\x8b"):
        return _Reader(gzip.GzipFile(fileobj=first, mode="rb"), owns=True)
    if head.startswith(b"BZh"):
        return _Reader(bz2.BZ2File(first), owns=True)
    if head.startswith(b"\xfd7zXZ\x00"):
        return _Reader(lzma.LZMAFile(first), owns=True)  # type: ignore[arg-type]
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        raise RootfsError(
            f"{label} is zstd-compressed, which the harness cannot read; "
            "decompress it first (zstd -d) or use gzip, bzip2 or xz"
        )
    return first


def _times(info: tarfile.TarInfo) -> tuple[int, int | None]:
    """mtime and atime in ns; PAX values keep their sub-second part exactly."""

    def ns(text: str | None) -> int | None:
        if not text:
            return None
        try:
            return int(Decimal(text) * 1_000_000_000)
        except InvalidOperation:
            return None

    mtime = ns(info.pax_headers.get("mtime"))
    if mtime is None:
        mtime = int(info.mtime) * 1_000_000_000
    return mtime, ns(info.pax_headers.get("atime"))


def _meta(info: tarfile.TarInfo) -> EntryMeta:
    mtime, atime = _times(info)
    xattrs = {
        key[len(_XATTR_PREFIX) :]: value.encode("utf-8", "surrogateescape")
        for key, value in info.pax_headers.items()
        if key.startswith(_XATTR_PREFIX)
    }
    return EntryMeta(info.mode & 0o7777, info.uid, info.gid, mtime, atime, xattrs)


def _type_name(info: tarfile.TarInfo) -> str:
    return info.type.decode("ascii", "backslashreplace")


def write_member(tf: tarfile.TarFile, info: tarfile.TarInfo, writer: TreeWriter) -> None:
    """Create the archive member ``info`` (data read from ``tf``) through ``writer``."""
    label = info.name
    parts = normalize_name(info.name)
    meta = _meta(info)
    if info.isreg():  # also contiguous and GNU sparse files
        data = tf.extractfile(info)
        assert data is not None

        def write(fd: int) -> int:
            total = 0
            while True:
                chunk = data.read(_CHUNK)  # tarfile.ReadError / _Corrupt: see extract()
                if not chunk:
                    return total
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
                total += len(chunk)

        writer.regular(parts, meta, label, write)
    elif info.isdir():
        writer.directory(parts, meta, label)
    elif info.issym():
        writer.symlink(parts, info.linkname, meta, label)
    elif info.islnk():
        target = info.linkname
        if target.startswith("/") or ".." in target.split("/") or "\0" in target:
            raise RootfsError(f"refusing hard link {label!r} to {target!r}: it would link to a file outside the target")
        writer.hardlink(parts, normalize_name(target), label, target)
    elif info.ischr() or info.isblk():
        kind = stat.S_IFCHR if info.ischr() else stat.S_IFBLK
        writer.node(parts, kind, meta, label, (info.devmajor, info.devminor))
    elif info.isfifo():
        writer.node(parts, stat.S_IFIFO, meta, label)
    else:
        raise RootfsError(
            f"archive entry {label!r} has an unsupported type "
            f"({_type_name(info)!r}); the harness extracts files, folders, "
            "links, fifos and device nodes"
        )


def _check_end(reader: _Reader, tf: tarfile.TarFile) -> None:
    """Tell a proper end-of-archive block from a header tarfile could not read."""
    block = reader.last_data if reader.last_pos == tf.offset else None
    if block is None or len(block) < tarfile.BLOCKSIZE:
        where = "in the middle of a header" if block else "without an end-of-archive marker"
        raise _Corrupt(f"the archive ends {where} at byte {tf.offset}")
    if block.count(0) != tarfile.BLOCKSIZE:
        raise _Corrupt(f"invalid header at byte {tf.offset}")
    # Read what is left so the decompressor checks its own end (gzip CRC and length).
    while reader.read(_CHUNK):
        pass


def extract(archive: Path | BinaryIO, target: Path) -> ExtractResult:
    """Extract the tar archive ``archive`` (a path or a binary file object read from its current
    position; plain, gzip, bzip2 or xz, detected from the content) into the folder ``target``.

    ``target`` is created (with its parents) if it does not exist; an existing folder is extracted
    into, entries already there being replaced. Nothing outside ``target`` is ever written.

    Owners (numeric ids from the archive) and device nodes are only reproduced when running as
    root; otherwise device nodes are skipped with a warning in the result. Extended attributes
    from PAX headers (``SCHILY.xattr.*``) are applied where the kernel allows; refusals are
    warnings.

    Raises :class:`RootfsError` for an unreadable, truncated or corrupt archive, for entries that
    would reach outside ``target`` (absolute names, ``..``, writes or hard links through a symlink)
    and for unsupported entry types. On error, ``target`` holds whatever was extracted so far.
    """
    label = (
        str(archive) if isinstance(archive, (str, os.PathLike)) else str(getattr(archive, "name", "the archive stream"))
    )
    target = Path(target)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RootfsError(f"cannot create the folder {target}: {err.strerror}") from None

    opened: BinaryIO | None = None
    if isinstance(archive, (str, os.PathLike)):
        try:
            opened = open(archive, "rb")  # noqa: SIM115 - closed below
        except OSError as err:
            raise RootfsError(f"cannot read the archive {archive}: {err.strerror}") from None
        source: BinaryIO = opened
    else:
        source = archive

    result = ExtractResult()
    try:
        with TreeWriter(target, result) as writer:
            apply_archive(source, writer, label=label)
            try:
                writer.finish()
            except OSError as err:
                raise RootfsError(f"cannot set folder metadata in {target}: {err}") from None
    finally:
        if opened is not None:
            opened.close()
    return result


Handler = Callable[[tarfile.TarFile, tarfile.TarInfo, TreeWriter], None]


def apply_archive(source: Readable, writer: TreeWriter, *, label: str, handle: Handler = write_member) -> None:
    """Read the tar archive ``source`` (plain, gzip, bzip2 or xz) member by member and pass each
    to ``handle(tf, info, writer)`` (default :func:`write_member`); counts members in
    ``writer.result``. Does not call ``writer.finish()``.

    A truncated or corrupt archive (also one whose decompressor checks fail at the end) raises
    :class:`RootfsError` naming ``label`` and the member being read; so does an ``OSError`` while
    writing a member.
    """
    current = ""
    result = writer.result

    def corrupt(reason: object) -> RootfsError:
        return RootfsError(f"{label} is not a readable tar archive (truncated or corrupt): {reason}; download it again")

    reader: _Reader | None = None
    try:
        reader = decompressed(source, label)
        tf = tarfile.TarFile(fileobj=reader, mode="r")  # type: ignore[arg-type]
        while (info := tf.next()) is not None:
            tf.members = []  # type: ignore[attr-defined]  # keep memory flat on big archives (typeshed omits this TarFile attribute)
            current = info.name
            result.entries += 1
            handle(tf, info, writer)
        current = ""
        _check_end(reader, tf)
    except (tarfile.TarError, _Corrupt, EOFError, zlib.error) as err:
        where = f" (at entry {current!r})" if current else ""
        raise corrupt(f"{err}{where}") from None
    except OSError as err:
        raise RootfsError(f"cannot extract archive entry {current!r} from {label}: {err.strerror or err}") from None
    finally:
        if reader is not None:
            reader.close()
