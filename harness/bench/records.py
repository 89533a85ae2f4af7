"""The tidy sample record of ``harness bench`` and its writer and reader (``samples.jsonl``).

One JSON object per line (``pandas.read_json(path, lines=True)`` reads it), as the contract
between ``harness bench`` and ``harness report`` says::

    {"schema": "oci-harness/bench-sample/1", "run", "suite", "runtime", "mode", "workload",
     "phase", "params", "iteration", "warmup", "value", "unit", "time"}
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

SCHEMA = "oci-harness/bench-sample/1"
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


def check(record: dict[str, Any]) -> None:
    if record.get("schema") != SCHEMA:
        raise ValueError(f"not a bench sample (schema {record.get('schema')!r})")
    missing = [f for f in FIELDS if f not in record]
    if missing:
        raise ValueError(f"bench sample lacks {', '.join(missing)}")
    if record["suite"] not in SUITES:
        raise ValueError(f"unknown suite {record['suite']!r}")
    if record["unit"] not in UNITS:
        raise ValueError(f"unknown unit {record['unit']!r}")
    if record["mode"] not in (None, "raw", "overlay"):
        raise ValueError(f"unknown mode {record['mode']!r}")
    if not isinstance(record["value"], (int, float)) or not math.isfinite(record["value"]):
        raise ValueError(f"value must be a finite number, not {record['value']!r}")


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
    """Every sample of a ``samples.jsonl``; a line that is not a valid sample is an error naming
    the line (a trailing line cut by a kill is skipped)."""
    lines = Path(path).read_text().splitlines()
    out = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            if number == len(lines):
                break  # cut by a kill
            raise ValueError(f"{path}:{number}: not JSON ({err.msg})") from None
        try:
            check(record)
        except ValueError as err:
            raise ValueError(f"{path}:{number}: {err}") from None
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
