import json
import os

import pytest

from harness import spec
from harness.bundle import PROBE_PATH, Bundle, create_bundle
from harness.errors import BundleError, ConfigError, RootfsError
from harness.rootfs import local_alpine_tarball

ALPINE = local_alpine_tarball()


def test_probe_bundle(tmp_path, probe_binary):
    b = create_bundle(tmp_path / "b", hostname="HAL-9000", probe_binary=probe_binary)
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    assert spec.validate(config) == []
    assert config["hostname"] == "HAL-9000"
    assert config["process"]["terminal"] is False
    assert config["process"]["args"] == [PROBE_PATH, "hostname"]
    assert config["root"] == {"path": "rootfs", "readonly": True}
    assert sorted(os.listdir(b.rootfs)) == ["probe"]
    assert os.access(b.rootfs / "probe", os.X_OK)
    assert (b.rootfs / "probe").read_bytes() == probe_binary.read_bytes()


def test_args_and_writable(tmp_path, probe_binary):
    b = create_bundle(tmp_path / "b", args=["/probe", "exit", "3"], readonly=False, probe_binary=probe_binary)
    assert b.config()["process"]["args"] == ["/probe", "exit", "3"]
    assert b.config()["root"]["readonly"] is False


@pytest.mark.skipif(not ALPINE.exists(), reason=f"{ALPINE} is not there")
def test_alpine_bundle_from_local_tarball(tmp_path, probe_binary):
    b = create_bundle(
        tmp_path / "a",
        rootfs="alpine",
        rootfs_tar=ALPINE,
        args=["cat", "/etc/alpine-release"],
        probe_binary=probe_binary,
    )
    assert (b.rootfs / "etc" / "alpine-release").read_text().strip() == "3.20.3"
    assert b.config()["process"]["args"] == ["cat", "/etc/alpine-release"]
    assert (b.rootfs / "probe").exists()


def test_folder_source_is_copied_not_touched(tmp_path, probe_binary):
    src = tmp_path / "src"
    (src / "etc").mkdir(parents=True)
    (src / "etc" / "hello").write_text("hi")
    before = sorted(p.relative_to(src) for p in src.rglob("*"))
    b = create_bundle(tmp_path / "b", rootfs=str(src), probe_binary=probe_binary)
    assert (b.rootfs / "etc" / "hello").read_text() == "hi"
    assert sorted(p.relative_to(src) for p in src.rglob("*")) == before, "the source folder changed"
    assert b.config()["process"]["args"] == ["sh"]


def test_refuses_non_empty_folder_and_keeps_its_content(tmp_path, probe_binary):
    d = tmp_path / "b"
    d.mkdir()
    (d / "precious").write_text("data")
    with pytest.raises(BundleError, match="not empty"):
        create_bundle(d, probe_binary=probe_binary)
    assert os.listdir(d) == ["precious"] and (d / "precious").read_text() == "data"


def test_refuses_a_file(tmp_path, probe_binary):
    (tmp_path / "f").write_text("x")
    with pytest.raises(BundleError, match="not a folder"):
        create_bundle(tmp_path / "f", probe_binary=probe_binary)


def test_failure_removes_what_it_made(tmp_path, probe_binary):
    with pytest.raises(RootfsError):
        create_bundle(tmp_path / "new", rootfs=str(tmp_path / "missing-source"), probe_binary=probe_binary)
    assert not (tmp_path / "new").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RootfsError):
        create_bundle(empty, rootfs="no-such-source", probe_binary=probe_binary)
    assert empty.exists() and os.listdir(empty) == []


def test_corrupt_tarball_leaves_nothing(tmp_path, probe_binary):
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(RootfsError):
        create_bundle(tmp_path / "b", rootfs=str(bad), probe_binary=probe_binary)
    assert not (tmp_path / "b").exists()


def test_edit_validates_before_writing(tmp_path, probe_binary):
    b = create_bundle(tmp_path / "b", probe_binary=probe_binary)
    before = b.config_path.read_text()
    with pytest.raises(ConfigError, match=r"\$\.process\.args"):
        b.edit(lambda c: c["process"].__setitem__("args", []))
    assert b.config_path.read_text() == before
    b.edit(lambda c: c.__setitem__("hostname", "x"))
    assert Bundle(b.path).config()["hostname"] == "x"


def test_existing_probe_symlink_is_replaced_not_followed(tmp_path, probe_binary):
    src = tmp_path / "src"
    src.mkdir()
    outside = tmp_path / "outside"
    outside.write_text("keep")
    os.symlink(str(outside), src / "probe")
    b = create_bundle(tmp_path / "b", rootfs=str(src), probe_binary=probe_binary)
    assert outside.read_text() == "keep"
    assert not (b.rootfs / "probe").is_symlink()


def test_shared_probe_is_linked_and_replaced_when_changed(tmp_path, probe_binary):
    from harness.bundle import SharedProbe

    shared = SharedProbe(probe_binary, tmp_path / "shared")
    a = create_bundle(tmp_path / "a", probe_binary=shared)
    b = create_bundle(tmp_path / "b", probe_binary=shared)
    pa, pb = os.stat(a.rootfs / "probe"), os.stat(b.rootfs / "probe")
    assert (pa.st_dev, pa.st_ino) == (pb.st_dev, pb.st_ino) and pa.st_nlink == 3  # the copy and two links
    assert (a.rootfs / "probe").read_bytes() == probe_binary.read_bytes()
    assert pa.st_mode & 0o777 == 0o755
    # a container (or runtime) changed /probe through a link: later bundles get a fresh copy
    os.chmod(b.rootfs / "probe", 0o700)
    c = create_bundle(tmp_path / "c", probe_binary=shared)
    pc = os.stat(c.rootfs / "probe")
    assert pc.st_ino != pa.st_ino and pc.st_mode & 0o777 == 0o755
    assert (c.rootfs / "probe").read_bytes() == probe_binary.read_bytes()
    with open(c.rootfs / "probe", "ab") as f:  # changed in place
        f.write(b"\0")
    d = create_bundle(tmp_path / "d", probe_binary=shared)
    assert os.stat(d.rootfs / "probe").st_ino != pc.st_ino
    assert (d.rootfs / "probe").read_bytes() == probe_binary.read_bytes()


def test_shared_probe_copies_where_it_cannot_link(tmp_path, probe_binary, monkeypatch):
    from harness.bundle import SharedProbe

    def refuse(*_args, **_kw):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", refuse)
    b = create_bundle(tmp_path / "b", probe_binary=SharedProbe(probe_binary, tmp_path / "shared"))
    st = os.stat(b.rootfs / "probe")
    assert st.st_nlink == 1 and st.st_mode & 0o777 == 0o755
    assert (b.rootfs / "probe").read_bytes() == probe_binary.read_bytes()
