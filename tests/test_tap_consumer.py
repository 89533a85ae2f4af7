"""The TAP file read back by TAP consumers: tap.py's parser, and perl's ``prove`` when installed.

An expected failure is ``not ok ... # TODO``: a consumer counts it neither as a failure nor as
"unexpectedly succeeded"; a real failure, an xpass (strict) and an unknown outcome fail the run.
"""

import shutil
import subprocess

import pytest
from tap.parser import Parser

from harness import results


def rec(case, outcome, **kw):
    return {"case": case, "outcome": outcome, "requirements": [], "runtime": "reference", **kw}


PASSING = [
    rec("a::ok[reference]", "passed", requirements=[{"id": "x.y", "level": "MUST", "anchor": "config.md#x"}]),
    rec("a::skip[reference]", "skipped", reason="needs cgroup v2"),
    rec("a::known[reference]", "xfailed", reason="reference: deviates\non two lines"),
]
FAILING = [
    rec("a::bad[reference]", "failed", message="assert 1 == 2\nexpected 2"),
    rec("a::fixed[reference]", "xpassed", reason="reference: deviates"),
    rec("a::boom[reference]", "error", message="fixture failed"),
    rec("a::leaky[reference]", "leak", message="a mount was left behind"),
]


def parsed(records):
    return [line for line in Parser().parse_text(results.tap(records)) if line.category == "test"]


def test_tap_py_reads_every_outcome():
    lines = parsed(PASSING + FAILING)
    assert [line.number for line in lines] == list(range(1, 8))
    by_name = {line.description.split(" - ", 1)[-1].lstrip("- "): line for line in lines}
    ok, skip, known = by_name["a::ok[reference]"], by_name["a::skip[reference]"], by_name["a::known[reference]"]
    assert ok.ok and not ok.skip and not ok.todo
    assert skip.ok and skip.skip and skip.directive.text == "SKIP needs cgroup v2"
    # the expected failure failed, as expected: not ok, with a TODO directive on one line
    assert (
        not known.ok
        and known.todo
        and known.directive.text == "TODO expected failure: reference: deviates on two lines"
    )
    for name in ("a::bad[reference]", "a::fixed[reference]", "a::boom[reference]", "a::leaky[reference]"):
        line = by_name[name]
        assert not line.ok and not line.todo and not line.skip, name


def test_tap_yaml_blocks_parse():
    lines = parsed(FAILING[:1])
    assert lines[0].yaml_block["outcome"] == "failed"
    assert "expected 2" in lines[0].yaml_block["message"]


@pytest.mark.skipif(shutil.which("prove") is None, reason="perl's prove is not installed")
@pytest.mark.parametrize(
    "records, passes", [(PASSING, True), (PASSING + FAILING[:1], False), (PASSING + FAILING[1:2], False)]
)
def test_prove_agrees(tmp_path, records, passes):
    tap_file = tmp_path / "conformance.tap"
    results.write_tap(records, tap_file)
    done = subprocess.run(["prove", "--exec", "cat", str(tap_file)], capture_output=True, text=True, timeout=60)
    assert (done.returncode == 0) == passes, done.stdout + done.stderr
    assert "unexpectedly succeeded" not in done.stdout
