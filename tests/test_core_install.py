"""The core install carries no analysis libraries: `harness run`, `harness bundle` and the
conformance suite work without numpy, scipy, pandas and matplotlib; `harness bench` and
`harness report` say which extra to install.

Each check runs in a fresh interpreter in which importing those modules fails, as on a machine
where only the core was installed.
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BLOCK = "import sys\nfor m in ('numpy', 'scipy', 'pandas', 'matplotlib', 'jinja2', 'rich'): sys.modules[m] = None\n"


def run(code, timeout=180):
    return subprocess.run(
        [sys.executable, "-c", BLOCK + code], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def test_cli_starts_and_lists_commands():
    done = run("from harness.cli import main\nsys.exit(main(['--help']))")
    assert done.returncode == 0, done.stderr
    for command in ("run", "bundle", "bench", "report", "image"):
        assert command in done.stdout


@pytest.mark.parametrize("command", [["report", "results"], ["bench", "--quick"]])
def test_analysis_commands_name_the_extra(command):
    done = run(f"from harness.cli import main\nsys.exit(main({command!r}))")
    assert done.returncode == 2, done.stderr
    assert "numpy" in done.stderr and "oci-harness[analysis]" in done.stderr
    assert "Traceback" not in done.stderr


def test_conformance_suite_collects_without_analysis():
    done = run(
        "import pytest\nsys.exit(pytest.main(['cases', '--collect-only', '-q', '-p', 'no:cacheprovider', '--runtime', 'reference']))"
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "test_hostname" in done.stdout
