"""Id-mapped mounts (config.md "Linux mount options" idmap and ridmap, "POSIX-platform Mounts"
uidMappings/gidMappings; features-linux.md "MountExtensions").

A host folder holds files owned by ids 0 and 7; a tmpfs is mounted below it. Bound into the
container with a mapping, the probe's ``stat`` shows the owners the mount presents: on-disk id
``containerID + k`` appears as ``hostID + k`` (as seen from the container's user namespace),
an unmapped id as the overflow id 65534. Cases that need the runtime to claim idmapped mounts
carry the ``feature`` marker, so a runtime whose ``features`` does not claim them skips.
"""

from __future__ import annotations

import json
import os

import pytest
from _errors import expect_error, refused_at_create
from _trees import HostTree

from harness.pytest_plugin import USERNS_HOST_ID
from harness.runtime import RuntimeCallError

pytestmark = [pytest.mark.requires("root")]

IDMAP = pytest.mark.feature("linux.mountExtensions.idmap.enabled")
OVERFLOW = 65534
# mount mapping: on-disk 0..9 show as 2000..2009 (uids) and 3000..3009 (gids)
UID_MAP = [{"containerID": 0, "hostID": 2000, "size": 10}]
GID_MAP = [{"containerID": 0, "hostID": 3000, "size": 10}]


@pytest.fixture
def tree():
    t = HostTree()
    os.chown(t.top / "file.txt", 0, 0)
    (t.top / "seven.txt").write_text("7")
    os.chown(t.top / "seven.txt", 7, 7)
    (t.top / "far.txt").write_text("far")
    os.chown(t.top / "far.txt", 50, 50)
    yield t
    t.remove()


def bind_entry(source, *options, uid=None, gid=None):
    m = {"destination": "/data", "type": "bind", "source": str(source), "options": list(options)}
    if uid is not None:
        m["uidMappings"] = uid
    if gid is not None:
        m["gidMappings"] = gid
    return m


def add(entry):
    def edit(config):
        config["mounts"].append(entry)

    return edit


def stats(out):
    """The probe's ``stat`` lines: {path: (uid, gid)}; any other line is kept under its text."""
    found = {}
    for line in out.splitlines():
        if line.startswith("{"):
            st = json.loads(line)
            found[st["path"]] = (st["uid"], st["gid"])
    return found


def run(container_factory, bundle):
    c = container_factory(bundle)
    c.create()
    c.start()
    end = c.wait()
    assert end.code in (0, None), f"the probe failed ({end}): {c.stderr()!r}"
    return c.stdout()


STAT_TOP = ("stat", "/data/file.txt", "stat", "/data/seven.txt", "stat", "/data/far.txt")


# --------------------------------------------------------------------------------------------
# Without a user namespace: the mount's own mappings


def options(*templates: str) -> list:
    """Parameters ``option``, idmap and ridmap, whose cases name the requirement ids
    ``template.format(option=...)``; ridmap only on a runtime whose features claim it."""
    return [
        pytest.param("idmap", marks=pytest.mark.spec(*(t.format(option="idmap") for t in templates))),
        pytest.param(
            "ridmap",
            marks=[
                pytest.mark.spec(*(t.format(option="ridmap") for t in templates)),
                pytest.mark.feature("mountOptions", contains="ridmap"),
            ],
        ),
    ]


@IDMAP
@pytest.mark.parametrize(
    "option", options("config.mounts.option.{option}", "config.mounts.option.{option}.mount-mappings")
)
@pytest.mark.spec("config.mounts.id-mappings")
def test_mount_mappings_convert_owners(runtime, bundle_factory, container_factory, tree, option):
    bundle = bundle_factory(*STAT_TOP, edit=add(bind_entry(tree.top, "rbind", option, uid=UID_MAP, gid=GID_MAP)))
    got = stats(run(container_factory, bundle))
    expected = {"/data/file.txt": (2000, 3000), "/data/seven.txt": (2007, 3007), "/data/far.txt": (OVERFLOW, OVERFLOW)}
    assert got == expected, (
        f"{option} with uidMappings 0->2000 and gidMappings 0->3000 (10 ids): on-disk owners 0:0, 7:7, 50:50 should show as {expected}, the container sees {got}"
    )


@IDMAP
@pytest.mark.spec("config.mounts.id-mappings.mount-setattr")
def test_idmapped_mount_is_made_with_mount_setattr(runtime, run_probe, tree):
    _, report = run_probe("report", edit=add(bind_entry(tree.top, "bind", "idmap", uid=UID_MAP, gid=GID_MAP)))
    found = [m for m in report["mounts"] if m["mount_point"] == "/data"]
    assert found, "nothing is mounted at /data"
    assert "idmapped" in found[-1]["options"], (
        f"a mount given an idmapping with mount_setattr(MOUNT_ATTR_IDMAP) shows 'idmapped' among its options; /data has {found[-1]['options']}"
    )


@IDMAP
@pytest.mark.parametrize(
    "option", ["idmap", pytest.param("ridmap", marks=pytest.mark.feature("mountOptions", contains="ridmap"))]
)
def test_ridmap_reaches_submounts_idmap_does_not(runtime, bundle_factory, container_factory, tree, option, request):
    request.node.add_marker(pytest.mark.spec(f"config.mounts.option.{option}"))
    bundle = bundle_factory(
        "stat",
        "/data/file.txt",
        "stat",
        "/data/sub/inner.txt",
        edit=add(bind_entry(tree.top, "rbind", option, uid=UID_MAP, gid=GID_MAP)),
    )
    got = stats(run(container_factory, bundle))
    top, sub = got.get("/data/file.txt"), got.get("/data/sub/inner.txt")
    assert top == (2000, 3000), (
        f"{option} on an rbind: the top mount is id-mapped, its file owned 0:0 should show as 2000:3000, it shows {top}"
    )
    if option == "ridmap":
        assert sub == (2000, 3000), (
            f"ridmap applies the mapping recursively: the submount's file (0:0) should show as 2000:3000, it shows {sub}"
        )
    else:
        assert sub == (0, 0), (
            f"idmap is not recursive: the submount's file (0:0) should keep its owner 0:0, it shows {sub}"
        )


