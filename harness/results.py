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

#: pytest's exit statuses (pytest.ExitCode), by number: 0 and 1 mean the run went to its end.
EXIT_STATUSES = {
    0: "ok",
    1: "tests failed",
    2: "interrupted",
    3: "internal error",
    4: "usage error",
    5: "no tests collected",
}


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
    import time

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


def write_jsonl(records: Iterable[dict[str, Any]], path: Path) -> None:
    _atomic_write(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def tap(records: list[dict[str, Any]]) -> str:
    """TAP version 13: a pass is ``ok``, a skip ``ok ... # SKIP reason``, an expected failure
    ``not ok ... # TODO reason`` (it failed, as expected: a TAP consumer does not count it). An
    xpass (strict: the runtime was fixed and its definition needs updating), a failure, an error
    and any outcome this writer does not know (a newer one, like ``leak``) are ``not ok``.
    """
    lines = ["TAP version 13", f"1..{len(records)}"]
    for i, r in enumerate(records, 1):
        name = r["case"].replace("\\", "\\\\").replace("#", "\\#")
        outcome = r["outcome"]
        ok = outcome in ("passed", "skipped")
        directive = ""
        if outcome == "skipped":
            directive = f" # SKIP {_one_line(r.get('reason'))}".rstrip()
        elif outcome == "xfailed":
            directive = f" # TODO expected failure: {_one_line(r.get('reason'))}".rstrip()
        lines.append(f"{'ok' if ok else 'not ok'} {i} - {name}{directive}")
        failed = outcome not in ("passed", "skipped", "xfailed")
        if failed or r.get("requirements"):
            lines.append("  ---")
            if r.get("requirements"):
                lines.append(
                    "  requirements: "
                    + json.dumps([f"{q['id']} ({q['level']}, {q['anchor']})" for q in r["requirements"]])
                )
            if r.get("runtime"):
                lines.append("  runtime: " + json.dumps(r["runtime"]))
            if failed:
                lines.append(f"  outcome: {json.dumps(outcome)}")
                message = (r.get("message") or "").strip()
                if message:
                    lines.append("  message: |")
                    lines.extend("    " + m for m in message.splitlines()[-40:])
            lines.append("  ...")
    return "\n".join(lines) + "\n"


def _one_line(text: str | None) -> str:
    """A directive's reason on one line (a newline would end the test line)."""
    return " ".join((text or "").split())


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
