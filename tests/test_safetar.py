"""Safe tar extraction: hostile archives never touch anything outside the target; benign ones
come out exactly as archived."""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest
from _folder_state import snapshot

from harness import _safetar
from harness._safetar import ExtractResult, extract, normalize_name
from harness.errors import RootfsError
from harness.rootfs import local_alpine_tarball

ALPINE = local_alpine_tarball()
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (owners, device nodes)")


# -- building archives ----------------------------------------------------------------------------
def reg(name: str, data: bytes = b"", **attrs) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = attrs.pop("mode", 0o644)
    info.mtime = attrs.pop("mtime", 1_600_000_000)
    for key, value in attrs.items():
        setattr(info, key, value)
    return info, data


def special(name: str, kind: bytes, **attrs) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = attrs.pop("mode", 0o755 if kind == tarfile.DIRTYPE else 0o644)
    info.mtime = attrs.pop("mtime", 1_600_000_000)
    for key, value in attrs.items():
        setattr(info, key, value)
    return info, None


def dir_(name: str, **attrs):
    return special(name, tarfile.DIRTYPE, **attrs)


def sym(name: str, target: str, **attrs):
    return special(name, tarfile.SYMTYPE, linkname=target, **attrs)


def hard(name: str, target: str, **attrs):
    return special(name, tarfile.LNKTYPE, linkname=target, **attrs)


def tar_bytes(*members, compression: str = "") -> bytes:
    buf = io.BytesIO()
    mode = "w:" + compression if compression else "w"
    with tarfile.open(fileobj=buf, mode=mode, format=tarfile.PAX_FORMAT) as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def write_tar(path: Path, *members, compression: str = "") -> Path:
    path.write_bytes(tar_bytes(*members, compression=compression))
    return path


# -- watching the outside -------------------------------------------------------------------------


@pytest.fixture
def outside(tmp_path: Path):
    """A sentinel folder next to the target; the test fails if anything in it (or next to the
    target) changes."""
    sentinel = tmp_path / "outside"
    (sentinel / "sub").mkdir(parents=True)
    (sentinel / "secret").write_text("do not touch\n")
    (sentinel / "sub" / "file").write_text("nested\n")
    os.symlink("secret", sentinel / "alias")
    before = snapshot(sentinel)

    def top() -> list[str]:
        return sorted(p.name for p in tmp_path.iterdir() if p.name not in ("root", "archives"))

    top_before = top()
    yield sentinel
    assert snapshot(sentinel) == before, "something outside the target changed"
    assert top() == top_before, "something was created next to the target"


@pytest.fixture
def target(tmp_path: Path) -> Path:
    return tmp_path / "root"


@pytest.fixture
def archives(tmp_path: Path) -> Path:
    folder = tmp_path / "archives"
    folder.mkdir()
    return folder


# -- names ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, parts",
    [
        ("a/b", ("a", "b")),
        ("./a/./b//c/", ("a", "b", "c")),
        ("././x", ("x",)),
        ("./", ()),
        (".", ()),
        ("", ()),
        ("a..b/..c", ("a..b", "..c")),
    ],
)
def test_names_are_normalised(name, parts):
    assert normalize_name(name) == parts


@pytest.mark.parametrize("name", ["../escape", "/abs", "a/../../escape", "a/..", "./../x", "..", "a/b/../../../c"])
def test_names_leaving_the_target_are_refused(name):
    with pytest.raises(RootfsError, match="it would write outside the target") as err:
        normalize_name(name)
    assert repr(name) in str(err.value)


# -- hostile archives -----------------------------------------------------------------------------
def test_dotdot_entry_is_refused(archives, target, outside):
    archive = write_tar(archives / "a.tar", reg("ok", b"fine"), reg("../escape", b"pwned"))
    with pytest.raises(RootfsError, match=r"refusing archive entry '\.\./escape': it would write outside"):
        extract(archive, target)
    assert not (target.parent / "escape").exists()


def test_absolute_entry_is_refused(archives, target, outside):
    name = str(outside / "pwned")
    archive = write_tar(archives / "a.tar", reg(name, b"pwned"))
    with pytest.raises(RootfsError, match="it would write outside the target") as err:
        extract(archive, target)
    assert name in str(err.value)
    assert not (outside / "pwned").exists()


