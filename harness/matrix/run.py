"""Running the matrix's cells: one virtme-ng VM per kernel x cgroup mode, each running the
chosen cases on the chosen runtimes (see harness/matrix/__init__.py)."""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import HarnessError
from .kernels import Kernel

MODES = ("v1", "hybrid", "v2")
#: what `cell.json` / the run's outcome can be, besides the suite's own pass/fail
BOOT_FAILED, LAYOUT_FAILED, TIMED_OUT, INTERRUPTED, CRASHED = (
    "did-not-boot",
    "layout-failed",
    "timed-out",
    "interrupted",
    "vm-crashed",
)
#: the guest mounts the shared folder at the host's path (virtme-ng --rwdir)
_PERCENT = re.compile(r"\[\s*(\d+)%\]")


@dataclass
class Cell:
    kernel: Kernel
    mode: str
    out: Path

    @property
    def label(self) -> str:
        return f"{self.kernel.label}-{self.mode}"


@dataclass
class Outcome:
    cell: Cell
    status: str  # passed, failed (cases failed), or one of the VM-level statuses above
    seconds: float
    boot_seconds: float | None = None
    detail: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    accel: str = ""

    def line(self) -> str:
        counts = ", ".join(f"{n} {k}" for k, n in sorted(self.counts.items()))
        boot = f", boot {self.boot_seconds:.0f} s" if self.boot_seconds is not None else ""
        text = f"{self.cell.label}: {self.status} in {self.seconds / 60:.1f} min ({self.accel}{boot})"
        return text + (f": {counts}" if counts else "") + (f" — {self.detail}" if self.detail else "")


def vng_binary() -> str:
    """virtme-ng's ``vng``: beside this Python first (a virtualenv), then on PATH."""
    here = Path(sys.executable).parent / "vng"
    if here.is_file():
        return str(here)
    found = shutil.which("vng")
    if not found:
        raise HarnessError(
            "harness matrix needs virtme-ng (pip install 'oci-harness[matrix]') and QEMU "
            "(Debian: apt-get install qemu-system-x86 kmod busybox-static)"
        )
    return found


def check_host() -> None:
    missing = [
        pkg
        for cmd, pkg in (
            ("qemu-system-x86_64", "qemu-system-x86"),
            ("depmod", "kmod"),
            ("busybox", "busybox-static"),
            ("file", "file"),
        )
        if not shutil.which(cmd, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    ]
    if missing:
        raise HarnessError(
            f"harness matrix needs {', '.join(missing)} on the host (Debian: apt-get install {' '.join(missing)})"
        )


def _vng_env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}:/usr/sbin:/sbin"
    env["TMPDIR"] = str(tmp)  # virtme-ng's sockets and initramfs: removed with the cell
    return env


class Runner:
    """Starts cells as process groups and guarantees none outlives it (Ctrl-C, a crash, SIGTERM)."""

    def __init__(self) -> None:
        self.groups: dict[int, subprocess.Popen] = {}
        self.temps: list[Path] = []

    def start(self, cmd: list[str], log: Path, tmp: Path) -> subprocess.Popen:
        self.temps.append(tmp)
        with open(log, "wb") as f:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=f,
                stderr=subprocess.STDOUT,
                env=_vng_env(tmp),
                start_new_session=True,  # its own process group: vng, virtme-run, QEMU, virtiofsd
            )
        self.groups[proc.pid] = proc
        return proc

    def stop(self, proc: subprocess.Popen, grace: float = 5.0) -> None:
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        _signal_group(proc.pid, signal.SIGKILL)  # what the leader left behind (QEMU, virtiofsd)
        proc.wait()
        self.groups.pop(proc.pid, None)

    def finish(self, proc: subprocess.Popen, tmp: Path) -> None:
        self.stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)
        if tmp in self.temps:
            self.temps.remove(tmp)

    def close(self) -> None:
        for proc in list(self.groups.values()):
            self.stop(proc, grace=2.0)
        for tmp in self.temps:
            shutil.rmtree(tmp, ignore_errors=True)
        self.temps.clear()


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def vm_command(
    kernel: Kernel,
    *,
    label: str,
    accel: str,
    cpus: int,
    memory: str,
    shared: Path,
    append: list[str],
    command: list[str],
) -> list[str]:
    cmd = [
        vng_binary(),
        "--run",
        kernel.image,
        "--name",
        label,
        "--cpus",
        str(cpus),
        "--memory",
        memory,
        "--rwdir",
        str(shared),
        "--cwd",
        os.getcwd(),
        "--disable-monitor",
    ]
    if accel == "tcg":
        cmd.append("--disable-kvm")
    for arg in append:
        cmd += ["--append", arg]
    return [*cmd, "--exec", shlex.join(command)]


