"""Reading result folders and files into pandas frames, and choosing which.

A *run* is what one report shows: the conformance records of a ``pytest --results`` folder
(``results.jsonl``) and/or the samples of a ``harness bench`` folder (``samples.jsonl``), each
with the ``environment.json`` beside it. A run is given as a file, a folder holding such files,
or several joined with commas (``conf,bench``). Nothing is picked behind the user's back:

* a folder that holds no results itself is refused with the runs found below it listed, unless
  ``latest=True`` (``--latest``): then the newest *complete* conformance run and bench run below
  it are used, and the others are listed as passed over;
* a run whose ``environment.json`` says it was interrupted or failed is refused unless
  ``allow_partial=True`` (``--allow-partial``); it is then flagged wherever it is shown;
* several conformance (or bench) sets in one run are merged only with ``merge=True``
  (``--merge``): runtimes from different runs, hosts from different machines. When the sets
  come from more than one host, every runtime column becomes ``runtime @ host``.

Each part read becomes a :class:`Part` (path, kind, status, when, host, runtimes, counts): the
report shows them at its top. Every problem with the input is a
:class:`~harness.errors.HarnessError` naming the file (and line) at fault.
"""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .. import environment, results
from ..bench import records as bench_records
from ..errors import HarnessError
from ..requirements import Requirement
from ..requirements import record as requirements_record

CONFORMANCE_SCHEMA = results.SCHEMA
BENCH_SCHEMA = bench_records.SCHEMA
CONFORMANCE_FILE = results.FILE
BENCH_FILE = bench_records.FILE

CONFORMANCE_COLUMNS = [
    "case",
    "file",
    "name",
    "runtime",
    "outcome",
    "reason",
    "message",
    "sections",
    "duration",
    "requirements",
    "runtime_version",
    "host",
]
#: A bench sample's fields as harness.bench.records writes them, less its schema tag.
BENCH_COLUMNS = [f for f in bench_records.FIELDS if f != "schema"]
#: Statuses of a run (``environment.json``, ``run_status.status``); ``unknown`` when not recorded
#: (an older harness, or a run killed before it could write it).
COMPLETE, UNKNOWN = "complete", "unknown"


@dataclass
class Part:
    """One results file a run is made of, with what its environment says about it."""

    kind: str  # "conformance" or "bench"
    path: Path
    status: str = UNKNOWN
    detail: str = ""
    host: str = "unknown host"
    started: float | None = None
    finished: float | None = None
    runtimes: list[str] = field(default_factory=list)
    #: records (conformance) or measured samples (bench)
    count: int = 0
    selection: list[str] = field(default_factory=list)
    quick: bool = False
    #: what tells hosts apart in a merged report (environment.json: kernel, cgroup_mode)
    kernel: str = ""
    cgroup_mode: str = ""

    @property
    def partial(self) -> bool:
        return self.status not in (COMPLETE, UNKNOWN)

    @property
    def when(self) -> str:
        if self.started is None:
            return "time not recorded"
        start = datetime.datetime.fromtimestamp(self.started, datetime.UTC)
        text = start.strftime("%Y-%m-%d %H:%M UTC")
        if self.finished is not None:
            text += f", {_duration(self.finished - self.started)}"
        return text


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"


@dataclass
class Run:
    """One run's data: frames are ``None`` when the run has no such part."""

    label: str
    sources: list[Path] = field(default_factory=list)
    conformance: pd.DataFrame | None = None
    samples: pd.DataFrame | None = None
    #: ``{"conformance": {...}, "bench": {...}}``: the environment block of each part (the
    #: first one of each kind when merged).
    environments: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    parts: list[Part] = field(default_factory=list)
    #: Whether the runtime columns carry hosts (a merge of results from several machines).
    multi_host: bool = False
    #: The catalogue the conformance run used and ``{requirement id: [case ids]}`` of its
    #: collected cases (``requirements.json``); None from a harness that did not store them.
    catalogue: dict[str, Requirement] | None = None
    covered: dict[str, list[str]] | None = None

    @property
    def runtimes(self) -> list[str]:
        names: list[str] = []
        for frame in (self.conformance, self.samples):
            if frame is not None:
                names += [r for r in frame["runtime"].dropna().unique() if r not in names]
        return names

    @property
    def partial(self) -> bool:
        return any(p.partial for p in self.parts)

    @property
    def quick(self) -> bool:
        return any(p.quick for p in self.parts if p.kind == "bench")


