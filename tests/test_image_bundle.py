"""Bundles from images: raw and overlay give the same tree; deep stacks; the config an engine
would write; removal and failure leave no mount behind."""

import json
import os
from pathlib import Path

import pytest
from _folder_state import contents

from harness.bundle import create_bundle, remove_bundle, resolve_user
from harness.cli import main
from harness.errors import BundleError, HarnessError
from harness.image import ImageBuilder, LayerStore, Layout, generate_image
from harness.rootfs import local_alpine_tarball

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="overlay bundles need root")

ALPINE = local_alpine_tarball()


def mounted(path: Path) -> list[str]:
    real = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(real)]


@pytest.fixture
def bundles(tmp_path):
    """make(name, **create_bundle args); every bundle is removed (unmounted) at teardown."""
    made = []
    store = LayerStore(tmp_path / "store")

    def make(name, **kw):
        kw.setdefault("store", store)
        path = tmp_path / name
        made.append(path)
        return create_bundle(path, **kw)

    yield make
    for path in made:
        remove_bundle(path)
    assert mounted(tmp_path) == [], "a mount was left behind"


def tricky_image(layout: Layout, tag: str, base: str = "scratch", **kw):
    b = ImageBuilder(layout)
    b.base(base, **kw)
    b.add_changes(
        [
            {"op": "dir", "path": "data", "mode": 0o750, "uid": 7, "gid": 8},
            {"op": "dir", "path": "data/keep"},
            {"op": "file", "path": "data/keep/a", "content": "a"},
            {"op": "file", "path": "data/gone", "content": "gone"},
            {"op": "dir", "path": "data/opaque"},
            {"op": "file", "path": "data/opaque/old", "content": "old"},
            {"op": "file", "path": "data/target", "content": "T", "mode": 0o4755},
            {"op": "symlink", "path": "data/sym", "target": "../data/keep/a"},
            {"op": "char", "path": "data/null", "major": 1, "minor": 3},
            {"op": "fifo", "path": "data/fifo"},
        ]
    )
    b.add_changes(
        [
            {"op": "delete", "path": "data/gone"},
            {"op": "opaque", "path": "data/opaque"},
            {"op": "file", "path": "data/opaque/new", "content": "new"},
            {"op": "hardlink", "path": "data/link", "target": "data/target"},
            {"op": "delete", "path": "data/keep"},
            {"op": "dir", "path": "data/keep"},
            {"op": "file", "path": "data/keep/b", "content": "b"},
        ]
    )
    b.add_changes([{"op": "file", "path": "data/gone", "content": "back"}, {"op": "delete", "path": "data/fifo"}])
    b.config.update({"Cmd": ["/probe", "ls", "/data"]})
    return b.commit(tag)


def test_raw_and_overlay_trees_are_the_same(tmp_path, bundles, probe_binary):
    layout = Layout.init(tmp_path / "lay")
    image = tricky_image(layout, "t")
    raw = bundles("raw", image=image, mode="raw", probe_binary=probe_binary)
    ovl = bundles("ovl", image=image, mode="overlay", probe_binary=probe_binary)
    assert mounted(ovl.rootfs) == [str(ovl.rootfs)]
    a, b = contents(raw.rootfs), contents(ovl.rootfs)
    assert a == b
    assert sorted(os.listdir(raw.rootfs / "data" / "opaque")) == ["new"]
    assert sorted(os.listdir(raw.rootfs / "data" / "keep")) == ["b"]
    assert (raw.rootfs / "data" / "gone").read_text() == "back"
    assert os.stat(ovl.rootfs / "data" / "link").st_ino == os.stat(ovl.rootfs / "data" / "target").st_ino


def test_generated_image_with_churn_is_the_same_in_both_modes(tmp_path, bundles, probe_binary):
    image = generate_image(Layout.init(tmp_path / "lay"), "g", layers=12, files=6, size=(1, 4000), seed=11)
    raw = bundles("raw", image=image, mode="raw", probe_binary=probe_binary, args=["/probe", "hostname"])
    ovl = bundles("ovl", image=image, mode="overlay", probe_binary=probe_binary, args=["/probe", "hostname"])
    assert contents(raw.rootfs) == contents(ovl.rootfs)


