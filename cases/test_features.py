"""Features (features.md, features-linux.md): the JSON document a runtime's ``features``
command prints is well formed, and true where it can be checked here: every version, hook,
mount option, namespace, capability and seccomp name it lists is accepted in a real container.

Runtimes without a ``features`` command skip these cases: the document is a MAY.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import _hooks
import pytest

from harness import spec
from harness.runtime import RuntimeCallError

pytestmark = pytest.mark.requires("root")

SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")

#: Every property the spec defines (features.md, features-linux.md, v1.3.0), by path.
DEFINED = {
    "": {
        "ociVersionMin",
        "ociVersionMax",
        "hooks",
        "mountOptions",
        "linux",
        "annotations",
        "potentiallyUnsafeConfigAnnotations",
    },
    "linux": {
        "namespaces",
        "capabilities",
        "cgroup",
        "seccomp",
        "apparmor",
        "selinux",
        "intelRdt",
        "memoryPolicy",
        "mountExtensions",
        "netDevices",
    },
    "linux.cgroup": {"v1", "v2", "systemd", "systemdUser", "rdma"},
    "linux.seccomp": {"enabled", "actions", "operators", "archs", "knownFlags", "supportedFlags"},
    "linux.apparmor": {"enabled"},
    "linux.selinux": {"enabled"},
    "linux.intelRdt": {"enabled", "schemata", "monitoring"},
    "linux.mountExtensions": {"idmap"},
    "linux.mountExtensions.idmap": {"enabled"},
    "linux.netDevices": {"enabled"},
    "linux.memoryPolicy": {"modes", "flags"},
}
#: Properties added after v1.2 (ChangeLog v1.3.0: netDevices #1271, memoryPolicy #1282, intelRdt
#: schemata #1291 and monitoring #1290): "defined in this version" holds for a runtime whose
#: ociVersionMax is at least that release (features.md#specification-version).
INTRODUCED = {
    "linux.netDevices": "1.3.0",
    "linux.memoryPolicy": "1.3.0",
    "linux.intelRdt.schemata": "1.3.0",
    "linux.intelRdt.monitoring": "1.3.0",
}
#: Types of the linux members: "strings" (array of strings), "bools" (object of booleans) or
#: "strings-map" (object of arrays of strings).
LINUX_TYPES = {
    "namespaces": "strings",
    "capabilities": "strings",
    "cgroup": "bools",
    "apparmor": "bools",
    "selinux": "bools",
    "intelRdt": "bools",
    "netDevices": "bools",
    "memoryPolicy": "strings-map",
}
SECCOMP_TYPES = {
    "enabled": bool,
    "actions": list,
    "operators": list,
    "archs": list,
    "knownFlags": list,
    "supportedFlags": list,
}

NAMESPACE_FILES = {
    "pid": "pid",
    "network": "net",
    "mount": "mnt",
    "ipc": "ipc",
    "uts": "uts",
    "user": "user",
    "cgroup": "cgroup",
    "time": "time",
}


#: The ``features`` call of each runtime object, made once per worker: a runtime's claims do
#: not change during a run (harness.features caches its parsed document alike). Each case still
#: judges the call's exit status and output itself.
_CALLS: dict[Any, Any] = {}


@pytest.fixture
def features(runtime) -> dict[str, Any]:
    """The runtime's features document; skips when the runtime has no ``features`` command."""
    proc = _CALLS.get(runtime)
    if proc is None:
        proc = _CALLS[runtime] = runtime.call("features", check=False, timeout=30)
    err = proc.stderr.decode(errors="replace").strip() if isinstance(proc.stderr, bytes) else proc.stderr
    if proc.returncode != 0:
        pytest.skip(
            f"{runtime.name} has no `features` command (exit {proc.returncode}: {err[:200]!r}); the features document is optional (features.md: MAY)"
        )
    out = proc.stdout.decode(errors="replace") if isinstance(proc.stdout, bytes) else proc.stdout
    try:
        doc = json.loads(out)
    except json.JSONDecodeError as e:
        pytest.fail(f"{runtime.name} features printed something that is not JSON ({e}): {out[:500]!r}")
    assert isinstance(doc, dict), f"the features document is a JSON {type(doc).__name__}, not an object: {out[:500]!r}"
    return doc


def listed(doc: dict[str, Any], *path: str) -> list[str] | None:
    node: Any = doc
    for key in path:
        if not isinstance(node, dict) or node.get(key) is None:
            return None
        node = node[key]
    return node


