import importlib.util
from pathlib import Path

spec = importlib.util.spec_from_file_location("stability", Path(__file__).resolve().parents[1] / "benchmarks" / "stability.py")
stability = importlib.util.module_from_spec(spec)
spec.loader.exec_module(stability)


def test_flips_finds_changed_and_missing_cases():
    runs = [{"a": "passed", "b": "failed", "c": "passed"}, {"a": "passed", "b": "passed", "c": "passed"}, {"a": "passed", "b": "failed"}]
    assert stability.flips(runs) == {"b": ["failed", "passed", "failed"], "c": ["passed", "passed", "absent"]}


def test_no_flips_when_identical():
    assert stability.flips([{"a": "xfailed"}, {"a": "xfailed"}]) == {}
