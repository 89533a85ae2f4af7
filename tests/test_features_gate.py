"""harness.features: which properties a features document claims, and the skip reasons."""

from harness import features

DOC = {
    "ociVersionMax": "1.3.0",
    "mountOptions": ["ro", "idmap"],
    "linux": {"netDevices": {"enabled": True}, "mountExtensions": {"idmap": {"enabled": False}}, "intelRdt": {}},
}


def test_claimed_properties():
    assert features.unclaimed(DOC, "linux.netDevices.enabled") is None
    assert features.unclaimed(DOC, "mountOptions", contains="idmap") is None


def test_unclaimed_properties_name_the_path_and_the_runtime():
    assert "linux.memoryPolicy" in features.unclaimed(DOC, "linux.memoryPolicy", runtime="rt")
    assert "rt" in features.unclaimed(DOC, "linux.memoryPolicy", runtime="rt")
    assert "= false" in features.unclaimed(DOC, "linux.mountExtensions.idmap.enabled")
    assert "= {}" in features.unclaimed(DOC, "linux.intelRdt")
    assert "'ridmap'" in features.unclaimed(DOC, "mountOptions", contains="ridmap")


def test_no_document_claims_nothing():
    assert "no `features` command" in features.unclaimed(None, "linux.netDevices.enabled", runtime="crun")


def test_version_gate_for_properties_without_a_features_field():
    assert features.unclaimed(DOC, "ociVersionMax", at_least="1.1.0", what="process.scheduler") is None
    old = {"ociVersionMax": "1.0.2-dev"}
    reason = features.unclaimed(old, "ociVersionMax", runtime="runc", at_least="1.1.0", what="process.scheduler")
    assert "runc" in reason and "1.0.2-dev" in reason and "v1.1.0" in reason and "process.scheduler" in reason
    assert "process.scheduler" in features.unclaimed(
        None, "ociVersionMax", runtime="crun", at_least="1.1.0", what="process.scheduler"
    )
    assert (
        features.version_key("1.0.2-dev")
        < features.version_key("1.0.2")
        < features.version_key("1.1.0")
        < features.version_key("1.3.0")
    )
