"""``harness report RESULTS... [--output FILE] [--markdown FILE]``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..errors import HarnessError

DEFAULT_OUTPUT = "report.html"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report",
        help="one self-contained HTML report of conformance results and bench samples (two runs: OLD NEW compared)",
        description=(
            "RESULTS is a results.jsonl or samples.jsonl, a folder holding them (searched below for the newest "
            "of each), or several joined with commas. One RESULTS: the report of that run; two: OLD NEW, what changed."
        ),
    )
    p.add_argument("results", nargs="+", metavar="RESULTS", help="a run's results (file, folder, or A,B); give two to compare OLD NEW")
    p.add_argument("--output", "-o", default=DEFAULT_OUTPUT, metavar="FILE", help=f"the HTML file to write (default: {DEFAULT_OUTPUT})")
    p.add_argument("--markdown", metavar="FILE", help="also write a Markdown summary (for CI job pages)")
    p.add_argument("--noise", type=float, default=0.05, metavar="FRACTION", help="changes smaller than this are never significant (default: 0.05, 5%%)")
    p.add_argument("--cases", metavar="DIR", help="the conformance cases, to tell 'not run' from 'not covered' (default: cases/ if present)")
    p.add_argument("--title", help="the report's title")
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from .. import requirements
    from .load import load_runs
    from .render import build_report
    from ..results import _atomic_write

    if len(args.results) > 2:
        raise HarnessError(f"give one run, or two to compare (OLD NEW), not {len(args.results)}; join the parts of one run with commas (conf,bench)")
    if not 0 <= args.noise < 1:
        raise HarnessError(f"--noise {args.noise}: expected a fraction in [0, 1), like 0.05")
    runs = load_runs(args.results)
    covered = None
    cases = Path(args.cases) if args.cases else Path("cases")
    if any(r.conformance is not None for r in runs) and (args.cases or cases.is_dir()):
        try:
            covered = requirements.collect_cases(cases)
        except HarnessError as err:
            if args.cases:
                raise
            print(f"harness report: cannot collect the cases in {cases} ({str(err).splitlines()[0]}); requirements without results count as not covered", file=sys.stderr)
    html, markdown = build_report(runs, covered=covered, noise=args.noise, title=args.title)
    _atomic_write(Path(args.output), html)
    print(os.fspath(args.output))
    if args.markdown:
        _atomic_write(Path(args.markdown), markdown)
        print(os.fspath(args.markdown))
    return 0
