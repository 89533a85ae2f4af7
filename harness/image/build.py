"""Building images into an OCI image layout, reproducibly.

An image is a base layer plus derived layers. The base is the Alpine minirootfs (its tarball is
stored as the layer blob unchanged, so every image on that base shares one blob), another tarball,
a folder, or nothing (``scratch``). A derived layer is either a folder holding the complete new
root filesystem (the layer is its difference from the image so far: changed entries, whiteouts
``.wh.NAME`` for deletions) or a list of changes (files added or changed, folders, links,
devices, deletions, opaque folders).

Layers we write are byte-for-byte reproducible: entries in sorted order, PAX headers without user
or group names, a fixed mtime (``SOURCE_DATE_EPOCH``, else 0) for generated entries, gzip without
a name or timestamp; configs and manifests are canonical JSON with a fixed ``created`` time. The
same inputs (and the same zlib) give the same digests, which :func:`generate_image` relies on.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import random
import stat
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from .._safetar import Readable
from .layers import OPAQUE_MARKER, RAW, WHITEOUT_PREFIX, unpack_layer
from .layout import MEDIA_TYPES, Descriptor, Image, ImageError, Layout, host_arch

__all__ = ["DEFAULT_PATH", "ImageBuilder", "LayerWriter", "generate_image"]

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_CHUNK = 1 << 20


def _epoch() -> int:
    try:
        return int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    except ValueError:
        return 0


def _iso(ts: int) -> str:
    import datetime as _dt

    return _dt.datetime.fromtimestamp(ts, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _name(parts: tuple[str, ...]) -> str:
    return "/".join(parts)


def _split(path: str) -> tuple[str, ...]:
    parts = tuple(p for p in path.split("/") if p not in ("", "."))
    if ".." in parts:
        raise ImageError(f"change path {path!r} contains '..'")
    if not parts:
        raise ImageError(f"change path {path!r} names the root")
    return parts


class _HashWriter:
    def __init__(self, out: Any):
        self._out = out
        self.hash = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self._out.write(data)
        return len(data)

    def flush(self) -> None:
        pass


@dataclass
class DirMeta:
    mode: int = 0o755
    uid: int = 0
    gid: int = 0
    mtime: int = 0


class LayerWriter:
    """Writes one layer archive as a blob; use :meth:`ImageBuilder.layer`."""

    def __init__(self, tar: tarfile.TarFile, mtime: int, dirs: dict[tuple[str, ...], DirMeta]):
        self._tar = tar
        self.mtime = mtime
        self._dirs = dirs
        self._emitted: set[tuple[str, ...]] = set()

    def _info(
        self,
        parts: tuple[str, ...],
        kind: bytes,
        mode: int,
        uid: int,
        gid: int,
        mtime: int | None,
        xattrs: dict[str, bytes] | None = None,
    ) -> tarfile.TarInfo:
        info = tarfile.TarInfo(_name(parts))
        info.type = kind
        info.mode = mode & 0o7777
        info.uid, info.gid = uid, gid
        info.uname = info.gname = ""
        info.mtime = self.mtime if mtime is None else mtime
        if xattrs:
            info.pax_headers = {
                f"SCHILY.xattr.{k}": v.decode("utf-8", "surrogateescape") for k, v in sorted(xattrs.items())
            }
        return info

    def parents(self, parts: tuple[str, ...]) -> None:
        """Emit the parent folders of ``parts`` (as the image has them) once per layer."""
        for i in range(1, len(parts)):
            prefix = parts[:i]
            if prefix in self._emitted:
                continue
            meta = self._dirs.get(prefix, DirMeta(mtime=self.mtime))
            self._tar.addfile(self._info(prefix, tarfile.DIRTYPE, meta.mode, meta.uid, meta.gid, meta.mtime))
            self._dirs[prefix] = meta
            self._emitted.add(prefix)

    def dir(
        self,
        path: str | tuple[str, ...],
        *,
        mode: int = 0o755,
        uid: int = 0,
        gid: int = 0,
        mtime: int | None = None,
        xattrs: dict[str, bytes] | None = None,
    ) -> None:
        parts = _split(path) if isinstance(path, str) else path
        self.parents(parts)
        info = self._info(parts, tarfile.DIRTYPE, mode, uid, gid, mtime, xattrs)
        self._tar.addfile(info)
        self._dirs[parts] = DirMeta(mode & 0o7777, uid, gid, int(info.mtime))
        self._emitted.add(parts)

    def file(
        self,
        path: str | tuple[str, ...],
        data: bytes | Readable,
        *,
        size: int | None = None,
        mode: int = 0o644,
        uid: int = 0,
        gid: int = 0,
        mtime: int | None = None,
        xattrs: dict[str, bytes] | None = None,
    ) -> None:
        parts = _split(path) if isinstance(path, str) else path
        self.parents(parts)
        self._forget(parts)
        info = self._info(parts, tarfile.REGTYPE, mode, uid, gid, mtime, xattrs)
        if isinstance(data, bytes):
            info.size = len(data)
            self._tar.addfile(info, io.BytesIO(data))
        else:
            assert size is not None
            info.size = size
            self._tar.addfile(info, data)

    def symlink(
        self, path: str | tuple[str, ...], target: str, *, uid: int = 0, gid: int = 0, mtime: int | None = None
    ) -> None:
        parts = _split(path) if isinstance(path, str) else path
        self.parents(parts)
        self._forget(parts)
        info = self._info(parts, tarfile.SYMTYPE, 0o777, uid, gid, mtime)
        info.linkname = target
        self._tar.addfile(info)

    def hardlink(self, path: str | tuple[str, ...], target: str | tuple[str, ...]) -> None:
        parts = _split(path) if isinstance(path, str) else path
        tparts = _split(target) if isinstance(target, str) else target
        self.parents(parts)
        self._forget(parts)
        info = self._info(parts, tarfile.LNKTYPE, 0o644, 0, 0, None)
        info.linkname = _name(tparts)
        self._tar.addfile(info)

    def node(
        self,
        path: str | tuple[str, ...],
        kind: str,
        major: int = 0,
        minor: int = 0,
        *,
        mode: int = 0o666,
        uid: int = 0,
        gid: int = 0,
        mtime: int | None = None,
    ) -> None:
        types = {"char": tarfile.CHRTYPE, "block": tarfile.BLKTYPE, "fifo": tarfile.FIFOTYPE}
        parts = _split(path) if isinstance(path, str) else path
        self.parents(parts)
        self._forget(parts)
        info = self._info(parts, types[kind], mode, uid, gid, mtime)
        info.devmajor, info.devminor = major, minor
        self._tar.addfile(info)

    def delete(self, path: str | tuple[str, ...]) -> None:
        """A whiteout: ``path`` of the layers below is removed."""
        parts = _split(path) if isinstance(path, str) else path
        self.parents(parts)
        self._forget(parts)
        info = self._info((*parts[:-1], WHITEOUT_PREFIX + parts[-1]), tarfile.REGTYPE, 0o644, 0, 0, None)
        self._tar.addfile(info, io.BytesIO(b""))

    def opaque(self, path: str | tuple[str, ...], *, mode: int | None = None) -> None:
        """Make the folder ``path`` opaque: nothing of it from the layers below stays."""
        parts = _split(path) if isinstance(path, str) else path
        meta = self._dirs.get(parts, DirMeta(mtime=self.mtime))
        self._forget(parts, keep_self=True)
        self.dir(parts, mode=meta.mode if mode is None else mode, uid=meta.uid, gid=meta.gid, mtime=meta.mtime)
        self._tar.addfile(self._info((*parts, OPAQUE_MARKER), tarfile.REGTYPE, 0o644, 0, 0, None), io.BytesIO(b""))

    def _forget(self, parts: tuple[str, ...], keep_self: bool = False) -> None:
        n = len(parts)
        for key in [k for k in self._dirs if k[:n] == parts and (k != parts or not keep_self)]:
            del self._dirs[key]

    def add(self, info: tarfile.TarInfo, data: BinaryIO | None = None) -> None:
        """A member as it is (from another archive); parents are not added."""
        self._tar.addfile(info, data)


def apply_changes(writer: LayerWriter, changes: Iterable[dict[str, Any]]) -> None:
    """Write a list of changes (JSON objects with ``op``) into a layer.

    ``{"op": "file", "path": P, "content": TEXT | "base64": B64, "mode": 420, "uid", "gid"}``,
    ``{"op": "dir", "path", "mode"}``, ``{"op": "symlink", "path", "target"}``,
    ``{"op": "hardlink", "path", "target"}``, ``{"op": "char"|"block"|"fifo", "path", "major",
    "minor"}``, ``{"op": "delete", "path"}``, ``{"op": "opaque", "path"}``.
    """
    import base64

    for i, change in enumerate(changes):
        if not isinstance(change, dict) or "op" not in change or "path" not in change:
            raise ImageError(f"change #{i} must be an object with op and path: {change!r:.80}")
        op, path = change["op"], change["path"]
        common = {k: change[k] for k in ("uid", "gid") if k in change}
        try:
            if op == "file":
                data = (
                    base64.b64decode(change["base64"])
                    if "base64" in change
                    else str(change.get("content", "")).encode()
                )
                writer.file(path, data, mode=int(change.get("mode", 0o644)), **common)
            elif op == "dir":
                writer.dir(path, mode=int(change.get("mode", 0o755)), **common)
            elif op == "symlink":
                writer.symlink(path, str(change["target"]), **common)
            elif op == "hardlink":
                writer.hardlink(path, str(change["target"]))
            elif op in ("char", "block", "fifo"):
                writer.node(
                    path,
                    op,
                    int(change.get("major", 0)),
                    int(change.get("minor", 0)),
                    mode=int(change.get("mode", 0o666)),
                    **common,
                )
            elif op == "delete":
                writer.delete(path)
            elif op == "opaque":
                writer.opaque(path)
            else:
                raise ImageError(
                    f"change #{i}: unknown op {op!r} (file, dir, symlink, hardlink, char, block, fifo, delete, opaque)"
                )
        except KeyError as err:
            raise ImageError(f"change #{i} ({op} {path}) lacks {err.args[0]!r}") from None


# -- diffs of folders -----------------------------------------------------------------------------
def _xattrs(path: str) -> dict[str, bytes]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    out = {}
    for name in names:
        if name.startswith("trusted.overlay.") or name == "security.selinux":
            continue
        try:
            out[name] = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            pass
    return out


def _same(a: os.stat_result, b: os.stat_result, pa: str, pb: str) -> bool:
    if stat.S_IFMT(a.st_mode) != stat.S_IFMT(b.st_mode) or a.st_mode != b.st_mode:
        return False
    if (a.st_uid, a.st_gid) != (b.st_uid, b.st_gid):
        return False
    if stat.S_ISDIR(a.st_mode):
        return a.st_mtime_ns // 10**9 == b.st_mtime_ns // 10**9 and _xattrs(pa) == _xattrs(pb)
    if stat.S_ISLNK(a.st_mode):
        return os.readlink(pa) == os.readlink(pb)
    if stat.S_ISCHR(a.st_mode) or stat.S_ISBLK(a.st_mode):
        return a.st_rdev == b.st_rdev
    if stat.S_ISREG(a.st_mode):
        if a.st_size != b.st_size or _xattrs(pa) != _xattrs(pb):
            return False
        if a.st_mtime_ns // 10**9 == b.st_mtime_ns // 10**9:
            return True
        with open(pa, "rb") as fa, open(pb, "rb") as fb:
            while True:
                x, y = fa.read(_CHUNK), fb.read(_CHUNK)
                if x != y:
                    return False
                if not x:
                    return True
    return a.st_mtime_ns // 10**9 == b.st_mtime_ns // 10**9


def diff_folders(
    writer: LayerWriter, lower: Path | None, upper: Path, *, keep_dirs: frozenset[tuple[str, ...]] = frozenset()
) -> int:
    """Write into ``writer`` what turns ``lower`` (None: nothing) into ``upper``: changed and new
    entries in full, deleted ones as whiteouts (written before their siblings). Returns the
    number of changes.

    ``keep_dirs`` (with ``lower`` None): folders the image already has. ``upper`` holding one of
    them does not rewrite it: it keeps the image's mode and owner, and ``upper``'s content is
    added to it (what a Dockerfile COPY does)."""
    links: dict[tuple[int, int], tuple[str, ...]] = {}
    count = 0

    def entry(parts: tuple[str, ...], path: str, st: os.stat_result) -> None:
        nonlocal count
        count += 1
        mode, mtime = st.st_mode, int(st.st_mtime)
        if stat.S_ISDIR(mode):
            writer.dir(parts, mode=stat.S_IMODE(mode), uid=st.st_uid, gid=st.st_gid, mtime=mtime, xattrs=_xattrs(path))
            return
        if st.st_nlink > 1:
            key = (st.st_dev, st.st_ino)
            if key in links:
                writer.hardlink(parts, links[key])
                return
            links[key] = parts
        if stat.S_ISREG(mode):
            with open(path, "rb") as f:
                writer.file(
                    parts,
                    f,
                    size=st.st_size,
                    mode=stat.S_IMODE(mode),
                    uid=st.st_uid,
                    gid=st.st_gid,
                    mtime=mtime,
                    xattrs=_xattrs(path),
                )
        elif stat.S_ISLNK(mode):
            writer.symlink(parts, os.readlink(path), uid=st.st_uid, gid=st.st_gid, mtime=mtime)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
            kind = "char" if stat.S_ISCHR(mode) else "block" if stat.S_ISBLK(mode) else "fifo"
            writer.node(
                parts,
                kind,
                os.major(st.st_rdev),
                os.minor(st.st_rdev),
                mode=stat.S_IMODE(mode),
                uid=st.st_uid,
                gid=st.st_gid,
                mtime=mtime,
            )

    def walk(parts: tuple[str, ...]) -> None:
        up = os.path.join(upper, *parts) if parts else str(upper)
        low = (os.path.join(lower, *parts) if parts else str(lower)) if lower is not None else None
        names = sorted(os.listdir(up))
        old = set(os.listdir(low)) if low is not None else set()
        for name in sorted(old - set(names)):
            writer.delete((*parts, name))
            count_up()
        for name in names:
            if name.startswith(WHITEOUT_PREFIX):
                raise ImageError(
                    f"{up}/{name}: names starting with {WHITEOUT_PREFIX} cannot be in an image (they are whiteouts)"
                )
            child = (*parts, name)
            cp = os.path.join(up, name)
            st = os.lstat(cp)
            lst = None
            if name in old:
                lst = os.lstat(os.path.join(low, name))  # type: ignore[arg-type]
            if lst is None and child in keep_dirs and stat.S_ISDIR(st.st_mode):
                pass  # a folder the image has: only what is inside it is added
            elif lst is None or not _same(st, lst, cp, os.path.join(low, name)):  # type: ignore[arg-type]
                if lst is not None and stat.S_ISDIR(lst.st_mode) and not stat.S_ISDIR(st.st_mode):
                    pass  # a non-folder over a folder replaces it whole
                entry(child, cp, st)
            if stat.S_ISDIR(st.st_mode):
                if lst is not None and stat.S_ISDIR(lst.st_mode):
                    walk_into(child, merged=True)
                else:
                    walk_into(child, merged=False)

    def count_up() -> None:
        nonlocal count
        count += 1

    def walk_into(parts: tuple[str, ...], merged: bool) -> None:
        nonlocal lower
        if merged:
            walk(parts)
        else:
            saved, lower = lower, None
            try:
                walk(parts)
            finally:
                lower = saved

    walk(())
    return count


# -- images ---------------------------------------------------------------------------------------
@dataclass
class _Layer:
    desc: Descriptor
    diff_id: str
    created_by: str


@dataclass
class ImageBuilder:
    """Builds one image in ``layout``: a base, then layers, then :meth:`commit`.

    ``compress`` writes gzip layers (``+gzip``), else plain tar. ``config`` is the image config's
    ``config`` object (Env, Cmd, Entrypoint, WorkingDir, User, Labels...).
    """

    layout: Layout
    compress: bool = True
    level: int = 6
    mtime: int = field(default_factory=_epoch)
    layers: list[_Layer] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=lambda: {"Env": [DEFAULT_PATH]})
    _dirs: dict[tuple[str, ...], DirMeta] = field(default_factory=dict)

    # -- bases ------------------------------------------------------------------------------------
    def base(self, source: str | Path, *, rootfs_tar: Path | None = None) -> None:
        """``alpine`` (``rootfs_tar`` or the cached download), ``scratch`` (no layer), a tarball or
        a folder."""
        from harness import rootfs as _rootfs

        if self.layers:
            raise ImageError("the base must come before any other layer")
        source = str(source)
        if source == "scratch":
            return
        if source == "alpine":
            tarball = _rootfs.alpine_tarball(rootfs_tar)
            self.add_tarball(tarball, created_by=f"alpine minirootfs {_rootfs.ALPINE_VERSION}")
            self.config.setdefault("Cmd", ["/bin/sh"])
            return
        if rootfs_tar is not None:
            raise ImageError("--rootfs-tar goes with the alpine base")
        path = Path(source).expanduser()
        if path.is_dir():
            self.add_tree(path)
        elif path.is_file():
            self.add_tarball(path)
        else:
            raise ImageError(f"image base {source!r} is neither alpine, scratch, a folder nor a tarball")

    def from_image(self, image: Image) -> None:
        """Start from an existing image of the same layout (its blobs are shared)."""
        if image.layout.path.resolve() != self.layout.path.resolve():
            raise ImageError("a base image must be in the layout the new image goes to")
        for desc, diff_id in zip(image.layers, image.diff_ids, strict=False):
            self.layers.append(_Layer(desc, diff_id, "base image"))
            self._scan_dirs(desc)
        self.config = json.loads(json.dumps(image.config.get("config") or {}))

    def add_tarball(self, path: Path, *, created_by: str | None = None) -> Descriptor:
        """A tar archive as a layer: gzip and plain tar are stored as they are (same file, same
        blob), bzip2 and xz are recompressed with gzip."""
        path = Path(path)
        try:
            with open(path, "rb") as f:
                head = f.read(6)
        except OSError as err:
            raise ImageError(f"cannot read the tarball {path}: {err.strerror}") from None
        if head.startswith(b"\x1f\x8b") or not head.startswith((b"BZh", b"\xfd7zXZ")):
            media = MEDIA_TYPES.LAYER_GZIP if head.startswith(b"\x1f\x8b") else MEDIA_TYPES.LAYER
            with self.layout.blob_writer() as sink, open(path, "rb") as f:
                while chunk := f.read(_CHUNK):
                    sink.write(chunk)
            desc = Descriptor(media, sink.digest, sink.size)
        else:
            from harness._safetar import decompressed  # the archive's bytes, decompressed

            with open(path, "rb") as f, self._blob(compress=True) as (sink, out):
                reader = decompressed(f, str(path))
                while chunk := reader.read(_CHUNK):
                    out.write(chunk)
            desc = sink.desc
        diff_id = self._scan_dirs(desc)
        self.layers.append(_Layer(desc, diff_id, created_by or f"tarball {path.name}"))
        return desc

    def _scan_dirs(self, desc: Descriptor) -> str:
        """Read a layer's headers: update the folder model; returns its diff id (checked)."""
        hashing = None
        try:
            with self.layout.open_blob(desc) as blob:
                raw: Any = gzip.GzipFile(fileobj=blob, mode="rb") if desc.media_type.endswith("gzip") else blob  # type: ignore[call-overload]
                from .layers import Hashing

                hashing = Hashing(raw)
                with tarfile.open(fileobj=hashing, mode="r|") as tf:  # type: ignore[call-overload]
                    for info in tf:
                        parts = tuple(p for p in info.name.split("/") if p not in ("", "."))
                        if not parts:
                            continue
                        base = parts[-1]
                        if base == OPAQUE_MARKER:
                            n = len(parts) - 1
                            for k in [k for k in self._dirs if k[:n] == parts[:-1] and len(k) > n]:
                                del self._dirs[k]
                        elif base.startswith(WHITEOUT_PREFIX):
                            gone = (*parts[:-1], base[len(WHITEOUT_PREFIX) :])
                            for k in [k for k in self._dirs if k[: len(gone)] == gone]:
                                del self._dirs[k]
                        elif info.isdir():
                            self._dirs[parts] = DirMeta(info.mode & 0o7777, info.uid, info.gid, int(info.mtime))
                while hashing.read(_CHUNK):
                    pass
                blob.drain()
        except (tarfile.TarError, OSError, EOFError) as err:
            raise ImageError(f"layer {desc.digest} is not a readable tar archive: {err}") from None
        return "sha256:" + hashing.hash.hexdigest()

    @contextmanager
    def _blob(self, *, compress: bool | None = None) -> Iterator[tuple[Any, Any]]:
        compress = self.compress if compress is None else compress
        with self.layout.blob_writer() as sink:
            if compress:
                gz = gzip.GzipFile(
                    filename="",
                    mode="wb",
                    fileobj=sink,
                    mtime=0,
                    compresslevel=self.level,
                )
                out = _HashWriter(gz)
                yield sink, out
                gz.close()
            else:
                out = _HashWriter(sink)
                yield sink, out
        media = MEDIA_TYPES.LAYER_GZIP if compress else MEDIA_TYPES.LAYER
        sink.desc = Descriptor(media, sink.digest, sink.size)
        sink.diff_id = "sha256:" + out.hash.hexdigest()

    @contextmanager
    def layer(self, created_by: str = "harness image build") -> Iterator[LayerWriter]:
        """``with builder.layer() as w: w.file(...); w.delete(...)`` adds one layer."""
        with (
            self._blob() as (sink, out),
            tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar,
        ):
            yield LayerWriter(tar, self.mtime, self._dirs)
        self.layers.append(_Layer(sink.desc, sink.diff_id, created_by))

    def add_changes(self, changes: list[dict[str, Any]], created_by: str = "harness changes") -> None:
        with self.layer(created_by) as w:
            apply_changes(w, changes)

    def add_folder(self, folder: Path) -> None:
        """A layer of what ``folder`` adds or changes, as a Dockerfile ``COPY folder /`` does:
        its files are added to the image (replacing those at the same paths), folders the image
        already has keep their mode and owner and get the folder's content added; nothing of the
        image is removed. (:meth:`add_tree` takes a folder as the whole new root filesystem.)"""
        folder = Path(folder)
        if not folder.is_dir():
            raise ImageError(f"layer folder {folder} does not exist")
        with self.layer(f"folder {folder.name}") as w:
            diff_folders(w, None, folder, keep_dirs=frozenset(self._dirs))

    def add_tree(self, folder: Path) -> None:
        """A layer turning the image so far into the content of ``folder`` (the whole new root
        filesystem): new and changed entries, and a whiteout for everything of the image that
        ``folder`` lacks."""
        folder = Path(folder)
        if not folder.is_dir():
            raise ImageError(f"root filesystem folder {folder} does not exist")
        if not self.layers:
            with self.layer(f"tree {folder.name}") as w:
                diff_folders(w, None, folder)
            return
        with tempfile.TemporaryDirectory(prefix=".harness-flat-", dir=self.layout.path) as tmp:
            lower = Path(tmp) / "rootfs"
            for layer in self.layers:
                unpack_layer(self.layout, layer.desc, layer.diff_id, lower, form=RAW)
            with self.layer(f"tree {folder.name}") as w:
                diff_folders(w, lower, folder)

    # -- committing -------------------------------------------------------------------------------
    def commit(self, tag: str | None = None, *, labels: dict[str, str] | None = None) -> Image:
        cfg = dict(self.config)
        if labels:
            cfg["Labels"] = {**(cfg.get("Labels") or {}), **labels}
        created = _iso(self.mtime)
        config = {
            "architecture": host_arch(),
            "os": "linux",
            "created": created,
            "config": cfg,
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in self.layers]},
            "history": [{"created": created, "created_by": layer.created_by} for layer in self.layers],
        }
        config_desc = self.layout.write_json(config, MEDIA_TYPES.CONFIG)
        manifest = {
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPES.MANIFEST,
            "config": config_desc.to_json(),
            "layers": [layer.desc.to_json() for layer in self.layers],
        }
        manifest_desc = self.layout.write_json(manifest, MEDIA_TYPES.MANIFEST)
        if tag:
            self.layout.tag(tag, manifest_desc)
        return self.layout.load_image(manifest_desc, ref=tag)


