from harness import diff, spec

HOST_NS = {"pid": 1, "net": 2, "mnt": 3}


def report(**over):
    base = {
        "pid": 1,
        "hostname": "h",
        "namespaces": {"pid": 10, "net": 2, "mnt": 11},
        "capabilities_raw": {"effective": "0x1"},
        "mounts": [
            {
                "id": 5,
                "parent": 1,
                "major": 0,
                "minor": 40,
                "root": "/b/rootfs",
                "mount_point": "/",
                "options": ["rw"],
                "optional": [],
                "fstype": "ext4",
                "source": "/dev/vda",
                "super_options": ["rw"],
            },
            {
                "id": 9,
                "parent": 5,
                "major": 0,
                "minor": 41,
                "root": "/",
                "mount_point": "/proc/kcore",
                "options": ["ro"],
                "optional": [],
                "fstype": "devtmpfs",
                "source": "udev",
                "super_options": ["rw", "nr_inodes=5"],
            },
            {
                "id": 7,
                "parent": 5,
                "major": 0,
                "minor": 42,
                "root": "/",
                "mount_point": "/tmp",
                "options": ["rw", "nosuid"],
                "optional": ["shared:3"],
                "fstype": "tmpfs",
                "source": "tmpfs",
                "super_options": ["rw", "size=1024k", "nr_inodes=99"],
            },
        ],
        "cgroups": [{"hierarchy": 0, "controllers": [], "path": "/runc-parent/cid-1"}],
    }
    base.update(over)
    return base


def test_normalise_drops_what_varies():
    config = spec.default_config()
    n = diff.normalise(report(), HOST_NS, "cid-1", config)
    assert n["namespaces"] == {"pid": "new", "net": "host", "mnt": "new"}
    assert "capabilities_raw" not in n
    assert n["mounts"]["/proc/kcore"] == "masked"
    assert n["mounts"]["/tmp"] == {
        "fstype": "tmpfs",
        "root": "/",
        "source": "tmpfs",
        "options": ["nosuid", "rw"],
        "super_options": ["size=1024k"],
        "propagation": ["shared"],
    }
    assert n["cgroups"][0]["path"] == "<runtime-defined>"
    config["linux"]["cgroupsPath"] = "/mine/cid-1"
    assert diff.normalise(report(), HOST_NS, "cid-1", config)["cgroups"][0]["path"] == "/runc-parent/<id>"


def test_differences_have_json_paths():
    a = {"x": 1, "m": {"/a b": {"o": [1, 2]}}, "l": [{"k": 1}], "only_a": 1}
    b = {"x": 2, "m": {"/a b": {"o": [1, 3]}}, "l": [{"k": 2}]}
    found = {d.path: (d.a, d.b) for d in diff.differences(a, b)}
    assert found == {"$.x": (1, 2), '$.m["/a b"].o': ([1, 2], [1, 3]), "$.l[0].k": (1, 2), "$.only_a": (1, "<absent>")}
    assert diff.differences(a, a) == []


def test_same_reports_from_different_runs_are_equal():
    config = spec.default_config()
    one = diff.normalise(report(), HOST_NS, "cid-1", config)
    other = report(
        namespaces={"pid": 99, "net": 2, "mnt": 98},
        cgroups=[{"hierarchy": 0, "controllers": [], "path": "/elsewhere/cid-2"}],
    )
    other["mounts"][2] = {
        **other["mounts"][2],
        "id": 77,
        "minor": 90,
        "super_options": ["rw", "size=1024k", "nr_inodes=12"],
    }
    assert diff.differences(one, diff.normalise(other, HOST_NS, "cid-2", config)) == []


def test_variants_give_valid_configs():
    for name, edit in diff.VARIANTS.items():
        config = spec.default_config()
        edit(config)
        assert spec.validate(config) == [], name
