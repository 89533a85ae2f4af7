"""OCI images: the image layout, building images, applying layers, the layer store and overlay
mounts. The public API is re-exported here."""

from .build import ImageBuilder, LayerWriter, apply_changes, diff_folders, generate_image
from .layers import OPAQUE_XATTR, OVERLAY, RAW, LayerResult, apply_layer, unpack_layer
from .layout import MEDIA_TYPES, Descriptor, DigestMismatch, Image, ImageError, Layout, VerifiedReader, parse_reference
from .overlay import mount_overlay, mounts_under, unmount
from .store import LayerStore, StoredLayer, chain_ids, tree_bytes

__all__ = [
    "MEDIA_TYPES",
    "OPAQUE_XATTR",
    "OVERLAY",
    "RAW",
    "Descriptor",
    "DigestMismatch",
    "Image",
    "ImageBuilder",
    "ImageError",
    "LayerResult",
    "LayerStore",
    "LayerWriter",
    "Layout",
    "StoredLayer",
    "VerifiedReader",
    "apply_changes",
    "apply_layer",
    "chain_ids",
    "diff_folders",
    "generate_image",
    "mount_overlay",
    "mounts_under",
    "parse_reference",
    "tree_bytes",
    "unmount",
    "unpack_layer",
]
