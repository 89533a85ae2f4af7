"""The report's one door to the statistics of :mod:`harness.bench.stats`.

The report computes no statistic of its own: it calls ``summary``, ``ratio`` and
``linear_fit`` and only reads their results here, tolerating the spellings of an interval
(``ci95_low``/``ci95_high``, ``ci95: [low, high]`` or ``{"low", "high"}``, ``low``/``high``).
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


def interval(d: dict[str, Any], *prefixes: str) -> tuple[float, float]:
    """The 95% interval in a result of ``summary`` or ``ratio``."""
    for p in (*prefixes, "ci95", "ci"):
        value = d.get(p)
        if isinstance(value, dict):
            lo, hi = value.get("low", value.get("lo")), value.get("high", value.get("hi"))
            if lo is not None and hi is not None:
                return float(lo), float(hi)
        elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
            return float(value[0]), float(value[1])
        for lo_key, hi_key in ((f"{p}_low", f"{p}_high"), (f"{p}_lo", f"{p}_hi")):
            if lo_key in d and hi_key in d:
                return float(d[lo_key]), float(d[hi_key])
    if "low" in d and "high" in d:
        return float(d["low"]), float(d["high"])
    return math.nan, math.nan


def _count(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, dict):
        return max((_count(v) for v in value.values()), default=0)
    if isinstance(value, Sequence) and not isinstance(value, str):
        if value and all(isinstance(v, bool) for v in value):
            return sum(value)
        return len(value)
    return 0


def summary(values: Sequence[float]) -> dict[str, Any]:
    """``summary()`` of the bench statistics plus ``low``, ``high`` and ``outliers`` (a count)."""
    s = dict(module().summary(list(values)))
    s["low"], s["high"] = interval(s)
    if isinstance(s.get("n_outliers"), int):
        s["outliers"] = s["n_outliers"]
    else:
        s["outliers"] = max((_count(s[k]) for k in s if "outlier" in k), default=0)
    return s


def ratio(a: Sequence[float], b: Sequence[float], seed: int = 0) -> dict[str, Any]:
    """``ratio(a, b)`` (median of a over median of b) plus ``value``, ``low`` and ``high``."""
    try:
        r = dict(module().ratio(list(a), list(b), seed=seed))
    except (ValueError, ZeroDivisionError) as err:  # e.g. a zero median: no ratio to speak of
        return {"value": math.nan, "low": math.nan, "high": math.nan, "error": str(err)}
    value = next((r[k] for k in ("ratio", "value", "estimate", "median_ratio") if k in r), math.nan)
    r["value"] = float(value)
    r["low"], r["high"] = interval(r)
    return r


def linear_fit(x: Sequence[float], y: Sequence[float]) -> dict[str, Any]:
    f = dict(module().linear_fit(list(x), list(y)))
    for key in ("slope", "intercept"):
        if f"{key}_stderr" not in f:
            f[f"{key}_stderr"] = f.get(
                f"{key}_se", f.get("stderr", {}).get(key, math.nan) if isinstance(f.get("stderr"), dict) else math.nan
            )
    return f