@IDMAP
@pytest.mark.parametrize("option", options("config.mounts.option.{option}.no-mappings-error"))
def test_no_mappings_and_no_user_namespace_is_an_error(runtime, bundle_factory, container_factory, tree, option):
    bundle = bundle_factory("exit", "0", edit=add(bind_entry(tree.top, "rbind", option)))
    expect_error(
        container_factory(bundle),
        f"option {option} on a mount without uidMappings/gidMappings, in a container without a user namespace",
    )


@IDMAP
@pytest.mark.parametrize("given", ["uidMappings", "gidMappings"])
@pytest.mark.spec("config.mounts.id-mappings.both")
def test_one_mapping_without_the_other_is_an_error(runtime, bundle_factory, container_factory, tree, given):
    entry = bind_entry(tree.top, "rbind", "idmap", **({"uid": UID_MAP} if given == "uidMappings" else {"gid": GID_MAP}))
    bundle = bundle_factory("exit", "0", edit=add(entry))
    expect_error(container_factory(bundle), f"a mount with {given} but not the other")


# --------------------------------------------------------------------------------------------
# With a user namespace (container ids 0.. are host ids USERNS_HOST_ID..)


@IDMAP
@pytest.mark.requires("userns")
@pytest.mark.parametrize("option", options("config.mounts.option.{option}.userns-mapping"))
def test_no_mappings_take_the_user_namespace_mapping_or_fail(runtime, userns_bundle, container_factory, tree, option):
    bundle = userns_bundle(
        "stat", "/data/file.txt", "stat", "/data/seven.txt", edit=add(bind_entry(tree.top, "rbind", option))
    )
    (bundle.rootfs / "data").mkdir()  # the container's root (an unprivileged host id) cannot make it
    c = container_factory(bundle)
    if refused_at_create(c):
        return  # the spec allows an error here (MAY use the user namespace mapping, otherwise an error)
    c.start()
    end = c.wait()
    assert end.code in (0, None), f"the probe failed ({end}): {c.stderr()!r}"
    got = stats(c.stdout())
    expected = {"/data/file.txt": (0, 0), "/data/seven.txt": (7, 7)}
    assert got == expected, (
        f"{option} without mappings of its own, container user namespace 0->{USERNS_HOST_ID}: the mount takes that mapping, so on-disk 0:0 and 7:7 show as {expected} inside (65534 without a mapping); the container sees {got}"
    )


@IDMAP
@pytest.mark.requires("userns")
@pytest.mark.spec("config.mounts.option.idmap.mount-mappings", "config.mounts.id-mappings")
def test_mount_mappings_win_over_the_user_namespace_mapping(runtime, userns_bundle, container_factory, tree):
    # on-disk 0..9 -> host USERNS_HOST_ID+5.., which is 5.. inside the container's user namespace
    uid = [{"containerID": 0, "hostID": USERNS_HOST_ID + 5, "size": 10}]
    gid = [{"containerID": 0, "hostID": USERNS_HOST_ID + 6, "size": 10}]
    bundle = userns_bundle(
        "stat",
        "/data/file.txt",
        "stat",
        "/data/seven.txt",
        edit=add(bind_entry(tree.top, "rbind", "idmap", uid=uid, gid=gid)),
    )
    (bundle.rootfs / "data").mkdir()
    c = container_factory(bundle)
    c.create()
    c.start()
    end = c.wait()
    assert end.code in (0, None), f"the probe failed ({end}): {c.stderr()!r}"
    got = stats(c.stdout())
    expected = {"/data/file.txt": (5, 6), "/data/seven.txt": (12, 13)}
    assert got == expected, (
        f"the mount's own uidMappings (0->{USERNS_HOST_ID + 5}) and gidMappings (0->{USERNS_HOST_ID + 6}) MUST be used, not the user namespace's: on-disk 0:0 and 7:7 should show as {expected}; the container sees {got}"
    )


# --------------------------------------------------------------------------------------------
# features-linux.md: a runtime that makes id-mapped mounts says so


@pytest.mark.spec("features.linux.mount-extensions.idmap")
def test_runtime_making_idmapped_mounts_claims_them(runtime, bundle_factory, container_factory, tree):
    from harness import features

    bundle = bundle_factory(
        "stat", "/data/file.txt", edit=add(bind_entry(tree.top, "rbind", "idmap", uid=UID_MAP, gid=GID_MAP))
    )
    c = container_factory(bundle)
    try:
        c.create()
    except RuntimeCallError:
        pytest.skip(f"{runtime.name} refused the id-mapped mount, so it need not claim id-mapped mounts")
    c.start()
    c.wait()
    got = stats(c.stdout()).get("/data/file.txt")
    if got != (2000, 3000):
        pytest.skip(f"{runtime.name} made no id-mapped mount (the file shows {got}), so it need not claim them")
    doc = features.document(runtime)
    if doc is None:
        pytest.skip(
            f"{runtime.name} makes id-mapped mounts but has no `features` command: the requirement is on the features document, which is optional (features.md)"
        )
    claimed = features.lookup(doc, "linux.mountExtensions.idmap.enabled")
    assert claimed is True, (
        f"{runtime.name} applied a mount's uidMappings/gidMappings, so its features output MUST report linux.mountExtensions.idmap.enabled true; it reports {claimed!r}"
    )
