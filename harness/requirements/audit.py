"""The catalogue checked against the spec text.

:func:`audit` joins every RFC 2119 sentence of the spec (:func:`harness.spectext.extract`) to
the catalogue: a requirement entry stands for the sentences in its ``sentence``/``sentences``
field, a ``[[sentence]]`` marking says a sentence constrains someone other than the runtime.
Sentences are matched on their normalised text within the same document; when a document says
the same thing in several places, an entry takes those in its own section and the sections
above and below it (sibling sections keep theirs apart); a sentence said several times in one section
(the hook types repeat theirs) is counted once. An entry may also name a sentence without a
keyword (a requirement the catalogue derives from a description): it is checked against the
text like the others but counted nowhere. An entry's text may also run over two to four
sentences in a row (a list item copied as one line): it stands for each of them. What does not join is reported: sentences
that nobody catalogued, entries whose sentence is not (or no longer) in the spec, entries
without a sentence, and anchors that are no heading of the spec.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from .. import spectext
from . import Marking, Requirement, catalogue, load_markings


@dataclass
class SentenceRow:
    sentence: spectext.Sentence
    requirements: list[Requirement] = field(default_factory=list)
    markings: list[Marking] = field(default_factory=list)
    cases: list[str] = field(default_factory=list)
    occurrences: int = 1

    @property
    def runtime(self) -> bool:
        """Whether the sentence constrains the runtime: not marked as someone else's, or
        catalogued as a requirement all the same."""
        return bool(self.requirements) or not self.markings

    @property
    def applies_to(self) -> str:
        return "runtime" if self.runtime else ",".join(sorted({m.applies_to for m in self.markings}))

    @property
    def status(self) -> str:
        if not self.runtime:
            return f"not the runtime's ({self.applies_to})"
        if not self.requirements:
            return "NOT CATALOGUED"
        if self.cases:
            return "covered"
        if all(not r.testable for r in self.requirements):
            return "not testable"
        return "not covered"

    @property
    def why_not_testable(self) -> str:
        return "; ".join(dict.fromkeys(r.why for r in self.requirements if not r.testable))


@dataclass
class Unmatched:
    """A sentence of a catalogue entry that is no sentence of the spec's document."""

    who: str  # requirement id, or "[[sentence]] in AREA.toml"
    file: str
    section: str
    sentence: str


@dataclass
class Audit:
    spec_dir: Path
    differs_from_pin: list[str]
    rows: list[SentenceRow]
    unmatched: list[Unmatched]
    no_sentence: list[Requirement]
    bad_anchors: list[tuple[str, str]]  # (who, file#section)
    wrong_section: list[tuple[str, str, str]]  # (who, entry's anchor, the sentence's anchor)

    def totals(self) -> dict[tuple[str, str], dict[str, int]]:
        """``{(document, MUST|SHOULD|MAY): {sentences, runtime, catalogued, covered, not testable}}``."""
        acc: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys(COLUMNS, 0))
        for row in self.rows:
            cell = acc[(row.sentence.file, row.sentence.strength)]
            cell["sentences"] += 1
            if row.runtime:
                cell["runtime"] += 1
            if row.requirements:
                cell["catalogued"] += 1
            status = row.status
            if status == "covered":
                cell["covered"] += 1
            elif status == "not testable":
                cell["not testable"] += 1
        order = {name: i for i, name in enumerate(spectext.DOCUMENTS)}
        return dict(
            sorted(acc.items(), key=lambda kv: (order.get(kv[0][0], 99), spectext.STRENGTH_NAMES.index(kv[0][1])))
        )

    def missing(self, strengths: tuple[str, ...] = ("MUST", "SHOULD")) -> list[SentenceRow]:
        """Runtime-constraining sentences of these strengths that no entry stands for."""
        return [r for r in self.rows if r.runtime and not r.requirements and r.sentence.strength in strengths]

    @property
    def clean(self) -> bool:
        return not (self.missing() or self.unmatched or self.no_sentence or self.bad_anchors)


COLUMNS = ("sentences", "runtime", "catalogued", "covered", "not testable")


