"""What runs inside a matrix cell's VM (``python -m harness.matrix.guest``), as root, on
virtme-ng's copy-on-write view of the host root: lay out the cell's cgroup mode, run pytest
with ``--results`` in the shared folder, and write ``cell.json`` (the cell's environment and how
it went) beside them. Every step is written to ``stage`` first, so the host can tell a cell
that never booted from one whose suite failed.

virtme-ng's init mounts cgroup2 alone at /sys/fs/cgroup. ``v1`` replaces it with a tmpfs
holding one v1 hierarchy per controller group (the layout systemd makes on a legacy host),
``hybrid`` adds the v2 hierarchy at /sys/fs/cgroup/unified, ``v2`` enables every controller in
the root's ``cgroup.subtree_control`` (as systemd does). A controller the kernel cannot mount as
v1 (Debian's 6.12 has no v1 memory or cpuset) is recorded as missing; cases needing it skip.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
#: v1 hierarchies as systemd lays them out (controllers sharing one, then the link names)
V1_GROUPS = [
    ("cpu,cpuacct", ["cpu", "cpuacct"]),
    ("cpuset", []),
    ("memory", []),
    ("devices", []),
    ("freezer", []),
    ("net_cls,net_prio", ["net_cls", "net_prio"]),
    ("blkio", []),
    ("perf_event", []),
    ("hugetlb", []),
    ("pids", []),
    ("rdma", []),
    ("misc", []),
]


def stage(out: Path, text: str) -> None:
    with open(out / "stage", "a", encoding="utf-8") as f:
        f.write(f"{time.time():.1f} {text}\n")
        f.flush()
        os.fsync(f.fileno())


def _mount(*args: str) -> str | None:
    proc = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    return None if proc.returncode == 0 else (proc.stderr.strip() or f"exit {proc.returncode}")


def _kernel_controllers() -> list[str]:
    names = []
    for line in Path("/proc/cgroups").read_text().splitlines():
        fields = line.split()
        if fields and not line.startswith("#") and len(fields) >= 4 and fields[3] == "1":
            names.append(fields[0])
    return names


def _seed_cache() -> None:
    """Copy the host's harness cache (probe builds, root filesystems) into the guest's writable
    cache, leaving out the kernels: the guest's home is read-only, and building the probe again
    under emulation costs minutes."""
    import shutil

    source, target = os.environ.get("HARNESS_MATRIX_HOST_CACHE"), os.environ.get("HARNESS_CACHE_DIR")
    if source and target and Path(source).is_dir():
        shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True, ignore=shutil.ignore_patterns("kernels"))


def layout(mode: str) -> dict[str, object]:
    """Make /sys/fs/cgroup the ``mode`` layout; returns what was mounted and what could not be."""
    missing: dict[str, str] = {}
    v2 = ROOT / "cgroup.controllers"
    if mode == "v2":
        if not v2.exists():
            raise RuntimeError(f"{ROOT} is not cgroup2 (the init's layout changed?)")
        wanted = " ".join(f"+{c}" for c in v2.read_text().split())
        if wanted:
            (ROOT / "cgroup.subtree_control").write_text(wanted)
    else:
        if v2.exists():  # give every controller back before v1 may bind it
            enabled = (ROOT / "cgroup.subtree_control").read_text().split()
            if enabled:
                (ROOT / "cgroup.subtree_control").write_text(" ".join(f"-{c}" for c in enabled))
            subprocess.run(["umount", str(ROOT)], check=True)
        err = _mount("-t", "tmpfs", "-o", "mode=755,nosuid,nodev,noexec", "tmpfs", str(ROOT))
        if err:
            raise RuntimeError(f"mounting a tmpfs on {ROOT}: {err}")
        available = set(_kernel_controllers())
        for name, links in V1_GROUPS:
            controllers = [c for c in name.split(",") if c in available]
            if not controllers:
                missing[name] = "not in /proc/cgroups"
                continue
            target = ROOT / ",".join(controllers)
            target.mkdir()
            err = _mount("-t", "cgroup", "-o", f"rw,nosuid,nodev,noexec,{','.join(controllers)}", "cgroup", str(target))
            if err:
                target.rmdir()
                missing[name] = err
                continue
            for link in links:
                if link in controllers and link != target.name:
                    (ROOT / link).symlink_to(target.name)
        (ROOT / "systemd").mkdir()
        err = _mount("-t", "cgroup", "-o", "rw,nosuid,nodev,noexec,none,name=systemd", "cgroup", str(ROOT / "systemd"))
        if err:
            missing["name=systemd"] = err
        if mode == "hybrid":
            (ROOT / "unified").mkdir()
            err = _mount("-t", "cgroup2", "-o", "rw,nosuid,nodev,noexec", "cgroup2", str(ROOT / "unified"))
            if err:
                raise RuntimeError(f"mounting cgroup2 on {ROOT}/unified: {err}")
    mounts = [
        line.split()[1:3]
        for line in Path("/proc/mounts").read_text().splitlines()
        if line.split()[2] in ("cgroup", "cgroup2")
    ]
    return {"mounts": [{"path": p, "type": t} for p, t in mounts], "missing": missing}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.matrix.guest")
    parser.add_argument("--mode", choices=("v1", "hybrid", "v2"), required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--label", required=True)
    parser.add_argument("pytest_args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    out: Path = args.out
    booted = time.time()
    stage(out, "booted")
    _seed_cache()
    cell: dict[str, object] = {
        "label": args.label,
        "mode": args.mode,
        "kernel": platform.release(),
        "booted": booted,
    }
    try:
        cell["cgroup"] = layout(args.mode)
    except Exception as err:  # the layout failed: no case ran, and the report says why
        stage(out, f"layout-failed {err}")
        cell["status"] = "layout-failed"
        cell["error"] = str(err)
        (out / "cell.json").write_text(json.dumps(cell, indent=1) + "\n")
        return 3
    from .. import host

    cell["cgroup_mode"] = host.cgroup_mode()
    controllers = sorted(host.cgroup_controllers())
    cell["controllers"] = controllers
    stage(out, f"layout {host.cgroup_mode()} ({len(controllers)} controllers)")
    args_ = [a for a in args.pytest_args if a != "--"]
    stage(out, "running")
    with open(out / "pytest.log", "w", encoding="utf-8") as log:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", *args_, f"--results={out / 'results'}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    cell["pytest_exit"] = proc.returncode
    cell["finished"] = time.time()
    try:
        env = json.loads((out / "results" / "environment.json").read_text())
        cell["runtimes"] = env.get("runtimes", {})
        env["matrix_cell"] = {k: v for k, v in cell.items() if k not in ("runtimes",)}
        (out / "results" / "environment.json").write_text(json.dumps(env, indent=1) + "\n")
    except (OSError, ValueError):
        cell["runtimes"] = {}
    cell["status"] = "ran"
    (out / "cell.json").write_text(json.dumps(cell, indent=1) + "\n")
    stage(out, f"done pytest exit {proc.returncode}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
