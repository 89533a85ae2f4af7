"""Applying image layers (image-spec layer.md) safely, in two forms.

``raw`` form: the layer is applied onto a tree that already holds the layers below it (a
flattened rootfs). A whiteout ``.wh.NAME`` removes ``NAME``; an opaque marker ``.wh..wh..opq``
removes every child of its folder that the layer itself did not write. Whiteouts only ever hide
what lower layers made (layer.md: "Whiteout files MUST only apply to resources in lower/parent
layers"), whatever their position in the archive: the applier remembers which paths the layer
wrote, and a whiteout never removes those.

``overlay`` form: the layer is unpacked alone into its own folder, in the format overlayfs
reads as a lower layer: a whiteout becomes a character device 0/0 named ``NAME``, an opaque
folder gets the xattr ``trusted.overlay.opaque=y``; a folder the layer recreates after whiting it
out is made opaque too. Two things of the layers below can matter to a layer alone, and they are
copied up the way overlayfs would when the layer was made: a hard link to a file of a lower layer
(the file is copied into this layer first), and the owner, mode and times of parent folders the
archive does not list. A layer that needed either is marked ``depends_on_lowers``; the layer
store then keys it by its chain (the digests of it and all below), not by its own digest.

Everything goes through :class:`harness._safetar.TreeWriter`: entries that would leave the
target (``..``, absolute names, through a symlink, hard links to outside) are refused with the
entry named; whiteouts remove through the same descriptor walk and never follow a symlink.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness._safetar import (
    EntryMeta,
    ExtractResult,
    Readable,
    TreeWriter,
    apply_archive,
    normalize_name,
    write_member,
)
from harness.errors import RootfsError

from .layout import Descriptor, DigestMismatch, ImageError, Layout

__all__ = ["OPAQUE_XATTR", "OVERLAY", "RAW", "LayerResult", "apply_layer", "unpack_layer"]

RAW = "raw"
OVERLAY = "overlay"
WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
_CHUNK = 1 << 20
_GZIP_TYPES_SUFFIX = ("+gzip", ".gzip")


@dataclass
class LayerResult(ExtractResult):
    depends_on_lowers: bool = False
    diff_id: str = ""


Parts = tuple[str, ...]


def _is_whiteout_dev(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


class _Lowers:
    """Read-only, symlink-safe lookups in the folders of the layers below (top first), in
    overlay form (whiteouts are 0/0 devices, opaque folders end the search)."""

    def __init__(self, lowers: Sequence[Path]):
        self.paths = [Path(p) for p in lowers]

    def find(self, parts: Parts) -> tuple[int, os.stat_result] | None:
        """(descriptor of the parent folder in the layer that has ``parts``, its lstat), or None
        if no layer below has it (or hides it). The caller closes the descriptor."""
        for root in self.paths:
            fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            hides_below = False
            try:
                complete = True
                for comp in parts[:-1]:
                    try:
                        st = os.lstat(comp, dir_fd=fd)
                    except FileNotFoundError:
                        complete = False
                        break
                    if _is_whiteout_dev(st) or not stat.S_ISDIR(st.st_mode):
                        return None  # whited out, or a non-folder hides all below
                    nxt = os.open(comp, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
                    os.close(fd)
                    fd = nxt
                    hides_below = hides_below or _opaque(fd)
                if complete:
                    try:
                        st = os.lstat(parts[-1], dir_fd=fd)
                    except FileNotFoundError:
                        pass
                    else:
                        if _is_whiteout_dev(st):
                            return None
                        found, fd = fd, -1
                        return found, st
                if hides_below:
                    return None
            finally:
                if fd >= 0:
                    os.close(fd)
        return None


def _opaque(fd: int) -> bool:
    try:
        return os.getxattr(f"/proc/self/fd/{fd}", OPAQUE_XATTR) == b"y"
    except OSError:
        return False


class _Applier:
    """The per-member handler of :func:`apply_layer`."""

    def __init__(self, form: str, lowers: Sequence[Path], result: LayerResult):
        self.form = form
        self.lowers = _Lowers(lowers)
        self.result = result
        self.written: set[Parts] = {()}
        self.whited: set[Parts] = set()
        self.ready: set[Parts] = {()}  # folders known to exist in an overlay-form layer

    def mark(self, parts: Parts) -> None:
        while parts not in self.written:
            self.written.add(parts)
            parts = parts[:-1]

    def __call__(self, tf: tarfile.TarFile, info: tarfile.TarInfo, writer: TreeWriter) -> None:
        parts = normalize_name(info.name)
        if parts and parts[-1].startswith(WHITEOUT_PREFIX):
            self.whiteout(parts, info, writer)
            return
        if self.form == OVERLAY:
            self.prepare_parents(parts[:-1], info.name, writer)
            if info.islnk():
                self.copy_up_link_target(info, writer)
        write_member(tf, info, writer)
        if info.isdir():
            self.ready.add(parts)
            if self.form == OVERLAY and parts in self.whited:
                writer.set_dir_xattr(parts, OPAQUE_XATTR, b"y", info.name)
        self.whited.discard(parts)
        self.mark(parts)

    # -- whiteouts ----------------------------------------------------------------------------------
    def whiteout(self, parts: Parts, info: tarfile.TarInfo, writer: TreeWriter) -> None:
        label = info.name
        name, parent = parts[-1], parts[:-1]
        if name == OPAQUE_MARKER:
            if self.form == RAW:
                self.clean(parent, label, writer)
            else:
                self.prepare_parents(parts[:-1], label, writer)
                writer.set_dir_xattr(parent, OPAQUE_XATTR, b"y", label)
            return
        if name.startswith(WHITEOUT_PREFIX * 2):
            return  # aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): not content
        victim = name[len(WHITEOUT_PREFIX) :]
        if victim in ("", ".", ".."):
            raise RootfsError(f"refusing whiteout {label!r}: it names no entry of its folder")
        target = (*parent, victim)
        if self.form == RAW:
            if target in self.written:
                st = writer.lookup(target, label)
                if st is not None and stat.S_ISDIR(st.st_mode):
                    self.clean(target, label, writer)
            else:
                writer.remove(target, label)
            return
        if target in self.written:
            st = writer.lookup(target, label)
            if st is not None and stat.S_ISDIR(st.st_mode):
                writer.set_dir_xattr(target, OPAQUE_XATTR, b"y", label)
            return
        self.prepare_parents(parent, label, writer)
        writer.node(target, stat.S_IFCHR, EntryMeta(0, 0, 0, int(info.mtime) * 10**9), label, (0, 0))
        st = writer.lookup(target, label)
        if st is None or not _is_whiteout_dev(st):
            raise RootfsError(
                f"cannot create the overlay whiteout for {label!r}: a 0/0 character device needs root (CAP_MKNOD)"
            )
        self.whited.add(target)

    def clean(self, folder: Parts, label: str, writer: TreeWriter) -> None:
        """Remove what lower layers put in ``folder``, keeping what this layer wrote."""
        for name in writer.listdir(folder, label):
            child = (*folder, name)
            if child not in self.written:
                writer.remove(child, label)
            else:
                st = writer.lookup(child, label)
                if st is not None and stat.S_ISDIR(st.st_mode):
                    self.clean(child, label, writer)

    # -- copy-up (overlay form) ---------------------------------------------------------------------
    def prepare_parents(self, parents: Parts, label: str, writer: TreeWriter) -> None:
        """Make the missing parent folders of an entry as the layers below have them (owner,
        mode, times), and turn a whited-out parent back into an (opaque) folder."""
        for i in range(1, len(parents) + 1):
            prefix = parents[:i]
            if prefix in self.ready:
                continue
            if prefix in self.whited:
                writer.remove(prefix, label)
                writer.directory(prefix, EntryMeta(0o755), label)
                writer.set_dir_xattr(prefix, OPAQUE_XATTR, b"y", label)
                self.whited.discard(prefix)
                self.ready.add(prefix)
                continue
            st = writer.lookup(prefix, label)
            if st is not None:
                if stat.S_ISDIR(st.st_mode):
                    self.ready.add(prefix)
                    continue
                if stat.S_ISLNK(st.st_mode):
                    raise RootfsError(
                        f"refusing archive entry {label!r}: {'/'.join(prefix)!r} is a symlink, and "
                        "following it could write outside the target"
                    )
                raise RootfsError(f"refusing archive entry {label!r}: {'/'.join(prefix)!r} is not a directory")
            found = self.lowers.find(prefix)
            meta = EntryMeta(0o755)
            if found is not None:
                fd, lst = found
                os.close(fd)
                if stat.S_ISLNK(lst.st_mode):
                    raise RootfsError(
                        f"refusing archive entry {label!r}: {'/'.join(prefix)!r} is a symlink in a "
                        "lower layer, and following it could write outside the target"
                    )
                if not stat.S_ISDIR(lst.st_mode):
                    raise RootfsError(
                        f"refusing archive entry {label!r}: {'/'.join(prefix)!r} is not a directory in a lower layer"
                    )
                meta = EntryMeta(stat.S_IMODE(lst.st_mode), lst.st_uid, lst.st_gid, lst.st_mtime_ns, lst.st_atime_ns)
                self.result.depends_on_lowers = True
            writer.directory(prefix, meta, label)
            self.ready.add(prefix)

    def copy_up_link_target(self, info: tarfile.TarInfo, writer: TreeWriter) -> None:
        target = info.linkname
        if target.startswith("/") or ".." in target.split("/") or "\0" in target:
            return  # write_member refuses it with the entry named
        tparts = normalize_name(target)
        if not tparts or writer.lookup(tparts, info.name) is not None:
            return
        found = self.lowers.find(tparts)
        if found is None:
            raise RootfsError(
                f"refusing hard link {info.name!r} to {target!r}: neither this layer nor a layer below has that file"
            )
        parent_fd, st = found
        try:
            self.prepare_parents(tparts[:-1], info.name, writer)
            meta = EntryMeta(stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime_ns, st.st_atime_ns)
            if stat.S_ISREG(st.st_mode):
                src = os.open(tparts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
                try:
                    writer.regular(tparts, meta, target, lambda out: _copy_fd(src, out))
                finally:
                    os.close(src)
            elif stat.S_ISLNK(st.st_mode):
                writer.symlink(tparts, os.readlink(tparts[-1], dir_fd=parent_fd), meta, target)
            elif stat.S_ISDIR(st.st_mode):
                raise RootfsError(f"refusing hard link {info.name!r} to {target!r}: it is a directory")
            else:
                writer.node(tparts, stat.S_IFMT(st.st_mode), meta, target, (os.major(st.st_rdev), os.minor(st.st_rdev)))
        finally:
            os.close(parent_fd)
        self.mark(tparts)
        self.result.depends_on_lowers = True


def _copy_fd(src: int, dst: int) -> int:
    total = 0
    try:
        while n := os.copy_file_range(src, dst, 1 << 30):
            total += n
        return total
    except OSError:
        pass
    while chunk := os.read(src, _CHUNK):
        os.write(dst, chunk)
        total += len(chunk)
    return total


def apply_layer(
    stream: Readable, target: Path, *, form: str = RAW, lowers: Sequence[Path] = (), label: str = "the layer"
) -> LayerResult:
    """Apply the layer archive ``stream`` (plain or compressed tar) to the folder ``target``.

    ``form`` is :data:`RAW` (``target`` holds the layers below: whiteouts remove from it) or
    :data:`OVERLAY` (``target`` is this layer's own new folder; ``lowers`` are the overlay-form
    folders of the layers below, top first, used only to copy up hard-link targets and parent
    folder attributes). Raises :class:`RootfsError` naming the entry that is refused.
    """
    if form not in (RAW, OVERLAY):
        raise ValueError(f"unknown layer form {form!r}")
    result = LayerResult()
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    with TreeWriter(target, result) as writer:
        applier = _Applier(form, lowers, result)
        apply_archive(stream, writer, label=label, handle=applier)
        try:
            writer.finish()
        except OSError as err:
            raise RootfsError(f"cannot set folder metadata in {target}: {err}") from None
    return result


class Hashing:
    """Hashes the decompressed archive as it is read (for the layer's diff id)."""

    def __init__(self, source: Any):
        self._src = source
        self.hash = hashlib.sha256()
        self.name = getattr(source, "name", "layer")

    def read(self, n: int = -1) -> bytes:
        data = self._src.read(n)
        self.hash.update(data)
        return data

    def readable(self) -> bool:
        return True


def unpack_layer(
    layout: Layout, desc: Descriptor, diff_id: str | None, target: Path, *, form: str = RAW, lowers: Sequence[Path] = ()
) -> LayerResult:
    """Apply the layer blob ``desc`` of ``layout`` to ``target`` (see :func:`apply_layer`),
    checking the blob's digest and size and, when given, the digest of the uncompressed archive
    against ``diff_id`` (config ``rootfs.diff_ids``). A mismatch raises
    :class:`~harness.image.layout.DigestMismatch`; what was written is the caller's to remove."""
    label = f"layer {desc.digest}"
    with layout.open_blob(desc) as blob:
        compressed = desc.media_type.endswith(_GZIP_TYPES_SUFFIX)
        inner: Any = gzip.GzipFile(fileobj=blob, mode="rb") if compressed else blob  # type: ignore[call-overload]
        hashing = Hashing(inner)
        try:
            result = apply_layer(hashing, target, form=form, lowers=lowers, label=label)
            while hashing.read(_CHUNK):
                pass
        except (OSError, EOFError) as err:
            raise ImageError(f"{label} is corrupt: {err}; copy the image again") from None
        except RootfsError as err:
            if not blob.checked:
                # A corrupt blob reads as a corrupt archive: say which it is.
                try:
                    blob.drain()
                except DigestMismatch as mismatch:
                    raise mismatch from None
                except Exception:
                    pass
            raise err
        blob.drain()
        if not blob.checked:
            raise DigestMismatch(f"{label}: the blob was not read to its end")
    result.diff_id = "sha256:" + hashing.hash.hexdigest()
    if diff_id is not None and result.diff_id != diff_id:
        raise DigestMismatch(
            f"{label}: its uncompressed content has digest {result.diff_id}, "
            f"but the image config says {diff_id}; the image is corrupt, copy "
            "it again"
        )
    return result
