"""Mounts (config.md "Mounts", "Linux mount options"; config-linux.md "Default Filesystems",
"Rootfs Mount Propagation", "Masked Paths", "Readonly Paths"): every entry is mounted, in the
listed order, at a path inside the container, with the options asked for. Checked from inside:
the probe's parsed /proc/self/mountinfo (options, optional fields such as shared:N, super
options) and what reading and writing there does; and from outside: the host's folders and
mount table stay as they were."""

import errno
import os

import pytest
from _errors import expect_error

from harness import _linux, host
from harness._linux import MS_BIND, MS_REC, MS_SHARED
from harness.probe import parse_report
from harness.runtime import RuntimeCallError

pytestmark = pytest.mark.requires("root")


def mount_at(report, mount_point):
    """The last (topmost) mount at ``mount_point`` in the probe's mountinfo, or None."""
    found = [m for m in report["mounts"] if m["mount_point"] == mount_point]
    return found[-1] if found else None


def mount_table(report):
    return "\n".join(
        f"  {m['mount_point']} {m['fstype']} {','.join(m['options'])} {' '.join(m['optional'])} - {','.join(m['super_options'])}"
        for m in report["mounts"]
    )


def tmpfs(destination, *options):
    return {"destination": destination, "type": "tmpfs", "source": "tmpfs", "options": list(options)}


def bind(destination, source, *options):
    return {"destination": destination, "type": "bind", "source": str(source), "options": list(options)}


def add_mounts(*entries):
    def edit(config):
        config["mounts"].extend(entries)

    return edit


def host_peer_group(path):
    """The ``shared:N`` peer group of the host mount at ``path`` (None if it is not shared)."""
    for m in host.mounts():
        if m.mount_point == str(path):
            for opt in m.optional:
                if opt.startswith("shared:"):
                    return opt.split(":", 1)[1]
    return None


@pytest.fixture
def host_mounts(request):
    """``mount(source, target, fstype, flags, data)`` on the host; every mount is detached at teardown."""
    made = []

    def mount(source, target, fstype, flags, data=None):
        _linux.mount(source, str(target), fstype, flags, data)
        made.append(str(target))

    yield mount
    for target in reversed(made):
        try:
            _linux.umount2(target, _linux.MNT_DETACH)
        except OSError as err:
            if err.errno not in (errno.EINVAL, errno.ENOENT):
                raise


@pytest.fixture
def host_tree(tmp_path, host_mounts):
    """A host folder with a file in it and a tmpfs mounted below it (at sub/, holding inner.txt)."""
    top = tmp_path / "host-tree"
    (top / "sub").mkdir(parents=True)
    (top / "file.txt").write_text("from the host")
    host_mounts("tmpfs", top / "sub", "tmpfs", 0, "size=512k")
    (top / "sub" / "inner.txt").write_text("from the submount")
    return top


@pytest.fixture
def shared_host_dir(tmp_path, host_mounts):
    """A host folder that is a shared mount (its own peer group); returns (path, peer group)."""
    top = tmp_path / "shared-host"
    top.mkdir()
    (top / "file.txt").write_text("shared")
    host_mounts(str(top), top, None, MS_BIND)
    host_mounts(None, top, None, MS_SHARED)
    group = host_peer_group(top)
    assert group is not None, f"could not make {top} a shared mount on the host"
    return top, group


def run_failing(bundle_factory, container_factory, *verbs, edit=None, prepare=None):
    """Run the probe expecting its last verb to fail; returns (exit, stdout, stderr)."""
    bundle = bundle_factory(*verbs, edit=edit)
    if prepare:
        prepare(bundle.rootfs)
    c = container_factory(bundle)
    c.create()
    c.start()
    end = c.wait()
    return end, c.stdout(), c.stderr()


# --------------------------------------------------------------------------------------------
# Entries are mounted, in order, inside the container


