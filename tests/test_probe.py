"""Tests of harness.probe: building the static probe and every verb of it, run on the host.

The probe is run directly (not in a container) so what it reports can be compared with what
Python sees for the same process conditions.
"""

from __future__ import annotations

import codecs
import json
import os
import random
import re
import resource
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

import harness.probe as probe_module
from harness.errors import ProbeBuildError
from harness.probe import REPORT_KEYS, build_probe, has_interpreter, parse_report, source_digest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the probe is Linux-only")

RLIM_INFINITY_OCI = 2**64 - 1
TIMEOUT = 30  # seconds for any one probe run


@pytest.fixture(scope="session")
def probe_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("probe-cache")


@pytest.fixture(scope="session")
def probe(probe_cache: Path) -> Path:
    return build_probe(probe_cache)


def run(binary: Path, *verbs: str, **kwargs) -> subprocess.CompletedProcess:
    if "stdout" not in kwargs and "stderr" not in kwargs:
        kwargs["capture_output"] = True
    return subprocess.run([str(binary), *verbs], timeout=TIMEOUT, check=False, **kwargs)


def report_of(binary: Path, **kwargs) -> dict:
    result = run(binary, "report", **kwargs)
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith(b"\n") and result.stdout.count(b"\n") == 1
    return parse_report(result.stdout.decode())


def wait_for(path: Path, proc: subprocess.Popen, deadline: float = 10.0) -> None:
    """Poll until path exists (or fail if the process exits or the deadline passes)."""
    end = time.monotonic() + deadline
    while not path.exists():
        assert proc.poll() is None, f"probe exited early: {proc.communicate()}"
        assert time.monotonic() < end, f"{path} did not appear within {deadline}s"
        time.sleep(0.005)


def proc_status(field: str) -> str:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    raise KeyError(field)


# --------------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------------


def test_build_returns_an_executable_in_the_cache(probe: Path, probe_cache: Path) -> None:
    assert probe.name == "probe"
    assert probe.is_relative_to(probe_cache / "probe")
    assert len(probe.parent.name) == 16 and re.fullmatch(r"[0-9a-f]{16}", probe.parent.name)
    assert os.access(probe, os.X_OK)
    identity = (probe.parent / "compiler.txt").read_text().splitlines()
    assert len(identity) == 2 and identity[1]  # the command, then `--version`'s first line
    assert not [p.name for p in probe.parent.iterdir() if p.name.endswith(".tmp")]


