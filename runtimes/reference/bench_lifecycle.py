#!/usr/bin/python3
"""Side-by-side lifecycle latency: runc vs oci-reference, interleaved, medians.

    /usr/bin/python3 runtimes/reference/bench_lifecycle.py [-n 30] [--ref CMD] [--runc CMD]

Builds a bundle whose rootfs holds one static binary (needs `cc -static`), then for each
iteration times, with time.perf_counter_ns around each subprocess call (no shell):
  run      create+start+wait+delete in one call
  create / start / delete, and their sum (create+start+delete; the process exits at once,
           the harness-style wait for `stopped` is not included in the sum)
Runtimes alternate every iteration so drift affects both alike.
"""

import argparse
import json
import os
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


def timed(cmd):
    # stderr to a file, not a pipe: after `create` the container keeps its stdio open
    with tempfile.TemporaryFile() as err:
        t = time.perf_counter_ns()
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        dt = (time.perf_counter_ns() - t) / 1e6
        if r.returncode != 0:
            err.seek(0)
            sys.exit(f"failed: {' '.join(cmd)}: {err.read().decode().strip()}")
    return dt


def wait_stopped(cmd):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        r = subprocess.run(cmd, capture_output=True)
        if r.returncode == 0 and json.loads(r.stdout)["status"] == "stopped":
            return
        time.sleep(0.002)
    sys.exit("container did not stop")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=30)
    ap.add_argument("--ref", default=os.path.join(HERE, "bin", "oci-reference"))
    ap.add_argument("--runc", default=shutil.which("runc") or "/usr/sbin/runc")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="oci-bench-")
    try:
        bundle = os.path.join(work, "bundle")
        make_bundle(bundle)
        rts = {"runc": a.runc.split(), "oci-reference": a.ref.split()}
        res = {name: {"run": [], "create": [], "start": [], "delete": [], "c+s+d": []} for name in rts}
        for i in range(a.n):
            for name, base in rts.items():
                root = ["--root", os.path.join(work, "root-" + name)]
                cid = f"b{i}"
                res[name]["run"].append(timed(base + root + ["run", "--bundle", bundle, cid + "r"]))
                c = timed(base + root + ["create", "--bundle", bundle, cid])
                s = timed(base + root + ["start", cid])
                wait_stopped(base + root + ["state", cid])
                d = timed(base + root + ["delete", cid])
                for k, v in (("create", c), ("start", s), ("delete", d), ("c+s+d", c + s + d)):
                    res[name][k].append(v)
        print(f"median latency in ms over {a.n} interleaved iterations")
        print(f"{'':<10}" + "".join(f"{n:>16}" for n in rts) + f"{'ratio':>10}")
        for k in ("run", "create", "start", "delete", "c+s+d"):
            meds = [statistics.median(res[n][k]) for n in rts]
            print(f"{k:<10}" + "".join(f"{m:>16.2f}" for m in meds) + f"{meds[1] / meds[0]:>10.2f}")
    finally:
        subprocess.run(["umount", "-R", work], stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