def generate_image(
    layout: Layout,
    tag: str,
    *,
    layers: int,
    files: int,
    size: int | tuple[int, int],
    seed: int = 0,
    base: str = "scratch",
    rootfs_tar: Path | None = None,
    churn: bool = True,
    compress: bool = True,
) -> Image:
    """A benchmark image: ``base`` plus ``layers`` layers of ``files`` files each, of ``size`` bytes
    (or a size drawn from ``(min, max)``), contents from ``random.Random(seed)``.

    With ``churn``, each layer after the first also deletes one file of the layer before,
    overwrites another and makes the folder of the layer two below opaque, so whiteouts of
    both kinds are exercised. Same arguments, same blobs, byte for byte.
    """
    if layers < 0 or files < 0:
        raise ImageError("layers and files must not be negative")
    rng = random.Random(seed)
    builder = ImageBuilder(layout, compress=compress)
    builder.base(base, rootfs_tar=rootfs_tar)
    for i in range(layers):
        with builder.layer(f"generated layer {i} (seed {seed})") as w:
            w.dir(f"bench/l{i:04d}", mode=0o755)
            for j in range(files):
                n = size if isinstance(size, int) else rng.randint(*size)
                w.file(f"bench/l{i:04d}/f{j:05d}", rng.randbytes(n), mode=0o644)
            if churn and i >= 1 and files >= 2:
                prev = f"bench/l{i - 1:04d}"
                w.delete(f"{prev}/f{0:05d}")
                w.file(f"{prev}/f{1:05d}", rng.randbytes(16), mode=0o600)
            if churn and i >= 2 and i % 4 == 2:
                w.opaque(f"bench/l{i - 2:04d}")
                w.file(f"bench/l{i - 2:04d}/kept", b"opaque\n")
    builder.config["Labels"] = {"org.oci-harness.generated": f"layers={layers} files={files} size={size} seed={seed}"}
    return builder.commit(tag)
