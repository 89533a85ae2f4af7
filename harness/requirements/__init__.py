"""The catalogue of testable requirements of the OCI runtime spec, as data.

Each ``*.toml`` file in this folder holds the requirements of one area (lifecycle, process,
mounts...), whatever spec document they come from::

    [[requirement]]
    id = "runtime.create.no-user-code"   # unique, stable: cases name it
    file = "runtime.md"                  # the spec document
    section = "create"                   # its section anchor
    level = "MUST"                       # the RFC 2119 keyword
    text = "create MUST NOT run the user-specified program"
    sentence = "[`process.args`](config.md#process) MUST NOT be applied until triggered by the [`start`](#start) operation."
    # or sentences = ["...", "..."]: the spec sentence(s) the entry stands for, as written
    # optional: platform = "linux" | "all" (default "all"); testable = false with why = "..."

Cases name the ids they check with ``@pytest.mark.spec("runtime.create.no-user-code", ...)``;
:func:`coverage` joins the two.

Sentences that do not constrain the runtime (they constrain config authors, other platforms or
other actors) are marked so, with no id, in ``[[sentence]]`` tables::

    [[sentence]]
    file = "config.md"
    section = "root"
    applies_to = "config-author"           # one of APPLIES_TO
    sentence = "..."                       # or sentences = [...]
    # optional: note = "..."

:mod:`harness.requirements.audit` joins both to the sentences of the spec text.
"""

from __future__ import annotations

import tomllib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import HarnessError

LEVELS = (
    "MUST",
    "MUST NOT",
    "REQUIRED",
    "SHALL",
    "SHALL NOT",
    "SHOULD",
    "SHOULD NOT",
    "RECOMMENDED",
    "NOT RECOMMENDED",
    "MAY",
    "OPTIONAL",
)
SPEC_FILES = (
    "runtime.md",
    "runtime-linux.md",
    "config.md",
    "config-linux.md",
    "features.md",
    "features-linux.md",
    "bundle.md",
)
HERE = Path(__file__).resolve().parent

#: Who a ``[[sentence]]`` that does not constrain the runtime constrains instead.
APPLIES_TO = {
    "config-author": "what a config.json (or the bundle) holds: its author's duty, not the runtime's",
    "hook": "what a hook program does",
    "caller": "the user of the runtime or a higher-level tool",
    "spec": "the specification itself (its versioning, its own documents)",
    "windows": "Windows only",
    "solaris": "Solaris only",
    "zos": "z/OS only",
    "freebsd": "FreeBSD only",
    "vm": "virtual-machine runtimes only",
    "other-platforms": "platforms other than Linux",
}


@dataclass(frozen=True)
class Requirement:
    id: str
    file: str
    section: str
    level: str
    text: str
    area: str
    platform: str = "all"
    testable: bool = True
    why: str = ""
    sentences: tuple[str, ...] = ()

    @property
    def anchor(self) -> str:
        return f"{self.file}#{self.section}"

    @property
    def strength(self) -> str:
        """MUST-like, SHOULD-like or MAY-like, for totals."""
        if self.level in ("MUST", "MUST NOT", "REQUIRED", "SHALL", "SHALL NOT"):
            return "MUST"
        if self.level in ("SHOULD", "SHOULD NOT", "RECOMMENDED", "NOT RECOMMENDED"):
            return "SHOULD"
        return "MAY"


@dataclass(frozen=True)
class Marking:
    """Spec sentences that constrain someone other than a Linux runtime."""

    file: str
    section: str
    applies_to: str
    sentences: tuple[str, ...]
    area: str
    note: str = ""

    @property
    def anchor(self) -> str:
        return f"{self.file}#{self.section}"


def _sentences(entry: dict, where: str) -> tuple[str, ...]:
    """The ``sentence`` / ``sentences`` field of an entry: non-empty strings, one of the two."""
    if "sentence" in entry and "sentences" in entry:
        raise HarnessError(f"requirement catalogue {where}: give either sentence or sentences, not both")
    raw = entry.get("sentences", [entry["sentence"]] if "sentence" in entry else [])
    if not isinstance(raw, list) or not all(isinstance(s, str) and s.strip() for s in raw):
        raise HarnessError(
            f"requirement catalogue {where}: sentence(s) must be non-empty strings, copied from the spec"
        )
    if "sentences" in entry and not raw:
        raise HarnessError(f"requirement catalogue {where}: sentences is empty")
    return tuple(raw)


