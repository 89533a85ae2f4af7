"""Lifecycle latency: ``run`` and each phase per runtime, two floors, and a concurrency sweep.

Timing (see :mod:`._timing`): wall time of the runtime process alone, from just before fork to
the reaping of its exit, on the monotonic clock; no shell. The calls are the adapter's own
(``Container.run``, ``create``, ``start``, ...; the runtime's processes started by a
``_timing.Timer`` through ``Runtime.launched_by``), so the bench runs what the conformance
suite runs, checks included; the runtime's quirks apply (crun's private mount namespace on
hybrid cgroup hosts runs in the child before exec, and is part of crun's time). Only the
concurrency sweep starts ``run`` command lines (``Runtime.argv``) itself, N at once.

* ``run``: ``RUNTIME run --bundle B ID`` on a bundle whose process is ``/probe exit 0``, with
  the harness not a child subreaper meanwhile (as from a shell; see ``_timing.not_subreaper``).
* ``create``, ``start``, ``state``, ``kill``, ``delete``: one sequence on a bundle whose process
  is ``/probe pause`` (it blocks signals from its first instruction and reports the one it
  gets, so the ``kill TERM`` cannot race the start): create, start, state, kill TERM, wait
  for the exit (pidfd, untimed), delete.
* ``create+start+delete``: on the ``exit 0`` bundle, ``create``'s time plus the wall span from
  the start of ``start`` to the end of ``delete``, which includes waiting for the container's
  exit (pidfd, no polling of ``state``), so it is comparable to ``run``.
* ``floor-preexec`` (runtime = the runtime it belongs to, only for a runtime whose quirk
  applies on this host): fork with the adapter's pre-exec hook (crun's private mount
  namespace) and exec of the probe ``exit 0``: the part of that runtime's times that is the
  quirk, not the runtime.
* floors (runtime null): ``floor-null`` is fork+exec of the static probe ``exit 0``;
  ``floor-namespaces`` is ``iobench unshare-exec /probe exit 0`` (a static helper that unshares
  pid, net, ipc, uts and mount namespaces, forks, execs the probe and waits): the same
  namespaces the default config asks for, nothing else.

Runtimes and floors run interleaved in blocks: each block runs every one of them once, in an
order shuffled with the run's seeded RNG; the first blocks are warm-up (recorded with
``warmup: true``). Concurrency: N containers ``run`` at once (N = 1, 4, 16), value = wall time
until the last has exited.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.runtime import Container

from . import stats
from ._timing import Timed, Timer, not_subreaper, spawn, timed, wait_all
from .runner import BenchContext
from .suites import FunctionSuite

PHASES = ("create", "start", "state", "kill", "delete")


def plan(quick: bool) -> dict[str, Any]:
    if quick:
        return {"warmup": 1, "blocks": 3, "concurrency": (1, 4), "concurrency_reps": 1, "concurrency_warmup": 0}
    return {"warmup": 3, "blocks": 35, "concurrency": (1, 4, 16), "concurrency_reps": 3, "concurrency_warmup": 1}


class _Failed(HarnessError):
    pass


def _preexec(rt: Any) -> Any:
    """The adapter's between-fork-and-exec hook for this runtime (its quirk), or None."""
    return rt.preexec_fn


def _timed(timer: Timer, call: Callable[[], Any]) -> Timed:
    """The time of the (first) runtime process an adapter call ran under ``timer``."""
    timer.calls.clear()
    call()
    return timer.calls[0]


def run_once(ctx: BenchContext, rt: Any, bundle: Path, io: Path) -> Timed:
    """``run`` through the adapter (:meth:`Container.run`), timed, the harness not a subreaper."""
    c = Container(rt, ctx.new_id(), bundle, io)
    timer = Timer()
    try:
        with not_subreaper(), rt.launched_by(timer):
            end = c.run(timeout=rt.timeout)
        if end.code != 0:
            raise _Failed(f"{rt.name} run failed (exit {end.shell_code}): {c.stderr()[-2000:]}")
    except BaseException:
        c.cleanup()
        raise
    assert timer.last is not None
    return timer.last


