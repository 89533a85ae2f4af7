import importlib.util
import sys
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location(
    "suite_time", Path(__file__).resolve().parents[1] / "benchmarks" / "suite_time.py"
)
suite_time = importlib.util.module_from_spec(spec)
sys.modules["suite_time"] = suite_time  # its dataclasses look their module up
spec.loader.exec_module(suite_time)


def run(side, rnd, wall, cpu, outcomes):
    return suite_time.Run(side, rnd, wall, cpu, 1.0, 1.0, 0, outcomes)


def test_ratio_of_medians_and_spread():
    same = {"a": "passed", "b": "skipped"}
    runs = [
        run("base", 0, 50.0, 100.0, same),
        run("head", 0, 30.0, 60.0, same),
        run("head", 1, 20.0, 50.0, same),
        run("base", 1, 40.0, 90.0, same),
        run("base", 2, 60.0, 110.0, same),
        run("head", 2, 25.0, 55.0, same),
    ]
    result = suite_time.compare(runs)
    assert result["base"]["wall"] == {"median": 50.0, "min": 40.0, "max": 60.0}
    assert result["head"]["wall"] == {"median": 25.0, "min": 20.0, "max": 30.0}
    assert result["wall_ratio"] == pytest.approx(0.5)
    assert result["cpu_ratio"] == pytest.approx(55.0 / 100.0)
    assert result["head"]["counts"] == {"passed": 1, "skipped": 1}
    assert result["differences"] == []


def test_a_dropped_or_changed_case_is_a_difference():
    runs = [
        run("base", 0, 50.0, 100.0, {"a": "passed", "b": "passed"}),
        run("head", 0, 30.0, 60.0, {"a": "skipped"}),
    ]
    found = suite_time.differences(runs)
    assert found == ["a: base#0 passed, head#0 skipped", "b: base#0 passed, head#0 absent"]


def test_reads_outcomes_from_results_jsonl(tmp_path):
    (tmp_path / "results.jsonl").write_text(
        '{"case": "cases/t.py::x[runc]", "outcome": "xfailed"}\n\n{"case": "cases/t.py::y[runc]", "outcome": "passed"}\n'
    )
    assert suite_time.read_outcomes(tmp_path / "results.jsonl") == {
        "cases/t.py::x[runc]": "xfailed",
        "cases/t.py::y[runc]": "passed",
    }
    assert suite_time.read_outcomes(tmp_path / "missing.jsonl") == {}


def test_command_runs_one_runtime_with_results():
    argv = suite_time.suite_command("py", "runc", "auto", Path("/r"), ["-k", "state"])
    assert argv[:4] == ["py", "-m", "pytest", "cases"]
    assert argv[argv.index("--runtime") + 1] == "runc"
    assert "--results=/r" in argv and argv[-2:] == ["-k", "state"]


def test_command_runs_given_case_ids_instead_of_the_folder():
    ids = ["cases/test_a.py::test_one[runc]", "cases/test_b.py::test_two[runc-x]"]
    argv = suite_time.suite_command("py", "runc", "2", Path("/r"), [], ids)
    assert argv[3:5] == ids and "cases" not in argv


def test_common_cases_keeps_heads_order_and_names_the_rest():
    base = ["cases/a::x", "cases/a::gone", "cases/b::y"]
    head = ["cases/b::y", "cases/a::x", "cases/c::new"]
    common, only_base, only_head = suite_time.common_cases(base, head)
    assert common == ["cases/b::y", "cases/a::x"]
    assert only_base == ["cases/a::gone"] and only_head == ["cases/c::new"]


def test_collected_lists_the_checkouts_own_cases(tmp_path):
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "conftest.py").write_text(
        "def pytest_addoption(parser):\n    parser.addoption('--runtime')\n\n"
        "def pytest_collection_modifyitems(config, items):\n"
        "    keep = [i for i in items if config.getoption('runtime') in i.name]\n"
        "    config.hook.pytest_deselected(items=[i for i in items if i not in keep])\n"
        "    items[:] = keep\n"
    )
    (cases / "test_x.py").write_text(
        "import pytest\n\n@pytest.mark.parametrize('r', ['runc', 'crun'])\ndef test_one(r):\n    pass\n"
    )
    assert suite_time.collected(sys.executable, tmp_path, "runc", []) == ["cases/test_x.py::test_one[runc]"]


def test_collected_names_a_suite_that_cannot_be_collected(tmp_path):
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "test_broken.py").write_text("import nonexistent_module_for_this_test\n")
    with pytest.raises(SystemExit, match=r"collecting the cases in .* failed"):
        suite_time.collected(sys.executable, tmp_path, "runc", [])
