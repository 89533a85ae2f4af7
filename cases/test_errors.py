"""Errors (runtime.md "Errors" and each operation): an operation that must fail exits non-zero
and leaves the environment as if it had never been attempted: no container (``state`` fails or
is unchanged), and no mount, process, cgroup or state-root entry added or removed
(:mod:`harness.traces`)."""

import pytest
from _errors import expect_create_error

from harness import traces
from harness.runtime import RuntimeCallError

pytestmark = pytest.mark.requires("root")


@pytest.fixture
def environment(runtime, tmp_path):
    """``environment(cid, bundle=None)``: a function taking a snapshot of what container ``cid``
    could leave behind (mounts under this case's folders and the state root, processes, cgroups
    named after the id, the state root's entries)."""

    def take(cid, bundle=None):
        return lambda: traces.snapshot(cid, folders=[tmp_path], state_root=runtime.state_root, bundle=bundle)

    return take


def assert_unchanged(before, take, what):
    changes = traces.changes_after(before, take)
    assert not changes, f"{what} changed the environment: {'; '.join(changes)}"


def unknown_id(container_id):
    return container_id() + "-never-created"


@pytest.mark.spec("runtime.query-state.unknown-id")
def test_state_of_unknown_container(runtime, container_id):
    with pytest.raises(RuntimeCallError):
        runtime.state(unknown_id(container_id))


@pytest.mark.spec("runtime.start.unknown-id", "runtime.errors.no-change")
def test_start_unknown_container(runtime, container_id, environment):
    cid = unknown_id(container_id)
    take = environment(cid)
    before = take()
    with pytest.raises(RuntimeCallError):
        runtime.start(cid)
    with pytest.raises(RuntimeCallError):
        runtime.state(cid)
    assert_unchanged(before, take, "the failed start of an unknown container")


@pytest.mark.spec("runtime.delete.unknown-id")
def test_delete_unknown_container(runtime, container_id):
    with pytest.raises(RuntimeCallError):
        runtime.delete(unknown_id(container_id))


@pytest.mark.spec("runtime.kill.unknown-id")
def test_kill_unknown_container(runtime, container_id):
    with pytest.raises(RuntimeCallError):
        runtime.kill(unknown_id(container_id), "TERM")


@pytest.mark.spec("runtime.create.id-not-unique", "runtime.state.id-unique", "runtime.errors.no-change")
def test_create_with_existing_id(runtime, bundle_factory, container_factory, environment):
    first = container_factory(bundle_factory("write", "/ran", "first"))
    first.create()
    before = first.state()
    second_bundle = bundle_factory("write", "/ran", "second")
    take = environment(first.id, second_bundle.path)
    env_before = take()
    second = container_factory(second_bundle, id=first.id)
    with pytest.raises(RuntimeCallError):
        second.create()
    assert_unchanged(env_before, take, "the failed create with an id in use")
    after = first.state()
    assert (after.status, after.pid, after.bundle) == (before.status, before.pid, before.bundle), (
        "the failed create changed the existing container"
    )
    first.start()
    first.wait()
    assert (first.bundle / "rootfs" / "ran").read_text() == "first"
    assert not (second_bundle.rootfs / "ran").exists(), "the second bundle's program ran"


@pytest.mark.spec("runtime.start.not-created", "runtime.errors.no-change")
def test_start_twice(runtime, bundle_factory, container_factory, environment):
    bundle = bundle_factory("write", "/ready", "1", "pause")
    c = container_factory(bundle)
    c.create()
    c.start()
    before = c.wait_status("running")
    c.wait_ready(bundle.rootfs / "ready")
    take = environment(c.id, c.bundle)
    env_before = take()
    with pytest.raises(RuntimeCallError):
        c.start()
    assert_unchanged(env_before, take, "the refused second start")
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
def test_delete_running_container(runtime, bundle_factory, container_factory, environment):
    c = container_factory(bundle_factory("pause"))
    c.create()
    c.start()
    before = c.wait_status("running")
    take = environment(c.id, c.bundle)
    env_before = take()
    with pytest.raises(RuntimeCallError):
        c.delete()
    assert_unchanged(env_before, take, "the refused delete of a running container")
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
@pytest.mark.spec(
    "runtime.query-state.requires-id",
    "runtime.start.requires-id",
    "runtime.kill.requires-id",
    "runtime.delete.requires-id",
)
def test_operation_without_id_fails(runtime, operation):
    proc = runtime.call(operation, check=False)
    assert proc.returncode != 0, f"`{operation}` with no container id exited 0; stdout {proc.stdout!r}"


@pytest.mark.spec("runtime.create.requires-bundle-and-id")
def test_create_without_id_fails(runtime, bundle_factory, tmp_path):
    bundle = bundle_factory("exit", "0")
    # stdio to files, not pipes: a create that wrongly succeeds leaves an init holding them open
    with open(tmp_path / "out", "wb") as out, open(tmp_path / "err", "wb") as err:
        proc = runtime.call("create", "--bundle", str(bundle.path), check=False, stdout=out, stderr=err)
    assert proc.returncode != 0, "create with no container id succeeded"


@pytest.mark.parametrize("bad_id", ["../escape", "a/b", ""])
@pytest.mark.spec("runtime.create.id-invalid", "runtime.errors.no-change")
def test_create_with_invalid_id_fails(runtime, bundle_factory, bad_id, tmp_path, environment):
    bundle = bundle_factory("write", "/ran", "yes")
    take = environment(bad_id, bundle.path)
    before = take()
    with open(tmp_path / "out", "wb") as out, open(tmp_path / "err", "wb") as err:
        proc = runtime.call("create", "--bundle", str(bundle.path), bad_id, check=False, stdout=out, stderr=err)
    try:
        assert proc.returncode != 0, f"create with the invalid id {bad_id!r} succeeded"
        assert_unchanged(before, take, f"the failed create with the invalid id {bad_id!r}")
        assert not (bundle.rootfs / "ran").exists()
    finally:
        if proc.returncode == 0:
            runtime.call("delete", "--force", bad_id, check=False)


@pytest.mark.spec("runtime.delete.not-stopped", "runtime.errors.no-change")
def test_delete_created_container_fails(runtime, bundle_factory, container_factory, environment):
    c = container_factory(bundle_factory("write", "/ran", "yes"))
    c.create()
    before = c.state()
    take = environment(c.id, c.bundle)
    env_before = take()
    with pytest.raises(RuntimeCallError):
        c.delete()
        pytest.fail(
            f"delete of a created container succeeded (status was {before.status!r}); it must fail and have no effect"
        )
    assert_unchanged(env_before, take, "the refused delete of a created container")
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
def test_create_with_missing_rootfs_fails(runtime, bundle_factory, container_factory, environment):
    bundle = bundle_factory("exit", "0", edit=lambda config: config["root"].__setitem__("path", "no-such-rootfs"))
    c = container_factory(bundle)
    take = environment(c.id, bundle.path)
    before = take()
    expect_create_error(c, "root.path names no-such-rootfs, which does not exist")
    assert_unchanged(before, take, "the failed create")
