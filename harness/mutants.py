"""Spec mutants of the bundled runtime: does the suite notice when the runtime breaks one rule?

A mutant (``tests/mutants/*.toml``) is a small source transformation of ``runtimes/reference/``
that breaks exactly one spec sentence: the catalogue ids it violates, one line saying how, and
one or more edits, each an exact snippet of a file of the runtime and its replacement::

    [[mutant]]
    id = "seccomp-default-allow"
    requirements = ["linux.seccomp.applied"]
    description = "the filter's default action is always SCMP_ACT_ALLOW"
    [[mutant.edit]]
    file = "oci_reference/seccomp.py"
    old = 'ctx = lib.seccomp_init(desc["default"])'
    new = 'ctx = lib.seccomp_init(0x7FFF0000)'

Snippets, not line numbers: other edits of the runtime do not move a mutant, and a snippet
that is gone, or found more than once, makes the mutant "does not apply" (never a wrong edit).

:func:`run` copies the runtime once per mutant into a private temporary folder, applies the
mutant there and writes a runtime definition for it (``HARNESS_RUNTIMES_DIR``), so the working
tree is never touched. The smoke case first runs on the runtime as it is (the *control*): when it
fails there, no mutant can be judged, and the run stops naming why. All mutants then run in one
pytest session (one runtime each): first the *fast path*, the cases that name the mutant's requirement ids plus a smoke case; the
mutants none of those cases kill then run the whole suite. Outcomes:

* ``killed``: a case failed (the cases are listed, and the phase that found it);
* ``survived``: every case passed (or skipped);
* ``breaks-everything``: the smoke case failed too: not a subtle mutant, not counted as killed;
* ``hang``: its failures are all runtime calls that did not answer in time;
* ``not-applying``: a snippet is missing or ambiguous, or the result is not valid Python.

Everything the runs make lives under the temporary folder (state roots, journals, results);
the journals are cleaned up after each session and the folder is removed.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import atomic
from .errors import HarnessError

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = "oci-harness/mutants/1"
#: Cases every mutant also runs: a plain container that starts, reports and exits. A subtle
#: mutant passes them; one that fails them breaks everything and says nothing about the suite.
SMOKE_CASES = ("cases/test_process.py::test_args_are_passed_exactly",)
RUNTIME_PREFIX = "m-"
#: the name the unmutated runtime runs under in the control session (no mutant's name: no "m-")
CONTROL = "unmutated"
OUTCOMES = ("killed", "survived", "breaks-everything", "hang", "not-applying")


@dataclass(frozen=True)
class Edit:
    file: str
    old: str
    new: str


@dataclass(frozen=True)
class Mutant:
    id: str
    requirements: tuple[str, ...]
    description: str
    edits: tuple[Edit, ...]
    source: str = ""

    @property
    def runtime_name(self) -> str:
        return RUNTIME_PREFIX + self.id


class NotApplicable(Exception):
    """The mutant's snippet is gone or ambiguous in this version of the runtime."""


def load(directory: Path) -> list[Mutant]:
    """Every mutant in ``directory/*.toml``; a malformed entry or a duplicate id is a HarnessError."""
    from . import requirements

    known = requirements.catalogue()
    out: list[Mutant] = []
    seen: dict[str, str] = {}
    if not Path(directory).is_dir():
        raise HarnessError(
            f"{directory}: no such folder of mutants (run from the project's root or pass --mutants DIR)"
        )
    for path in sorted(Path(directory).glob("*.toml")):
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as err:
            raise HarnessError(f"mutant library {path}: {err}") from None
        for i, entry in enumerate(data.get("mutant", [])):
            where = f"{path.name} mutant #{i + 1}"
            try:
                mid = entry["id"]
                reqs = tuple(entry["requirements"])
                edits = tuple(Edit(e["file"], e["old"], e["new"]) for e in entry["edit"])
                m = Mutant(mid, reqs, entry["description"], edits, path.name)
            except (KeyError, TypeError) as err:
                raise HarnessError(f"mutant library {where}: missing or invalid field {err}") from None
            if not mid or not all(c.isalnum() or c in "-_." for c in mid):
                raise HarnessError(f"mutant library {where}: id {mid!r} must be letters, digits, '-', '_' or '.'")
            if mid in seen:
                raise HarnessError(f"mutant library: id {mid!r} is defined twice ({seen[mid]} and {path.name})")
            seen[mid] = path.name
            unknown = [r for r in reqs if r not in known]
            if not reqs or unknown:
                raise HarnessError(
                    f"mutant library {where} ({mid}): unknown requirement ids {unknown or '(none given)'}; ids come from harness/requirements/*.toml"
                )
            if not edits:
                raise HarnessError(f"mutant library {where} ({mid}): no edit")
            out.append(m)
    return out


