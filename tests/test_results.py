import json

from harness import results


def rec(case, outcome, **kw):
    return {"case": case, "outcome": outcome, "requirements": [], **kw}


def test_tap_outcomes_and_directives():
    text = results.tap(
        [
            rec("a::ok[runc]", "passed"),
            rec("a::bad[runc]", "failed", message="assert 1 == 2\nexpected 2"),
            rec("a::skip[runc]", "skipped", reason="needs cgroup v2"),
            rec("a::known[runc]", "xfailed", reason="runc: deviates"),
            rec("a::fixed[runc]", "xpassed", reason="runc: deviates"),
            rec("a::boom[runc]", "error", message="fixture failed"),
        ]
    )
    lines = text.splitlines()
    assert lines[:3] == ["TAP version 13", "1..6", "ok 1 - a::ok[runc]"]
    assert "not ok 2 - a::bad[runc]" in lines
    assert "ok 3 - a::skip[runc] # SKIP needs cgroup v2" in lines
    assert "not ok 4 - a::known[runc] # TODO expected failure: runc: deviates" in lines
    assert "not ok 5 - a::fixed[runc]" in lines and "not ok 6 - a::boom[runc]" in lines
    assert "    expected 2" in lines


def test_tap_escapes_hash_in_names():
    assert "ok 1 - a::x[p\\#1]" in results.tap([rec("a::x[p#1]", "passed")])


def test_jsonl_round_trip(tmp_path):
    records = [rec("a", "passed", duration=0.1), rec("b", "failed", message="x")]
    results.write_jsonl(records, tmp_path / "r" / "results.jsonl")
    assert results.read_jsonl(tmp_path / "r" / "results.jsonl") == records


def test_environment_block():
    from harness import environment

    env = environment.collect({"runc": "runc version 1"})
    assert env["runtimes"] == {"runc": "runc version 1"}
    assert env["cgroup_mode"] in ("v1", "hybrid", "v2") and env["kernel"]
    json.dumps(env)