def test_dotdot_in_the_middle_is_refused(archives, target, outside):
    archive = write_tar(archives / "a.tar", dir_("a"), reg("a/../../escape", b"pwned"))
    with pytest.raises(RootfsError, match=r"'a/\.\./\.\./escape': it would write outside"):
        extract(archive, target)
    assert not (target.parent / "escape").exists()


def test_write_through_symlink_to_outside_is_refused(archives, target, outside):
    archive = write_tar(
        archives / "a.tar", sym("link", str(outside)), reg("link/pwned", b"pwned"), reg("link/secret", b"overwritten")
    )
    with pytest.raises(RootfsError, match=r"'link/pwned'.*'link' is a symlink"):
        extract(archive, target)
    # The symlink itself is content and was created as it is.
    assert os.readlink(target / "link") == str(outside)
    assert not (outside / "pwned").exists()


def test_write_through_nested_symlink_is_refused(archives, target, outside):
    archive = write_tar(
        archives / "a.tar", dir_("a"), dir_("a/b"), sym("a/b/c", str(outside)), reg("a/b/c/sub/file", b"pwned")
    )
    with pytest.raises(RootfsError, match=r"'a/b/c' is a symlink"):
        extract(archive, target)


@pytest.mark.parametrize(
    "members, entry",
    [
        ([sym("up", ".."), reg("up/escape", b"x")], "up/escape"),
        ([sym("up", ".."), reg("up/up/up/escape", b"x")], "up/up/up/escape"),
        ([dir_("d"), sym("d/up", "../.."), reg("d/up/escape", b"x")], "d/up/escape"),
        ([sym("a", "."), sym("b", "a/.."), reg("b/escape", b"x")], "b/escape"),
        ([sym("loop", "loop"), reg("loop/escape", b"x")], "loop/escape"),
    ],
)
def test_symlink_to_dotdot_chains_are_refused(archives, target, outside, members, entry):
    archive = write_tar(archives / "a.tar", *members)
    with pytest.raises(RootfsError, match=f"refusing archive entry '{entry}'.*is a symlink"):
        extract(archive, target)
    assert not (target.parent / "escape").exists()


@pytest.mark.parametrize("link_target", ["../../etc/passwd", "/etc/passwd", "a/../../x"])
def test_hard_link_out_of_the_tree_is_refused(archives, target, outside, link_target):
    passwd_links = os.lstat("/etc/passwd").st_nlink
    archive = write_tar(archives / "a.tar", dir_("a"), hard("a/h", link_target))
    with pytest.raises(RootfsError, match=f"refusing hard link 'a/h' to '{link_target}'"):
        extract(archive, target)
    assert not (target / "a" / "h").exists()
    assert os.lstat("/etc/passwd").st_nlink == passwd_links


def test_hard_link_through_symlinked_parent_is_refused(archives, target, outside):
    archive = write_tar(archives / "a.tar", sym("link", str(outside)), hard("h", "link/secret"))
    with pytest.raises(RootfsError, match=r"refusing hard link 'h' to 'link/secret'.*symlink"):
        extract(archive, target)
    assert not os.path.lexists(target / "h")
    assert os.lstat(outside / "secret").st_nlink == 1


def test_hard_link_to_symlink_pointing_outside_links_the_symlink(archives, target, outside):
    archive = write_tar(archives / "a.tar", sym("s", str(outside / "secret")), hard("h", "s"))
    extract(archive, target)
    # h is a second name of the symlink, not of the outside file.
    assert os.readlink(target / "h") == str(outside / "secret")
    assert os.lstat(target / "h").st_ino == os.lstat(target / "s").st_ino
    assert os.lstat(outside / "secret").st_nlink == 1


def test_hard_link_to_missing_entry_is_refused(archives, target, outside):
    archive = write_tar(archives / "a.tar", hard("h", "nothing/here"))
    with pytest.raises(RootfsError, match="refusing hard link 'h' to 'nothing/here'"):
        extract(archive, target)


def test_directory_replaced_by_symlink_mid_archive(archives, target, outside):
    archive = write_tar(
        archives / "a.tar", dir_("d"), reg("d/f", b"inside"), sym("d", str(outside)), reg("d/pwned", b"pwned")
    )
    with pytest.raises(RootfsError, match=r"'d/pwned'.*'d' is a symlink"):
        extract(archive, target)
    assert os.path.islink(target / "d")


