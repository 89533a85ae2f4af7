#!/usr/bin/env python3
"""The suite against a bundled runtime broken to skip its namespaces: the host stays as it was.

    python3 benchmarks/host_isolation.py [--output DIR] [-- extra pytest args]

A runtime that fails to make a namespace it was asked for is what the suite exists to meet.
This makes a private copy of runtimes/reference whose create skips its ipc, uts and network
namespaces (it still sets the hostname, domainname and sysctls the config asks for, now on the
namespaces it runs in), and runs against it the cases that touch host state: sysctls,
hostname, domainname, cgroups (and the parents of a nested cgroupsPath), mounts, devices and
network devices. Then it checks that

* the host is exactly as before: the sysctls those cases set, the hostname and domainname,
  the mount table, the top of /dev, the network links, and no cgroup folder carrying the run's
  id (HARNESS_RUN_ID) on any cgroup mount;
* the suite reported the failure to isolate: "HOST CHANGED" in its output, and the cases that
  look at the host's hostname and sysctls failed.

So that this never changes the machine it runs on, the run happens in private uts, ipc, network
and mount namespaces (``unshare``): they are "the host" the broken runtime falls back to; cgroup
folders are real, and are looked for by the run's id. Prints the figures (outcome counts, what
was reported, what changed) and exits 0 when the host is unchanged and the failure reported.
Needs root and util-linux ``unshare``.

Run it without ``-n`` (one pytest process): xdist workers share the host's hostname and
sysctls, and each case records them before and restores them after; with a runtime that
changes them, one worker can record another's change as "before" and put it back afterwards
(seen with ``-n 2``: the hostname ended as a container's). A known limit of the per-case
check against a broken runtime, not a flake of a correct one.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness import leaks  # noqa: E402 (after the sys.path line)
from harness.results import read_jsonl  # noqa: E402

#: the line of the bundled runtime's create that picks the namespaces to unshare, and the
#: broken version that leaves out ipc, uts and network (mount stays: without it the runtime's
#: pivot_root would act on the namespace this script runs in)
SKIP_NAMESPACES = (
    'if not path and t not in ("user", "cgroup"):',
    'if not path and t not in ("user", "cgroup", "ipc", "uts", "network"):',
)

CASES = [
    "cases/test_sysctl.py",
    "cases/test_hostname.py",
    "cases/test_cgroups.py",
    "cases/test_delete_resources.py",
    "cases/test_mounts.py",
    "cases/test_devices.py",
    "cases/test_netdevices.py",
]

#: sysctls the cases above set (and the host must keep), read before and after
SYSCTLS = (
    "kernel/hostname",
    "kernel/domainname",
    "kernel/shm_rmid_forced",
    "kernel/msgmax",
    "net/ipv4/ip_forward",
    "net/ipv4/tcp_keepalive_time",
    "net/ipv4/ping_group_range",
)

#: what is read in the namespaces the run happens in, before and after it (one section each)
SNAPSHOT = (
    "; ".join(f"echo {s}=$(cat /proc/sys/{s} 2>/dev/null)" for s in SYSCTLS)
    + "; echo ==mounts; cut -d' ' -f1,5,9,10 /proc/self/mountinfo | sort"
    + "; echo ==dev; ls -A /dev | sort"
    + "; echo ==links; ip -o link show | cut -d: -f2 | sort"
)


def broken_copy(where: Path) -> Path:
    copy = where / "reference"
    shutil.copytree(ROOT / "runtimes" / "reference", copy, ignore=shutil.ignore_patterns("__pycache__"))
    source = copy / "oci_reference" / "container.py"
    text = source.read_text()
    if SKIP_NAMESPACES[0] not in text:
        raise SystemExit(f"the line this script breaks has moved from {source.name}: update SKIP_NAMESPACES")
    source.write_text(text.replace(*SKIP_NAMESPACES))
    return copy / "bin" / "oci-reference"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        extra = argv[argv.index("--") + 1 :]
        argv = argv[: argv.index("--")]
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--output", type=Path, default=None, help="keep the run's results here")
    args = parser.parse_args(argv)
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        raise SystemExit("needs root and util-linux unshare (the run happens in private namespaces)")
    work = Path(tempfile.mkdtemp(prefix="oci-harness-isolation-"))
    out = args.output or work / "results"
    tag = "iso" + uuid.uuid4().hex[:6]
    try:
        binary = broken_copy(work)
        log = work / "pytest.log"
        script = (
            "hostname host-of-this-run; echo domain-of-this-run > /proc/sys/kernel/domainname; "
            f"{SNAPSHOT}; echo ==end; "
            '"$0" -m pytest "$@" >"$LOG" 2>&1; echo "==pytest $?"; '
            f"{SNAPSHOT}; echo ==end"
        )
        command = [
            "unshare",
            "--uts",
            "--ipc",
            "--net",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            sys.executable,
            *CASES,
            "-q",
            "-p",
            "no:cacheprovider",
            "-rfE",
            "--runtime",
            str(binary),
            f"--results={out}",
            f"--basetemp={work / 'tmp'}",
            *extra,
        ]
        env = {**os.environ, "HARNESS_RUN_ID": tag, "LOG": str(log)}
        proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        before, _, rest = proc.stdout.partition("==end\n")
        status, _, after = rest.partition("\n")
        after = after.partition("==end\n")[0]
        report = log.read_text(errors="replace") if log.exists() else proc.stderr
        records = read_jsonl(out / "results.jsonl") if (out / "results.jsonl").exists() else []
        counts = dict(sorted(collections.Counter(r["outcome"] for r in records).items()))
        failing = sorted(set(re.findall(r"^(?:FAILED|ERROR) (\S+)", report, flags=re.M)))
        host_changed = sorted(
            {
                line.strip()
                for line in report.splitlines()
                if "host sysctl" in line or "host device" in line or "host network link" in line
            }
        )
        cgroups = [str(p) for p in leaks.cgroup_folders([f"h{tag}-"])]
        problems = []
        gone: list[str] = []
        new: list[str] = []
        if not before.strip():
            problems.append(f"no snapshot was taken: {proc.stderr.strip()[-2000:]}")
        else:
            # A mount point another run on the machine removes vanishes from these namespaces
            # too (the kernel detaches it everywhere): a gone mount counts only under our folder.
            gone = sorted(
                line
                for line in set(before.splitlines()) - set(after.splitlines())
                if not line[:1].isdigit() or str(work) in line
            )
            new = sorted(set(after.splitlines()) - set(before.splitlines()))
            if gone or new:
                problems.append(f"the host changed: gone {gone}, new {new}")
        if cgroups:
            problems.append(f"cgroup folders left: {cgroups}")
        if "HOST CHANGED" not in report:
            problems.append("the suite did not report HOST CHANGED")
        for case in ("test_host_hostname_unchanged", "test_sysctl_leaves_host_unchanged"):
            if not any(case in f for f in failing):
                problems.append(f"{case} did not fail against a runtime that skips its uts/ipc/net namespaces")
        summary = {
            "runtime": "reference with create skipping ipc, uts and network namespaces",
            "cases": CASES,
            "pytest": status.strip(),
            "outcomes": counts,
            "failed_or_error": len(failing),
            "host_changes_reported": host_changed,
            "host_unchanged": bool(before.strip()) and not gone and not new and not cgroups,
            "problems": problems,
        }
        print(json.dumps(summary, indent=2))
        if args.output:
            (args.output / "host_isolation.json").write_text(json.dumps(summary, indent=2) + "\n")
            (args.output / "pytest.log").write_text(report)
        return 1 if problems else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