def load_runs(specs: list[str], *, merge: bool = False, latest: bool = False, allow_partial: bool = False) -> list[Run]:
    return [load_run(s, merge=merge, latest=latest, allow_partial=allow_partial) for s in specs]


def load_run(
    spec: str | Path,
    label: str | None = None,
    *,
    merge: bool = False,
    latest: bool = False,
    allow_partial: bool = False,
) -> Run:
    """A run from a file, a folder, or several joined with commas (see the module's doc)."""
    spec = str(spec)
    parts = [spec] if Path(spec).exists() or "," not in spec else [p for p in spec.split(",") if p]
    run = Run(label=label or ", ".join(_short_label(Path(p)) for p in parts))
    frames: dict[str, list[tuple[Part, pd.DataFrame]]] = {"conformance": [], "bench": []}
    for part in parts:
        path = Path(part)
        if not path.exists():
            raise HarnessError(f"{path}: no such file or folder of results")
        for kind, file in _discover(path, run.notes, latest):
            env_path = file.parent / environment.FILE
            env = read_environment(env_path) if env_path.is_file() else {}
            frame = read_conformance(file, run.notes) if kind == "conformance" else read_samples(file)
            if kind == "conformance":
                _read_catalogue(run, file.parent / requirements_record.FILE)
            info = describe(kind, file, env, frame)
            if info.partial and not allow_partial:
                raise HarnessError(
                    f"{file}: this {kind} run is {info.status}{f' ({info.detail})' if info.detail else ''}: its results are partial. "
                    "Give a complete run, or pass --allow-partial to show it flagged as partial"
                )
            if frames[kind] and not merge:
                raise HarnessError(
                    f"{file}: a second set of {kind} results in one run (already have {frames[kind][0][0].path}); "
                    "pass --merge to merge them into one matrix (runtimes from different runs, or hosts from different machines), "
                    "or give them as two runs (OLD NEW) to compare them"
                )
            frames[kind].append((info, frame))
            run.parts.append(info)
            run.sources.append(file)
            if env:
                run.environments.setdefault(kind, env)
    if not frames["conformance"] and not frames["bench"]:
        raise HarnessError(
            f"{spec}: no results found (expected {CONFORMANCE_FILE} from pytest --results or {BENCH_FILE} from harness bench)"
        )
    hosts = {p.host for p in run.parts}
    run.multi_host = len(hosts) > 1
    if frames["conformance"]:
        run.conformance = _merged(frames["conformance"], run.multi_host, "case")
    if frames["bench"]:
        run.samples = _merged(frames["bench"], run.multi_host, None)
    return run


def _read_catalogue(run: Run, path: Path) -> None:
    """The catalogue and coverage stored beside ``results.jsonl`` (merged sets: joined)."""
    if not path.is_file():
        run.notes.append(
            f"{path.parent}: no {requirements_record.FILE} (written by an older harness): the requirements are this "
            "harness's catalogue, and one no record names counts as not covered"
        )
        return
    catalogue, covered = requirements_record.read(path)
    run.catalogue = {**catalogue, **(run.catalogue or {})}
    run.covered = run.covered or {}
    for rid, cases in covered.items():
        run.covered[rid] = sorted(set(run.covered.get(rid, [])) | set(cases))