def test_128_layers_overlay(tmp_path, bundles, probe_binary):
    image = generate_image(Layout.init(tmp_path / "lay"), "deep", layers=128, files=1, size=8, seed=3, churn=False)
    ovl = bundles("ovl", image=image, mode="overlay", probe_binary=probe_binary, args=["/probe", "hostname"])
    layers = json.loads((ovl.path / ".harness-bundle.json").read_text())["layers"]  # 128 + the probe layer
    assert len(layers) == 129 and len(":".join(layers)) > 4096, "the stack fits in one page: not a deep-stack test"
    assert len(os.listdir(ovl.rootfs / "bench")) == 128
    assert (ovl.rootfs / "bench" / "l0000" / "f00000").stat().st_size == 8
    raw = bundles("raw", image=image, mode="raw", probe_binary=probe_binary, args=["/probe", "hostname"])
    assert contents(raw.rootfs) == contents(ovl.rootfs)


def test_remove_bundle_unmounts(tmp_path, bundles, probe_binary):
    image = generate_image(Layout.init(tmp_path / "lay"), "g", layers=2, files=1, size=8)
    ovl = bundles("ovl", image=image, mode="overlay", probe_binary=probe_binary, args=["/probe", "hostname"])
    (ovl.rootfs / "written").write_text("into the upper dir")
    assert (ovl.path / "overlay" / "upper" / "written").exists()
    remove_bundle(ovl.path)
    assert not ovl.path.exists() and mounted(ovl.path) == []
    remove_bundle(ovl.path)  # gone already: fine


def test_remove_refuses_a_folder_that_is_no_bundle(tmp_path):
    d = tmp_path / "precious"
    d.mkdir()
    (d / "file").write_text("x")
    with pytest.raises(BundleError, match="does not look like a bundle"):
        remove_bundle(d)
    assert (d / "file").exists()


def test_failure_midway_leaves_no_mount_and_no_folder(tmp_path, probe_binary):
    layout = Layout.init(tmp_path / "lay")
    b = ImageBuilder(layout)
    b.add_changes([{"op": "file", "path": "etc/passwd", "content": "root:x:0:0::/root:/bin/sh\n"}])
    b.config.update({"Cmd": ["/probe"], "User": "nobody-here"})
    image = b.commit("bad")
    target = tmp_path / "b"
    with pytest.raises(BundleError, match="nobody-here"):
        create_bundle(
            target, image=image, mode="overlay", store=LayerStore(tmp_path / "store"), probe_binary=probe_binary
        )
    assert not target.exists()
    assert mounted(tmp_path) == []


def test_image_config_fills_the_process(tmp_path, bundles, probe_binary):
    layout = Layout.init(tmp_path / "lay")
    b = ImageBuilder(layout)
    b.add_changes(
        [
            {
                "op": "file",
                "path": "etc/passwd",
                "content": "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
            },
            {
                "op": "file",
                "path": "etc/group",
                "content": "root:x:0:\napp:x:1001:\nwheel:x:10:root,app\naudio:x:29:app\n",
            },
        ]
    )
    b.config.update(
        {
            "Entrypoint": ["/probe"],
            "Cmd": ["hostname"],
            "Env": ["A=1"],
            "WorkingDir": "/work",
            "User": "app",
            "Labels": {"org.example": "yes"},
        }
    )
    image = b.commit("cfg")
    bundle = bundles("b", image=image, mode="raw", probe_binary=probe_binary)
    config = bundle.config()
    p = config["process"]
    assert p["args"] == ["/probe", "hostname"]
    assert p["env"][0].startswith("PATH=") and "A=1" in p["env"]
    assert p["cwd"] == "/work"
    assert p["user"] == {"uid": 1000, "gid": 1001, "additionalGids": [10, 29]}
    assert config["annotations"] == {"org.example": "yes"}
    other = bundles("c", image=image, mode="raw", probe_binary=probe_binary, args=["report"])
    assert other.config()["process"]["args"] == ["/probe", "report"]  # args replace Cmd only