def test_second_build_is_a_cache_hit_that_never_runs_the_compiler(
    probe: Path, probe_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = probe.stat().st_mtime_ns
    monkeypatch.setenv("HARNESS_CC", "/nonexistent/cc")

    def no_subprocess(*args, **kwargs):
        raise AssertionError(f"a cache hit ran a process: {args}")

    monkeypatch.setattr(subprocess, "run", no_subprocess)
    assert build_probe(probe_cache) == probe
    assert probe.stat().st_mtime_ns == before


def test_cache_dir_comes_from_harness_cache_dir(
    probe: Path, probe_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(probe_cache))
    monkeypatch.setenv("HARNESS_CC", "/nonexistent/cc")
    assert build_probe() == probe


def test_cache_key_follows_the_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = probe_module._cache_key()
    copy = tmp_path / "probe.c"
    copy.write_bytes(probe_module.SOURCE.read_bytes() + b"\n/* changed */\n")
    monkeypatch.setattr(probe_module, "SOURCE", copy)
    assert probe_module._cache_key() != original
    assert source_digest() != probe_module.hashlib.sha256(b"").hexdigest()


def test_build_static_builds_and_caches_any_source(tmp_path: Path) -> None:
    source = tmp_path / "hello.c"
    source.write_text('#include <unistd.h>\nint main(void) { return write(1, "hi", 2) == 2 ? 0 : 1; }\n')
    binary = probe_module.build_static(source, "hello", tmp_path / "cache")
    assert binary.parent.parent == tmp_path / "cache" / "hello" and binary.name == "hello"
    assert not has_interpreter(binary)
    assert subprocess.run([binary], capture_output=True).stdout == b"hi"
    mtime = binary.stat().st_mtime_ns
    assert probe_module.build_static(source, "hello", tmp_path / "cache") == binary
    assert binary.stat().st_mtime_ns == mtime


def test_binary_is_static(probe: Path) -> None:
    assert has_interpreter(probe) is False
    # The check can fail: a dynamically linked program has an interpreter.
    assert has_interpreter(Path(os.path.realpath(shutil.which("sh")))) is True
    with pytest.raises(ValueError, match="not an ELF"):
        has_interpreter(probe_module.SOURCE)


def test_missing_compiler_names_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_CC", "/nonexistent/cc")
    with pytest.raises(ProbeBuildError) as info:
        build_probe(tmp_path)
    message = str(info.value)
    assert "/nonexistent/cc" in message and "HARNESS_CC" in message
    assert "apt-get install gcc libc6-dev" in message and "glibc-static" in message
    assert not (tmp_path / "probe").exists()  # nothing half-made is left behind


def test_missing_compiler_with_harness_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("HARNESS_CC", "/nonexistent/cc")
    with pytest.raises(ProbeBuildError, match="apt-get install gcc"):
        build_probe()


def fake_compiler(tmp_path: Path, body: str) -> Path:
    """A shell script standing in for cc: `--version` works, a build runs `body`."""
    script = tmp_path / "fake-cc"
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = --version ]; then echo "fake-cc 1.0"; exit 0; fi\n'
        'while [ "$#" -gt 0 ]; do [ "$1" = -o ] && out=$2; shift; done\n' + body
    )
    script.chmod(0o755)
    return script


def test_missing_static_libc_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cc = fake_compiler(tmp_path, 'echo "/usr/bin/ld: cannot find -lc: No such file or directory" >&2; exit 1\n')
    monkeypatch.setenv("HARNESS_CC", str(cc))
    with pytest.raises(ProbeBuildError) as info:
        build_probe(tmp_path / "cache")
    message = str(info.value)
    assert "static C library is missing" in message
    assert "libc6-dev" in message and "glibc-static" in message
    assert "cannot find -lc" in message
    leftovers = list((tmp_path / "cache").rglob("*"))
    assert not [p for p in leftovers if p.is_file()], leftovers


def test_other_compile_failures_show_the_compiler_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cc = fake_compiler(tmp_path, 'echo "probe.c:1: error: something odd" >&2; exit 1\n')
    monkeypatch.setenv("HARNESS_CC", str(cc))
    with pytest.raises(ProbeBuildError, match=r"probe.c:1: error: something odd"):
        build_probe(tmp_path / "cache")


def test_a_dynamic_result_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sh = os.path.realpath(shutil.which("sh"))
    cc = fake_compiler(tmp_path, f'cp {sh} "$out"\n')
    monkeypatch.setenv("HARNESS_CC", str(cc))
    with pytest.raises(ProbeBuildError, match="dynamically linked"):
        build_probe(tmp_path / "cache")
    assert not [p for p in (tmp_path / "cache").rglob("probe") if p.is_file()]


def test_cc_variable_is_used_when_harness_cc_is_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cc = fake_compiler(tmp_path, 'echo "fake cc was here" >&2; exit 1\n')
    monkeypatch.delenv("HARNESS_CC", raising=False)
    monkeypatch.setenv("CC", str(cc))
    with pytest.raises(ProbeBuildError, match="fake cc was here"):
        build_probe(tmp_path / "cache")


def test_concurrent_builds_agree(tmp_path: Path) -> None:
    """Two processes building into one empty cache both get a complete, working binary."""
    code = "import sys; from harness.probe import build_probe; print(build_probe(sys.argv[1]))"
    env = {**os.environ, "PYTHONPATH": str(Path(probe_module.__file__).parents[2])}
    env.pop("HARNESS_CC", None)
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, env=env) for _ in range(2)
    ]
    paths = {proc.communicate(timeout=120)[0].decode().strip() for proc in procs}
    assert [proc.returncode for proc in procs] == [0, 0]
    assert len(paths) == 1
    binary = Path(paths.pop())
    assert run(binary, "exit", "5").returncode == 5
    assert not [p.name for p in binary.parent.iterdir() if p.name.endswith(".tmp")]


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------