def apply(mutant: Mutant, runtime_dir: Path) -> None:
    """Apply the mutant's edits to the runtime copy at ``runtime_dir``; NotApplicable if one cannot."""
    texts: dict[Path, str] = {}
    for e in mutant.edits:
        path = (runtime_dir / e.file).resolve()
        if runtime_dir.resolve() not in path.parents:
            raise NotApplicable(f"{e.file}: outside the runtime")
        if path not in texts:
            try:
                texts[path] = path.read_text(encoding="utf-8")
            except OSError as err:
                raise NotApplicable(f"{e.file}: {err.strerror}") from None
        n = texts[path].count(e.old)
        if n != 1:
            what = "is gone" if n == 0 else f"occurs {n} times (ambiguous)"
            raise NotApplicable(f"{e.file}: the snippet {_short(e.old)!r} {what}")
        texts[path] = texts[path].replace(e.old, e.new)
    for path, text in texts.items():
        try:
            compile(text, str(path), "exec")
        except SyntaxError as err:
            raise NotApplicable(
                f"{path.relative_to(runtime_dir.resolve())}: the mutated file is not valid Python: {err.msg} (line {err.lineno})"
            ) from None
        path.write_text(text, encoding="utf-8")


def sample(mutants: list[Mutant], n: int, seed: str) -> list[Mutant]:
    """``n`` mutants chosen reproducibly from ``seed``, spread over the areas: a seeded shuffle,
    then one mutant per area in turn (every area is in the sample when ``n`` allows)."""
    import random

    from . import requirements

    cat = requirements.catalogue()
    by_area: dict[str, list[Mutant]] = defaultdict(list)
    for m in sorted(mutants, key=lambda m: m.id):
        by_area[cat[m.requirements[0]].area].append(m)
    rng = random.Random(seed)
    for ms in by_area.values():
        rng.shuffle(ms)
    areas = sorted(by_area)
    rng.shuffle(areas)
    chosen: list[Mutant] = []
    while len(chosen) < min(n, len(mutants)):
        for a in areas:
            if by_area[a] and len(chosen) < n:
                chosen.append(by_area[a].pop())
    return chosen


def _short(s: str, n: int = 60) -> str:
    s = " ".join(s.split())
    return s if len(s) <= n else s[: n - 1] + "…"


# --------------------------------------------------------------------------------------------
# Running


@dataclass
class Result:
    id: str
    area: str
    requirements: list[str]
    description: str
    outcome: str = "survived"
    phase: str = ""  # the phase that decided: "fast" or "full" (empty when it did not run)
    killed_by: list[str] = field(default_factory=list)
    detail: str = ""
    fast_cases: int = 0


