import json
import shutil
import subprocess

import pytest

from harness import spec
from harness.errors import ConfigError


def paths(config):
    return [v.path for v in spec.validate(config)]


def test_default_config_is_valid():
    assert spec.validate(spec.default_config()) == []
    assert spec.validate(spec.default_config(rootless=True)) == []


@pytest.mark.skipif(shutil.which("runc") is None, reason="runc is not installed")
@pytest.mark.parametrize("rootless", [False, True])
def test_default_config_matches_runc_spec(tmp_path, rootless):
    subprocess.run(["runc", "spec", *(["--rootless"] if rootless else [])], cwd=tmp_path, check=True)
    theirs = json.loads((tmp_path / "config.json").read_text())
    ours = spec.default_config(rootless=rootless)
    # runc maps the calling user, as we do; our configs name the spec version the harness follows
    assert ours.pop("ociVersion") == spec.OCI_VERSION == "1.3.0"
    theirs.pop("ociVersion")
    assert ours == theirs


def test_rootless_maps_given_ids():
    config = spec.default_config(rootless=True, uid=1000, gid=100)
    assert config["linux"]["uidMappings"] == [{"containerID": 0, "hostID": 1000, "size": 1}]
    assert config["linux"]["gidMappings"] == [{"containerID": 0, "hostID": 100, "size": 1}]
    assert "network" not in [ns["type"] for ns in config["linux"]["namespaces"]]


def test_violations_name_json_paths():
    c = spec.default_config()
    del c["process"]["cwd"]
    c["process"]["args"] = []
    c["process"]["rlimits"].append({"type": "RLIMIT_NOFILE", "soft": 1, "hard": 2})
    c["process"]["rlimits"].append({"type": "RLIMIT_BOGUS", "soft": -1, "hard": 2})
    c["process"]["capabilities"]["effective"].append("CAP_MADE_UP")
    c["linux"]["namespaces"].append({"type": "pid"})
    c["linux"]["namespaces"].append({"type": "nope"})
    c["mounts"][0]["destination"] = 5
    c["process"]["env"].append("NOEQUALS")
    c["hooks"] = {"prestart": [{"path": "relative/hook", "timeout": 0}]}
    found = paths(c)
    for expected in [
        "$.process.cwd",
        "$.process.args",
        "$.process.rlimits[1].type",
        "$.process.rlimits[2].type",
        "$.process.rlimits[2].soft",
        "$.process.capabilities.effective[3]",
        "$.linux.namespaces[5].type",
        "$.linux.namespaces[6].type",
        "$.mounts[0].destination",
        "$.process.env[2]",
        "$.hooks.prestart[0].path",
        "$.hooks.prestart[0].timeout",
    ]:
        assert expected in found, f"{expected} not reported; got {found}"


def test_schema_violations_name_the_schema_path():
    c = spec.default_config()
    c["process"]["terminal"] = "yes"
    c["linux"]["rootfsPropagation"] = "sideways"
    found = {v.path: v for v in spec.validate(c)}
    assert (
        found["$.process.terminal"].section == "schema/config-schema.json#/properties/process/properties/terminal/type"
    )
    assert "sideways" in found["$.linux.rootfsPropagation"].message
    assert found["$.linux.rootfsPropagation"].section.startswith("schema/config-schema.json#/")


def test_what_the_schema_cannot_say_is_still_checked():
    c = spec.default_config()
    c["process"]["rlimits"].append(dict(c["process"]["rlimits"][0]))
    c["linux"]["namespaces"].append({"type": "pid"})
    c["annotations"] = {"": "empty key"}
    assert schema_only(c) == []
    assert {"$.process.rlimits[1].type", "$.linux.namespaces[5].type", "$.annotations"} <= set(paths(c))


def schema_only(config):
    from harness import schema

    return schema.validate(config)


def test_a_missing_spec_folder_is_one_clear_error(monkeypatch, tmp_path):
    from harness import schema

    monkeypatch.setenv("HARNESS_SPEC_DIR", str(tmp_path))
    with pytest.raises(schema.SchemaUnavailable, match=r"HARNESS_SPEC_DIR=.* has no schema/config-schema.json"):
        spec.validate(spec.default_config())


def test_missing_required_top_level():
    found = paths({})
    assert "$.ociVersion" in found and "$.root" in found
    assert paths([]) == ["$"]


def test_bad_semver_and_types():
    c = spec.default_config()
    c["ociVersion"] = "one"
    c["root"]["readonly"] = "yes"
    c["process"]["user"]["uid"] = -1
    c["process"]["terminal"] = 1
    c["process"]["oomScoreAdj"] = 5000
    c["linux"]["devices"] = [{"type": "x", "path": "dev/foo"}]
    found = paths(c)
    for expected in [
        "$.ociVersion",
        "$.root.readonly",
        "$.process.user.uid",
        "$.process.terminal",
        "$.process.oomScoreAdj",
        "$.linux.devices[0].type",
        "$.linux.devices[0].path",
    ]:
        assert expected in found, (expected, found)


