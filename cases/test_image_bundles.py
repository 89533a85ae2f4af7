"""Bundles made from OCI images: the root filesystem a container sees is the same whether the
bundle flattens the image's layers (raw) or mounts them with overlayfs (overlay), for images with
deletions, opaque folders, hard and symbolic links, device nodes and many layers.

The probe (``/probe``) looks from inside the container: ``stat`` of every path, ``ls`` of every
folder, ``cat`` of the files the derived layers touched; the two modes must agree on all of it
(inode and device numbers aside, which differ by nature).
"""

import json
import os
import shutil
from pathlib import Path

import pytest

from harness import host
from harness.bundle import create_bundle, remove_bundle
from harness.image import ImageBuilder, LayerStore, Layout, generate_image
from harness.rootfs import local_alpine_tarball

pytestmark = pytest.mark.requires("root")

ALPINE = local_alpine_tarball()

DERIVED = [
    [  # layer 1: a tree with every kind of entry
        {"op": "dir", "path": "data", "mode": 0o755, "uid": 7, "gid": 8},
        {"op": "dir", "path": "data/keep"},
        {"op": "file", "path": "data/keep/a", "content": "a\n"},
        {"op": "file", "path": "data/gone", "content": "gone\n"},
        {"op": "dir", "path": "data/opaque"},
        {"op": "file", "path": "data/opaque/old", "content": "old\n"},
        {"op": "file", "path": "data/target", "content": "target\n", "mode": 0o4755},
        {"op": "symlink", "path": "data/sym", "target": "keep/a"},
        {"op": "char", "path": "data/null", "major": 1, "minor": 3},
        {"op": "fifo", "path": "data/fifo"},
    ],
    [  # layer 2: deletions, an opaque folder, a folder deleted and made again, a hard link
        {"op": "delete", "path": "data/gone"},
        {"op": "opaque", "path": "data/opaque"},
        {"op": "file", "path": "data/opaque/new", "content": "new\n"},
        {"op": "hardlink", "path": "data/link", "target": "data/target"},
        {"op": "delete", "path": "data/keep"},
        {"op": "dir", "path": "data/keep"},
        {"op": "file", "path": "data/keep/b", "content": "b\n"},
        {"op": "delete", "path": "etc/motd"},
        {"op": "opaque", "path": "media"},
    ],
    [  # layer 3: a deleted file comes back, a hard link into the base layer
        {"op": "file", "path": "data/gone", "content": "back\n"},
        {"op": "delete", "path": "data/fifo"},
        {"op": "hardlink", "path": "data/sh", "target": "bin/busybox"},
    ],
]


@pytest.fixture(scope="session")
def image_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("images")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def layer_store(image_dir):
    return LayerStore(image_dir / "store")


@pytest.fixture(scope="session")
def alpine_image(image_dir):
    if not ALPINE.exists():
        pytest.skip(f"the Alpine minirootfs tarball is not at {ALPINE}")
    builder = ImageBuilder(Layout.init(image_dir / "layout"))
    builder.base("alpine", rootfs_tar=ALPINE)
    for i, changes in enumerate(DERIVED):
        builder.add_changes(changes, created_by=f"derived layer {i + 1}")
    return builder.commit("alpine-derived")


@pytest.fixture(scope="session")
def deep_image(image_dir):
    return generate_image(Layout.init(image_dir / "layout"), "deep", layers=64, files=3, size=(0, 2048), seed=1234)


@pytest.fixture
def image_bundle(tmp_path, probe_binary, layer_store):
    """``image_bundle(image, mode, args)``: a bundle removed (and unmounted) at teardown."""
    made = []

    def make(image, mode, args):
        path = tmp_path / f"{mode}-{len(made)}"
        made.append(path)
        return create_bundle(
            path, image=image, mode=mode, store=layer_store, probe_binary=probe_binary, args=args, readonly=True
        )

    yield make
    for path in made:
        remove_bundle(path)
    left = [m.mount_point for m in host.mounts() if m.mount_point.startswith(str(tmp_path))]
    assert left == [], f"mounts left behind: {left}"


def run(container_factory, bundle, timeout=60.0):
    c = container_factory(bundle)
    c.create()
    c.start()
    end = c.wait(timeout=timeout)
    assert end.code == 0, f"{bundle.config()['process']['args'][:4]}... exited with {end}; stderr: {c.stderr()!r}"
    return c.stdout()


