"""harness.report.conformance: the requirement matrix, its aggregation and totals."""

from collections import Counter

import pandas as pd
import pytest

from harness.report.conformance import (
    aggregate,
    build_matrix,
    differences,
    expected_failures,
    failures,
    skips,
    total_text,
    totals,
)
from harness.requirements import Requirement


def req(rid, level="MUST", file="runtime.md", area="lifecycle", testable=True, why=""):
    return Requirement(
        id=rid, file=file, section="s", level=level, text=f"text of {rid}", area=area, testable=testable, why=why
    )


CATALOGUE = {
    r.id: r
    for r in [
        req("a.all-pass"),
        req("a.one-fails"),
        req("a.xfail", level="SHOULD"),
        req("a.skipped", level="MAY"),
        req("a.partly-skipped"),
        req("a.not-run"),
        req("a.not-covered"),
        req("a.untestable", testable=False, why="cannot be observed"),
        req("c.other-file", file="config.md", area="process"),
    ]
}


def rec(case, runtime, outcome, *ids, reason=None, message=None):
    return {
        "case": f"{case}[{runtime}]",
        "runtime": runtime,
        "outcome": outcome,
        "reason": reason,
        "message": message,
        "sections": {},
        "requirements": [
            {"id": i, "level": CATALOGUE[i].level if i in CATALOGUE else "MUST", "anchor": "runtime.md#x", "text": ""}
            for i in ids
        ],
    }


RECORDS = pd.DataFrame(
    [
        rec("t::one", "runc", "passed", "a.all-pass", "a.one-fails"),
        rec("t::two", "runc", "passed", "a.all-pass"),
        rec("t::one", "crun", "passed", "a.all-pass", "a.one-fails"),
        rec("t::two", "crun", "passed", "a.all-pass"),
        rec("t::three", "runc", "passed", "a.one-fails"),
        rec("t::three", "crun", "failed", "a.one-fails", message="expected 1, got 2"),
        rec("t::x", "runc", "xfailed", "a.xfail", reason="runc: known deviation"),
        rec("t::x", "crun", "passed", "a.xfail"),
        rec("t::y", "runc", "passed", "a.xfail"),
        rec("t::s", "runc", "skipped", "a.skipped", reason="needs cgroup v2"),
        rec("t::s", "crun", "skipped", "a.skipped", reason="needs cgroup v2"),
        rec("t::p", "runc", "passed", "a.partly-skipped"),
        rec("t::q", "runc", "skipped", "a.partly-skipped", reason="needs userns"),
        rec("t::p", "crun", "passed", "a.partly-skipped"),
        rec("t::q", "crun", "passed", "a.partly-skipped"),
        rec("t::z", "runc", "passed", "c.other-file"),
        rec("t::z", "crun", "xpassed", "c.other-file", reason="crun: was broken"),
        rec("t::nothing", "runc", "passed"),
        rec("t::new", "runc", "error", "z.unknown-to-catalogue"),
    ]
)
COVERED = {"a.not-run": ["cases/test_a.py::test_nr"], "a.all-pass": ["t::one", "t::two"]}


@pytest.mark.parametrize(
    "outcomes, status",
    [
        (["passed", "passed"], "pass"),
        (["passed", "failed"], "fail"),
        (["passed", "error"], "fail"),
        (["xpassed"], "fail"),
        (["passed", "xfailed"], "xfail"),
        (["xfailed", "skipped"], "xfail"),
        (["passed", "skipped"], "skip"),
        (["skipped"], "skip"),
        (["failed", "xfailed", "skipped"], "fail"),
        ([], None),
    ],
)
def test_aggregate(outcomes, status):
    assert aggregate(outcomes) == status