def _read(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise HarnessError(f"requirement catalogue {path}: {err}") from None


def load_markings(directory: Path = HERE) -> list[Marking]:
    """Every ``[[sentence]]`` marking; a malformed one is a :class:`HarnessError`."""
    out = []
    for path in sorted(directory.glob("*.toml")):
        for i, entry in enumerate(_read(path).get("sentence", [])):
            where = f"{path.name} sentence #{i + 1}"
            try:
                mark = Marking(
                    file=entry["file"],
                    section=entry["section"],
                    applies_to=entry["applies_to"],
                    sentences=_sentences(entry, where),
                    area=path.stem,
                    note=entry.get("note", ""),
                )
            except KeyError as err:
                raise HarnessError(f"requirement catalogue {where}: missing field {err}") from None
            if not mark.sentences:
                raise HarnessError(f"requirement catalogue {where}: missing field 'sentence'")
            if mark.file not in SPEC_FILES:
                raise HarnessError(f"requirement catalogue {where}: unknown spec file {mark.file!r}")
            if mark.applies_to not in APPLIES_TO:
                raise HarnessError(
                    f"requirement catalogue {where}: applies_to {mark.applies_to!r} is not one of {', '.join(APPLIES_TO)}"
                )
            out.append(mark)
    return out


def load(directory: Path = HERE) -> dict[str, Requirement]:
    """Every requirement by id; a malformed file or a duplicate id is a :class:`HarnessError`."""
    found: dict[str, Requirement] = {}
    for path in sorted(directory.glob("*.toml")):
        data = _read(path)
        for i, entry in enumerate(data.get("requirement", [])):
            where = f"{path.name} requirement #{i + 1}"
            try:
                req = Requirement(
                    id=entry["id"],
                    file=entry["file"],
                    section=entry["section"],
                    level=entry["level"],
                    text=entry["text"],
                    area=path.stem,
                    platform=entry.get("platform", "all"),
                    testable=entry.get("testable", True),
                    why=entry.get("why", ""),
                    sentences=_sentences(entry, f"{path.name} requirement #{i + 1} ({entry.get('id', '?')})"),
                )
            except KeyError as err:
                raise HarnessError(f"requirement catalogue {where}: missing field {err}") from None
            if req.level not in LEVELS:
                raise HarnessError(
                    f"requirement catalogue {where} ({req.id}): level {req.level!r} is not one of {', '.join(LEVELS)}"
                )
            if req.file not in SPEC_FILES:
                raise HarnessError(f"requirement catalogue {where} ({req.id}): unknown spec file {req.file!r}")
            if not req.testable and not req.why:
                raise HarnessError(f"requirement catalogue {where} ({req.id}): testable = false needs a why")
            if req.id in found:
                raise HarnessError(
                    f"requirement catalogue: id {req.id!r} is defined twice ({found[req.id].area}.toml and {path.name})"
                )
            found[req.id] = req
    return found


@lru_cache(maxsize=1)
def catalogue() -> dict[str, Requirement]:
    return load()


@dataclass
class Coverage:
    requirement: Requirement
    cases: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.cases:
            return "covered"
        return "not testable" if not self.requirement.testable else "not covered"


def coverage(case_ids: dict[str, list[str]], reqs: dict[str, Requirement] | None = None) -> list[Coverage]:
    """Join the catalogue with ``{requirement id: [case node ids]}``."""
    reqs = reqs if reqs is not None else catalogue()
    return [Coverage(r, sorted(case_ids.get(r.id, []))) for r in reqs.values()]


def totals(rows: list[Coverage]) -> dict[tuple[str, str], tuple[int, int, int]]:
    """``{(spec file, strength): (covered, total, not testable here)}``."""
    acc: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for row in rows:
        key = (row.requirement.file, row.requirement.strength)
        acc[key][1] += 1
        if row.cases:
            acc[key][0] += 1
        elif not row.requirement.testable:
            acc[key][2] += 1
    return {k: (v[0], v[1], v[2]) for k, v in sorted(acc.items())}


def collect_cases(cases_dir: Path) -> dict[str, list[str]]:
    """``{requirement id: [case ids]}`` for the cases under ``cases_dir`` (pytest collection only).

    A case id is its node id without parameters (``cases/test_x.py::test_y``): the catalogue
    is about which checks exist, not how many runtimes they run on.
    """
    import contextlib
    import io

    import pytest

    class Collector:
        def __init__(self) -> None:
            self.found: dict[str, list[str]] = {}

        @pytest.hookimpl(trylast=True)
        def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
            self.found = cases_by_requirement(items)

    if not Path(cases_dir).is_dir():
        raise HarnessError(f"{cases_dir}: no such folder of cases (run from the project's root or pass --cases DIR)")
    collector = Collector()
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = pytest.main(
            [str(cases_dir), "--collect-only", "-q", "-p", "no:cacheprovider", "-p", "harness.pytest_plugin"],
            plugins=[collector],
        )
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        raise HarnessError(
            f"collecting the cases in {cases_dir} failed (pytest exit {int(code)}):\n{out.getvalue()[-2000:]}"
        )
    return collector.found


def cases_by_requirement(items: Iterable[Any]) -> dict[str, list[str]]:
    """``{requirement id: [case ids]}`` for collected pytest items, from their ``spec(...)``
    markers. A case id is its node id without parameters (``cases/test_x.py::test_y``): the
    catalogue is about which checks exist, not how many runtimes they run on."""
    found: dict[str, set[str]] = defaultdict(set)
    for item in items:
        for marker in item.iter_markers("spec"):
            for rid in marker.args:
                found[rid].add(item.nodeid.split("[", 1)[0])
    return {rid: sorted(cases) for rid, cases in sorted(found.items())}
