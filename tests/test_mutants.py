"""harness mutants: the library's format, applying snippets, selecting cases, the report.
(Running mutants needs root and containers: `harness mutants`, `nox -s mutants`.)"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness import mutants, requirements
from harness.errors import HarnessError

ONE = """
[[mutant]]
id = "m1"
requirements = ["runtime.state.bundle"]
description = "d"
[[mutant.edit]]
file = "pkg/a.py"
old = 'x = 1'
new = 'x = 2'
"""


def lib(tmp_path, text):
    d = tmp_path / "lib"
    d.mkdir(exist_ok=True)
    (d / "area.toml").write_text(text)
    return d


def test_shipped_library_loads_with_known_ids():
    found = mutants.load(mutants.ROOT / "tests" / "mutants")
    assert len(found) >= 15
    assert len({m.id for m in found}) == len(found)


def test_library_errors_name_the_problem(tmp_path):
    assert [m.id for m in mutants.load(lib(tmp_path, ONE))] == ["m1"]
    with pytest.raises(HarnessError, match="defined twice"):
        mutants.load(lib(tmp_path, ONE + ONE))
    with pytest.raises(HarnessError, match="unknown requirement ids"):
        mutants.load(lib(tmp_path, ONE.replace("runtime.state.bundle", "no.such.id")))
    with pytest.raises(HarnessError, match="missing or invalid field"):
        mutants.load(lib(tmp_path, ONE.replace('description = "d"\n', "")))
    with pytest.raises(HarnessError, match="must be letters"):
        mutants.load(lib(tmp_path, ONE.replace('id = "m1"', 'id = "a b"')))
    with pytest.raises(HarnessError, match="no such folder"):
        mutants.load(tmp_path / "nowhere")


def runtime_copy(tmp_path, text="x = 1\ny = 1\n"):
    rt = tmp_path / "rt"
    (rt / "pkg").mkdir(parents=True)
    (rt / "pkg" / "a.py").write_text(text)
    return rt


def mutant(old, new, file="pkg/a.py"):
    return mutants.Mutant("m", ("runtime.state.bundle",), "d", (mutants.Edit(file, old, new),))


def test_apply_replaces_the_one_snippet(tmp_path):
    rt = runtime_copy(tmp_path)
    mutants.apply(mutant("x = 1", "x = 2"), rt)
    assert (rt / "pkg" / "a.py").read_text() == "x = 2\ny = 1\n"


@pytest.mark.parametrize(
    "old,new,file,match",
    [
        ("z = 1", "z = 2", "pkg/a.py", "is gone"),
        ("= 1", "= 2", "pkg/a.py", "occurs 2 times"),
        ("x = 1", "x = (", "pkg/a.py", "not valid Python"),
        ("x = 1", "x = 2", "pkg/missing.py", "missing.py"),
        ("x = 1", "x = 2", "../outside.py", "outside the runtime"),
    ],
)
def test_apply_refuses_what_does_not_apply_and_leaves_the_file(tmp_path, old, new, file, match):
    rt = runtime_copy(tmp_path)
    with pytest.raises(mutants.NotApplicable, match=match):
        mutants.apply(mutant(old, new, file), rt)
    assert (rt / "pkg" / "a.py").read_text() == "x = 1\ny = 1\n"


def test_definition_is_the_reference_one_renamed(tmp_path):
    ref = mutants.ROOT / "runtimes" / "reference.toml"
    mutants._write_definition(tmp_path, "m-x", tmp_path / "bin" / "rt", ref)
    from harness.runtime import RuntimeDefinition

    d = RuntimeDefinition.from_toml(tmp_path / "m-x.toml")
    orig = RuntimeDefinition.from_toml(ref)
    assert (d.name, d.binary) == ("m-x", str(tmp_path / "bin" / "rt"))
    assert (d.root_flag, d.delete_force, d.global_args) == (orig.root_flag, orig.delete_force, orig.global_args)


def rec(runtime, case, outcome, reqs=(), message=None):
    return {
        "runtime": runtime,
        "case": f"{case}[{runtime}]",
        "outcome": outcome,
        "message": message,
        "requirements": [{"id": r} for r in reqs],
    }


def result(reqs=("runtime.state.bundle",)):
    return mutants.Result("x", "lifecycle", list(reqs), "d")


def test_classify_killed_breaks_everything_hang_and_undecided():
    smoke = mutants.SMOKE_CASES[0]
    r = result()
    assert not mutants._classify(r, [rec("m-x", "cases/t.py::a", "passed")], "fast")
    r = result()
    assert mutants._classify(r, [rec("m-x", "cases/t.py::a", "failed"), rec("m-x", smoke, "passed")], "fast")
    assert (r.outcome, r.phase, r.killed_by) == ("killed", "fast", ["cases/t.py::a"])
    r = result()
    mutants._classify(r, [rec("m-x", "cases/t.py::a", "failed"), rec("m-x", smoke, "failed")], "fast")
    assert r.outcome == "breaks-everything"
    r = result(("config.process.args",))
    mutants._classify(r, [rec("m-x", smoke, "failed", reqs=["config.process.args"])], "fast")
    assert r.outcome == "killed", "a smoke case checking the mutant's own requirement counts as a kill"
    r = result()
    mutants._classify(
        r,
        [
            rec(
                "m-x",
                "cases/t.py::a",
                "failed",
                message="m-x: timeout: delete gave no answer within 20 s (load 1.0); killed",
            )
        ],
        "full",
    )
    assert r.outcome == "hang"
    r = result()
    traceback = 'out, err = _communicate(proc, timeout, lambda o, e: RuntimeTimeout(self.name, argv, f"no answer within {timeout:g} s (killed)"))\nE   RuntimeCallError: m-x: delete failed'
    mutants._classify(r, [rec("m-x", "cases/t.py::a", "failed", message=traceback)], "fast")
    assert r.outcome == "killed", "the adapter's source in a traceback is not a timeout"


def test_report_scores_areas_and_lists_untargeted():
    cat = requirements.catalogue()
    rs = [result(), result(), mutants.Result("y", "process", ["config.process.cwd"], "d", outcome="not-applying")]
    rs[0].outcome, rs[1].outcome = "killed", "survived"
    doc = mutants.report(rs, cat, full=True, seconds=1.0)
    assert doc["areas"]["lifecycle"]["score"] == 0.5
    assert doc["areas"]["process"]["score"] is None
    assert doc["totals"]["not-applying"] == 1
    assert "runtime.state.bundle" not in doc["untargeted"] and "config.process.env" in doc["untargeted"]
    json.dumps(doc)
    assert "score 50%" in mutants.summary(doc)


def test_select_plugin_keeps_each_runtimes_own_cases(tmp_path):
    (tmp_path / "test_x.py").write_text(
        textwrap.dedent("""
        import pytest
        @pytest.mark.parametrize("runtime", ["m-a", "m-b", "other"])
        def test_one(runtime): pass
        @pytest.mark.parametrize("runtime", ["m-a", "m-b"])
        def test_two(runtime): pass
        def test_no_runtime(): pass
    """)
    )
    sel = tmp_path / "sel.json"
    sel.write_text(json.dumps({"m-a": ["test_x.py::test_one"], "m-b": "*"}))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(tmp_path),
            "-p",
            "harness._mutant_select",
            "-p",
            "no:cacheprovider",
            "--collect-only",
            "-q",
            "-p",
            "no:harness",
        ],
        cwd=tmp_path,
        env={**os.environ, "HARNESS_MUTANT_SELECT": str(sel), "PYTHONPATH": str(mutants.ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )
    ids = sorted(line for line in out.stdout.splitlines() if "::" in line)
    assert ids == ["test_x.py::test_one[m-a]", "test_x.py::test_one[m-b]", "test_x.py::test_two[m-b]"], (
        out.stdout + out.stderr
    )


def test_sample_is_reproducible_and_spread_over_areas():
    found = mutants.load(mutants.ROOT / "tests" / "mutants")
    cat = requirements.catalogue()
    areas = {cat[m.requirements[0]].area for m in found}
    a = mutants.sample(found, len(areas), "2026-W49")
    assert [m.id for m in a] == [m.id for m in mutants.sample(found, len(areas), "2026-W49")]
    assert {cat[m.requirements[0]].area for m in a} == areas
    assert [m.id for m in a] != [m.id for m in mutants.sample(found, len(areas), "2026-W50")]
    assert len(mutants.sample(found, 10_000, "x")) == len(found)


def test_report_shows_suite_strength(tmp_path):
    from harness.report.load import load_run
    from harness.report.render import build_report

    cat = requirements.catalogue()
    rs = [result(), result()]
    rs[0].outcome, rs[1].outcome = "killed", "survived"
    rs[1].id = "the-survivor"
    path = tmp_path / "mutants.json"
    path.write_text(json.dumps(mutants.report(rs, cat, full=True, seconds=12.0)))
    results = tmp_path / "conf"
    results.mkdir()
    (results / "results.jsonl").write_text(
        json.dumps(
            {
                "schema": "oci-harness/conformance-result/1",
                "case": "cases/test_x.py::test_y[runc]",
                "outcome": "passed",
                "runtime": "runc",
                "requirements": [],
            }
        )
        + "\n"
    )
    html, md = build_report([load_run(results)], strength=mutants.load_results(path))
    assert 'id="strength"' in html and "the-survivor" in html and "50%" in html
    assert "## Suite strength" in md and "`the-survivor`" in md
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(HarnessError, match="not the results of harness mutants"):
        mutants.load_results(tmp_path / "bad.json")


def test_a_smoke_case_failing_on_the_unmutated_runtime_stops_the_run(monkeypatch):
    """Without the spec folder offline every case fails, the smoke case too: twenty mutants were
    once judged "breaks-everything" for it. The control run says why before any mutant runs."""
    sessions = []

    def fake_session(workdir, tag, selection, **kwargs):
        sessions.append((tag, selection))
        message = "E   harness.schema.SchemaUnavailable: set $HARNESS_SPEC_DIR\nE   (more)"
        return [rec(name, mutants.SMOKE_CASES[0], "failed", message=message) for name in selection], False

    monkeypatch.setattr(mutants, "_session", fake_session)
    monkeypatch.setattr(requirements, "collect_cases", lambda cases_dir: {})  # no pytest collection in-process
    found = [m for m in mutants.load(mutants.ROOT / "tests" / "mutants") if m.source == "mounts.toml"][:2]
    with pytest.raises(HarnessError, match=r"unmutated runtime(.|\n)*SchemaUnavailable: set \$HARNESS_SPEC_DIR"):
        mutants.run(found, full=False, log=lambda msg: None)
    assert sessions == [("control", {mutants.CONTROL: list(mutants.SMOKE_CASES)})]


def test_the_mutants_run_once_the_smoke_case_passes_on_the_unmutated_runtime(monkeypatch):
    sessions = []

    def fake_session(workdir, tag, selection, **kwargs):
        sessions.append(tag)
        outcome = "passed" if tag == "control" else "failed"
        return [rec(name, mutants.SMOKE_CASES[0].replace("exactly", "x"), outcome) for name in selection] + [
            rec(name, mutants.SMOKE_CASES[0], "passed") for name in selection
        ], False

    monkeypatch.setattr(mutants, "_session", fake_session)
    monkeypatch.setattr(requirements, "collect_cases", lambda cases_dir: {})  # no pytest collection in-process
    found = [m for m in mutants.load(mutants.ROOT / "tests" / "mutants") if m.source == "mounts.toml"][:2]
    doc = mutants.run(found, full=False, log=lambda msg: None)
    assert sessions == ["control", "fast"]
    assert doc["totals"]["killed"] == 2


def test_a_session_ends_every_process_it_left(tmp_path):
    """A mutant that loses track of its container (create-without-id-takes-bundle-name) leaves
    processes running after its cases: the session's end kills what its folder holds."""
    workdir = tmp_path / "work"
    (workdir / "runtimes").mkdir(parents=True)
    mutants._write_definition(
        workdir / "runtimes", "m-x", Path("/bin/true"), mutants.ROOT / "runtimes" / "reference.toml"
    )
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "conftest.py").write_text('pytest_plugins = ["harness.pytest_plugin"]\n')
    marks = tmp_path / "pids"
    marks.mkdir()
    (cases / "test_left.py").write_text(
        textwrap.dedent(f"""
        import subprocess
        import sys

        def test_leaves_processes(runtime, tmp_path):
            # one detached in a folder of the session, one naming a runtime copy's path
            a = subprocess.Popen(["sleep", "300"], cwd=tmp_path, start_new_session=True)
            b = subprocess.Popen(
                [sys.executable, "-c", "import time; time.sleep(300)", "{workdir}/rt/x/bin/oci-reference"],
                cwd="/",
                start_new_session=True,
            )
            open("{marks}/a", "w").write(str(a.pid))
            open("{marks}/b", "w").write(str(b.pid))
        """)
    )
    logged = []
    records, timed_out = mutants._session(
        workdir,
        "fast",
        {"m-x": "*"},
        jobs=1,
        timeout=300,
        runtime_timeout=5,
        cases_dir=cases,
        src=mutants.ROOT,
        log=logged.append,
    )
    assert [r["outcome"] for r in records] == ["passed"] and not timed_out, logged
    from harness.runtime import process

    pids = [int((marks / n).read_text()) for n in ("a", "b")]
    try:
        assert process.until(lambda: not any(process.alive(p) for p in pids), 10), f"left running: {pids}"
    finally:
        for pid in pids:  # the processes this test made, if the runner left them
            if process.alive(pid):
                os.kill(pid, 9)
