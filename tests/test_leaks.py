"""harness.leaks: what carries a case's names is found, attributed and removed; nothing else."""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from harness import _linux, host, leaks

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mounts, cgroups)")


def _cgroup_mount():
    for m in host.mounts():
        if m.fstype in ("cgroup2", "cgroup") and os.access(m.mount_point, os.W_OK):
            return Path(m.mount_point)
    pytest.skip("no writable cgroup mount")


def test_a_mount_left_in_a_bundle_is_found_and_detached(tmp_path):
    bundle = tmp_path / "bundle"
    (bundle / "rootfs" / "proc").mkdir(parents=True)
    before = leaks.mount_points([str(bundle)])
    _linux.mount("tmpfs", str(bundle / "rootfs" / "proc"), "tmpfs", 0, "size=64k")
    found = leaks.find(
        ids=["nobody"],
        tokens=["nobody-" + uuid.uuid4().hex],
        bundles=[str(bundle)],
        state_roots=[],
        mounts_before=before,
    )
    assert [str(x) for x in found] == [f"mount {bundle / 'rootfs' / 'proc'}"]
    assert leaks.remove(found) == []
    assert not leaks.mount_points([str(bundle)])


def test_a_mount_made_before_the_case_is_not_a_leak(tmp_path):
    bundle = tmp_path / "bundle"
    (bundle / "rootfs").mkdir(parents=True)
    _linux.mount("tmpfs", str(bundle / "rootfs"), "tmpfs", 0, "size=64k")  # like an overlay bundle
    try:
        before = leaks.mount_points([str(bundle)])
        assert (
            leaks.find(
                ids=[], tokens=["x-" + uuid.uuid4().hex], bundles=[str(bundle)], state_roots=[], mounts_before=before
            )
            == []
        )
    finally:
        _linux.umount2(str(bundle / "rootfs"), _linux.MNT_DETACH)


def test_cgroup_folders_with_the_token_are_found_with_what_is_inside_deepest_first_and_removed():
    # a nested cgroupsPath oci-harness-<id>/inner: the container's own group carries no token,
    # and the parent cannot be removed while it is there (the leak seen after mutant runs)
    token = "hleaktest-" + uuid.uuid4().hex[:8]
    base = _cgroup_mount()
    parent = base / f"oci-harness-{token}"
    (parent / "inner" / "deeper").mkdir(parents=True)
    other = base / f"someone-else-{uuid.uuid4().hex[:8]}"
    (other / "inner").mkdir(parents=True)
    try:
        found = leaks.cgroup_folders([token])
        assert found == [parent / "inner" / "deeper", parent / "inner", parent], found  # not someone else's
        scanned = leaks.find(ids=[], tokens=[token], bundles=[], state_roots=[], mounts_before=set())
        assert [x.what for x in scanned] == [str(p) for p in found]
        assert leaks.remove(scanned) == []
        assert not parent.exists() and (other / "inner").is_dir()
    finally:
        for d in (parent / "inner" / "deeper", parent / "inner", parent, other / "inner", other):
            if d.exists():
                d.rmdir()


def test_processes_rooted_in_a_bundle_and_state_entries(tmp_path):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], cwd=bundle)
    state = tmp_path / "state"
    (state / "hx-1").mkdir(parents=True)
    (state / "hy-2").mkdir()
    try:
        found = leaks.find(
            ids=["hx-1"],
            tokens=["hx-1-" + uuid.uuid4().hex],
            bundles=[str(bundle)],
            state_roots=[state],
            mounts_before=set(),
        )
        assert [x.kind for x in found] == ["process", "state"], found
        assert f"pid {proc.pid} " in found[0].what
        assert leaks.remove(found) == []
        assert proc.wait(timeout=10) == -9
        assert not (state / "hx-1").exists() and (state / "hy-2").exists()
    finally:
        proc.kill()
        proc.wait()


def test_processes_naming_a_bundle_are_attributed_to_it(tmp_path):
    # runsc's sandbox and gofer keep neither root nor cwd in the bundle: their --bundle names it
    bundle, other = tmp_path / "bundle", tmp_path / "other"
    bundle.mkdir()
    other.mkdir()
    sleep = "import time; time.sleep(60)"
    ours = [
        subprocess.Popen([sys.executable, "-c", sleep, "--bundle", str(bundle)], cwd="/"),
        subprocess.Popen([sys.executable, "-c", sleep, f"--bundle={bundle}", "hx-1"], cwd="/"),
    ]
    theirs = subprocess.Popen([sys.executable, "-c", sleep, "--bundle", str(other)], cwd="/")
    try:
        found = leaks.processes([str(bundle)])
        assert sorted(pid for pid, _ in found if pid in {p.pid for p in [*ours, theirs]}) == sorted(
            p.pid for p in ours
        ), found
    finally:
        for p in [*ours, theirs]:
            p.kill()
            p.wait()