def semver_key(version: str) -> tuple:
    m = SEMVER.match(version)
    assert m, f"{version!r} is not a SemVer 2.0.0 version"
    major, minor, patch, pre = m.groups()
    # A pre-release sorts before its release (1.0.2-dev < 1.0.2); identifiers compare as SemVer says.
    ids = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split(".")) if pre else ()
    return (int(major), int(minor), int(patch), 0 if pre else 1, ids)


@pytest.mark.spec("features.document")
def test_features_document_is_a_json_object(runtime, features):
    assert features, "the features document is an empty object (ociVersionMin and ociVersionMax are REQUIRED)"


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("ociVersionMin", marks=pytest.mark.spec("features.oci-version-min")),
        pytest.param("ociVersionMax", marks=pytest.mark.spec("features.oci-version-max")),
    ],
)
def test_oci_version_bound_is_a_semver_string(runtime, features, key):
    value = features.get(key)
    assert isinstance(value, str), f"{key} is REQUIRED and a string, got {value!r}"
    assert SEMVER.match(value), f"{key} {value!r} is not a SemVer 2.0.0 version"


@pytest.mark.spec("features.oci-version-max-not-less")
def test_oci_version_max_not_less_than_min(runtime, features):
    low, high = features.get("ociVersionMin"), features.get("ociVersionMax")
    assert isinstance(low, str) and isinstance(high, str), f"ociVersionMin {low!r} / ociVersionMax {high!r} missing"
    assert semver_key(high) >= semver_key(low), f"ociVersionMax {high} is less than ociVersionMin {low}"


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("ociVersionMin", marks=pytest.mark.spec("features.oci-version-min-accepted")),
        pytest.param("ociVersionMax", marks=pytest.mark.spec("features.oci-version-max-accepted")),
    ],
)
def test_runtime_accepts_listed_oci_version(runtime, features, run_probe, key):
    version = features.get(key)
    if not isinstance(version, str) or not SEMVER.match(version):
        pytest.fail(f"{key} {version!r} is not a usable version string")

    def set_version(config):
        config["ociVersion"] = version

    try:
        _c, out = run_probe("hostname", edit=set_version)
    except RuntimeCallError as err:
        pytest.fail(f"a config with ociVersion {version!r} (the runtime's {key}) was refused: {err}")
    assert out.strip(), f"the container with ociVersion {version!r} did not run its program"


@pytest.mark.spec("features.defined-properties-only")
def test_features_holds_only_defined_properties(runtime, features):
    """features.md: "The Features structure MUST NOT contain properties that are not defined in
    this version of the Open Container Initiative Runtime Specification" (the version of
    ociVersionMax): a v1.3.0 property is defined for a runtime claiming 1.3.0, not one claiming 1.2.0."""
    top = features.get("ociVersionMax")
    unknown = []

    def walk(node: Any, path: str) -> None:
        for key, value in node.items():
            where = f"{path}.{key}" if path else key
            since = INTRODUCED.get(where)
            if key not in DEFINED[path]:
                unknown.append(where)
            elif (
                since is not None and isinstance(top, str) and SEMVER.match(top) and semver_key(top) < semver_key(since)
            ):
                unknown.append(f"{where} (defined since {since}, ociVersionMax is {top})")
            elif where in DEFINED and isinstance(value, dict):
                walk(value, where)

    walk(features, "")
    assert not unknown, f"the features document holds properties the runtime spec does not define: {unknown}"


@pytest.mark.spec("features.annotations.map")
def test_features_annotations_are_a_string_map(runtime, features):
    annotations = features.get("annotations")
    if annotations is None:
        pytest.skip(f"{runtime.name} lists no annotations")
    assert isinstance(annotations, dict), f"annotations is a {type(annotations).__name__}, not a map"
    bad = {k: v for k, v in annotations.items() if not k or not isinstance(v, str)}
    assert not bad, f"annotations with an empty key or a non-string value: {bad}"