def audit(
    spec_dir: Path,
    case_ids: dict[str, list[str]] | None = None,
    reqs: dict[str, Requirement] | None = None,
    markings: list[Marking] | None = None,
) -> Audit:
    """Join the spec's sentences in ``spec_dir`` with the catalogue (default: the shipped one)
    and ``{requirement id: [case ids]}``."""
    reqs = reqs if reqs is not None else catalogue()
    markings = markings if markings is not None else load_markings()
    case_ids = case_ids or {}
    anchors = spectext.anchors(spec_dir)
    tree = spectext.ancestors(spec_dir)
    rows: list[SentenceRow] = []
    plain: list[SentenceRow] = []  # sentences without a keyword: joined, not counted
    seen: dict[tuple[str, str, str], SentenceRow] = {}
    index: dict[tuple[str, str], list[SentenceRow]] = defaultdict(list)
    order: dict[str, list[tuple[str, SentenceRow]]] = defaultdict(list)  # each document's sentences in turn
    for s in spectext.extract(spec_dir, every=True):
        key = (s.file, s.section, s.norm)
        if key in seen:
            seen[key].occurrences += 1
            order[s.file].append((s.norm, seen[key]))
            continue
        row = seen[key] = SentenceRow(s)
        (rows if s.level else plain).append(row)
        index[(s.file, s.norm)].append(row)
        order[s.file].append((s.norm, row))

    def consecutive(file: str, norm: str) -> list[SentenceRow]:
        """The sentences an entry's text runs over, when it copies two to four of them in a row
        (a list item written as one line)."""
        seq = order.get(file, [])
        for i, (first, _) in enumerate(seq):
            if not norm.startswith(first + " "):
                continue
            text = first
            for j in range(i + 1, min(i + 4, len(seq))):
                text += " " + seq[j][0]
                if text == norm:
                    return [r for _, r in seq[i : j + 1]]
                if not norm.startswith(text + " "):
                    break
        return []

    unmatched: list[Unmatched] = []
    wrong_section: list[tuple[str, str, str]] = []
    bad_anchors: list[tuple[str, str]] = []

    def related(file: str, a: str, b: str) -> bool:
        """Same section, or one is under the other (the hook sections restate sentences of
        the hooks list above them)."""
        up = tree.get(file, {})
        return a == b or a in up.get(b, ()) or b in up.get(a, ())

    def join(who: str, file: str, section: str, texts: tuple[str, ...]) -> list[SentenceRow]:
        if section not in anchors.get(file, set()):
            bad_anchors.append((who, f"{file}#{section}"))
        out = []
        elsewhere = []
        for text in texts:
            norm = spectext.normalise(text)
            found = index.get((file, norm), []) or consecutive(file, norm)
            if not found:
                unmatched.append(Unmatched(who, file, section, text))
                continue
            same = [r for r in found if related(file, section, r.sentence.section)]
            if not same:
                elsewhere.append(found[0].sentence.anchor)
            out.extend(same or found)
        # an entry may gather sentences of several sections, but one of them should be its own
        if elsewhere and len(elsewhere) == len(texts):
            wrong_section.append((who, f"{file}#{section}", elsewhere[0]))
        return out

    for req in reqs.values():
        for row in join(req.id, req.file, req.section, req.sentences):
            row.requirements.append(req)
            row.cases.extend(case_ids.get(req.id, []))
    for mark in markings:
        for row in join(f"[[sentence]] in {mark.area}.toml", mark.file, mark.section, mark.sentences):
            row.markings.append(mark)
    for row in rows:
        row.cases = sorted(set(row.cases))
    return Audit(
        spec_dir=spec_dir,
        differs_from_pin=spectext.differs_from_pin(spec_dir),
        rows=rows,
        unmatched=unmatched,
        no_sentence=[r for r in reqs.values() if not r.sentences],
        bad_anchors=bad_anchors,
        wrong_section=wrong_section,
    )


def format_table(result: Audit) -> str:
    """The per-document, per-level table."""
    head = f"{'document':<18} {'level':<7}" + "".join(f"{c:>13}" for c in COLUMNS) + f"{'missing':>10}"
    lines = [head, "-" * len(head)]
    grand = dict.fromkeys(COLUMNS, 0)
    for (file, strength), cell in result.totals().items():
        missing = cell["runtime"] - cell["catalogued"]
        lines.append(f"{file:<18} {strength:<7}" + "".join(f"{cell[c]:>13}" for c in COLUMNS) + f"{missing:>10}")
        for c in COLUMNS:
            grand[c] += cell[c]
    lines.append("-" * len(head))
    lines.append(
        f"{'all':<18} {'':<7}"
        + "".join(f"{grand[c]:>13}" for c in COLUMNS)
        + f"{grand['runtime'] - grand['catalogued']:>10}"
    )
    return "\n".join(lines)