def unescape_proc(text: str) -> str:
    return re.sub(r"\\([0-3][0-7]{2})", lambda m: chr(int(m.group(1), 8)), text)


def parse_mountinfo(text: str) -> list[dict]:
    """A reference parser of /proc/self/mountinfo, to compare the probe's with."""
    mounts = []
    for line in text.splitlines():
        fields = line.split(" ")
        dash = fields.index("-", 6)
        major, minor = fields[2].split(":")
        super_options = fields[dash + 3] if len(fields) > dash + 3 else ""
        mounts.append(
            {
                "id": int(fields[0]),
                "parent": int(fields[1]),
                "major": int(major),
                "minor": int(minor),
                "root": unescape_proc(fields[3]),
                "mount_point": unescape_proc(fields[4]),
                "options": [unescape_proc(o) for o in fields[5].split(",") if o],
                "optional": fields[6:dash],
                "fstype": unescape_proc(fields[dash + 1]),
                "source": unescape_proc(fields[dash + 2]),
                "super_options": [unescape_proc(o) for o in super_options.split(",") if o],
            }
        )
    return mounts


def parse_cgroup(text: str) -> list[dict]:
    entries = []
    for line in text.splitlines():
        hierarchy, controllers, path = line.split(":", 2)
        entries.append(
            {
                "hierarchy": int(hierarchy),
                "controllers": [c for c in controllers.split(",") if c],
                "path": path,
            }
        )
    return entries


def rlimit_as_oci(value: int) -> int:
    return RLIM_INFINITY_OCI if value == resource.RLIM_INFINITY else value


@pytest.fixture
def host_report(probe: Path, tmp_path: Path) -> dict:
    """The probe's report under known conditions: cwd, env, umask and RLIMIT_NOFILE."""

    def child_setup() -> None:
        os.umask(0o027)
        resource.setrlimit(resource.RLIMIT_NOFILE, (123, 456))

    return report_of(probe, cwd=tmp_path, env={"ALPHA": "1", "BETA": "x=y", "EMPTY": ""}, preexec_fn=child_setup)


def test_report_has_every_key_and_no_errors(host_report: dict) -> None:
    assert list(host_report) == list(REPORT_KEYS)
    assert host_report["errors"] == {}


def test_report_process_and_ids(host_report: dict, tmp_path: Path) -> None:
    assert host_report["ppid"] == os.getpid()
    assert host_report["pid"] not in (os.getpid(), 0)
    assert [host_report[k] for k in ("uid", "euid", "suid")] == list(os.getresuid())
    assert [host_report[k] for k in ("gid", "egid", "sgid")] == list(os.getresgid())
    assert sorted(host_report["groups"]) == sorted(os.getgroups())
    assert host_report["cwd"] == os.path.realpath(tmp_path)
    assert host_report["env"] == ["ALPHA=1", "BETA=x=y", "EMPTY="]
    assert host_report["umask"] == 0o027


def test_report_names(host_report: dict) -> None:
    uname = os.uname()
    assert host_report["hostname"] == socket.gethostname()
    assert host_report["domainname"] == Path("/proc/sys/kernel/domainname").read_text().strip()
    assert host_report["uname"] == {
        "sysname": uname.sysname,
        "nodename": uname.nodename,
        "release": uname.release,
        "version": uname.version,
        "machine": uname.machine,
    }


