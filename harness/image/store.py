"""A content-addressed store of unpacked layers, for overlay bundles.

Each layer is unpacked once, in overlay form (see :mod:`harness.image.layers`: whiteouts as 0/0
character devices, opaque folders with ``trusted.overlay.opaque=y``), into
``ROOT/sha256/<diff-id hex>/``. Every image that has the layer (any compression: the key is the
digest of the uncompressed archive, the diff id) uses that one folder as an overlayfs lowerdir.
A layer that hard-links to a file of a layer below it, or whose archive lacks a parent folder the
layers below have, depends on those layers; it is kept under its chain id instead,
``ROOT/chain/sha256/<chain-id hex>/`` (chain id as in image-spec config.md: the digest of the
parent's chain id, a space and the diff id), as containerd keys its snapshots.

Unpacking is atomic and safe for several processes: a process takes an exclusive ``fcntl`` lock
on ``ROOT/locks/<hex>.lock``, checks again, unpacks into a fresh ``ROOT/tmp/<hex>.<random>``
folder, then renames it into place. Readers never see half a layer; a crash leaves only a
``tmp`` folder that the next unpack of that digest removes (under the same lock).
The stored folders are never written to: overlay mounts use them read-only as lowerdirs.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness._paths import cache_dir

from .layers import OVERLAY, unpack_layer
from .layout import Image, ImageError

__all__ = ["LayerStore", "StoredLayer", "chain_ids", "default_store"]


def chain_ids(diff_ids: list[str] | tuple[str, ...]) -> list[str]:
    """image-spec config.md: ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " +
    DiffID(Ln))."""
    out: list[str] = []
    for d in diff_ids:
        out.append(d if not out else "sha256:" + hashlib.sha256(f"{out[-1]} {d}".encode()).hexdigest())
    return out


@dataclass(frozen=True)
class StoredLayer:
    diff_id: str
    path: Path
    by_chain: bool


class LayerStore:
    """Unpacked layers under ``root`` (default ``cache_dir()/"layers"``)."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else cache_dir() / "layers"
        #: Diff ids this instance unpacked (not found in the store), in order.
        self.unpacked: list[str] = []

    def _dir(self, digest: str, chain: bool) -> Path:
        hexpart = digest.split(":", 1)[1]
        return self.root / ("chain/sha256" if chain else "sha256") / hexpart

    def lookup(self, diff_id: str, chain_id: str) -> StoredLayer | None:
        for chain, key in ((False, diff_id), (True, chain_id)):
            path = self._dir(key, chain)
            if path.is_dir():
                return StoredLayer(diff_id, path, chain)
        return None

    @contextmanager
    def _lock(self, digest: str) -> Iterator[None]:
        locks = self.root / "locks"
        locks.mkdir(parents=True, exist_ok=True)
        fd = os.open(locks / (digest.split(":", 1)[1] + ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def ensure(self, image: Image) -> list[StoredLayer]:
        """The stored folders of ``image``'s layers, bottom first, unpacking those not yet there."""
        if os.geteuid() != 0:
            raise ImageError(
                "the layer store needs root: overlay whiteouts are 0/0 character "
                "devices and opaque folders carry a trusted.* xattr"
            )
        chains = chain_ids(image.diff_ids)
        out: list[StoredLayer] = []
        for desc, diff_id, chain_id in zip(image.layers, image.diff_ids, chains, strict=False):
            found = self.lookup(diff_id, chain_id)
            if found is None:
                found = self._unpack(image, desc, diff_id, chain_id, [s.path for s in reversed(out)])
            out.append(found)
        return out

    def _unpack(self, image: Image, desc, diff_id: str, chain_id: str, lowers: list[Path]) -> StoredLayer:
        with self._lock(diff_id):
            found = self.lookup(diff_id, chain_id)
            if found is not None:
                return found
            tmp_root = self.root / "tmp"
            tmp_root.mkdir(parents=True, exist_ok=True)
            hexpart = diff_id.split(":", 1)[1]
            for stale in tmp_root.glob(hexpart + ".*"):  # a crashed unpack of this digest
                shutil.rmtree(stale, ignore_errors=True)
            tmp = Path(tempfile.mkdtemp(prefix=hexpart + ".", dir=tmp_root))
            try:
                os.chmod(tmp, 0o755)  # the layer's own root entry, if it has one, overrides this
                result = unpack_layer(image.layout, desc, diff_id, tmp, form=OVERLAY, lowers=lowers)
                final = self._dir(chain_id if result.depends_on_lowers else diff_id, result.depends_on_lowers)
                final.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.rename(tmp, final)
                except OSError:
                    if not final.is_dir():  # another chain of the same layer got there first
                        raise
                    shutil.rmtree(tmp, ignore_errors=True)
                self.unpacked.append(diff_id)
                return StoredLayer(diff_id, final, result.depends_on_lowers)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise

    def file_layer(self, source: Path, name: str, mode: int = 0o755) -> Path:
        """A stored one-file layer holding ``source`` as ``/name`` (the probe), keyed by the
        file's sha256, so overlay bundles share it instead of copying it into every upper
        folder."""
        st = os.stat(source)
        memo = (str(self.root), name, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        final = _FILE_LAYERS.get(memo)
        if final is not None and final.is_dir():
            return final
        h = hashlib.sha256()
        with open(source, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        key = "sha256:" + h.hexdigest()
        final = self.root / "files" / f"{h.hexdigest()}-{name}"
        _FILE_LAYERS[memo] = final
        if final.is_dir():
            return final
        with self._lock(key):
            if final.is_dir():
                return final
            tmp_root = self.root / "tmp"
            tmp_root.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=h.hexdigest() + ".", dir=tmp_root))
            try:
                os.chmod(tmp, 0o755)
                shutil.copyfile(source, tmp / name)
                os.chmod(tmp / name, mode)
                final.parent.mkdir(parents=True, exist_ok=True)
                os.rename(tmp, final)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return final

    def disk_usage(self) -> int:
        """Bytes the store takes (st_blocks), hard links counted once."""
        return tree_bytes(self.root)


#: (store, name, file identity) -> stored one-file layer: saves hashing the probe per bundle.
_FILE_LAYERS: dict[tuple, Path] = {}


def default_store() -> LayerStore:
    return LayerStore()


def tree_counts(path: Path) -> tuple[int, int]:
    """(disk bytes from st_blocks * 512, inodes) of everything under ``path``, each inode once,
    mounts not crossed."""
    seen: set[tuple[int, int]] = set()
    try:
        top = os.lstat(path)
    except FileNotFoundError:
        return 0, 0
    seen.add((top.st_dev, top.st_ino))
    total = top.st_blocks * 512
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except FileNotFoundError:
                continue
            if st.st_dev != top.st_dev:
                if name in dirnames:
                    dirnames.remove(name)
                continue
            key = (st.st_dev, st.st_ino)
            if key not in seen:
                seen.add(key)
                total += st.st_blocks * 512
    return total, len(seen)


def tree_bytes(path: Path) -> int:
    """Disk bytes of everything under ``path`` (see :func:`tree_counts`)."""
    return tree_counts(path)[0]
