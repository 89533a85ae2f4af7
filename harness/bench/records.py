"""The tidy sample record of ``harness bench`` (``samples.jsonl``): its schema, version, writer
and reader, the one place that knows them (the bench writes through it, the report reads
through it). Fields are documented in ``docs/results.md``.

One JSON object per line (``pandas.read_json(path, lines=True)`` reads it)::

    {"schema": "oci-harness/bench-sample/1", "run", "suite", "runtime", "mode", "workload",
     "phase", "params", "iteration", "warmup", "value", "unit", "time"}

Versions: a reader accepts its own version and lines without ``schema``, and refuses a newer
version with an error naming both.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from ..errors import HarnessError
from ..results import check_schema, version_of

KIND = "bench-sample"
VERSION = 1
SCHEMA = f"oci-harness/{KIND}/{VERSION}"
FILE = "samples.jsonl"
SUITES = ("lifecycle", "io", "scale")
UNITS = ("s", "bytes", "inodes", "mounts", "B/s", "ops/s")
FIELDS = (
    "schema",
    "run",
    "suite",
    "runtime",
    "mode",
    "workload",
    "phase",
    "params",
    "iteration",
    "warmup",
    "value",
    "unit",
    "time",
)


def sample(
    run: str,
    suite: str,
    workload: str,
    value: float,
    unit: str = "s",
    *,
    runtime: str | None = None,
    mode: str | None = None,
    phase: str | None = None,
    params: dict[str, Any] | None = None,
    iteration: int = 0,
    warmup: bool = False,
    when: float | None = None,
) -> dict[str, Any]:
    """One sample record; raises ValueError for a record the contract does not allow."""
    record = {
        "schema": SCHEMA,
        "run": run,
        "suite": suite,
        "runtime": runtime,
        "mode": mode,
        "workload": workload,
        "phase": phase,
        "params": dict(params or {}),
        "iteration": int(iteration),
        "warmup": bool(warmup),
        "value": float(value),
        "unit": unit,
        "time": time.time() if when is None else float(when),
    }
    check(record)
    return record


class SampleError(HarnessError, ValueError):
    """A sample the contract does not allow (a ValueError too, for callers of ``sample()``)."""


def check(record: dict[str, Any], *, complete: bool = True) -> None:
    """Raise :class:`SampleError` for a record the contract does not allow. ``complete=False``
    (reading) asks only for what a report needs: suite, workload, unit and a finite value."""
    schema = record.get("schema")
    if (complete and schema != SCHEMA) or (schema is not None and version_of(schema, KIND) is None):
        raise SampleError(f"not a bench sample (schema {schema!r})")
    if complete:
        missing = [f for f in FIELDS if f not in record]
        if missing:
            raise SampleError(f"bench sample lacks {', '.join(missing)}")
    for key in ("suite", "workload", "unit"):
        if not isinstance(record.get(key), str):
            raise SampleError(f"bench sample without {key!r}")
    if record["suite"] not in SUITES:
        raise SampleError(f"suite {record['suite']!r} is not one of {', '.join(SUITES)}")
    if record["unit"] not in UNITS:
        raise SampleError(f"unit {record['unit']!r} is not one of {', '.join(UNITS)}")
    if record.get("mode") not in (None, "raw", "overlay"):
        raise SampleError(f"mode {record['mode']!r} is not one of raw, overlay (or null)")
    value = record.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SampleError(f"value {value!r} is not a finite number")
    if not isinstance(record.get("params") or {}, dict):
        raise SampleError("'params' must be an object")


class SampleWriter:
    """Appends samples to ``samples.jsonl``, one write per line (O_APPEND), so a killed run
    leaves every sample it measured and never half a line."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        self.count = 0

    def write(self, record: dict[str, Any]) -> None:
        check(record)
        os.write(self._fd, (json.dumps(record, sort_keys=True) + "\n").encode())
        self.count += 1

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> SampleWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_samples(path: Path) -> list[dict[str, Any]]:
    """Every sample of a ``samples.jsonl``; a line that is not a valid sample is a
    :class:`SampleError` naming the file and line, a newer version one naming both versions.
    A trailing line cut by a kill is skipped: a killed run keeps every sample it measured."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise SampleError(f"{path}: cannot read: {err}") from None
    out = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            if number == len(lines):
                break  # cut by a kill
            raise SampleError(f"{path}:{number}: not JSON ({err.msg} at column {err.colno})") from None
        if not isinstance(record, dict):
            raise SampleError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
        check_schema(f"{path}:{number}", record.get("schema"), KIND, VERSION, SCHEMA)
        try:
            check(record, complete=False)
        except SampleError as err:
            raise SampleError(f"{path}:{number}: {err}") from None
        out.append(record)
    return out


def hyperfine_export(groups: dict[str, dict[str, list[float]]]) -> dict[str, Any]:
    """hyperfine's ``--export-json`` shape for timed commands: ``groups`` maps a command string
    to ``{"times": [...seconds], "user": [...], "system": [...]}`` (user/system may be empty)."""
    import numpy as np

    results = []
    for command, g in groups.items():
        times = [float(t) for t in g["times"]]
        if not times:
            continue
        x = np.asarray(times)
        results.append(
            {
                "command": command,
                "mean": float(x.mean()),
                "stddev": float(x.std(ddof=1)) if x.size > 1 else None,
                "median": float(np.median(x)),
                "user": float(np.mean(g.get("user") or [0.0])),
                "system": float(np.mean(g.get("system") or [0.0])),
                "min": float(x.min()),
                "max": float(x.max()),
                "times": times,
                "exit_codes": [0] * len(times),
            }
        )
    return {"results": results}
