import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness import cli, spec
from harness.rootfs import local_alpine_tarball

ROOT = Path(__file__).resolve().parents[1]
ALPINE = local_alpine_tarball()


def harness(*args, **kw):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], capture_output=True, text=True, env=env, timeout=120, **kw
    )


def test_spec_writes_default_and_refuses_to_overwrite(tmp_path):
    assert cli.main(["spec", "--bundle", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "config.json").read_text()) == spec.default_config()
    assert cli.main(["spec", "--bundle", str(tmp_path)]) == 2
    rl = tmp_path / "rl"
    rl.mkdir()
    assert cli.main(["spec", "--rootless", "--bundle", str(rl)]) == 0
    assert "user" in [n["type"] for n in json.loads((rl / "config.json").read_text())["linux"]["namespaces"]]


def test_errors_are_one_line_and_exit_2(tmp_path):
    r = harness("run", str(tmp_path / "nope"), "--runtime", "runc")
    assert r.returncode == 2 and r.stderr.startswith("harness: ") and "Traceback" not in r.stderr
    r = harness("bundle", str(tmp_path / "b"), "--rootfs", "bogus")
    assert r.returncode == 2 and "unknown rootfs source 'bogus'" in r.stderr
    assert not (tmp_path / "b").exists()


def test_args_after_dashes_only_for_bundle():
    with pytest.raises(SystemExit):
        cli.main(["runtimes", "--", "x"])


def test_runtimes_lists_definitions():
    r = harness("runtimes")
    assert r.returncode == 0
    names = [line.split()[0] for line in r.stdout.splitlines()[1:]]
    assert {"runc", "crun", "runsc", "youki"} <= set(names)


needs_root_runc = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runc"), reason="needs root and runc")


@needs_root_runc
def test_bundle_and_run_print_hostname(tmp_path):
    b = tmp_path / "b"
    assert harness("bundle", str(b), "--rootfs", "probe", "--hostname", "HAL-9000").returncode == 0
    r = harness("run", str(b), "--runtime", "runc")
    assert (r.returncode, r.stdout) == (0, "HAL-9000\n"), r.stderr


@needs_root_runc
def test_run_exits_with_the_container_exit_code(tmp_path):
    b = tmp_path / "b"
    assert harness("bundle", str(b), "--", "/probe", "write", "/dev/stderr", "oops", "exit", "42").returncode == 0
    r = harness("run", str(b), "--runtime", "runc")
    assert r.returncode == 42 and "oops" in r.stderr


@needs_root_runc
@pytest.mark.skipif(not ALPINE.exists(), reason="needs the Alpine minirootfs tarball: set HARNESS_ROOTFS_TAR")
def test_alpine_shell_runs(tmp_path):
    a = tmp_path / "a"
    r = harness(
        "bundle",
        str(a),
        "--rootfs",
        "alpine",
        "--rootfs-tar",
        str(ALPINE),
        "--",
        "/bin/sh",
        "-c",
        "cat /etc/alpine-release; exit 3",
    )
    assert r.returncode == 0, r.stderr
    r = harness("run", str(a), "--runtime", "runc")
    assert (r.returncode, r.stdout) == (3, "3.20.3\n"), r.stderr
