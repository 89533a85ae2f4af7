"""``harness bench``: workloads, timing and statistics.

* :mod:`.stats` -- pure statistics (summary with distribution-free median interval, outlier
  flags, bootstrap ratio, linear fit); the report imports them.
* :mod:`.records` -- the sample record (``samples.jsonl``) and the hyperfine-format export.
* :mod:`.lifecycle`, :mod:`.io`, :mod:`.scale` -- the three suites.
* :mod:`.runner` -- one run: output folder, work folder, journal, progress, cleanup.
* ``iobench.c`` -- the static in-container I/O workload program (built by :mod:`._build`).

Nothing is imported until used (PEP 562 ``__getattr__``): building the ``harness`` command line
registers ``bench`` without loading numpy/scipy, so every other command starts lean.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["SCHEMA", "SampleWriter", "read_samples", "records", "sample", "stats"]
_FROM_RECORDS = {"SCHEMA", "SampleWriter", "read_samples", "sample"}


def __getattr__(name: str) -> Any:
    if name in ("records", "stats"):
        return importlib.import_module(f".{name}", __name__)
    if name in _FROM_RECORDS:
        return getattr(importlib.import_module(".records", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
