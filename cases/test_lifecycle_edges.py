"""Lifecycle edges (runtime.md "State", "Lifecycle", "Delete"): the status of a container whose
process has exited but is not yet reaped, and the poststop hooks of a forced delete."""

import json
import os
import signal
import subprocess
import time

import _hooks
import pytest

from harness.runtime import process

pytestmark = pytest.mark.requires("root")


def proc_state(pid):
    stat = process.stat(pid)
    return stat.state if stat else None


@pytest.mark.spec("runtime.state.status-stopped")
def test_exited_but_unreaped_process_is_stopped(runtime, bundle_factory, container_factory):
    """'stopped': the container process has exited. A zombie has exited, whoever reaps it later.
    Runtime calls through the adapter reap the harness's children, so `state` is called here
    with a plain subprocess while the container's process is kept a zombie."""
    bundle = bundle_factory("write", "/ready", "1", "pause")
    c = container_factory(bundle)
    c.create()
    c.start()
    c.wait_ready(bundle.rootfs / "ready")
    os.kill(c.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while proc_state(c.pid) != "Z":
        assert time.monotonic() < deadline, (
            f"the container process {c.pid} did not exit after SIGTERM (state {proc_state(c.pid)})"
        )
        time.sleep(0.005)
    out = subprocess.run(
        runtime.argv("state", c.id),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        preexec_fn=runtime.preexec_fn,
    )
    assert proc_state(c.pid) == "Z", "the process was reaped during the state call: the case cannot tell"
    assert out.returncode == 0, f"state failed: {out.stderr}"
    status = json.loads(out.stdout).get("status")
    assert status == "stopped", (
        f"the container's process has exited (a zombie not yet reaped), yet the status is {status!r}"
    )
    c.wait()


@pytest.mark.spec("runtime.lifecycle.poststop-invoked", "config.hooks.poststop.during-delete")
def test_forced_delete_of_running_container_runs_poststop(runtime, bundle_factory, container_factory, tmp_path):
    bundle = bundle_factory("write", "/ready", "1", "pause")
    setup = _hooks.install(bundle, tmp_path)
    entry = _hooks.hook_entry(setup, "poststop", 0)
    bundle.edit(lambda config: config.__setitem__("hooks", {"poststop": [entry]}))
    c = container_factory(bundle)
    c.create()
    c.start()
    c.wait_ready(bundle.rootfs / "ready")
    c.delete(force=True)
    labels = setup.labels()
    assert labels == ["poststop-0"], (
        f"delete --force of a running container must run its poststop hook (lifecycle step 13); the log holds {labels}"
    )


@pytest.mark.spec("runtime.state.status-stopped", "runtime.kill.sends-signal")
def test_container_killed_before_start_is_stopped(runtime, bundle_factory, container_factory):
    c = container_factory(bundle_factory("exit", "0"))
    c.create()
    c.kill("KILL")
    c.wait()
    status = c.state().status
    assert status == "stopped", f"a created container whose process was killed is {status!r}, expected stopped"


@pytest.mark.spec("runtime.kill.sends-signal")
def test_kill_with_a_realtime_signal_name(runtime, bundle_factory, container_factory):
    """Signal names are the runtime's to define; a name it accepts must send that signal. No
    pid namespace: its init would ignore a signal it has no handler for."""
    from harness import spec
    from harness.runtime import RuntimeCallError

    bundle = bundle_factory(
        "write", "/ready", "1", "pause", edit=lambda config: spec.set_namespace(config, "pid", present=False)
    )
    c = container_factory(bundle)
    c.create()
    c.start()
    c.wait_ready(bundle.rootfs / "ready")
    rtmin = signal.SIGRTMIN
    try:
        c.kill("RTMIN+2")
    except RuntimeCallError as err:
        pytest.skip(f"{runtime.name} does not accept the signal name RTMIN+2: {err}")
    end = c.wait()
    assert end.signal == rtmin + 2, f"kill RTMIN+2: the process should die of signal {rtmin + 2}, it ended with {end}"


@pytest.mark.spec("config.hooks.args")
def test_hook_gets_its_args_including_args0(runtime, bundle_factory, container_factory, tmp_path):
    """args[0] is passed as given (execv semantics), not replaced by the hook's path."""
    bundle = bundle_factory("exit", "0")
    setup = _hooks.install(bundle, tmp_path)
    entry = _hooks.hook_entry(setup, "prestart", 0, "second", "third")
    bundle.edit(lambda config: config.__setitem__("hooks", {"prestart": [entry]}))
    c = container_factory(bundle)
    c.create()
    records = setup.records()
    assert len(records) == 1, f"expected one prestart hook run, the log holds {[r['argv'] for r in records]}"
    assert records[0]["argv"] == entry["args"], (
        f"the hook got argv {records[0]['argv']}, configured args {entry['args']} (path {entry['path']})"
    )