def test_report_rlimits(host_report: dict) -> None:
    rlimits = host_report["rlimits"]
    assert len(rlimits) == 16
    assert rlimits["RLIMIT_NOFILE"] == {"soft": 123, "hard": 456}
    for name, value in rlimits.items():
        if name == "RLIMIT_NOFILE":
            continue
        # Python's resource module lacks RLIMIT_LOCKS; it is 10 on every Linux architecture.
        soft, hard = resource.getrlimit(getattr(resource, name, 10))
        assert value == {"soft": rlimit_as_oci(soft), "hard": rlimit_as_oci(hard)}, name
    assert RLIM_INFINITY_OCI in {v for limit in rlimits.values() for v in limit.values()}


def test_report_capabilities(host_report: dict) -> None:
    raw = host_report["capabilities_raw"]
    fields = {
        "bounding": "CapBnd",
        "effective": "CapEff",
        "inheritable": "CapInh",
        "permitted": "CapPrm",
        "ambient": "CapAmb",
    }
    # The child is the same user with no file capabilities: its sets are the test process's.
    for name, field in fields.items():
        assert re.fullmatch(r"0x[0-9a-f]{16}", raw[name]), raw[name]
        assert int(raw[name], 16) == int(proc_status(field), 16), name
        mask = int(raw[name], 16)
        names = host_report["capabilities"][name]
        assert names == sorted(names)
        assert len(names) == bin(mask).count("1")
        assert ("CAP_CHOWN" in names) == bool(mask & 1)
        assert ("CAP_SYS_ADMIN" in names) == bool(mask >> 21 & 1)
        assert ("CAP_CHECKPOINT_RESTORE" in names) == bool(mask >> 40 & 1)
        assert all(re.fullmatch(r"CAP_[A-Z_]+|CAP_\d+", n) for n in names)


def test_report_security(host_report: dict) -> None:
    assert host_report["no_new_privs"] is False
    assert host_report["seccomp"] == int(proc_status("Seccomp"))
    assert host_report["oom_score_adj"] == int(Path("/proc/self/oom_score_adj").read_text())


def test_report_namespaces(host_report: dict) -> None:
    expected = {name: os.stat(f"/proc/self/ns/{name}").st_ino for name in os.listdir("/proc/self/ns")}
    assert host_report["namespaces"] == expected
    assert {"mnt", "pid", "net", "uts", "ipc", "user"} <= set(expected)


def test_report_mounts_and_cgroups(probe: Path, tmp_path: Path) -> None:
    # Other runs on the host mount and unmount while the probe reads the table: every mount
    # there both before and after must be in the report, in order and parsed alike, and the
    # report holds nothing that was in neither table.
    before = parse_mountinfo(Path("/proc/self/mountinfo").read_text())
    report = report_of(probe, cwd=tmp_path)
    after = parse_mountinfo(Path("/proc/self/mountinfo").read_text())
    mounts = report["mounts"]
    assert "/" in [m["mount_point"] for m in mounts]
    stable = [m for m in before if m in after]
    assert [m for m in mounts if m in stable] == stable
    assert [m for m in mounts if m not in before and m not in after] == []
    assert report["cgroups"] == parse_cgroup(Path("/proc/self/cgroup").read_text())


def report_in_mount_namespace(script: str) -> dict:
    """Run the shell ``script`` (it mounts, then execs the probe's report) in a private mount
    namespace; the parsed report. Skips where no mount namespace can be made."""
    result = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )
    if result.returncode != 0 and b"Operation not permitted" in result.stderr:
        pytest.skip("needs root (a mount namespace and tmpfs)")
    assert result.returncode == 0, result.stderr
    return parse_report(result.stdout.decode())


def test_report_decodes_escaped_mount_points(probe: Path, tmp_path: Path) -> None:
    """A mount point with a space and a backslash comes out unescaped."""
    target = tmp_path / "with space\\and backslash"
    target.mkdir()
    script = f'mount -t tmpfs -o size=1m,mode=0700 "probe test" "{target}" && exec "{probe}" report'
    report = report_in_mount_namespace(script)
    found = [m for m in report["mounts"] if m["mount_point"] == str(target)]
    assert len(found) == 1, [m["mount_point"] for m in report["mounts"]]
    assert found[0]["fstype"] == "tmpfs" and found[0]["source"] == "probe test"
    assert "mode=700" in found[0]["super_options"]
    assert report["namespaces"]["mnt"] != os.stat("/proc/self/ns/mnt").st_ino