def test_matrix_cells():
    m = build_matrix(RECORDS, CATALOGUE, COVERED)
    assert m.runtimes == ["crun", "runc"]
    status = {(r.requirement.id, rt): c.status for r in m.rows for rt, c in r.cells.items()}
    assert status[("a.all-pass", "runc")] == "pass"
    assert status[("a.one-fails", "runc")] == "pass" and status[("a.one-fails", "crun")] == "fail"
    assert status[("a.xfail", "runc")] == "xfail" and status[("a.xfail", "crun")] == "pass"
    assert status[("a.skipped", "runc")] == "skip"
    assert status[("a.partly-skipped", "runc")] == "skip" and status[("a.partly-skipped", "crun")] == "pass"
    assert status[("a.not-run", "runc")] == "not run"
    assert status[("a.not-covered", "crun")] == "not covered"
    assert status[("a.untestable", "runc")] == "not testable"
    assert status[("c.other-file", "crun")] == "fail"  # xpassed: strict xfail, the list needs updating
    assert (
        status[("z.unknown-to-catalogue", "runc")] == "fail" and status[("z.unknown-to-catalogue", "crun")] == "not run"
    )
    assert [r["case"] for r in m.unlinked] == ["t::nothing[runc]"]


def test_without_collected_cases_a_requirement_nobody_ran_is_not_covered():
    m = build_matrix(RECORDS, CATALOGUE, None)
    assert m.row("a.not-run").cells["runc"].status == "not covered"
    assert m.row("z.unknown-to-catalogue").cells["crun"].status == "not run"  # another runtime ran it


def test_groups_by_spec_file_then_area():
    m = build_matrix(RECORDS, CATALOGUE, COVERED)
    assert [(g.file, g.area) for g in m.groups] == [
        ("runtime.md", "(not in catalogue)"),
        ("runtime.md", "lifecycle"),
        ("config.md", "process"),
    ]
    assert [r.requirement.id for r in m.groups[1].rows][:3] == [
        "a.all-pass",
        "a.one-fails",
        "a.xfail",
    ]  # catalogue order


def test_cell_details():
    m = build_matrix(RECORDS, CATALOGUE, COVERED)
    cell = m.row("a.one-fails").cells["crun"]
    assert [c["message"] for c in cell.failing] == ["expected 1, got 2"]
    assert cell.counts == "1 passed, 1 failed"
    assert m.row("a.xfail").cells["runc"].reasons == ["runc: known deviation"]
    assert [(r.requirement.id, rt) for r, rt, _ in failures(m)] == [
        ("z.unknown-to-catalogue", "runc"),
        ("a.one-fails", "crun"),
        ("c.other-file", "crun"),
    ]
    assert [(r.requirement.id, rt) for r, rt, _ in expected_failures(m)] == [("a.xfail", "runc")]
    assert {k: sorted((r.requirement.id, rt) for r, rt in v) for k, v in skips(m).items()} == {
        "needs cgroup v2": [("a.skipped", "crun"), ("a.skipped", "runc")],
        "needs userns": [("a.partly-skipped", "runc")],
    }


def test_totals_per_runtime_and_strength():
    t = totals(build_matrix(RECORDS, CATALOGUE, COVERED))
    assert t["runc"]["MUST"] == Counter(
        {"pass": 3, "not run": 1, "not covered": 1, "not testable": 1, "skip": 1, "fail": 1}
    )
    assert total_text(t["runc"]["MUST"]) == "3/5"
    assert total_text(t["crun"]["MUST"]) == "2/4"  # all-pass, partly-skipped pass; one-fails, other-file fail
    assert total_text(t["runc"]["SHOULD"]) == "0/1" and t["runc"]["SHOULD"]["xfail"] == 1
    assert total_text(t["crun"]["MAY"]) == "0/1"


def test_differences_between_two_runtimes():
    m = build_matrix(RECORDS, CATALOGUE, COVERED)
    assert [r.requirement.id for r in differences(m, "crun", "runc")] == [
        "z.unknown-to-catalogue",
        "a.one-fails",
        "a.xfail",
        "a.partly-skipped",
        "c.other-file",
    ]


def test_no_records_at_all():
    m = build_matrix(None, CATALOGUE, None)
    assert m.runtimes == [] and len(m.rows) == len(CATALOGUE)
