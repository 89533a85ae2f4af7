"""State (runtime.md "State", "Query State"): what `state` reports about a container."""

import os
import re

import pytest

from harness import schema

pytestmark = pytest.mark.requires("root")

# Not under org.opencontainers: that key namespace is reserved for the spec (config.md#annotations).
ANNOTATIONS = {"com.example.harness.case": "state", "com.example.empty": ""}
SEMVER = re.compile(r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")


@pytest.fixture
def created(runtime, bundle_factory, container_factory):
    def annotate(config):
        config["annotations"] = dict(ANNOTATIONS)

    c = container_factory(bundle_factory("exit", "0", edit=annotate))
    c.create()
    return c


@pytest.mark.spec("runtime.state.oci-version", "runtime.query-state.returns-state")
def test_state_oci_version(created):
    raw = created.state().raw
    assert isinstance(raw.get("ociVersion"), str), f"ociVersion missing or not a string: {raw}"
    assert SEMVER.match(raw["ociVersion"]), f"ociVersion {raw['ociVersion']!r} is not SemVer"


@pytest.mark.spec("runtime.state.id")
def test_state_id(created):
    assert created.state().raw.get("id") == created.id


@pytest.mark.spec("runtime.state.status", "runtime.create.status-created")
def test_state_status_created(created):
    assert created.state().raw.get("status") == "created"


@pytest.mark.spec("runtime.state.pid")
def test_state_pid_is_the_host_pid(created):
    raw = created.state().raw
    pid = raw.get("pid")
    assert isinstance(pid, int) and pid > 0, f"pid missing or not a positive int: {raw}"
    assert pid == created.pid, f"state pid {pid} differs from the --pid-file pid {created.pid}"
    assert os.path.exists(f"/proc/{pid}"), f"no host process {pid}"


@pytest.mark.spec("runtime.state.bundle")
def test_state_bundle_is_absolute(created):
    raw = created.state().raw
    bundle = raw.get("bundle")
    assert isinstance(bundle, str), f"bundle missing: {raw}"
    assert os.path.isabs(bundle), f"bundle {bundle!r} is not absolute"
    assert os.path.realpath(bundle) == os.path.realpath(created.bundle)


@pytest.mark.spec("runtime.state.annotations")
def test_state_annotations(created):
    raw = created.state().raw
    assert raw.get("annotations") == ANNOTATIONS, (
        f"state annotations: expected {ANNOTATIONS}, got {raw.get('annotations', '(absent)')!r}"
    )


@pytest.mark.spec("runtime.state.annotations")
def test_state_without_annotations(runtime, bundle_factory, container_factory):
    c = container_factory(bundle_factory("exit", "0"))
    c.create()
    raw = c.state().raw
    # runtime.md#state: "If no annotations were provided then this property MAY either be
    # absent or an empty map." null is neither.
    assert "annotations" not in raw or raw["annotations"] == {}, (
        f"without annotations in the config, state annotations must be absent or an empty map, got {raw['annotations']!r}"
    )


@pytest.mark.spec("runtime.state.schema")
def test_state_types_follow_the_schema(runtime, bundle_factory, container_factory):
    c = container_factory(bundle_factory("pause"))
    c.create()
    for phase in ("created", "running"):
        if phase == "running":
            c.start()
            c.wait_status("running")
        raw = c.state().raw
        problems = [str(e) for e in schema.validate(raw, "state")]
        assert not problems, f"{phase}: the state breaks the spec's state schema: {problems}"
        assert isinstance(raw.get("ociVersion"), str) and SEMVER.match(raw["ociVersion"]), raw
        assert isinstance(raw.get("id"), str), raw
        assert raw.get("status") == phase, f"status {raw.get('status')!r}, expected {phase!r}: {raw}"
        assert isinstance(raw.get("pid"), int) and raw["pid"] > 0, f"{phase}: pid must be a positive int: {raw}"
        assert isinstance(raw.get("bundle"), str), raw
        ann = raw.get("annotations", {})
        assert isinstance(ann, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in ann.items()), (
            f"annotations must be a map of strings: {raw}"
        )
    c.kill("KILL")
    c.wait()