def test_symlink_replaced_by_directory_mid_archive(archives, target, outside):
    archive = write_tar(archives / "a.tar", sym("d", str(outside)), dir_("d"), reg("d/secret", b"inside"))
    extract(archive, target)
    assert not os.path.islink(target / "d")
    assert (target / "d" / "secret").read_bytes() == b"inside"


def test_file_over_symlink_replaces_the_symlink(archives, target, outside):
    archive = write_tar(
        archives / "a.tar",
        sym("s", str(outside / "secret")),
        reg("s", b"replaced"),
        sym("t", str(outside / "sub")),
        dir_("t"),
        hard("u", "s"),
        sym("v", str(outside / "sub" / "file")),
        hard("v", "s"),
    )
    extract(archive, target)
    assert (target / "s").read_bytes() == b"replaced" and not os.path.islink(target / "s")
    assert (target / "t").is_dir() and not os.path.islink(target / "t")
    assert os.lstat(target / "v").st_ino == os.lstat(target / "s").st_ino


def test_root_entry_must_be_a_directory(archives, target, outside):
    archive = write_tar(archives / "a.tar", sym(".", str(outside)))
    with pytest.raises(RootfsError, match="root must be a directory"):
        extract(archive, target)
    assert not os.path.islink(target)


def test_unsupported_entry_type_is_refused(archives, target, outside):
    archive = write_tar(archives / "a.tar", special("vol", b"V"))
    with pytest.raises(RootfsError, match=r"archive entry 'vol' has an unsupported type \('V'\)"):
        extract(archive, target)


# -- benign archives ------------------------------------------------------------------------------
def test_modes_times_and_kinds(archives, target):
    members = [
        dir_("./", mode=0o751, mtime=1_000_000_000),
        dir_("etc", mode=0o755, mtime=1_100_000_000),
        reg("etc/shadow", b"secret\n", mode=0o640, mtime=1_200_000_000),
        reg("bin/tool", b"#!/bin/sh\n", mode=0o755),
        reg("bin/suid", b"s", mode=0o4755),
        reg("bin/sgid", b"g", mode=0o2711),
        dir_("tmp", mode=0o1777),
        sym("bin/sh", "/bin/busybox", mtime=1_300_000_000),
        sym("dangling", "does/not/exist"),
        hard("bin/tool2", "bin/tool"),
        special("run/fifo", tarfile.FIFOTYPE, mode=0o620),
    ]
    result = extract(write_tar(archives / "a.tar", *members), target)
    assert result == ExtractResult(entries=len(members), bytes=7 + 10 + 1 + 1, warnings=[])
    st = lambda p: os.lstat(target / p)  # noqa: E731
    assert stat.S_IMODE(st(".").st_mode) == 0o751
    assert st(".").st_mtime_ns == 1_000_000_000 * 10**9
    assert stat.S_IMODE(st("etc").st_mode) == 0o755
    assert st("etc").st_mtime == 1_100_000_000  # set after its child was created
    assert stat.S_IMODE(st("etc/shadow").st_mode) == 0o640
    assert st("etc/shadow").st_mtime == 1_200_000_000
    assert (target / "etc/shadow").read_bytes() == b"secret\n"
    assert stat.S_IMODE(st("bin/suid").st_mode) == 0o4755
    assert stat.S_IMODE(st("bin/sgid").st_mode) == 0o2711
    assert stat.S_IMODE(st("tmp").st_mode) == 0o1777
    assert os.readlink(target / "bin/sh") == "/bin/busybox"
    assert st("bin/sh").st_mtime == 1_300_000_000
    assert os.readlink(target / "dangling") == "does/not/exist"
    assert st("bin/tool2").st_ino == st("bin/tool").st_ino
    assert st("bin/tool").st_nlink == 2
    assert stat.S_ISFIFO(st("run/fifo").st_mode)
    assert stat.S_IMODE(st("run/fifo").st_mode) == 0o620
    # "bin" had no entry: created as a plain folder.
    assert stat.S_ISDIR(st("bin").st_mode)


