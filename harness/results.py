"""The conformance result record (``results.jsonl``): its schema, version, writer and reader.

One record per case and runtime, a flat JSON object per line, sorted by case: pandas reads the
file straight into a frame. The fields are documented for people who consume the file in
``docs/results.md``; this module is the one place that builds, writes and reads them (the
pytest plugin fills the outcome from pytest's reports, the report reads them back, TAP is
written from them). Nothing here knows pytest.

Versions: ``schema`` is ``oci-harness/conformance-result/<VERSION>``. A reader accepts its own
version and records without ``schema`` (the first harness wrote none) and refuses a newer one
with an error naming both versions. Adding a field keeps the version; renaming, removing or
changing the meaning of one raises it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from . import atomic
from .errors import HarnessError

KIND = "conformance-result"
VERSION = 1
SCHEMA = f"oci-harness/{KIND}/{VERSION}"
#: The file name in a results folder (``pytest --results DIR``), and the TAP rendering of it.
FILE = "results.jsonl"
TAP_FILE = "conformance.tap"

OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")


def requirement(entry: Any) -> dict[str, str]:
    """A catalogue entry (:class:`harness.requirements.Requirement`) as a record names it."""
    return {"id": entry.id, "level": entry.level, "anchor": entry.anchor, "text": entry.text}


def new(case: str, runtime: str, requirements: Iterable[Any]) -> dict[str, Any]:
    """The record of ``case`` (a pytest node id) on ``runtime`` before anything ran: passed,
    until a phase says otherwise."""
    path, _, name = case.partition("::")
    return {
        "schema": SCHEMA,
        "case": case,
        "file": path,
        "name": name.split("[", 1)[0],
        "runtime": runtime,
        "requirements": [requirement(r) for r in requirements],
        "outcome": "passed",
        "duration": 0.0,
        "reason": None,
        "message": None,
        "sections": {},
    }


def finish(records: Iterable[dict[str, Any]], versions: dict[str, str], env: dict[str, Any]) -> list[dict[str, Any]]:
    """The records as written: sorted by case, each with its runtime's version and the host
    facts a reader groups by (kernel, machine, cgroup mode, from the environment block)."""
    out = sorted(records, key=lambda r: r["case"])
    for r in out:
        r["runtime_version"] = versions.get(r["runtime"] or "")
        r["host"] = {k: env[k] for k in ("kernel", "machine", "cgroup_mode")}
    return out


def write(records: list[dict[str, Any]], directory: Path) -> None:
    """``results.jsonl`` and ``conformance.tap`` in ``directory``."""
    write_jsonl(records, Path(directory) / FILE)
    write_tap(records, Path(directory) / TAP_FILE)


def write_jsonl(records: Iterable[dict[str, Any]], path: Path) -> None:
    atomic.write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in records), parents=True)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every record of a ``results.jsonl`` as written, unchecked (see :func:`read`)."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def version_of(schema: object, kind: str = KIND) -> int | None:
    """The version in ``oci-harness/<kind>/<N>``, or None when ``schema`` is not of that kind."""
    prefix = f"oci-harness/{kind}/"
    if isinstance(schema, str) and schema.startswith(prefix) and schema[len(prefix) :].isdigit():
        return int(schema[len(prefix) :])
    return None


def check_schema(where: str, schema: object, kind: str, version: int, default: str) -> None:
    """Refuse a record of another kind, or of a newer version than this harness reads, naming both."""
    found = version_of(schema, kind)
    if schema is None or found == version:
        return
    if found is not None and found > version:
        raise HarnessError(
            f"{where}: {kind} version {found} (schema {schema!r}) was written by a newer harness; "
            f"this one reads version {version}: update the harness to read it"
        )
    raise HarnessError(f"{where}: schema {schema!r}, expected {default!r}")


def read_json(path: Path) -> Any:
    """The JSON document in the file ``path`` (environment.json, requirements.json); a file that
    cannot be read or is not JSON is a HarnessError naming it."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise HarnessError(f"{path}: cannot read: {err}") from None
    except json.JSONDecodeError as err:
        raise HarnessError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None


def lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each non-blank line of a JSON-lines file; anything that is
    not a JSON object is an error naming the line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise HarnessError(f"{path}: cannot read: {err}") from None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise HarnessError(f"{path}:{number}: not valid JSON ({err.msg} at column {err.colno})") from None
        if not isinstance(obj, dict):
            raise HarnessError(f"{path}:{number}: expected a JSON object, got {type(obj).__name__}")
        yield number, obj


def read(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The checked records of a ``results.jsonl`` and how many were left out for naming no
    runtime (older harnesses wrote one for the differential cases skipped without ``--diff``).

    An outcome this reader does not know (a newer harness may add one) is kept as it is;
    readers count it as a failure. Every problem is a HarnessError naming the file and line."""
    records = []
    without_runtime = 0
    for number, obj in lines(path):
        where = f"{path}:{number}"
        check_schema(where, obj.get("schema"), KIND, VERSION, SCHEMA)
        for key in ("case", "outcome"):
            if not isinstance(obj.get(key), str) or not obj.get(key):
                raise HarnessError(f"{where}: conformance record without {key!r}")
        reqs = obj.get("requirements") or []
        if not isinstance(reqs, list) or not all(isinstance(r, dict) and isinstance(r.get("id"), str) for r in reqs):
            raise HarnessError(f"{where}: 'requirements' must be a list of objects with an 'id'")
        sections = obj.get("sections") or {}
        if not isinstance(sections, dict):
            raise HarnessError(f"{where}: 'sections' must be an object of title: text")
        if not obj.get("runtime"):
            without_runtime += 1
            continue
        case = obj["case"]
        path_part, _, name = case.partition("::")
        records.append(
            {
                **obj,
                "file": obj.get("file") or path_part,
                "name": obj.get("name") or name.split("[", 1)[0],
                "runtime": str(obj["runtime"]),
                "sections": sections,
                "duration": float(obj.get("duration") or 0.0),
                "requirements": reqs,
            }
        )
    return records, without_runtime


def tap(records: list[dict[str, Any]]) -> str:
    """TAP version 13: a pass is ``ok``, a skip ``ok ... # SKIP reason``, an expected failure
    ``not ok ... # TODO reason`` (it failed, as expected: a TAP consumer does not count it). An
    xpass (strict: the runtime was fixed and its definition needs updating), a failure, an error
    and any outcome this writer does not know (a newer one, like ``leak``) are ``not ok``.
    """
    lines = ["TAP version 13", f"1..{len(records)}"]
    for i, r in enumerate(records, 1):
        name = r["case"].replace("\\", "\\\\").replace("#", "\\#")
        outcome = r["outcome"]
        ok = outcome in ("passed", "skipped")
        directive = ""
        if outcome == "skipped":
            directive = f" # SKIP {_one_line(r.get('reason'))}".rstrip()
        elif outcome == "xfailed":
            directive = f" # TODO expected failure: {_one_line(r.get('reason'))}".rstrip()
        lines.append(f"{'ok' if ok else 'not ok'} {i} - {name}{directive}")
        failed = outcome not in ("passed", "skipped", "xfailed")
        if failed or r.get("requirements"):
            lines.append("  ---")
            if r.get("requirements"):
                lines.append(
                    "  requirements: "
                    + json.dumps([f"{q['id']} ({q['level']}, {q['anchor']})" for q in r["requirements"]])
                )
            if r.get("runtime"):
                lines.append("  runtime: " + json.dumps(r["runtime"]))
            if failed:
                lines.append(f"  outcome: {json.dumps(outcome)}")
                message = (r.get("message") or "").strip()
                if message:
                    lines.append("  message: |")
                    lines.extend("    " + m for m in message.splitlines()[-40:])
            lines.append("  ...")
    return "\n".join(lines) + "\n"


def _one_line(text: str | None) -> str:
    """A directive's reason on one line (a newline would end the test line)."""
    return " ".join((text or "").split())


def write_tap(records: list[dict[str, Any]], path: Path) -> None:
    atomic.write_text(path, tap(records), parents=True)
