"""The OCI image layout (image-spec image-layout.md): ``oci-layout``, ``index.json`` and
content-addressed blobs under ``blobs/<algorithm>/<encoded>``.

Every blob read is checked against its descriptor: its size and its digest. JSON blobs
(manifests, configs, indexes) are read whole and checked before they are parsed; layer blobs are
streamed through :class:`VerifiedReader`, which raises :class:`DigestMismatch` when the stream
ends with the wrong digest or size, so an unpack that reads a corrupt blob fails before anything
is kept.

Blobs are written to a temporary file in the blob folder and renamed into place once their digest
is known, so a reader never sees half a blob and a blob that is already there is not rewritten.
``index.json`` is replaced atomically, under an ``fcntl`` lock on the ``oci-layout`` file, so
several processes can tag images in one layout.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import platform
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from harness import atomic
from harness.errors import HarnessError

__all__ = [
    "MEDIA_TYPES",
    "Descriptor",
    "DigestMismatch",
    "Image",
    "ImageError",
    "Layout",
    "VerifiedReader",
    "parse_reference",
]

LAYOUT_VERSION = "1.0.0"
REF_NAME = "org.opencontainers.image.ref.name"


class MEDIA_TYPES:
    INDEX = "application/vnd.oci.image.index.v1+json"
    MANIFEST = "application/vnd.oci.image.manifest.v1+json"
    CONFIG = "application/vnd.oci.image.config.v1+json"
    LAYER = "application/vnd.oci.image.layer.v1.tar"
    LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
    LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
    DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
    DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
    DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
    DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"


_INDEX_TYPES = {MEDIA_TYPES.INDEX, MEDIA_TYPES.DOCKER_LIST}
_MANIFEST_TYPES = {MEDIA_TYPES.MANIFEST, MEDIA_TYPES.DOCKER_MANIFEST}
_LAYER_TYPES = {
    MEDIA_TYPES.LAYER,
    MEDIA_TYPES.LAYER_GZIP,
    MEDIA_TYPES.DOCKER_LAYER_GZIP,
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
}
_ZSTD_TYPES = {MEDIA_TYPES.LAYER_ZSTD, "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"}
_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
_CHUNK = 1 << 20
#: JSON blobs bigger than this are refused (a manifest or config is kilobytes).
MAX_JSON_BLOB = 16 << 20


class ImageError(HarnessError):
    """An OCI image layout or image that cannot be read or written."""


class DigestMismatch(ImageError):
    """A blob whose content does not match its descriptor (digest or size)."""


def _check_digest(digest: object, where: str) -> str:
    if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
        if isinstance(digest, str) and ":" in digest and not digest.startswith("sha256:"):
            raise ImageError(
                f"{where}: digest {digest!r} uses an algorithm the harness does not "
                "support (only sha256); convert the image, e.g. with skopeo copy"
            )
        raise ImageError(f"{where}: {digest!r} is not a valid sha256 digest")
    return digest


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor (descriptor.md): what a blob is, its digest and its size."""

    media_type: str
    digest: str
    size: int
    annotations: dict[str, str] = field(default_factory=dict)
    platform: dict[str, Any] | None = None

    @property
    def hex(self) -> str:
        return self.digest.split(":", 1)[1]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.platform:
            out["platform"] = self.platform
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out

    @classmethod
    def from_json(cls, data: Any, where: str) -> Descriptor:
        if not isinstance(data, dict):
            raise ImageError(f"{where}: a descriptor must be a JSON object, not {data!r:.60}")
        media_type = data.get("mediaType")
        size = data.get("size")
        if not isinstance(media_type, str):
            raise ImageError(f"{where}: the descriptor has no mediaType string")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ImageError(f"{where}: the descriptor's size {size!r} is not a non-negative integer")
        annotations = data.get("annotations") or {}
        if not isinstance(annotations, dict):
            raise ImageError(f"{where}: the descriptor's annotations are not an object")
        return cls(
            media_type,
            _check_digest(data.get("digest"), where),
            size,
            {str(k): str(v) for k, v in annotations.items()},
            data.get("platform"),
        )


