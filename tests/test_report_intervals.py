"""Intervals say what they cover: 95% only from six samples up; below, the real coverage of the
order-statistic interval, or "too few samples"; ratios get no bootstrap interval below six."""

import pytest
from test_report_load import samples, write_bench

from harness.report import _stats
from harness.report._figures import fmt_median_interval, fmt_ratio
from harness.report.load import load_run
from harness.report.performance import sections


@pytest.mark.parametrize(
    "n, label",
    [
        (1, "too few samples (n=1)"),
        (2, "50% only, n=2"),
        (3, "75% only, n=3"),
        (4, "87.5% only, n=4"),
        (5, "93.75% only, n=5"),
    ],
)
def test_small_n_is_labelled_with_its_coverage(n, label):
    text = fmt_median_interval(_stats.summary([1.0 + i for i in range(n)]))
    assert label in text


@pytest.mark.parametrize("n", [6, 7, 30])
def test_six_or_more_is_a_plain_95_interval(n):
    text = fmt_median_interval(_stats.summary([1.0 + i for i in range(n)]))
    assert text.startswith("[") and "only" not in text and "few" not in text


def test_ratio_without_enough_samples_has_no_interval():
    assert "no interval: n=3/3" in fmt_ratio(_stats.ratio([1.0, 1.1, 1.2], [2.0, 2.1, 2.2]))
    assert "[" in fmt_ratio(_stats.ratio([1.0 + i / 10 for i in range(6)], [2.0 + i / 10 for i in range(6)]))


def test_lifecycle_table_of_a_small_run_says_so(tmp_path):
    run = load_run(write_bench(tmp_path / "b", samples(n=3)))
    lifecycle = next(p for p in sections(run.samples) if p.id == "perf-lifecycle")
    table = lifecycle.tables[0]
    assert "interval (95% unless noted)" in table.columns
    cells = [row[table.columns.index("interval (95% unless noted)")] for row in table.rows]
    assert cells and all("75% only, n=3" in c for c in cells)
    ratios = [row[-1] for row in table.rows if row[-1] != "fastest"]
    assert ratios and all("no interval" in r for r in ratios)
