"""harness matrix without booting a VM: kernel package choice, how a cell's end is judged from
the stages it reached, that no process of a cell outlives the runner, and the host differences
of a merged report. (A real cell runs in `nox -s ci`, see noxfile.py.)"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest
from _http import FolderServer
from test_report_load import ENV, record, write_conformance

from harness.errors import HarnessError
from harness.matrix import kernels, run
from harness.matrix._cli import _memory_mb
from harness.report.load import load_run


def test_the_newest_plain_package_of_a_version_is_chosen(monkeypatch):
    names = " ".join(
        [
            "linux-image-6.1.0-9-amd64-unsigned",
            "linux-image-6.1.0-55-amd64-unsigned",
            "linux-image-6.1.0-57-amd64-unsigned",  # referenced, no candidate
            "linux-image-6.1.0-55-cloud-amd64-unsigned",
            "linux-image-6.1.0-55-rt-amd64-unsigned",
            "linux-image-6.1.0-55-amd64",
            "linux-image-6.12.113+deb12-amd64-unsigned",
            "linux-image-6.10.0-1-amd64-unsigned",
        ]
    )
    monkeypatch.setattr(kernels, "_arch", lambda: "amd64")
    monkeypatch.setattr(kernels, "_run", lambda cmd, **kw: names)
    offered = {
        "linux-image-6.1.0-9-amd64-unsigned",
        "linux-image-6.1.0-55-amd64-unsigned",
        "linux-image-6.12.113+deb12-amd64-unsigned",
    }
    monkeypatch.setattr(kernels, "_index_entry", lambda n: {"SHA256": "x", "Version": "1"} if n in offered else {})
    assert kernels.package_for("6.1") == "linux-image-6.1.0-55-amd64-unsigned"
    assert kernels.package_for("6.12") == "linux-image-6.12.113+deb12-amd64-unsigned"
    with pytest.raises(HarnessError, match=r"no Debian kernel package for 5\.10"):
        kernels.package_for("5.10")


def test_a_kernel_image_must_say_its_release(tmp_path):
    image = tmp_path / "bzImage"
    image.write_bytes(b"x")
    with pytest.raises(HarnessError, match="vmlinuz-<release>"):
        kernels.fetch(str(image), tmp_path)
    named = tmp_path / "vmlinuz-6.6.1-test"
    named.write_bytes(b"x")
    kernel = kernels.fetch(str(named), tmp_path)
    assert kernel.release == "6.6.1-test" and kernel.label == "6.6"


def _cell(tmp_path, stages, results=None):
    out = tmp_path / "6.1-v2"
    out.mkdir()
    (out / "vm-command.txt").write_text("vng ...\n")
    start = (out / "vm-command.txt").stat().st_mtime
    if stages:
        (out / "stage").write_text("".join(f"{start + 60 + i:.1f} {s}\n" for i, s in enumerate(stages)))
    if results:
        (out / "results").mkdir()
        (out / "results" / "results.jsonl").write_text("".join(json.dumps({"outcome": o}) + "\n" for o in results))
    (out / "console.log").write_text("Kernel panic - not syncing: VFS: Unable to mount root fs\n")
    return run.Cell(kernels.Kernel(name="6.1", image="/x/vmlinuz-6.1.0-57-amd64", release="6.1.0-57-amd64"), "v2", out)


@pytest.mark.parametrize(
    "stages, results, timed_out, status",
    [
        ([], None, False, run.BOOT_FAILED),
        ([], None, True, run.TIMED_OUT),
        (["booted", "layout-failed mounting cgroup2: busy"], None, False, run.LAYOUT_FAILED),
        (["booted", "layout v2", "running"], ["passed"], False, run.CRASHED),
        (["booted", "layout v2", "running"], ["passed"], True, run.TIMED_OUT),
        (["booted", "layout v2", "running", "done pytest exit 0"], ["passed", "skipped"], False, "passed"),
        (["booted", "layout v2", "running", "done pytest exit 1"], ["passed", "failed"], False, "failed"),
    ],
)
def test_a_cell_is_judged_by_the_stages_it_reached(tmp_path, stages, results, timed_out, status):
    outcome = run.judge(_cell(tmp_path, stages, results), 100.0, timed_out, 600, "tcg")
    assert outcome.status == status
    if status == run.BOOT_FAILED:
        assert "Unable to mount root fs" in outcome.detail and not outcome.counts
    if status in ("passed", "failed"):
        assert outcome.boot_seconds == pytest.approx(60, abs=1) and sum(outcome.counts.values()) == 2


def test_no_process_of_a_cell_outlives_the_runner(tmp_path):
    runner = run.Runner()
    tmp = tmp_path / "vng-tmp"
    tmp.mkdir()
    # a leader that ignores SIGTERM and a child of its own, as QEMU under virtme-run
    proc_child = tmp_path / "child"
    proc = runner.start(["sh", "-c", f"trap '' TERM; sleep 300 & echo $! > {proc_child}; wait"], tmp_path / "log", tmp)
    deadline = time.monotonic() + 10
    while not (proc_child.exists() and proc_child.read_text().endswith("\n")) and time.monotonic() < deadline:
        time.sleep(0.05)
    child = int(proc_child.read_text())
    runner.close()
    assert proc.poll() is not None
    assert not tmp.exists()
    assert _dead(child)
    group = subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True, text=True).stdout.split()
    assert all(_dead(int(p)) for p in group)


def _dead(pid: int) -> bool:
    """Gone, or a zombie waiting for its reaper (a subreaper may hold it a moment), within a few
    seconds: SIGKILL is delivered when the process is next scheduled, which under load takes a while."""
    deadline = time.monotonic() + 5
    while True:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rpartition(")")[2].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def test_memory_sizes():
    assert _memory_mb("512M") == 512 and _memory_mb("1G") == 1024 and _memory_mb("2gb") == 2048
    with pytest.raises(HarnessError, match="--memory"):
        _memory_mb("lots")


def test_host_differences_come_first_and_say_where(tmp_path):
    from harness.report.render import context

    req = [("runtime.state.id-unique", "MUST")]
    other = [("runtime.lifecycle.create-fails", "MUST")]
    cells = {
        "6.1-v1": ("v1", "passed", "passed"),
        "6.1-v2": ("v2", "failed", "passed"),
        "6.12-v2": ("v2", "passed", "skipped"),
    }
    parts = []
    for host, (mode, outcome, second) in cells.items():
        records = [
            record("cases/test_a.py::test_one", "runc", outcome, req, message="chowned"),
            record("cases/test_a.py::test_two", "runc", second, other),
            record("cases/test_a.py::test_one", "reference", "passed", req),
        ]
        env = {**ENV, "hostname": host, "kernel": f"{host.split('-')[0]}.0-1-amd64", "cgroup_mode": mode}
        parts.append(str(write_conformance(tmp_path / host, records, env=env)))
    merged = load_run(",".join(parts), merge=True)
    ctx = context([merged])
    diffs = ctx["conf"]["host_diffs"]
    assert [(d.row.requirement.id, d.runtime) for d in diffs] == [
        ("runtime.state.id-unique", "runc"),
        ("runtime.lifecycle.create-fails", "runc"),
    ]
    assert diffs[0].summary == "fails only on 6.1-v2 (pass on 6.1-v1, 6.12-v2)"
    assert diffs[1].summary == "skips only on 6.12-v2 (pass on 6.1-v1, 6.1-v2)"
    hosts = {h["host"]: h for h in ctx["conf"]["hosts"]}
    assert hosts["6.1-v2"]["cgroup_mode"] == "v2" and hosts["6.12-v2"]["kernel"] == "6.12.0-1-amd64"
    assert hosts["6.1-v1"]["runtimes"] == {"reference": "reference 1.0", "runc": "runc 1.0"}
    # runtimes are compared on one host; hosts against each other in the host differences
    assert all(a.split(" @ ")[1] == b.split(" @ ")[1] for a, b, _ in ctx["conf"]["pairs"])


# --------------------------------------------------------------------------- the Debian archive


def _tool_missing(*names):
    import shutil

    return [n for n in names if not shutil.which(n)]


@pytest.fixture
def archive(tmp_path, monkeypatch):
    """A signed Debian archive of one suite on a local HTTP server: a kernel package (a .deb made
    with dpkg-deb), its index, an InRelease signed by a key made for the test, and that key's
    keyring; ``sign(text)`` re-signs with another key."""
    import hashlib
    import lzma

    missing = _tool_missing("gpg", "gpgv", "dpkg-deb", "depmod")
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")
    root = tmp_path / "archive"
    gnupg = tmp_path / "gnupg"
    gnupg.mkdir(mode=0o700)

    def gpg(*args, home=gnupg):
        return subprocess.run(["gpg", "--batch", "--homedir", str(home), *args], capture_output=True, check=True)

    gpg("--passphrase", "", "--quick-gen-key", "archive@test", "ed25519", "sign", "never")
    keyring = tmp_path / "keyring.gpg"
    keyring.write_bytes(gpg("--export", "archive@test").stdout)

    release = "6.1.0-99-amd64"
    pkg = tmp_path / "pkg"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "DEBIAN" / "control").write_text(
        "Package: linux-image-6.1.0-99-amd64-unsigned\nVersion: 6.1.999-1\nArchitecture: amd64\n"
        "Maintainer: test <t@test>\nDescription: test kernel\n"
    )
    (pkg / "boot").mkdir()
    (pkg / "boot" / f"vmlinuz-{release}").write_bytes(b"not really a kernel")
    (pkg / "lib" / "modules" / release).mkdir(parents=True)
    pool = root / "pool" / "main" / "l" / "linux"
    pool.mkdir(parents=True)
    deb = pool / "linux-image-6.1.0-99-amd64-unsigned_6.1.999-1_amd64.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(pkg), str(deb)], capture_output=True, check=True)
    stanzas = [
        "Package: linux-image-6.1.0-99-cloud-amd64-unsigned\nVersion: 6.1.999-1\n"
        "Filename: pool/x.deb\nSize: 1\nSHA256: 00\n",
        f"Package: linux-image-6.1.0-99-amd64-unsigned\nVersion: 6.1.999-1\n"
        f"Filename: {deb.relative_to(root)}\nSize: {deb.stat().st_size}\n"
        f"SHA256: {hashlib.sha256(deb.read_bytes()).hexdigest()}\n",
    ]
    index = lzma.compress("\n".join(stanzas).encode())
    dists = root / "dists" / "bookworm"
    (dists / "main" / "binary-amd64").mkdir(parents=True)
    (dists / "main" / "binary-amd64" / "Packages.xz").write_bytes(index)
    text = (
        f"Suite: bookworm\nSHA256:\n {hashlib.sha256(index).hexdigest()} {len(index)} main/binary-amd64/Packages.xz\n"
    )

    def sign(body, home=gnupg):
        (tmp_path / "Release").write_text(body)
        (tmp_path / "InRelease").unlink(missing_ok=True)
        gpg("--clearsign", "-o", str(tmp_path / "InRelease"), str(tmp_path / "Release"), home=home)
        (dists / "InRelease").write_bytes((tmp_path / "InRelease").read_bytes())

    sign(text)

    server = FolderServer(root)
    monkeypatch.setenv("HARNESS_DEBIAN_MIRROR", server.url)
    monkeypatch.setenv("HARNESS_DEBIAN_KEYRING", str(keyring))
    monkeypatch.setattr(kernels.debian, "SUITES", ("bookworm",))
    monkeypatch.setattr(kernels, "_arch", lambda: "amd64")

    def other_key_signs(body):
        other = tmp_path / "other"
        other.mkdir(mode=0o700, exist_ok=True)
        gpg("--passphrase", "", "--quick-gen-key", "intruder@test", "ed25519", "sign", "never", home=other)
        sign(body, home=other)

    try:
        yield type(
            "Archive", (), {"deb": deb, "release": release, "text": text, "sign": sign, "other": other_key_signs}
        )
    finally:
        server.close()
        # gpg starts a gpg-agent daemon per home folder on first use: end them with the test
        for home in (gnupg, tmp_path / "other"):
            if home.is_dir():
                subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], capture_output=True)


def test_a_kernel_comes_from_the_debian_archive_checked_at_every_step(archive, tmp_path):
    kernel = kernels.fetch("debian:6.1", tmp_path / "cache", log=lambda *_: None)
    assert kernel.release == archive.release and kernel.package == "linux-image-6.1.0-99-amd64-unsigned"
    assert kernel.label == "6.1" and (tmp_path / "cache" / kernel.sha256 / "kernel.json").is_file()


def test_without_apt_a_version_comes_from_the_debian_archive(archive, tmp_path, monkeypatch):
    real_run = kernels._run

    def no_apt(cmd, **kw):
        if cmd[0].startswith("apt"):
            raise HarnessError(f"finding a kernel needs {cmd[0]!r}, which is not installed")
        return real_run(cmd, **kw)

    monkeypatch.setattr(kernels, "_run", no_apt)
    monkeypatch.setattr(kernels, "_index_entry", lambda name: {})
    said = []
    kernel = kernels.fetch("6.1", tmp_path / "cache", log=said.append)
    assert kernel.release == archive.release
    assert any("not from apt" in s and "apt-cache" in s for s in said), said


def test_an_archive_signed_by_another_key_is_refused(archive, tmp_path):
    archive.other(archive.text)
    with pytest.raises(HarnessError, match=r"InRelease has no good signature by a key of .*keyring\.gpg.*not used"):
        kernels.fetch("debian:6.1", tmp_path / "cache")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_an_index_that_is_not_the_signed_one_is_refused(archive, tmp_path):
    archive.sign(re.sub(r"[0-9a-f]{64}", "0" * 64, archive.text))
    with pytest.raises(HarnessError, match=r"Packages\.xz has SHA256 .* not the signed InRelease's"):
        kernels.fetch("debian:6.1", tmp_path / "cache")


def test_a_package_that_is_not_the_indexed_one_is_refused(archive, tmp_path):
    archive.deb.write_bytes(archive.deb.read_bytes()[:-1] + b"\0")
    with pytest.raises(HarnessError, match=r"SHA256 .* is not the package index's"):
        kernels.fetch("debian:6.1", tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("*/kernel.json"))


def test_an_unreachable_archive_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_DEBIAN_MIRROR", "http://127.0.0.1:9")
    monkeypatch.setattr(kernels.debian, "SUITES", ("bookworm",))
    if _tool_missing("gpgv") or not (Path(kernels.debian.keyring()).is_file()):
        pytest.skip("needs gpgv and the Debian archive keyring")
    with pytest.raises(HarnessError, match=r"cannot download .*InRelease.*name a kernel \.deb.*HARNESS_DEBIAN_MIRROR"):
        kernels.fetch("debian:6.1", tmp_path / "cache")
