"""Lifecycle (runtime.md "Lifecycle", "Create", "Start", "Kill", "Delete"): create builds the
container without running the user program; start runs it; kill signals it; delete removes it."""

import contextlib
import os
import signal
import subprocess

import pytest
from _cgroups import controller_mounts

from harness import host
from harness.runtime import RuntimeCallError, process

pytestmark = pytest.mark.requires("root")


@pytest.mark.spec(
    "runtime.lifecycle.no-user-program-at-create",
    "runtime.create.args-not-applied",
    "runtime.create.status-created",
    "runtime.lifecycle.run-user-program",
)
def test_create_does_not_run_user_program(runtime, bundle_factory, container_factory):
    bundle = bundle_factory("write", "/ran", "yes")
    marker = bundle.rootfs / "ran"
    c = container_factory(bundle)
    c.create()
    state = c.state()
    assert state.status == "created"
    assert state.pid is not None, f"a created container has a pid on Linux; state was {state.raw}"
    assert os.path.exists(f"/proc/{state.pid}"), f"the container's process {state.pid} does not exist"
    assert not marker.exists(), "the user program ran at create"
    c.start()
    c.wait()
    assert marker.read_text() == "yes", "the user program did not run after start"


@pytest.mark.spec("runtime.start.runs-program", "runtime.scope.operations", "runtime.operations.supported")
def test_start_makes_it_running(runtime, bundle_factory, container_factory):
    bundle = bundle_factory("write", "/ready", "1", "pause")
    c = container_factory(bundle)
    c.create()
    c.start()
    state = c.wait_status("running")
    assert state.pid == c.pid, "the pid changed between create and start"
    c.wait_ready(bundle.rootfs / "ready")
    c.kill("TERM")
    c.wait()


@pytest.mark.spec("runtime.state.status-stopped")
def test_exited_process_is_stopped(runtime, bundle_factory, container_factory):
    c = container_factory(bundle_factory("exit", "7"))
    c.create()
    c.start()
    end = c.wait()
    assert end.code in (7, None), f"expected exit status 7, got {end}"
    c.wait_status("stopped")


def kill_the_paused_probe(bundle_factory, container_factory, sig):
    """Start a probe that pauses once ready (printing the signal that ends the pause), send it
    ``sig`` through the runtime's kill; the container and how its process ended."""
    bundle = bundle_factory("write", "/ready", "1", "pause")
    c = container_factory(bundle)
    c.create()
    c.start()
    # The probe's ready mark, not a "running" status, says it can take the signal: before the
    # probe runs, a SIGTERM to the namespace's pid 1 without a handler is discarded by the
    # kernel, and the probe would pause for ever. (That start makes it running is
    # test_start_makes_it_running's to check.)
    c.wait_ready(bundle.rootfs / "ready")
    c.kill(sig)
    return c, c.wait()


@pytest.mark.spec("runtime.kill.sends-signal", "runtime.state.status-stopped")
def test_kill_term_reaches_the_process(runtime, bundle_factory, container_factory):
    c, end = kill_the_paused_probe(bundle_factory, container_factory, "TERM")
    assert c.stdout() == "SIGTERM\n", f"the process did not report SIGTERM; stdout {c.stdout()!r}"
    assert end.code in (0, None)
    c.wait_status("stopped")


@pytest.mark.spec("runtime.kill.sends-signal", "runtime.state.status-stopped")
def test_kill_kill_stops_the_process(runtime, bundle_factory, container_factory):
    c = container_factory(bundle_factory("sleep", "600"))
    c.create()
    c.start()
    c.wait_status("running")
    c.kill("KILL")
    end = c.wait(timeout=10)
    assert end.signal in (signal.SIGKILL, None), f"expected death by SIGKILL, got {end}"
    c.wait_status("stopped")


@pytest.mark.spec("runtime.kill.sends-signal")
def test_kill_usr1_reaches_the_process(runtime, bundle_factory, container_factory):
    c, _end = kill_the_paused_probe(bundle_factory, container_factory, "USR1")
    assert c.stdout() == "SIGUSR1\n"


@pytest.mark.spec("runtime.delete.removes-resources", "runtime.lifecycle.destroy")
def test_delete_removes_the_container(runtime, bundle_factory, container_factory):
    c = container_factory(bundle_factory("exit", "0"))
    c.create()
    c.start()
    c.wait()
    c.wait_status("stopped")
    c.delete()
    with pytest.raises(RuntimeCallError):
        runtime.state(c.id)


@pytest.mark.spec("runtime.delete.removes-resources", "runtime.lifecycle.destroy")
def test_delete_created_container(runtime, bundle_factory, container_factory):
    c = container_factory(bundle_factory("write", "/ran", "yes"))
    c.create()
    pid = c.pid
    c.delete(force=True)
    with pytest.raises(RuntimeCallError):
        runtime.state(c.id)
    assert not process.alive(pid), f"the container's process {pid} is still alive after delete"
    assert not (c.bundle / "rootfs" / "ran").exists(), "the user program ran although the container was never started"


