"""The pytest plugin, exercised with pytester against a fake runtime definition."""

import json
import sys
import textwrap
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

FAKE = r"""#!PYTHON
import json, os, sys
args = sys.argv[1:]
root = args[args.index("--root") + 1]
cmd, rest = args[2], args[3:]
os.makedirs(root, exist_ok=True)
cid = rest[-1]
path = os.path.join(root, cid + ".json")
if cmd == "create":
    if os.path.exists(path):
        sys.exit("exists")
    json.dump({"ociVersion": "1.0.2", "id": cid, "status": "created", "pid": os.getpid(), "bundle": rest[rest.index("--bundle") + 1]}, open(path, "w"))
    open(rest[rest.index("--pid-file") + 1], "w").write(str(os.getpid()))
    sys.stderr.write("fake: created " + cid + "\n")
elif cmd == "state":
    if not os.path.exists(path):
        sys.exit("no such container")
    print(open(path).read())
elif cmd == "delete":
    os.unlink(path)
"""


@pytest.fixture
def fake_env(pytester, monkeypatch, tmp_path):
    defs = tmp_path / "defs"
    defs.mkdir()
    binary = tmp_path / "fakert"
    binary.write_text(FAKE.replace("PYTHON", sys.executable))
    binary.chmod(0o755)
    (defs / "fake.toml").write_text(
        textwrap.dedent(f'''
        name = "fake"
        binary = "{binary}"
        [expected_failures."test_known_bug"]
        reason = "fake deviates"
        spec = "runtime.md#create"
        sentence = "The runtime MUST ..."
        match = "AssertionError: the name is fake"
        [expected_failures."test_param[b]"]
        reason = "only b deviates"
        spec = "runtime.md#create"
        sentence = "The runtime MUST ..."
        match = "b deviates"
    ''')
    )
    (defs / "other.toml").write_text(f'name = "other"\nbinary = "{binary}"\n')
    monkeypatch.setenv("HARNESS_RUNTIMES_DIR", str(defs))
    monkeypatch.setenv("HARNESS_STATE_DIR", str(tmp_path / "state"))
    pytester.makeconftest('pytest_plugins = ["harness.pytest_plugin"]')
    return pytester


def test_cases_run_once_per_runtime_and_expected_failures_are_strict(fake_env):
    fake_env.makepyfile(
        test_cases="""
        import pytest

        def test_ok(runtime):
            assert runtime.name in ("fake", "other")

        def test_known_bug(runtime):
            assert runtime.name != "fake", "the name is fake"

        def test_fixed_bug_is_reported(runtime):
            pass

        @pytest.mark.parametrize("p", ["a", "b"])
        def test_param(runtime, p):
            assert not (runtime.name == "fake" and p == "b"), f"{p} deviates"
        """
    )
    result = fake_env.runpytest("--runtime", "fake,other", "-rxX")
    result.assert_outcomes(passed=8, xfailed=2)
    result.stdout.fnmatch_lines(
        ["*XFAIL*test_known_bug[[]fake[]]*fake deviates*", "*XFAIL*test_param[[]fake-b[]]*only b deviates*"]
    )


def test_an_expected_failure_that_passes_fails_the_run(fake_env):
    fake_env.makepyfile(test_cases="def test_known_bug(runtime):\n    pass\n")
    result = fake_env.runpytest("--runtime", "fake")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*XPASS(strict)*"])


def test_an_expected_failure_that_fails_differently_is_a_failure(fake_env):
    """A known deviation is one specific check: the same case failing another way is new."""
    fake_env.makepyfile(
        test_cases="def test_known_bug(runtime):\n    assert runtime.name == 'other', 'something else broke'\n"
    )
    result = fake_env.runpytest("--runtime", "fake", "-rf")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*not the known deviation*", "*does not match*the name is fake*"])


