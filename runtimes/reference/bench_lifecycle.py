#!/usr/bin/python3
"""Side-by-side lifecycle latency: runc vs oci-reference, interleaved, medians.

    /usr/bin/python3 runtimes/reference/bench_lifecycle.py [-n 30] [--ref CMD] [--runc CMD]
        [--bundle DIR] [--runtime NAME=CMD ...] [--perf]

Builds a bundle whose rootfs holds one static binary (needs `cc -static`; or --bundle DIR,
e.g. one made by `harness bundle DIR --rootfs probe`), then for each iteration times, with
time.perf_counter_ns around each subprocess call (no shell):
  run      create+start+wait+delete in one call
  create / state / start / delete, and their sum (create+start+delete; the process exits at
           once, the harness-style wait for `stopped` is not included in the sum)
  kill     `kill ID KILL` of a second, created container
Beside each median wall time, the median CPU time of the call (user + system of the command
and of the children it reaped: for create that is the command and its first child, not the
container's init), the steadier figure on a busy machine. The runtimes take turns, the order
reversed every iteration, so drift affects all alike.  rusage is tick-sampled on some VMs
(here it reads ~1.5x the exact figure); --perf takes CPU and wall from `perf stat` instead,
exact and with create's init counted. `--runtime NAME=CMD` (repeatable)
replaces the default pair, e.g. two checkouts of oci-reference; the ratio is last/first.
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
C_SRC = '#include <unistd.h>\nint main(void){ write(1, "hi\\n", 3); return 0; }\n'


def make_bundle(d):
    os.makedirs(os.path.join(d, "rootfs"))
    src = os.path.join(d, "hello.c")
    with open(src, "w") as f:
        f.write(C_SRC)
    subprocess.run(["cc", "-static", "-O2", "-o", os.path.join(d, "rootfs", "hello"), src], check=True)
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    cfg = {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": ["/hello"],
            "env": ["PATH=/usr/bin:/bin"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "bench",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
            },
        ],
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": ["/proc/kcore"],
            "readonlyPaths": ["/proc/sys"],
        },
    }
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f)


def _cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


PERF = ["perf", "stat", "-x,", "-e", "task-clock,duration_time", "--"]


def timed(cmd, perf=False):
    """(wall ms, CPU ms) of one call.  With perf, both come from `perf stat`: CPU is the
    task-clock of the command and of every process it starts while it runs (for create, the
    container's init too, up to "created"), wall its duration from exec to exit."""
    # stderr to a file, not a pipe: after `create` the container keeps its stdio open
    with tempfile.TemporaryFile() as err:
        c = _cpu()
        t = time.perf_counter_ns()
        r = subprocess.run(PERF + cmd if perf else cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        dt = (time.perf_counter_ns() - t) / 1e6
        err.seek(0)
        text = err.read().decode()
        if r.returncode != 0:
            sys.exit(f"failed: {' '.join(cmd)}: {text.strip()}")
    if perf:
        counts = {f[2]: float(f[0]) for f in (line.split(",") for line in text.splitlines()) if len(f) > 2}
        return counts["duration_time"] / 1e6, counts["task-clock"]
    return dt, (_cpu() - c) * 1e3


def wait_stopped(cmd):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        r = subprocess.run(cmd, capture_output=True)
        if r.returncode == 0 and json.loads(r.stdout)["status"] == "stopped":
            return
        time.sleep(0.002)
    sys.exit("container did not stop")


KEYS = ("run", "create", "state", "start", "kill", "delete", "c+s+d")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=30)
    ap.add_argument("--ref", default=os.path.join(HERE, "bin", "oci-reference"))
    ap.add_argument("--runc", default=shutil.which("runc") or "/usr/sbin/runc")
    ap.add_argument("--bundle", help="an existing bundle to run (default: build one with cc -static)")
    ap.add_argument("--runtime", action="append", default=[], metavar="NAME=CMD", help="runtimes to compare")
    ap.add_argument(
        "--perf",
        action="store_true",
        help="CPU and wall from `perf stat` (task-clock with the processes each call starts, e.g. "
        "create's init; exact where rusage is tick-sampled) instead of rusage and the caller's clock",
    )
    a = ap.parse_args()
    if a.runtime:
        rts = {}
        for spec in a.runtime:
            name, eq, cmd = spec.partition("=")
            if not eq or not cmd:
                ap.error(f"--runtime {spec!r}: expected NAME=CMD")
            rts[name] = cmd.split()
    else:
        rts = {"runc": a.runc.split(), "oci-reference": a.ref.split()}
    work = tempfile.mkdtemp(prefix="oci-bench-")
    try:
        bundle = os.path.abspath(a.bundle) if a.bundle else os.path.join(work, "bundle")
        if not a.bundle:
            make_bundle(bundle)
        res = {name: {k: [] for k in KEYS} for name in rts}
        for i in range(a.n):
            order = list(rts.items()) if i % 2 == 0 else list(rts.items())[::-1]
            for name, base in order:
                root = ["--root", os.path.join(work, "root-" + name)]
                cid = f"b{i}"
                res[name]["run"].append(timed(base + root + ["run", "--bundle", bundle, cid + "r"], a.perf))
                c = timed(base + root + ["create", "--bundle", bundle, cid], a.perf)
                res[name]["state"].append(timed(base + root + ["state", cid], a.perf))
                s = timed(base + root + ["start", cid], a.perf)
                wait_stopped(base + root + ["state", cid])
                d = timed(base + root + ["delete", cid], a.perf)
                for k, v in (("create", c), ("start", s), ("delete", d)):
                    res[name][k].append(v)
                res[name]["c+s+d"].append(tuple(c[j] + s[j] + d[j] for j in (0, 1)))
                timed(base + root + ["create", "--bundle", bundle, cid + "k"], a.perf)
                res[name]["kill"].append(timed(base + root + ["kill", cid + "k", "KILL"], a.perf))
                wait_stopped(base + root + ["state", cid + "k"])
                timed(base + root + ["delete", cid + "k"], a.perf)
        print(f"median wall / CPU in ms over {a.n} interleaved iterations (load average {os.getloadavg()[0]:.1f})")
        print(f"{'':<10}" + "".join(f"{n:>22}" for n in rts) + f"{'wall':>8}{'CPU':>6} (ratio last/first)")
        for k in KEYS:
            walls = [statistics.median(w for w, _ in res[n][k]) for n in rts]
            cpus = [statistics.median(c for _, c in res[n][k]) for n in rts]
            cells = "".join(f"{w:>13.2f} /{c:>7.2f}" for w, c in zip(walls, cpus, strict=True))
            print(f"{k:<10}" + cells + f"{walls[-1] / walls[0]:>8.2f}{cpus[-1] / max(cpus[0], 1e-9):>6.2f}")
    finally:
        subprocess.run(["umount", "-R", work], stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