@pytest.mark.parametrize(
    "destination, fstype, source, options",
    [
        ("/proc", "proc", "proc", []),
        ("/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev", "ro"]),
        ("/dev/pts", "devpts", "devpts", ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]),
        ("/dev/mqueue", "mqueue", "mqueue", ["nosuid", "noexec", "nodev"]),
        ("/mnt/tmp", "tmpfs", "tmpfs", ["size=1024k"]),
        ("/mnt/proc2", "proc", "proc", []),
        ("/mnt/mq2", "mqueue", "mqueue", []),
    ],
    ids=["proc", "sysfs", "devpts", "mqueue", "tmpfs", "proc-elsewhere", "mqueue-elsewhere"],
)
@pytest.mark.spec("config.mounts.mounted", "config.mounts.type")
def test_mount_has_its_type_at_its_destination(runtime, run_probe, destination, fstype, source, options):
    def edit(config):
        config["mounts"] = [m for m in config["mounts"] if m["destination"] != destination]
        config["mounts"].append({"destination": destination, "type": fstype, "source": source, "options": options})

    _, report = run_probe("report", edit=edit)
    m = mount_at(report, destination)
    assert m is not None, f"nothing is mounted at {destination}; the container's mounts:\n{mount_table(report)}"
    assert m["fstype"] == fstype, f"{destination}: expected type {fstype}, found {m['fstype']}"


@pytest.mark.spec("config.mounts.mounted")
def test_cgroup_mount(runtime, run_probe):
    _, report = run_probe("report")
    cgroup_types = {
        m["fstype"]
        for m in report["mounts"]
        if m["mount_point"] == "/sys/fs/cgroup" or m["mount_point"].startswith("/sys/fs/cgroup/")
    }
    assert cgroup_types & {"cgroup", "cgroup2"}, (
        f"the cgroup entry at /sys/fs/cgroup mounted no cgroup filesystem; the container's mounts:\n{mount_table(report)}"
    )


@pytest.mark.parametrize("order", ["outer-first", "inner-first"])
@pytest.mark.spec("config.mounts.order")
def test_mounts_in_listed_order(runtime, run_probe, order):
    outer, inner = tmpfs("/a", "size=1024k"), tmpfs("/a/b", "size=2048k")
    entries = [outer, inner] if order == "outer-first" else [inner, outer]
    _, out = run_probe("ls", "/a", "report", edit=add_mounts(*entries))
    lines = out.splitlines()
    report = parse_report(lines[-1])
    names = lines[:-1]
    a, b = mount_at(report, "/a"), mount_at(report, "/a/b")
    assert a is not None and b is not None, f"expected tmpfs mounts at /a and /a/b:\n{mount_table(report)}"
    if order == "outer-first":
        assert names == ["b"], f"/a mounted first, then /a/b: /a should hold b, it holds {names}"
        assert b["parent"] == a["id"], (
            f"/a/b should be mounted on the tmpfs at /a (mount {a['id']}), its parent is mount {b['parent']}"
        )
    else:
        assert names == [], f"/a/b mounted first, then /a over it: /a should be an empty tmpfs, it holds {names}"
        assert a["parent"] != b["id"] and "size=1024k" in a["super_options"], (
            f"the visible /a is not the later tmpfs:\n{mount_table(report)}"
        )


@pytest.mark.spec("config.mounts.destination-relative")
def test_relative_destination_is_under_root(runtime, run_probe):
    _, report = run_probe("report", edit=add_mounts(tmpfs("relative/dest", "size=3072k")))
    ours = [m["mount_point"] for m in report["mounts"] if "size=3072k" in m["super_options"]]
    assert ours == ["/relative/dest"], (
        f"the destination relative/dest should be mounted at /relative/dest, found {ours}"
    )


@pytest.mark.spec("config.mounts.destination-inside")
def test_symlink_destination_stays_inside(runtime, bundle_factory, container_factory, tmp_path):
    host_dir = tmp_path / "host-target"
    host_dir.mkdir()
    (host_dir / "keep.txt").write_text("untouched")
    before = sorted(os.listdir(host_dir))
    escape = host_dir / "made-by-runtime"
    bundle = bundle_factory("report", edit=add_mounts(tmpfs("/evil", "size=1228k")))
    os.symlink(escape, bundle.rootfs / "evil")
    c = container_factory(bundle)
    try:
        c.create()
    except RuntimeCallError:
        started = False  # refusing the escaping destination is fine: nothing may reach the host
    else:
        started = True
        c.start()
        c.wait()
    assert sorted(os.listdir(host_dir)) == before, (
        f"the runtime changed the host folder {host_dir} through the rootfs symlink /evil -> {escape}: it now holds {sorted(os.listdir(host_dir))}"
    )
    landed = [m for m in host.mounts() if str(host_dir) in m.mount_point]
    assert not landed, f"a mount landed on the host under {host_dir}: {landed}"
    if started:
        report = parse_report(c.stdout())
        ours = [m["mount_point"] for m in report["mounts"] if "size=1228k" in m["super_options"]]
        assert ours, (
            f"the tmpfs for /evil is not visible inside the container (it was mounted outside its root?):\n{mount_table(report)}"
        )


