"""The report in a real browser: headless Chromium renders it, offline, with every section and figure.

The screenshot is kept as an artifact: results/report-screenshot.png (and in tmp_path).
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.report import load_run
from harness.report.render import build_report
from test_report_load import RECORDS, record, samples, write_bench, write_conformance

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
ARTIFACTS = Path(__file__).resolve().parent.parent / "results"


def chromium(tmp_path, *args, timeout=120):
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    profile.mkdir()
    argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env={**os.environ, "HOME": str(tmp_path)})


@pytest.fixture(scope="module")
def report_file(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    records = [*RECORDS, record("cases/test_a.py::test_two", "runc", "xfailed", [("runtime.state.status", "REQUIRED")], reason="runc: known deviation")]
    run = load_run(f"{write_conformance(root / 'conf', records)},{write_bench(root / 'bench', samples(n=12))}")
    html, _ = build_report([run], covered={})
    path = root / "report.html"
    path.write_text(html)
    return path


def test_rendered_dom_has_sections_tables_and_figures(report_file, tmp_path):
    done = chromium(tmp_path, "--dump-dom", report_file.as_uri())
    dom = done.stdout
    assert done.returncode == 0 and dom, done.stderr[-2000:]
    root = re.search(r"<html\b[^>]*>", dom).group(0)  # the scripts mark the root element
    assert 'data-rendered="ok"' in root and "data-js-error" not in root
    for anchor in ("conformance", "matrix", "failures", "performance", "perf-lifecycle", "perf-overlay", "perf-copy-up", "perf-depth", "perf-scale", "environment"):
        assert f'id="{anchor}"' in dom, anchor
    assert len(re.findall(r"<svg\b", dom)) >= 7
    assert len(re.findall(r"<table\b", dom)) >= 10
    assert 'class="st st-fail"' in dom and 'class="st st-pass"' in dom


def test_screenshot(report_file, tmp_path):
    shot = tmp_path / "report.png"
    done = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", "--hide-scrollbars", report_file.as_uri())
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000  # a blank page compresses to a few KiB
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(shot, ARTIFACTS / "report-screenshot.png")
