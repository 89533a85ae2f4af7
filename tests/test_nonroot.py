"""As a non-root user: one clear error, never a traceback (run, cleanup)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness import runtime as rt

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv (to become nobody)"
)


def as_nobody(*args, env=None):
    return subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable, "-m", "harness", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
    )


@pytest.fixture
def tmp_path():
    """A folder nobody can reach (pytest's own tmp folders are private to root)."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="oci-harness-nonroot-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_run_with_a_private_mount_namespace_quirk_says_it_needs_root(tmp_path):
    quirky = [
        d
        for d in rt.load_definitions().values()
        if d.private_mount_namespace and d.private_mount_namespace.applies() and d.find_binary()
    ]
    if not quirky:
        pytest.skip("no installed runtime whose definition asks for a private mount namespace on this host")
    tmp_path.chmod(0o755)
    bundle = tmp_path / "b"
    subprocess.run(
        [sys.executable, "-m", "harness", "bundle", str(bundle), "--rootfs", "probe", "--", "/probe", "hostname"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    subprocess.run(["chmod", "-R", "a+rX", str(tmp_path)], check=True)
    p = as_nobody("run", str(bundle), "--runtime", quirky[0].name)
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr and "preexec_fn" not in p.stderr, p.stderr
    assert "private mount namespace" in p.stderr and "root" in p.stderr, p.stderr


def test_cleanup_says_what_it_cannot_read_and_why(tmp_path):
    journals = tmp_path / "state" / "journal"  # as root's: /run/oci-harness/journal is 0700
    journals.mkdir(parents=True, mode=0o700)
    (tmp_path / "state").chmod(0o755)
    tmp_path.chmod(0o755)
    (journals / "run.jsonl").write_text("")
    p = as_nobody("cleanup", env={"HARNESS_STATE_DIR": str(tmp_path / "state")})
    assert p.returncode != 0 and "Traceback" not in p.stderr, p.stderr
    assert "permission denied" in p.stderr and "root" in p.stderr, p.stderr


def test_a_folder_out_of_reach_is_one_line(tmp_path):
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    p = as_nobody("run", str(private / "bundle"), "--runtime", "reference")
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
    assert "permission denied" in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
