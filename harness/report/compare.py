"""OLD against NEW: conformance outcomes that flipped, and performance that changed.

A performance change is *significant* only when each side has at least ``MIN_SAMPLES`` (6)
samples, the 95% interval of the ratio NEW/OLD (of medians, bootstrap, from
:mod:`harness.bench.stats`) excludes 1 (no change) **and** the ratio differs from 1 by more than
the noise threshold (``--noise``, default 5%). With fewer samples the verdict is "too few
samples", never a change; counted quantities (bytes, inodes, mounts) with no spread at all on
either side (two samples or more) are compared exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from . import _stats
from .conformance import TESTED, Matrix
from .load import params_key
from .performance import measured

#: Units where a larger value is better (throughputs); for the others (times, bytes) smaller is.
HIGHER_IS_BETTER = ("B/s", "ops/s")
DEFAULT_NOISE = 0.05
#: With fewer samples on a side, an interval does not reach 95% (a median's order-statistic
#: interval needs 6; a bootstrap of fewer resamples too few distinct values): no verdict.
MIN_SAMPLES = 6
#: Counted quantities: with at least two samples on each side and no spread at all, the
#: values are exact and a difference is real without an interval.
COUNTED_UNITS = ("bytes", "inodes", "mounts")

_RANK = {"pass": 0, "skip": 1, "xfail": 2, "fail": 3}


def classify(
    ratio: float, low: float, high: float, noise: float = DEFAULT_NOISE, higher_is_better: bool = False
) -> str:
    """``better``, ``worse``, ``no change`` (within noise, or interval includes 1) or ``unknown``."""
    if any(v is None or math.isnan(v) for v in (ratio, low, high)):
        return "unknown"
    excludes_one = low > 1.0 or high < 1.0
    if not excludes_one or abs(ratio - 1.0) <= noise:
        return "no change"
    grew = ratio > 1.0
    return "better" if grew == higher_is_better else "worse"


def change_word(unit: str, verdict: str) -> str:
    if verdict not in ("better", "worse"):
        return verdict
    if unit == "s":
        return "slower" if verdict == "worse" else "faster"
    if unit in HIGHER_IS_BETTER:
        return "lower" if verdict == "worse" else "higher"
    return "larger" if verdict == "worse" else "smaller"


@dataclass
class Flip:
    requirement: Any  # Row of the NEW matrix (or OLD if gone)
    runtime: str
    old: str
    new: str

    @property
    def kind(self) -> str:
        """``regression``, ``fixed`` or ``changed`` (e.g. tested now, or no longer)."""
        if self.old in _RANK and self.new in _RANK:
            return "regression" if _RANK[self.new] > _RANK[self.old] else "fixed"
        return "changed"


def conformance_flips(old: Matrix, new: Matrix) -> list[Flip]:
    """Requirement and runtime pairs whose status differs, regressions first, then fixes."""
    old_rows = {r.requirement.id: r for r in old.rows}
    flips = []
    for row in new.rows:
        before = old_rows.get(row.requirement.id)
        for rt, cell in row.cells.items():
            was = before.cells[rt].status if before is not None and rt in before.cells else "absent"
            if was != cell.status and (was in TESTED or cell.status in TESTED):
                flips.append(Flip(row, rt, was, cell.status))
    order = {"regression": 0, "fixed": 1, "changed": 2}
    return sorted(flips, key=lambda f: (order[f.kind], f.requirement.requirement.id, f.runtime))


def case_flips(old: pd.DataFrame | None, new: pd.DataFrame | None) -> list[dict[str, str]]:
    """Cases (per runtime) whose outcome differs; a case only in one run counts as ``absent`` in the other."""
    if old is None or new is None:
        return []
    a = dict(zip(old["case"], old["outcome"], strict=True))
    b = dict(zip(new["case"], new["outcome"], strict=True))
    return [
        {"case": c, "old": a.get(c, "absent"), "new": b.get(c, "absent")}
        for c in sorted(set(a) | set(b))
        if a.get(c, "absent") != b.get(c, "absent")
    ]


KEYS = ["suite", "runtime", "mode", "workload", "phase", "unit", "key"]


def _keyed(samples: pd.DataFrame) -> pd.DataFrame:
    s = measured(samples).copy()
    s["key"] = s["params"].map(params_key)
    for col in ("runtime", "mode", "phase"):
        s[col] = s[col].fillna("–")
    return s


def performance_changes(
    old: pd.DataFrame | None, new: pd.DataFrame | None, noise: float = DEFAULT_NOISE
) -> list[dict[str, Any]]:
    """Every measurement present in both runs: medians, NEW/OLD ratio with interval, verdict.

    Significant changes come first (largest first), then the rest in the order measured.
    """
    if old is None or new is None:
        return []
    a, b = _keyed(old), _keyed(new)
    olds = {k: g["value"].tolist() for k, g in a.groupby(KEYS, sort=False)}
    out = []
    for k, g in b.groupby(KEYS, sort=False):
        if k not in olds:
            continue
        values = g["value"].tolist()
        r = _stats.ratio(values, olds[k])
        unit = k[5]
        old_s, new_s = _stats.summary(olds[k]), _stats.summary(values)
        n = min(len(values), len(olds[k]))
        exact = unit in COUNTED_UNITS and n >= 2 and old_s["min"] == old_s["max"] and new_s["min"] == new_s["max"]
        if exact and old_s["median"] == new_s["median"]:
            verdict = "no change"  # e.g. zero mounts before and after
        elif exact:
            verdict = "better" if (new_s["median"] > old_s["median"]) == (unit in HIGHER_IS_BETTER) else "worse"
            if old_s["median"] and abs(new_s["median"] / old_s["median"] - 1.0) <= noise:
                verdict = "no change"
        elif n < MIN_SAMPLES:
            verdict = "too few samples"
        else:
            verdict = classify(r["value"], r["low"], r["high"], noise, unit in HIGHER_IS_BETTER)
        out.append(
            {
                **dict(zip(KEYS, k, strict=False)),
                "old": old_s,
                "new": new_s,
                "ratio": r,
                "verdict": verdict,
                "word": change_word(unit, verdict),
                "significant": verdict in ("better", "worse"),
            }
        )

    def size(c: dict[str, Any]) -> float:
        v = c["ratio"]["value"]
        return -abs(math.log(v)) if c["significant"] and math.isfinite(v) and v > 0 else 0.0

    return sorted(out, key=lambda c: (not c["significant"], size(c)))


def environment_diff(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """``(key, old, new, differs)`` for every key of the two environment blocks (nested keys dotted)."""
    fa, fb = flatten(old), flatten(new)
    return [(k, fa.get(k, "–"), fb.get(k, "–"), fa.get(k) != fb.get(k)) for k in sorted(set(fa) | set(fb))]


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = " ".join(map(str, v)) if isinstance(v, list) else str(v)
    return out
