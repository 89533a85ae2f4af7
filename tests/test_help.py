"""Every subcommand has a description and examples, every option a help line; the default
runtime is the bundled one everywhere; `pytest --markers` lists each marker once."""

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from harness import cli, pytest_plugin

ROOT = Path(__file__).resolve().parent.parent


def subcommands(parser, prefix=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name), sub
                yield from subcommands(sub, (*prefix, name))


COMMANDS = list(subcommands(cli.build_parser()))


def test_every_command_is_listed():
    names = {" ".join(n) for n, _ in COMMANDS}
    assert {
        "spec",
        "bundle",
        "run",
        "image",
        "image build",
        "image generate",
        "image ls",
        "image inspect",
        "requirements",
        "diff",
        "cleanup",
        "runtimes",
        "bench",
        "report",
    } <= names


@pytest.mark.parametrize("name, parser", COMMANDS, ids=[" ".join(n) for n, _ in COMMANDS])
def test_description_examples_and_option_help(name, parser):
    assert parser.description and len(parser.description) > 20, name
    assert parser.epilog and parser.epilog.startswith("examples:") and "harness " in parser.epilog, name
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        assert action.help and action.help != argparse.SUPPRESS, (
            f"harness {' '.join(name)}: {action.option_strings or action.dest} has no help"
        )
    # and it renders
    assert "examples:" in parser.format_help()


def test_default_runtime_is_the_bundled_one(monkeypatch):
    monkeypatch.delenv("HARNESS_RUNTIME", raising=False)
    args = cli.build_parser().parse_args(["run", "b"])
    assert args.runtime == cli.DEFAULT_RUNTIME == pytest_plugin.DEFAULT_RUNTIME == "reference"
    sys.path.insert(0, str(ROOT))
    noxfile = (ROOT / "noxfile.py").read_text()
    assert 'DEFAULT_RUNTIME = "reference"' in noxfile


def test_pytest_markers_once_each():
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--markers", "-p", "no:cacheprovider"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    for marker in ("spec", "requires", "feature"):
        lines = [line for line in done.stdout.splitlines() if line.startswith(f"@pytest.mark.{marker}(")]
        assert len(lines) == 1, lines