def test_fractional_pax_mtime_is_exact(archives, target):
    info, data = reg("f", b"x")
    info.pax_headers = {"mtime": "1700000000.123456789"}
    extract(write_tar(archives / "a.tar", (info, data)), target)
    assert os.lstat(target / "f").st_mtime_ns == 1_700_000_000_123_456_789


@as_root
def test_owners_and_setuid_survive_chown(archives, target):
    members = [
        dir_("home", uid=1234, gid=5678, mode=0o750),
        reg("home/f", b"x", uid=1234, gid=5678),
        reg("suid", b"s", uid=1000, gid=1000, mode=0o6755),
        sym("home/link", "f", uid=4321, gid=8765),
        special("fifo", tarfile.FIFOTYPE, uid=42, gid=43),
    ]
    extract(write_tar(archives / "a.tar", *members), target)
    st = lambda p: os.lstat(target / p)  # noqa: E731
    assert (st("home").st_uid, st("home").st_gid) == (1234, 5678)
    assert (st("home/f").st_uid, st("home/f").st_gid) == (1234, 5678)
    assert (st("suid").st_uid, st("suid").st_gid) == (1000, 1000)
    assert stat.S_IMODE(st("suid").st_mode) == 0o6755  # chmod after chown keeps the bits
    assert (st("home/link").st_uid, st("home/link").st_gid) == (4321, 8765)
    assert (st("fifo").st_uid, st("fifo").st_gid) == (42, 43)
    assert stat.S_IMODE(st("home").st_mode) == 0o750


def test_owner_names_are_never_looked_up(archives, target):
    info, data = reg("f", b"x", uid=0, gid=0)
    info.uname, info.gname = "nobody", "nogroup"
    extract(write_tar(archives / "a.tar", (info, data)), target)
    if os.geteuid() == 0:
        assert (os.lstat(target / "f").st_uid, os.lstat(target / "f").st_gid) == (0, 0)