def phases_once(ctx: BenchContext, rt: Any, bundle: Path, io: Path) -> dict[str, Timed]:
    """create, start, state, kill TERM, (wait), delete on a ``/probe pause`` container: the
    adapter's own calls (the pid it trusts checked, the container journaled), each runtime
    process timed by a :class:`Timer`."""
    c = Container(rt, ctx.new_id(), bundle, io)
    timer = Timer()
    out: dict[str, Timed] = {}
    try:
        with rt.launched_by(timer):
            out["create"] = _timed(timer, c.create)
            out["start"] = _timed(timer, c.start)
            states = []
            out["state"] = _timed(timer, lambda: states.append(c.state()))
            if states[0].status != "running":
                raise _Failed(f"{rt.name} state after start says {states[0].status!r}, expected 'running'")
            out["kill"] = _timed(timer, lambda: c.kill("TERM"))
            c.wait(timeout=rt.timeout)
            out["delete"] = _timed(timer, c.delete)
    except BaseException:
        c.cleanup()
        raise
    ctx.journal.release("container", c.id)
    return out


def csd_once(ctx: BenchContext, rt: Any, bundle: Path, io: Path) -> float:
    """create + start + (wait for exit) + delete on the ``/probe exit 0`` bundle: the ``create``
    process's time plus the wall span from the start of ``start`` to the end of ``delete`` (the
    harness's bookkeeping between create and start is not counted)."""
    c = Container(rt, ctx.new_id(), bundle, io)
    timer = Timer()
    try:
        with rt.launched_by(timer):
            t_create = _timed(timer, c.create)
            t_start = _timed(timer, c.start)
            c.wait(timeout=rt.timeout)
            t_delete = _timed(timer, c.delete)
    except BaseException:
        c.cleanup()
        raise
    ctx.journal.release("container", c.id)
    return t_create.seconds + (t_delete.end_ns - t_start.start_ns) / 1e9


def concurrent_once(ctx: BenchContext, rt: Any, bundle: Path, io: Path, n: int) -> float:
    ids = [ctx.new_id() for _ in range(n)]
    for cid in ids:
        ctx.journal.record("container", cid, runtime=rt.name, state_root=str(rt.state_root))
    with contextlib.ExitStack() as files:
        errs = [files.enter_context(open(io / f"conc-{i}.stderr", "wb")) for i in range(n)]
        try:
            with not_subreaper():
                t0 = time.perf_counter_ns()
                procs = [
                    spawn(rt.argv("run", "--bundle", str(bundle), cid), stderr=errs[i], preexec=_preexec(rt))
                    for i, cid in enumerate(ids)
                ]
                ends = wait_all(procs, rt.timeout * max(1, n / 2))
            wall = (max(e[0] for e in ends) - t0) / 1e9
            bad = [(ids[i], e[1]) for i, e in enumerate(ends) if e[1] != 0]
            if bad:
                raise _Failed(
                    f"{rt.name}: {len(bad)} of {n} concurrent runs failed: "
                    + (io / f"conc-{ids.index(bad[0][0])}.stderr").read_text(errors="replace")[-1000:]
                )
            for cid in ids:
                ctx.journal.release("container", cid)
            ids = []
            return wall
        finally:
            for cid in ids:
                Container(rt, cid, bundle, io).cleanup()


