"""Against a bundled runtime broken to skip its ipc, uts and network namespaces, the suite
reports the host changes (HOST CHANGED) and leaves the host's values as they were.

The copy lives in a temp folder; the cases run inside private uts, ipc and network
namespaces, so what the broken runtime changes is theirs, never the machine's."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root and unshare")

SKIP_NAMESPACES = (
    'if not path and t not in ("user", "cgroup"):',
    'if not path and t not in ("user", "cgroup", "ipc", "uts", "network"):',
)
VALUES = (
    "kernel/hostname",
    "kernel/domainname",
    "kernel/shm_rmid_forced",
    "net/ipv4/ip_forward",
    "net/ipv4/tcp_keepalive_time",
)


def test_a_runtime_that_skips_namespaces_changes_nothing_on_the_host(tmp_path):
    broken = tmp_path / "reference"
    shutil.copytree(ROOT / "runtimes" / "reference", broken, ignore=shutil.ignore_patterns("__pycache__"))
    source = broken / "oci_reference" / "container.py"
    text = source.read_text()
    assert SKIP_NAMESPACES[0] in text, "the line this test breaks has moved: update SKIP_NAMESPACES"
    source.write_text(text.replace(*SKIP_NAMESPACES))
    snap = "; ".join(f"cat /proc/sys/{v}" for v in VALUES)
    script = (
        "hostname host-of-this-test; "
        f"{snap}; echo ---; "
        f'"$0" -m pytest cases/test_sysctl.py cases/test_hostname.py -q -p no:cacheprovider --runtime {broken}/bin/oci-reference -rfE >"$1" 2>&1; '
        f"echo ---; {snap}"
    )
    out = tmp_path / "pytest.out"
    p = subprocess.run(
        ["unshare", "--uts", "--ipc", "--net", "sh", "-c", script, sys.executable, str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    before, _, after = p.stdout.partition("---\n---\n")
    assert before.strip() and before == after, f"the host's values changed: before {before!r}, after {after!r}"
    report = out.read_text()
    assert "HOST CHANGED" in report and "kernel.hostname changed from 'host-of-this-test'" in report, report[-3000:]
    failing = set(re.findall(r"^(?:FAILED|ERROR) (\S+)", report, flags=re.M))
    for case in ("test_host_hostname_unchanged", "test_sysctl_leaves_host_unchanged"):
        assert any(case in f for f in failing), (
            f"{case} did not fail against a runtime that skips the uts/ipc/net namespaces: {sorted(failing)}"
        )