# --------------------------------------------------------------------------------------------
# bind and rbind


@pytest.mark.spec("config.mounts.option.bind")
def test_bind_mount_of_host_folder(runtime, run_probe, host_tree):
    _, out = run_probe("cat", "/data/file.txt", "ls", "/data/sub", edit=add_mounts(bind("/data", host_tree, "bind")))
    assert out.startswith("from the host"), f"/data/file.txt should read 'from the host', the probe printed {out!r}"
    assert "inner.txt" not in out, "bind (not rbind) brought the host's submount at sub/ along"


@pytest.mark.parametrize("fstype", ["none", "tmpfs"])
@pytest.mark.spec("config.mounts.source", "config.mounts.bind-by-option", "config.mounts.type.bind-dummy")
def test_bind_source_relative_to_the_bundle_whatever_the_type(runtime, bundle_factory, container_factory, fstype):
    """A source relative to the bundle, and a type that is a dummy: bind among the options makes
    it a bind mount of the bundle's folder (not a new tmpfs)."""
    bundle = bundle_factory(
        "cat",
        "/rel/f.txt",
        edit=add_mounts({"destination": "/rel", "type": fstype, "source": "bind-src", "options": ["bind"]}),
    )
    (bundle.path / "bind-src").mkdir()
    (bundle.path / "bind-src" / "f.txt").write_text("from the bundle")
    c = container_factory(bundle)
    c.create()
    c.start()
    end = c.wait()
    assert (end.code in (0, None)) and c.stdout() == "from the bundle", (
        f"source 'bind-src' (relative to the bundle), type {fstype!r}, options [bind]: /rel/f.txt should read 'from the bundle'; exit {end}, stdout {c.stdout()!r}, stderr {c.stderr()!r}"
    )


@pytest.mark.spec("config.mounts.option.rbind")
def test_rbind_brings_submounts(runtime, run_probe, host_tree):
    _, out = run_probe("cat", "/data/file.txt", "ls", "/data/sub", edit=add_mounts(bind("/data", host_tree, "rbind")))
    assert out.startswith("from the host"), f"/data/file.txt should read 'from the host', the probe printed {out!r}"
    assert out.endswith("inner.txt\n"), (
        f"rbind should bring the host's submount at sub/ (holding inner.txt); the probe printed {out!r}"
    )


# --------------------------------------------------------------------------------------------
# Mount options, as mount(8) reads them (later options override earlier conflicting ones)

# id -> (options, where the flag shows: "options" (per mount) or "super_options", present, absent)
OPTIONS = {
    "ro": (["ro"], "options", ["ro"], ["rw"]),
    "rw": (["ro", "rw"], "options", ["rw"], ["ro"]),
    "nosuid": (["nosuid"], "options", ["nosuid"], []),
    "suid": (["nosuid", "suid"], "options", [], ["nosuid"]),
    "nodev": (["nodev"], "options", ["nodev"], []),
    "dev": (["nodev", "dev"], "options", [], ["nodev"]),
    "noexec": (["noexec"], "options", ["noexec"], []),
    "exec": (["noexec", "exec"], "options", [], ["noexec"]),
    "noatime": (["noatime"], "options", ["noatime"], ["relatime"]),
    "atime": (["noatime", "atime"], "options", [], ["noatime"]),
    "relatime": (["relatime"], "options", ["relatime"], ["noatime"]),
    "strictatime": (["strictatime"], "options", [], ["relatime", "noatime"]),
    "nodiratime": (["nodiratime"], "options", ["nodiratime"], []),
    "diratime": (["nodiratime", "diratime"], "options", [], ["nodiratime"]),
    "sync": (["sync"], "super_options", ["sync"], []),
    "dirsync": (["dirsync"], "super_options", ["dirsync"], []),
    "lazytime": (["lazytime"], "super_options", ["lazytime"], []),
    "nosymfollow": (["nosymfollow"], "options", ["nosymfollow"], []),
}


