"""Hypothesis strategies for OCI configs: valid ones whose effect the probe can observe, and
invalid ones a runtime must refuse at create.

A generated valid config is a :class:`Wish`: the edits to apply to a probe bundle's config
and what the probe must then see. Needs ``hypothesis`` (the ``test`` extra).
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from . import spec

_HOST_LABEL = st.text(alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=20)
hostnames = st.builds(lambda parts: "-".join(parts)[:63], st.lists(_HOST_LABEL, min_size=1, max_size=3))

# The alphabet is the regex's own characters: without it hypothesis first maps every code point
# that UTF-8 encodes (2 s of CPU per process where its cache folder is new, as in a fresh
# checkout or a VM); the values drawn are the same.
_ENV_KEY = st.from_regex(
    r"\A[A-Z_][A-Z0-9_]{0,15}\Z", fullmatch=True, alphabet=string.ascii_uppercase + string.digits + "_"
).filter(lambda k: k not in ("PATH", "HOME"))
_ENV_VALUE = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30)
envs = st.dictionaries(_ENV_KEY, _ENV_VALUE, max_size=6).map(lambda d: [f"{k}={v}" for k, v in d.items()])

_PATH_PART = st.text(alphabet=string.ascii_lowercase + string.digits + "_-", min_size=1, max_size=10)
abs_paths = st.lists(_PATH_PART, min_size=1, max_size=3).map(lambda parts: "/" + "/".join(parts))

# Arguments the probe carries verbatim (its `note` verb ignores them); any bytes but NUL.
_ARG = st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=20)
extra_args = st.lists(_ARG, max_size=4)

ids = st.integers(min_value=0, max_value=65534)
umasks = st.integers(min_value=0, max_value=0o777)

# Limits the probe can live with (no AS, DATA, STACK, FSIZE, RSS: they would break the probe
# itself or its output, not test the runtime).
_RLIMIT_RANGES = {
    "RLIMIT_NOFILE": (64, 65536),
    "RLIMIT_CORE": (0, 2**30),
    "RLIMIT_NPROC": (64, 2**20),
    "RLIMIT_MEMLOCK": (0, 2**26),
    "RLIMIT_LOCKS": (0, 2**20),
    "RLIMIT_SIGPENDING": (0, 2**16),
    "RLIMIT_MSGQUEUE": (0, 2**24),
    "RLIMIT_NICE": (0, 40),
    "RLIMIT_RTPRIO": (0, 99),
    "RLIMIT_CPU": (60, 2**20),
}


def _current_hard(rtype: str) -> int | None:
    """The caller's hard limit: raising it needs CAP_SYS_RESOURCE, which a root without it lacks."""
    import resource

    number = getattr(resource, rtype, 10 if rtype == "RLIMIT_LOCKS" else None)
    if number is None:
        return None
    hard = resource.getrlimit(number)[1]
    return None if hard == resource.RLIM_INFINITY else hard


@st.composite
def _rlimit(draw: Any, rtype: str) -> dict[str, Any]:
    low, high = _RLIMIT_RANGES[rtype]
    cap = _current_hard(rtype)
    high = min(high, cap) if cap is not None else high
    low = min(low, high)
    hard = draw(st.integers(min_value=low, max_value=high))
    soft = draw(st.integers(min_value=low, max_value=hard))
    return {"type": rtype, "soft": soft, "hard": hard}


@st.composite
def rlimits(draw: Any) -> list[dict[str, Any]]:
    types = draw(st.lists(st.sampled_from(sorted(_RLIMIT_RANGES)), unique=True, max_size=4))
    return [draw(_rlimit(t)) for t in types]


annotation_maps = st.dictionaries(
    st.builds(lambda a, b: f"org.example.{a}.{b}", _HOST_LABEL, _HOST_LABEL),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20),
    max_size=4,
)


