"""Property-based cases: generated configs, checked against what the probe sees.

Valid configs (hostname, env, args, cwd, uid/gid/groups, umask, rlimits, tmpfs and bind mounts
at generated paths, annotations) must be applied exactly; invalid ones (each breaking one rule
the runtime must enforce) must make create fail, say why, and leave nothing behind. A failure
is shrunk by hypothesis; the minimal config is printed with the falsifying example.
Few examples in CI (`oci-quick`, the same ones every run); many with ``--deep``.
"""

import copy
import itertools
import json
import os

import pytest
from _errors import left_no_container
from hypothesis import Phase, given, note, settings
from hypothesis import strategies as st

from harness import spec, traces
from harness.bundle import create_bundle
from harness.probe import parse_report
from harness.pytest_plugin import hypothesis_settings
from harness.runtime import Container, RuntimeCallError
from harness.strategies import INVALID, tokens, wishes

pytestmark = pytest.mark.requires("root")
_n = itertools.count()


@pytest.mark.spec(
    "runtime.lifecycle.create-environment",
    "runtime.create.applies-config",
    "runtime.lifecycle.run-user-program",
    "config.hostname.applied",
    "runtime.state.annotations",
)
@hypothesis_settings()
@given(wish=wishes())
def test_generated_config_is_applied(runtime, probe_binary, container_id, tmp_path, wish):
    n = next(_n)
    binds = {}
    for dest in wish.binds:
        src = tmp_path / f"bind{n}-{len(binds)}"
        src.mkdir()
        binds[dest] = str(src)
    applied = []

    def apply(c):
        wish.apply(c, binds)
        applied.append(c)

    # the wish goes into the one validated config.json write of the new bundle
    bundle = create_bundle(tmp_path / f"b{n}", readonly=False, probe_binary=probe_binary, edit=apply)
    (config,) = applied
    os.makedirs(bundle.rootfs / wish.cwd.lstrip("/"), mode=0o755, exist_ok=True)
    note("config.json: " + json.dumps(config))
    with Container(runtime, container_id(), bundle.path, tmp_path / "io") as c:
        c.create()
        state = c.state()
        c.start()
        end = c.wait()
        # code None: the runtime's process model hides the exit status (unknown), never a signal
        assert end.signal is None and end.code in (0, None), f"probe failed: {end}, stderr {c.stderr()!r}"
        report = parse_report(c.stdout())
    process = config["process"]
    assert report["hostname"] == wish.hostname, f"hostname: wanted {wish.hostname!r}, saw {report['hostname']!r}"
    assert report["argv"] == process["args"], "the process got other arguments than process.args"
    # environ (XBD 8.1) gives the order of its strings no meaning: the exact strings, in any order
    assert sorted(report["env"]) == sorted(process["env"]), "the environment is not exactly process.env"
    assert report["cwd"] == wish.cwd, f"cwd: wanted {wish.cwd!r}, saw {report['cwd']!r}"
    assert (report["uid"], report["euid"], report["gid"], report["egid"]) == (wish.uid, wish.uid, wish.gid, wish.gid)
    assert sorted(report["groups"]) == sorted(wish.groups), "supplementary groups are not exactly additionalGids"
    assert report["umask"] == wish.umask, f"umask: wanted {wish.umask:#o}, saw {report['umask']:#o}"
    for rl in wish.rlimits:
        seen = report["rlimits"][rl["type"]]
        assert (seen["soft"], seen["hard"]) == (rl["soft"], rl["hard"]), f"{rl['type']}: wanted {rl}, saw {seen}"
    mounts = {m["mount_point"]: m for m in report["mounts"]}
    for dest, size in wish.tmpfs:
        assert dest in mounts and mounts[dest]["fstype"] == "tmpfs", f"no tmpfs at {dest}"
        assert f"size={size}k" in mounts[dest]["super_options"], f"tmpfs at {dest}: {mounts[dest]['super_options']}"
    for dest in wish.binds:
        assert dest in mounts, f"no bind mount at {dest}"
        assert "ro" in mounts[dest]["options"], f"bind mount at {dest} is not read-only: {mounts[dest]['options']}"
    assert state.raw.get("annotations", {}) == wish.annotations


def _uses_token(mutation, config):
    """Whether ``mutation`` puts its token into ``config`` (a name it makes up): one that
    ignores it gives the same config for every token, so one example of it is all of them."""
    configs = []
    for token in ("aaa", "bbb"):
        configs.append(copy.deepcopy(config))
        mutation(configs[-1], token)
    return configs[0] != configs[1]


@pytest.fixture
def invalid_bundle(tmp_path, probe_binary):
    """One bundle for all the examples of a mutation: each writes its own config.json into it
    (its rootfs holds only the probe, which no refused create may run)."""
    bundle = create_bundle(
        tmp_path / "bundle", args=["/probe", "write", "/ran", "yes"], readonly=False, probe_binary=probe_binary
    )
    return bundle, bundle.config()


@pytest.mark.parametrize("name", sorted(INVALID))
@pytest.mark.spec("runtime.create.cannot-apply", "runtime.lifecycle.create-error", "runtime.errors.no-change")
# The generated part is a short token that only names things; a failure's config is already
# minimal (one rule broken), so shrinking the token would just rerun containers (~20 s).
@settings(hypothesis_settings(), phases=(Phase.explicit, Phase.reuse, Phase.generate))
@given(data=st.data())
def test_invalid_config_is_refused_and_leaves_nothing(runtime, invalid_bundle, container_id, tmp_path, name, data):
    # a mutation that ignores the token gives one config: hypothesis runs it once (st.just)
    bundle, pristine = invalid_bundle
    token = data.draw(tokens if _uses_token(INVALID[name], pristine) else st.just("-"), label="token")
    config = copy.deepcopy(pristine)
    INVALID[name](config, token)
    spec.dump(config, bundle.config_path)  # unvalidated on purpose: the runtime must be the one to refuse it
    note(f"mutation {name}; config.json: " + json.dumps(config))
    cid = container_id()

    # What a failed create could leave (mounts under this case's folders or the state root,
    # processes, cgroups named after the id, state-root entries); other workers' things are
    # not this case's business (harness.traces).
    def take():
        return traces.snapshot(cid, folders=[tmp_path], state_root=runtime.state_root, bundle=bundle.path)

    before = take()
    with Container(runtime, cid, bundle.path, tmp_path / "io") as c:
        with pytest.raises(RuntimeCallError) as err:
            c.create()
            pytest.fail(f"create accepted the invalid config ({name})")
        assert err.value.stderr.strip(), f"create refused the config ({name}) without saying why"
        assert left_no_container(c), f"state still knows container {cid} after its failed create ({name})"
        changes = traces.changes_after(before, take)
        assert not changes, f"the failed create changed the environment: {'; '.join(changes)}"
    assert not (bundle.rootfs / "ran").exists(), "the user program ran"