@pytest.mark.parametrize(
    "option", [pytest.param(name, marks=pytest.mark.spec(f"config.mounts.option.{name}")) for name in OPTIONS]
)
def test_mount_option(runtime, run_probe, option):
    options, where, present, absent = OPTIONS[option]
    _, report = run_probe("report", edit=add_mounts(tmpfs("/opt-test", *options, "size=1024k")))
    m = mount_at(report, "/opt-test")
    assert m is not None, f"nothing is mounted at /opt-test:\n{mount_table(report)}"
    shown = m[where]
    for flag in present:
        assert flag in shown, f"options {options}: expected {flag!r} in the mount's {where}, found {shown}"
    for flag in absent:
        assert flag not in shown, f"options {options}: expected no {flag!r} in the mount's {where}, found {shown}"


@pytest.mark.spec("config.mounts.option.fs-specific")
def test_filesystem_specific_options_reach_the_filesystem(runtime, run_probe):
    _, report = run_probe("report", edit=add_mounts(tmpfs("/fs-opts", "size=2048k", "mode=700")))
    m = mount_at(report, "/fs-opts")
    assert m is not None, f"nothing is mounted at /fs-opts:\n{mount_table(report)}"
    assert "size=2048k" in m["super_options"] and "mode=700" in m["super_options"], (
        f"tmpfs options size=2048k, mode=700 not passed to the filesystem: super options {m['super_options']}"
    )


@pytest.mark.spec("config.mounts.option.tmpcopyup")
def test_tmpcopyup_copies_rootfs_content(runtime, bundle_factory, container_factory):
    bundle = bundle_factory("ls", "/seeded", edit=add_mounts(tmpfs("/seeded", "tmpcopyup", "size=1024k")))
    (bundle.rootfs / "seeded").mkdir()
    (bundle.rootfs / "seeded" / "from-rootfs.txt").write_text("x")
    c = container_factory(bundle)
    c.create()
    c.start()
    end = c.wait()
    assert end.code in (0, None), f"the probe failed: {c.stderr()!r}"
    assert c.stdout().split() == ["from-rootfs.txt"], (
        f"tmpcopyup: the tmpfs at /seeded should hold a copy of the rootfs's from-rootfs.txt, it holds {c.stdout().split()}"
    )


# propagation option -> the optional field it must produce (slave: master:<the host's group>)
PROPAGATION = {
    "shared": "shared:",
    "rshared": "shared:",
    "slave": "master:",
    "rslave": "master:",
    "private": None,
    "rprivate": None,
    "unbindable": "unbindable",
    "runbindable": "unbindable",
}


@pytest.mark.parametrize("option", list(PROPAGATION))
@pytest.mark.spec("config.mounts.option.propagation")
def test_propagation_option(runtime, run_probe, shared_host_dir, option):
    source, group = shared_host_dir
    expected = PROPAGATION[option]
    if expected == "master:" and runtime.in_private_mount_namespace:
        pytest.skip(
            "the adapter runs this runtime in a private mount namespace (runtimes/*.toml quirk): no host peer group can reach it"
        )
    _, report = run_probe("report", edit=add_mounts(bind("/prop", source, "rbind", option)))
    m = mount_at(report, "/prop")
    assert m is not None, f"nothing is mounted at /prop:\n{mount_table(report)}"
    optional = m["optional"]
    if expected == "master:":
        assert f"master:{group}" in optional, (
            f"{option} bind of a shared host mount (peer group {group}): expected master:{group}, found {optional}"
        )
    elif expected is None:
        assert not optional, f"{option}: expected a private mount (no optional fields), found {optional}"
    else:
        assert any(o.startswith(expected) for o in optional), (
            f"{option}: expected {expected}... among the optional fields, found {optional}"
        )


# --------------------------------------------------------------------------------------------
# config-linux.md


