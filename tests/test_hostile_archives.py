"""Hostile archives never write outside their target: generated with hypothesis (names with
'..', absolute names, symlinks and hard links pointing anywhere, whiteouts, opaque markers,
device nodes) as well as hand-made ones with enormous headers. Each archive goes through plain
extraction and through both layer forms; it may be refused (RootfsError) but nothing outside
the target may change."""

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import _safetar
from harness.errors import RootfsError
from harness.image.layers import OVERLAY, RAW, apply_layer

PARTS = st.sampled_from(["a", "b", "c", "..", ".", "etc", "x y", ".wh.a", ".wh..wh..opq", "outside", "…é"])


def names(outside: str):
    rel = st.lists(PARTS, min_size=1, max_size=4).map("/".join)
    return st.one_of(rel, rel.map(lambda n: "/" + n), rel.map(lambda n: "./" + n), st.just(outside + "/pwned"))


def entries(outside: str):
    target_names = st.one_of(
        names(outside), st.sampled_from(["/", "..", "../..", outside, outside + "/sentinel", "/etc/passwd"])
    )
    entry = st.tuples(
        st.sampled_from(["file", "dir", "symlink", "hardlink", "chardev", "fifo"]),
        names(outside),
        target_names,
        st.binary(max_size=64),
    )
    return st.lists(entry, min_size=1, max_size=12)


def build(entries_list) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for kind, name, target, data in entries_list:
            info = tarfile.TarInfo(name)
            info.mode = 0o755
            if kind == "file":
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
                continue
            info.type = {
                "dir": tarfile.DIRTYPE,
                "symlink": tarfile.SYMTYPE,
                "hardlink": tarfile.LNKTYPE,
                "chardev": tarfile.CHRTYPE,
                "fifo": tarfile.FIFOTYPE,
            }[kind]
            if kind in ("symlink", "hardlink"):
                info.linkname = target
            if kind == "chardev":
                info.devmajor, info.devminor = 1, 3
            tf.addfile(info)
    return buf.getvalue()


def snapshot(root: Path, skip: Path) -> dict:
    """Every path under root but skip, with its type, mode and content hash (symlinks not followed)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath) == skip or skip in Path(dirpath).parents:
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            if p == skip:
                continue
            st_ = p.lstat()
            digest = (
                hashlib.sha256(p.read_bytes()).hexdigest()
                if p.is_file() and not p.is_symlink()
                else os.readlink(p)
                if p.is_symlink()
                else ""
            )
            out[str(p)] = (st_.st_mode, st_.st_size, digest)
    return out


@pytest.fixture
def sandbox(tmp_path):
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "sentinel").write_text("keep me")
    (tmp_path / "sibling-file").write_text("also keep")
    return tmp_path


def run_all_forms(sandbox: Path, data: bytes, n: int) -> None:
    before = snapshot(sandbox, sandbox / "targets")
    for form in ("extract", RAW, OVERLAY):
        target = sandbox / "targets" / f"{n}-{form}"
        target.mkdir(parents=True)
        try:
            if form == "extract":
                _safetar.extract(io.BytesIO(data), target)
            else:
                apply_layer(io.BytesIO(data), target, form=form)
        except RootfsError:
            pass  # refusing is fine; writing outside is not
        after = snapshot(sandbox, sandbox / "targets")
        assert after == before, (
            f"{form}: the archive changed things outside its target: {set(after.items()) ^ set(before.items())}"
        )


_count = iter(range(10**9))


@pytest.mark.skipif(os.geteuid() != 0, reason="device nodes and overlay-form layers need root")
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], derandomize=True
)
@given(data=st.data())
def test_generated_hostile_archives_stay_inside(sandbox, data):
    outside = str(sandbox / "outside")
    archive = build(data.draw(entries(outside)))
    run_all_forms(sandbox, archive, next(_count))


def test_enormous_name_header_is_refused(sandbox):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("a/" * 200_000 + "deep")  # a 400 kB PAX path: 200,000 folders deep
        info.size = 1
        tf.addfile(info, io.BytesIO(b"x"))
    target = sandbox / "t"
    target.mkdir()
    before = snapshot(sandbox, target)
    with pytest.raises(RootfsError, match="PATH_MAX"):
        _safetar.extract(io.BytesIO(buf.getvalue()), target)
    assert os.listdir(target) == [] and snapshot(sandbox, target) == before


def test_header_claiming_a_huge_size_is_truncated(sandbox):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("big")
        info.size = 10
        tf.addfile(info, io.BytesIO(b"0123456789"))
    raw = bytearray(buf.getvalue())
    raw[124:136] = b"77777777777\0"  # size field: 8 GiB, with 10 bytes of data behind it
    raw[148:156] = b"        "
    raw[148:156] = f"{sum(raw[:512]):06o}\0 ".encode()
    target = sandbox / "t"
    target.mkdir()
    before = snapshot(sandbox, target)
    with pytest.raises(RootfsError, match=r"truncated|corrupt"):
        _safetar.extract(io.BytesIO(bytes(raw)), target)
    assert snapshot(sandbox, target) == before, "the refused archive changed things outside its target"
