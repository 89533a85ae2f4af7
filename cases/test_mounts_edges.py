"""Mounts, read-only paths and a read-only root in their less common forms (config.md "Mounts",
"Root"; config-linux.md "Readonly Paths"): recursive propagation reaching submounts, flag
options on bind mounts, a bound file whose destination the rootfs lacks, a read-only path that
is a file, a read-only root seen by a non-root user. Helpers and host fixtures come from
test_mounts.py."""

import os

import pytest
from test_mounts import MS_SHARED, add_mounts, bind, host_mounts, host_tree, mount_at, mount_table  # noqa: F401  (fixtures)

pytestmark = pytest.mark.requires("root")


@pytest.fixture
def shared_submount_tree(host_tree, host_mounts):
    """host_tree whose submount (sub/) is shared on the host, so that its copy in a container
    carries propagation of its own until an r* option changes it."""
    host_mounts(None, host_tree / "sub", None, MS_SHARED)
    return host_tree


# recursive propagation option -> what the submount's optional fields must show
RECURSIVE_PROPAGATION = {
    "rshared": lambda opt: any(o.startswith("shared:") for o in opt),
    "rprivate": lambda opt: not opt,
    "runbindable": lambda opt: "unbindable" in opt,
}


@pytest.mark.parametrize("option", list(RECURSIVE_PROPAGATION))
@pytest.mark.spec("config.mounts.option.propagation", "config.mounts.option.rbind")
def test_recursive_propagation_reaches_submounts(runtime, run_probe, shared_submount_tree, option):
    _, report = run_probe("report", edit=add_mounts(bind("/data", shared_submount_tree, "rbind", option)))
    top, sub = mount_at(report, "/data"), mount_at(report, "/data/sub")
    assert top is not None and sub is not None, (
        f"expected /data and its submount /data/sub (rbind):\n{mount_table(report)}"
    )
    assert RECURSIVE_PROPAGATION[option](top["optional"]), f"{option}: /data has optional fields {top['optional']}"
    assert RECURSIVE_PROPAGATION[option](sub["optional"]), (
        f"{option} is recursive: the submount /data/sub has optional fields {sub['optional']}"
    )


@pytest.mark.spec(
    "config.mounts.option.bind",
    "config.mounts.option.nosuid",
    "config.mounts.option.nodev",
    "config.mounts.option.noexec",
    "config.mounts.option.ro",
)
def test_flag_options_on_a_bind_mount(runtime, run_probe, host_tree):
    _, report = run_probe(
        "report", edit=add_mounts(bind("/data", host_tree, "bind", "nosuid", "nodev", "noexec", "ro"))
    )
    m = mount_at(report, "/data")
    assert m is not None, f"nothing is mounted at /data:\n{mount_table(report)}"
    missing = [f for f in ("nosuid", "nodev", "noexec", "ro") if f not in m["options"]]
    assert not missing, f"bind mount with nosuid, nodev, noexec, ro: {missing} missing from its options {m['options']}"


@pytest.mark.spec("config.mounts.option.bind", "config.mounts.mounted")
def test_bind_mount_of_a_file_at_a_missing_destination(runtime, run_probe, tmp_path):
    source = tmp_path / "injected.txt"
    source.write_text("a bound file")
    _, out = run_probe("cat", "/injected/file.txt", edit=add_mounts(bind("/injected/file.txt", source, "bind")))
    assert out == "a bound file", f"the file bound at /injected/file.txt (missing from the rootfs) reads {out!r}"


def run_to_end(bundle_factory, container_factory, *verbs, edit=None, prepare=None, readonly=False):
    bundle = bundle_factory(*verbs, edit=edit, readonly=readonly)
    if prepare:
        prepare(bundle.rootfs)
    c = container_factory(bundle)
    c.create()
    c.start()
    return c, c.wait()


@pytest.mark.spec("linux.readonly-paths")
def test_readonly_path_that_is_a_file(runtime, bundle_factory, container_factory):
    def edit(config):
        config["linux"]["readonlyPaths"] = ["/rofile.txt"]

    c, end = run_to_end(
        bundle_factory,
        container_factory,
        "write",
        "/rofile.txt",
        "changed",
        edit=edit,
        prepare=lambda rootfs: (rootfs / "rofile.txt").write_text("original"),
    )
    assert end.code in (1, None) and "Read-only file system" in c.stderr(), (
        f"writing the read-only path /rofile.txt (a file): exit {end}, stderr {c.stderr()!r}, expected EROFS"
    )
    assert (c.bundle / "rootfs" / "rofile.txt").read_text() == "original"


@pytest.mark.spec("config.root.readonly")
def test_readonly_root_refuses_a_non_root_user(runtime, bundle_factory, container_factory):
    """A world-writable folder of a read-only root: only the read-only mount stops uid 1000."""

    def edit(config):
        config["process"]["user"] = {"uid": 1000, "gid": 1000}

    def prepare(rootfs):
        (rootfs / "tmp").mkdir(exist_ok=True)
        os.chmod(rootfs / "tmp", 0o1777)

    c, end = run_to_end(
        bundle_factory, container_factory, "write", "/tmp/by-user", "x", edit=edit, prepare=prepare, readonly=True
    )
    assert end.code in (1, None) and "Read-only file system" in c.stderr(), (
        f"uid 1000 writing /tmp (mode 1777) of a read-only root: exit {end}, stderr {c.stderr()!r}, expected EROFS"
    )
    assert not (c.bundle / "rootfs" / "tmp" / "by-user").exists()
