"""Statistics of benchmark samples: pure functions of numbers (no I/O, no rendering).

The report (``harness report``) imports these and never recomputes statistics its own way.

* :func:`summary` -- location and spread of one sample: the median with a 95% interval that
  assumes no distribution (order statistics, binomial ranks), mean, std, MAD, p90/p99, and
  outliers flagged two ways (modified z-score > 3.5, Tukey fences at 1.5 IQR). Outliers are
  flagged, never dropped: every statistic is computed on all values.
* :func:`ratio` -- the ratio of two medians with a bootstrap 95% percentile interval.
* :func:`linear_fit` -- least squares line with R² and standard errors (copy-up cost = fixed +
  per-MiB).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as _st

__all__ = [
    "MIN_N_95",
    "MODIFIED_Z_LIMIT",
    "TUKEY_K",
    "enough_for_interval",
    "interval_note",
    "linear_fit",
    "median_ci",
    "outliers",
    "ratio",
    "summary",
]

#: |modified z| above this flags an outlier (Iglewicz and Hoaglin).
MODIFIED_Z_LIMIT = 3.5
#: Tukey fences at Q1 - k IQR and Q3 + k IQR.
TUKEY_K = 1.5
#: The fewest values whose median has an order-statistic interval of at least 95%
#: (with 5 values, [min, max] covers the median with probability 1 - 2/32 = 93.75%).
MIN_N_95 = 6


def enough_for_interval(n: int, level: float = 0.95) -> bool:
    """Whether ``n`` values give a median interval (and a bootstrap ratio interval) that
    reaches ``level``; below it, intervals are labelled with their real coverage or omitted."""
    return n >= 1 and 1.0 - 2.0 * 0.5**n >= level


def interval_note(n: int, coverage: float, level: float = 0.95) -> str:
    """What to print beside a median interval: ``""`` when it reaches ``level``, else its real
    coverage (``"75% only, n=3"``), or ``"too few samples (n=1)"`` when there is no interval."""
    if n < 2 or coverage <= 0:
        return f"too few samples (n={n})"
    if coverage + 1e-12 >= level:
        return ""
    return f"{coverage * 100:.4g}% only, n={n}"


def _array(values: Sequence[float] | np.ndarray) -> np.ndarray:
    x = np.asarray(values, dtype=float).ravel()
    if x.size == 0:
        raise ValueError("no values")
    if not np.all(np.isfinite(x)):
        raise ValueError("values must be finite numbers")
    return x


def median_ci(values: Sequence[float] | np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """A distribution-free interval for the median: ``(low, high, coverage)``.

    The interval is ``[x(r), x(n-r+1)]`` (order statistics, 1-based) with the largest ``r`` for
    which ``P(B <= r-1) <= (1-level)/2``, ``B ~ Binomial(n, 1/2)``; its exact coverage is
    ``1 - 2 P(B <= r-1)`` (at least ``level``). With too few values for that (n < 6 at 95%)
    it is ``[min, max]`` and the coverage returned is lower than ``level``: say so, do not hide it.
    """
    x = np.sort(_array(values))
    n = x.size
    alpha = (1.0 - level) / 2.0
    r = int(_st.binom.ppf(alpha, n, 0.5))  # smallest k with cdf(k) >= alpha
    if r >= 1 and _st.binom.cdf(r - 1, n, 0.5) > alpha:  # pragma: no cover - ppf guarantees it
        r -= 1
    if _st.binom.cdf(r, n, 0.5) <= alpha:  # cdf exactly alpha: one rank more still covers
        r += 1
    r = max(r, 1)
    coverage = 1.0 - 2.0 * float(_st.binom.cdf(r - 1, n, 0.5))
    return float(x[r - 1]), float(x[n - r]), coverage


def outliers(values: Sequence[float] | np.ndarray) -> dict:
    """Indices of values flagged as outliers, by modified z-score and by Tukey fences.

    Modified z = 0.6745 (x - median) / MAD; when the MAD is 0 the mean absolute deviation is
    used instead (z = (x - median) / (1.253314 MeanAD)); when both are 0 all values are equal
    and none is flagged.
    """
    x = _array(values)
    med = float(np.median(x))
    dev = np.abs(x - med)
    mad = float(np.median(dev))
    if mad > 0:
        z = 0.6745 * (x - med) / mad
    else:
        mean_ad = float(np.mean(dev))
        z = (x - med) / (1.253314 * mean_ad) if mean_ad > 0 else np.zeros_like(x)
    q1, q3 = (float(v) for v in np.percentile(x, [25, 75]))
    iqr = q3 - q1
    lo, hi = q1 - TUKEY_K * iqr, q3 + TUKEY_K * iqr
    return {
        "modified_z": [int(i) for i in np.flatnonzero(np.abs(z) > MODIFIED_Z_LIMIT)],
        "tukey": [int(i) for i in np.flatnonzero((x < lo) | (x > hi))],
        "tukey_fences": [lo, hi],
        "max_abs_modified_z": float(np.max(np.abs(z))),
    }


def summary(values: Sequence[float], level: float = 0.95) -> dict:
    """Everything the report shows about one sample (all values used; outliers only flagged)."""
    x = _array(values)
    low, high, coverage = median_ci(x, level)
    flagged = outliers(x)
    return {
        "n": int(x.size),
        "median": float(np.median(x)),
        "ci95_low": low,
        "ci95_high": high,
        "ci_coverage": coverage,
        "mean": float(np.mean(x)),
        "std": float(np.std(x, ddof=1)) if x.size > 1 else 0.0,
        "mad": float(_st.median_abs_deviation(x, scale=1.0)),
        "p90": float(np.percentile(x, 90)),
        "p99": float(np.percentile(x, 99)),
        "min": float(np.min(x)),
        "max": float(np.max(x)),
        "outliers": flagged,
        "n_outliers": len(set(flagged["modified_z"]) | set(flagged["tukey"])),
    }


def ratio(a: Sequence[float], b: Sequence[float], *, n_boot: int = 10000, seed: int = 0, level: float = 0.95) -> dict:
    """``median(a) / median(b)`` with a bootstrap percentile interval.

    The two samples are resampled independently (they are not paired), ``n_boot`` times, with
    ``numpy.random.default_rng(seed)``; the interval is the ``(1-level)/2`` and ``(1+level)/2``
    quantiles of the resampled ratios. Same inputs and seed, same interval.
    """
    xa, xb = _array(a), _array(b)
    mb = float(np.median(xb))
    if mb == 0:
        raise ValueError("the median of the denominator sample is 0")
    rng = np.random.default_rng(seed)
    ra = np.median(xa[rng.integers(0, xa.size, size=(n_boot, xa.size))], axis=1)
    rb = np.median(xb[rng.integers(0, xb.size, size=(n_boot, xb.size))], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        boots = ra / rb
    boots = boots[np.isfinite(boots)]
    alpha = (1.0 - level) / 2.0
    low, high = (float(v) for v in np.quantile(boots, [alpha, 1.0 - alpha]))
    return {
        "ratio": float(np.median(xa)) / mb,
        "ci95_low": low,
        "ci95_high": high,
        "median_a": float(np.median(xa)),
        "median_b": mb,
        "n_a": int(xa.size),
        "n_b": int(xb.size),
        "n_boot": int(n_boot),
        "seed": int(seed),
    }


def linear_fit(x: Sequence[float], y: Sequence[float]) -> dict:
    """Least squares ``y = intercept + slope x`` with R² and the standard errors of both."""
    xs, ys = _array(x), _array(y)
    if xs.size != ys.size:
        raise ValueError(f"x and y differ in length ({xs.size} and {ys.size})")
    if xs.size < 2 or np.all(xs == xs[0]):
        raise ValueError("a line needs at least two distinct x values")
    fit = _st.linregress(xs, ys)
    r2 = float(fit.rvalue) ** 2 if math.isfinite(fit.rvalue) else 1.0
    return {
        "intercept": float(fit.intercept),
        "slope": float(fit.slope),
        "r2": r2,
        "intercept_stderr": float(fit.intercept_stderr),
        "slope_stderr": float(fit.stderr),
        "n": int(xs.size),
    }