class VerifiedReader:
    """A binary reader over a blob file that checks size and digest as it is read.

    Reading past the descriptor's size, or reaching the end with a different sha256 or length,
    raises :class:`DigestMismatch`. Call :meth:`drain` to read (and so check) what is left.
    """

    def __init__(self, path: Path, desc: Descriptor):
        self.desc = desc
        self.path = path
        try:
            self._f = open(path, "rb", buffering=0)  # noqa: SIM115 - closed in close()
        except FileNotFoundError:
            raise ImageError(
                f"blob {desc.digest} is missing from the layout ({path} does not "
                "exist); copy the image again (e.g. skopeo copy)"
            ) from None
        except OSError as err:
            raise ImageError(f"cannot read blob {path}: {err.strerror}") from None
        self._hash = hashlib.sha256()
        self._seen = 0
        self.checked = False
        self.name = str(path)

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = max(self.desc.size - self._seen, 0) + 1
        data = self._f.read(n)
        if not data:
            self._finish()
            return data
        self._seen += len(data)
        self._hash.update(data)
        if self._seen > self.desc.size:
            raise DigestMismatch(
                f"blob {self.desc.digest} ({self.path}) is longer than the "
                f"{self.desc.size} bytes its descriptor says; the layout is "
                "corrupt, copy the image again"
            )
        return data

    def readinto(self, buf: Any) -> int:
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def _finish(self) -> None:
        if self.checked:
            return
        if self._seen != self.desc.size:
            raise DigestMismatch(
                f"blob {self.desc.digest} ({self.path}) is truncated: "
                f"{self._seen} of {self.desc.size} bytes; copy the image again"
            )
        actual = "sha256:" + self._hash.hexdigest()
        if actual != self.desc.digest:
            raise DigestMismatch(
                f"blob {self.path} does not match its digest: expected "
                f"{self.desc.digest}, got {actual}; the layout is corrupt, copy "
                "the image again"
            )
        self.checked = True

    def drain(self) -> None:
        """Read to the end, checking the digest."""
        while self.read(_CHUNK):
            pass

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> VerifiedReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class Image:
    """A resolved image: its manifest descriptor, the manifest, the config and its layers."""

    layout: Layout
    manifest_desc: Descriptor
    manifest: dict[str, Any]
    config_desc: Descriptor
    config: dict[str, Any]
    layers: tuple[Descriptor, ...]
    diff_ids: tuple[str, ...]
    ref: str | None = None

    @property
    def digest(self) -> str:
        return self.manifest_desc.digest


def parse_reference(text: str) -> tuple[Path, str | None]:
    """Split ``LAYOUT[:TAG]``. An existing folder named like the whole text is the layout
    (without a tag); otherwise the text after the last ``:`` is the tag."""
    if os.path.isdir(text) or ":" not in text:
        return Path(text), None
    path, _, tag = text.rpartition(":")
    if not tag or "/" in tag:
        return Path(text), None
    return Path(path), tag


