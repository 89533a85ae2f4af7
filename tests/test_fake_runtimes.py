"""Runtimes that misbehave: each makes the cases fail with a clear message, and the run goes on.

Real conformance cases (cases/test_state.py, cases/test_errors.py) run under pytester
against fake runtime binaries: one that hangs, one that crashes, one that prints garbage as its
state, one that exits 0 without doing anything.
"""

import os
import sys
import textwrap
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parents[1]

FAKES = {
    # every command sleeps far past the per-call timeout
    "hangs": "import time; time.sleep(600)",
    # dies of SIGSEGV at once
    "crashes": "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)",
    # create 'works' but names the harness itself as the container's pid; state prints garbage
    "garbage": """
        import os, sys
        args = sys.argv[1:]
        if 'create' in args:
            open(args[args.index('--pid-file') + 1], 'w').write(str(os.getppid()))
        elif 'state' in args:
            print('{"id": "x", "status": 12, <<<not json')
        """,
    # accepts everything, does nothing, prints nothing
    "does-nothing": "pass",
}
EXPECTED = {
    "hangs": "timeout: state gave no answer within 0.5 s",
    "crashes": "exit code: -11",
    "garbage": "state output is not JSON",
    "does-nothing": "state output is not JSON",
}


@pytest.fixture
def fake_runtimes(pytester, tmp_path, monkeypatch):
    defs = tmp_path / "defs"
    defs.mkdir()
    for name, body in FAKES.items():
        binary = tmp_path / f"fake-{name}"
        binary.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
        binary.chmod(0o755)
        (defs / f"{name}.toml").write_text(f'name = "{name}"\nbinary = "{binary}"\n')
    monkeypatch.setenv("HARNESS_RUNTIMES_DIR", str(defs))
    monkeypatch.setenv("HARNESS_STATE_DIR", str(tmp_path / "state"))
    pytester.makeconftest('pytest_plugins = ["harness.pytest_plugin"]')
    for case_file in ("test_state.py", "test_errors.py", "_errors.py"):  # and the cases' helpers they import
        pytester.makepyfile(**{case_file[:-3]: (ROOT / "cases" / case_file).read_text()})
    return pytester


@pytest.mark.skipif(os.geteuid() != 0, reason="the cases need root")
@pytest.mark.parametrize("fake", sorted(FAKES))
def test_misbehaving_runtime_fails_cases_clearly_and_the_run_goes_on(fake_runtimes, fake, tmp_path):
    # Only the hanging fake is about the deadline. The others get one no busy machine misses:
    # with 0.5 s, a fake that crashes or does nothing could be killed before Python even started
    # it, and the case would report a timeout instead of the misbehaviour under test.
    timeout = "0.5" if fake == "hangs" else "60"
    result = fake_runtimes.runpytest("--runtime", fake, "--runtime-timeout", timeout, "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    collected = sum(outcomes.get(k, 0) for k in ("passed", "failed", "errors", "skipped", "xfailed"))
    assert collected >= 20, f"the run did not go on through the cases: {outcomes}"
    assert outcomes.get("failed", 0) + outcomes.get("errors", 0) >= 10, (
        f"a misbehaving runtime passed cases: {outcomes}"
    )
    out = result.stdout.str()
    assert EXPECTED[fake] in out, f"no clear message ({EXPECTED[fake]!r}) in the output"
    assert f"{fake}: " in out, "the message does not name the runtime"
    assert not list((tmp_path / "state").rglob("*.json")), "state left behind"


def test_a_wrong_pid_from_a_runtime_is_never_killed(tmp_path):
    """The 'garbage' runtime names the harness's own process as the container: cleanup must not kill it."""
    from harness.runtime import Container, Runtime, RuntimeDefinition

    binary = tmp_path / "liar"
    binary.write_text(f"#!{sys.executable}\n" + textwrap.dedent(FAKES["garbage"]))
    binary.chmod(0o755)
    c = Container(
        Runtime(RuntimeDefinition(name="liar", binary=str(binary)), tmp_path / "state", timeout=5),
        "c1",
        tmp_path,
        tmp_path / "io",
    )
    c.create()
    assert c.pid == os.getpid()
    c.cleanup()  # would SIGKILL this very test process if the pid were trusted


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (cgroups)")
@pytest.mark.parametrize("configured", [False, True])
def test_the_cgroup_of_a_failed_create_is_removed(tmp_path, configured):
    """A runtime that makes the container's cgroup and then fails create (crun when it cannot
    raise RLIMIT_MEMLOCK, for one) leaves no pid to find it by: the harness looks for a group
    named after the container id, at the bundle's cgroupsPath or at /<id>."""
    from harness import host
    from harness.runtime import Container, Runtime, RuntimeCallError, RuntimeDefinition

    base = next(m.mount_point for m in host.mounts() if m.fstype in ("cgroup", "cgroup2"))
    cid = f"harness-test-{os.getpid()}-{int(configured)}"
    rel = f"harness-test-parent-{os.getpid()}/{cid}" if configured else cid
    group = Path(base) / rel
    binary = tmp_path / "leaky"
    binary.write_text(
        f"#!{sys.executable}\nimport os, sys\nif 'create' in sys.argv:\n"
        f"    os.makedirs({str(group)!r})\n    sys.exit('cannot set up the container')\n"
    )
    binary.chmod(0o755)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "config.json").write_text(f'{{"linux": {{"cgroupsPath": "/{rel}"}}}}' if configured else "{}")
    c = Container(
        Runtime(RuntimeDefinition(name="leaky", binary=str(binary)), tmp_path / "state", timeout=5),
        cid,
        bundle,
        tmp_path / "io",
    )
    try:
        with pytest.raises(RuntimeCallError, match="create failed"):
            c.create()
        assert not group.exists(), f"the failed create's cgroup {group} was left behind"
    finally:
        for folder in (group, group.parent):
            if folder != Path(base) and folder.is_dir():
                folder.rmdir()