def test_a_known_deviation_failing_as_listed_gets_its_message_without_a_formatted_traceback(fake_env):
    """Nothing shows an expected failure's traceback (only its reason), so it is not formatted;
    the message it was matched on stays, and any other failure keeps pytest's full report."""
    fake_env.makepyfile(
        test_cases="""
        def helper(name):
            assert name != "fake", "the name is fake"

        def test_known_bug(runtime):
            helper(runtime.name)

        def test_other_bug(runtime):
            helper(runtime.name)
        """
    )
    recorder = fake_env.inline_run("--runtime", "fake")
    calls = {r.nodeid.split("::")[1]: r for r in recorder.getreports("pytest_runtest_logreport") if r.when == "call"}
    known, other = calls["test_known_bug[fake]"], calls["test_other_bug[fake]"]
    assert known.skipped and hasattr(known, "wasxfail")
    assert "AssertionError: the name is fake" in known.longreprtext
    assert "traceback not formatted" in known.longreprtext and "def helper" not in known.longreprtext
    assert other.failed and "def helper" in other.longreprtext


@pytest.mark.parametrize(
    "entry, complaint",
    [
        ('"test_x" = "a reason only"', "is a str; write it as a table*"),
        ('"test_x" = { reason = "r", spec = "runtime.md#create", sentence = "s" }', "*needs match*"),
        (
            '"test_x" = { reason = "r", spec = "runtime.md#create", sentence = "s", match = "(" }',
            "*not a regular expression*",
        ),
        ('"test_x" = { reason = "r", spec = "create", sentence = "s", match = "x" }', "*not FILE.md#anchor*"),
    ],
)
def test_a_malformed_expected_failure_is_refused(tmp_path, entry, complaint):
    import fnmatch

    from harness.errors import HarnessError
    from harness.runtime import RuntimeDefinition

    path = tmp_path / "bad.toml"
    path.write_text(f'name = "bad"\nbinary = "bad"\n[expected_failures]\n{entry}\n')
    with pytest.raises(HarnessError) as err:
        RuntimeDefinition.from_toml(path)
    assert fnmatch.fnmatch(
        str(err.value), f"runtime definition {path}: expected failure 'test_x'{complaint}"
    ) or fnmatch.fnmatch(str(err.value), f"*{complaint}")


@pytest.mark.parametrize(
    "entry, complaint",
    [("'(' = \"a reason\"", "not a regular expression"), ("'^cgroup ' = \"\"", "needs a reason")],
)
def test_a_malformed_known_leak_pattern_is_refused(tmp_path, entry, complaint):
    from harness.errors import HarnessError
    from harness.runtime import RuntimeDefinition

    path = tmp_path / "bad.toml"
    path.write_text(f'name = "bad"\nbinary = "bad"\n[known_leak_patterns]\n{entry}\n')
    with pytest.raises(HarnessError, match=complaint):
        RuntimeDefinition.from_toml(path)


def test_a_known_leak_pattern_excuses_only_leaks_it_matches():
    from harness.pytest_plugin import _known_leak_kind

    patterns = {r"^cgroup \S+ \(of a failed create\)": "a race in the runtime's failed create"}
    failed_create = "cgroup /sys/fs/cgroup/h1-gw0-3 (of a failed create) (removed by the harness)"
    assert _known_leak_kind(patterns, [failed_create]) == "a race in the runtime's failed create"
    # another kind of leak beside it, or alone, is not excused
    assert (
        _known_leak_kind(patterns, [failed_create, "cgroup /sys/fs/cgroup/h1-gw0-4 (removed by the harness)"]) is None
    )
    assert _known_leak_kind(patterns, ["mount /tmp/b/rootfs (removed by the harness)"]) is None
    assert _known_leak_kind({}, [failed_create]) is None


