"""One ``harness bench`` run: its output folder, work folder, journal, progress and cleanup.

:class:`BenchContext` holds what every suite needs: the run id, the sample writer, a work
folder for bundles (journaled), the run's session (a state root per runtime, the journal), the probe and iobench
binaries, and the progress display. :func:`run_bench` is the pipeline: environment, suites,
exports, cleanup (also on Ctrl-C or SIGTERM; a kill -9 leaves the journal for ``harness cleanup``).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import atomic
from harness.errors import HarnessError

from .records import SampleWriter, hyperfine_export, sample
from .suites import load


@dataclass
class Options:
    runtimes: list[str]
    suites: list[str]
    quick: bool = False
    output: Path | None = None
    json_path: Path | None = None
    seed: int = 1
    workdir: Path | None = None
    rootfs_tar: Path | None = None
    io_runtime: str | None = None
    drop_caches: bool = True
    progress: bool = True


class Progress:
    """A rich progress bar on a terminal, plain lines otherwise."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.tty = enabled and sys.stderr.isatty()
        self._rich: Any = None
        self._task: Any = None
        self.total = 0
        self.done = 0
        self._last_line = 0.0
        self._label = ""

    def stage(self, label: str, total: int) -> None:
        self.finish()
        self._label, self.total, self.done = label, max(total, 1), 0
        if not self.enabled:
            return
        if self.tty:
            try:
                from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
                from rich.progress import Progress as RichProgress

                self._rich = RichProgress(
                    TextColumn("{task.description}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeElapsedColumn(),
                    transient=False,
                )
                self._rich.start()
                self._task = self._rich.add_task(label, total=self.total)
                return
            except ImportError:
                pass
        print(f"bench: {label} ...", file=sys.stderr, flush=True)

    def advance(self, what: str = "") -> None:
        self.done += 1
        if not self.enabled:
            return
        if self._rich is not None:
            self._rich.update(self._task, advance=1, description=f"{self._label} {what}".strip())
        elif time.monotonic() - self._last_line > 5 or self.done == self.total:
            self._last_line = time.monotonic()
            width = 30
            filled = int(width * self.done / self.total)
            print(
                f"bench: {self._label} [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} {what}",
                file=sys.stderr,
                flush=True,
            )

    def finish(self) -> None:
        if self._rich is not None:
            self._rich.stop()
            self._rich = None


@dataclass
class BenchContext:
    options: Options
    run_id: str
    output: Path
    writer: SampleWriter
    session: Any  # harness.runtime.Session: state roots, journal, subreaper
    journal: Any
    workdir: Path
    progress: Progress
    rng: random.Random
    probe: Path
    iobench: Path
    runtimes: dict[str, Any] = field(default_factory=dict)  # name -> harness.runtime.Runtime
    bundles: list[Path] = field(default_factory=list)
    hyperfine: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    summaries: dict[str, Any] = field(default_factory=dict)
    _ids: int = 0

    @property
    def quick(self) -> bool:
        return self.options.quick

    def new_id(self) -> str:
        self._ids += 1
        return f"hb{self.run_id[-8:]}-{self._ids}"

    def record(self, suite: str, workload: str, value: float, unit: str = "s", **kw: Any) -> dict:
        rec = sample(self.run_id, suite, workload, value, unit, **kw)
        self.writer.write(rec)
        return rec

    # bundles: journaled folder (and mount, for overlay) so a kill -9 leaves nothing for good
    def make_bundle(self, name: str, **kwargs: Any):
        from harness.bundle import create_bundle

        path = self.workdir / name
        self.journal.record("folder", str(path))
        if kwargs.get("mode") == "overlay":
            self.journal.record("mount", str(path / "rootfs"))
        self.bundles.append(path)
        kwargs.setdefault("probe_binary", self.probe)
        return create_bundle(path, **kwargs)

    def drop_bundle(self, path: Path) -> None:
        from harness.bundle import remove_bundle

        remove_bundle(path)
        if path.exists():  # a bundle that failed half-way
            shutil.rmtree(path, ignore_errors=True)
        self.journal.release("mount", str(path / "rootfs"))
        self.journal.release("folder", str(path))
        if path in self.bundles:
            self.bundles.remove(path)


def default_output() -> Path:
    return Path("results") / "bench" / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def installed_runtimes() -> list[str]:
    from harness.runtime import load_definitions

    return [name for name, d in load_definitions().items() if d.find_binary()]


def filesystem_of(path: Path) -> dict[str, Any]:
    """Type, source and mount options of the mount holding ``path`` (from /proc/self/mountinfo)."""
    from harness import host

    path = Path(path).resolve()
    best: dict[str, Any] = {}
    best_len = -1
    for m in host.mounts():
        point = m.mount_point
        if (str(path) == point or str(path).startswith(point.rstrip("/") + "/")) and len(point) > best_len:
            best_len = len(point)
            best = {
                "path": str(path),
                "mount_point": point,
                "type": m.fstype,
                "source": m.source,
                "mount_options": ",".join(m.options),
                "super_options": ",".join(m.super_options),
            }
    return best


def run_bench(options: Options, argv: list[str] | None = None) -> Path:
    """Run the suites; returns the output folder."""
    from harness import runtime

    if os.geteuid() != 0:
        raise HarnessError("harness bench needs root (containers, overlay mounts, dropping caches)")
    suites = load(options.suites)
    for suite in suites:
        suite.prepare(options)  # first: offline, fail before any work
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
    output = Path(options.output or default_output())
    if output.exists() and any(output.iterdir()):
        raise HarnessError(f"{output} is not empty; choose another --output")
    output.mkdir(parents=True, exist_ok=True)
    definitions = [runtime.resolve(n) for n in options.runtimes]
    with runtime.open_session(f"bench-{run_id}") as session:
        return _run(options, argv, session, definitions, suites, run_id, output)


def _run(
    options: Options,
    argv: list[str] | None,
    session: Any,
    definitions: list[Any],
    suites: list[Any],
    run_id: str,
    output: Path,
) -> Path:
    from harness import environment
    from harness.probe import build_probe

    from ._build import build_iobench
    from ._timing import WAKEUP

    journal = session.journal
    base = Path(options.workdir) if options.workdir else Path(os.environ.get("HARNESS_BENCH_DIR", "/var/tmp"))
    base.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=f"harness-bench-{run_id}-", dir=base))
    journal.record("folder", str(workdir))
    started = time.time()
    ctx = BenchContext(
        options=options,
        run_id=run_id,
        output=output,
        writer=SampleWriter(output / "samples.jsonl"),
        session=session,
        journal=journal,
        workdir=workdir,
        progress=Progress(options.progress),
        rng=random.Random(options.seed),
        probe=build_probe(),
        iobench=build_iobench(),
    )
    for d in definitions:
        ctx.runtimes[d.name] = session.runtime(d)
    versions = {name: rt.version() for name, rt in ctx.runtimes.items()}
    env = environment.collect(versions)
    env.update(
        {
            "filesystem": filesystem_of(workdir),
            "run": run_id,
            "started": started,
            "argv": list(argv or sys.argv),
            "options": {
                "quick": options.quick,
                "suites": options.suites,
                "runtimes": options.runtimes,
                "seed": options.seed,
            },
            "loadavg_start": os.getloadavg(),
        }
    )

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    old_term = signal.signal(signal.SIGTERM, on_term)
    interrupted = False
    failure: str | None = None
    try:
        with WAKEUP:
            for suite in suites:
                suite.run(ctx)
    except KeyboardInterrupt:
        interrupted = True
    except BaseException as err:
        # recorded as a failed run (a report refuses it unless told otherwise), then raised
        failure = f"{type(err).__name__}: {err}"
        raise
    finally:
        ctx.progress.finish()
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # let cleanup finish
        try:
            _cleanup(ctx)
        finally:
            signal.signal(signal.SIGTERM, old_term)
            ctx.writer.close()
        status = "interrupted" if interrupted else "failed" if failure else "complete"
        env.update(
            {
                "finished": time.time(),
                "loadavg_end": os.getloadavg(),
                "interrupted": interrupted,
                "run_status": {
                    "kind": "bench",
                    "status": status,
                    "error": failure,
                    "started": started,
                    "finished": time.time(),
                    "args": list(argv or sys.argv)[1:],
                    "runtimes": options.runtimes,
                    "suites": options.suites,
                    "quick": options.quick,
                    "samples": ctx.writer.count,
                },
            }
        )
        environment.write(env, output)
        if ctx.summaries:
            atomic.write_text(output / "summary.json", json.dumps(ctx.summaries, indent=2, sort_keys=True) + "\n")
        if ctx.hyperfine:
            text = json.dumps(hyperfine_export(ctx.hyperfine), indent=2) + "\n"
            atomic.write_text(output / "hyperfine.json", text)
            if options.json_path:
                atomic.write_text(Path(options.json_path), text, parents=True)
    if interrupted:
        raise KeyboardInterrupt
    return output


def _cleanup(ctx: BenchContext) -> None:
    """Remove what the run made: containers still there (an interrupt between a create and its
    cleanup), bundles (mounts first), the work folder. The session removes the state roots."""
    errors = ctx.session.remove_containers()
    for path in list(reversed(ctx.bundles)):
        try:
            ctx.drop_bundle(path)
        except Exception as err:
            errors.append(f"{path}: {err}")
    from harness.image import mounts_under, unmount

    for point in mounts_under(ctx.workdir):
        try:
            unmount(point)
        except Exception as err:
            errors.append(f"{point}: {err}")
    if not mounts_under(ctx.workdir):
        shutil.rmtree(ctx.workdir, ignore_errors=True)
        if not ctx.workdir.exists():
            # whatever was recorded under the work folder is gone with it
            from harness.journal import read

            inside = str(ctx.workdir) + "/"
            for entry in read(ctx.journal.path).pending:
                if entry["kind"] in ("folder", "mount") and entry["key"].startswith(inside):
                    ctx.journal.release(entry["kind"], entry["key"])
            ctx.journal.release("folder", str(ctx.workdir))
    if errors:
        print("harness bench: cleanup left: " + "; ".join(errors), file=sys.stderr)
