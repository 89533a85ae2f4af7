"""The features document lists only what the runtime recognizes (features-linux.md
"Namespaces"): a namespace type listed beyond the spec's must be one the runtime accepts in
config.json. The per-type cases of test_features.py cover the spec's own types."""

import pytest
from test_features import NAMESPACE_FILES, features, listed  # noqa: F401  (features: the fixture)

from harness import spec
from harness.runtime import RuntimeCallError

pytestmark = pytest.mark.requires("root")


@pytest.mark.spec("features.linux.namespaces.recognized")
def test_listed_namespaces_beyond_the_spec_are_recognized(runtime, features, bundle_factory, container_factory):  # noqa: F811
    extra = [n for n in listed(features, "linux", "namespaces") or [] if n not in NAMESPACE_FILES]
    refused = {}
    for name in extra:
        c = container_factory(bundle_factory("exit", "0", edit=lambda config, n=name: spec.set_namespace(config, n)))
        try:
            c.create()
        except RuntimeCallError as err:
            refused[name] = err.stderr.strip()[-200:]
    assert not refused, f"the features document lists namespace types the runtime refuses in config.json: {refused}"