@pytest.mark.parametrize(
    "path, fstype", [("/proc", "proc"), ("/sys", "sysfs"), ("/dev/pts", "devpts"), ("/dev/shm", "tmpfs")]
)
@pytest.mark.spec("linux.default-filesystems")
def test_default_filesystem(runtime, run_probe, path, fstype):
    _, report = run_probe("report")
    m = mount_at(report, path)
    assert m is not None and m["fstype"] == fstype, (
        f"expected {fstype} at {path}, found {m and m['fstype']}:\n{mount_table(report)}"
    )


def set_rootfs_propagation(value):
    def edit(config):
        config["linux"]["rootfsPropagation"] = value

    return edit


def share_bundle(bundle, host_mounts):
    """Put the bundle on a shared host mount; returns its peer group."""
    host_mounts(str(bundle.path), bundle.path, None, MS_BIND | MS_REC)
    host_mounts(None, bundle.path, None, MS_SHARED)
    return host_peer_group(bundle.path)


@pytest.mark.spec("linux.rootfs-propagation.shared")
def test_rootfs_propagation_shared(runtime, run_probe):
    _, report = run_probe("report", edit=set_rootfs_propagation("shared"))
    root = mount_at(report, "/")
    assert any(o.startswith("shared:") for o in root["optional"]), (
        f"rootfsPropagation shared: / should be in a peer group (shared:N), its optional fields are {root['optional']}"
    )


@pytest.mark.spec("linux.rootfs-propagation.unbindable")
def test_rootfs_propagation_unbindable(runtime, bundle_factory, container_factory):
    c = container_factory(bundle_factory("report", edit=set_rootfs_propagation("unbindable")))
    try:
        c.create()
    except RuntimeCallError as err:
        # config.md#valid-values: "Unless support for a valid value is explicitly required,
        # runtimes MAY choose which subset of the valid values it will support" and MUST
        # generate an error for the rest. Refusing the value is that error; it must leave no
        # container behind.
        with pytest.raises(RuntimeCallError):
            runtime.state(c.id)
        pytest.skip(
            f"{runtime.name} does not support rootfsPropagation unbindable and refused it with an error, as config.md#valid-values allows: {err.stderr.strip()[:200]}"
        )
    c.start()
    c.wait()
    root = mount_at(parse_report(c.stdout()), "/")
    assert "unbindable" in root["optional"], (
        f"rootfsPropagation unbindable: / should be unbindable, its optional fields are {root['optional']}"
    )


@pytest.mark.spec("linux.rootfs-propagation.slave")
def test_rootfs_propagation_slave(runtime, bundle_factory, container_factory, host_mounts):
    if runtime.in_private_mount_namespace:
        pytest.skip(
            "the adapter runs this runtime in a private mount namespace (runtimes/*.toml quirk): no host peer group can reach it"
        )
    bundle = bundle_factory("report", edit=set_rootfs_propagation("slave"))
    group = share_bundle(bundle, host_mounts)
    c = container_factory(bundle)
    c.create()
    c.start()
    c.wait()

    root = mount_at(parse_report(c.stdout()), "/")
    assert f"master:{group}" in root["optional"], (
        f"rootfsPropagation slave, bundle on a shared host mount (peer group {group}): / should be master:{group}, its optional fields are {root['optional']}"
    )


@pytest.mark.spec("linux.rootfs-propagation.private")
def test_rootfs_propagation_private(runtime, bundle_factory, container_factory, host_mounts):
    bundle = bundle_factory("report", edit=set_rootfs_propagation("private"))
    share_bundle(bundle, host_mounts)
    c = container_factory(bundle)
    c.create()
    c.start()
    c.wait()

    root = mount_at(parse_report(c.stdout()), "/")
    assert not [o for o in root["optional"] if o.startswith(("shared:", "master:"))], (
        f"rootfsPropagation private, bundle on a shared host mount: / should be private, its optional fields are {root['optional']}"
    )


def masked_and_readonly(config):
    config["linux"]["maskedPaths"] += ["/secret.txt", "/secretdir"]
    config["linux"]["readonlyPaths"] += ["/rodir"]


def seed_files(rootfs):
    (rootfs / "secret.txt").write_text("top secret")
    (rootfs / "secretdir").mkdir()
    (rootfs / "secretdir" / "hidden.txt").write_text("hidden")
    (rootfs / "rodir").mkdir()
    (rootfs / "rodir" / "readable.txt").write_text("readable")