@dataclass
class Wish:
    """A generated valid config: its fields, and the folders to make in the rootfs or on the host."""

    hostname: str
    env: list[str]
    args: list[str]
    cwd: str
    uid: int
    gid: int
    groups: list[int]
    umask: int
    rlimits: list[dict[str, Any]]
    tmpfs: list[tuple[str, int]] = field(default_factory=list)  # (destination, size in KiB)
    binds: list[str] = field(default_factory=list)  # destinations of bind mounts of host folders
    annotations: dict[str, str] = field(default_factory=dict)

    def apply(self, config: dict[str, Any], bind_sources: dict[str, str]) -> None:
        config["hostname"] = self.hostname
        process = config["process"]
        process["args"] = ["probe", "report", *[x for a in self.args for x in ("note", a)]]
        process["env"] = ["PATH=/", "HOME=/", *self.env]
        process["cwd"] = self.cwd
        process["user"] = {"uid": self.uid, "gid": self.gid, "additionalGids": list(self.groups), "umask": self.umask}
        process["rlimits"] = [dict(r) for r in self.rlimits]
        for dest, size in self.tmpfs:
            config["mounts"].append(
                {
                    "destination": dest,
                    "type": "tmpfs",
                    "source": "tmpfs",
                    "options": ["nosuid", f"size={size}k", "mode=755"],
                }
            )
        for dest in self.binds:
            config["mounts"].append(
                {"destination": dest, "type": "bind", "source": bind_sources[dest], "options": ["rbind", "ro"]}
            )
        if self.annotations:
            config["annotations"] = dict(self.annotations)


@st.composite
def wishes(draw: Any) -> Wish:
    mount_points = draw(st.lists(abs_paths.map(lambda p: "/m" + p), unique=True, max_size=3))
    # no mount point may be a prefix of another: mounting order would then matter
    chosen: list[str] = []
    for p in mount_points:
        if not any(p == q or p.startswith(q + "/") or q.startswith(p + "/") for q in chosen):
            chosen.append(p)
    kinds = draw(st.lists(st.booleans(), min_size=len(chosen), max_size=len(chosen)))
    # sizes in whole pages: the kernel rounds a tmpfs size up to one
    tmpfs = [
        (p, 4 * draw(st.integers(min_value=16, max_value=1024)))
        for p, is_tmpfs in zip(chosen, kinds, strict=False)
        if is_tmpfs
    ]
    binds = [p for p, is_tmpfs in zip(chosen, kinds, strict=False) if not is_tmpfs]
    return Wish(
        hostname=draw(hostnames),
        env=draw(envs),
        args=draw(extra_args),
        cwd=draw(abs_paths.map(lambda p: "/w" + p)),
        uid=draw(ids),
        gid=draw(ids),
        groups=draw(st.lists(ids, unique=True, max_size=5)),
        umask=draw(umasks),
        rlimits=draw(rlimits()),
        tmpfs=tmpfs,
        binds=binds,
        annotations=draw(annotation_maps),
    )


# --------------------------------------------------------------------------------------------
# Invalid configs: each mutation breaks one rule the runtime MUST enforce at create.


def _unknown_rlimit(config: dict[str, Any], name: str) -> None:
    config["process"].setdefault("rlimits", []).append({"type": f"RLIMIT_{name.upper()}", "soft": 1, "hard": 1})


def _duplicate_rlimit(config: dict[str, Any], _: str) -> None:
    # The second entry lowers the first: applying both would succeed, so only the duplication
    # itself can be the reason for a refusal.
    config["process"]["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": 200, "hard": 200},
        {"type": "RLIMIT_NOFILE", "soft": 100, "hard": 100},
    ]


def _missing_bind_source(config: dict[str, Any], name: str) -> None:
    config["mounts"].append(
        {"destination": "/missing", "type": "bind", "source": f"/nonexistent-harness-{name}", "options": ["rbind"]}
    )


def _missing_namespace_path(config: dict[str, Any], name: str) -> None:
    spec.set_namespace(config, "network", f"/nonexistent-harness-{name}/ns/net")


def _missing_rootfs(config: dict[str, Any], name: str) -> None:
    config["root"]["path"] = f"no-such-rootfs-{name}"


#: name -> mutation(config, token). An unknown capability is not here: the current spec asks
#: for a warning there, not an error (config.md#linux-process).
INVALID: dict[str, Any] = {
    "unknown-rlimit": _unknown_rlimit,
    "duplicate-rlimit": _duplicate_rlimit,
    "missing-bind-source": _missing_bind_source,
    "missing-namespace-path": _missing_namespace_path,
    "missing-rootfs": _missing_rootfs,
}

tokens = st.text(alphabet=string.ascii_lowercase, min_size=3, max_size=8).filter(
    lambda t: "RLIMIT_" + t.upper() not in spec.RLIMIT_TYPES and "CAP_" + t.upper() not in spec.CAPABILITIES
)
