"""harness.bench.stats against known distributions and scipy/numpy references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st

from harness.bench import stats


def test_median_ci_ranks_for_n_100_are_the_tabled_40_and_61():
    low, high, coverage = stats.median_ci(list(range(1, 101)))
    assert (low, high) == (40.0, 61.0)
    assert coverage == pytest.approx(1 - 2 * st.binom.cdf(39, 100, 0.5))
    assert coverage == pytest.approx(0.9648, abs=1e-4)


@pytest.mark.parametrize("n", [6, 7, 10, 25, 30, 51, 200])
def test_median_ci_is_the_tightest_order_statistic_interval_with_95_percent(n):
    low, high, coverage = stats.median_ci(list(range(n)))
    r = int(low) + 1  # 1-based rank of the lower bound
    assert high == n - r  # symmetric: x(n-r+1), 0-based n-r
    assert coverage >= 0.95
    # one rank tighter would cover less than 95%
    assert 1 - 2 * st.binom.cdf(r, n, 0.5) < 0.95


def test_median_ci_with_too_few_values_is_min_max_and_says_its_lower_coverage():
    low, high, coverage = stats.median_ci([3.0, 1.0, 2.0, 5.0, 4.0])
    assert (low, high) == (1.0, 5.0)
    assert coverage == pytest.approx(1 - 2 * 0.5**5)


def test_median_ci_covers_the_true_median_of_an_exponential_about_95_percent_of_the_time():
    rng = np.random.default_rng(7)
    true_median = math.log(2)
    hits = 0
    trials = 2000
    for _ in range(trials):
        low, high, _cov = stats.median_ci(rng.exponential(1.0, 30))
        hits += low <= true_median <= high
    # exact coverage for n=30 is 0.9572; the binomial sd of the estimate is ~0.0045
    assert 0.94 <= hits / trials <= 0.975


def test_summary_matches_numpy_and_scipy():
    x = np.random.default_rng(3).lognormal(0.0, 0.5, 101)
    s = stats.summary(x)
    assert s["n"] == 101
    assert s["median"] == pytest.approx(np.median(x))
    assert s["mean"] == pytest.approx(np.mean(x))
    assert s["std"] == pytest.approx(np.std(x, ddof=1))
    assert s["mad"] == pytest.approx(st.median_abs_deviation(x))
    assert s["p90"] == pytest.approx(np.percentile(x, 90))
    assert s["p99"] == pytest.approx(np.percentile(x, 99))
    assert (s["min"], s["max"]) == (pytest.approx(x.min()), pytest.approx(x.max()))
    assert s["ci95_low"] < s["median"] < s["ci95_high"]


def test_outliers_are_flagged_by_both_rules_and_never_dropped():
    s = stats.summary([1.0, 2.0, 3.0, 4.0, 100.0])
    assert s["outliers"]["modified_z"] == [4]
    assert s["outliers"]["tukey"] == [4]
    assert s["outliers"]["tukey_fences"] == [pytest.approx(-1.0), pytest.approx(7.0)]
    assert s["n_outliers"] == 1
    assert s["mean"] == pytest.approx(22.0)  # the outlier is still in the mean
    assert s["max"] == 100.0


def test_modified_z_score_value_and_threshold():
    # median 10, MAD 1: z = 0.6745 * (x - 10) / 1; 15 gives 3.37 (kept), 16 gives 4.05 (flagged)
    x = [9.0, 10.0, 10.0, 11.0, 9.0, 11.0, 10.0, 15.0, 16.0]
    out = stats.outliers(x)
    assert stats.summary(x)["mad"] == 1.0
    assert out["modified_z"] == [8]
    assert out["max_abs_modified_z"] == pytest.approx(0.6745 * 6)


def test_modified_z_falls_back_to_mean_absolute_deviation_when_mad_is_zero():
    out = stats.outliers([5.0, 5.0, 5.0, 5.0, 9.0])
    # MeanAD = 0.8: z = 4 / (1.253314 * 0.8) = 3.99
    assert out["max_abs_modified_z"] == pytest.approx(4 / (1.253314 * 0.8))
    assert out["modified_z"] == [4]
    assert stats.outliers([2.0, 2.0, 2.0])["modified_z"] == []


def test_no_outliers_in_a_tight_normal_sample():
    x = np.random.default_rng(11).normal(10.0, 0.1, 40)
    out = stats.outliers(x)
    assert out["modified_z"] == []
    assert out["max_abs_modified_z"] < 3.5


def test_ratio_of_a_scaled_sample_is_exact_and_its_interval_contains_it():
    b = np.random.default_rng(1).normal(10.0, 1.0, 50)
    r = stats.ratio(2.0 * b, b, n_boot=2000, seed=5)
    assert r["ratio"] == pytest.approx(2.0)
    assert r["ci95_low"] < 2.0 < r["ci95_high"]
    assert r["n_a"] == r["n_b"] == 50


def test_ratio_is_reproducible_with_the_seed_and_changes_with_another():
    rng = np.random.default_rng(2)
    a, b = rng.exponential(2.0, 40), rng.exponential(1.0, 40)
    assert stats.ratio(a, b, seed=3) == stats.ratio(a, b, seed=3)
    assert stats.ratio(a, b, seed=3)["ci95_low"] != stats.ratio(a, b, seed=4)["ci95_low"]


def test_ratio_interval_agrees_with_scipy_bootstrap_percentile():
    rng = np.random.default_rng(4)
    a, b = rng.lognormal(1.0, 0.3, 200), rng.lognormal(0.5, 0.3, 200)
    ours = stats.ratio(a, b, n_boot=20000, seed=1)
    ref = st.bootstrap(
        (a, b),
        lambda x, y, axis=-1: np.median(x, axis=axis) / np.median(y, axis=axis),
        vectorized=True,
        paired=False,
        n_resamples=20000,
        method="percentile",
        random_state=1,
    )
    assert ours["ci95_low"] == pytest.approx(ref.confidence_interval.low, rel=0.01)
    assert ours["ci95_high"] == pytest.approx(ref.confidence_interval.high, rel=0.01)
    # the true ratio of medians is e^0.5
    assert ours["ci95_low"] < math.exp(0.5) < ours["ci95_high"]


def test_ratio_refuses_a_zero_denominator():
    with pytest.raises(ValueError, match="denominator"):
        stats.ratio([1.0, 2.0], [0.0, 0.0, 1.0])


def test_linear_fit_of_an_exact_line():
    f = stats.linear_fit([0, 1, 4, 16, 64, 256], [0.002 + 0.003 * s for s in (0, 1, 4, 16, 64, 256)])
    assert f["intercept"] == pytest.approx(0.002)
    assert f["slope"] == pytest.approx(0.003)
    assert f["r2"] == pytest.approx(1.0)
    assert f["slope_stderr"] == pytest.approx(0.0, abs=1e-12)


def test_linear_fit_matches_scipy_and_polyfit_on_noisy_data():
    rng = np.random.default_rng(9)
    x = np.repeat([0.0, 1.0, 4.0, 16.0, 64.0], 5)
    y = 0.01 + 0.5 * x + rng.normal(0, 0.5, x.size)
    f = stats.linear_fit(x, y)
    slope, intercept = np.polyfit(x, y, 1)
    ref = st.linregress(x, y)
    assert f["slope"] == pytest.approx(slope)
    assert f["intercept"] == pytest.approx(intercept)
    assert f["r2"] == pytest.approx(ref.rvalue**2)
    assert f["slope_stderr"] == pytest.approx(ref.stderr)
    assert f["intercept_stderr"] == pytest.approx(ref.intercept_stderr)
    assert 0.49 < f["slope"] < 0.51


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [float("inf")]])
def test_summary_refuses_empty_or_non_finite(bad):
    with pytest.raises(ValueError):
        stats.summary(bad)


def test_linear_fit_needs_two_distinct_x():
    with pytest.raises(ValueError, match="two distinct"):
        stats.linear_fit([1, 1, 1], [1, 2, 3])