def _merged(sets: list[tuple[Part, pd.DataFrame]], multi_host: bool, key: str | None) -> pd.DataFrame:
    """One frame of several sets; refuses a runtime on one host given twice."""
    seen: dict[tuple[str, str], Path] = {}
    out = []
    for part, frame in sets:
        frame = frame.copy()
        for rt in frame["runtime"].dropna().unique():
            if (rt, part.host) in seen:
                raise HarnessError(
                    f"{part.path}: {rt} on {part.host} is also in {seen[(rt, part.host)]}; a merged matrix holds one run per "
                    "runtime and host: leave one of them out, or compare them as OLD NEW"
                )
            seen[(rt, part.host)] = part.path
        frame["host"] = part.host
        if multi_host:
            frame["runtime"] = frame["runtime"].map(
                lambda rt, h=part.host: (
                    None if rt is None or (isinstance(rt, float) and math.isnan(rt)) else f"{rt} @ {h}"
                )
            )
            if key:
                frame[key] = frame[key] + f" @ {part.host}"
        out.append(frame)
    return pd.concat(out, ignore_index=True) if len(out) > 1 else out[0]


def describe(kind: str, file: Path, env: dict[str, Any], frame: pd.DataFrame) -> Part:
    """What a results file's environment says about its run."""
    status = environment.status_of(env)
    part = Part(kind=kind, path=file, host=str(env.get("host_label") or env.get("hostname") or "unknown host"))
    part.status = str(status.get("status") or UNKNOWN)
    part.kernel, part.cgroup_mode = str(env.get("kernel") or ""), str(env.get("cgroup_mode") or "")
    if part.status == UNKNOWN and env.get("interrupted") is True:
        part.status = "interrupted"
    if status.get("error"):
        part.detail = str(status["error"])
    elif status.get("exit") and part.status != COMPLETE:
        part.detail = f"pytest: {status['exit']}"
    if kind == "conformance" and status and status.get("collected") and status.get("recorded", 0) < status["collected"]:
        part.detail = (
            part.detail + "; " if part.detail else ""
        ) + f"{status['recorded']} of {status['collected']} cases recorded"
    started = status.get("started", env.get("started"))
    finished = status.get("finished", env.get("finished"))
    part.started = float(started) if isinstance(started, (int, float)) else None
    part.finished = float(finished) if isinstance(finished, (int, float)) else None
    part.runtimes = [str(r) for r in frame["runtime"].dropna().unique()]
    if kind == "conformance":
        part.count = len(frame)
        part.selection = [str(s) for s in status.get("selection") or []]
    else:
        part.count = int((~frame["warmup"].astype(bool)).sum())
        options = env.get("options")
        options = options if isinstance(options, dict) else {}
        part.quick = bool(status.get("quick", options.get("quick", False)))
        if part.quick:
            part.selection.append("--quick (smoke run)")
    return part


def _source(run: Run, kind: str) -> str:
    name = CONFORMANCE_FILE if kind == "conformance" else BENCH_FILE
    return next((str(s) for s in run.sources if s.name == name), "?")


def _short_label(path: Path) -> str:
    path = path.resolve()
    if path.is_file():
        path = path.parent
    return "/".join(path.parts[-2:])


def _discover(path: Path, notes: list[str], latest: bool = False) -> list[tuple[str, Path]]:
    if path.is_file():
        return [(_kind_of_file(path), path)]
    direct = [
        (k, path / n) for k, n in (("conformance", CONFORMANCE_FILE), ("bench", BENCH_FILE)) if (path / n).is_file()
    ]
    if direct:
        return direct
    found = []
    listing = []
    for kind, name in (("conformance", CONFORMANCE_FILE), ("bench", BENCH_FILE)):
        candidates = sorted(path.rglob(name), key=lambda p: (_started(p), str(p)))
        if not candidates:
            continue
        listing += [f"  {c.parent} ({kind}, {_status_of(c)})" for c in candidates]
        if latest:
            complete = [c for c in candidates if _status_of(c) in (COMPLETE, UNKNOWN)]
            if not complete:
                raise HarnessError(
                    f"{path}: no complete {kind} run below it (found: {', '.join(str(c.parent) for c in candidates)}); pass one with --allow-partial"
                )
            chosen = complete[-1]
            found.append((kind, chosen))
            for other in candidates:
                if other != chosen:
                    notes.append(f"passed over (--latest): {other.parent} ({kind}, {_status_of(other)})")
    if listing and not latest:
        raise HarnessError(
            f"{path}: holds no {CONFORMANCE_FILE} or {BENCH_FILE} itself; the runs below it are:\n"
            + "\n".join(listing)
            + "\nName the ones to show (join parts of one run with commas: CONF,BENCH), or pass --latest for the newest complete run of each kind"
        )
    return found


