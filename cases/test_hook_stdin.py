"""Hooks that do not read their stdin (config.md, POSIX-platform Hooks; runtime.md, Lifecycle).

The runtime MUST pass the container's state to every hook on its stdin; nothing obliges a hook
to read it. A hook that exits without reading closes the pipe under the runtime's write: a
runtime that does not expect EPIPE (or dies of SIGPIPE) breaks the operation, and a ``delete``
killed that way leaves a stopped container behind. The state here carries a large annotation,
so it does not fit the pipe's buffer and the write meets the closed pipe every time, instead of
once in a while on a busy machine.
"""

from __future__ import annotations

import json
import shutil

import pytest

from harness.runtime import RuntimeCallError

#: hooks that run in the runtime's namespaces, where a host program can be named by its path
KINDS = ("createRuntime", "poststart", "poststop")
#: bigger than a pipe's default buffer (64 KiB), so the runtime's write of the state blocks
BIG = "x" * (256 * 1024)


def _hooked(bundle_factory, tmp_path, kinds=KINDS):
    true = shutil.which("true")
    sh = shutil.which("sh")
    if true is None or sh is None:
        pytest.skip("needs true and sh on the host")
    records = tmp_path / "hook-records"
    records.mkdir()

    def edit(config):
        config.setdefault("annotations", {})["org.oci-harness.big"] = BIG
        config["hooks"] = {
            kind: [
                {"path": true, "args": ["true"]},  # exits at once, never reads its stdin
                {"path": true, "args": ["true"]},
                # then one that reads: the lifecycle went on, and this hook got the state
                {"path": sh, "args": ["sh", "-c", f'cat > "{records}/{kind}"']},
            ]
            for kind in kinds
        }

    return bundle_factory("write", "/ready", "1", "exit", "0", edit=edit), records


def run_and_delete(c, hooks):
    """Run ``c`` to stopped, then delete it: the delete must not fail on ``hooks`` that did not
    read their stdin. The container."""
    c.create()
    c.start()
    c.wait()
    c.wait_status("stopped")
    try:
        c.delete()
    except RuntimeCallError as err:
        pytest.fail(f"delete failed when {hooks} did not read their stdin (SIGPIPE is exit code 141 or -13): {err}")
    return c


@pytest.mark.spec("config.hooks.state-stdin", "runtime.lifecycle.poststop-invoked")
def test_hooks_not_reading_stdin_do_not_break_the_lifecycle(runtime, bundle_factory, container_factory, tmp_path):
    bundle, records = _hooked(bundle_factory, tmp_path)
    c = run_and_delete(container_factory(bundle), "hooks")
    state = None
    try:
        state = c.state()
    except RuntimeCallError:
        pass
    assert state is None, f"the container still exists after delete: {state.raw if state else None}"
    for kind in KINDS:
        path = records / kind
        assert path.exists(), f"the {kind} hook after two that did not read their stdin never ran"
        seen = json.loads(path.read_text())
        assert seen.get("id") == c.id and seen.get("annotations", {}).get("org.oci-harness.big") == BIG, (
            f"the {kind} hook that read its stdin did not get the whole state: {path.read_text()[:200]!r}"
        )


@pytest.mark.spec("config.hooks.state-stdin", "runtime.delete.removes-resources")
def test_poststop_hooks_not_reading_stdin_do_not_break_delete(runtime, bundle_factory, container_factory, tmp_path):
    """Only poststop hooks, so create and start cannot fail on them: what a runtime's ``delete``
    does when the write of the state meets a hook that has already exited. A ``delete`` killed
    by SIGPIPE leaves the stopped container behind (reported by the leak check too)."""
    bundle, records = _hooked(bundle_factory, tmp_path, kinds=("poststop",))
    c = run_and_delete(container_factory(bundle), "poststop hooks")
    path = records / "poststop"
    assert path.exists(), "the poststop hook after two that did not read their stdin never ran"
    assert json.loads(path.read_text()).get("id") == c.id, f"the poststop hook got {path.read_text()[:200]!r}"