def test_host_values_a_runtime_changed_are_reported_and_restored():
    # in a private UTS and IPC namespace: this test must not change the machine it runs on
    code = (
        "from pathlib import Path; from harness import leaks\n"
        "before = leaks.host_state({'kernel.shm_rmid_forced'})\n"
        "Path('/proc/sys/kernel/hostname').write_text('changed-by-a-runtime')\n"
        "old = before['kernel.shm_rmid_forced'].strip()\n"
        "Path('/proc/sys/kernel/shm_rmid_forced').write_text('0' if old == '1' else '1')\n"
        "changed, problems = leaks.restore_host_state(before)\n"
        "assert problems == [], problems\n"
        "assert len(changed) == 2 and 'kernel.hostname' in changed[0] and 'kernel.shm_rmid_forced' in changed[1], changed\n"
        "assert leaks.host_state({'kernel.shm_rmid_forced'}) == before\n"
        "assert leaks.restore_host_state(before) == ([], [])\n"
    )
    p = subprocess.run(
        ["unshare", "--uts", "--ipc", sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        check=False,
    )
    assert p.returncode == 0, p.stderr


def test_a_mount_left_in_the_runtime_mount_namespace_is_found_and_never_reaches_the_host(tmp_path):
    bundle = tmp_path / "bundle"
    (bundle / "rootfs").mkdir(parents=True)
    held = leaks.RuntimeMountNamespace()
    try:
        assert held.changes([str(bundle)]) == []
        # what runc does without a mount namespace of the container's own: the rootfs bound
        # onto itself, in the namespace it runs in
        subprocess.run(
            ["mount", "--bind", str(bundle / "rootfs"), str(bundle / "rootfs")], preexec_fn=held.enter, check=True
        )
        changes = held.changes([str(bundle)])
        assert len(changes) == 1 and changes[0].startswith(f"{bundle / 'rootfs'} ("), changes
        assert not leaks.mount_points([str(bundle)]), "a mount in the held namespace reached ours"
        assert held.changes([str(tmp_path / "elsewhere")]) == [], "only the case's folders are looked at"
    finally:
        held.close()
    assert held.holder.returncode is not None


def test_host_devices_and_links_a_runtime_made_are_reported_and_removed():
    # in a private mount namespace (a tmpfs over /dev) and network namespace: this test must
    # not change the machine it runs on
    code = (
        "import os, subprocess\n"
        "from harness import _linux, leaks\n"
        "os.umask(0)\n"
        "_linux.mount('tmpfs', '/dev', 'tmpfs', 0, 'size=64k')\n"
        "os.mknod('/dev/null', 0o666 | 0o020000, os.makedev(1, 3))\n"
        "before = leaks.host_state(devices={'/dev/hx-dev', '/dev/null'}, links={'hxlink'})\n"
        "assert before['dev:/dev/hx-dev'] == 'absent' and before['link:hxlink'] == 'absent', before\n"
        "assert before['dev:/dev/null'].startswith('char 1:3 mode 666'), before\n"
        "os.mknod('/dev/hx-dev', 0o600 | 0o020000, os.makedev(1, 5))\n"
        "subprocess.run(['ip', 'link', 'add', 'hxlink', 'type', 'veth', 'peer', 'name', 'hxpeer'], check=True)\n"
        "changed, problems = leaks.restore_host_state(before)\n"
        "assert problems == [], problems\n"
        "assert any('host device /dev/hx-dev appeared (char 1:5' in c and '(removed)' in c for c in changed), changed\n"
        "assert any('host network link hxlink appeared' in c and '(deleted)' in c for c in changed), changed\n"
        "assert leaks.host_state(devices={'/dev/hx-dev', '/dev/null'}, links={'hxlink'}) == before\n"
        "os.chmod('/dev/null', 0o600)\n"
        "changed, problems = leaks.restore_host_state(before)\n"
        "assert any('host device /dev/null changed' in c for c in changed) and problems, (changed, problems)\n"
    )
    p = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "--net", sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        check=False,
    )
    assert p.returncode == 0, p.stderr


def test_a_daemonized_process_of_a_subreaper_is_found_among_its_own_descendants(tmp_path):
    # the plugin looks only at the worker's descendants: a runtime's process that double-forked
    # away from its parent is still one of them, because the worker is a child subreaper
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    was = _linux.is_child_subreaper()
    _linux.set_child_subreaper(True)
    pidfile = tmp_path / "pid"
    daemon = (
        "import os, time, sys\n"
        "if os.fork(): os._exit(0)\n"
        "os.setsid()\n"
        "if os.fork(): os._exit(0)\n"
        f"os.chdir({str(bundle)!r})\n"
        f"open({str(pidfile)!r} + '.tmp', 'w').write(str(os.getpid())); os.rename({str(pidfile)!r} + '.tmp', {str(pidfile)!r})\n"
        "time.sleep(60)\n"
    )
    pid = None
    try:
        subprocess.run([sys.executable, "-c", daemon], check=True)
        deadline = time.monotonic() + 30
        while not pidfile.exists() and time.monotonic() < deadline:  # the daemon's own readiness record
            time.sleep(0.01)
        pid = int(pidfile.read_text())
        assert pid in (leaks.descendants() or [pid])
        found = leaks.find(
            ids=["hx-1"],
            tokens=["hx-1-" + uuid.uuid4().hex],
            bundles=[str(bundle)],
            state_roots=[],
            mounts_before=set(),
            own_processes=True,
        )
        assert [x.what for x in found] == [f"pid {pid} ({' '.join([sys.executable, '-c', daemon]).strip()})"], found
        assert leaks.remove(found) == []
        os.waitpid(pid, 0)
        pid = None
    finally:
        if pid is not None:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        _linux.set_child_subreaper(was)


def test_a_cgroup_folder_with_the_token_deep_under_other_folders_is_found():
    # leaf cgroups are not listed (their link count says they hold no folder); folders that
    # hold folders are, down to CGROUP_DEPTH, wherever the token is
    token = "hleaktest-" + uuid.uuid4().hex[:8]
    base = _cgroup_mount()
    top = base / f"someone-{uuid.uuid4().hex[:8]}"
    deep = top / "mid" / f"x-{token}"
    (deep / "inner").mkdir(parents=True)
    (top / "leaf").mkdir()
    try:
        assert os.stat(top / "leaf").st_nlink in (1, 2)
        assert leaks.cgroup_folders([token]) == [deep / "inner", deep]
    finally:
        for d in (deep / "inner", deep, top / "mid", top / "leaf", top):
            if d.exists():
                d.rmdir()