@as_root
def test_char_device_as_root(archives, target):
    members = [
        special("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666),
        special("dev/loop9", tarfile.BLKTYPE, devmajor=7, devminor=9, mode=0o660),
    ]
    result = extract(write_tar(archives / "a.tar", *members), target)
    st = os.lstat(target / "dev/null")
    assert stat.S_ISCHR(st.st_mode)
    assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == (1, 3)
    assert stat.S_IMODE(st.st_mode) == 0o666
    assert stat.S_ISBLK(os.lstat(target / "dev/loop9").st_mode)
    assert result.warnings == []


def test_device_nodes_skipped_with_warning_when_not_root(archives, target, monkeypatch):
    monkeypatch.setattr(_safetar.os, "geteuid", lambda: 1000)
    members = [
        special("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3),
        reg("dev/keep", b"k"),
        special("dev/fifo", tarfile.FIFOTYPE),
    ]
    result = extract(write_tar(archives / "a.tar", *members), target)
    assert not os.path.lexists(target / "dev/null")
    assert (target / "dev/keep").read_bytes() == b"k"
    assert stat.S_ISFIFO(os.lstat(target / "dev/fifo").st_mode)
    assert result.entries == 3
    assert len(result.warnings) == 1 and "dev/null" in result.warnings[0]


def _user_xattrs_work(folder: Path) -> bool:
    probe = folder / ".xattr-probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.probe", b"1")
        return True
    except OSError:
        return False
    finally:
        probe.unlink()


def test_xattrs_round_trip(archives, target, tmp_path):
    if not _user_xattrs_work(tmp_path):
        pytest.skip("this filesystem has no user.* xattrs")
    info, data = reg("f", b"x")
    info.pax_headers = {
        "SCHILY.xattr.user.comment": "hello wörld",
        "SCHILY.xattr.user.binary": b"\x00\xff\xfe\x01".decode("utf-8", "surrogateescape"),
    }
    dinfo, _ = dir_("d")
    dinfo.pax_headers = {"SCHILY.xattr.user.dir": "yes"}
    result = extract(write_tar(archives / "a.tar", (info, data), (dinfo, None)), target)
    assert os.getxattr(target / "f", "user.comment") == "hello wörld".encode()
    assert os.getxattr(target / "f", "user.binary") == b"\x00\xff\xfe\x01"
    assert os.getxattr(target / "d", "user.dir") == b"yes"
    assert result.warnings == []


def test_refused_xattr_is_a_warning(archives, target):
    info, data = reg("f", b"content")
    info.pax_headers = {"SCHILY.xattr.bogus.namespace": "x"}
    result = extract(write_tar(archives / "a.tar", (info, data)), target)
    assert (target / "f").read_bytes() == b"content"
    assert len(result.warnings) == 1
    assert "bogus.namespace" in result.warnings[0] and "'f'" in result.warnings[0]


def test_later_entries_replace_earlier_ones(archives, target):
    members = [
        reg("f", b"first"),
        reg("f", b"second"),
        reg("x", b"file"),
        dir_("x", mode=0o700),
        reg("x/inner", b"i"),
        dir_("y"),
        reg("y/deep/file", b"gone"),
        reg("y", b"now a file"),
        reg("a", b"linked"),
        hard("b", "a"),
        reg("a", b"new a"),
    ]
    extract(write_tar(archives / "a.tar", *members), target)
    assert (target / "f").read_bytes() == b"second"
    assert (target / "x").is_dir() and (target / "x/inner").read_bytes() == b"i"
    assert stat.S_IMODE(os.lstat(target / "x").st_mode) == 0o700
    assert (target / "y").read_bytes() == b"now a file"
    # Like tar: the new "a" is a new file, "b" keeps the old content.
    assert (target / "a").read_bytes() == b"new a"
    assert (target / "b").read_bytes() == b"linked"


def test_directory_entry_after_its_children_keeps_its_metadata(archives, target):
    members = [
        reg("d/sub/f", b"x"),
        dir_("d/sub", mode=0o555, mtime=1_111_111_111),
        dir_("d", mode=0o700, mtime=1_222_222_222),
        reg("d/late", b"y"),
    ]
    extract(write_tar(archives / "a.tar", *members), target)
    assert stat.S_IMODE(os.lstat(target / "d").st_mode) == 0o700
    assert os.lstat(target / "d").st_mtime == 1_222_222_222
    assert stat.S_IMODE(os.lstat(target / "d/sub").st_mode) == 0o555
    assert os.lstat(target / "d/sub").st_mtime == 1_111_111_111
    assert (target / "d/late").read_bytes() == b"y"


def test_existing_target_content_is_replaced(target, archives):
    target.mkdir()
    (target / "keep").write_text("kept")
    (target / "f").mkdir()
    (target / "f" / "old").write_text("old")
    extract(write_tar(archives / "a.tar", reg("f", b"new")), target)
    assert (target / "f").read_bytes() == b"new"
    assert (target / "keep").read_text() == "kept"


def test_target_is_created_if_missing(tmp_path, archives):
    deep = tmp_path / "not" / "there" / "yet"
    extract(write_tar(archives / "a.tar", reg("f", b"x")), deep)
    assert (deep / "f").read_bytes() == b"x"


@pytest.mark.parametrize("compression", ["", "gz", "bz2", "xz"])
def test_compression_is_detected_from_content(archives, target, compression):
    # A misleading suffix: detection must not look at it.
    archive = write_tar(archives / "a.tar.zst", reg("a/b", b"data" * 1000), sym("l", "a/b"), compression=compression)
    result = extract(archive, target)
    assert (target / "a/b").read_bytes() == b"data" * 1000
    assert result.entries == 2 and result.bytes == 4000


class _PipeLike(io.RawIOBase):
    """A non-seekable stream that hands out data in small, uneven pieces."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = min(len(b), 777, len(self._data))
        b[:n] = self._data[:n]
        self._data = self._data[n:]
        return n


@pytest.mark.parametrize("compression", ["", "gz", "xz"])
def test_extract_from_a_non_seekable_stream(target, compression):
    data = tar_bytes(reg("big", bytes(range(256)) * 3000), hard("big2", "big"), compression=compression)
    result = extract(_PipeLike(data), target)  # type: ignore[arg-type]
    assert (target / "big").read_bytes() == bytes(range(256)) * 3000
    assert os.lstat(target / "big2").st_ino == os.lstat(target / "big").st_ino
    assert result.entries == 2


# -- corrupt archives -----------------------------------------------------------------------------
def _corrupt(archive, target) -> str:
    with pytest.raises(RootfsError) as err:
        extract(archive, target)
    message = str(err.value)
    assert "truncated or corrupt" in message and "download it again" in message
    return message


def test_truncated_gzip(archives, target):
    data = tar_bytes(reg("a", os.urandom(200_000)), reg("b", b"x"), compression="gz")
    path = archives / "cut.tar.gz"
    path.write_bytes(data[: len(data) // 2])
    assert str(path) in _corrupt(path, target)


def test_gzip_missing_only_its_trailer(archives, target):
    data = tar_bytes(reg("a", b"hello"), compression="gz")
    path = archives / "cut.tar.gz"
    path.write_bytes(data[:-4])  # tar blocks all there, gzip length field gone
    _corrupt(path, target)


def test_gzip_with_bad_crc(archives, target):
    data = bytearray(tar_bytes(reg("a", b"hello"), compression="gz"))
    data[-8] ^= 0xFF
    path = archives / "crc.tar.gz"
    path.write_bytes(bytes(data))
    _corrupt(path, target)


def test_garbage_bytes(archives, target):
    path = archives / "garbage.tar"
    path.write_bytes(os.urandom(5000))
    _corrupt(path, target)


def test_garbage_with_gzip_magic(archives, target):
    path = archives / "garbage.tar.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00" + os.urandom(5000))
    _corrupt(path, target)


def test_empty_file(archives, target):
    path = archives / "empty.tar"
    path.write_bytes(b"")
    assert "empty" in _corrupt(path, target)


def test_plain_tar_truncated_inside_data(archives, target):
    data = tar_bytes(reg("a", b"x" * 5000))
    path = archives / "cut.tar"
    path.write_bytes(data[: 512 + 2000])
    assert "'a'" in _corrupt(path, target)


def test_plain_tar_truncated_between_entries(archives, target):
    data = tar_bytes(reg("a", b"x" * 512), reg("b", b"y" * 512))
    path = archives / "cut.tar"
    path.write_bytes(data[:1024])  # ends right after "a"; no end-of-archive blocks
    _corrupt(path, target)


def test_plain_tar_with_garbled_header_in_the_middle(archives, target):
    data = bytearray(tar_bytes(reg("a", b"x" * 512), reg("b", b"y" * 512)))
    data[1024 : 1024 + 100] = os.urandom(100)
    path = archives / "bad.tar"
    path.write_bytes(bytes(data))
    _corrupt(path, target)


def test_missing_archive(tmp_path, target):
    with pytest.raises(RootfsError, match=r"cannot read the archive .*nope.tar"):
        extract(tmp_path / "nope.tar", target)


def test_zstd_is_named(archives, target):
    path = archives / "a.tar.zst"
    path.write_bytes(b"\x28\xb5\x2f\xfd" + b"\0" * 100)
    with pytest.raises(RootfsError, match=f"{path} is zstd-compressed.*zstd -d"):
        extract(path, target)


# -- the real Alpine minirootfs -------------------------------------------------------------------
@pytest.fixture
def alpine() -> Path:
    if not ALPINE.is_file():
        pytest.skip(f"the Alpine minirootfs is not at {ALPINE}: set HARNESS_ROOTFS_TAR to a local copy")
    return ALPINE


def test_alpine_minirootfs(alpine, target):
    result = extract(alpine, target)
    assert result.entries == 518
    assert result.warnings == []
    assert (target / "etc/alpine-release").read_text().strip() == "3.20.3"
    assert os.readlink(target / "bin/sh") == "/bin/busybox"
    assert (target / "bin/busybox").stat().st_mode & 0o111
    assert stat.S_IMODE(os.lstat(target / "tmp").st_mode) == 0o1777


def test_alpine_minirootfs_from_file_object(alpine, target):
    with open(alpine, "rb") as f:
        result = extract(f, target)
    assert result.entries == 518


def test_alpine_truncated(alpine, archives, target):
    cut = archives / alpine.name
    cut.write_bytes(alpine.read_bytes()[:1_000_000])
    _corrupt(cut, target)


def test_gzip_compressed_stream_from_gzip_module(archives, target):
    # Concatenated gzip members are one stream, as gzip(1) treats them.
    raw = tar_bytes(reg("a", b"1"), reg("b", b"2"))
    path = archives / "multi.tar.gz"
    path.write_bytes(gzip.compress(raw[:512]) + gzip.compress(raw[512:]))
    extract(path, target)
    assert (target / "b").read_bytes() == b"2"