def host_paths(root: Path) -> tuple[list[str], list[str], list[str]]:
    """(every path, every folder, every regular file) of ``root``, as container paths."""
    paths, dirs, files = [], ["/"], []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            host = os.path.join(dirpath, name)
            inner = "/" + os.path.relpath(host, root)
            paths.append(inner)
            if name in dirnames and not os.path.islink(host):
                dirs.append(inner)
            elif os.path.isfile(host) and not os.path.islink(host):
                files.append(inner)
    return paths, dirs, files


def probe_args(paths, dirs, files):
    """The probe's verbs that show a tree: ``stat`` of every path (one JSON line each, first),
    then ``ls`` of every folder and ``cat`` of every file."""
    return (
        ["/probe"]
        + [a for p in paths for a in ("stat", p)]
        + [a for d in dirs for a in ("ls", d)]
        + [a for f in files for a in ("cat", f)]
    )


def view(container_factory, bundle, paths):
    """What the probe sees in ``bundle`` (run with :func:`probe_args`): stats (without inode and
    device), inodes, and the text of the folder listings and file contents."""
    lines = run(container_factory, bundle).splitlines(keepends=True)
    stats = {}
    for line in lines[: len(paths)]:
        st = json.loads(line)
        stats[st.pop("path")] = st
    assert list(stats) == paths, f"the probe stated {len(stats)} paths of the {len(paths)} it was given"
    inodes = {p: (s.pop("ino"), s.pop("dev")) for p, s in stats.items()}
    return stats, inodes, "".join(lines[len(paths) :])


def both_views(container_factory, image_bundle, image, select_files):
    """The probe's view of ``image`` in a raw bundle and in an overlay bundle, one container each,
    and the paths it was asked about: every path of the raw bundle's rootfs, read on the host
    before its container runs (``ls`` of each folder, ``cat`` of the files ``select_files``
    keeps)."""
    raw_bundle = image_bundle(image, "raw", ["/probe", "hostname"])
    paths, dirs, files = host_paths(raw_bundle.rootfs)
    files = select_files(files)
    args = probe_args(paths, dirs, files)
    raw_bundle.edit(lambda c: c["process"].__setitem__("args", args))
    raw = view(container_factory, raw_bundle, paths)
    ovl = view(container_factory, image_bundle(image, "overlay", args), paths)
    return paths, raw, ovl


@pytest.mark.long_running
@pytest.mark.spec("config.root.path-relative")
def test_alpine_image_same_view_raw_and_overlay(runtime, container_factory, image_bundle, alpine_image):
    paths, raw, ovl = both_views(
        container_factory,
        image_bundle,
        alpine_image,
        lambda files: [f for f in files if f.startswith(("/data/", "/etc/"))],
    )
    assert "/data/opaque/new" in paths and "/data/gone" in paths and "/etc/motd" not in paths
    for path in paths:
        assert ovl[0].get(path) == raw[0].get(path), (
            f"{path}: overlay sees {ovl[0].get(path)}, raw sees {raw[0].get(path)}"
        )
    assert ovl[2] == raw[2], "folder listings or file contents differ between overlay and raw"
    for stats, inodes, _ in (raw, ovl):
        assert inodes["/data/link"] == inodes["/data/target"], "a hard link is not one inode"
        assert inodes["/data/sh"] == inodes["/bin/busybox"], "a hard link into the base layer is not one inode"
        assert stats["/data/null"]["type"] == "char" and stats["/data/null"]["rdev_minor"] == 3
        assert stats["/data/target"]["mode"] == 0o4755
        assert (stats["/data"]["uid"], stats["/data"]["gid"], stats["/data"]["mode"]) == (7, 8, 0o755)
    assert "/data/fifo" not in raw[0] and "/data/keep/a" not in raw[0]


@pytest.mark.spec("config.root.path-relative")
@pytest.mark.parametrize("mode", ["raw", "overlay"])
def test_alpine_shell_runs(runtime, container_factory, image_bundle, alpine_image, mode):
    script = "cat /etc/alpine-release; ls /data/opaque /data/keep; cat /data/gone; id -u"
    out = run(container_factory, image_bundle(alpine_image, mode, ["/bin/sh", "-c", script]))
    assert out == "3.20.3\n/data/keep:\nb\n\n/data/opaque:\nnew\nback\n0\n"


@pytest.mark.long_running
@pytest.mark.spec("config.root.path-relative")
def test_deep_image_same_view_raw_and_overlay(runtime, container_factory, image_bundle, deep_image):
    _, raw, ovl = both_views(
        container_factory, image_bundle, deep_image, lambda files: [f for f in files if f != "/probe"]
    )
    assert ovl[0] == raw[0]
    assert ovl[2] == raw[2]
