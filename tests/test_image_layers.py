"""Applying layers: whiteouts and opaque folders (in both forms), links, devices, metadata, and
entries that try to leave the target."""

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from harness.errors import RootfsError
from harness.image import OPAQUE_XATTR, OVERLAY, RAW, apply_layer

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (device nodes, owners, trusted xattrs)")


def entry(name, kind=tarfile.REGTYPE, data=b"", mode=0o644, uid=0, gid=0, mtime=1000, link="", dev=(0, 0), xattrs=None):
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.gid, info.mtime = kind, mode, uid, gid, mtime
    info.linkname = link
    info.devmajor, info.devminor = dev
    if xattrs:
        info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in xattrs.items()}
    if kind == tarfile.REGTYPE:
        info.size = len(data)
    return info, (data if kind == tarfile.REGTYPE else None)


def d(name, **kw):
    return entry(name, tarfile.DIRTYPE, mode=kw.pop("mode", 0o755), **kw)


def f(name, data=b"x", **kw):
    return entry(name, data=data, **kw)


def layer(*members) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for info, data in members:
            tf.addfile(info, None if data is None else io.BytesIO(data))
    buf.seek(0)
    return buf


def names(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


BASE = [
    d("a"),
    d("a/b"),
    d("a/b/c"),
    f("a/b/c/bar"),
    d("etc"),
    f("etc/my-app-config"),
    d("bin"),
    f("bin/tool"),
    d("bin/tools"),
    f("bin/tools/one"),
]


def test_whiteout_removes_lower_entry(tmp_path):
    apply_layer(layer(*BASE), tmp_path)
    apply_layer(layer(d("etc"), f("etc/.wh.my-app-config"), f("etc/.wh.never-there")), tmp_path)
    assert not (tmp_path / "etc" / "my-app-config").exists()
    assert not any(".wh." in n for n in names(tmp_path))


def test_opaque_keeps_only_this_layers_entries_whatever_the_order(tmp_path):
    # layer.md's example: the opaque marker may come after the new entries
    for order in ("before", "after"):
        t = tmp_path / order
        apply_layer(layer(*BASE), t)
        new = [d("a/b"), d("a/b/c"), f("a/b/c/foo")]
        marker = [f("a/.wh..wh..opq")]
        apply_layer(layer(d("a"), *(marker + new if order == "before" else new + marker)), t)
        assert names(t / "a") == {"b", "b/c", "b/c/foo"}, order


def test_whiteout_never_hides_same_layer_entry(tmp_path):
    apply_layer(layer(*BASE), tmp_path)
    apply_layer(layer(d("bin"), f("bin/tool", b"new"), f("bin/.wh.tool")), tmp_path)
    assert (tmp_path / "bin" / "tool").read_bytes() == b"new"


def test_whiteout_of_folder_recreated_in_same_layer(tmp_path):
    apply_layer(layer(*BASE), tmp_path)
    apply_layer(layer(d("bin"), d("bin/tools"), f("bin/tools/two"), f("bin/.wh.tools")), tmp_path)
    assert names(tmp_path / "bin" / "tools") == {"two"}


@root_only
def test_overlay_form(tmp_path):
    t = tmp_path / "layer"
    apply_layer(
        layer(
            d("a"),
            f("a/.wh..wh..opq"),
            d("etc"),
            f("etc/.wh.gone"),
            f("etc/.wh.again"),
            d("etc/again"),
            f("etc/again/x"),
        ),
        t,
        form=OVERLAY,
    )
    gone = os.lstat(t / "etc" / "gone")
    assert stat.S_ISCHR(gone.st_mode) and gone.st_rdev == 0
    assert os.getxattr(t / "a", OPAQUE_XATTR) == b"y"
    assert os.getxattr(t / "etc" / "again", OPAQUE_XATTR) == b"y"  # whited out, then recreated
    assert not any(".wh." in n for n in names(t))


@root_only
def test_hardlink_to_lower_file_is_copied_up_in_overlay_form(tmp_path):
    lower = tmp_path / "l0"
    apply_layer(layer(d("bin", mode=0o711), f("bin/busybox", b"BB", mode=0o755)), lower, form=OVERLAY)
    upper = tmp_path / "l1"
    result = apply_layer(
        layer(d("usr"), entry("usr/sh", tarfile.LNKTYPE, link="bin/busybox")), upper, form=OVERLAY, lowers=[lower]
    )
    assert result.depends_on_lowers
    assert (upper / "usr" / "sh").read_bytes() == b"BB"
    assert os.stat(upper / "usr" / "sh").st_ino == os.stat(upper / "bin" / "busybox").st_ino
    assert stat.S_IMODE(os.stat(upper / "bin").st_mode) == 0o711  # the parent as the lower has it


@root_only
def test_metadata_links_devices(tmp_path):
    apply_layer(
        layer(
            d("d", mode=0o1777, uid=12, gid=34, mtime=5000),
            f("d/f", b"data", mode=0o4751, uid=5, gid=6, mtime=7000, xattrs={"user.k": "v"}),
            entry("d/link", tarfile.SYMTYPE, link="/etc/passwd"),
            entry("d/hard", tarfile.LNKTYPE, link="d/f"),
            entry("d/null", tarfile.CHRTYPE, mode=0o666, dev=(1, 3)),
            entry("d/fifo", tarfile.FIFOTYPE, mode=0o600),
        ),
        tmp_path,
    )
    st = os.stat(tmp_path / "d")
    assert stat.S_IMODE(st.st_mode) == 0o1777 and (st.st_uid, st.st_gid) == (12, 34) and st.st_mtime == 5000
    fs = os.stat(tmp_path / "d" / "f")
    assert (
        stat.S_IMODE(fs.st_mode) == 0o4751
        and (fs.st_uid, fs.st_gid) == (5, 6)
        and fs.st_mtime == 7000
        and fs.st_nlink == 2
    )
    assert os.getxattr(tmp_path / "d" / "f", "user.k") == b"v"
    assert os.readlink(tmp_path / "d" / "link") == "/etc/passwd"
    nul = os.lstat(tmp_path / "d" / "null")
    assert stat.S_ISCHR(nul.st_mode) and os.major(nul.st_rdev) == 1 and os.minor(nul.st_rdev) == 3
    assert stat.S_ISFIFO(os.lstat(tmp_path / "d" / "fifo").st_mode)


# -- escapes ----------------------------------------------------------------------------------------
def outside(tmp_path):
    o = tmp_path / "outside"
    o.mkdir()
    (o / "precious").write_text("keep")
    return o


@pytest.mark.parametrize("form", [RAW, OVERLAY])
@pytest.mark.parametrize(
    "case, message",
    [
        ([f("../outside/precious", b"pwned")], "outside the target"),
        ([f("/abs", b"pwned")], "outside the target"),
        ([entry("esc", tarfile.SYMTYPE, link="../outside"), f("esc/precious", b"pwned")], "symlink"),
        ([entry("h", tarfile.LNKTYPE, link="../outside/precious")], "outside the target"),
        ([f(".wh...")], "names no entry"),
        ([entry("esc", tarfile.SYMTYPE, link="../outside"), f("esc/.wh.precious")], "symlink"),
        ([entry("esc", tarfile.SYMTYPE, link="../outside"), f("esc/.wh..wh..opq")], "symlink"),
    ],
)
def test_escapes_are_refused_and_nothing_outside_changes(tmp_path, form, case, message):
    if form == OVERLAY and os.geteuid() != 0:
        pytest.skip("overlay form needs root")
    o = outside(tmp_path)
    target = tmp_path / "target"
    with pytest.raises(RootfsError, match=message) as err:
        apply_layer(layer(*case), target, form=form)
    assert repr(case[-1][0].name)[1:-1] in str(err.value) or case[-1][0].name in str(err.value)
    assert sorted(os.listdir(o)) == ["precious"] and (o / "precious").read_text() == "keep"


def test_whiteout_never_follows_a_lower_symlink(tmp_path):
    o = outside(tmp_path)
    target = tmp_path / "target"
    apply_layer(layer(entry("esc", tarfile.SYMTYPE, link=str(o))), target)
    with pytest.raises(RootfsError, match="symlink"):
        apply_layer(layer(f("esc/.wh.precious")), target)
    # whiting out the symlink itself removes the link, not what it points to
    apply_layer(layer(f(".wh.esc")), target)
    assert not os.path.lexists(target / "esc")
    assert (o / "precious").read_text() == "keep"


def test_truncated_layer_is_an_error(tmp_path):
    data = layer(*BASE).getvalue()
    with pytest.raises(RootfsError, match=r"truncated|corrupt"):
        apply_layer(io.BytesIO(data[:700]), tmp_path)