def test_requires_skips_with_reason(fake_env, monkeypatch):
    from harness import host

    fake_env.makepyfile(
        test_cases="""
        import pytest

        @pytest.mark.requires("cgroup-v2")
        def test_v2():
            pass

        @pytest.mark.requires("cgroup-v1")
        def test_v1():
            pass
        """
    )
    result = fake_env.runpytest("-rs")
    expected_skip = "cgroup v2 (unified)" if host.cgroup_mode() != "v2" else "cgroup v1"
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines([f"*{expected_skip}*"])


def test_requires_a_cgroup_controller(fake_env):
    from harness import host

    offered = sorted(host.cgroup_controllers())
    fake_env.makepyfile(
        test_cases=f"""
        import pytest

        @pytest.mark.requires("controller-nosuchcontroller")
        def test_missing():
            pass

        @pytest.mark.requires(*{["controller-" + c for c in offered]!r})
        def test_offered():
            pass
        """
    )
    result = fake_env.runpytest("-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*needs the nosuchcontroller cgroup controller, which this host does not offer*"])


def test_cgroup_controllers_of_this_host():
    from harness import host

    offered = host.cgroup_controllers()
    if host.cgroup_mode() == "v2":
        assert offered == frozenset(Path("/sys/fs/cgroup/cgroup.controllers").read_text().split())
    else:  # one per mounted v1 hierarchy's controllers; named hierarchies (name=systemd) are none
        assert offered and not any(c.startswith("name=") for c in offered)
        for c in offered:
            assert any(c in m.super_options for m in host.mounts() if m.fstype == "cgroup")


def test_unknown_requirement_is_a_usage_error(fake_env):
    fake_env.makepyfile(test_cases="import pytest\n@pytest.mark.requires('quantum')\ndef test_x():\n    pass\n")
    result = fake_env.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown requirement 'quantum'*"])


def test_unknown_runtime_is_a_usage_error(fake_env):
    fake_env.makepyfile(test_cases="def test_x(runtime):\n    pass\n")
    result = fake_env.runpytest("--runtime", "nonesuch")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown runtime 'nonesuch'*"])


def test_failure_shows_config_and_runtime_stderr_and_containers_are_removed(fake_env, tmp_path):
    fake_env.makepyfile(
        test_cases="""
        def test_fails(runtime, bundle_factory, container_factory):
            c = container_factory(bundle_factory("hostname", edit=lambda cfg: cfg.__setitem__("hostname", "MARKER-HOST")))
            c.create()
            assert c.state().status == "running", "expected running"
        """
    )
    result = fake_env.runpytest("--runtime", "fake")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*harness: config.json of container*", "*MARKER-HOST*", "*harness: fake stderr at create*", "*fake: created*"]
    )
    leftovers = list((tmp_path / "state").rglob("*.json"))
    assert leftovers == [], f"containers left behind: {leftovers}"


def test_spec_marker_lands_in_junit(fake_env, tmp_path):
    fake_env.makepyfile(
        test_cases="""
        import pytest

        @pytest.mark.spec("runtime.create.status-created")
        def test_x():
            pass
        """
    )
    junit = tmp_path / "junit.xml"
    fake_env.runpytest(f"--junitxml={junit}").assert_outcomes(passed=1)
    assert 'name="requirement" value="runtime.create.status-created (MUST, runtime.md#create)"' in junit.read_text()


def test_unknown_requirement_id_is_a_usage_error(fake_env):
    fake_env.makepyfile(test_cases="import pytest\n@pytest.mark.spec('no.such.requirement')\ndef test_x():\n    pass\n")
    result = fake_env.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown requirement id 'no.such.requirement'*"])


