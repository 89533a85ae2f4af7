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
