"""Namespaces (config-linux.md "Namespaces", "User namespace mappings", "Offset for Time
Namespace"): each listed namespace without a path is new; one with a path is joined; a namespace
not listed is inherited from the runtime; duplicates and paths of the wrong type are errors.
Checked from inside (the probe's /proc/self/ns inodes) and from outside (/proc/PID/ns of the
state pid, /proc/PID/uid_map, the files the container wrote)."""

import os
import subprocess
import time
from pathlib import Path

import pytest
from _errors import expect_create_error

from harness import _linux, features, host, spec
from harness.probe import parse_report
from harness.pytest_plugin import USERNS_HOST_ID, USERNS_SIZE

pytestmark = pytest.mark.requires("root")

# config.json type -> /proc/PID/ns entry
NS_FILE = {
    "pid": "pid",
    "network": "net",
    "ipc": "ipc",
    "uts": "uts",
    "mount": "mnt",
    "user": "user",
    "cgroup": "cgroup",
    "time": "time",
}
DEFAULT_NEW = ["pid", "network", "ipc", "uts", "mount"]
# util-linux unshare option that makes a persistent namespace of each type (bind-mounted on a file)
UNSHARE_FLAG = {
    "network": "--net",
    "ipc": "--ipc",
    "uts": "--uts",
    "mount": "--mount",
    "cgroup": "--cgroup",
    "time": "--time",
}

# The user namespace cases map container ids 0..65535 to these host ids.
HOST_ID = USERNS_HOST_ID
ID_RANGE = USERNS_SIZE


def refused_as_unsupported(runtime, container, ns_type) -> bool:
    """For a namespace type added in a later spec release than a runtime may know (time, in
    v1.1.0), the runtime's ``features`` output decides (features-linux.md#namespaces: "The
    recognized names of the namespaces"). A runtime with no features document skips; one whose
    document does not list the type must refuse it, as an unsupported value (config.md#valid-values:
    "Runtimes MUST generate an error when invalid or unsupported values are encountered."), and
    True is returned once that is checked; a runtime listing it goes on with the case (False)."""
    if ns_type != "time":
        return False
    doc = features.document(runtime)
    reason = features.unclaimed(doc, "linux.namespaces", ns_type, runtime.name)
    if reason is None:
        return False
    if doc is None:
        pytest.skip(reason)
    expect_create_error(
        container,
        f"{runtime.name} does not recognize the {ns_type} namespace ({reason}), an unsupported value that MUST be an error",
    )
    return True


@pytest.fixture
def persistent_namespace(tmp_path):
    """``persistent_namespace(type)``: the path of a new namespace of that type, made on the host.

    util-linux ``unshare --net=FILE`` makes the namespace and bind-mounts it on FILE, so it lives
    without a process; the mount is removed at teardown.
    """
    mounted = []

    def make(ns_type):
        path = tmp_path / f"ns-{ns_type}"
        path.touch()
        proc = subprocess.run(
            ["unshare", f"{UNSHARE_FLAG[ns_type]}={path}", "true"], capture_output=True, text=True, timeout=30
        )
        if proc.returncode != 0:
            pytest.skip(f"the host cannot make a {ns_type} namespace: unshare said {proc.stderr.strip()!r}")
        mounted.append(path)
        return path

    yield make
    for path in mounted:
        try:
            _linux.umount2(str(path), 2)  # MNT_DETACH
        except OSError:
            pass


# --------------------------------------------------------------------------------------------
# New namespaces


@pytest.mark.parametrize("ns_type", DEFAULT_NEW)
@pytest.mark.spec("linux.namespaces.new")
def test_new_namespace_inside(runtime, run_probe, host_namespaces, ns_type):
    _, report = run_probe("report")
    name = NS_FILE[ns_type]
    inside = report["namespaces"].get(name)
    assert inside is not None, f"the probe could not read /proc/self/ns/{name}: {report['errors']}"
    assert inside != host_namespaces[name], f"{ns_type} namespace is the host's (inode {inside})"


@pytest.mark.parametrize("ns_type", DEFAULT_NEW)
@pytest.mark.spec("linux.namespaces.new")
def test_new_namespace_outside(runtime, bundle_factory, container_factory, host_namespaces, ns_type):
    c = container_factory(bundle_factory("exit", "0"))
    c.create()
    pid = c.state().pid
    outside = host.namespace_inodes(pid)
    name = NS_FILE[ns_type]
    assert outside[name] != host_namespaces[name], f"process {pid} is in the host's {ns_type} namespace"