def test_results_dir_gets_jsonl_junit_tap(fake_env, tmp_path):
    fake_env.makepyfile(
        test_cases="""
        import pytest

        @pytest.mark.spec("runtime.create.status-created")
        def test_ok(runtime):
            pass

        def test_known_bug(runtime):
            assert False, "the name is fake"

        def test_bad(runtime):
            assert 1 == 2, "expected 1, got 2"

        @pytest.mark.requires("cgroup-v1", "cgroup-v2")
        def test_skipped(runtime):
            pass
        """
    )
    out = tmp_path / "results"
    fake_env.runpytest("--runtime", "fake", f"--results={out}")
    from harness import results

    records = {r["name"]: r for r in results.read_jsonl(out / "results.jsonl")}
    assert {n: r["outcome"] for n, r in records.items()} == {
        "test_ok": "passed",
        "test_known_bug": "xfailed",
        "test_bad": "failed",
        "test_skipped": "skipped",
    }
    assert records["test_ok"]["requirements"][0]["id"] == "runtime.create.status-created"
    assert records["test_ok"]["runtime"] == "fake"
    assert "expected 1, got 2" in records["test_bad"]["message"]
    assert "fake deviates" in records["test_known_bug"]["reason"]
    assert (out / "junit.xml").read_text().count("<testcase") == 4
    assert "not ok" in (out / "conformance.tap").read_text()
    assert json.loads((out / "environment.json").read_text())["runtimes"].keys() == {"fake"}


def test_run_status_complete_then_stopped_early(fake_env, tmp_path):
    fake_env.makepyfile(test_cases="def test_a(runtime):\n    assert False\n\ndef test_b(runtime):\n    pass\n")
    out = tmp_path / "complete"
    fake_env.runpytest("--runtime", "fake", f"--results={out}")
    status = json.loads((out / "environment.json").read_text())["run_status"]
    assert (
        status["status"] == "complete"
        and status["exit"] == "tests failed"
        and status["collected"] == status["recorded"] == 2
    )
    out = tmp_path / "stopped"
    fake_env.runpytest("--runtime", "fake", f"--results={out}", "-x")
    status = json.loads((out / "environment.json").read_text())["run_status"]
    assert status["status"] == "interrupted" and status["recorded"] == 1 and status["collected"] == 2


def test_differential_cases_without_diff_are_left_out_not_recorded(fake_env, tmp_path):
    fake_env.makepyfile(
        test_cases="""
        import pytest

        @pytest.fixture(scope="session")
        def diff_runtimes(request):
            pytest.skip("needs --diff")

        def test_same(diff_runtimes):
            pass

        def test_one(runtime):
            pass
        """
    )
    out = tmp_path / "results"
    result = fake_env.runpytest("--runtime", "fake", f"--results={out}")
    result.assert_outcomes(passed=1, deselected=1)
    from harness import results

    records = results.read_jsonl(out / "results.jsonl")
    assert [r["name"] for r in records] == ["test_one"] and all(r["runtime"] for r in records)


def test_results_dir_stores_the_catalogue_and_the_cases_naming_each_requirement(fake_env, tmp_path):
    """requirements.json holds every requirement, with the collected cases naming it: also a
    case deselected with -k (the report tells "not run" from "not covered" from it alone)."""
    fake_env.makepyfile(
        test_cases="""
        import pytest

        @pytest.mark.spec("runtime.create.status-created")
        def test_ran(runtime):
            pass

        @pytest.mark.spec("runtime.state.id")
        def test_left_out(runtime):
            pass
        """
    )
    out = tmp_path / "results"
    fake_env.runpytest("--runtime", "fake", f"--results={out}", "-k", "ran")
    from harness import requirements
    from harness.requirements import record

    catalogue, covered = record.read(out / "requirements.json")
    assert catalogue.keys() == requirements.catalogue().keys()
    assert covered == {
        "runtime.create.status-created": ["test_cases.py::test_ran"],
        "runtime.state.id": ["test_cases.py::test_left_out"],
    }


