"""``harness report``: conformance results and bench samples to one self-contained HTML file.

The pipeline is plain functions, each testable alone:

* :mod:`.load` reads result folders and files into :class:`~.load.Run` objects (pandas frames);
* :mod:`.conformance` turns records into the requirement matrix, its totals and runtime diffs;
* :mod:`.performance` turns bench samples into tables and inline SVG figures, with every
  statistic from :mod:`harness.bench.stats` (the report computes none of its own);
* :mod:`.compare` sets an OLD run against a NEW one;
* :mod:`.render` fills the jinja2 templates under ``reports/`` (HTML and a Markdown summary).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["Run", "build_report", "load_run", "load_runs"]


def __getattr__(name: str) -> Any:
    # Imported on first use: pandas must not load when the CLI only registers `report`.
    if name in ("Run", "load_run", "load_runs"):
        return getattr(importlib.import_module(".load", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_report(*args, **kwargs):  # re-exported lazily: rendering pulls in matplotlib
    from .render import build_report as _build

    return _build(*args, **kwargs)
