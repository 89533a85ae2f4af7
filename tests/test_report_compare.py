"""harness.report.compare: what changed between OLD and NEW, and when a change is significant."""

import pandas as pd
import pytest
from test_report_conformance import CATALOGUE, RECORDS, rec
from test_report_load import samples, write_bench

from harness.report.compare import case_flips, classify, conformance_flips, environment_diff, performance_changes
from harness.report.conformance import build_matrix
from harness.report.load import load_run


@pytest.mark.parametrize(
    "ratio, low, high, higher_is_better, verdict",
    [
        (1.30, 1.20, 1.40, False, "worse"),  # slower: interval excludes 1, above noise
        (0.70, 0.60, 0.80, False, "better"),
        (1.30, 0.95, 1.60, False, "no change"),  # interval includes 1
        (1.03, 1.01, 1.05, False, "no change"),  # excludes 1 but within the 5% noise
        (1.30, 1.20, 1.40, True, "better"),  # throughput went up
        (0.70, 0.60, 0.80, True, "worse"),
        (float("nan"), float("nan"), float("nan"), False, "unknown"),
    ],
)
def test_classify(ratio, low, high, higher_is_better, verdict):
    assert classify(ratio, low, high, 0.05, higher_is_better) == verdict


def test_noise_threshold_is_an_option():
    assert classify(1.08, 1.05, 1.11, noise=0.05) == "worse"
    assert classify(1.08, 1.05, 1.11, noise=0.10) == "no change"


def test_conformance_flips_regressions_first():
    new = RECORDS.copy()
    old = pd.DataFrame(
        [r for r in RECORDS.to_dict("records") if r["case"] != "t::three[crun]"]
        + [rec("t::three", "crun", "passed", "a.one-fails")]
    )
    old.loc[old["case"] == "t::x[runc]", ["outcome", "reason"]] = ["failed", None]
    flips = conformance_flips(build_matrix(old, CATALOGUE), build_matrix(new, CATALOGUE))
    assert [(f.requirement.requirement.id, f.runtime, f.old, f.new, f.kind) for f in flips] == [
        ("a.one-fails", "crun", "pass", "fail", "regression"),
        ("a.xfail", "runc", "fail", "xfail", "fixed"),
    ]
    assert {"case": "t::three[crun]", "old": "passed", "new": "failed"} in case_flips(old, new)


def test_runtime_absent_from_old_is_a_change_not_a_regression():
    old = RECORDS[RECORDS["runtime"] == "runc"]
    flips = conformance_flips(build_matrix(old, CATALOGUE), build_matrix(RECORDS, CATALOGUE))
    assert flips and {f.kind for f in flips} == {"changed"} and {f.runtime for f in flips} == {"crun"}


def _changes(tmp_path, **slow):
    old = load_run(write_bench(tmp_path / "old", samples(seed=1)))
    new = load_run(write_bench(tmp_path / "new", samples(seed=2, slow=slow)))
    return {
        (c["workload"], c["phase"], c["runtime"], c["key"]): c
        for c in performance_changes(old.samples, new.samples, 0.05)
    }


def test_performance_changes_find_the_slower_runtime(tmp_path):
    changes = _changes(tmp_path, crun=1.4)
    run = changes[("lifecycle", "run", "crun", "")]
    assert run["significant"] and run["word"] == "slower" and 1.2 < run["ratio"]["value"] < 1.6
    assert not changes[("lifecycle", "run", "runc", "")]["significant"]
    ordered = list(changes.values())
    assert ordered[0]["significant"]  # significant ones first
    # one count a side: equal or not, one sample cannot support a verdict
    assert changes[("n-containers", "bytes", "–", "n=5")]["verdict"] == "too few samples"
    assert changes[("n-containers", "mounts", "–", "n=5")]["verdict"] == "too few samples"
    assert changes[("n-containers", "setup", "–", "n=5")]["verdict"] == "too few samples"  # 3 noisy samples a side
    assert all(c["old"]["n"] >= 1 for c in ordered) and not any(
        c["workload"] == "lifecycle" and c["new"]["n"] != 30 for c in ordered
    )  # warm-up left out


def test_identical_runs_have_no_significant_change(tmp_path):
    old = load_run(write_bench(tmp_path / "old", samples(seed=1)))
    assert not any(c["significant"] for c in performance_changes(old.samples, old.samples))


def test_environment_diff():
    rows = environment_diff(
        {"kernel": "6.1", "runtimes": {"runc": "1.1"}}, {"kernel": "6.6", "runtimes": {"runc": "1.1"}, "cpus": 4}
    )
    assert (
        ("kernel", "6.1", "6.6", True) in rows
        and ("runtimes.runc", "1.1", "1.1", False) in rows
        and ("cpus", "–", "4", True) in rows
    )


def _frame(rows):
    import pandas as pd

    from harness.report.load import BENCH_COLUMNS

    return pd.DataFrame(
        [
            {
                **dict.fromkeys(BENCH_COLUMNS),
                "suite": "lifecycle",
                "workload": "lifecycle",
                "runtime": "runc",
                "phase": "run",
                "params": {},
                "warmup": False,
                "unit": unit,
                "value": v,
            }
            for unit, v in rows
        ],
        columns=BENCH_COLUMNS,
    )


@pytest.mark.parametrize("n", [1, 3, 5])
def test_small_samples_are_never_significant(n):
    old = _frame([("s", 0.100 + i * 1e-4) for i in range(n)])
    new = _frame([("s", 0.200 + i * 1e-4) for i in range(n)])
    (change,) = performance_changes(old, new)
    assert change["verdict"] == "too few samples" and not change["significant"]


def test_six_samples_a_side_can_be_significant():
    old = _frame([("s", 0.100 + i * 1e-4) for i in range(6)])
    new = _frame([("s", 0.200 + i * 1e-4) for i in range(6)])
    (change,) = performance_changes(old, new)
    assert change["significant"] and change["word"] == "slower"


def test_exact_counts_compare_from_two_samples():
    (change,) = performance_changes(_frame([("bytes", 100.0)] * 2), _frame([("bytes", 300.0)] * 2))
    assert change["significant"] and change["word"] == "larger"
    (change,) = performance_changes(_frame([("bytes", 100.0)] * 2), _frame([("bytes", 100.0)] * 2))
    assert change["verdict"] == "no change"