def read_a_plain_file_then(bundle_factory, container_factory, *verbs):
    """Run the probe in a bundle with masked and read-only paths (seed_files, masked_and_readonly):
    it reads /rodir/readable.txt, then runs ``verbs``; (end, stdout, stderr)."""
    return run_failing(
        bundle_factory,
        container_factory,
        "cat",
        "/rodir/readable.txt",
        *verbs,
        edit=masked_and_readonly,
        prepare=seed_files,
    )


# config-linux.md#masked-paths: maskedPaths "will mask over the provided paths inside the
# container so that they cannot be read". How (an empty file or folder over it, a read that
# fails) and whether writes fail is not said, so neither is checked. The probe first reads a
# file that is not masked, so a container that never ran cannot pass.


@pytest.mark.spec("linux.masked-paths")
def test_masked_file_cannot_be_read(runtime, bundle_factory, container_factory):
    end, out, err = read_a_plain_file_then(bundle_factory, container_factory, "cat", "/secret.txt")
    assert out.startswith("readable"), (
        f"the probe did not get to read the masked file: exit {end}, stdout {out!r}, stderr {err!r}"
    )
    assert "top secret" not in out, f"the masked file /secret.txt can still be read: stdout {out!r}"


@pytest.mark.spec("linux.masked-paths")
def test_masked_folder_cannot_be_read(runtime, bundle_factory, container_factory):
    end, out, err = read_a_plain_file_then(
        bundle_factory, container_factory, "ls", "/secretdir", "cat", "/secretdir/hidden.txt"
    )
    assert out.startswith("readable"), (
        f"the probe did not get to read the masked folder: exit {end}, stdout {out!r}, stderr {err!r}"
    )
    assert "hidden" not in out, f"the masked folder /secretdir can still be read: stdout {out!r}"


@pytest.mark.spec("linux.readonly-paths")
def test_readonly_path_refuses_writes(runtime, bundle_factory, container_factory):
    end, out, err = read_a_plain_file_then(bundle_factory, container_factory, "write", "/rodir/new.txt", "x")
    assert out == "readable", f"a read-only path can still be read: expected 'readable', got {out!r} (stderr {err!r})"
    assert end.code == 1 and "Read-only file system" in err, (
        f"writing under readonlyPaths /rodir should fail with EROFS; exit {end}, stderr {err!r}"
    )


@pytest.mark.spec("linux.readonly-paths")
def test_default_readonly_proc_sys(runtime, bundle_factory, container_factory):
    end, _out, err = run_failing(bundle_factory, container_factory, "write", "/proc/sys/kernel/hostname", "changed")
    assert end.code == 1 and "Read-only file system" in err, (
        f"/proc/sys is in readonlyPaths: writing there should fail with EROFS; exit {end}, stderr {err!r}"
    )


# --------------------------------------------------------------------------------------------
# maskedPaths and readonlyPaths: relative, symlinks, device nodes, duplicates


@pytest.mark.parametrize(
    "field",
    [
        pytest.param("maskedPaths", marks=pytest.mark.spec("linux.masked-paths.absolute")),
        pytest.param("readonlyPaths", marks=pytest.mark.spec("linux.readonly-paths.absolute")),
    ],
)
def test_relative_path_is_an_error(runtime, bundle_factory, container_factory, field):
    bundle = bundle_factory("exit", "0")
    seed_files(bundle.rootfs)
    bundle.edit(lambda config: config["linux"][field].append("rodir"), validate=False)
    expect_error(
        container_factory(bundle), f"linux.{field} holds the relative path 'rodir' (the values MUST be absolute)"
    )


@pytest.mark.parametrize("target", ["/secret.txt", "../../../secret.txt"], ids=["absolute", "climbing"])
@pytest.mark.spec("linux.masked-paths")
def test_masked_symlink_masks_its_target_inside(runtime, bundle_factory, container_factory, target):
    """A symlink is resolved in the container: /link -> /secret.txt (or ../../../secret.txt,
    which cannot climb above the container's root) masks the container's /secret.txt."""

    def edit(config):
        config["linux"]["maskedPaths"].append("/link")

    bundle = bundle_factory("cat", "/link", "cat", "/secret.txt", edit=edit)
    seed_files(bundle.rootfs)
    os.symlink(target, bundle.rootfs / "link")
    c = container_factory(bundle)
    c.create()
    c.start()
    end = c.wait()
    assert "top secret" not in c.stdout(), (
        f"maskedPaths /link -> {target}: the file it names can still be read inside ({c.stdout()!r})"
    )
    assert end.code in (0, None), f"the probe failed ({end}): {c.stderr()!r}"


