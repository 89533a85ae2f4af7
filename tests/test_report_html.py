"""harness report: one self-contained HTML file (and a Markdown summary) from result folders."""

import re

import pytest
from test_report_load import RECORDS, record, samples, write_bench, write_conformance

from harness.cli import main
from harness.errors import HarnessError
from harness.report import load_run
from harness.report.render import build_report

FAILING = [
    *RECORDS,
    record(
        "cases/test_a.py::test_two",
        "runc",
        "xfailed",
        [("runtime.state.status", "REQUIRED")],
        reason="runc: known <deviation>",
    ),
    record(
        "cases/test_a.py::test_two", "crun", "skipped", [("runtime.state.status", "REQUIRED")], reason="needs cgroup v2"
    ),
]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    conf = write_conformance(root / "conf", FAILING)
    bench = write_bench(root / "bench", samples(n=12))
    html, markdown = build_report([load_run(f"{conf},{bench}")], covered={})
    return html, markdown


def test_nothing_is_loaded_from_outside(report):
    html, _ = report
    assert not re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert not re.findall(r"url\(\s*['\"]?(?:https?:)?//", html, re.I)
    assert "<link" not in html and "@import" not in html and "<!DOCTYPE svg" not in html


def test_sections_tables_and_figures(report):
    html, _ = report
    for anchor in (
        "conformance",
        "totals",
        "matrix",
        "failures",
        "xfails",
        "skips",
        "runtime-diff",
        "performance",
        "perf-lifecycle",
        "perf-concurrency",
        "perf-overlay",
        "perf-copy-up",
        "perf-depth",
        "perf-scale",
        "environment",
    ):
        assert f'id="{anchor}"' in html, anchor
    assert html.count("<svg") >= 7
    # runc: id-unique passes, status (REQUIRED, a MUST) is an expected failure; crun: fails one, skips the other
    assert "MUST: 1/2" in html and "MUST: 0/2" in html


def test_failure_opens_to_message_config_and_stderr(report):
    html, _ = report
    block = html[html.index('<details class="failure"') :]
    block = block[: block.index("</details>\n</details>") if "</details>\n</details>" in block else len(block)]
    assert (
        "on <strong>crun</strong>" in block
        and "assert &#39;a&#39; == &#39;b&#39;" in block
        and "config.json, whole" in block
    )
    assert '<details class="traceback">' in block  # the traceback is folded away


def test_reasons_are_escaped(report):
    html, _ = report
    assert "runc: known &lt;deviation&gt;" in html and "known <deviation>" not in html


def test_markdown_summary(report):
    _, md = report
    assert md.startswith("# oci-harness report")
    assert "| crun | 0/2 | 0/0 | 0/0 | 1 | 0 | 1 |" in md and "| runc | 1/2 | 0/0 | 0/0 | 0 | 1 | 0 |" in md
    assert "`runtime.state.id-unique` (MUST) on **crun**" in md
    assert "## Lifecycle latency" in md


def test_cli_compares_two_runs(tmp_path, capsys):
    old = write_bench(tmp_path / "old", samples(seed=1, n=12))
    new = write_bench(tmp_path / "new", samples(seed=2, n=12, slow={"crun": 1.5}))
    write_conformance(
        old,
        [*RECORDS[:1], record("cases/test_a.py::test_one", "crun", "passed", [("runtime.state.id-unique", "MUST")])],
    )
    write_conformance(new, RECORDS)
    out, md = tmp_path / "out" / "r.html", tmp_path / "r.md"
    assert main(["report", str(old), str(new), "--output", str(out), "--markdown", str(md), "--noise", "0.1"]) == 0
    html, summary = out.read_text(), md.read_text()
    assert html.index('id="comparison"') < html.index('id="conformance"')
    assert "flip-regression" in html and "runtime.state.id-unique" in html
    assert "| `runtime.state.id-unique` | MUST | crun | pass | fail | regression |" in summary
    assert re.search(
        r"\| lifecycle \| lifecycle \| run \| crun \| – \|  \| 1\.\d+× \[[\d.]+, [\d.]+\] \| \*\*slower\*\* \|", summary
    )
    assert "exceeds 10.0%" in summary


def test_cli_errors(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "missing: no such file or folder of results" in capsys.readouterr().err
    conf = write_conformance(tmp_path / "c", RECORDS)
    assert main(["report", str(conf), str(conf), str(conf)]) == 2
    assert "give one run, or two" in capsys.readouterr().err
    assert main(["report", str(conf), "--noise", "5"]) == 2


def test_more_than_two_runs_refused_by_the_builder(tmp_path):
    run = load_run(write_conformance(tmp_path / "c", RECORDS))
    with pytest.raises(HarnessError, match="one run, or two"):
        build_report([run, run, run])
