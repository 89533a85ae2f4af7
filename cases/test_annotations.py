"""Annotations, extensibility and valid values (config.md "Annotations", "Extensibility", "Valid
values"): unknown annotation keys and unknown properties are ignored, never an error; invalid
values are an error."""

import pytest
from _errors import expect_error, expect_no_error

from harness.probe import parse_report
from harness.runtime import RuntimeCallError

pytestmark = pytest.mark.requires("root")


# Keys a runtime does not know. None under org.opencontainers: config.md#annotations reserves
# that namespace for the spec ("annotations using keys in this namespace MUST be as described
# in this section"), so a runtime may refuse one it does not know.
ANNOTATIONS = {
    "com.example.never-heard-of-it": "x",
    "io.example.image.os": "linux",
    "com.example.structured": '{"a": [1, 2]}',
    "com.example.empty-value": "",
    "example.com/with-a-slash": "kubernetes-style key",
    "com.example.ünïcode": "välue",
}


@pytest.mark.spec("config.annotations.unknown-keys", "runtime.state.annotations")
def test_unknown_annotation_keys_are_accepted(runtime, bundle_factory, container_factory):
    c = container_factory(bundle_factory("exit", "0", edit=lambda config: config.update(annotations=dict(ANNOTATIONS))))
    try:
        c.create()
    except RuntimeCallError as err:
        pytest.fail(f"unknown annotation keys must not be an error; create failed: {err}")
    got = c.state().raw.get("annotations")
    assert got == ANNOTATIONS, f"state annotations: expected {ANNOTATIONS}, got {got}"
    c.start()
    end = c.wait()
    assert end.code in (0, None), f"the process exited {end}"


def add_unknown_properties(config):
    config["org.example.unknownTopLevel"] = {"nested": [1, {"deeper": True}]}
    config["process"]["unknownProcessField"] = "ignored"
    config["process"]["user"]["unknownUserField"] = 7
    config["process"]["capabilities"]["unknownSet"] = ["CAP_SYS_ADMIN"]
    config["process"]["rlimits"][0]["unknownRlimitField"] = 1
    config["root"]["unknownRootField"] = False
    config["mounts"][0]["unknownMountField"] = "x"
    config["linux"]["unknownLinuxField"] = {"a": 1}


# What the process sees; unknown properties must change none of it.
OBSERVED = (
    "uid",
    "gid",
    "groups",
    "umask",
    "cwd",
    "env",
    "rlimits",
    "capabilities",
    "no_new_privs",
    "hostname",
    "oom_score_adj",
)


@pytest.mark.spec("config.extensibility.ignore-unknown")
def test_unknown_properties_are_ignored(runtime, bundle_factory, container_factory):
    plain = container_factory(bundle_factory("report"))
    plain.create()
    plain.start()
    plain.wait()
    bundle = bundle_factory("report")
    bundle.edit(add_unknown_properties, validate=False)
    c = container_factory(bundle)
    expect_no_error(c, "unknown properties must be ignored, not an error")
    end = c.wait()
    assert end.code in (0, None), f"the process exited {end}: {c.stderr()!r}"
    expected, got = parse_report(plain.stdout()), parse_report(c.stdout())
    # the environment is compared as a set of strings: environ (XBD 8.1) gives their order no meaning
    for report in (expected, got):
        report["env"] = sorted(report["env"])
    changed = {key: {"without": expected[key], "with": got[key]} for key in OBSERVED if expected[key] != got[key]}
    assert not changed, f"unknown properties changed what the process sees: {changed}"


def _set(path, value):
    def change(config):
        *parents, last = path
        node = config
        for key in parents:
            node = node[key]
        node[last] = value

    return change


INVALID = [
    pytest.param(_set(("process", "terminal"), "no"), id="terminal-string"),
    pytest.param(_set(("process", "user", "uid"), "root"), id="uid-string"),
    pytest.param(_set(("process", "user", "uid"), -1), id="uid-negative"),
    pytest.param(_set(("process", "args"), "/probe"), id="args-string"),
    pytest.param(_set(("process", "env"), "PATH=/bin"), id="env-string"),
    pytest.param(_set(("root", "readonly"), "yes"), id="readonly-string"),
    pytest.param(
        _set(("annotations",), {"": "empty key"}),
        id="annotation-empty-key",
        marks=pytest.mark.spec("config.annotations.empty-key"),
    ),
    pytest.param(_set(("annotations",), {"com.example.number": 1}), id="annotation-value-not-string"),
]


@pytest.mark.parametrize("change", INVALID)
@pytest.mark.spec("config.valid-values.error")
def test_invalid_value_is_an_error(runtime, bundle_factory, container_factory, change):
    bundle = bundle_factory("exit", "0")
    bundle.edit(change, validate=False)
    expect_error(container_factory(bundle), "an invalid value was accepted")
