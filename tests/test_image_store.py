"""The layer store: each layer is unpacked once, atomically, also with several processes."""

import multiprocessing
import os
from pathlib import Path

import pytest

from harness.image import DigestMismatch, LayerStore, Layout, chain_ids, generate_image

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the layer store needs root (overlay whiteouts)")


def _worker(args):
    layout, tag, root, barrier = args
    barrier.wait(timeout=30)
    store = LayerStore(Path(root))
    layers = store.ensure(Layout.open(layout).resolve(tag))
    return [str(s.path) for s in layers], [os.stat(s.path).st_ino for s in layers], len(store.unpacked)


def test_concurrent_processes_unpack_each_layer_once(tmp_path):
    image = generate_image(Layout.init(tmp_path / "lay"), "g", layers=6, files=20, size=2000, seed=5)
    root = tmp_path / "store"
    ctx = multiprocessing.get_context("fork")
    n = 6
    with ctx.Manager() as manager:
        barrier = manager.Barrier(n)
        with ctx.Pool(n) as pool:
            results = pool.map(_worker, [(tmp_path / "lay", "g", root, barrier)] * n, chunksize=1)
    paths = {tuple(r[0]) for r in results}
    inodes = {tuple(r[1]) for r in results}
    assert len(paths) == 1 and len(inodes) == 1, "processes saw different folders"
    assert sum(r[2] for r in results) == len(image.layers), "a layer was unpacked more than once"
    assert list((root / "tmp").iterdir()) == [], "temporary unpack folders were left"


def test_second_ensure_unpacks_nothing_and_chain_ids(tmp_path):
    image = generate_image(Layout.init(tmp_path / "lay"), "g", layers=3, files=2, size=10, seed=1)
    store = LayerStore(tmp_path / "store")
    first = store.ensure(image)
    assert len(store.unpacked) == 3
    again = LayerStore(tmp_path / "store")
    assert again.ensure(image) == first and again.unpacked == []
    ids = chain_ids(image.diff_ids)
    assert ids[0] == image.diff_ids[0] and len(set(ids)) == 3


def test_corrupt_layer_leaves_nothing_in_the_store(tmp_path):
    image = generate_image(Layout.init(tmp_path / "lay"), "g", layers=2, files=2, size=1000, seed=2)
    blob = tmp_path / "lay" / "blobs" / "sha256" / image.layers[1].hex
    data = bytearray(blob.read_bytes())
    data[40] ^= 0xFF
    blob.write_bytes(bytes(data))
    store = LayerStore(tmp_path / "store")
    with pytest.raises(DigestMismatch):
        store.ensure(image)
    assert store.lookup(image.diff_ids[1], chain_ids(image.diff_ids)[1]) is None
    assert list((tmp_path / "store" / "tmp").iterdir()) == []
