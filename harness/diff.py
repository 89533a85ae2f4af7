"""Differential runs: the same bundles on two runtimes, and every field where what the
containers saw differs.

A probe report is normalised first, so that what legitimately varies between two runs does not
show: namespace inodes become ``"host"`` or ``"new"``, mount ids and device numbers are
dropped and mounts are keyed by mount point, the container id in cgroup paths becomes
``<id>``. What is left should be the same on two conforming runtimes given the same config.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import spec

Edit = Callable[[dict[str, Any]], None]


def _user(config: dict[str, Any]) -> None:
    config["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [5, 10], "umask": 0o027}


def _readonly(config: dict[str, Any]) -> None:
    config["root"]["readonly"] = True


def _host_network(config: dict[str, Any]) -> None:
    spec.set_namespace(config, "network", present=False)


def _tmpfs(config: dict[str, Any]) -> None:
    config["mounts"].append(
        {
            "destination": "/scratch",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "nodev", "size=2m", "mode=1777"],
        }
    )


def _caps(config: dict[str, Any]) -> None:
    caps = ["CAP_CHOWN", "CAP_NET_RAW", "CAP_SYS_ADMIN"]
    config["process"]["capabilities"] = {
        k: list(caps) for k in ("bounding", "effective", "permitted", "inheritable", "ambient")
    }
    config["process"]["noNewPrivileges"] = False


def _env_rlimits(config: dict[str, Any]) -> None:
    config["process"]["env"] = ["PATH=/bin", "A=1", "B=two words"]
    config["process"]["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 2048},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
    ]
    config["process"]["oomScoreAdj"] = 100


#: The bundles a differential run compares: a name and an edit of the probe bundle's config.
VARIANTS: dict[str, Edit] = {
    "default": lambda config: None,
    "user-and-groups": _user,
    "readonly-root": _readonly,
    "host-network": _host_network,
    "tmpfs-mount": _tmpfs,
    "capabilities": _caps,
    "env-rlimits-oom": _env_rlimits,
}


def normalise(
    report: dict[str, Any],
    host_namespaces: dict[str, int],
    container_id: str = "",
    config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A copy of a probe report without what legitimately varies between runs and runtimes.

    * namespace inodes become ``"host"`` or ``"new"``;
    * mounts are keyed by mount point, without ids and device numbers; the superblock's
      ro/rw and sizes the kernel derives (``nr_inodes``) are dropped, per-mount flags kept;
    * a masked path is only ``"masked"``: masking a file with /dev/null from the host or from
      the container's /dev, or a folder with an empty read-only tmpfs, are all allowed;
    * the tmpfs a runtime builds for a ``cgroup`` mount on cgroup v1 keeps only its type and
      per-mount flags;
    * with no ``linux.cgroupsPath`` the cgroups are the runtime's choice: their paths (and the
      roots of cgroup mounts) become ``"<runtime-defined>"``; otherwise the container id in
      them becomes ``<id>``.
    """
    config = config or {}
    linux = config.get("linux", {})
    masked = set(linux.get("maskedPaths", []))
    cgroup_mounts = {m.get("destination") for m in config.get("mounts", []) if m.get("type") == "cgroup"}
    cgroups_path_set = "cgroupsPath" in linux
    r = copy.deepcopy(report)
    r.pop("capabilities_raw", None)

    def cgroup_path(path: str) -> str:
        return path.replace(container_id, "<id>") if cgroups_path_set and container_id else "<runtime-defined>"

    if isinstance(r.get("namespaces"), dict):
        r["namespaces"] = {k: ("host" if v == host_namespaces.get(k) else "new") for k, v in r["namespaces"].items()}
    if isinstance(r.get("mounts"), list):
        mounts: dict[str, Any] = {}
        for m in r["mounts"]:
            point = m["mount_point"]
            if point in masked:
                mounts[point] = "masked"
                continue
            if point in cgroup_mounts:
                # On cgroup v1 the runtime builds a tmpfs holding one mount per hierarchy:
                # its label and size are the runtime's choice.
                mounts[point] = {"fstype": m["fstype"], "options": sorted(m["options"])}
                continue
            mounts[point] = {
                "fstype": m["fstype"],
                "root": cgroup_path(m["root"]) if m["fstype"] in ("cgroup", "cgroup2") else m["root"],
                "source": m["source"],
                "options": sorted(m["options"]),
                "super_options": sorted(
                    o for o in m["super_options"] if o not in ("ro", "rw") and not o.startswith("nr_inodes=")
                ),
                "propagation": sorted(o.split(":")[0] for o in m.get("optional", [])),
            }
        r["mounts"] = mounts
    if isinstance(r.get("cgroups"), list):
        for cg in r["cgroups"]:
            cg["path"] = cgroup_path(cg["path"])
    return r


@dataclass(frozen=True)
class Difference:
    path: str
    a: Any
    b: Any

    def __str__(self) -> str:
        return f"{self.path}: {json.dumps(self.a)} != {json.dumps(self.b)}"


def differences(a: Any, b: Any, path: str = "$") -> list[Difference]:
    """Every leaf where ``a`` and ``b`` differ, with its JSON path."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b), key=str):
            sub = f"{path}.{key}" if isinstance(key, str) and key.isidentifier() else f"{path}[{json.dumps(key)}]"
            if key not in a:
                out.append(Difference(sub, "<absent>", b[key]))
            elif key not in b:
                out.append(Difference(sub, a[key], "<absent>"))
            else:
                out.extend(differences(a[key], b[key], sub))
        return out
    if (
        isinstance(a, list)
        and isinstance(b, list)
        and len(a) == len(b)
        and any(isinstance(x, (dict, list)) for x in a + b)
    ):
        out = []
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            out.extend(differences(x, y, f"{path}[{i}]"))
        return out
    return [] if a == b else [Difference(path, a, b)]


def run_report(
    runtime: Any, bundle_dir: Path, workdir: Path, container_id: str, timeout: float = 30.0
) -> dict[str, Any]:
    """Run the probe's ``report`` in a container of ``bundle_dir`` and return it parsed."""
    from .probe import parse_report
    from .runtime import Container

    with Container(runtime, container_id, bundle_dir, workdir) as c:
        c.create()
        c.start()
        c.wait(timeout=timeout)
        return parse_report(c.stdout())


def compare(
    runtimes: list[Any], workdir: Path, variants: dict[str, Edit] | None = None, probe_binary: Path | None = None
) -> dict[str, list[Difference]]:
    """Run every variant on both runtimes; ``{variant: differences}`` (an empty list: the same)."""
    import uuid

    from . import host
    from .bundle import PROBE_PATH, create_bundle

    if len(runtimes) != 2:
        raise ValueError("a differential run compares exactly two runtimes")
    host_ns = host.namespace_inodes()
    out = {}
    for name, edit in (variants or VARIANTS).items():
        # One bundle for both runtimes: the same config and the same rootfs path.
        bundle = create_bundle(workdir / name, args=[PROBE_PATH, "report"], readonly=False, probe_binary=probe_binary)
        config = bundle.edit(edit)
        reports = []
        for rt in runtimes:
            cid = f"diff-{uuid.uuid4().hex[:10]}"
            reports.append(normalise(run_report(rt, bundle.path, workdir / "io", cid), host_ns, cid, config))
        out[name] = differences(reports[0], reports[1])
    return out
