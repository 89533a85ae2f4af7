"""What mount options let a process do (config.md "Linux mount options"), observed from inside.

A host tree (cases/_trees.py: a folder that is a mount of its own, with a tmpfs mounted at
``sub``) is bound at /data with ``rbind``; the probe then tries, at /data and at /data/sub,
what the option governs: a write (ro), running a set-user-id copy of itself as uid 1000 and
printing the effective uid (nosuid), running a copy at all (noexec), opening a device node
(nodev), following a symlink (nosymfollow), reading a file or listing a folder whose access
time the case set (noatime, strictatime, nodiratime). ``try`` lets the probe go on after a
refusal; the refusals are read from its stderr.

* A recursive option (``rro``, ``rnosuid``...) restricts both mounts; its clearing twin
  (``rrw``, ``rsuid``...) frees both when the host gave them the restriction.
* A plain option on an ``rbind`` restricts the top mount only: "bind,ro is read-only, but not
  recursively" (mount(8), and the recursive options exist for the rest).
* The options not covered elsewhere (async, defaults, iversion, loud, noiversion, nolazytime,
  norelatime, nostrictatime, remount, silent, symfollow) are recognised, not handed to the
  filesystem (a tmpfs refuses words it does not know), and have mount(8)'s effect where the
  mount table shows it.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import time

import pytest
from _trees import HostTree

from harness._linux import (
    MS_NOATIME,
    MS_NODEV,
    MS_NODIRATIME,
    MS_NOEXEC,
    MS_NOSUID,
    MS_NOSYMFOLLOW,
    MS_RDONLY,
    MS_STRICTATIME,
)
from harness.probe import parse_report

pytestmark = pytest.mark.requires("root")

PLACES = ("/data", "/data/sub")
USER = 1000


@pytest.fixture
def tree():
    t = HostTree()
    yield t
    t.remove()


def host_path(tree, place):
    return tree.top if place == "/data" else tree.sub


# --------------------------------------------------------------------------------------------
# What each kind of option governs: how to set it up on the host, what the probe does, and
# whether a place turned out restricted.


def setup_suid(tree, probe):
    for place in PLACES:
        target = host_path(tree, place) / "suid-probe"
        shutil.copy(probe, target)
        os.chown(target, 0, 0)
        os.chmod(target, 0o4755)


def setup_exec(tree, probe):
    for place in PLACES:
        target = host_path(tree, place) / "prog"
        shutil.copy(probe, target)
        os.chmod(target, 0o755)


def setup_dev(tree, probe):
    for place in PLACES:
        os.mknod(host_path(tree, place) / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))


def setup_symlink(tree, probe):
    os.symlink("file.txt", tree.top / "link")
    os.symlink("inner.txt", tree.sub / "link")


NOW = int(time.time())


def setup_times(atime, mtime, folder=False):
    def setup(tree, probe):
        for place in PLACES:
            target = host_path(tree, place) / ("dir" if folder else "at.txt")
            if folder:
                target.mkdir()
                (target / "entry").write_text("x")
            else:
                target.write_text("atime\n")
            os.utime(target, (atime, mtime))

    return setup


def probe_times(out):
    return {json.loads(line)["path"]: json.loads(line)["atime"] for line in out.splitlines() if line.startswith("{")}


# kind -> (setup, verbs, restricted(place, out, err, set_atime) -> bool, what restricted means)
KINDS = {
    "write": (
        None,
        [v for p in PLACES for v in ("try", "write", f"{p}/new.txt", "x")],
        lambda p, out, err: f"probe: write {p}/new.txt: Read-only file system" in err,
        "a write fails with EROFS",
    ),
    "suid": (
        setup_suid,
        [v for p in PLACES for v in ("exec", f"{p}/suid-probe", "euid")],
        lambda p, out, err: out.splitlines()[PLACES.index(p)] == f"euid {USER}",
        f"a set-user-id root program run by uid {USER} keeps euid {USER}",
    ),
    "exec": (
        setup_exec,
        [v for p in PLACES for v in ("try", "exec", f"{p}/prog", "euid")],
        lambda p, out, err: f"probe: exec {p}/prog: Permission denied" in err,
        "exec is refused with EACCES",
    ),
    "dev": (
        setup_dev,
        [v for p in PLACES for v in ("try", "cat", f"{p}/null")],
        lambda p, out, err: f"probe: cat {p}/null: Permission denied" in err,
        "opening a device node fails with EACCES",
    ),
    "symfollow": (
        setup_symlink,
        [v for p in PLACES for v in ("try", "cat", f"{p}/link")],
        lambda p, out, err: f"probe: cat {p}/link: Too many levels of symbolic links" in err,
        "following a symlink fails with ELOOP",
    ),
    # atime older than mtime: relatime (the default) updates it, noatime does not
    "noatime": (
        setup_times(NOW - 7200, NOW - 3600),
        [v for p in PLACES for v in ("cat", f"{p}/at.txt")] + [v for p in PLACES for v in ("times", f"{p}/at.txt")],
        lambda p, out, err: probe_times(out)[f"{p}/at.txt"] == NOW - 7200,
        "reading a file whose atime is older than its mtime leaves the atime as it was",
    ),
    # atime newer than mtime and ctime (so in the future: setting it makes ctime now) and not a
    # day old: relatime leaves it, strictatime updates it
    "strictatime": (
        setup_times(NOW + 3600, NOW - 7200),
        [v for p in PLACES for v in ("cat", f"{p}/at.txt")] + [v for p in PLACES for v in ("times", f"{p}/at.txt")],
        lambda p, out, err: probe_times(out)[f"{p}/at.txt"] != NOW + 3600,
        "reading a file whose atime is newer than its mtime and ctime updates the atime",
    ),
    "diratime": (
        setup_times(NOW - 7200, NOW - 3600, folder=True),
        [v for p in PLACES for v in ("ls", f"{p}/dir")] + [v for p in PLACES for v in ("times", f"{p}/dir")],
        lambda p, out, err: probe_times(out)[f"{p}/dir"] == NOW - 7200,
        "listing a folder whose atime is older than its mtime leaves the atime as it was",
    ),
}


def run_tree(bundle_factory, container_factory, probe_binary, tree, kind, options, host_flags=0):
    setup, verbs, restricted, meaning = KINDS[kind]
    tree.restrict(host_flags)
    if setup:
        setup(tree, probe_binary)

    def edit(config):
        config["mounts"].append(
            {"destination": "/data", "type": "bind", "source": str(tree.top), "options": ["rbind", *options]}
        )
        if kind == "suid":
            config["process"]["user"] = {"uid": USER, "gid": USER}
            config["process"]["noNewPrivileges"] = False

    bundle = bundle_factory(*verbs, edit=edit)
    c = container_factory(bundle)
    c.create()
    c.start()
    end = c.wait()
    out, err = c.stdout(), c.stderr()
    assert end.code in (0, None), f"the probe failed ({end}); stdout {out!r}, stderr {err!r}"
    return {p: restricted(p, out, err) for p in PLACES}, meaning, out, err


# --------------------------------------------------------------------------------------------
# Recursive options: the mount and every mount below it


# option -> (kind, the flags the host tree has, whether the option restricts)
RECURSIVE = {
    "rro": ("write", 0, True),
    "rrw": ("write", MS_RDONLY, False),
    "rnosuid": ("suid", 0, True),
    "rsuid": ("suid", MS_NOSUID, False),
    "rnoexec": ("exec", 0, True),
    "rexec": ("exec", MS_NOEXEC, False),
    "rdev": ("dev", MS_NODEV, False),
    "rnosymfollow": ("symfollow", 0, True),
    "rsymfollow": ("symfollow", MS_NOSYMFOLLOW, False),
    "rnoatime": ("noatime", 0, True),
    "ratime": ("noatime", MS_NOATIME, False),
    "rrelatime": ("noatime", MS_NOATIME, False),
    "rstrictatime": ("strictatime", 0, True),
    "rnostrictatime": ("strictatime", MS_STRICTATIME, False),
    "rnodiratime": ("diratime", 0, True),
    "rdiratime": ("diratime", MS_NODIRATIME, False),
}


@pytest.mark.parametrize(
    "option",
    [
        pytest.param(
            o, marks=[pytest.mark.spec(f"config.mounts.option.{o}"), pytest.mark.feature("mountOptions", contains=o)]
        )
        for o in RECURSIVE
    ],
)
def test_recursive_option_applies_to_every_mount_below(
    runtime, bundle_factory, container_factory, probe_binary, tree, option
):
    kind, host_flags, restricts = RECURSIVE[option]
    got, meaning, out, err = run_tree(bundle_factory, container_factory, probe_binary, tree, kind, [option], host_flags)
    if restricts:
        wrong = [p for p in PLACES if not got[p]]
        assert not wrong, (
            f"rbind,{option}: at {' and '.join(wrong)} it is not so that {meaning} (the option is recursive: /data and its submount /data/sub); stdout {out!r}, stderr {err!r}"
        )
    else:
        wrong = [p for p in PLACES if got[p]]
        assert not wrong, (
            f"rbind,{option} on a host tree whose mounts are restricted (flags {host_flags:#x}): at {' and '.join(wrong)} {meaning} still, the recursive option should have lifted it from /data and /data/sub; stdout {out!r}, stderr {err!r}"
        )


@pytest.mark.spec("config.mounts.option.rnorelatime")
@pytest.mark.feature("mountOptions", contains="rnorelatime")
def test_rnorelatime_is_recognised(runtime, run_probe, tree):
    """mount(8)'s norelatime only stops asking for relatime (the kernel's default then applies),
    so which access-time mode results is left open: the option is accepted, not handed to the
    filesystem, and the tree is mounted with its submount."""
    _, report = run_probe(
        "report",
        edit=lambda c: c["mounts"].append(
            {"destination": "/data", "type": "bind", "source": str(tree.top), "options": ["rbind", "rnorelatime"]}
        ),
    )
    missing = [p for p in PLACES if not any(m["mount_point"] == p for m in report["mounts"])]
    assert not missing, f"rbind,rnorelatime: nothing is mounted at {missing}"


# --------------------------------------------------------------------------------------------
# Plain options on an rbind: the top mount only


PLAIN = {
    "ro": "write",
    "nosuid": "suid",
    "noexec": "exec",
    "nodev": "dev",
    "nosymfollow": "symfollow",
    "noatime": "noatime",
    "strictatime": "strictatime",
    "nodiratime": "diratime",
}


@pytest.mark.parametrize(
    "option", [pytest.param(o, marks=pytest.mark.spec(f"config.mounts.option.{o}")) for o in PLAIN]
)
def test_plain_option_applies_to_the_mount_alone(
    runtime, bundle_factory, container_factory, probe_binary, tree, option
):
    got, meaning, out, err = run_tree(bundle_factory, container_factory, probe_binary, tree, PLAIN[option], [option])
    assert got["/data"], f"rbind,{option}: at /data it is not so that {meaning}; stdout {out!r}, stderr {err!r}"
    assert not got["/data/sub"], (
        f"rbind,{option}: {meaning} at the submount /data/sub too, but {option} is not recursive (mount(8): bind,{option} applies to the top mount; r{option} is the recursive option); stdout {out!r}, stderr {err!r}"
    )


# --------------------------------------------------------------------------------------------
# The options the mount table shows, or only their acceptance


def tmpfs_at(destination, *options):
    return {"destination": destination, "type": "tmpfs", "source": "tmpfs", "options": [*options, "size=1024k"]}


def mount_at(report, place):
    found = [m for m in report["mounts"] if m["mount_point"] == place]
    return found[-1] if found else None


# option -> (options, [(field, flag, present?)])
TABLE_OPTIONS = {
    "async": (["sync", "async"], [("super_options", "sync", False)]),
    "defaults": (
        ["defaults"],
        [
            ("options", "rw", True),
            ("options", "nosuid", False),
            ("options", "nodev", False),
            ("options", "noexec", False),
            ("super_options", "defaults", False),
        ],
    ),
    "iversion": (["iversion"], []),
    "noiversion": (["iversion", "noiversion"], []),
    "silent": (["silent"], []),
    "loud": (["silent", "loud"], []),
    "nolazytime": (["lazytime", "nolazytime"], [("super_options", "lazytime", False)]),
    "norelatime": (["relatime", "norelatime"], [("options", "noatime", False)]),
    "nostrictatime": (["strictatime", "nostrictatime"], [("options", "relatime", True)]),
    "symfollow": (["nosymfollow", "symfollow"], [("options", "nosymfollow", False)]),
}


@pytest.mark.parametrize(
    "option", [pytest.param(o, marks=pytest.mark.spec(f"config.mounts.option.{o}")) for o in TABLE_OPTIONS]
)
@pytest.mark.spec("config.mounts.option.table", "config.mounts.options")
def test_table_option_is_recognised(runtime, run_probe, option):
    """Each of these words is a flag for mount(2), not filesystem data: a tmpfs given it as data
    refuses the mount (EINVAL), so a mount that is made shows the word was recognised."""
    options, checks = TABLE_OPTIONS[option]
    _, report = run_probe("report", edit=lambda c: c["mounts"].append(tmpfs_at("/opt-test", *options)))
    m = mount_at(report, "/opt-test")
    assert m is not None, f"options {options}: nothing is mounted at /opt-test"
    for field, flag, present in checks:
        assert (flag in m[field]) == present, (
            f"options {options}: expected {'' if present else 'no '}{flag!r} among the mount's {field}, found {m[field]}"
        )


@pytest.mark.spec("config.mounts.option.remount")
def test_remount_changes_the_mount_in_place(runtime, bundle_factory, container_factory):
    def edit(config):
        config["mounts"] += [
            tmpfs_at("/rm", "mode=755"),
            {"destination": "/rm", "type": "tmpfs", "source": "tmpfs", "options": ["remount", "ro", "size=2048k"]},
        ]

    bundle = bundle_factory("report", "try", "write", "/rm/x", "x", edit=edit)
    c = container_factory(bundle)
    c.create()
    c.start()
    end = c.wait()
    out, err = c.stdout(), c.stderr()
    assert end.code in (0, None), f"the probe failed ({end}): {err!r}"
    report = parse_report(out.splitlines()[0])
    at = [m for m in report["mounts"] if m["mount_point"] == "/rm"]
    assert len(at) == 1, (
        f"remount should change the tmpfs at /rm, not stack another mount on it; mounts at /rm: {[m['super_options'] for m in at]}"
    )
    assert "size=2048k" in at[0]["super_options"], (
        f"remount,size=2048k: the tmpfs at /rm should now have size=2048k, its super options are {at[0]['super_options']}"
    )
    assert "ro" in at[0]["options"] + at[0]["super_options"], (
        f"remount,ro: the mount at /rm should now be read-only; options {at[0]['options']}, super options {at[0]['super_options']}"
    )
    assert "probe: write /rm/x: Read-only file system" in err, (
        f"after remount,ro a write at /rm should fail with EROFS; stderr {err!r}"
    )
