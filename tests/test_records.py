"""The record modules: every record type has one owner with a schema and a version; a newer
version is refused naming both; files are replaced atomically."""

import json

import pytest

from harness import atomic, environment, results
from harness.bench import records as bench_records
from harness.errors import HarnessError
from harness.requirements import record as requirements_record


def test_a_conformance_record_is_built_by_its_module_and_read_back(tmp_path):
    class Req:
        id, level, anchor, text = "runtime.state.id", "MUST", "runtime.md#state", "id is the container's id"

    rec = results.new("cases/test_state.py::test_id[runc]", "runc", [Req()])
    assert rec["schema"] == results.SCHEMA and rec["name"] == "test_id" and rec["file"] == "cases/test_state.py"
    env = environment.collect({"runc": "runc 1.1"})
    records = results.finish([rec], {"runc": "runc 1.1"}, env)
    results.write(records, tmp_path)
    read, without_runtime = results.read(tmp_path / results.FILE)
    assert without_runtime == 0 and read[0]["requirements"][0]["id"] == "runtime.state.id"
    assert read[0]["runtime_version"] == "runc 1.1" and (tmp_path / results.TAP_FILE).is_file()


@pytest.mark.parametrize(
    "write, read, kind",
    [
        (
            lambda p: p.write_text(
                json.dumps({"schema": "oci-harness/conformance-result/2", "case": "a", "outcome": "passed"})
            ),
            results.read,
            "conformance-result",
        ),
        (
            lambda p: p.write_text(json.dumps({"schema": "oci-harness/environment/7"})),
            environment.read,
            "environment",
        ),
        (
            lambda p: p.write_text(json.dumps({"schema": "oci-harness/requirements/3", "requirements": []})),
            requirements_record.read,
            "requirements",
        ),
        (
            lambda p: p.write_text(json.dumps({"schema": "oci-harness/bench-sample/2"}) + "\n" + "{}\n"),
            bench_records.read_samples,
            "bench-sample",
        ),
    ],
)
def test_a_newer_version_is_refused_naming_both_versions(tmp_path, write, read, kind):
    path = tmp_path / "record"
    write(path)
    with pytest.raises(HarnessError, match=rf"{kind} version \d+ .* newer harness; this one reads version 1"):
        read(path)


def test_records_without_a_schema_are_read_as_version_1(tmp_path):
    (tmp_path / "results.jsonl").write_text(json.dumps({"case": "a::b[runc]", "outcome": "passed", "runtime": "runc"}))
    (tmp_path / "environment.json").write_text(json.dumps({"kernel": "6.1"}))
    assert results.read(tmp_path / "results.jsonl")[0][0]["name"] == "b"
    assert environment.read(tmp_path / "environment.json")["kernel"] == "6.1"


def test_an_older_folder_without_requirements_json_is_read_with_a_note(tmp_path):
    from harness.report.load import load_run

    (tmp_path / "results.jsonl").write_text(json.dumps({"case": "a::b[runc]", "outcome": "passed", "runtime": "runc"}))
    run = load_run(tmp_path)
    assert run.catalogue is None and run.covered is None
    assert any("no requirements.json" in n for n in run.notes)


def test_the_report_shows_the_stored_catalogue_and_coverage(tmp_path):
    from harness.report.load import load_run
    from harness.report.render import context
    from harness.requirements import Requirement

    req = Requirement("x.only-here", "runtime.md", "state", "MUST", "a requirement of that run", "x")
    other = Requirement("x.named-not-run", "runtime.md", "state", "MUST", "named by a case that did not run", "x")
    doc = requirements_record.build({r.id: r for r in (req, other)}, {"x.named-not-run": ["cases/t.py::test_n"]})
    requirements_record.write(doc, tmp_path)
    rec = {"case": "cases/t.py::test_r[runc]", "outcome": "passed", "runtime": "runc"}
    rec["requirements"] = [{"id": "x.only-here", "level": "MUST", "anchor": "runtime.md#state", "text": "t"}]
    (tmp_path / "results.jsonl").write_text(json.dumps(rec) + "\n")
    matrix = context([load_run(tmp_path)])["conf"]["matrix"]
    assert {r.requirement.id: r.cells["runc"].status for r in matrix.rows} == {
        "x.only-here": "pass",
        "x.named-not-run": "not run",
    }


def test_an_atomic_write_that_fails_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "f.json"
    atomic.write_text(path, "old")
    with pytest.raises(RuntimeError), atomic.replacing(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed midway")
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["f.json"]
    atomic.write_text(path, "new")
    assert path.read_text() == "new" and oct(path.stat().st_mode & 0o777) == "0o644"