def _write_definition(defs_dir: Path, name: str, binary: Path, reference_toml: Path) -> None:
    """A runtime definition like the reference one, under another name, at another binary."""
    lines = []
    for line in reference_toml.read_text(encoding="utf-8").splitlines():
        key = line.split("=", 1)[0].strip()
        if key == "name":
            line = f"name = {json.dumps(name)}"
        elif key == "binary":
            line = f"binary = {json.dumps(str(binary))}"
        lines.append(line)
    (defs_dir / f"{name}.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _session(
    workdir: Path,
    tag: str,
    selection: dict[str, list[str] | str],
    *,
    jobs: int,
    timeout: float,
    runtime_timeout: float,
    cases_dir: Path,
    src: Path,
    log,
) -> tuple[list[dict], bool]:
    """One pytest session over the selected mutant runtimes; (result records, timed out?)."""
    results = workdir / f"results-{tag}"
    select_file = workdir / f"select-{tag}.json"
    select_file.write_text(json.dumps(selection), encoding="utf-8")
    env = {
        **os.environ,
        "HARNESS_RUNTIMES_DIR": str(workdir / "runtimes"),
        "HARNESS_STATE_DIR": str(workdir / "state"),
        "HARNESS_MUTANT_SELECT": str(select_file),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": os.pathsep.join([str(src), *filter(None, [os.environ.get("PYTHONPATH")])]),
    }
    argv = [
        sys.executable,
        "-m",
        "pytest",
        str(cases_dir),
        "-p",
        "harness._mutant_select",
        "-p",
        "no:cacheprovider",
        "-q",
        "--no-header",
        "-rN",
        "--runtime",
        ",".join(sorted(selection)),
        "--runtime-timeout",
        f"{runtime_timeout:g}",
        f"--results={results}",
        # the containers' bundles under workdir too: what a session leaves is told by its paths
        f"--basetemp={workdir / f'tmp-{tag}'}",
    ]
    if jobs > 1:
        argv += ["-n", str(jobs)]
    what = "the unmutated runtime" if tag == "control" else f"{len(selection)} mutants"
    log(f"mutants: {tag} session, {what}, {jobs} workers")
    started = time.monotonic()
    with open(workdir / f"pytest-{tag}.log", "wb") as out:
        proc = subprocess.Popen(argv, cwd=src, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        finally:
            _end_processes(workdir, log)
            _cleanup_state(workdir, env, src, log)
    log(f"mutants: {tag} session took {time.monotonic() - started:.0f} s (exit {proc.returncode})")
    if proc.returncode not in (0, 1, 5) and not timed_out:
        tail = (workdir / f"pytest-{tag}.log").read_text(errors="replace")[-3000:]
        raise HarnessError(f"mutants: the {tag} pytest session failed (exit {proc.returncode}):\n{tail}")
    records = []
    path = results / "results.jsonl"
    if path.exists():
        with open(path, encoding="utf-8") as f:
            records = [json.loads(line) for line in f if line.strip()]
    return records, timed_out


def processes_of(folder: Path) -> list[int]:
    """Processes (not this one) that belong to ``folder``, a mutants run's private folder: their
    command line names a path in it (a mutant's copy of the runtime runs as ``python3
    .../rt/<id>/bin/oci-reference``), or their root or working folder is in it (a container of
    a bundle there)."""
    from . import leaks

    top = str(folder.resolve())
    found = {pid for pid, _ in leaks.processes([top])}
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                args = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if any(a == top or a.startswith(top + "/") for a in args):
            found.add(int(name))
    return sorted(found)


def _end_processes(workdir: Path, log) -> None:
    """SIGKILL whatever a session left running: a mutant's runtime processes and containers
    outlive its cases when the mutant loses track of them (a container created under another
    id is never deleted), and a session stopped by Ctrl-C or its time bound leaves its
    runtime calls behind. A few rounds: a process may fork while the others are killed."""
    for _ in range(5):
        pids = processes_of(workdir)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        from .runtime import process

        process.until(functools.partial(_gone, set(pids), workdir), 5.0)
    left = processes_of(workdir)
    if left:
        log(f"mutants: processes {', '.join(map(str, left))} of {workdir} survived SIGKILL")


def _gone(pids: set[int], workdir: Path) -> bool:
    return not pids & set(processes_of(workdir))


def _cleanup_state(workdir: Path, env: dict[str, str], src: Path, log) -> None:
    """What a killed session left (journaled under the private state folder): remove it."""
    journal = workdir / "state" / "journal"
    if journal.is_dir() and any(journal.glob("*.jsonl")):
        proc = subprocess.run(
            [sys.executable, "-m", "harness", "cleanup"], cwd=src, env=env, capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            log(f"mutants: cleanup after the session: {proc.stderr.strip()}")


def _control(
    workdir: Path, runtime_dir: Path, *, timeout: float, runtime_timeout: float, cases_dir: Path, src: Path, log
) -> None:
    """The smoke cases on the runtime as it is, before any mutant runs. When they fail there
    (no spec folder offline, a machine too busy for the deadlines, a broken checkout), every
    mutant would fail them too and be judged "breaks-everything": say why at once instead."""
    _write_definition(
        workdir / "runtimes", CONTROL, runtime_dir / "bin" / "oci-reference", runtime_dir.parent / "reference.toml"
    )
    records, timed_out = _session(
        workdir,
        "control",
        {CONTROL: list(SMOKE_CASES)},
        jobs=1,
        timeout=timeout,
        runtime_timeout=runtime_timeout,
        cases_dir=cases_dir,
        src=src,
        log=log,
    )
    passed = {r["case"].split("[", 1)[0] for r in records if r["outcome"] == "passed"}
    if timed_out or not passed >= set(SMOKE_CASES):
        why = [
            f"{r['case']}: {r['outcome']}: {_first_error(r.get('message') or '')}"
            for r in records
            if r["outcome"] != "passed"
        ]
        if timed_out:
            why.append(f"the session did not end within {timeout:g} s")
        raise HarnessError(
            "mutants: the smoke case fails on the unmutated runtime, so every mutant would be judged "
            "breaks-everything; fix this first:\n  " + "\n  ".join(why or ["(the smoke case did not run)"])
        )


def _first_error(message: str) -> str:
    errors = [line[2:].strip() for line in message.splitlines() if line.startswith("E ")]
    return " / ".join(errors[:3]) if errors else (message.splitlines() or [""])[0]


def _classify(res: Result, records: list[dict], phase: str) -> bool:
    """Set the outcome from one session's records; True if decided (no further phase needed).

    A failing smoke case means "breaks everything", unless the smoke case checks one of the
    mutant's own requirements."""
    failed = sorted({r["case"] for r in records if r["outcome"] in ("failed", "error", "xpassed")})
    if not failed:
        return False
    own = {r["case"] for r in records if {q["id"] for q in r.get("requirements", ())} & set(res.requirements)}
    smoke_failed = [c for c in failed if c.split("[", 1)[0] in SMOKE_CASES and c not in own]
    messages = [r.get("message") or "" for r in records if r["outcome"] in ("failed", "error")]
    if messages and all(_timed_out(m) for m in messages):
        res.outcome, res.detail = "hang", "every failure is a runtime call that did not answer in time"
    elif smoke_failed:
        res.outcome, res.detail = "breaks-everything", "the smoke case fails too"
    else:
        res.outcome = "killed"
    res.phase = phase
    res.killed_by = [
        c.replace(f"[{RUNTIME_PREFIX}{res.id}]", "")
        .replace(f"{RUNTIME_PREFIX}{res.id}-", "")
        .replace(f"-{RUNTIME_PREFIX}{res.id}", "")
        for c in failed
    ]
    return True


def _timed_out(message: str) -> bool:
    """The failure is a runtime call killed at its deadline (the adapter's RuntimeTimeout). Only
    the error lines count: a traceback also shows the adapter's source, which names it."""
    lines = message.splitlines()
    errors = [line for line in lines if line.startswith("E ")] or lines[:1]
    return any("no answer within" in line and "killed" in line for line in errors)


def run(
    mutants: list[Mutant],
    *,
    cases_dir: Path = ROOT / "cases",
    runtime_dir: Path = ROOT / "runtimes" / "reference",
    full: bool = True,
    jobs: int = 2,
    session_timeout: float = 3600.0,
    runtime_timeout: float = 20.0,
    log=lambda msg: print(msg, file=sys.stderr),
) -> dict:
    """Run the mutants; return the report (see :func:`report`)."""
    from . import requirements

    started = time.monotonic()
    catalogue = requirements.catalogue()
    results: dict[str, Result] = {}
    workdir = Path(tempfile.mkdtemp(prefix="harness-mutants-"))
    try:
        # A snapshot of the project: edits made while the mutants run (cases, catalogue,
        # runtime) cannot mix two versions into one session.
        src = ROOT
        if (ROOT / "pyproject.toml").is_file():  # a checkout, not an installed package
            src = workdir / "src"
            shutil.copytree(
                ROOT,
                src,
                ignore=shutil.ignore_patterns(
                    ".git", "results", ".nox", ".hypothesis", "__pycache__", "*.egg-info", "build", "dist"
                ),
            )
        if Path(cases_dir).resolve() == (ROOT / "cases").resolve():
            cases_dir = src / "cases"
        if Path(runtime_dir).resolve() == (ROOT / "runtimes" / "reference").resolve():
            runtime_dir = src / "runtimes" / "reference"
        by_req = requirements.collect_cases(cases_dir)
        (workdir / "runtimes").mkdir()
        for m in mutants:
            res = results[m.id] = Result(m.id, catalogue[m.requirements[0]].area, list(m.requirements), m.description)
            copy = workdir / "rt" / m.id
            shutil.copytree(runtime_dir, copy, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
            try:
                apply(m, copy)
            except NotApplicable as err:
                res.outcome, res.detail = "not-applying", str(err)
                continue
            _write_definition(
                workdir / "runtimes",
                m.runtime_name,
                copy / "bin" / "oci-reference",
                runtime_dir.parent / "reference.toml",
            )
        live = [m for m in mutants if results[m.id].outcome != "not-applying"]
        if live:
            _control(
                workdir,
                runtime_dir,
                timeout=session_timeout,
                runtime_timeout=runtime_timeout,
                cases_dir=cases_dir,
                src=src,
                log=log,
            )
        fast: dict[str, list[str] | str] = {}
        for m in live:
            cases = sorted({c for r in m.requirements for c in by_req.get(r, ())})
            results[m.id].fast_cases = len(cases)
            fast[m.runtime_name] = [*cases, *SMOKE_CASES]
        if fast:
            records, timed_out = _session(
                workdir,
                "fast",
                fast,
                jobs=jobs,
                timeout=session_timeout,
                runtime_timeout=runtime_timeout,
                cases_dir=cases_dir,
                src=src,
                log=log,
            )
            per = _by_runtime(records)
            for m in live:
                if (
                    not _classify(results[m.id], per.get(m.runtime_name, []), "fast")
                    and timed_out
                    and not per.get(m.runtime_name)
                ):
                    results[m.id].outcome, results[m.id].detail = "hang", "the fast-path session ran out of time"
        rest = [m for m in live if results[m.id].outcome == "survived"]
        if full and rest:
            records, timed_out = _session(
                workdir,
                "full",
                {m.runtime_name: "*" for m in rest},
                jobs=jobs,
                timeout=session_timeout,
                runtime_timeout=runtime_timeout,
                cases_dir=cases_dir,
                src=src,
                log=log,
            )
            per = _by_runtime(records)
            for m in rest:
                if not _classify(results[m.id], per.get(m.runtime_name, []), "full"):
                    results[m.id].phase = "full"
        for m in live:
            res = results[m.id]
            if res.outcome == "survived" and not res.phase:
                res.phase = "fast"
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return report(list(results.values()), catalogue, full=full, seconds=time.monotonic() - started)


def _by_runtime(records: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        out[r.get("runtime", "")].append(r)
    return out


def report(results: list[Result], catalogue: dict, *, full: bool, seconds: float) -> dict:
    """The JSON document: per mutant, per area (score = killed / (killed + survived)), untargeted ids."""
    areas: dict[str, dict[str, int]] = {}
    for r in results:
        a = areas.setdefault(r.area, dict.fromkeys(OUTCOMES, 0))
        a[r.outcome] += 1
    for a in areas.values():
        judged = a["killed"] + a["survived"]
        a["score"] = round(a["killed"] / judged, 4) if judged else None  # type: ignore[assignment]
    targeted = {rid for r in results for rid in r.requirements}
    untargeted = sorted(rid for rid, req in catalogue.items() if req.testable and rid not in targeted)
    totals = {o: sum(1 for r in results if r.outcome == o) for o in OUTCOMES}
    judged = totals["killed"] + totals["survived"]
    return {
        "schema": SCHEMA,
        "mode": "full" if full else "fast",
        "seconds": round(seconds, 1),
        "totals": {**totals, "mutants": len(results), "score": round(totals["killed"] / judged, 4) if judged else None},
        "areas": dict(sorted(areas.items())),
        "untargeted": untargeted,
        "mutants": [asdict(r) for r in sorted(results, key=lambda r: (r.area, r.id))],
    }


def summary(doc: dict) -> str:
    """A few lines for the terminal."""
    t = doc["totals"]
    lines = [
        (
            f"{t['mutants']} mutants ({doc['mode']} run, {doc['seconds']:.0f} s): {t['killed']} killed, {t['survived']} survived, "
            f"{t['breaks-everything']} break everything, {t['hang']} hang, {t['not-applying']} do not apply; "
            f"score {_pct(t['score'])}"
        ),
    ]
    for area, a in doc["areas"].items():
        score = _pct(a["score"])
        lines.append(f"  {area:<12} {score:>5}  killed {a['killed']}/{a['killed'] + a['survived']}")
    for m in doc["mutants"]:
        if m["outcome"] != "killed":
            lines.append(
                f"  {m['outcome'].upper():<18} {m['id']}: {m['description']}"
                + (f" ({m['detail']})" if m["detail"] else "")
            )
    lines.append(f"  {len(doc['untargeted'])} testable requirements no mutant targets")
    return "\n".join(lines)


def _pct(score: float | None) -> str:
    return "-" if score is None else f"{score:.0%}"


# --------------------------------------------------------------------------------------------
# Command line: harness mutants


def register(sub) -> None:
    p = sub.add_parser(
        "mutants",
        help="break the bundled runtime one spec sentence at a time (tests/mutants/) and see whether the suite notices",
    )
    p.add_argument(
        "--mutants",
        default=str(ROOT / "tests" / "mutants"),
        metavar="DIR",
        help="the mutant library (default: tests/mutants)",
    )
    p.add_argument("--cases", default=str(ROOT / "cases"), metavar="DIR", help="the conformance cases (default: cases)")
    p.add_argument(
        "--only", default=None, metavar="ID,...", help="run only these mutants (ids, or an area like seccomp)"
    )
    p.add_argument(
        "--sample",
        type=int,
        default=None,
        metavar="N",
        help="run only N mutants, chosen from --seed and spread over the areas",
    )
    p.add_argument(
        "--seed",
        default="0",
        help="the seed of --sample (CI passes the ISO week, so the sample rotates weekly and is reproducible)",
    )
    p.add_argument(
        "--fast",
        action="store_true",
        help="only the fast path: the cases naming each mutant's requirements (what CI runs)",
    )
    p.add_argument("--jobs", "-j", type=int, default=2, help="pytest workers (default: 2)")
    p.add_argument(
        "--timeout", type=float, default=3600.0, help="time bound of each pytest session, in seconds (default: 3600)"
    )
    p.add_argument(
        "--runtime-timeout", type=float, default=20.0, help="time bound of each runtime call, in seconds (default: 20)"
    )
    p.add_argument(
        "--output",
        default="results/mutants/mutants.json",
        metavar="FILE",
        help="the JSON results (default: results/mutants/mutants.json)",
    )
    p.add_argument(
        "--fail-on",
        default="survived",
        metavar="OUTCOME,...",
        help=f"exit 1 if a mutant ends so (from {', '.join(OUTCOMES)}; default: survived)",
    )
    p.add_argument(
        "--list", action="store_true", help="list the mutants and the requirements no mutant targets; run nothing"
    )
    p.set_defaults(func=cmd_mutants)


def cmd_mutants(args) -> int:
    from . import requirements

    mutants = load(Path(args.mutants))
    if args.only:
        wanted = {w.strip() for w in args.only.split(",") if w.strip()}
        cat = requirements.catalogue()
        mutants = [m for m in mutants if m.id in wanted or cat[m.requirements[0]].area in wanted]
        if not mutants:
            raise HarnessError(f"--only {args.only}: no mutant has such an id or area")
    if args.sample is not None:
        mutants = sample(mutants, args.sample, args.seed)
    fail_on = {o.strip() for o in args.fail_on.split(",") if o.strip()}
    if fail_on - set(OUTCOMES):
        raise HarnessError(
            f"--fail-on: unknown outcomes {sorted(fail_on - set(OUTCOMES))}; choose from {', '.join(OUTCOMES)}"
        )
    if args.list:
        cat = requirements.catalogue()
        for m in mutants:
            print(f"{m.id:<40} {cat[m.requirements[0]].area:<12} {', '.join(m.requirements)}  {m.description}")
        targeted = {r for m in mutants for r in m.requirements}
        untargeted = [rid for rid, req in cat.items() if req.testable and rid not in targeted]
        print(
            f"{len(mutants)} mutants; {len(untargeted)} testable requirements no mutant targets: {', '.join(untargeted)}"
        )
        return 0
    if os.geteuid() != 0:
        raise HarnessError("harness mutants runs containers: run it as root")
    doc = run(
        mutants,
        cases_dir=Path(args.cases),
        full=not args.fast,
        jobs=args.jobs,
        session_timeout=args.timeout,
        runtime_timeout=args.runtime_timeout,
    )
    out = Path(args.output)
    atomic.write_text(out, json.dumps(doc, indent=2) + "\n", parents=True)
    print(summary(doc))
    print(f"results: {out}")
    return 1 if any(m["outcome"] in fail_on for m in doc["mutants"]) else 0


# --------------------------------------------------------------------------------------------
# For the HTML report: the "suite strength" section


def load_results(path: Path) -> dict:
    """The JSON ``harness mutants`` wrote; a HarnessError names what is wrong with it."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise HarnessError(f"{path}: cannot read the mutants results: {err.strerror}") from None
    except json.JSONDecodeError as err:
        raise HarnessError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise HarnessError(f"{path}: not the results of harness mutants (expected schema {SCHEMA!r})")
    return doc


def report_view(doc: dict) -> dict:
    """What the report's suite-strength section shows."""
    areas = [
        {
            "area": area,
            "score": _pct(a["score"]),
            "killed": a["killed"],
            "judged": a["killed"] + a["survived"],
            "other": sum(a[o] for o in OUTCOMES if o not in ("killed", "survived")),
        }
        for area, a in doc["areas"].items()
    ]
    return {
        "mode": "fast path only" if doc["mode"] == "fast" else "fast path, then the whole suite",
        "seconds": doc["seconds"],
        "totals": doc["totals"],
        "score": _pct(doc["totals"]["score"]),
        "areas": areas,
        "survivors": [m for m in doc["mutants"] if m["outcome"] == "survived"],
        "others": [m for m in doc["mutants"] if m["outcome"] not in ("killed", "survived")],
        "untargeted": doc["untargeted"],
    }
