"""The tidy result record every case produces, the environment block, and writers.

A record is a flat ``dict`` (one JSON object per line in ``results.jsonl``): pandas reads the
file straight into a frame. Writers here are pure functions of the records: they know nothing
of pytest.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SCHEMA = "oci-harness/conformance-result/1"

OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")


def environment(runtime_versions: dict[str, str]) -> dict[str, Any]:
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
    return {
        "kernel": uname.release,
        "machine": uname.machine,
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "hostname": uname.node,
        "cgroup_mode": host.cgroup_mode(),
        "python": platform.python_version(),
        "runtimes": runtime_versions,
    }


def write_jsonl(records: Iterable[dict[str, Any]], path: Path) -> None:
    _atomic_write(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def tap(records: list[dict[str, Any]]) -> str:
    """TAP version 13: skips are ``# SKIP``, expected failures ``# TODO`` (as runtime-tools reads them)."""
    lines = ["TAP version 13", f"1..{len(records)}"]
    for i, r in enumerate(records, 1):
        name = r["case"].replace("#", "\\#")
        outcome = r["outcome"]
        ok = outcome in ("passed", "skipped", "xfailed")
        directive = ""
        if outcome == "skipped":
            directive = f" # SKIP {r.get('reason') or ''}".rstrip()
        elif outcome == "xfailed":
            directive = f" # TODO expected failure: {r.get('reason') or ''}".rstrip()
        lines.append(f"{'ok' if ok else 'not ok'} {i} - {name}{directive}")
        if not ok or r.get("requirements"):
            lines.append("  ---")
            if r.get("requirements"):
                lines.append("  requirements: " + json.dumps([f"{q['id']} ({q['level']}, {q['anchor']})" for q in r["requirements"]]))
            if not ok:
                lines.append(f"  outcome: {outcome}")
                message = (r.get("message") or "").strip()
                if message:
                    lines.append("  message: |")
                    lines.extend("    " + m for m in message.splitlines()[-40:])
            lines.append("  ...")
    return "\n".join(lines) + "\n"


def _atomic_write(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_tap(records: list[dict[str, Any]], path: Path) -> None:
    _atomic_write(path, tap(records))