def run_lifecycle(ctx: BenchContext) -> None:
    p = plan(ctx.quick)
    probe_in = "/probe"
    exit_bundle = ctx.make_bundle("lifecycle-exit", rootfs="probe", args=[probe_in, "exit", "0"]).path
    pause_bundle = ctx.make_bundle("lifecycle-pause", rootfs="probe", args=[probe_in, "pause"]).path
    io = ctx.workdir / "lifecycle-io"
    io.mkdir(exist_ok=True)
    names = list(ctx.runtimes)
    # The adapter's quirk hook (crun's private mount namespace on hybrid cgroup hosts) runs in
    # the forked child before exec and is part of that runtime's times; "floor-preexec" measures
    # it alone (fork with the hook + exec of the probe), so it can be told from the runtime.
    quirky = [n for n in names if _preexec(ctx.runtimes[n]) is not None]
    subjects = ["floor-null", "floor-namespaces", *names, *(f"preexec:{n}" for n in quirky)]
    blocks = p["warmup"] + p["blocks"]
    conc_total = len(names) * len(p["concurrency"]) * (p["concurrency_reps"] + p["concurrency_warmup"])
    ctx.progress.stage("lifecycle", blocks * len(subjects) + conc_total)
    times: dict[tuple[str, str], list[float]] = {}
    hf = ctx.hyperfine

    def keep(
        runtime: str | None,
        workload: str,
        phase: str | None,
        value: float,
        it: int,
        warm: bool,
        t: Timed | None = None,
        command: str = "",
    ) -> None:
        ctx.record("lifecycle", workload, value, runtime=runtime, phase=phase, iteration=it, warmup=warm)
        if warm:
            return
        times.setdefault((runtime or workload, phase or workload), []).append(value)
        if command:
            g = hf.setdefault(command, {"times": [], "user": [], "system": []})
            g["times"].append(value)
            if t is not None:
                g["user"].append(t.user)
                g["system"].append(t.system)

    for b in range(blocks):
        warm = b < p["warmup"]
        it = b if warm else b - p["warmup"]
        order = subjects[:]
        ctx.rng.shuffle(order)
        for subject in order:
            if subject == "floor-null":
                t = timed([str(ctx.probe), "exit", "0"])
                if t.status != 0:
                    raise HarnessError("the probe failed to run on the host (floor-null)")
                keep(None, "floor-null", None, t.seconds, it, warm, t, f"{ctx.probe} exit 0")
            elif subject == "floor-namespaces":
                t = timed([str(ctx.iobench), "unshare-exec", str(ctx.probe), "exit", "0"])
                if t.status != 0:
                    raise HarnessError("iobench unshare-exec failed (floor-namespaces)")
                keep(
                    None,
                    "floor-namespaces",
                    None,
                    t.seconds,
                    it,
                    warm,
                    t,
                    f"unshare(pid,net,ipc,uts,mnt)+fork+exec {ctx.probe} exit 0",
                )
            elif subject.startswith("preexec:"):
                name = subject.split(":", 1)[1]
                t = timed([str(ctx.probe), "exit", "0"], preexec=_preexec(ctx.runtimes[name]))
                if t.status != 0:
                    raise HarnessError(f"the probe failed to run with {name}'s private mount namespace (floor-preexec)")
                keep(name, "floor-preexec", None, t.seconds, it, warm, t, f"{name} quirk hook + {ctx.probe} exit 0")
            else:
                rt = ctx.runtimes[subject]
                t = run_once(ctx, rt, exit_bundle, io)
                keep(subject, "lifecycle", "run", t.seconds, it, warm, t, f"{subject} run")
                for phase, tp in phases_once(ctx, rt, pause_bundle, io).items():
                    keep(subject, "lifecycle", phase, tp.seconds, it, warm, tp, f"{subject} {phase}")
                keep(
                    subject,
                    "lifecycle",
                    "create+start+delete",
                    csd_once(ctx, rt, exit_bundle, io),
                    it,
                    warm,
                    None,
                    f"{subject} create+start+delete",
                )
            ctx.progress.advance(f"block {b + 1}/{blocks}")

    conc: dict[tuple[str, int], list[float]] = {}
    for n in p["concurrency"]:
        for rep in range(p["concurrency_warmup"] + p["concurrency_reps"]):
            warm = rep < p["concurrency_warmup"]
            order = names[:]
            ctx.rng.shuffle(order)
            for name in order:
                wall = concurrent_once(ctx, ctx.runtimes[name], exit_bundle, io, n)
                ctx.record(
                    "lifecycle",
                    "concurrent",
                    wall,
                    runtime=name,
                    params={"concurrency": n},
                    iteration=rep if warm else rep - p["concurrency_warmup"],
                    warmup=warm,
                )
                if not warm:
                    conc.setdefault((name, n), []).append(wall)
                ctx.progress.advance(f"{n} at once")
    ctx.summaries["lifecycle"] = summarize(times, conc)


def summarize(
    times: dict[tuple[str, str], list[float]], conc: dict[tuple[str, int], list[float]], baseline: str = "runc"
) -> dict:
    out: dict[str, Any] = {"summary": {f"{k[0]} {k[1]}": stats.summary(v) for k, v in times.items()}}
    ratios = {}
    for (subject, phase), values in times.items():
        base = times.get((baseline, phase))
        if base and subject != baseline and phase in ("run", "create+start+delete", *PHASES):
            ratios[f"{subject}/{baseline} {phase}"] = stats.ratio(values, base)
    run_base = times.get((baseline, "run"))
    for floor in ("floor-null", "floor-namespaces"):
        if run_base and (floor, floor) in times:
            ratios[f"{baseline} run/{floor}"] = stats.ratio(run_base, times[(floor, floor)])
    out["ratios"] = ratios
    out["concurrency"] = {f"{k[0]} x{k[1]}": stats.summary(v) for k, v in conc.items()}
    return out


SUITE = FunctionSuite("lifecycle", run_lifecycle)
