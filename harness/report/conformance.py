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

import json
import re
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
#: Outcomes that are not failures; any other (failed, error, xpassed, and one this report does
#: not know yet, like a ``leak`` a newer harness may record) makes the requirement fail.
FINE_OUTCOMES = ("passed", "xfailed", "skipped")


def is_failing(outcome: str) -> bool:
    return outcome not in FINE_OUTCOMES


def aggregate(outcomes: list[str]) -> str | None:
    """The status of a requirement from the outcomes of its cases (``None``: no case ran)."""
    if not outcomes:
        return None
    if any(is_failing(o) for o in outcomes):
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
        return [c for c in self.cases if is_failing(c["outcome"])]


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
    return Requirement(
        id=req["id"],
        file=file,
        section=section,
        level=req.get("level") or "MUST",
        text=req.get("text") or "",
        area="(not in catalogue)",
    )


def build_matrix(
    records: pd.DataFrame | None, catalogue: dict[str, Requirement], covered: dict[str, list[str]] | None = None
) -> Matrix:
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
        r
        for r in matrix.rows
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


# ---------------------------------------------------------------- failure details

_EXPECTED_GOT = re.compile(r"expected (?P<expected>.+?),? (?:but )?got (?P<actual>.+)$", re.IGNORECASE)
_IS_EXPECTED = re.compile(r"(?:reads|is|was|gave|has|are) (?P<actual>.+?), expected (?P<expected>.+)$", re.IGNORECASE)


@dataclass
class FailureView:
    """A failed case as a maintainer reads it: what was checked, expected against actual (when
    the message says), the part of config.json the case set, the runtime's stderr; the full
    pytest traceback last, folded."""

    headline: str
    expected: str | None
    actual: str | None
    detail: list[str]
    config_excerpt: str | None
    config_full: str | None
    stderr: list[tuple[str, str]]
    other: list[tuple[str, str]]
    traceback: str


def _error_lines(message: str) -> list[str]:
    """pytest's ``E   `` lines: the exception and the assertion's explanation."""
    return [
        line[1:].strip() if line.startswith("E") else line
        for line in message.splitlines()
        if line.startswith("E ") or line == "E"
    ]


def failure_view(case: dict[str, Any]) -> FailureView:
    message = case.get("message") or ""
    errors = [line for line in _error_lines(message) if line]
    headline = errors[0] if errors else (message.strip().splitlines() or ["(no message)"])[-1]
    for prefix in ("AssertionError: ", "Failed: "):
        headline = headline.removeprefix(prefix)
    expected = actual = None
    for pattern in (_EXPECTED_GOT, _IS_EXPECTED):
        m = pattern.search(headline)
        if m:
            expected, actual = m.group("expected").strip(), m.group("actual").strip()
            break
    detail = errors[1:12]
    config_excerpt = config_full = None
    stderr, other = [], []
    for title, text in (case.get("sections") or {}).items():
        title = title.removeprefix("harness: ")
        if title.startswith("config.json"):
            config_full = text
            config_excerpt = config_excerpt or _config_excerpt(text)
        elif "stderr" in title:
            stderr.append((title, text))
        else:
            other.append((title, text))
    return FailureView(headline, expected, actual, detail, config_excerpt, config_full, stderr, other, message)


def _config_excerpt(text: str) -> str | None:
    """What of a config.json differs from the default config (``harness spec``): the settings
    the case chose, which are what its check is about. ``None`` when it cannot be read."""
    from ..spec import default_config

    try:
        config = json.loads(text)
    except ValueError:
        return None
    if not isinstance(config, dict):
        return None
    base = default_config()
    changed = _changed(config, base)
    if config == base:
        return "(the default config, as harness spec writes it)"
    if not changed:
        return "(only leaves out settings of the default config: see the whole config)"
    return json.dumps(changed, indent=2, sort_keys=True)


def _changed(value: Any, base: Any) -> Any:
    """The parts of ``value`` that differ from ``base`` (objects compared key by key; a list or
    scalar that differs is kept whole)."""
    if isinstance(value, dict) and isinstance(base, dict):
        out = {}
        for k, v in value.items():
            if k not in base:
                out[k] = v
            elif v != base[k]:
                out[k] = _changed(v, base[k])
        return out
    return value


#: How a merged report names a column ``runtime @ host`` (see load._merged).
HOST_SEPARATOR = " @ "
#: The order statuses are named in a host difference: the worst first.
_STATUS_ORDER = ("fail", "xfail", "skip", "pass")


def split_column(column: str) -> tuple[str, str]:
    """``("runc", "6.1-v2")`` of ``runc @ 6.1-v2`` (host ``""`` when the column has none)."""
    runtime, _, host = column.rpartition(HOST_SEPARATOR)
    return (runtime, host) if runtime else (column, "")


@dataclass
class HostDifference:
    """A requirement whose status on one runtime differs between hosts."""

    row: Row
    runtime: str
    #: ``{status: [hosts]}``, worst status first; hosts where it was not tested are left out
    by_status: dict[str, list[str]]

    @property
    def summary(self) -> str:
        """``fails only on 6.1-v2`` or ``fail on A, B; pass on C``."""
        words = {"fail": "fails", "xfail": "fails as expected", "skip": "skips", "pass": "passes"}
        statuses = list(self.by_status)
        worst, hosts = statuses[0], self.by_status[statuses[0]]
        if len(hosts) == 1 and sum(len(h) for h in self.by_status.values()) > 1:
            others = "; ".join(f"{s} on {', '.join(h)}" for s, h in list(self.by_status.items())[1:])
            return f"{words[worst]} only on {hosts[0]} ({others})"
        return "; ".join(f"{s} on {', '.join(h)}" for s, h in self.by_status.items())


def host_differences(matrix: Matrix) -> list[HostDifference]:
    """Per runtime, the requirements whose status differs between the hosts it ran on (tested
    statuses only): failures first, then by level and requirement."""
    columns: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for column in matrix.runtimes:
        runtime, host = split_column(column)
        if host:
            columns[runtime].append((host, column))
    found = []
    for runtime, hosts in sorted(columns.items()):
        if len(hosts) < 2:
            continue
        for row in matrix.rows:
            by_status: dict[str, list[str]] = defaultdict(list)
            for host, column in hosts:
                status = row.cells[column].status
                if status in TESTED:
                    by_status[status].append(host)
            if len(by_status) > 1:
                ordered = {s: sorted(by_status[s]) for s in _STATUS_ORDER if s in by_status}
                found.append(HostDifference(row, runtime, ordered))
    found.sort(key=lambda d: ("fail" not in d.by_status, level_order(d.row.requirement.level), d.row.requirement.id))
    return found
