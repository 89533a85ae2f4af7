"""One real ``harness bench --quick --suite lifecycle --runtime runc`` run, end to end."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.bench.records import read_samples

REPO = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="containers need root"),
    pytest.mark.skipif(
        shutil.which("runc") is None and not Path("/usr/sbin/runc").exists(), reason="runc is not installed"
    ),
]


def test_quick_lifecycle_run_with_runc(tmp_path):
    out, work, hf = tmp_path / "out", tmp_path / "work", tmp_path / "hf.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "bench",
            "--quick",
            "--suite",
            "lifecycle",
            "--runtime",
            "runc",
            "--output",
            str(out),
            "--json",
            str(hf),
            "--workdir",
            str(work),
            "--no-progress",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[-1] == str(out)
    # it says it is a smoke run, then the headline figures, then the folder
    assert "smoke run" in proc.stderr and lines[0].startswith("NOTE: a smoke run")
    assert any(line.strip().startswith("runc ") and " ms " in line for line in lines), lines

    samples = read_samples(out / "samples.jsonl")
    measured = [s for s in samples if not s["warmup"]]
    phases = {s["phase"] for s in measured if s["runtime"] == "runc" and s["workload"] == "lifecycle"}
    assert phases == {"run", "create", "start", "state", "kill", "delete", "create+start+delete"}
    # --quick: 1 warm-up block and 3 measured blocks
    runs = [s for s in samples if s["phase"] == "run"]
    assert [s["warmup"] for s in runs] == [True, False, False, False]
    for floor in ("floor-null", "floor-namespaces"):
        values = [s["value"] for s in measured if s["workload"] == floor]
        assert (
            len(values) == 3
            and all(0 < v < 1 for v in values)
            and all(s["runtime"] is None for s in measured if s["workload"] == floor)
        )
    conc = sorted(s["params"]["concurrency"] for s in measured if s["workload"] == "concurrent")
    assert conc == [1, 4]
    # running a container costs more than fork+exec of the probe alone
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    assert med([s["value"] for s in runs if not s["warmup"]]) > med(
        [s["value"] for s in measured if s["workload"] == "floor-null"]
    )

    env = json.loads((out / "environment.json").read_text())
    assert env["runtimes"]["runc"].startswith("runc version")
    assert env["cgroup_mode"] in ("v1", "hybrid", "v2")
    assert env["filesystem"]["type"] and env["filesystem"]["mount_options"]
    assert env["run"] == samples[0]["run"] and env["finished"] >= env["started"]

    export = json.loads(hf.read_text())
    assert export == json.loads((out / "hyperfine.json").read_text())
    by_command = {r["command"]: r for r in export["results"]}
    assert len(by_command["runc run"]["times"]) == 3
    assert by_command["runc run"]["median"] == pytest.approx(sorted(by_command["runc run"]["times"])[1])

    # nothing left behind: no bundles, no mounts, no state root, no journal
    assert list(work.iterdir()) == []
    assert str(work) not in Path("/proc/self/mountinfo").read_text()
    run_id = env["run"]
    from harness.runtime import default_state_root_base

    assert not (default_state_root_base() / f"bench-{run_id}").exists()
    assert not (default_state_root_base() / "journal" / f"bench-{run_id}.jsonl").exists()
