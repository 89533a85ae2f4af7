"""The catalogue as a conformance run saw it (``requirements.json``): its schema, version,
writer and reader.

A report shows every requirement of the catalogue, also those no case ran, and tells a
requirement some case names but no record ran ("not run") from one no case names ("not
covered"). Both depend on the catalogue and the cases of the run, not of the checkout the
report happens to be made in, so ``pytest --results DIR`` stores them beside
``results.jsonl``: each requirement (without its spec sentences) with the ids of the collected
cases that name it, before any was deselected. The report reads them back and collects
nothing. Fields are documented in ``docs/results.md``.

Versions: ``schema`` is ``oci-harness/requirements/<VERSION>``; a newer version is refused with
an error naming both. Results folders written before this file existed have none: the report
then uses the harness's own catalogue and counts a requirement no record names as not covered.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .. import atomic
from ..errors import HarnessError
from ..results import check_schema, read_json
from . import Requirement

KIND = "requirements"
VERSION = 1
SCHEMA = f"oci-harness/{KIND}/{VERSION}"
FILE = "requirements.json"
#: The fields of a :class:`Requirement` the file keeps (its spec sentences stay in the catalogue).
FIELDS = ("id", "file", "section", "level", "text", "area", "platform", "testable", "why")


def build(catalogue: dict[str, Requirement], covered: dict[str, list[str]]) -> dict[str, Any]:
    """The document for ``catalogue`` and ``{requirement id: [case ids]}``. An id a case names
    that the catalogue lacks cannot happen (the plugin refuses it at collection)."""
    return {
        "schema": SCHEMA,
        "requirements": [
            {**{f: getattr(r, f) for f in FIELDS}, "cases": sorted(covered.get(r.id, []))} for r in catalogue.values()
        ],
    }


def write(document: dict[str, Any], directory: Path) -> None:
    atomic.write_text(Path(directory) / FILE, json.dumps(document, indent=1, sort_keys=True) + "\n")


def read(path: Path) -> tuple[dict[str, Requirement], dict[str, list[str]]]:
    """``(catalogue, {requirement id: [case ids]})`` from a ``requirements.json``; every problem
    is a HarnessError naming the file (and the entry)."""
    doc = read_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("requirements"), list):
        raise HarnessError(f"{path}: expected an object with a 'requirements' list")
    check_schema(str(path), doc.get("schema"), KIND, VERSION, SCHEMA)
    catalogue: dict[str, Requirement] = {}
    covered: dict[str, list[str]] = {}
    for i, entry in enumerate(doc["requirements"], 1):
        try:
            req = Requirement(**{f: entry[f] for f in FIELDS})
            cases = [str(c) for c in entry.get("cases") or []]
        except (KeyError, TypeError) as err:
            raise HarnessError(f"{path}: requirement #{i} lacks or mistypes a field ({err})") from None
        catalogue[req.id] = req
        if cases:
            covered[req.id] = cases
    return catalogue, covered
