"""The conformance matrix: requirements (by spec file and area) against runtimes.

A cell is the outcome of every case naming the requirement on one runtime, aggregated:

* ``fail``: a case failed, errored, or passed although listed as an expected failure (strict
  xfail: the runtime was fixed, its definition needs updating);
* ``xfail``: otherwise, a case is an expected failure (reason from ``runtimes/NAME.toml``);
* ``skip``: otherwise, a case was skipped (reason from its ``requires``);
* ``pass``: every case passed; a requirement covered by several cases passes only if all do;
* with no record: ``not run`` (cases exist but this run did not include them on this
  runtime), ``not covered`` (no case names it) or ``not testable`` (the catalogue says why).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import pandas as pd

from ..requirements import LEVELS, SPEC_FILES, Requirement

STATUSES = ("pass", "fail", "xfail", "skip", "not run", "not covered", "not testable")
#: Statuses that mean the requirement was tested on the runtime.
TESTED = ("pass", "fail", "xfail", "skip")
STRENGTHS = ("MUST", "SHOULD", "MAY")
FAILING_OUTCOMES = ("failed", "error", "xpassed")


def aggregate(outcomes: list[str]) -> str | None:
    """The status of a requirement from the outcomes of its cases (``None``: no case ran)."""
    if not outcomes:
        return None
    if any(o in FAILING_OUTCOMES for o in outcomes):
        return "fail"
    if "xfailed" in outcomes:
        return "xfail"
    if "skipped" in outcomes:
        return "skip"
    return "pass"


@dataclass
class Cell:
    status: str
    #: The records (as dicts) of the cases behind the cell.
    cases: list[dict[str, Any]] = field(default_factory=list)

    @property
    def reasons(self) -> list[str]:
        """Distinct reasons of the xfailed and skipped cases, in order."""
        seen: list[str] = []
        for c in self.cases:
            if c["outcome"] in ("xfailed", "skipped", "xpassed") and c.get("reason") and c["reason"] not in seen:
                seen.append(c["reason"])
        return seen

    @property
    def counts(self) -> str:
        """``2 passed, 1 skipped``."""
        return ", ".join(f"{n} {o}" for o, n in Counter(c["outcome"] for c in self.cases).items())

    @property
    def failing(self) -> list[dict[str, Any]]:
        return [c for c in self.cases if c["outcome"] in FAILING_OUTCOMES]


@dataclass
class Row:
    requirement: Requirement
    cells: dict[str, Cell]
    #: Case ids (without parameters) that name the requirement, when known.
    covered_by: list[str] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return "req-" + "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in self.requirement.id)


@dataclass
class Group:
    file: str
    area: str
    rows: list[Row]

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows for c in r.cells.values() if c.status == status)


@dataclass
class Matrix:
    runtimes: list[str]
    groups: list[Group]
    #: Records that name no requirement.
    unlinked: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rows(self) -> list[Row]:
        return [r for g in self.groups for r in g.rows]

    def row(self, requirement_id: str) -> Row:
        return next(r for r in self.rows if r.requirement.id == requirement_id)


def _from_record(req: dict[str, Any]) -> Requirement:
    """A requirement the catalogue does not know (records made with another catalogue)."""
    file, _, section = (req.get("anchor") or "?#?").partition("#")
    return Requirement(id=req["id"], file=file, section=section, level=req.get("level") or "MUST", text=req.get("text") or "", area="(not in catalogue)")


def build_matrix(records: pd.DataFrame | None, catalogue: dict[str, Requirement], covered: dict[str, list[str]] | None = None) -> Matrix:
    """The matrix of every catalogue requirement (and any other a record names) by runtime.

    ``covered`` is ``{requirement id: [case ids]}`` from collecting the cases
    (:func:`harness.requirements.collect_cases`); without it, a requirement no record names
    counts as not covered.
    """
    records = records if records is not None else pd.DataFrame(columns=["runtime", "requirements", "outcome"])
    runtimes = sorted(records["runtime"].dropna().unique().tolist())
    by_req: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    reqs: dict[str, Requirement] = dict(catalogue)
    unlinked = []
    for rec in records.to_dict("records"):
        if not rec["requirements"]:
            unlinked.append(rec)
        for req in rec["requirements"]:
            if req["id"] not in reqs:
                reqs[req["id"]] = _from_record(req)
            by_req[req["id"]][rec["runtime"]].append(rec)
    groups: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for rid, req in reqs.items():
        cells = {}
        for rt in runtimes:
            cases = by_req.get(rid, {}).get(rt, [])
            status = aggregate([c["outcome"] for c in cases])
            if status is None:
                if not req.testable:
                    status = "not testable"
                elif (covered is not None and covered.get(rid)) or rid in by_req:
                    status = "not run"
                else:
                    status = "not covered"
            cells[rt] = Cell(status, cases)
        groups[(req.file, req.area)].append(Row(req, cells, list((covered or {}).get(rid, []))))
    file_order = {f: i for i, f in enumerate(SPEC_FILES)}
    ordered = sorted(groups.items(), key=lambda kv: (file_order.get(kv[0][0], len(file_order)), kv[0][0], kv[0][1]))
    return Matrix(runtimes, [Group(f, a, rows) for (f, a), rows in ordered], unlinked)


def totals(matrix: Matrix) -> dict[str, dict[str, Counter]]:
    """``{runtime: {strength: Counter(status)}}`` (strength: MUST, SHOULD or MAY-like levels)."""
    out: dict[str, dict[str, Counter]] = {rt: {s: Counter() for s in STRENGTHS} for rt in matrix.runtimes}
    for row in matrix.rows:
        for rt, cell in row.cells.items():
            out[rt][row.requirement.strength][cell.status] += 1
    return out


def total_text(counts: Counter) -> str:
    """``97/101``: requirements passed of those tested (every case ran, skipped or failed)."""
    tested = sum(counts[s] for s in TESTED)
    return f"{counts['pass']}/{tested}"


def level_order(level: str) -> int:
    return LEVELS.index(level) if level in LEVELS else len(LEVELS)


def differences(matrix: Matrix, a: str, b: str) -> list[Row]:
    """Requirements whose status differs between runtimes ``a`` and ``b`` (tested on at least one)."""
    return [
        r for r in matrix.rows
        if r.cells[a].status != r.cells[b].status and (r.cells[a].status in TESTED or r.cells[b].status in TESTED)
    ]


def runtime_pairs(matrix: Matrix) -> list[tuple[str, str]]:
    return list(combinations(matrix.runtimes, 2))


def failures(matrix: Matrix) -> list[tuple[Row, str, Cell]]:
    """Every failing cell, by requirement then runtime."""
    return [(r, rt, c) for r in matrix.rows for rt, c in r.cells.items() if c.status == "fail"]


def expected_failures(matrix: Matrix) -> list[tuple[Row, str, Cell]]:
    return [(r, rt, c) for r in matrix.rows for rt, c in r.cells.items() if c.status == "xfail"]


def skips(matrix: Matrix) -> dict[str, list[tuple[Row, str]]]:
    """Skipped cells grouped by reason."""
    out: dict[str, list[tuple[Row, str]]] = defaultdict(list)
    for r in matrix.rows:
        for rt, c in r.cells.items():
            if c.status == "skip":
                for reason in c.reasons or ["(no reason given)"]:
                    out[reason].append((r, rt))
    return dict(out)