@pytest.mark.spec("features.linux.structure")
def test_features_linux_members_have_spec_types(runtime, features):
    linux = features.get("linux")
    if linux is None:
        pytest.skip(f"{runtime.name} has no linux features")
    assert isinstance(linux, dict), f"linux is a {type(linux).__name__}, not an object"
    wrong = []
    for key, kind in LINUX_TYPES.items():
        value = linux.get(key)
        if value is None:
            continue
        if kind == "strings" and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            wrong.append(f"linux.{key} = {value!r} (expected an array of strings)")
        if kind == "bools" and not (
            isinstance(value, dict) and all(isinstance(v, bool) or v is None for v in value.values())
        ):
            wrong.append(f"linux.{key} = {value!r} (expected an object of booleans)")
        if kind == "strings-map" and not (
            isinstance(value, dict)
            and all(v is None or (isinstance(v, list) and all(isinstance(x, str) for x in v)) for v in value.values())
        ):
            wrong.append(f"linux.{key} = {value!r} (expected an object of arrays of strings)")
    seccomp = linux.get("seccomp")
    if seccomp is not None:
        for key, value in seccomp.items() if isinstance(seccomp, dict) else [("", seccomp)]:
            want = SECCOMP_TYPES.get(key)
            if value is None or want is None:
                continue
            if not isinstance(value, want) or (want is list and not all(isinstance(v, str) for v in value)):
                wrong.append(
                    f"linux.seccomp.{key} = {value!r} (expected {'a boolean' if want is bool else 'an array of strings'})"
                )
    for key in ("hooks", "mountOptions"):
        value = features.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            wrong.append(f"{key} = {value!r} (expected an array of strings)")
    assert not wrong, "members of the features document have the wrong type:\n" + "\n".join(wrong)


# --------------------------------------------------------------------------------------------
# What the document lists works


@pytest.mark.spec("features.hooks.supported")
def test_listed_hooks_run(runtime, features, bundle_factory, container_factory, tmp_path):
    kinds = listed(features, "hooks")
    if not kinds:
        pytest.skip(f"{runtime.name} lists no hooks")
    unknown = [k for k in kinds if k not in _hooks.KINDS]
    assert not unknown, f"hooks lists names that are not hooks of config.md: {unknown}"
    bundle = bundle_factory()
    setup = _hooks.install(bundle, tmp_path)
    hooks = {kind: [_hooks.hook_entry(setup, kind, 0)] for kind in kinds}

    def edit(config):
        config["hooks"] = hooks
        config["process"]["args"] = _hooks.user_process("pause")

    bundle.edit(edit)
    c = container_factory(bundle)
    c.create()
    c.start()
    setup.wait_for(_hooks.USER_LABEL)
    c.kill("TERM")
    c.wait()
    c.wait_status("stopped")
    c.delete()
    ran = {r.kind for r in setup.records()}
    missing = [k for k in kinds if k not in ran]
    assert not missing, (
        f"listed hooks that never ran in a full create/start/kill/delete: {missing}; the log holds {setup.labels()}"
    )


def _mount_for(option: str, index: int, tmp_path) -> dict[str, Any]:
    destination = f"/mnt/o{index}"
    if option in ("bind", "rbind"):
        source = tmp_path / f"bind-src-{index}"
        source.mkdir(exist_ok=True)
        return {"destination": destination, "type": "bind", "source": str(source), "options": [option]}
    if option in ("idmap", "ridmap"):
        # without mappings or a user namespace idmap MUST be an error (config.md), so the mount
        # brings its own mappings; id-mapped mounts are made of bind mounts
        source = tmp_path / f"bind-src-{index}"
        source.mkdir(exist_ok=True)
        mapping = [{"containerID": 0, "hostID": 2000, "size": 10}]
        return {
            "destination": destination,
            "type": "bind",
            "source": str(source),
            "options": ["rbind", option],
            "uidMappings": mapping,
            "gidMappings": mapping,
        }
    return {"destination": destination, "type": "tmpfs", "source": "tmpfs", "options": [option]}


def _runs_with_mounts(run_probe, mounts: list[dict[str, Any]]) -> str | None:
    """None if a container with these extra mounts runs; the runtime's complaint otherwise."""

    def add(config):
        config["mounts"] = config["mounts"] + mounts

    try:
        run_probe("exit", "0", edit=add)
    except (RuntimeCallError, AssertionError) as err:
        return str(err).strip().splitlines()[-1][:300]
    return None


