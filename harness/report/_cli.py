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
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "One self-contained HTML report of conformance results and bench samples (two runs: OLD NEW compared).\n\n"
            "RESULTS is a results.jsonl or samples.jsonl, a folder holding them, or several joined with commas\n"
            "(the parts of one run: CONF,BENCH). One RESULTS: the report of that run; two: OLD NEW, what changed.\n"
            "The runs shown are listed at the top of the report: where from, when, status, runtimes, counts.\n\n"
            "Nothing is picked for you: a folder holding no results itself is refused with the runs found\n"
            "below it listed, unless --latest. A run recorded as interrupted or failed is refused unless\n"
            "--allow-partial (then it is flagged). Several conformance sets in one RESULTS are merged with\n"
            "--merge: runtimes from different runs, or hosts from different machines (columns become\n"
            "`runtime @ host`). Needs the analysis extra: pip install 'oci-harness[analysis]'."
        ),
        epilog=(
            "examples:\n"
            "  harness report results/conformance -o report.html\n"
            "  harness report results/conformance,results/bench/20250101T120000Z --markdown summary.md\n"
            "  harness report --latest results                       # newest complete run of each kind below results/\n"
            "  harness report old/conformance new/conformance        # OLD NEW: flips and significant changes\n"
            "  harness report --merge host-a/conformance,host-b/conformance -o fleet.html"
        ),
    )
    p.add_argument(
        "results",
        nargs="+",
        metavar="RESULTS",
        help="a run's results (file, folder, or A,B); give two to compare OLD NEW",
    )
    p.add_argument(
        "--output",
        "-o",
        default=DEFAULT_OUTPUT,
        metavar="FILE",
        help=f"the HTML file to write (default: {DEFAULT_OUTPUT})",
    )
    p.add_argument("--markdown", metavar="FILE", help="also write a Markdown summary (for CI job pages)")
    p.add_argument(
        "--merge",
        action="store_true",
        help="merge the sets joined with commas in one RESULTS into one matrix (runs of other runtimes, other hosts)",
    )
    p.add_argument(
        "--latest",
        action="store_true",
        help="for a folder holding no results itself: take the newest complete run of each kind below it (the others are listed as passed over)",
    )
    p.add_argument(
        "--allow-partial",
        action="store_true",
        help="show runs recorded as interrupted or failed (flagged as partial) instead of refusing them",
    )
    p.add_argument(
        "--noise",
        type=float,
        default=0.05,
        metavar="FRACTION",
        help="changes smaller than this are never significant (default: 0.05, 5%%)",
    )
    p.add_argument("--title", help="the report's title (default: oci-harness report, or comparison)")
    p.add_argument(
        "--strength",
        metavar="FILE",
        help="the JSON of `harness mutants`: adds a suite-strength section (mutation score per area, survivors)",
    )
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from ..errors import require_analysis

    require_analysis("report")
    from .. import atomic
    from .load import load_runs
    from .render import build_report

    if len(args.results) > 2:
        raise HarnessError(
            f"give one run, or two to compare (OLD NEW), not {len(args.results)}; join the parts of one run with commas (conf,bench)"
        )
    if not 0 <= args.noise < 1:
        raise HarnessError(f"--noise {args.noise}: expected a fraction in [0, 1), like 0.05")
    runs = load_runs(args.results, merge=args.merge, latest=args.latest, allow_partial=args.allow_partial)
    strength = None
    if args.strength:
        from ..mutants import load_results

        strength = load_results(Path(args.strength))
    html, markdown = build_report(runs, noise=args.noise, title=args.title, strength=strength)
    atomic.write_text(Path(args.output), html, parents=True)
    for run in runs:
        for part in run.parts:
            flag = " PARTIAL" if part.partial else ""
            print(
                f"{run.label}: {part.kind} {part.path.parent} ({part.status}{flag}, {part.when}, {', '.join(part.runtimes) or 'no runtime'}, {part.count} {'records' if part.kind == 'conformance' else 'samples'})",
                file=sys.stderr,
            )
    print(os.fspath(args.output))
    if args.markdown:
        atomic.write_text(Path(args.markdown), markdown, parents=True)
        print(os.fspath(args.markdown))
    return 0