def test_report_without_proc_records_errors(probe: Path) -> None:
    """With nothing at /proc, the report still comes, with nulls and reasons."""
    script = f'mount -t tmpfs none /proc && exec "{probe}" report'
    report = report_in_mount_namespace(script)
    errors = report["errors"]
    assert errors["mounts"] == "open /proc/self/mountinfo: No such file or directory"
    assert errors["cgroups"] == "open /proc/self/cgroup: No such file or directory"
    assert errors["namespaces"] == "open /proc/self/ns: No such file or directory"
    assert "oom_score_adj" in errors
    assert set(errors) == {"mounts", "cgroups", "namespaces", "oom_score_adj"}
    for key in errors:
        assert report[key] is None
    # What needs no /proc is still there.
    assert report["seccomp"] == int(proc_status("Seccomp"))
    assert report["capabilities"]["bounding"]
    assert report["hostname"] == socket.gethostname()


# --------------------------------------------------------------------------------------------
# JSON escaping
# --------------------------------------------------------------------------------------------


def _bad_bytes_as_latin1(error: UnicodeError) -> tuple[str, int]:
    assert isinstance(error, UnicodeDecodeError)
    return "".join(chr(b) for b in error.object[error.start : error.end]), error.end


codecs.register_error("probe-latin1", _bad_bytes_as_latin1)


def decode_like_the_probe(raw: bytes) -> str:
    """Valid UTF-8 decoded; any other byte b becomes U+00bb (the probe writes it as \\u00bb)."""
    return raw.decode("utf-8", errors="probe-latin1")


def test_json_escaping_round_trips(probe: Path) -> None:
    values = {
        b"QUOTE": b'say "hi"',
        b"BACKSLASH": b"C:\\path\\",
        b"CONTROL": b"line1\nline2\ttab\rcr\x01\x1f\x7f",
        b"NON_UTF8": b"a\xffb\xfe",
        b"UTF8": "é € 𝄞 ünïcode".encode(),
        b"OVERLONG": b"\xc0\xaf\xe0\x80\xaf",
        b"SURROGATE": b"\xed\xa0\x80",
        b"TOO_BIG": b"\xf4\x90\x80\x80",
        b"TRUNCATED": b"x\xe2\x82",
        b"STRAY_CONTINUATION": b"\x80\xbf",
    }
    result = run(probe, "report", env=values)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)  # strict: a raw control character would be an error
    expected = [decode_like_the_probe(key + b"=" + value) for key, value in values.items()]
    assert report["env"] == expected
    assert 'QUOTE=say "hi"' in report["env"] and "NON_UTF8=a\xffb\xfe" in report["env"]


