"""Fill the jinja2 templates under ``reports/``: one self-contained HTML file, and a Markdown summary.

The templates folder is, in order: ``$HARNESS_REPORTS_DIR``, ``reports/`` of the source tree,
or ``harness/_reports`` of an installed wheel.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from ..errors import HarnessError
from ..requirements import Requirement
from . import compare as _compare
from . import conformance as _conf
from ._figures import fmt_quantity, fmt_ratio
from .load import Run

HTML_TEMPLATE = "report.html.j2"
MARKDOWN_TEMPLATE = "summary.md.j2"


def templates_dir() -> Path:
    here = Path(__file__).resolve().parent
    candidates = [Path(p) for p in [os.environ.get("HARNESS_REPORTS_DIR")] if p]
    candidates += [here.parent.parent / "reports", here.parent / "_reports"]
    for c in candidates:
        if (c / HTML_TEMPLATE).is_file():
            return c
    raise HarnessError(f"the report templates ({HTML_TEMPLATE}) are in none of: {', '.join(map(str, candidates))}")


def _environment(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=not autoescape,
        lstrip_blocks=not autoescape,
        keep_trailing_newline=True,
    )
    env.filters["stclass"] = lambda s: "st-" + str(s).replace(" ", "-")
    env.filters["outcomeclass"] = lambda o: {
        "passed": "st-pass",
        "failed": "st-fail",
        "error": "st-fail",
        "xpassed": "st-fail",
        "xfailed": "st-xfail",
        "skipped": "st-skip",
    }.get(o, "")
    env.filters["total"] = _conf.total_text
    env.filters["quantity"] = fmt_quantity
    env.filters["ratio"] = fmt_ratio
    env.filters["failure"] = _conf.failure_view
    env.filters["shortpath"] = _short_path
    return env


def _short_path(path: Any) -> str:
    """A results file's folder, relative to the current folder when below it."""
    folder = Path(path).parent
    try:
        return str(folder.resolve().relative_to(Path.cwd().resolve())) or "."
    except ValueError:
        return str(folder)


@dataclass
class RunView:
    label: str
    role: str
    sources: list[str]
    notes: list[str]
    environments: list[tuple[str, list[tuple[str, str]]]]
    #: The results files shown (see :class:`~.load.Part`): the report's first table.
    parts: list[Any]
    partial: bool = False
    quick: bool = False
    multi_host: bool = False


def _run_view(run: Run, role: str) -> RunView:
    envs = [(kind, _compare.flatten(env).items()) for kind, env in run.environments.items()]
    return RunView(
        run.label,
        role,
        [str(s) for s in run.sources],
        run.notes,
        [(k, sorted(v)) for k, v in envs],
        parts=run.parts,
        partial=run.partial,
        quick=run.quick,
        multi_host=run.multi_host,
    )


def _conformance_context(
    run: Run, catalogue: dict[str, Requirement], covered: dict[str, list[str]] | None
) -> dict[str, Any] | None:
    if run.conformance is None:
        return None
    m = _conf.build_matrix(run.conformance, catalogue, covered)
    pairs = _conf.runtime_pairs(m)
    if run.multi_host:  # across hosts, the host differences say it; here runtimes on one host
        pairs = [(a, b) for a, b in pairs if _conf.split_column(a)[1] == _conf.split_column(b)[1]]
    versions = {}
    for rt, g in run.conformance.groupby("runtime"):
        v = g["runtime_version"].dropna()
        versions[rt] = str(v.iloc[0]) if len(v) else ""
    return {
        "matrix": m,
        "totals": _conf.totals(m),
        "failures": _conf.failures(m),
        "xfails": _conf.expected_failures(m),
        "skips": _conf.skips(m),
        "pairs": [(a, b, _conf.differences(m, a, b)) for a, b in pairs],
        "versions": versions,
        "host_diffs": _conf.host_differences(m) if run.multi_host else [],
        "hosts": _hosts(run) if run.multi_host else [],
    }