@pytest.mark.spec("runtime.lifecycle.config-changes-ignored")
def test_config_changes_after_create_do_not_apply(runtime, bundle_factory, container_factory):
    bundle = bundle_factory("hostname", edit=lambda config: config.__setitem__("hostname", "before-create"))
    c = container_factory(bundle)
    c.create()

    def change(config):
        config["hostname"] = "after-create"
        config["process"]["args"] = ["/probe", "write", "/changed", "yes"]

    bundle.edit(change)
    c.start()
    c.wait()
    assert c.stdout() == "before-create\n", f"the container followed the edited config.json: stdout {c.stdout()!r}"
    assert not (bundle.rootfs / "changed").exists(), "the edited process.args ran"


@pytest.mark.spec("runtime.delete.only-own-resources")
def test_delete_leaves_bind_mounted_host_folder(runtime, bundle_factory, container_factory, tmp_path):
    shared = tmp_path / "host-folder"
    shared.mkdir()
    (shared / "keep").write_text("host data")

    def bind(config):
        config["mounts"].append(
            {"destination": "/shared", "type": "bind", "source": str(shared), "options": ["rbind", "rw"]}
        )

    c = container_factory(bundle_factory("write", "/shared/from-container", "x", edit=bind))
    c.create()
    c.start()
    c.wait()
    c.wait_status("stopped")
    c.delete()
    assert (shared / "keep").read_text() == "host data", "delete removed a host file it did not create"
    assert (shared / "from-container").read_text() == "x"
    assert str(shared) not in {m.mount_point for m in host.mounts()}, "a container mount leaked into the host"


@pytest.mark.spec("runtime.delete.only-own-resources")
def test_delete_leaves_a_cgroup_parent_it_did_not_create(runtime, bundle_factory, container_factory, container_id):
    """runtime.md "Delete": resources associated with the container but not created by it MUST
    NOT be deleted. The case makes a cgroup folder on every hierarchy before create and gives
    the container a cgroupsPath inside it: delete may remove the container's own cgroup (it
    made it), never the folder above it. The case removes its folders itself."""
    name = f"oci-harness-{container_id()}"
    made = [mount / name for mount in controller_mounts().values()]
    try:
        for folder in made:
            folder.mkdir()
            for control in ("cpuset.cpus", "cpuset.mems"):  # a v1 cpuset is usable once these are set
                if (folder / control).exists():
                    (folder / control).write_text((folder.parent / control).read_text())
        c = container_factory(
            bundle_factory(
                "exit", "0", edit=lambda config: config["linux"].__setitem__("cgroupsPath", f"/{name}/inner")
            )
        )
        c.create()
        c.start()
        c.wait()
        c.wait_status("stopped")
        c.delete()
        removed = [str(folder) for folder in made if not folder.is_dir()]
        assert not removed, (
            f"delete removed cgroup folders that existed before create (the container's cgroupsPath was inside them): {removed}"
        )
    finally:
        for folder in [f / "inner" for f in made] + made:  # what delete left of the container's, then the case's
            with contextlib.suppress(OSError):
                folder.rmdir()


@pytest.mark.spec("runtime.delete.id-reusable")
def test_id_can_be_reused_after_delete(runtime, bundle_factory, container_factory):
    first = container_factory(bundle_factory("exit", "0"))
    first.create()
    first.delete(force=True)
    second = container_factory(bundle_factory("hostname"), id=first.id)
    second.create()
    second.start()
    second.wait()
    assert second.stdout() == "oci-harness\n"


@pytest.mark.spec("runtime.create.applies-config", "runtime.lifecycle.create-environment")
def test_config_is_applied_at_create(runtime, bundle_factory, container_factory):
    def configure(config):
        config["hostname"] = "applied-at-create"
        config["mounts"].append({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]})

    c = container_factory(bundle_factory("exit", "0", edit=configure))
    c.create()
    pid = c.state().pid
    seen = subprocess.run(
        ["nsenter", "--target", str(pid), "--uts", "hostname"], capture_output=True, text=True, timeout=10
    )
    assert seen.stdout.strip() == "applied-at-create", (
        f"hostname of the created container: {seen.stdout!r} {seen.stderr!r}"
    )
    mounts = {m.mount_point: m.fstype for m in host.mounts(pid)}
    assert mounts.get("/scratch") == "tmpfs", (
        f"the configured tmpfs is not mounted at create; mount points: {sorted(mounts)}"
    )
    assert mounts.get("/proc") == "proc", "/proc is not mounted at create"