@pytest.mark.parametrize("ns_type", ["cgroup", "time"])
@pytest.mark.spec("linux.namespaces.new", "linux.namespaces.types-supported")
def test_new_namespace_of_optional_type(runtime, bundle_factory, container_factory, host_namespaces, ns_type):
    c = container_factory(bundle_factory("report", edit=lambda config: spec.set_namespace(config, ns_type)))
    if refused_as_unsupported(runtime, c, ns_type):
        return
    c.create()
    name = NS_FILE[ns_type]
    outside = host.namespace_inodes(c.pid)[name]
    c.start()
    c.wait()
    inside = parse_report(c.stdout())["namespaces"].get(name)
    assert outside != host_namespaces[name], f"process {c.pid} is in the host's {ns_type} namespace (inode {outside})"
    assert inside == outside, f"the probe sees {ns_type} namespace {inside}, the host sees {outside} for it"


@pytest.mark.requires("userns")
@pytest.mark.spec("linux.namespaces.new", "linux.namespaces.types-supported")
def test_new_user_namespace(runtime, userns_bundle, container_factory, host_namespaces):
    c = container_factory(userns_bundle("exit", "0"))
    c.create()
    outside = host.namespace_inodes(c.pid)["user"]
    assert outside != host_namespaces["user"], f"process {c.pid} is in the host's user namespace"


@pytest.mark.spec("linux.namespaces.pid-isolation")
def test_process_is_pid_1(runtime, run_probe):
    _, report = run_probe("report")
    assert report["pid"] == 1, f"the container's process is pid {report['pid']} inside its pid namespace"
    assert report["ppid"] == 0, f"pid 1 of a new pid namespace has ppid 0, not {report['ppid']}"


@pytest.mark.spec("linux.namespaces.cgroup-view")
def test_cgroup_namespace_shows_own_cgroup_as_root(runtime, bundle_factory, container_factory):
    c = container_factory(bundle_factory("report", edit=lambda config: spec.set_namespace(config, "cgroup")))
    c.create()
    outside = Path(f"/proc/{c.pid}/cgroup").read_text().splitlines()
    c.start()
    c.wait()
    inside = parse_report(c.stdout())["cgroups"]
    assert inside, "the probe saw no cgroups"
    assert any(line.rsplit(":", 1)[1] != "/" for line in outside), (
        f"the container is in the root cgroups, nothing to hide: {outside}"
    )
    not_root = [(cg["controllers"], cg["path"]) for cg in inside if cg["path"] != "/"]
    assert not not_root, (
        f"inside a new cgroup namespace the container's cgroups should read '/'; it sees {not_root} (host view {outside})"
    )


# --------------------------------------------------------------------------------------------
# Inherited namespaces


@pytest.mark.parametrize("ns_type", ["network", "ipc", "uts", "pid", "user", "cgroup", "time"])
@pytest.mark.spec("linux.namespaces.inherit")
def test_unlisted_namespace_is_inherited(runtime, run_probe, host_namespaces, ns_type):
    # Not tried for mount: a container in the runtime's mount namespace would mount over the host.
    def drop(config):
        spec.set_namespace(config, ns_type, present=False)
        if ns_type == "uts":
            config.pop("hostname", None)

    _, report = run_probe("report", edit=drop)
    name = NS_FILE[ns_type]
    assert report["namespaces"].get(name) == host_namespaces[name], (
        f"{ns_type} namespace was not inherited from the host: inode {report['namespaces'].get(name)}, host {host_namespaces[name]}"
    )


def _without_mounts(config, record):
    """No mount namespace, and nothing that needs one: no mounts, masked or read-only paths, a
    writable root. A createRuntime hook (run in the runtime namespace, config.md) records the
    runtime's mount namespace."""
    spec.set_namespace(config, "mount", present=False)
    config["mounts"] = []
    config["root"]["readonly"] = False
    for key in ("maskedPaths", "readonlyPaths", "rootfsPropagation"):
        config["linux"].pop(key, None)
    config.setdefault("hooks", {})["createRuntime"] = [
        {"path": "/bin/sh", "args": ["sh", "-c", f"readlink /proc/self/ns/mnt > {record}"]}
    ]


