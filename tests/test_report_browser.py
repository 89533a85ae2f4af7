"""The report in a real browser: headless Chromium renders it offline at a desktop and a laptop
width. Four reports are checked and photographed: conformance (with failures), performance, a
comparison of two runs, and a merged view of two hosts.

The screenshots are kept in results/screenshots/ (where nox -s ci and .ci/run leave them), so a
person can look at them: the tests only check that each page rendered, with its parts.
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from test_report_load import ENV, RECORDS, record, samples, write_bench, write_conformance

from harness.report import load_run
from harness.report.render import build_report
from harness.spec import default_config

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
ARTIFACTS = Path(__file__).resolve().parent.parent / "results" / "screenshots"
WIDTHS = {"desktop": (1920, 2200), "laptop": (1366, 1600)}


def chromium(tmp_path, *args, timeout=180):
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    profile.mkdir()
    argv = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, env={**os.environ, "HOME": str(tmp_path)}
    )


def status(kind, started):
    return {"run_status": {"kind": kind, "status": "complete", "started": started, "finished": started + 95}}


def failing_records():
    config = default_config()
    config["hostname"] = "HAL-9000"
    message = (
        'cases/test_hostname.py:21: in test_hostname_is_seen_inside\n    assert report["hostname"] == "HAL-9000", ...\n'
        "E   AssertionError: hostname: expected 'HAL-9000', got 'HAL-9000x'\nE   assert 'HAL-9000x' == 'HAL-9000'\nE     - HAL-9000\nE     + HAL-9000x"
    )
    sections = {
        "harness: config.json of container h1-1": json.dumps(config, indent=2),
        "harness: crun stderr at create of h1-1": "crun: sethostname: Operation not permitted\n",
        "harness: stdout of container h1-1": '{"hostname": "HAL-9000x"}',
    }
    return [
        *RECORDS,
        record(
            "cases/test_hostname.py::test_hostname_is_seen_inside",
            "runc",
            "passed",
            [("config.hostname.applied", "MUST")],
        ),
        record(
            "cases/test_hostname.py::test_hostname_is_seen_inside",
            "crun",
            "failed",
            [("config.hostname.applied", "MUST")],
            message=message,
            sections=sections,
        ),
        record(
            "cases/test_a.py::test_two",
            "runc",
            "xfailed",
            [("runtime.state.status", "REQUIRED")],
            reason="runc: known deviation",
        ),
    ]


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    conf = write_conformance(root / "conf", failing_records(), env={**ENV, **status("conformance", 1.7e9)})
    bench = write_bench(root / "bench", samples(n=12), env={**ENV, **status("bench", 1.7e9 + 100)})
    old_bench = write_bench(
        root / "old-bench", samples(seed=3, n=12, slow={"crun": 0.8}), env={**ENV, **status("bench", 1.6e9)}
    )
    old_conf = write_conformance(
        root / "old-conf",
        [*RECORDS[:1], record("cases/test_a.py::test_one", "crun", "passed", [("runtime.state.id-unique", "MUST")])],
        env={**ENV, **status("conformance", 1.6e9)},
    )
    host_a = write_conformance(
        root / "host-a", failing_records(), env={**ENV, "hostname": "ci-amd64", **status("conformance", 1.7e9)}
    )
    host_b = write_conformance(
        root / "host-b",
        RECORDS,
        env={**ENV, "hostname": "ci-arm64", "machine": "aarch64", **status("conformance", 1.7e9 + 60)},
    )
    runs = {
        "conformance": [load_run(conf)],
        "performance": [load_run(bench)],
        "comparison": [load_run(f"{old_conf},{old_bench}"), load_run(f"{conf},{bench}")],
        "merged": [load_run(f"{host_a},{host_b}", merge=True)],
    }
    out = {}
    for name, rs in runs.items():
        html, _ = build_report(rs, covered={})
        path = root / f"{name}.html"
        path.write_text(html)
        out[name] = path
    return out


EXPECTED = {
    "conformance": ["runs", "conformance", "matrix", "failures", "environment"],
    "performance": [
        "runs",
        "performance",
        "perf-lifecycle",
        "perf-overlay",
        "perf-copy-up",
        "perf-depth",
        "perf-scale",
    ],
    "comparison": ["runs", "comparison", "flips", "perf-changes", "conformance", "performance"],
    "merged": ["runs", "conformance", "matrix", "failures"],
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_rendered_dom(reports, tmp_path, name):
    done = chromium(tmp_path, "--dump-dom", reports[name].as_uri())
    dom = done.stdout
    assert done.returncode == 0 and dom, done.stderr[-2000:]
    root = re.search(r"<html\b[^>]*>", dom).group(0)  # the scripts mark the root element
    assert 'data-rendered="ok"' in root and "data-js-error" not in root
    for anchor in EXPECTED[name]:
        assert f'id="{anchor}"' in dom, anchor
    assert 'class="sticky-summary"' in dom and 'class="runs"' in dom
    if name == "conformance":
        assert "expected</th><td><code>'HAL-9000'</code>" in dom and "actual</th><td><code>'HAL-9000x'</code>" in dom
        assert "Operation not permitted" in dom and '"hostname": "HAL-9000"' in dom
        assert re.search(r'<details class="traceback">', dom)
    if name == "performance":
        assert len(re.findall(r"<svg\b", dom)) >= 7
    if name == "merged":
        for column in ("runc @ ci-amd64", "crun @ ci-amd64", "runc @ ci-arm64", "crun @ ci-arm64"):
            assert f"<th>{column}</th>" in dom, column


@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize("name", list(EXPECTED))
def test_screenshot(reports, tmp_path, name, width):
    shot = tmp_path / f"{name}-{width}.png"
    w, h = WIDTHS[width]
    done = chromium(tmp_path, f"--screenshot={shot}", f"--window-size={w},{h}", reports[name].as_uri())
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 40_000  # a blank page compresses to a few KiB
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, ARTIFACTS / shot.name)
