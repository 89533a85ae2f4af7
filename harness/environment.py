"""The environment block (``environment.json``): what a run's results depend on besides the
runtime, and how the run ended. Its schema, version, writer and reader.

Both a conformance run (``pytest --results DIR``) and a bench run (``harness bench``) write one
beside their records: kernel, CPU, cgroup mode, Python, runtime versions, and ``run_status``
(complete, interrupted or failed, when, what was selected). A bench run adds its options and
the bundle folder's file system. Fields are documented in ``docs/results.md``.

Versions: ``schema`` is ``oci-harness/environment/<VERSION>``; blocks written before it existed
have no ``schema`` and are read as version 1. A newer version is refused with an error naming
both versions.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from . import atomic
from .errors import HarnessError
from .results import check_schema, read_json

KIND = "environment"
VERSION = 1
SCHEMA = f"oci-harness/{KIND}/{VERSION}"
FILE = "environment.json"

#: pytest's exit statuses (pytest.ExitCode), by number: 0 and 1 mean the run went to its end.
EXIT_STATUSES = {
    0: "ok",
    1: "tests failed",
    2: "interrupted",
    3: "internal error",
    4: "usage error",
    5: "no tests collected",
}


def collect(runtime_versions: dict[str, str]) -> dict[str, Any]:
    """What a result depends on besides the runtime: kernel, CPU, cgroup mode, versions."""
    from . import host

    uname = platform.uname()
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    facts = {
        "schema": SCHEMA,
        "kernel": uname.release,
        "machine": uname.machine,
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "hostname": uname.node,
        "cgroup_mode": host.cgroup_mode(),
        "python": platform.python_version(),
        "runtimes": runtime_versions,
    }
    if label := os.environ.get("HARNESS_HOST_LABEL", "").strip():
        # what a merged report calls this host (a CI job's image, a matrix cell), else its hostname
        facts["host_label"] = label
    return facts


def run_block(
    *,
    started: float,
    exitstatus: int,
    args: list[str],
    runtimes: list[str],
    collected: int,
    deselected: int,
    recorded: int,
    keyword: str = "",
    markexpr: str = "",
    without_runtime: int = 0,
    stopped_early: bool = False,
) -> dict[str, Any]:
    """How a conformance run went, for ``environment.json``: when, what was selected, and whether
    it ran to its end. ``status`` is ``complete`` (every selected case ran; some may have
    failed), ``interrupted`` (Ctrl-C, SIGTERM, ``-x``/``--maxfail``) or ``failed`` (pytest itself
    failed: internal or usage error, nothing collected). A report refuses a run that is not
    complete unless told to show it, and then flags it."""
    if exitstatus in (0, 1) and not stopped_early and recorded >= collected:
        status = "complete"
    elif exitstatus in (1, 2):
        status = "interrupted"
    else:
        status = "failed"
    selection = [f"-k {keyword}"] if keyword else []
    selection += [f"-m {markexpr}"] if markexpr else []
    return {
        "kind": "conformance",
        "status": status,
        "exitstatus": exitstatus,
        "exit": EXIT_STATUSES.get(exitstatus, str(exitstatus)),
        "started": started,
        "finished": time.time(),
        "args": args,
        "runtimes": runtimes,
        "collected": collected,
        "deselected": deselected,
        "recorded": recorded,
        "selection": selection,
        "without_runtime": without_runtime,
    }


def write(env: dict[str, Any], directory: Path) -> None:
    """``environment.json`` in ``directory`` (keys sorted, so two runs diff cleanly)."""
    atomic.write_text(Path(directory) / FILE, json.dumps({"schema": SCHEMA, **env}, indent=2, sort_keys=True) + "\n")


def read(path: Path) -> dict[str, Any]:
    """An ``environment.json``; every problem is a HarnessError naming the file."""
    env = read_json(path)
    if not isinstance(env, dict):
        raise HarnessError(f"{path}: the environment block must be a JSON object")
    check_schema(str(path), env.get("schema"), KIND, VERSION, SCHEMA)
    return env


def status_of(env: dict[str, Any]) -> dict[str, Any]:
    """The ``run_status`` block, or an empty one (an older harness, or a run killed before it
    could write it)."""
    status = env.get("run_status")
    return status if isinstance(status, dict) else {}