def test_resolve_user_forms(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\nbob:x:500:600::/:/bin/sh\n")
    (tmp_path / "etc" / "group").write_text("staff:x:50:bob\nbob:x:600:\n")
    assert resolve_user(tmp_path, "") == {"uid": 0, "gid": 0}
    assert resolve_user(tmp_path, "1234") == {"uid": 1234, "gid": 0}
    assert resolve_user(tmp_path, "1234:55") == {"uid": 1234, "gid": 55}
    assert resolve_user(tmp_path, "500") == {"uid": 500, "gid": 600, "additionalGids": [50]}
    assert resolve_user(tmp_path, "bob:staff") == {"uid": 500, "gid": 50}
    with pytest.raises(BundleError, match="group 'nope'"):
        resolve_user(tmp_path, "bob:nope")


def test_passwd_symlink_never_leaves_the_rootfs(tmp_path):
    (tmp_path / "root" / "etc").mkdir(parents=True)
    (tmp_path / "root" / "etc" / "passwd").symlink_to("/etc/passwd")  # resolved inside root: absent
    assert resolve_user(tmp_path / "root", "0") == {"uid": 0, "gid": 0}
    with pytest.raises(BundleError, match="not in the image's /etc/passwd"):
        resolve_user(tmp_path / "root", "root")


def test_cli_bundle_image_overlay_and_remove(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    generate_image(Layout.init(tmp_path / "lay"), "g", layers=2, files=1, size=8)
    target = tmp_path / "b"
    assert (
        main(
            ["bundle", str(target), "--image", f"{tmp_path / 'lay'}:g", "--mode", "overlay", "--", "/probe", "hostname"]
        )
        == 0
    )
    try:
        assert mounted(target / "rootfs") == [str(target / "rootfs")]
        assert (tmp_path / "cache" / "layers" / "sha256").is_dir()
    finally:
        assert main(["bundle", str(target), "--remove"]) == 0
    assert not target.exists() and mounted(tmp_path) == []
    assert main(["bundle", str(target), "--mode", "overlay"]) == 2
    assert "--mode goes with --image" in capsys.readouterr().err


@pytest.mark.skipif(not ALPINE.exists(), reason=f"{ALPINE} is not there")
def test_alpine_with_derived_layers(tmp_path, bundles, probe_binary):
    image = tricky_image(Layout.init(tmp_path / "lay"), "a", base="alpine", rootfs_tar=ALPINE)
    raw = bundles("raw", image=image, mode="raw", probe_binary=probe_binary)
    ovl = bundles("ovl", image=image, mode="overlay", probe_binary=probe_binary)
    assert contents(raw.rootfs) == contents(ovl.rootfs)
    assert (ovl.rootfs / "etc" / "alpine-release").read_text().strip() == "3.20.3"


def test_corrupt_layer_leaves_no_raw_bundle(tmp_path, probe_binary):
    image = generate_image(Layout.init(tmp_path / "lay"), "g", layers=3, files=2, size=500, seed=4)
    blob = tmp_path / "lay" / "blobs" / "sha256" / image.layers[2].hex
    blob.write_bytes(blob.read_bytes()[:-30])
    for mode in ("raw", "overlay"):
        target = tmp_path / mode
        with pytest.raises(HarnessError, match=r"truncated|corrupt"):
            create_bundle(
                target,
                image=f"{tmp_path / 'lay'}:g",
                mode=mode,
                store=LayerStore(tmp_path / "store"),
                probe_binary=probe_binary,
            )
        assert not target.exists(), f"{mode}: a partial bundle was left"
    assert mounted(tmp_path) == []
