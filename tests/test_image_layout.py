"""OCI image layout: reading and writing, digest checks, bad input, reproducible builds, and
interop with umoci and skopeo."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from _folder_state import contents

from harness.cli import main
from harness.errors import HarnessError
from harness.image import (
    RAW,
    DigestMismatch,
    ImageBuilder,
    ImageError,
    Layout,
    generate_image,
    parse_reference,
    unpack_layer,
)
from harness.rootfs import local_alpine_tarball

ALPINE = local_alpine_tarball()
needs_alpine = pytest.mark.skipif(not ALPINE.exists(), reason=f"{ALPINE} is not there")


def small_image(path: Path, tag: str = "t", text: str = "hello\n"):
    layout = Layout.init(path)
    b = ImageBuilder(layout)
    b.base("scratch")
    b.add_changes([{"op": "dir", "path": "etc"}, {"op": "file", "path": "etc/greeting", "content": text}])
    b.config["Cmd"] = ["/probe", "hostname"]
    return b.commit(tag)


def test_write_then_read(tmp_path):
    image = small_image(tmp_path / "lay")
    layout = Layout.open(tmp_path / "lay")
    assert json.loads((tmp_path / "lay" / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    again = layout.resolve("t")
    assert again.digest == image.digest
    assert again.layers[0].media_type.endswith("+gzip")
    assert layout.resolve(None).digest == image.digest  # the only image
    out = tmp_path / "root"
    unpack_layer(layout, again.layers[0], again.diff_ids[0], out, form=RAW)
    assert (out / "etc" / "greeting").read_text() == "hello\n"


def test_reference_parsing(tmp_path):
    assert parse_reference("lay:tag") == (Path("lay"), "tag")
    assert parse_reference("lay") == (Path("lay"), None)
    d = tmp_path / "a:b"
    d.mkdir()
    assert parse_reference(str(d)) == (d, None)


def test_reproducible_generator(tmp_path):
    one = generate_image(Layout.init(tmp_path / "a"), "g", layers=4, files=5, size=(10, 3000), seed=7)
    two = generate_image(Layout.init(tmp_path / "b"), "g", layers=4, files=5, size=(10, 3000), seed=7)
    other = generate_image(Layout.init(tmp_path / "c"), "g", layers=4, files=5, size=(10, 3000), seed=8)
    assert one.digest == two.digest
    assert [d.digest for d in one.layers] == [d.digest for d in two.layers]
    for d in one.layers:
        assert (tmp_path / "a" / "blobs" / "sha256" / d.hex).read_bytes() == (
            tmp_path / "b" / "blobs" / "sha256" / d.hex
        ).read_bytes()
    assert other.digest != one.digest


@needs_alpine
def test_images_sharing_a_base_share_its_blob(tmp_path):
    layout = Layout.init(tmp_path / "lay")
    images = []
    for name in ("one", "two"):
        b = ImageBuilder(layout)
        b.base("alpine", rootfs_tar=ALPINE)
        b.add_changes([{"op": "file", "path": "etc/name", "content": name}])
        images.append(b.commit(name))
    assert images[0].layers[0] == images[1].layers[0]
    assert images[0].layers[1].digest != images[1].layers[1].digest
    # the base blob is the tarball itself
    import hashlib

    assert images[0].layers[0].digest == "sha256:" + hashlib.sha256(ALPINE.read_bytes()).hexdigest()
    assert sorted(layout.tags()) == ["one", "two"]


# -- bad input -------------------------------------------------------------------------------------
def _leftovers(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*")) if path.exists() else []


def test_missing_blob(tmp_path):
    image = small_image(tmp_path / "lay")
    (tmp_path / "lay" / "blobs" / "sha256" / image.layers[0].hex).unlink()
    with pytest.raises(ImageError, match="missing from the layout"):
        unpack_layer(image.layout, image.layers[0], image.diff_ids[0], tmp_path / "out")


def test_config_digest_mismatch(tmp_path):
    image = small_image(tmp_path / "lay")
    blob = tmp_path / "lay" / "blobs" / "sha256" / image.config_desc.hex
    data = bytearray(blob.read_bytes())
    data[-2] ^= 1
    blob.write_bytes(bytes(data))
    with pytest.raises(DigestMismatch, match="does not match its digest"):
        Layout.open(tmp_path / "lay").resolve("t")


def test_truncated_layer(tmp_path):
    image = small_image(tmp_path / "lay")
    blob = tmp_path / "lay" / "blobs" / "sha256" / image.layers[0].hex
    blob.write_bytes(blob.read_bytes()[:-20])
    with pytest.raises(HarnessError, match=r"truncated|corrupt"):
        unpack_layer(image.layout, image.layers[0], image.diff_ids[0], tmp_path / "out")


def test_layer_digest_mismatch_same_size(tmp_path):
    image = small_image(tmp_path / "lay")
    blob = tmp_path / "lay" / "blobs" / "sha256" / image.layers[0].hex
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(DigestMismatch):
        unpack_layer(image.layout, image.layers[0], image.diff_ids[0], tmp_path / "out")


def test_missing_tag_names_the_tags(tmp_path):
    small_image(tmp_path / "lay", "one")
    with pytest.raises(ImageError, match=r"no image tagged 'two' \(tags: one\)"):
        Layout.open(tmp_path / "lay").resolve("two")


def test_malformed_index(tmp_path):
    small_image(tmp_path / "lay")
    (tmp_path / "lay" / "index.json").write_text("{not json")
    with pytest.raises(ImageError, match=r"index.json is malformed"):
        Layout.open(tmp_path / "lay").resolve("t")
    (tmp_path / "lay" / "index.json").write_text('{"schemaVersion": 2}')
    with pytest.raises(ImageError, match="malformed"):
        Layout.open(tmp_path / "lay").resolve("t")


def test_not_a_layout(tmp_path):
    with pytest.raises(ImageError, match="no oci-layout"):
        Layout.open(tmp_path)
    (tmp_path / "x").write_text("x")
    with pytest.raises(ImageError, match="not an OCI image layout"):
        Layout.init(tmp_path)


def test_nested_index_is_followed(tmp_path):
    image = small_image(tmp_path / "lay")
    layout = image.layout
    from harness.image import MEDIA_TYPES
    from harness.image.layout import host_arch

    inner = layout.write_json(
        {
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPES.INDEX,
            "manifests": [
                {**image.manifest_desc.to_json(), "platform": {"os": "linux", "architecture": "s390x-nope"}},
                {**image.manifest_desc.to_json(), "platform": {"os": "linux", "architecture": host_arch()}},
            ],
        },
        MEDIA_TYPES.INDEX,
    )
    layout.tag("multi", inner)
    assert layout.resolve("multi").digest == image.digest


def test_cli_errors_are_one_line(tmp_path, capsys):
    small_image(tmp_path / "lay")
    assert main(["image", "inspect", f"{tmp_path / 'lay'}:nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: ") and "nope" in err and "Traceback" not in err


def test_cli_build_ls_inspect(tmp_path, capsys):
    folder = tmp_path / "root"
    (folder / "etc").mkdir(parents=True)
    (folder / "etc" / "a").write_text("a")
    changes = tmp_path / "changes.json"
    changes.write_text(json.dumps([{"op": "delete", "path": "etc/a"}, {"op": "file", "path": "etc/b", "content": "b"}]))
    lay = tmp_path / "lay"
    assert (
        main(
            [
                "image",
                "build",
                f"{lay}:x",
                "--base",
                str(folder),
                "--changes",
                str(changes),
                "--cmd",
                "/bin/true",
                "--label",
                "k=v",
            ]
        )
        == 0
    )
    assert main(["image", "ls", str(lay)]) == 0
    out = capsys.readouterr().out
    assert any(line.startswith("x ") for line in out.splitlines())
    assert main(["image", "inspect", f"{lay}:x"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (
        len(info["layers"]) == 2 and info["config"]["Labels"] == {"k": "v"} and info["config"]["Cmd"] == ["/bin/true"]
    )


# -- interop ---------------------------------------------------------------------------------------
umoci = shutil.which("umoci")
skopeo = shutil.which("skopeo")


@pytest.mark.skipif(umoci is None, reason="umoci is not installed (apt-get install umoci)")
@pytest.mark.skipif(os.geteuid() != 0, reason="umoci raw unpack keeps owners only as root")
def test_umoci_reads_our_layout_and_we_read_its(tmp_path):
    image = generate_image(Layout.init(tmp_path / "lay"), "g", layers=3, files=3, size=100, seed=1)
    ours = tmp_path / "ours"
    for d, i in zip(image.layers, image.diff_ids, strict=False):
        unpack_layer(image.layout, d, i, ours, form=RAW)
    theirs = tmp_path / "theirs"
    subprocess.run(
        [umoci, "raw", "unpack", "--image", f"{tmp_path / 'lay'}:g", str(theirs)], check=True, capture_output=True
    )
    assert contents(ours) == contents(theirs)
    # umoci writes a new image into our layout; we read and apply it
    subprocess.run(
        [umoci, "config", "--image", f"{tmp_path / 'lay'}:g", "--tag", "u", "--config.cmd", "/bin/x"],
        check=True,
        capture_output=True,
    )
    # and umoci repack adds a layer with its own whiteouts
    bundle = tmp_path / "ubundle"
    subprocess.run([umoci, "unpack", "--image", f"{tmp_path / 'lay'}:u", str(bundle)], check=True, capture_output=True)
    victim = next((bundle / "rootfs" / "bench" / "l0002").iterdir())
    victim.unlink()
    (bundle / "rootfs" / "new").write_text("new")
    subprocess.run([umoci, "repack", "--image", f"{tmp_path / 'lay'}:u2", str(bundle)], check=True, capture_output=True)
    u2 = Layout.open(tmp_path / "lay").resolve("u2")
    assert u2.config["config"]["Cmd"] == ["/bin/x"]
    mine = tmp_path / "mine"
    for d, i in zip(u2.layers, u2.diff_ids, strict=False):
        unpack_layer(u2.layout, d, i, mine, form=RAW)
    assert (mine / "new").read_text() == "new"
    assert not (mine / victim.relative_to(bundle / "rootfs")).exists()


@pytest.mark.skipif(skopeo is None, reason="skopeo is not installed (apt-get install skopeo)")
def test_skopeo_copies_our_layout_and_we_read_the_copy(tmp_path):
    image = generate_image(Layout.init(tmp_path / "lay"), "g", layers=2, files=2, size=50, seed=3)
    subprocess.run(
        [skopeo, "--insecure-policy", "copy", f"oci:{tmp_path / 'lay'}:g", f"oci:{tmp_path / 'copy'}:c"],
        check=True,
        capture_output=True,
    )
    copy = Layout.open(tmp_path / "copy").resolve("c")
    assert copy.diff_ids == image.diff_ids
    a, b = tmp_path / "a", tmp_path / "b"
    for img, out in ((image, a), (copy, b)):
        for d, i in zip(img.layers, img.diff_ids, strict=False):
            unpack_layer(img.layout, d, i, out, form=RAW)
    assert contents(a) == contents(b)
