"""The report's one door to the statistics of :mod:`harness.bench.stats`.

The report computes no statistic of its own: it calls ``summary``, ``ratio`` and
``linear_fit`` and reads their results by the names they give (``ci95_low``/``ci95_high``,
``ratio``, ``n_outliers``), adding the short names the templates use (``low``, ``high``,
``value``, ``outliers``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..errors import HarnessError


def module():
    try:
        from ..bench import stats
    except ImportError as err:
        raise HarnessError(
            f"the bench statistics (harness.bench.stats) cannot be imported: {err}; the performance part of the report needs them"
        ) from None
    return stats


def summary(values: Sequence[float]) -> dict[str, Any]:
    """``summary()`` of the bench statistics plus ``low`` and ``high`` (its 95% interval of the
    median) and ``outliers`` (how many values are flagged)."""
    s = dict(module().summary(list(values)))
    s["low"], s["high"] = s["ci95_low"], s["ci95_high"]
    s["outliers"] = s["n_outliers"]
    return s


def ratio(a: Sequence[float], b: Sequence[float], seed: int = 0) -> dict[str, Any]:
    """``ratio(a, b)`` (median of a over median of b) plus ``value``, ``low`` and ``high``."""
    try:
        r = dict(module().ratio(list(a), list(b), seed=seed))
    except (ValueError, ZeroDivisionError) as err:  # e.g. a zero median: no ratio to speak of
        return {"value": math.nan, "low": math.nan, "high": math.nan, "error": str(err)}
    r["value"] = float(r["ratio"])
    r["low"], r["high"] = float(r["ci95_low"]), float(r["ci95_high"])
    return r


def linear_fit(x: Sequence[float], y: Sequence[float]) -> dict[str, Any]:
    """``linear_fit()``: intercept, slope, r2 and the standard errors of both."""
    return dict(module().linear_fit(list(x), list(y)))