def _hosts(run: Run) -> list[dict[str, Any]]:
    """One row per host of a merged run: what sets it apart (kernel, cgroup mode, versions)."""
    rows: dict[str, dict[str, Any]] = {}
    for part in run.parts:
        if part.kind != "conformance":
            continue
        row = rows.setdefault(
            part.host, {"host": part.host, "kernel": part.kernel, "cgroup_mode": part.cgroup_mode, "runtimes": {}}
        )
        if run.conformance is not None:
            frame = run.conformance[run.conformance["host"] == part.host]
            for column, group in frame.groupby("runtime"):
                version = group["runtime_version"].dropna()
                row["runtimes"][_conf.split_column(str(column))[0]] = str(version.iloc[0]) if len(version) else ""
    return list(rows.values())


def context(
    runs: list[Run],
    *,
    catalogue: dict[str, Requirement] | None = None,
    covered: dict[str, list[str]] | None = None,
    noise: float = _compare.DEFAULT_NOISE,
    title: str | None = None,
    strength: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything the templates show, for one run or two (OLD, NEW).

    The requirements and the cases naming them are those each run stored
    (``requirements.json``); ``catalogue`` and ``covered`` replace them (tests). A run from a
    harness that stored none is shown against this harness's catalogue, with nothing covered
    but what its records name."""
    from . import performance

    if not 1 <= len(runs) <= 2:
        raise HarnessError(f"a report shows one run, or two to compare (OLD NEW); got {len(runs)}")

    def requirements_of(run: Run) -> tuple[dict[str, Requirement], dict[str, list[str]] | None]:
        from ..requirements import catalogue as this_harness

        if catalogue is not None:
            return catalogue, covered
        return run.catalogue or this_harness(), covered if covered is not None else run.covered

    new = runs[-1]
    ctx: dict[str, Any] = {
        "title": title or ("oci-harness comparison" if len(runs) == 2 else "oci-harness report"),
        "generated": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "runs": [_run_view(r, role) for r, role in zip(runs, ["OLD", "NEW"] if len(runs) == 2 else [""], strict=False)],
        "strengths": _conf.STRENGTHS,
        "conf": _conformance_context(new, *requirements_of(new)),
        "perf": performance.sections(new.samples),
        "compare": None,
        "strength": None,
    }
    if strength is not None:
        from ..mutants import report_view

        ctx["strength"] = report_view(strength)
    lifecycle = next((p for p in ctx["perf"] if p.id == "perf-lifecycle"), None)
    ctx["lifecycle"] = lifecycle.tables[0] if lifecycle else None
    if len(runs) == 2:
        old = runs[0]
        flips = []
        if old.conformance is not None and new.conformance is not None:
            flips = _compare.conformance_flips(
                _conf.build_matrix(old.conformance, *requirements_of(old)), ctx["conf"]["matrix"]
            )
        changes = _compare.performance_changes(old.samples, new.samples, noise)
        env = []
        for kind in ("conformance", "bench"):
            if kind in old.environments and kind in new.environments:
                env += [
                    (f"{kind}.{k}", a, b, d)
                    for k, a, b, d in _compare.environment_diff(old.environments[kind], new.environments[kind])
                ]
        ctx["compare"] = {
            "old": old.label,
            "new": new.label,
            "noise": noise,
            "flips": flips,
            "case_flips": _compare.case_flips(old.conformance, new.conformance),
            "changes": changes,
            "significant": sum(c["significant"] for c in changes),
            "env": env,
        }
    return ctx


def render_html(ctx: dict[str, Any]) -> str:
    return _environment(True).get_template(HTML_TEMPLATE).render(ctx)


def render_markdown(ctx: dict[str, Any]) -> str:
    return _environment(False).get_template(MARKDOWN_TEMPLATE).render(ctx)


def build_report(runs: list[Run], **kw: Any) -> tuple[str, str]:
    """The HTML report and the Markdown summary of one run, or of OLD against NEW."""
    ctx = context(runs, **kw)
    return render_html(ctx), render_markdown(ctx)


__all__ = ["build_report", "context", "render_html", "render_markdown", "templates_dir"]