@pytest.mark.spec("linux.namespaces.inherit")
@pytest.mark.private_runtime_mount_namespace
def test_unlisted_mount_namespace_is_inherited(runtime, bundle_factory, container_factory, tmp_path, host_namespaces):
    """config-linux.md#namespaces: "If a namespace type is not specified in the `namespaces`
    array, the container MUST inherit the runtime namespace of that type", mount included.

    A runtime sharing its mount namespace with the container may change it (runc makes "/" a
    recursive slave and binds the rootfs onto itself there), so here the runtime runs in a
    private mount namespace held for the case (the ``private_runtime_mount_namespace`` marker):
    that is the runtime namespace the container must share, nothing reaches the host's, and
    the leak check compares its mount table before and after the case."""
    record = tmp_path / "runtime-mnt"
    bundle = bundle_factory("exit", "0", edit=lambda config: _without_mounts(config, record))
    (bundle.rootfs / "dev").mkdir(exist_ok=True)  # as in any root filesystem: the default devices go there
    c = container_factory(bundle)
    c.create()
    assert record.exists(), "the createRuntime hook did not record the runtime's mount namespace"
    runtime_mnt = record.read_text().strip()
    container_mnt = os.readlink(f"/proc/{c.pid}/ns/mnt")
    assert container_mnt != f"mnt:[{host_namespaces['mnt']}]", (
        "the runtime did not run in the private mount namespace held for it"
    )
    assert container_mnt == runtime_mnt, (
        f"the container's mount namespace is {container_mnt}, the runtime's {runtime_mnt}: it was not inherited"
    )
    root = os.readlink(f"/proc/{c.pid}/root")
    assert os.path.realpath(root) == os.path.realpath(bundle.rootfs), (
        f"the container's root is {root}, not the bundle's rootfs {bundle.rootfs}"
    )
    c.start()
    end = c.wait()
    assert end.code == 0, f"the container process ended with {end}; stderr {c.stderr()!r}"


# --------------------------------------------------------------------------------------------
# Joining a namespace by path


@pytest.mark.parametrize("ns_type", ["network", "ipc", "uts", "mount", "cgroup", "time"])
@pytest.mark.spec("linux.namespaces.join-path")
def test_join_namespace_made_on_host(
    runtime, run_probe, bundle_factory, container_factory, persistent_namespace, ns_type
):
    if ns_type == "mount" and runtime.in_private_mount_namespace:
        pytest.skip(
            f"the adapter runs {runtime.name} in a private mount namespace on this host (its definition's quirk): a mount namespace made on the host cannot be joined from there"
        )
    path = persistent_namespace(ns_type)
    expected = os.stat(path).st_ino
    if ns_type == "time" and refused_as_unsupported(
        runtime,
        container_factory(
            bundle_factory("exit", "0", edit=lambda config: spec.set_namespace(config, ns_type, str(path)))
        ),
        ns_type,
    ):
        return
    _, report = run_probe("report", edit=lambda config: spec.set_namespace(config, ns_type, str(path)))
    inside = report["namespaces"].get(NS_FILE[ns_type])
    assert inside == expected, (
        f"the container is in {ns_type} namespace {inside}, not in {expected} given by path {path}"
    )


@pytest.mark.spec("linux.namespaces.join-path")
def test_join_pid_namespace_of_another_container(runtime, bundle_factory, container_factory):
    first = container_factory(bundle_factory("pause"))
    first.create()
    path = f"/proc/{first.pid}/ns/pid"
    expected = host.namespace_inodes(first.pid)["pid"]
    second = container_factory(bundle_factory("report", edit=lambda config: spec.set_namespace(config, "pid", path)))
    second.create()
    second.start()
    second.wait()
    report = parse_report(second.stdout())
    assert report["namespaces"].get("pid") == expected, (
        f"the container is in pid namespace {report['namespaces'].get('pid')}, not {expected} of {path}"
    )
    assert report["pid"] != 1, "the joining process is pid 1: it did not join the first container's pid namespace"


@pytest.mark.requires("userns")
@pytest.mark.spec("linux.namespaces.join-path")
def test_join_user_namespace_of_another_container(runtime, userns_bundle, container_factory):
    first = container_factory(userns_bundle("pause"))
    first.create()
    path = f"/proc/{first.pid}/ns/user"
    expected = host.namespace_inodes(first.pid)["user"]
    second = container_factory(userns_bundle("report", edit=lambda config: spec.set_namespace(config, "user", path)))
    second.create()
    outside = host.namespace_inodes(second.pid)["user"]
    assert outside == expected, f"the container is in user namespace {outside}, not {expected} of {path}"