def test_bool_is_not_an_int():
    c = spec.default_config()
    c["process"]["user"]["uid"] = True
    assert "$.process.user.uid" in paths(c)


def test_unknown_properties_are_allowed():
    c = spec.default_config()
    c["org.example.future"] = {"x": 1}
    c["process"]["somethingNew"] = True
    assert spec.validate(c) == []


def test_check_raises_with_every_violation():
    c = spec.default_config()
    c["process"]["args"] = []
    del c["process"]["cwd"]
    with pytest.raises(ConfigError) as err:
        spec.check(c, source="b/config.json")
    assert "b/config.json" in str(err.value) and "2 place(s)" in str(err.value)
    assert "$.process.args" in str(err.value) and "$.process.cwd" in str(err.value)


def test_load_errors(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        spec.load(tmp_path / "config.json")
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON at line 1"):
        spec.load(tmp_path / "config.json")
    (tmp_path / "config.json").write_text("[]")
    with pytest.raises(ConfigError, match="must be a JSON object"):
        spec.load(tmp_path / "config.json")


def test_dump_is_atomic_and_round_trips(tmp_path):
    c = spec.default_config()
    spec.dump(c, tmp_path / "config.json")
    assert spec.load(tmp_path / "config.json") == c
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_set_namespace():
    c = spec.default_config()
    spec.set_namespace(c, "network", "/proc/1/ns/net")
    assert {"type": "network", "path": "/proc/1/ns/net"} in c["linux"]["namespaces"]
    spec.set_namespace(c, "network", present=False)
    assert "network" not in [n["type"] for n in c["linux"]["namespaces"]]


def test_reused_answers_are_the_answers_of_a_fresh_validation():
    # schema.validate keeps each top-level property's errors by its JSON text: a config that
    # shares broken properties with one seen before gets exactly what a whole walk gives
    from harness import schema

    first = spec.default_config()
    first["process"]["args"] = "not a list"
    first["mounts"][0]["options"] = [1]
    first["linux"]["namespaces"] = [{"type": "bogus"}]
    second = json.loads(json.dumps(first))
    second["hostname"] = 7
    second["ociVersion"] = None
    for config in (first, second, first):
        folder, name = str(schema.spec_folder()), schema.DOCUMENTS["config"]
        validator = schema._validator(folder, name)
        whole = sorted(
            (schema._error(e, name) for e in validator.iter_errors(config)), key=lambda e: (e.path, e.schema_path)
        )
        assert schema.validate(config, "config") == whole
        assert len(whole) >= 3


def test_reused_nested_answers_are_the_answers_of_a_fresh_validation():
    # the properties of process and linux (through its $ref) are reused one by one as well:
    # configs that differ in one nested value, broken or not, get what a whole walk gives
    from harness import schema

    folder, name = str(schema.spec_folder()), schema.DOCUMENTS["config"]
    validator = schema._validator(folder, name)
    base = spec.default_config()
    base["linux"]["resources"]["memory"] = {"limit": "a lot"}
    base["process"]["user"] = {"uid": "root"}
    variants = []
    for args in (["/probe", "a"], ["/probe", "b"], "not a list", ["/probe", "a"]):
        for limit in ("a lot", 5, -1):
            config = json.loads(json.dumps(base))
            config["process"]["args"] = args
            config["linux"]["resources"]["memory"]["limit"] = limit
            variants.append(config)
    del variants[-1]["linux"]["namespaces"][0]["type"]
    variants[-2]["process"].pop("cwd")
    for config in variants:
        whole = sorted(
            (schema._error(e, name) for e in validator.iter_errors(config)), key=lambda e: (e.path, e.schema_path)
        )
        assert schema.validate(config, "config") == whole
    paths = {e.path for config in variants for e in schema.validate(config, "config")}
    assert {"$.process.user.uid", "$.linux.resources.memory.limit", "$.process.args", "$.process.cwd"} <= paths
    assert "$.linux.namespaces[0].type" in paths


def test_a_new_bundle_config_is_written_in_place_and_never_over_a_file(tmp_path):
    c = spec.default_config()
    spec.dump(c, tmp_path / "config.json", new=True)
    assert spec.load(tmp_path / "config.json") == c
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]
    assert oct((tmp_path / "config.json").stat().st_mode & 0o777) == oct(0o644)
    with pytest.raises(FileExistsError):
        spec.dump(c, tmp_path / "config.json", new=True)
    assert spec.load(tmp_path / "config.json") == c
