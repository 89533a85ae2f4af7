"""Reading result folders and files into pandas frames.

A *run* is what one report shows: the conformance records of one ``pytest --results`` folder
(``results.jsonl``) and/or the samples of one ``harness bench`` folder (``samples.jsonl``), each
with the ``environment.json`` beside it. A run is given as a file, a folder, or several of
them joined with commas (``conf,bench``). A folder that holds neither file directly is searched
below: the newest ``results.jsonl`` and the newest ``samples.jsonl`` found are used (so
``harness report results`` shows the latest results), and the others are named in the run's
notes.

Every problem with the input is a :class:`~harness.errors.HarnessError` naming the file (and
line) at fault.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import HarnessError
from ..results import OUTCOMES

CONFORMANCE_SCHEMA = "oci-harness/conformance-result/1"
BENCH_SCHEMA = "oci-harness/bench-sample/1"
CONFORMANCE_FILE = "results.jsonl"
BENCH_FILE = "samples.jsonl"

CONFORMANCE_COLUMNS = [
    "case", "file", "name", "runtime", "outcome", "reason", "message", "sections",
    "duration", "requirements", "runtime_version",
]
BENCH_COLUMNS = [
    "run", "suite", "runtime", "mode", "workload", "phase", "params", "iteration",
    "warmup", "value", "unit", "time",
]
SUITES = ("lifecycle", "io", "scale")
UNITS = ("s", "bytes", "inodes", "mounts", "B/s", "ops/s")


@dataclass
class Run:
    """One run's data: frames are ``None`` when the run has no such part."""

    label: str
    sources: list[Path] = field(default_factory=list)
    conformance: pd.DataFrame | None = None
    samples: pd.DataFrame | None = None
    #: ``{"conformance": {...}, "bench": {...}}``: the environment block of each part.
    environments: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def runtimes(self) -> list[str]:
        names: list[str] = []
        for frame in (self.conformance, self.samples):
            if frame is not None:
                names += [r for r in frame["runtime"].dropna().unique() if r not in names]
        return names


def load_runs(specs: list[str]) -> list[Run]:
    return [load_run(s) for s in specs]


def load_run(spec: str | Path, label: str | None = None) -> Run:
    """A run from a file, a folder, or several joined with commas."""
    spec = str(spec)
    parts = [spec] if Path(spec).exists() or "," not in spec else [p for p in spec.split(",") if p]
    run = Run(label=label or ", ".join(_short_label(Path(p)) for p in parts))
    for part in parts:
        path = Path(part)
        if not path.exists():
            raise HarnessError(f"{path}: no such file or folder of results")
        for kind, file in _discover(path, run.notes):
            if kind == "conformance":
                if run.conformance is not None:
                    raise HarnessError(f"{file}: a second set of conformance results in one run (already have {_source(run, kind)}); give them as two runs")
                run.conformance = read_conformance(file)
            else:
                if run.samples is not None:
                    raise HarnessError(f"{file}: a second set of bench samples in one run (already have {_source(run, kind)}); give them as two runs")
                run.samples = read_samples(file)
            run.sources.append(file)
            env = file.parent / "environment.json"
            if env.is_file():
                run.environments[kind] = read_environment(env)
    if run.conformance is None and run.samples is None:
        raise HarnessError(f"{spec}: no results found (expected {CONFORMANCE_FILE} from pytest --results or {BENCH_FILE} from harness bench)")
    return run


def _source(run: Run, kind: str) -> str:
    name = CONFORMANCE_FILE if kind == "conformance" else BENCH_FILE
    return next((str(s) for s in run.sources if s.name == name), "?")


def _short_label(path: Path) -> str:
    path = path.resolve()
    if path.is_file():
        path = path.parent
    return "/".join(path.parts[-2:])


def _discover(path: Path, notes: list[str]) -> list[tuple[str, Path]]:
    if path.is_file():
        return [(_kind_of_file(path), path)]
    found = []
    direct = [(k, path / n) for k, n in (("conformance", CONFORMANCE_FILE), ("bench", BENCH_FILE)) if (path / n).is_file()]
    if direct:
        return direct
    for kind, name in (("conformance", CONFORMANCE_FILE), ("bench", BENCH_FILE)):
        candidates = sorted(path.rglob(name), key=lambda p: (p.stat().st_mtime, str(p)))
        if candidates:
            found.append((kind, candidates[-1]))
            for older in candidates[:-1]:
                notes.append(f"{older}: older than {candidates[-1]}, not shown")
    return found