def test_workers_get_the_controllers_host_baseline(fake_env, monkeypatch):
    """The host values a case restores are the run's, taken once by the xdist controller: a
    worker reading its own could record what a neighbour's non-isolating container just set."""
    fake_env.makeconftest(
        textwrap.dedent("""
        import pytest
        from harness import pytest_plugin
        pytest_plugins = ["harness.pytest_plugin"]

        @pytest.hookimpl(tryfirst=True)
        def pytest_configure_node(node):  # the controller's baseline, told from any worker's own
            node.config.stash[pytest_plugin.HOST_BASELINE] = {"kernel.hostname": "the-controllers\\n"}
        """)
    )
    fake_env.makepyfile(
        textwrap.dedent("""
        import os
        import pytest

        @pytest.mark.parametrize("i", range(4))
        def test_baseline(host_baseline, i):
            assert os.environ["PYTEST_XDIST_WORKER"]
            assert host_baseline == {"kernel.hostname": "the-controllers\\n"}
        """)
    )
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parent.parent))  # this checkout's harness
    fake_env.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider").assert_outcomes(passed=4)


def test_host_baseline_reads_the_namespaced_sysctls():
    from harness import leaks

    baseline = leaks.host_baseline()
    for key in ("kernel.hostname", "kernel.domainname", "kernel.shm_rmid_forced", "net.ipv4.ip_forward"):
        assert baseline[key] == Path("/proc/sys", *key.split(".")).read_text()
    assert "net.ipv4.conf.all.forwarding" in baseline
    assert not [k for k in baseline if k.startswith("net.ipv4.conf.lo.")], "single devices' sysctls are not read"
    assert not [k for k in baseline if k.startswith(("vm.", "kernel.pid_max"))], "only namespaced sysctls"


def test_a_group_of_failures_is_the_known_deviation_only_when_each_is():
    # hypothesis raises an ExceptionGroup when it finds several distinct failing examples
    from harness.pytest_plugin import _is_known_deviation
    from harness.runtime import ExpectedFailure

    known = ExpectedFailure("umask ignored", "config.md#posix-platform-user", "s", r"umask: wanted 0o\d+, saw 0o22")
    same = ExceptionGroup("2 distinct failures", [AssertionError("umask: wanted 0o0, saw 0o22")] * 2)
    other = ExceptionGroup("2 distinct failures", [AssertionError("umask: wanted 0o0, saw 0o22"), ValueError("empty")])
    assert _is_known_deviation(known, same, "ExceptionGroup: 2 distinct failures (2 sub-exceptions)")
    assert not _is_known_deviation(known, other, "ExceptionGroup: 2 distinct failures (2 sub-exceptions)")
    assert _is_known_deviation(known, AssertionError(), "AssertionError: umask: wanted 0o1, saw 0o22")


def test_tmp_path_is_one_new_folder_per_case_without_a_current_symlink(fake_env):
    # the plugin's tmp_path: one mkdir per case (no listing of the base folder, no
    # <name>current symlink made and freed per case), and pytest's retention policy kept
    fake_env.makeini("[pytest]\ntmp_path_retention_policy = failed\n")
    fake_env.makepyfile(
        test_cases="""
        import os, pytest
        seen = []

        @pytest.mark.parametrize("n", range(3))
        def test_folder(tmp_path, n):
            assert list(tmp_path.iterdir()) == [] and oct(tmp_path.stat().st_mode & 0o777) == oct(0o700)
            seen.append(tmp_path)
            assert len(set(seen)) == len(seen)
            assert not [p for p in tmp_path.parent.iterdir() if p.is_symlink()]
            (tmp_path / "kept-if-failed").write_text("x")
            assert n != 2, "fails on purpose"
        """
    )
    base = fake_env.path / "bt"
    result = fake_env.runpytest("-p", "no:cacheprovider", "--basetemp", str(base))
    result.assert_outcomes(passed=2, failed=1)
    left = sorted(p.name for p in base.iterdir())
    assert len(left) == 1 and left[0].startswith("test_folder_2_"), left  # passed cases' folders removed
    assert (base / left[0] / "kept-if-failed").exists()