def detect_accel(kernel: Kernel, runner: Runner, want: str = "auto", log=print) -> str:
    """``kvm`` when /dev/kvm is usable and this kernel boots under it, else ``tcg``. A nested
    hypervisor (as PVM) may offer /dev/kvm yet stop stock kernels: so boot once and see."""
    if want in ("kvm", "tcg"):
        return want
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        log("accel: /dev/kvm is not usable here: QEMU emulates (TCG)")
        return "tcg"
    tmp = Path(tempfile.mkdtemp(prefix="oci-matrix-kvm-"))
    log_file = tmp / "console.log"
    proc = runner.start(
        vm_command(
            kernel,
            label="kvm-check",
            accel="kvm",
            cpus=1,
            memory="256M",
            shared=tmp,
            append=[],
            command=["sh", "-c", f"echo ok > {tmp}/kvm-ok"],
        ),
        log_file,
        tmp / "vng-tmp",
    )
    try:
        proc.wait(120)
    except subprocess.TimeoutExpired:
        pass
    ok = (tmp / "kvm-ok").is_file()
    tail = log_file.read_text(errors="replace").strip().splitlines()[-1:] if log_file.exists() else []
    runner.finish(proc, tmp / "vng-tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    if ok:
        log(f"accel: KVM boots {kernel.release}")
        return "kvm"
    log(
        f"accel: /dev/kvm is there but {kernel.release} did not boot under it ({' '.join(tail) or 'no output'}): QEMU emulates (TCG)"
    )
    return "tcg"


def guest_command(cell: Cell, pytest_args: list[str], env: dict[str, str]) -> list[str]:
    return [
        "env",
        *(f"{k}={v}" for k, v in env.items()),
        sys.executable,
        "-m",
        "harness.matrix.guest",
        "--mode",
        cell.mode,
        "--out",
        str(cell.out),
        "--label",
        cell.label,
        "--",
        *pytest_args,
    ]


def guest_env(timeout_scale: float, host_cache: Path, label: str) -> dict[str, str]:
    """The guest's environment: the host's harness settings, a writable cache (the guest's
    home is read-only), deadlines scaled for a slow VM."""
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "PYTHONDONTWRITEBYTECODE": "1",
        "HOME": "/tmp/oci-matrix-home",
        "XDG_CACHE_HOME": "/tmp/oci-matrix-home/.cache",
        "HARNESS_CACHE_DIR": "/tmp/oci-matrix-home/.cache/oci-harness",
        "HARNESS_MATRIX_HOST_CACHE": str(host_cache),
        "HARNESS_TIMEOUT_SCALE": f"{timeout_scale:g}",
        "HARNESS_HOST_LABEL": label,
    }
    for name in ("HARNESS_SPEC_DIR", "HARNESS_ROOTFS_TAR", "HARNESS_RUNTIMES_DIR", "HARNESS_ALPINE_MIRROR"):
        if os.environ.get(name):
            env[name] = os.path.abspath(os.environ[name]) if name != "HARNESS_ALPINE_MIRROR" else os.environ[name]
    return env