@pytest.mark.parametrize("ns_type", ["network", "ipc", "uts", "cgroup"])
@pytest.mark.spec("runtime.delete.only-own-resources")
def test_joined_namespace_survives_delete(runtime, bundle_factory, container_factory, persistent_namespace, ns_type):
    path = persistent_namespace(ns_type)
    before = os.stat(path).st_ino
    c = container_factory(
        bundle_factory("exit", "0", edit=lambda config: spec.set_namespace(config, ns_type, str(path)))
    )
    c.create()
    assert host.namespace_inodes(c.pid)[NS_FILE[ns_type]] == before, (
        "the container did not join the namespace (see test_join_namespace_made_on_host)"
    )
    c.start()
    c.wait()
    c.delete()
    mounted = [m for m in host.mounts() if m.mount_point == str(path)]
    assert mounted and mounted[-1].fstype == "nsfs", (
        f"delete removed the {ns_type} namespace mounted at {path}, which the container joined but did not create"
    )
    assert os.stat(path).st_ino == before, f"{path} no longer refers to the {ns_type} namespace {before}"


@pytest.mark.spec("linux.namespaces.duplicate-type", "runtime.errors.no-change")
def test_namespace_listed_twice_is_an_error(runtime, bundle_factory, container_factory):
    bundle = bundle_factory("write", "/ran", "yes")
    bundle.edit(lambda config: config["linux"]["namespaces"].append({"type": "network"}), validate=False)
    expect_create_error(container_factory(bundle), "the network namespace is listed twice")
    assert not (bundle.rootfs / "ran").exists()


@pytest.mark.parametrize("what", ["other-type", "not-a-namespace"])
@pytest.mark.spec("linux.namespaces.path-wrong-type", "runtime.errors.no-change")
def test_namespace_path_of_wrong_type_is_an_error(runtime, bundle_factory, container_factory, tmp_path, what):
    if what == "other-type":
        path = f"/proc/{os.getpid()}/ns/ipc"  # an ipc namespace, given as the network namespace
    else:
        path = str(tmp_path / "plain-file")
        Path(path).write_text("not a namespace\n")
    bundle = bundle_factory("exit", "0", edit=lambda config: spec.set_namespace(config, "network", path))
    expect_create_error(container_factory(bundle), f"the network namespace path {path} is {what}")


# --------------------------------------------------------------------------------------------
# User namespace mappings


def _id_map(pid, kind):
    rows = [tuple(int(x) for x in line.split()) for line in Path(f"/proc/{pid}/{kind}_map").read_text().splitlines()]
    return sorted(rows)


def assert_id_mapping_applied(userns_bundle, container_factory, kind):
    """The container's ``kind`` ("uid" or "gid") map is the configured one: the process is 0
    inside, and a file it makes has the mapped host id."""
    bundle = userns_bundle("report", "write", "/shared/made-inside", "x")
    c = container_factory(bundle)
    c.create()
    id_map = _id_map(c.pid, kind)
    c.start()
    c.wait()
    report = parse_report(c.stdout().splitlines()[0])
    assert id_map == [(0, HOST_ID, ID_RANGE)], (
        f"/proc/{c.pid}/{kind}_map is {id_map}, expected [(0, {HOST_ID}, {ID_RANGE})]"
    )
    assert report[kind] == 0, f"the process runs as {kind} {report[kind]} inside, expected 0"
    host_id = getattr(os.stat(bundle.rootfs / "shared" / "made-inside"), f"st_{kind}")
    assert host_id == HOST_ID, f"a file made by container {kind} 0 has host {kind} {host_id}, expected {HOST_ID}"


@pytest.mark.requires("userns")
@pytest.mark.spec("linux.user-namespace-mappings.uid")
def test_uid_mappings_applied(runtime, userns_bundle, container_factory):
    assert_id_mapping_applied(userns_bundle, container_factory, "uid")


@pytest.mark.requires("userns")
@pytest.mark.spec("linux.user-namespace-mappings.gid")
def test_gid_mappings_applied(runtime, userns_bundle, container_factory):
    assert_id_mapping_applied(userns_bundle, container_factory, "gid")