def _json_bytes(data: Any) -> bytes:
    """Canonical JSON: sorted keys, no spaces (reproducible digests)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class Layout:
    """An OCI image layout folder."""

    def __init__(self, path: Path):
        self.path = Path(path)

    # -- opening and creating ---------------------------------------------------------------------
    @classmethod
    def open(cls, path: Path | str) -> Layout:
        """An existing layout; :class:`ImageError` if ``path`` is not one."""
        layout = cls(Path(path))
        marker = layout.path / "oci-layout"
        if not layout.path.is_dir():
            raise ImageError(f"{layout.path} is not an OCI image layout: the folder does not exist")
        try:
            data = json.loads(marker.read_bytes())
        except FileNotFoundError:
            raise ImageError(
                f"{layout.path} is not an OCI image layout: it has no oci-layout "
                "file (make one with harness image build or skopeo copy)"
            ) from None
        except (OSError, ValueError) as err:
            raise ImageError(f"{marker} is unreadable or not JSON: {err}") from None
        version = data.get("imageLayoutVersion") if isinstance(data, dict) else None
        if not isinstance(version, str) or not version.startswith("1."):
            raise ImageError(f"{marker}: unsupported imageLayoutVersion {version!r} (expected 1.x)")
        return layout

    @classmethod
    def init(cls, path: Path | str) -> Layout:
        """Open the layout at ``path``, creating an empty one if the folder is new or empty."""
        path = Path(path)
        if (path / "oci-layout").exists():
            return cls.open(path)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise ImageError(f"{path} exists and is not an OCI image layout; choose a new or empty folder")
        try:
            (path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
            layout = cls(path)
            if not (path / "index.json").exists():
                atomic.write_bytes(
                    path / "index.json",
                    _json_bytes({"schemaVersion": 2, "mediaType": MEDIA_TYPES.INDEX, "manifests": []}),
                )
            atomic.write_bytes(path / "oci-layout", _json_bytes({"imageLayoutVersion": LAYOUT_VERSION}))
        except OSError as err:
            raise ImageError(f"cannot create the image layout {path}: {err.strerror}") from None
        return layout

    # -- blobs ------------------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        alg, _, hexpart = _check_digest(digest, str(self.path)).partition(":")
        return self.path / "blobs" / alg / hexpart

    def has_blob(self, desc: Descriptor) -> bool:
        try:
            return os.stat(self.blob_path(desc.digest)).st_size == desc.size
        except FileNotFoundError:
            return False

    def open_blob(self, desc: Descriptor) -> VerifiedReader:
        return VerifiedReader(self.blob_path(desc.digest), desc)

    def read_blob(self, desc: Descriptor, *, limit: int = MAX_JSON_BLOB) -> bytes:
        if desc.size > limit:
            raise ImageError(
                f"blob {desc.digest} is {desc.size} bytes, more than the {limit} a {desc.media_type} may have"
            )
        with self.open_blob(desc) as r:
            data = r.read(desc.size)
            r.drain()
        return data

    def read_json(self, desc: Descriptor) -> dict[str, Any]:
        data = self.read_blob(desc)
        try:
            value = json.loads(data)
        except ValueError as err:
            raise ImageError(f"blob {desc.digest} ({desc.media_type}) is not valid JSON: {err}") from None
        if not isinstance(value, dict):
            raise ImageError(f"blob {desc.digest} ({desc.media_type}) is not a JSON object")
        return value

    @contextmanager
    def blob_writer(self) -> Iterator[_BlobSink]:
        """``with layout.blob_writer() as sink: sink.write(...)``; afterwards ``sink.digest`` and
        ``sink.size`` describe the blob, which is in place (renamed atomically). On error the
        temporary file is removed."""
        folder = self.path / "blobs" / "sha256"
        folder.mkdir(parents=True, exist_ok=True)
        with atomic.temporary(folder, "blob") as tmp:
            sink = _BlobSink(tmp.open("wb"))
            try:
                yield sink
            finally:
                sink.close()
            final = folder / sink.hexdigest
            if not (final.exists() and final.stat().st_size == sink.size):  # else: same content already there
                atomic.install(tmp, final)

    def write_blob(self, data: bytes, media_type: str, annotations: dict[str, str] | None = None) -> Descriptor:
        with self.blob_writer() as sink:
            sink.write(data)
        return Descriptor(media_type, sink.digest, sink.size, dict(annotations or {}))

    def write_json(self, value: Any, media_type: str) -> Descriptor:
        return self.write_blob(_json_bytes(value), media_type)

    # -- index and tags ---------------------------------------------------------------------------
    def index(self) -> dict[str, Any]:
        path = self.path / "index.json"
        try:
            data = json.loads(path.read_bytes())
        except FileNotFoundError:
            raise ImageError(
                f"{self.path} has no index.json; it is not a complete OCI image layout (copy the image again)"
            ) from None
        except ValueError as err:
            raise ImageError(f"{path} is malformed JSON ({err}); fix or recreate the layout") from None
        except OSError as err:
            raise ImageError(f"cannot read {path}: {err.strerror}") from None
        if not isinstance(data, dict) or data.get("schemaVersion") != 2 or not isinstance(data.get("manifests"), list):
            raise ImageError(
                f"{path} is malformed: expected an image index with schemaVersion 2 "
                "and a manifests list; fix or recreate the layout"
            )
        return data

    def manifests(self) -> list[Descriptor]:
        index = self.index()
        return [
            Descriptor.from_json(d, f"{self.path}/index.json manifests[{i}]") for i, d in enumerate(index["manifests"])
        ]

    def tags(self) -> dict[str, Descriptor]:
        return {d.annotations[REF_NAME]: d for d in self.manifests() if REF_NAME in d.annotations}

    @contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.path / "oci-layout", os.O_RDONLY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def tag(self, name: str, desc: Descriptor) -> None:
        """Point the tag ``name`` at the manifest ``desc`` (replacing what it pointed at)."""
        if not name or "/" in name or ":" in name:
            raise ImageError(f"invalid tag {name!r}: use letters, digits, '.', '-' and '_'")
        with self._locked():
            index = self.index()
            keep = [
                d
                for d in index["manifests"]
                if not (isinstance(d, dict) and (d.get("annotations") or {}).get(REF_NAME) == name)
            ]
            entry = Descriptor(
                desc.media_type, desc.digest, desc.size, {**desc.annotations, REF_NAME: name}, desc.platform
            ).to_json()
            index["manifests"] = [*keep, entry]
            atomic.write_bytes(self.path / "index.json", _json_bytes(index))

    # -- resolving images -------------------------------------------------------------------------
    def resolve(self, ref: str | None = None) -> Image:
        """The image tagged ``ref``; without ``ref`` the layout's only image (or ``latest``).

        An index entry that is itself an index is followed, picking the manifest for this
        machine's platform (linux and its architecture).
        """
        manifests = self.manifests()
        if ref is None:
            if len(manifests) == 1:
                desc = manifests[0]
            else:
                tagged = self.tags()
                if "latest" not in tagged:
                    names = ", ".join(sorted(tagged)) or "none"
                    raise ImageError(
                        f"{self.path} holds {len(manifests)} images; name one as {self.path}:TAG (tags: {names})"
                    )
                desc, ref = tagged["latest"], "latest"
        else:
            tagged = self.tags()
            if ref not in tagged:
                names = ", ".join(sorted(tagged)) or "none"
                raise ImageError(
                    f"{self.path} has no image tagged {ref!r} (tags: {names}); list them with harness image ls"
                )
            desc = tagged[ref]
        return self.load_image(desc, ref=ref)

    def load_image(self, desc: Descriptor, *, ref: str | None = None, _depth: int = 0) -> Image:
        if desc.media_type in _INDEX_TYPES:
            if _depth > 4:
                raise ImageError(f"index {desc.digest} nests too deeply")
            index = self.read_json(desc)
            choices = [
                Descriptor.from_json(d, f"index {desc.digest} manifests[{i}]")
                for i, d in enumerate(index.get("manifests") or [])
            ]
            pick = _pick_platform(choices)
            if pick is None:
                raise ImageError(f"index {desc.digest} has no manifest for linux/{host_arch()}")
            return self.load_image(pick, ref=ref, _depth=_depth + 1)
        if desc.media_type not in _MANIFEST_TYPES:
            raise ImageError(f"{desc.digest} has media type {desc.media_type!r}, not an image manifest or index")
        manifest = self.read_json(desc)
        where = f"manifest {desc.digest}"
        if manifest.get("schemaVersion") != 2:
            raise ImageError(f"{where}: schemaVersion must be 2")
        config_desc = Descriptor.from_json(manifest.get("config"), f"{where} config")
        raw_layers = manifest.get("layers")
        if not isinstance(raw_layers, list):
            raise ImageError(f"{where}: it has no layers list")
        layers = tuple(Descriptor.from_json(d, f"{where} layers[{i}]") for i, d in enumerate(raw_layers))
        for i, layer in enumerate(layers):
            if layer.media_type in _ZSTD_TYPES:
                raise ImageError(
                    f"{where} layers[{i}] is zstd-compressed, which the harness "
                    "cannot read; convert the image (skopeo copy "
                    "--dest-compress-format gzip)"
                )
            if layer.media_type not in _LAYER_TYPES:
                raise ImageError(f"{where} layers[{i}] has the unsupported media type {layer.media_type!r}")
        config = self.read_json(config_desc)
        rootfs = config.get("rootfs") or {}
        diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
        if not isinstance(diff_ids, list) or len(diff_ids) != len(layers):
            raise ImageError(
                f"config {config_desc.digest}: rootfs.diff_ids must list one digest per layer ({len(layers)})"
            )
        diff_ids = [_check_digest(d, f"config {config_desc.digest} rootfs.diff_ids") for d in diff_ids]
        return Image(self, desc, manifest, config_desc, config, layers, tuple(diff_ids), ref)

    def images(self) -> list[tuple[str | None, Descriptor]]:
        """Every entry of index.json: (tag or None, descriptor)."""
        return [(d.annotations.get(REF_NAME), d) for d in self.manifests()]


def host_arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(machine, machine)


def _pick_platform(choices: list[Descriptor]) -> Descriptor | None:
    arch = host_arch()
    for d in choices:
        p = d.platform or {}
        if p.get("os", "linux") == "linux" and p.get("architecture", arch) == arch:
            return d
    return None


class _BlobSink:
    """A file being written as a blob; hashes what goes through. An image builder notes the
    finished layer's descriptor and diff id on it."""

    desc: Descriptor
    diff_id: str

    def __init__(self, f: BinaryIO):
        self._f = f
        self._hash = hashlib.sha256()
        self.size = 0
        self.hexdigest = ""

    def write(self, data: bytes) -> int:
        self._f.write(data)
        self._hash.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()
        self.hexdigest = self._hash.hexdigest()

    @property
    def digest(self) -> str:
        return "sha256:" + self.hexdigest