@pytest.mark.spec("features.mount-options.recognized")
def test_listed_mount_options_are_recognized(runtime, features, run_probe, tmp_path):
    """One container with a mount per listed option (a tmpfs; a bind mount for bind and rbind):
    an option the runtime does not recognize goes to the filesystem as data, which tmpfs refuses.

    Only if it fails are the options halved, and halved again, to name the ones refused.
    """
    options = listed(features, "mountOptions")
    if not options:
        pytest.skip(f"{runtime.name} lists no mount options")
    # remount changes an existing mount; on the new mount a config entry makes, mount(2) refuses
    # it (EINVAL) however well the runtime knows it, so it is left out.
    options = [o for o in options if o != "remount"]
    mounts = dict(zip(options, (_mount_for(o, i, tmp_path) for i, o in enumerate(options)), strict=False))
    refused: dict[str, str] = {}

    def find_refused(group: list[str]) -> None:
        # Halve a failing group until each refused option stands alone (few containers per culprit).
        problem = _runs_with_mounts(run_probe, [mounts[o] for o in group])
        if problem is None:
            return
        if len(group) == 1:
            refused[group[0]] = problem
            return
        find_refused(group[: len(group) // 2])
        find_refused(group[len(group) // 2 :])

    find_refused(list(options))
    assert not refused, f"listed mount options a container could not use: {refused}"


@pytest.mark.spec("features.mount-options.no-fs-specific")
def test_mount_options_are_not_filesystem_specific(runtime, features):
    options = listed(features, "mountOptions") or []
    data_like = [o for o in options if "=" in o]
    assert not data_like, f"mountOptions lists filesystem-specific (key=value data) options: {data_like}"


@pytest.mark.parametrize("ns_type", sorted(NAMESPACE_FILES), ids=sorted(NAMESPACE_FILES))
@pytest.mark.spec("features.linux.namespaces.recognized")
def test_listed_namespace_can_be_created(runtime, features, run_probe, host_namespaces, ns_type):
    names = listed(features, "linux", "namespaces") or []
    if ns_type not in names:
        pytest.skip(f"{runtime.name} does not list the {ns_type} namespace")
    if NAMESPACE_FILES[ns_type] not in host_namespaces:
        pytest.skip(f"the host kernel has no {ns_type} namespace")

    def add(config):
        spec.set_namespace(config, ns_type)
        if ns_type == "user":
            config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 0, "size": 65536}]
            config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 0, "size": 65536}]

    _, report = run_probe("report", edit=add)
    name = NAMESPACE_FILES[ns_type]
    inside = report["namespaces"].get(name)
    assert inside is not None and inside != host_namespaces[name], (
        f"the listed {ns_type} namespace was not created: inode {inside}, host {host_namespaces[name]}"
    )


def _bounding_set() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapBnd:"):
                return int(line.split()[1], 16)
    return 0


@pytest.mark.spec("features.linux.capabilities.recognized")
def test_listed_capabilities_are_recognized(runtime, features, run_probe):
    caps = listed(features, "linux", "capabilities")
    if not caps:
        pytest.skip(f"{runtime.name} lists no capabilities")
    # A container can only get what the runtime itself holds: the capabilities in our bounding
    # set (spec.CAPABILITIES is in kernel numbering order). Others may rightly be refused.
    bounding = _bounding_set()
    known = {name for bit, name in enumerate(spec.CAPABILITIES) if bounding >> bit & 1}
    grantable = [c for c in caps if c in known]

    def grant(config):
        config["process"]["capabilities"] = {s: list(grantable) for s in ("bounding", "effective", "permitted")}

    _, report = run_probe("report", edit=grant)
    effective = set(report["capabilities"]["effective"] or [])
    missing = sorted(c for c in caps if c in known and c not in effective)
    assert not missing, f"listed capabilities the host kernel knows but the container did not get: {missing}"


#: Syscalls the probe never makes: rules on them change nothing it does.
UNUSED_SYSCALLS = [
    "acct",
    "swapon",
    "swapoff",
    "vhangup",
    "syslog",
    "iopl",
    "ioperm",
    "setdomainname",
    "quotactl",
    "kexec_load",
    "init_module",
    "delete_module",
    "adjtimex",
    "settimeofday",
    "clock_adjtime",
    "uselib",
    "ustat",
    "sysfs",
]


def _seccomp_runs(run_probe, seccomp: dict[str, Any]) -> None:
    def apply(config):
        config["linux"]["seccomp"] = seccomp

    try:
        _, report = run_probe("report", edit=apply)
    except (RuntimeCallError, AssertionError) as err:
        pytest.fail(f"a container with seccomp {json.dumps(seccomp)} did not run: {err}")
    assert report["seccomp"] == 2, f"the container runs without a seccomp filter (mode {report['seccomp']})"