def _environment_of(results: Path) -> dict[str, Any]:
    try:
        env = json.loads((results.parent / "environment.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return env if isinstance(env, dict) else {}


def _status_of(results: Path) -> str:
    env = _environment_of(results)
    status = environment.status_of(env)
    if status.get("status"):
        return str(status["status"])
    return "interrupted" if env.get("interrupted") is True else UNKNOWN


def _started(results: Path) -> float:
    env = _environment_of(results)
    status = environment.status_of(env)
    value = status.get("started", env.get("started"))
    return float(value) if isinstance(value, (int, float)) else results.stat().st_mtime


def _kind_of_file(path: Path) -> str:
    if path.name == CONFORMANCE_FILE:
        return "conformance"
    if path.name == BENCH_FILE:
        return "bench"
    for number, line in _lines(path):
        try:
            schema = json.loads(line).get("schema")
        except (json.JSONDecodeError, AttributeError):
            raise HarnessError(
                f"{path}:{number}: not a JSON object (expected {CONFORMANCE_FILE} or {BENCH_FILE} lines)"
            ) from None
        if results.version_of(schema) is not None:
            return "conformance"
        if results.version_of(schema, bench_records.KIND) is not None:
            return "bench"
        raise HarnessError(
            f"{path}:{number}: unknown schema {schema!r} (expected {CONFORMANCE_SCHEMA!r} or {BENCH_SCHEMA!r})"
        )
    raise HarnessError(f"{path}: empty file, no results")


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise HarnessError(f"{path}: cannot read: {err}") from None
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            yield number, line


def read_conformance(path: Path, notes: list[str] | None = None) -> pd.DataFrame:
    """``results.jsonl`` (read by :func:`harness.results.read`): one row per case and runtime.

    A record without a runtime (older harnesses wrote one for the differential cases skipped
    without ``--diff``) is left out, with a note."""
    records, without_runtime = results.read(path)
    if without_runtime and notes is not None:
        notes.append(
            f"{path}: {without_runtime} record(s) without a runtime left out (differential cases skipped without --diff, from an older harness)"
        )
    if not records:
        raise HarnessError(
            f"{path}: no conformance records" + (f" ({without_runtime} without a runtime)" if without_runtime else "")
        )
    rows = [{**{c: r.get(c) for c in CONFORMANCE_COLUMNS}, "host": None} for r in records]
    return pd.DataFrame(rows, columns=CONFORMANCE_COLUMNS)


def read_samples(path: Path) -> pd.DataFrame:
    """``samples.jsonl`` (read by :func:`harness.bench.records.read_samples`): one row per measured
    sample (warm-up samples included, flagged)."""
    rows = [
        {**{c: obj.get(c) for c in BENCH_COLUMNS}, "value": float(obj["value"]), "warmup": bool(obj.get("warmup"))}
        for obj in bench_records.read_samples(path)
    ]
    if not rows:
        raise HarnessError(f"{path}: no bench samples")
    return pd.DataFrame(rows, columns=BENCH_COLUMNS)


def read_environment(path: Path) -> dict[str, Any]:
    """An ``environment.json`` (read by :func:`harness.environment.read`), without its schema
    line, which says how to read it, not what the run was."""
    env = environment.read(path)
    env.pop("schema", None)
    return env


def params_key(params: dict[str, Any], drop: tuple[str, ...] = ()) -> str:
    """A stable text form of a sample's params (``cache=warm, size_mib=4``), for grouping."""
    return ", ".join(f"{k}={params[k]}" for k in sorted(params) if k not in drop)
