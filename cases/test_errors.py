"""Errors (runtime.md "Errors" and each operation): an operation that must fail exits non-zero
and leaves the environment as if it had never been attempted."""

import pytest

from harness.runtime import RuntimeCallError

pytestmark = pytest.mark.requires("root")


def unknown_id(container_id):
    return container_id() + "-never-created"


@pytest.mark.spec("runtime.query-state.unknown-id")
def test_state_of_unknown_container(runtime, container_id):
    with pytest.raises(RuntimeCallError):
        runtime.state(unknown_id(container_id))


@pytest.mark.spec("runtime.start.unknown-id", "runtime.errors.no-change")
def test_start_unknown_container(runtime, container_id):
    cid = unknown_id(container_id)
    with pytest.raises(RuntimeCallError):
        runtime.start(cid)
    with pytest.raises(RuntimeCallError):
        runtime.state(cid)


@pytest.mark.spec("runtime.delete.unknown-id")
def test_delete_unknown_container(runtime, container_id):
    with pytest.raises(RuntimeCallError):
        runtime.delete(unknown_id(container_id))


@pytest.mark.spec("runtime.kill.unknown-id")
def test_kill_unknown_container(runtime, container_id):
    with pytest.raises(RuntimeCallError):
        runtime.kill(unknown_id(container_id), "TERM")


@pytest.mark.spec("runtime.create.id-not-unique", "runtime.state.id-unique", "runtime.errors.no-change")
def test_create_with_existing_id(runtime, bundle_factory, container_factory):
    first = container_factory(bundle_factory("write", "/ran", "first"))
    first.create()
    before = first.state()
    second_bundle = bundle_factory("write", "/ran", "second")
    second = container_factory(second_bundle, id=first.id)
    with pytest.raises(RuntimeCallError):
        second.create()
    after = first.state()
    assert (after.status, after.pid, after.bundle) == (before.status, before.pid, before.bundle), "the failed create changed the existing container"
    first.start()
    first.wait()
    assert (first.bundle / "rootfs" / "ran").read_text() == "first"
    assert not (second_bundle.rootfs / "ran").exists(), "the second bundle's program ran"


@pytest.mark.spec("runtime.start.not-created", "runtime.errors.no-change")
def test_start_twice(runtime, bundle_factory, container_factory):
    bundle = bundle_factory("write", "/ready", "1", "pause")
    c = container_factory(bundle)
    c.create()
    c.start()
    before = c.wait_status("running")
    c.wait_ready(bundle.rootfs / "ready")
    with pytest.raises(RuntimeCallError):
        c.start()
    after = c.state()
    assert (after.status, after.pid) == ("running", before.pid), f"the second start changed the container: {after.raw}"
    c.kill("TERM")
    c.wait()
    assert c.stdout() == "SIGTERM\n", "the process was disturbed by the second start"


@pytest.mark.spec("runtime.start.not-created")
def test_start_stopped_container(runtime, bundle_factory, container_factory):
    c = container_factory(bundle_factory("exit", "0"))
    c.create()
    c.start()
    c.wait()
    c.wait_status("stopped")
    with pytest.raises(RuntimeCallError):
        c.start()
    assert c.state().status == "stopped"


@pytest.mark.spec("runtime.delete.not-stopped", "runtime.errors.no-change")
def test_delete_running_container(runtime, bundle_factory, container_factory):
    c = container_factory(bundle_factory("pause"))
    c.create()
    c.start()
    before = c.wait_status("running")
    with pytest.raises(RuntimeCallError):
        c.delete()
    after = c.state()
    assert (after.status, after.pid) == ("running", before.pid)


@pytest.mark.spec("runtime.kill.not-created-or-running")
def test_kill_stopped_container(runtime, bundle_factory, container_factory):
    c = container_factory(bundle_factory("exit", "0"))
    c.create()
    c.start()
    c.wait()
    c.wait_status("stopped")
    with pytest.raises(RuntimeCallError):
        c.kill("TERM")
    assert c.state().status == "stopped"