@pytest.mark.spec("features.linux.seccomp.actions")
def test_listed_seccomp_actions_are_recognized(runtime, features, run_probe):
    actions = listed(features, "linux", "seccomp", "actions")
    if not actions:
        pytest.skip(f"{runtime.name} lists no seccomp actions")
    # SCMP_ACT_NOTIFY needs a listener on linux.seccomp.listenerPath; it is left out.
    usable = [a for a in actions if a != "SCMP_ACT_NOTIFY" and a != "SCMP_ACT_ALLOW"]
    assert len(usable) <= len(UNUSED_SYSCALLS)
    rules = [{"names": [UNUSED_SYSCALLS[i]], "action": a} for i, a in enumerate(usable)]
    _seccomp_runs(run_probe, {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules})


@pytest.mark.spec("features.linux.seccomp.operators")
def test_listed_seccomp_operators_are_recognized(runtime, features, run_probe):
    operators = listed(features, "linux", "seccomp", "operators")
    if not operators:
        pytest.skip(f"{runtime.name} lists no seccomp operators")
    rules = []
    for i, op in enumerate(operators):
        arg = {"index": 0, "value": 12345, "op": op}
        if op == "SCMP_CMP_MASKED_EQ":
            arg["valueTwo"] = 12345
        rules.append({"names": [UNUSED_SYSCALLS[i % len(UNUSED_SYSCALLS)]], "action": "SCMP_ACT_ERRNO", "args": [arg]})
    _seccomp_runs(run_probe, {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules})


#: Byte order of the seccomp architectures libseccomp knows.
SECCOMP_ARCH_BYTE_ORDER = {
    **dict.fromkeys(
        [
            "SCMP_ARCH_X86",
            "SCMP_ARCH_X86_64",
            "SCMP_ARCH_X32",
            "SCMP_ARCH_ARM",
            "SCMP_ARCH_AARCH64",
            "SCMP_ARCH_MIPSEL",
            "SCMP_ARCH_MIPSEL64",
            "SCMP_ARCH_MIPSEL64N32",
            "SCMP_ARCH_PPC64LE",
            "SCMP_ARCH_RISCV64",
            "SCMP_ARCH_LOONGARCH64",
            "SCMP_ARCH_SH",
        ],
        "little",
    ),
    **dict.fromkeys(
        [
            "SCMP_ARCH_MIPS",
            "SCMP_ARCH_MIPS64",
            "SCMP_ARCH_MIPS64N32",
            "SCMP_ARCH_PPC",
            "SCMP_ARCH_PPC64",
            "SCMP_ARCH_S390",
            "SCMP_ARCH_S390X",
            "SCMP_ARCH_PARISC",
            "SCMP_ARCH_PARISC64",
            "SCMP_ARCH_M68K",
            "SCMP_ARCH_SHEB",
        ],
        "big",
    ),
}


@pytest.mark.spec("features.linux.seccomp.archs")
def test_listed_seccomp_archs_are_recognized(runtime, features, run_probe):
    archs = listed(features, "linux", "seccomp", "archs")
    if not archs:
        pytest.skip(f"{runtime.name} lists no seccomp architectures")
    # One filter cannot mix byte orders (libseccomp refuses with EDOM): use the host's.
    order = "little" if sys.byteorder == "little" else "big"
    same_order = [a for a in archs if a in SECCOMP_ARCH_BYTE_ORDER and SECCOMP_ARCH_BYTE_ORDER[a] == order]
    if not same_order:
        pytest.skip(f"none of the listed architectures {archs} has the host's byte order")
    _seccomp_runs(
        run_probe,
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": same_order,
            "syscalls": [{"names": ["acct"], "action": "SCMP_ACT_ERRNO"}],
        },
    )


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("knownFlags", marks=pytest.mark.spec("features.linux.seccomp.known-flags")),
        pytest.param("supportedFlags", marks=pytest.mark.spec("features.linux.seccomp.supported-flags")),
    ],
)
def test_listed_seccomp_flags_are_accepted(runtime, features, run_probe, key):
    flags = listed(features, "linux", "seccomp", key)
    if not flags:
        pytest.skip(f"{runtime.name} lists no seccomp {key}")
    if key == "knownFlags":
        supported = set(listed(features, "linux", "seccomp", "supportedFlags") or [])
        flags = [f for f in flags if f in supported]  # a known flag the kernel lacks may be refused
        if not flags:
            pytest.skip(f"no flag of {runtime.name}'s knownFlags is also in supportedFlags")
    _seccomp_runs(
        run_probe,
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "flags": list(flags),
            "syscalls": [{"names": ["acct"], "action": "SCMP_ACT_ERRNO"}],
        },
    )