def count_outcomes(results: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    try:
        for line in results.read_text().splitlines():
            if line.strip():
                outcome = json.loads(line).get("outcome", "?")
                counts[outcome] = counts.get(outcome, 0) + 1
    except (OSError, ValueError):
        pass
    return counts


def _stages(out: Path) -> list[tuple[float, str]]:
    try:
        lines = (out / "stage").read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        when, _, text = line.partition(" ")
        try:
            found.append((float(when), text))
        except ValueError:
            continue
    return found


def _progress(out: Path) -> str:
    stages = _stages(out)
    if not stages:
        return "booting"
    text = stages[-1][1]
    if text == "running":
        try:
            with open(out / "pytest.log", "rb") as f:
                f.seek(0, 2)
                f.seek(max(0, f.tell() - 4096))
                tail = f.read().decode(errors="replace")
            found = _PERCENT.findall(tail)
            return f"running, {found[-1]}%" if found else "running, collecting"
        except OSError:
            return "running"
    return text


def run_cells(
    cells: list[Cell],
    *,
    pytest_args: list[str],
    jobs: int,
    cpus: int,
    memory: str,
    accel: str,
    timeout: float,
    timeout_scale: float | None,
    host_cache: Path,
    log=print,
) -> list[Outcome]:
    """Run ``cells``, ``jobs`` at a time; each gets ``timeout`` seconds from start to results."""
    runner = Runner()
    outcomes: list[Outcome] = []
    previous_handler = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        accels: dict[str, str] = {}
        for cell in cells:
            if cell.kernel.image not in accels:
                accels[cell.kernel.image] = detect_accel(cell.kernel, runner, accel, log)
        pending = list(cells)
        running: dict[int, tuple[Cell, subprocess.Popen, float, Path, str]] = {}
        shown: dict[str, str] = {}
        last_beat = time.monotonic()
        while pending or running:
            while pending and len(running) < jobs:
                cell = pending.pop(0)
                if cell.out.exists():
                    shutil.rmtree(cell.out)
                cell.out.mkdir(parents=True)
                cell_accel = accels[cell.kernel.image]
                scale = timeout_scale if timeout_scale is not None else (20.0 if cell_accel == "tcg" else 2.0)
                tmp = Path(tempfile.mkdtemp(prefix=f"oci-matrix-{cell.label}-"))
                append = ["cgroup_no_v1=all"] if cell.mode == "v2" else []
                cmd = vm_command(
                    cell.kernel,
                    label=cell.label,
                    accel=cell_accel,
                    cpus=cpus,
                    memory=memory,
                    shared=cell.out,
                    append=append,
                    command=guest_command(cell, pytest_args, guest_env(scale, host_cache, cell.label)),
                )
                (cell.out / "vm-command.txt").write_text(shlex.join(cmd) + "\n")
                proc = runner.start(cmd, cell.out / "console.log", tmp)
                running[proc.pid] = (cell, proc, time.monotonic(), tmp, cell_accel)
                log(f"[{cell.label}] started ({cell_accel}, {cpus} vCPU, {memory}, kernel {cell.kernel.release})")
            time.sleep(2)
            now = time.monotonic()
            for pid, (cell, proc, started, tmp, cell_accel) in list(running.items()):
                elapsed = now - started
                if proc.poll() is None and elapsed < timeout:
                    state = _progress(cell.out)
                    if shown.get(cell.label) != state or now - last_beat > 60:
                        shown[cell.label] = state
                        log(f"[{cell.label}] {state} ({elapsed / 60:.1f} min)")
                    continue
                timed_out = proc.poll() is None
                runner.finish(proc, tmp)
                del running[pid]
                outcome = judge(cell, elapsed, timed_out, timeout, cell_accel)
                outcomes.append(outcome)
                log(f"[{cell.label}] {outcome.line()}")
            if now - last_beat > 60:
                last_beat = now
    except KeyboardInterrupt:
        log("interrupted: stopping every cell's VM")
        for cell, proc, started, tmp, cell_accel in list(running.values()) if "running" in locals() else []:
            runner.finish(proc, tmp)
            outcomes.append(Outcome(cell, INTERRUPTED, time.monotonic() - started, accel=cell_accel))
        raise
    finally:
        runner.close()
        signal.signal(signal.SIGTERM, previous_handler)
    return outcomes


def _raise_interrupt(signum, frame):  # SIGTERM: the same clean stop as Ctrl-C
    raise KeyboardInterrupt


def judge(cell: Cell, elapsed: float, timed_out: bool, timeout: float, accel: str) -> Outcome:
    """What became of a cell whose VM has ended: the stages it reached tell a VM that never
    booted (or died) from a suite that ran and failed."""
    stages = _stages(cell.out)
    boot = stages[0][0] - (cell.out / "vm-command.txt").stat().st_mtime if stages else None
    outcome = Outcome(cell, "", elapsed, boot_seconds=boot, accel=accel)
    texts = [t for _, t in stages]
    if not texts:
        outcome.status = TIMED_OUT if timed_out else BOOT_FAILED
        outcome.detail = _console_tail(cell.out) if not timed_out else f"not booted after {timeout / 60:.0f} min"
        return outcome
    if any(t.startswith("layout-failed") for t in texts):
        outcome.status = LAYOUT_FAILED
        outcome.detail = next(t for t in texts if t.startswith("layout-failed")).removeprefix("layout-failed ")
        return outcome
    outcome.counts = count_outcomes(cell.out / "results" / "results.jsonl")
    if timed_out:
        outcome.status = TIMED_OUT
        outcome.detail = f"stopped after {timeout / 60:.0f} min ({texts[-1]})"
    elif not any(t.startswith("done") for t in texts):
        outcome.status = CRASHED
        outcome.detail = f"the VM ended during '{texts[-1]}': {_console_tail(cell.out)}"
    else:
        failing = outcome.counts.get("failed", 0) + outcome.counts.get("error", 0)
        outcome.status = "failed" if failing else "passed"
    return outcome


def _console_tail(out: Path) -> str:
    try:
        lines = [x for x in (out / "console.log").read_text(errors="replace").splitlines() if x.strip()]
    except OSError:
        return "no console output"
    return " | ".join(lines[-3:]) or "no console output"


def plan(kernels: list[Kernel], modes: list[str], output: Path) -> list[Cell]:
    return [Cell(k, m, output / f"{k.label}-{m}") for k, m in itertools.product(kernels, modes)]


def write_summary(output: Path, outcomes: list[Outcome], wall: float, pytest_args: list[str]) -> Path:
    data = {
        "wall_seconds": round(wall, 1),
        "pytest_args": pytest_args,
        "cells": [
            {
                "label": o.cell.label,
                "kernel": o.cell.kernel.release,
                "package": o.cell.kernel.package,
                "package_version": o.cell.kernel.version,
                "sha256": o.cell.kernel.sha256,
                "mode": o.cell.mode,
                "status": o.status,
                "accel": o.accel,
                "seconds": round(o.seconds, 1),
                "boot_seconds": None if o.boot_seconds is None else round(o.boot_seconds, 1),
                "counts": o.counts,
                "detail": o.detail,
                "results": str(o.cell.out / "results"),
            }
            for o in outcomes
        ],
    }
    path = output / "matrix.json"
    path.write_text(json.dumps(data, indent=1) + "\n")
    return path