def test_json_escaping_of_random_bytes(probe: Path) -> None:
    rng = random.Random(20240611)
    env = {f"R{i}".encode(): bytes(rng.choice(range(1, 256)) for _ in range(rng.randrange(1, 40))) for i in range(200)}
    result = run(probe, "report", env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["env"] == [decode_like_the_probe(k + b"=" + v) for k, v in env.items()]


def test_parse_report_rejects_what_is_not_a_report(host_report: dict) -> None:
    with pytest.raises(ValueError, match="not valid JSON"):
        parse_report("probe: something went wrong\n")
    with pytest.raises(ValueError, match="empty output"):
        parse_report("")
    with pytest.raises(ValueError, match="not an object"):
        parse_report("[1, 2]")
    with pytest.raises(ValueError, match=r"lacks the keys .*errors"):
        parse_report(json.dumps({k: v for k, v in host_report.items() if k != "errors"}))
    with pytest.raises(ValueError, match="'errors' is not an object"):
        parse_report(json.dumps({**host_report, "errors": []}))
    assert parse_report(json.dumps(host_report)) == host_report


# --------------------------------------------------------------------------------------------
# The other verbs
# --------------------------------------------------------------------------------------------


def test_hostname(probe: Path) -> None:
    result = run(probe, "hostname")
    assert (result.returncode, result.stdout) == (0, socket.gethostname().encode() + b"\n")


def test_exit_stops_at_once(probe: Path, tmp_path: Path) -> None:
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    result = run(probe, "write", a, "x", "exit", "7", "write", b, "y")
    assert result.returncode == 7
    assert (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    assert run(probe, "exit", "0").returncode == 0
    assert run(probe, "exit", "255").returncode == 255


def test_sleep(probe: Path) -> None:
    start = time.monotonic()
    result = run(probe, "sleep", "0.25", "hostname")
    elapsed = time.monotonic() - start
    assert result.returncode == 0, result.stderr
    assert result.stdout == socket.gethostname().encode() + b"\n"
    assert 0.25 <= elapsed < 5


def test_cat_copies_bytes(probe: Path, tmp_path: Path) -> None:
    data = bytes(range(256)) * 1000  # more than one read's worth, every byte value
    (tmp_path / "data").write_bytes(data)
    result = run(probe, "cat", str(tmp_path / "data"))
    assert (result.returncode, result.stdout) == (0, data)


def test_write_creates_and_truncates(probe: Path, tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.write_text("a much longer old content")
    target.chmod(0o600)  # an existing file keeps its mode
    result = run(probe, "write", str(target), "new", "cat", str(target))
    assert (result.returncode, result.stdout) == (0, b"new")
    assert target.read_bytes() == b"new"

    fresh = tmp_path / "fresh"
    result = run(probe, "write", str(fresh), "", preexec_fn=lambda: os.umask(0))
    assert result.returncode == 0, result.stderr
    assert fresh.read_bytes() == b"" and stat.S_IMODE(fresh.stat().st_mode) == 0o644


def test_exec_runs_a_child_and_reports_its_failure(probe: Path, tmp_path: Path) -> None:
    result = run(probe, "exec", str(probe), "euid", "euid")
    assert (result.returncode, result.stdout) == (0, f"euid {os.geteuid()}\n".encode() * 2), result.stderr
    result = run(probe, "exec", str(tmp_path / "missing"), "euid", "euid")
    assert result.returncode == 1 and b"No such file or directory" in result.stderr and result.stdout == b""
    script = tmp_path / "plain"
    script.write_text("not a program")
    script.chmod(0o644)
    assert b"Permission denied" in run(probe, "exec", str(script), "euid").stderr
    failing = run(probe, "exec", str(probe), "frobnicate")
    assert failing.returncode == 1 and b"the child ended with status" in failing.stderr


def test_times_and_readn(probe: Path, tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"x" * 10)
    os.utime(f, (1000, 2000))
    result = run(probe, "times", str(f), "readn", str(f), "4", "readn", str(f), "100", "readn", "/dev/zero", "5000")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert json.loads(lines[0]) == {"path": str(f), "atime": 1000, "mtime": 2000}
    assert lines[1:] == ["4", "10", "5000"]
    assert run(probe, "readn", str(f), "lots").returncode == 2


def test_try_goes_on_after_a_failure(probe: Path, tmp_path: Path) -> None:
    result = run(
        probe, "try", "cat", str(tmp_path / "missing"), "try", "euid", "cat", str(tmp_path / "missing"), "euid"
    )
    assert result.returncode == 1 and result.stdout == f"euid {os.geteuid()}\n".encode()
    assert result.stderr.count(b"No such file or directory") == 2
    assert run(probe, "euid", "try").returncode == 2 and run(probe, "try", "try", "euid").returncode == 2


def test_stdout_may_be_a_file(probe: Path, tmp_path: Path) -> None:
    out = tmp_path / "stdout"
    with open(out, "wb") as f:
        result = run(probe, "hostname", "exit", "3", stdout=f, stderr=subprocess.PIPE)
    assert result.returncode == 3
    assert out.read_text() == socket.gethostname() + "\n"


def test_ls_is_sorted(probe: Path, tmp_path: Path) -> None:
    for name in ("b", "a", "with space", "Z", ".hidden"):
        (tmp_path / name).touch()
    (tmp_path / "dir").mkdir()
    result = run(probe, "ls", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().splitlines() == sorted([".hidden", "Z", "a", "b", "dir", "with space"])
    empty = tmp_path / "dir"
    assert run(probe, "ls", str(empty)).stdout == b""


def stat_json(probe: Path, path: Path | str) -> dict:
    result = run(probe, "stat", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(b"\n") == 1
    return json.loads(result.stdout)


@pytest.mark.parametrize("kind", ["file", "dir", "symlink", "fifo", "char", "socket"])
def test_stat_matches_lstat(probe: Path, tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"a {kind}"
    if kind == "file":
        path.write_bytes(b"12345")
        os.chmod(path, 0o4751)
    elif kind == "dir":
        path.mkdir(mode=0o1777)
        os.chmod(path, 0o1777)
    elif kind == "symlink":
        path.symlink_to("/nonexistent/target")
    elif kind == "fifo":
        os.mkfifo(path, 0o640)
    elif kind == "char":
        path = Path("/dev/null")
    elif kind == "socket":
        path = tmp_path / "sock"
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
        server.close()
    st = os.lstat(path)
    assert stat_json(probe, path) == {
        "path": str(path),
        "type": kind,
        "mode": stat.S_IMODE(st.st_mode),
        "uid": st.st_uid,
        "gid": st.st_gid,
        "size": st.st_size,
        "rdev_major": os.major(st.st_rdev),
        "rdev_minor": os.minor(st.st_rdev),
        "ino": st.st_ino,
        "dev": st.st_dev,
    }


def test_stat_details(probe: Path, tmp_path: Path) -> None:
    assert stat_json(probe, "/dev/null")[("rdev_major")] == 1
    assert stat_json(probe, "/dev/null")["rdev_minor"] == 3
    (tmp_path / "f").write_bytes(b"x")
    os.chmod(tmp_path / "f", 0o4755)
    assert stat_json(probe, tmp_path / "f")["mode"] == 0o4755


# --------------------------------------------------------------------------------------------
# pause and signals
# --------------------------------------------------------------------------------------------


def start_paused(probe: Path, tmp_path: Path, *after: str, before: tuple[str, ...] = ()):
    ready = tmp_path / "ready"
    proc = subprocess.Popen(
        [str(probe), *before, "write", str(ready), "x", "pause", *after],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    wait_for(ready, proc)
    return proc


def finish(proc: subprocess.Popen) -> tuple[int, bytes, bytes]:
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out, err


def test_pause_prints_the_signal_and_exits_0(probe: Path, tmp_path: Path) -> None:
    proc = start_paused(probe, tmp_path)
    proc.send_signal(signal.SIGUSR1)
    assert finish(proc) == (0, b"SIGUSR1\n", b"")


def test_pause_goes_on_with_the_next_verbs(probe: Path, tmp_path: Path) -> None:
    proc = start_paused(probe, tmp_path, "pause", "hostname", "exit", "4")
    proc.send_signal(signal.SIGHUP)
    # The first pause has printed before the second one waits: wait for its line.
    ready, _, _ = select.select([proc.stdout], [], [], 10)
    assert ready, "the probe did not print after SIGHUP"
    assert proc.stdout.readline() == b"SIGHUP\n"
    proc.send_signal(signal.SIGTERM)
    assert finish(proc) == (4, b"SIGTERM\n" + socket.gethostname().encode() + b"\n", b"")


def test_output_is_flushed_before_pausing(probe: Path, tmp_path: Path) -> None:
    proc = start_paused(probe, tmp_path, before=("hostname",))
    ready, _, _ = select.select([proc.stdout], [], [], 10)
    assert ready, "hostname's output was not flushed before pause"
    assert proc.stdout.readline() == socket.gethostname().encode() + b"\n"
    proc.send_signal(signal.SIGINT)
    assert finish(proc) == (0, b"SIGINT\n", b"")


def test_a_signal_before_pause_is_kept_for_it(probe: Path, tmp_path: Path) -> None:
    """A signal sent between `write READY` and `pause` neither kills the probe nor is lost."""
    ready = tmp_path / "ready"
    proc = subprocess.Popen(
        [str(probe), "write", str(ready), "x", "sleep", "0.3", "pause"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    wait_for(ready, proc)
    proc.send_signal(signal.SIGUSR2)  # arrives during the sleep
    assert finish(proc) == (0, b"SIGUSR2\n", b"")


def test_each_pause_takes_one_signal(probe: Path, tmp_path: Path) -> None:
    """Two signals pending at once are reported by two pauses, none lost."""
    ready = tmp_path / "ready"
    proc = subprocess.Popen(
        [str(probe), "write", str(ready), "x", "sleep", "0.3", "pause", "pause"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    wait_for(ready, proc)
    proc.send_signal(signal.SIGUSR2)  # both arrive during the sleep, both stay pending
    proc.send_signal(signal.SIGUSR1)
    returncode, out, err = finish(proc)
    assert (returncode, err) == (0, b"")
    assert sorted(out.decode().splitlines()) == ["SIGUSR1", "SIGUSR2"]


def test_signals_are_default_again_after_the_last_pause(probe: Path, tmp_path: Path) -> None:
    second_ready = tmp_path / "second"
    proc = start_paused(probe, tmp_path, "write", str(second_ready), "x", "sleep", "20")
    proc.send_signal(signal.SIGUSR1)
    wait_for(second_ready, proc)
    proc.send_signal(signal.SIGTERM)  # default action again: terminate
    returncode, out, _ = finish(proc)
    assert (returncode, out) == (-signal.SIGTERM, b"SIGUSR1\n")


# --------------------------------------------------------------------------------------------
# Usage and failures
# --------------------------------------------------------------------------------------------


def test_no_verbs_is_a_usage_error(probe: Path) -> None:
    result = run(probe)
    assert result.returncode == 2
    assert b"usage: probe" in result.stderr and result.stdout == b""


def test_unknown_verb_runs_nothing(probe: Path, tmp_path: Path) -> None:
    result = run(probe, "write", str(tmp_path / "f"), "x", "frobnicate")
    assert result.returncode == 2
    assert b"probe: unknown verb 'frobnicate'" in result.stderr
    assert not (tmp_path / "f").exists()


@pytest.mark.parametrize(
    "verbs",
    [("cat",), ("write", "/tmp/x"), ("sleep",), ("exit",), ("sleep", "soon"), ("sleep", "-1"),
     ("sleep", "nan"), ("exit", "256"), ("exit", "-1"), ("exit", "3x")],
)  # fmt: skip
def test_missing_or_bad_arguments_are_usage_errors(probe: Path, verbs: tuple[str, ...]) -> None:
    result = run(probe, *verbs)
    assert result.returncode == 2, result
    assert f"probe: {verbs[0]}".encode() in result.stderr
    assert b"usage: probe" in result.stderr


def test_a_failing_verb_exits_1_with_a_message(probe: Path, tmp_path: Path) -> None:
    result = run(probe, "hostname", "cat", "/nonexistent/file", "hostname")
    assert result.returncode == 1
    assert result.stderr == b"probe: cat /nonexistent/file: No such file or directory\n"
    assert result.stdout == socket.gethostname().encode() + b"\n"  # the verbs before it ran

    for verbs, message in [
        (("ls", "/nonexistent"), b"probe: ls /nonexistent: No such file or directory\n"),
        (("stat", "/nonexistent"), b"probe: stat /nonexistent: No such file or directory\n"),
        (("write", str(tmp_path / "no/dir"), "x"), f"probe: write {tmp_path}/no/dir: ".encode()),
    ]:
        result = run(probe, *verbs)
        assert result.returncode == 1 and result.stderr.startswith(message), result
