"""Bad input: each gets one clear error naming the problem and what to do, a non-zero exit,
no traceback, and no partial output left behind. Driven through the `harness` command."""

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _http import FolderServer

from harness.rootfs import local_alpine_tarball

ROOT = Path(__file__).resolve().parents[1]
ALPINE = local_alpine_tarball()


def harness(*args, env=None, cwd=None):
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=120
    )


def assert_clear_error(result, *needles):
    assert result.returncode != 0, f"exit 0 for bad input; stdout {result.stdout!r}"
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("harness: "), f"not one clear harness message: {result.stderr!r}"
    for needle in needles:
        assert needle in result.stderr, f"{needle!r} not in {result.stderr!r}"


@pytest.fixture
def bundle(tmp_path):
    b = tmp_path / "b"
    assert harness("bundle", str(b), "--rootfs", "probe").returncode == 0
    return b


def test_malformed_config(bundle):
    (bundle / "config.json").write_text('{"ociVersion": "1.0.2",\n  "process": ')
    assert_clear_error(harness("run", str(bundle), "--runtime", "runc"), "config.json", "not valid JSON at line 2")


def test_invalid_config_names_json_paths(bundle):
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["args"] = []
    config["linux"]["namespaces"].append({"type": "pid"})
    (bundle / "config.json").write_text(json.dumps(config))
    assert_clear_error(harness("run", str(bundle), "--runtime", "runc"), "$.process.args", "$.linux.namespaces[5].type")


def test_missing_bundle(tmp_path):
    assert_clear_error(harness("run", str(tmp_path / "nope"), "--runtime", "runc"), "no such bundle folder")


def test_unreadable_config(bundle):
    (bundle / "config.json").unlink()
    (bundle / "config.json").mkdir()  # unreadable as a file, even for root
    assert_clear_error(harness("run", str(bundle), "--runtime", "runc"), "config.json", "cannot read it")


def test_missing_config(bundle):
    (bundle / "config.json").unlink()
    assert_clear_error(harness("run", str(bundle), "--runtime", "runc"), "no such file", "harness spec")


def test_unknown_runtime(bundle):
    assert_clear_error(
        harness("run", str(bundle), "--runtime", "no-such-runtime"),
        "unknown runtime 'no-such-runtime'",
        "known runtimes are",
    )


def test_rootfs_without_the_probe(tmp_path):
    b = tmp_path / "b"
    assert harness("bundle", str(b), "--rootfs", "probe", "--no-probe").returncode == 0
    assert_clear_error(harness("run", str(b), "--runtime", "runc"), "no executable /probe")


def test_corrupt_tarball_leaves_no_bundle(tmp_path):
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00" + os.urandom(200))
    assert_clear_error(harness("bundle", str(tmp_path / "x"), "--rootfs", str(bad)), "bad.tar.gz")
    assert not (tmp_path / "x").exists()


@pytest.mark.skipif(not ALPINE.exists(), reason="needs the Alpine minirootfs tarball: set HARNESS_ROOTFS_TAR")
def test_truncated_tarball_leaves_no_bundle(tmp_path):
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(ALPINE.read_bytes()[: ALPINE.stat().st_size // 2])
    result = harness("bundle", str(tmp_path / "x"), "--rootfs", str(cut))
    assert_clear_error(result, "cut.tar.gz")
    assert "truncated" in result.stderr or "corrupt" in result.stderr
    assert not (tmp_path / "x").exists()


def test_checksum_mismatch_leaves_nothing(tmp_path):
    served = tmp_path / "mirror" / "v3.20" / "releases" / "x86_64"
    served.mkdir(parents=True)
    (served / "alpine-minirootfs-3.20.3-x86_64.tar.gz").write_bytes(gzip.compress(b"not the real rootfs"))
    server = FolderServer(tmp_path / "mirror")
    cache = tmp_path / "cache"
    try:
        # no local tarball: the (bad) download is what is tested
        env = {
            "HARNESS_ALPINE_MIRROR": server.url,
            "HARNESS_CACHE_DIR": str(cache),
            "HARNESS_ROOTFS_TAR": "",
        }
        if os.uname().machine != "x86_64":
            pytest.skip("the test mirror serves the x86_64 file")
        result = harness("bundle", str(tmp_path / "x"), "--rootfs", "alpine", env=env)
    finally:
        server.close()
    assert_clear_error(result, "d4e6fd67dcf75e40c451560ac7265166c2b72a0f38ddc9aae756a7de3d1efa0c")
    assert not (tmp_path / "x").exists()
    left = [p for p in (cache / "rootfs").rglob("*") if p.is_file()] if (cache / "rootfs").exists() else []
    assert left == [], f"the cache kept a file that failed its checksum: {left}"


@pytest.fixture
def small_image(tmp_path):
    layer = tmp_path / "layer"
    (layer / "etc").mkdir(parents=True)
    (layer / "etc" / "hello").write_text("hi")
    layout = tmp_path / "layout"
    r = harness(
        "image",
        "build",
        f"{layout}:v1",
        "--base",
        "scratch",
        "--layer",
        str(layer),
        env={"HARNESS_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert r.returncode == 0, r.stderr
    index = json.loads((layout / "index.json").read_text())
    manifest_digest = index["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads((layout / "blobs" / "sha256" / manifest_digest).read_text())
    return layout, manifest["layers"][0]["digest"].split(":")[1]


@pytest.mark.skipif(os.geteuid() != 0, reason="image bundles need root")
def test_image_layout_with_a_missing_blob(tmp_path, small_image):
    layout, layer = small_image
    (layout / "blobs" / "sha256" / layer).unlink()
    assert_clear_error(
        harness(
            "bundle",
            str(tmp_path / "x"),
            "--image",
            f"{layout}:v1",
            env={"HARNESS_CACHE_DIR": str(tmp_path / "cache2")},
        ),
        layer[:12],
    )
    assert not (tmp_path / "x").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="image bundles need root")
def test_image_layout_with_a_mismatching_blob(tmp_path, small_image):
    layout, layer = small_image
    blob = layout / "blobs" / "sha256" / layer
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.chmod(0o644)
    blob.write_bytes(bytes(data))
    result = harness(
        "bundle", str(tmp_path / "x"), "--image", f"{layout}:v1", env={"HARNESS_CACHE_DIR": str(tmp_path / "cache2")}
    )
    assert_clear_error(result, layer[:12])
    assert not (tmp_path / "x").exists()