@pytest.mark.parametrize("operation", ["state", "start", "kill", "delete"])
@pytest.mark.spec("runtime.query-state.requires-id", "runtime.start.requires-id", "runtime.kill.requires-id", "runtime.delete.requires-id")
def test_operation_without_id_fails(runtime, operation):
    proc = runtime.call(operation, check=False)
    assert proc.returncode != 0, f"`{operation}` with no container id exited 0; stdout {proc.stdout!r}"


@pytest.mark.spec("runtime.create.requires-bundle-and-id")
def test_create_without_id_fails(runtime, bundle_factory):
    bundle = bundle_factory("exit", "0")
    proc = runtime.call("create", "--bundle", str(bundle.path), check=False)
    assert proc.returncode != 0, "create with no container id succeeded"


@pytest.mark.parametrize("bad_id", ["../escape", "a/b", ""])
@pytest.mark.spec("runtime.create.id-invalid", "runtime.errors.no-change")
def test_create_with_invalid_id_fails(runtime, bundle_factory, bad_id, tmp_path):
    bundle = bundle_factory("write", "/ran", "yes")
    before = sorted(p.name for p in runtime.state_root.iterdir()) if runtime.state_root.exists() else []
    proc = runtime.call("create", "--bundle", str(bundle.path), bad_id, check=False, stdout=open(tmp_path / "out", "wb"), stderr=open(tmp_path / "err", "wb"))
    try:
        assert proc.returncode != 0, f"create with the invalid id {bad_id!r} succeeded"
        after = sorted(p.name for p in runtime.state_root.iterdir()) if runtime.state_root.exists() else []
        assert after == before, f"the failed create left state behind: {sorted(set(after) - set(before))}"
        assert not (bundle.rootfs / "ran").exists()
    finally:
        if proc.returncode == 0:
            runtime.call("delete", "--force", bad_id, check=False)


@pytest.mark.spec("runtime.delete.not-stopped", "runtime.errors.no-change")
def test_delete_created_container_fails(runtime, bundle_factory, container_factory):
    c = container_factory(bundle_factory("write", "/ran", "yes"))
    c.create()
    before = c.state()
    with pytest.raises(RuntimeCallError):
        c.delete()
    after = c.state()
    assert (after.status, after.pid) == ("created", before.pid), f"deleting a created container changed it: {after.raw}"
    c.start()
    c.wait()
    assert (c.bundle / "rootfs" / "ran").read_text() == "yes", "the container no longer runs after the refused delete"


@pytest.mark.spec("runtime.kill.not-created-or-running", "runtime.errors.no-change")
def test_kill_created_container_is_allowed(runtime, bundle_factory, container_factory):
    c = container_factory(bundle_factory("pause"))
    c.create()
    c.kill("KILL")
    c.wait(timeout=10)
    c.wait_status("stopped")


@pytest.mark.spec("runtime.start.no-process")
def test_start_without_process_fails(runtime, bundle_factory, container_factory):
    bundle = bundle_factory("exit", "0", edit=lambda config: config.pop("process"))
    c = container_factory(bundle)
    try:
        c.create()
    except RuntimeCallError:
        return  # refusing at create is allowed: process MAY be applied there
    with pytest.raises(RuntimeCallError):
        c.start()


@pytest.mark.spec("runtime.lifecycle.create-error", "runtime.create.cannot-apply", "runtime.errors.no-change")
def test_create_with_missing_rootfs_fails(runtime, bundle_factory, container_factory):
    bundle = bundle_factory("exit", "0", edit=lambda config: config["root"].__setitem__("path", "no-such-rootfs"))
    c = container_factory(bundle)
    with pytest.raises(RuntimeCallError):
        c.create()
    with pytest.raises(RuntimeCallError):
        runtime.state(c.id)