def _kind_of_file(path: Path) -> str:
    if path.name == CONFORMANCE_FILE:
        return "conformance"
    if path.name == BENCH_FILE:
        return "bench"
    for number, line in _lines(path):
        try:
            schema = json.loads(line).get("schema")
        except (json.JSONDecodeError, AttributeError):
            raise HarnessError(f"{path}:{number}: not a JSON object (expected {CONFORMANCE_FILE} or {BENCH_FILE} lines)") from None
        if schema == CONFORMANCE_SCHEMA:
            return "conformance"
        if schema == BENCH_SCHEMA:
            return "bench"
        raise HarnessError(f"{path}:{number}: unknown schema {schema!r} (expected {CONFORMANCE_SCHEMA!r} or {BENCH_SCHEMA!r})")
    raise HarnessError(f"{path}: empty file, no results")


def _lines(path: Path):
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise HarnessError(f"{path}: cannot read: {err}") from None
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            yield number, line


def _objects(path: Path, schema: str):
    for number, line in _lines(path):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise HarnessError(f"{path}:{number}: not valid JSON ({err.msg} at column {err.colno})") from None
        if not isinstance(obj, dict):
            raise HarnessError(f"{path}:{number}: expected a JSON object, got {type(obj).__name__}")
        if obj.get("schema", schema) != schema:
            raise HarnessError(f"{path}:{number}: schema {obj.get('schema')!r}, expected {schema!r}")
        yield number, obj


def read_conformance(path: Path) -> pd.DataFrame:
    """``results.jsonl``: one row per case and runtime."""
    rows = []
    for number, obj in _objects(path, CONFORMANCE_SCHEMA):
        where = f"{path}:{number}"
        for key in ("case", "outcome"):
            if not isinstance(obj.get(key), str):
                raise HarnessError(f"{where}: conformance record without {key!r}")
        if obj["outcome"] not in OUTCOMES:
            raise HarnessError(f"{where}: outcome {obj['outcome']!r} is not one of {', '.join(OUTCOMES)}")
        reqs = obj.get("requirements") or []
        if not isinstance(reqs, list) or not all(isinstance(r, dict) and isinstance(r.get("id"), str) for r in reqs):
            raise HarnessError(f"{where}: 'requirements' must be a list of objects with an 'id'")
        sections = obj.get("sections") or {}
        if not isinstance(sections, dict):
            raise HarnessError(f"{where}: 'sections' must be an object of title: text")
        case = obj["case"]
        path_part, _, name = case.partition("::")
        rows.append(
            {
                "case": case,
                "file": obj.get("file") or path_part,
                "name": obj.get("name") or name.split("[", 1)[0],
                "runtime": obj.get("runtime") or "(none)",
                "outcome": obj["outcome"],
                "reason": obj.get("reason"),
                "message": obj.get("message"),
                "sections": sections,
                "duration": float(obj.get("duration") or 0.0),
                "requirements": reqs,
                "runtime_version": obj.get("runtime_version"),
            }
        )
    if not rows:
        raise HarnessError(f"{path}: no conformance records")
    return pd.DataFrame(rows, columns=CONFORMANCE_COLUMNS)


def read_samples(path: Path) -> pd.DataFrame:
    """``samples.jsonl``: one row per measured sample (warm-up samples included, flagged)."""
    rows = []
    for number, obj in _objects(path, BENCH_SCHEMA):
        where = f"{path}:{number}"
        for key in ("suite", "workload", "unit"):
            if not isinstance(obj.get(key), str):
                raise HarnessError(f"{where}: bench sample without {key!r}")
        if obj["suite"] not in SUITES:
            raise HarnessError(f"{where}: suite {obj['suite']!r} is not one of {', '.join(SUITES)}")
        if obj["unit"] not in UNITS:
            raise HarnessError(f"{where}: unit {obj['unit']!r} is not one of {', '.join(UNITS)}")
        value = obj.get("value")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise HarnessError(f"{where}: value {value!r} is not a finite number")
        params = obj.get("params") or {}
        if not isinstance(params, dict):
            raise HarnessError(f"{where}: 'params' must be an object")
        rows.append({**{c: obj.get(c) for c in BENCH_COLUMNS}, "params": params, "value": float(value), "warmup": bool(obj.get("warmup"))})
    if not rows:
        raise HarnessError(f"{path}: no bench samples")
    return pd.DataFrame(rows, columns=BENCH_COLUMNS)


def read_environment(path: Path) -> dict[str, Any]:
    try:
        env = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise HarnessError(f"{path}: cannot read: {err}") from None
    except json.JSONDecodeError as err:
        raise HarnessError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
    if not isinstance(env, dict):
        raise HarnessError(f"{path}: the environment block must be a JSON object")
    return env


def params_key(params: dict[str, Any], drop: tuple[str, ...] = ()) -> str:
    """A stable text form of a sample's params (``cache=warm, size_mib=4``), for grouping."""
    return ", ".join(f"{k}={params[k]}" for k in sorted(params) if k not in drop)