@pytest.mark.spec("linux.readonly-paths")
def test_readonly_symlink_protects_its_target_inside(runtime, bundle_factory, container_factory):
    def edit(config):
        config["linux"]["readonlyPaths"].append("/rolink")

    def prepare(rootfs):
        seed_files(rootfs)
        os.symlink("/rodir", rootfs / "rolink")

    end, out, err = run_failing(
        bundle_factory,
        container_factory,
        "cat",
        "/rolink/readable.txt",
        "write",
        "/rodir/new.txt",
        "x",
        edit=edit,
        prepare=prepare,
    )
    assert out == "readable", f"readonlyPaths /rolink -> /rodir: /rodir should still be readable, got {out!r} ({err!r})"
    assert end.code == 1 and "Read-only file system" in err, (
        f"readonlyPaths /rolink -> /rodir: writing in /rodir should fail with EROFS; exit {end}, stderr {err!r}"
    )


@pytest.mark.spec("linux.masked-paths")
def test_masked_device_node_reads_nothing(runtime, run_probe):
    _, out = run_probe(
        "readn", "/dev/zero", "4096", edit=lambda config: config["linux"]["maskedPaths"].append("/dev/zero")
    )
    assert out.strip() == "0", f"maskedPaths /dev/zero: reading it should give nothing, {out.strip()} bytes were read"


@pytest.mark.parametrize("field", ["maskedPaths", "readonlyPaths"])
def test_path_listed_twice(runtime, bundle_factory, container_factory, field, request):
    request.node.add_marker(
        pytest.mark.spec("linux.masked-paths" if field == "maskedPaths" else "linux.readonly-paths")
    )
    path = "/secret.txt" if field == "maskedPaths" else "/rodir"

    def edit(config):
        config["linux"][field] += [path, path]

    verbs = (
        ("cat", "/secret.txt")
        if field == "maskedPaths"
        else ("try", "write", "/rodir/new.txt", "x", "cat", "/rodir/readable.txt")
    )
    bundle = bundle_factory(*verbs, edit=edit)
    seed_files(bundle.rootfs)
    c = container_factory(bundle)
    c.create()
    c.start()
    end = c.wait()
    out, err = c.stdout(), c.stderr()
    assert end.code in (0, None), f"{field} listing {path} twice: the probe failed ({end}): {err!r}"
    if field == "maskedPaths":
        assert out == "", f"/secret.txt, listed twice in maskedPaths, should read empty; it reads {out!r}"
    else:
        assert "probe: write /rodir/new.txt: Read-only file system" in err and out == "readable", (
            f"/rodir, listed twice in readonlyPaths, should be readable and refuse writes; stdout {out!r}, stderr {err!r}"
        )


# --------------------------------------------------------------------------------------------
# Destinations resolved inside the rootfs


@pytest.mark.parametrize("link", ["/real/target", "../../../real/target"], ids=["absolute", "climbing"])
@pytest.mark.spec("config.mounts.destination-inside")
def test_symlinked_destination_is_resolved_inside_the_rootfs(runtime, bundle_factory, container_factory, link):
    bundle = bundle_factory("report", edit=add_mounts(tmpfs("/linkdest", "size=1332k")))
    (bundle.rootfs / "real" / "target").mkdir(parents=True)
    os.symlink(link, bundle.rootfs / "linkdest")
    c = container_factory(bundle)
    c.create()
    c.start()
    c.wait()
    report = parse_report(c.stdout())
    ours = [m["mount_point"] for m in report["mounts"] if "size=1332k" in m["super_options"]]
    assert ours == ["/real/target"], (
        f"destination /linkdest is a symlink to {link}: resolved inside the container's root it is /real/target, where the tmpfs should be; it is at {ours}"
    )