@pytest.mark.requires("userns")
@pytest.mark.spec("linux.user-namespace-mappings.no-chown")
def test_mapping_does_not_chown_rootfs(runtime, userns_bundle, container_factory):
    bundle = userns_bundle("exit", "0")
    paths = [bundle.rootfs, bundle.rootfs / "probe", bundle.rootfs / "proc"]
    before = {p: (os.lstat(p).st_uid, os.lstat(p).st_gid) for p in paths}
    c = container_factory(bundle)
    c.create()
    c.start()
    c.wait()
    after = {p: (os.lstat(p).st_uid, os.lstat(p).st_gid) for p in paths}
    changed = {str(p): (before[p], after[p]) for p in paths if before[p] != after[p]}
    assert not changed, f"the runtime changed ownership in the rootfs (before, after): {changed}"


# --------------------------------------------------------------------------------------------
# Time namespace offsets

OFFSET = 10 * 86400  # ten days: far more than any scheduling delay


@pytest.mark.spec("linux.time-offsets.applied")
@pytest.mark.feature("linux.namespaces", contains="time")  # timeOffsets needs a time namespace (spec v1.1.0)
def test_boottime_offset_applied(runtime, bundle_factory, container_factory):
    def offset(config):
        spec.set_namespace(config, "time")
        config["linux"]["timeOffsets"] = {"boottime": {"secs": OFFSET, "nanosecs": 0}}

    c = container_factory(bundle_factory("cat", "/proc/uptime", edit=offset))
    c.create()
    offsets = Path(f"/proc/{c.pid}/timens_offsets").read_text().split()
    host_before = time.clock_gettime(time.CLOCK_BOOTTIME)
    c.start()
    c.wait()
    host_after = time.clock_gettime(time.CLOCK_BOOTTIME)
    table = dict(zip(offsets[0::3], offsets[1::3], strict=False))
    assert table.get("boottime") == str(OFFSET), (
        f"/proc/{c.pid}/timens_offsets is {offsets}, expected boottime {OFFSET}"
    )
    inside = float(c.stdout().split()[0])  # /proc/uptime reads CLOCK_BOOTTIME of the reader's time namespace
    assert host_before + OFFSET - 1 <= inside <= host_after + OFFSET + 1, (
        f"uptime inside is {inside:.2f} s, expected the host's ({host_before:.2f}..{host_after:.2f}) plus {OFFSET}"
    )


@pytest.mark.spec("linux.time-offsets.applied")
@pytest.mark.feature("linux.namespaces", contains="time")  # timeOffsets needs a time namespace (spec v1.1.0)
def test_monotonic_offset_applied(runtime, bundle_factory, container_factory):
    def offset(config):
        spec.set_namespace(config, "time")
        config["linux"]["timeOffsets"] = {"monotonic": {"secs": OFFSET, "nanosecs": 500}}

    c = container_factory(bundle_factory("exit", "0", edit=offset))
    c.create()
    offsets = Path(f"/proc/{c.pid}/timens_offsets").read_text().split()
    table = {
        name: (secs, nsecs) for name, secs, nsecs in zip(offsets[0::3], offsets[1::3], offsets[2::3], strict=False)
    }
    assert table.get("monotonic") == (str(OFFSET), "500"), (
        f"/proc/{c.pid}/timens_offsets is {offsets}, expected monotonic {OFFSET} s 500 ns"
    )


@pytest.mark.spec("linux.time-offsets.need-time-namespace", "runtime.errors.no-change")
# A runtime that does not claim time namespaces does not know timeOffsets (spec v1.1.0): to it
# the field is an unknown property, which it MUST ignore (config.md#extensibility).
@pytest.mark.feature("linux.namespaces", contains="time")
def test_time_offsets_without_a_time_namespace_are_an_error(runtime, bundle_factory, container_factory):
    """No new time namespace, so no namespace whose offsets can still be set: an error."""

    def offsets(config):
        config["linux"]["namespaces"] = [n for n in config["linux"]["namespaces"] if n["type"] != "time"]
        config["linux"]["timeOffsets"] = {"monotonic": {"secs": OFFSET, "nanosecs": 0}}

    bundle = bundle_factory("exit", "0")
    bundle.edit(offsets, validate=False)  # the harness's own check refuses it too
    c = container_factory(bundle)
    expect_create_error(
        c, "timeOffsets is given without a time namespace in linux.namespaces (the offsets cannot be applied)"
    )
