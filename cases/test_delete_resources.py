"""Delete removes what create made on the host (runtime.md, "delete").

Every case is also followed by the harness's leak check (harness.leaks): whatever still carries
the case's container ids or bundle paths after its containers were deleted fails the case. The
cases here make the resources a runtime most easily forgets: the parent folders of a nested
cgroupsPath, which create makes and only the runtime knows it made.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness import host


def _folders_named(name):
    """Folders called ``name`` on every cgroup mount, at any depth the harness looks at."""
    from harness import leaks

    return [p for p in leaks.cgroup_folders([name]) if p.name == name]


@pytest.mark.parametrize("where", ["relative", "absolute"])
@pytest.mark.spec("runtime.delete.removes-resources")
def test_delete_removes_the_parents_of_a_nested_cgroups_path(
    runtime, bundle_factory, container_factory, container_id, where
):
    parent = f"oci-harness-{container_id()}"
    path = f"{parent}/inner" if where == "relative" else f"/{parent}/inner"
    c = container_factory(
        bundle_factory("exit", "0", edit=lambda config: config["linux"].__setitem__("cgroupsPath", path))
    )
    c.create()
    made = _folders_named(parent)
    assert made, (
        f"create made no cgroup folder {parent} for cgroupsPath {path!r}: the container is in {Path(f'/proc/{c.pid}/cgroup').read_text()!r}"
    )
    c.start()
    c.wait()
    c.delete()
    left = [str(p) for p in made if os.path.isdir(p)]
    assert not left, f"delete left the parent folders create made for cgroupsPath {path!r}: {left}"
    assert host.cgroup_mode()  # the host's cgroups were read (a broken mount table would fail above)
