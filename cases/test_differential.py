"""Differential runs (opt-in with ``--diff A,B``): the same bundle on two runtimes gives the same
view inside the container, once what legitimately varies is normalised (harness.diff)."""

import pytest

from harness import diff

pytestmark = pytest.mark.requires("root")


@pytest.fixture(scope="session")
def diff_runtimes(request, harness_session):
    names = request.config.getoption("--diff")
    if not names:
        pytest.skip("differential cases run with --diff A,B")
    names = names.split(",")
    if len(names) != 2:
        raise pytest.UsageError(f"--diff needs two runtimes, like runc,crun (got {names})")
    return [harness_session.runtime(n, key=f"diff-{n}") for n in names]


@pytest.mark.parametrize("variant", list(diff.VARIANTS))
@pytest.mark.spec("runtime.lifecycle.create-environment")
def test_same_view_on_both_runtimes(diff_runtimes, variant, probe_binary, tmp_path):
    found = diff.compare(diff_runtimes, tmp_path, {variant: diff.VARIANTS[variant]}, probe_binary=probe_binary)[variant]
    a, b = (r.name for r in diff_runtimes)
    assert not found, f"{a} and {b} differ for the same config ({variant}):\n" + "\n".join(
        f"  {d.path}: {a}={d.a!r} {b}={d.b!r}" for d in found
    )
