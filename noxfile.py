"""Sessions: `nox -s conformance` (the suite against a runtime), `nox -s tests` (the harness's
own tests), `nox -s conformance-v2` (on a hybrid cgroup host, the suite as if it were pure
cgroup v2), `nox -s lint` (ruff and mypy), `nox -s matrix` (kernel x cgroup mode cells in VMs,
harness matrix), `nox -s ci` (what .ci/run and the README's test command run).

All sessions share one virtualenv, .nox/shared (see install()): the harness with its test,
analysis and lint extras, made once and installed again only when pyproject.toml changes. The
conformance sessions also make sure
the system packages they need are there (the runtime binaries, a C compiler and static libc for
the probe): when one is missing and we are root on a Debian-like host, they apt-get install it.
"""

from __future__ import annotations

import os
import shutil
import sys

import nox

nox.options.sessions = ["tests", "conformance"]

#: The runtime `nox -s conformance` tests when no --runtime is given: the bundled one, which
#: needs nothing installed.
DEFAULT_RUNTIME = "reference"
#: The runtimes the CI job tests.
CI_RUNTIMES = "reference,runc,crun"
RESULTS = "results"
#: Where `harness mutants` writes (nox -s mutants, and the fast path in nox -s ci).
MUTANTS_RESULTS = f"{RESULTS}/mutants/mutants.json"


def spec_env(session: nox.Session) -> dict[str, str]:
    """HARNESS_SPEC_DIR (the runtime-spec folder the catalogue audit reads), passed on to the
    tests; without it they use the cached download, or skip the audit saying why."""
    folder = os.environ.get("HARNESS_SPEC_DIR")
    if not folder:
        session.log("HARNESS_SPEC_DIR is not set: the catalogue audit uses the downloaded spec, or skips offline")
        return {}
    return {"HARNESS_SPEC_DIR": os.path.abspath(folder)}


#: Every session runs in this one virtualenv (sessions are declared ``venv_backend="none"``):
#: the harness installed editable with its test and analysis extras. Made on first use and
#: installed again only when pyproject.toml changes, instead of one ~440 MB virtualenv per
#: session. Delete the folder to start afresh.
SHARED_VENV = os.path.join(".nox", "shared")
shared_session = nox.session(venv_backend="none")


def shared_bin() -> str:
    return os.path.join(os.path.abspath(SHARED_VENV), "bin")


def install(session: nox.Session) -> None:
    """Make (or reuse) the shared virtualenv and put it first on PATH for this nox process."""
    import hashlib

    venv = os.path.abspath(SHARED_VENV)
    python = os.path.join(venv, "bin", "python")
    stamp = os.path.join(venv, ".oci-harness-installed")
    with open("pyproject.toml", "rb") as f:
        key = hashlib.sha256(f.read()).hexdigest()
    if not os.path.exists(python):
        try:  # virtualenv comes with nox; the stdlib venv needs python3-venv on Debian
            import virtualenv  # noqa: F401

            session.run(sys.executable, "-m", "virtualenv", "-q", venv, external=True)
        except ImportError:
            session.run(sys.executable, "-m", "venv", venv, external=True)
    current = ""
    if os.path.exists(stamp):
        with open(stamp) as f:
            current = f.read()
    if current != key:
        session.run(
            python,
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "-e",
            ".[test,lint,matrix]",
            external=True,
        )
        with open(stamp, "w") as f:
            f.write(key)
    else:
        session.log(f"reusing the shared virtualenv {SHARED_VENV}")
    if not os.environ.get("PATH", "").startswith(shared_bin() + os.pathsep):
        os.environ["PATH"] = shared_bin() + os.pathsep + os.environ.get("PATH", "")
    os.environ["VIRTUAL_ENV"] = venv


def requested_runtimes(posargs: list[str], default: str) -> tuple[list[str], list[str]]:
    """The runtime names in posargs (``--runtime A,B`` or ``--runtime=A,B``) and posargs with a default added."""
    for i, arg in enumerate(posargs):
        if arg == "--runtime" and i + 1 < len(posargs):
            return posargs[i + 1].split(","), posargs
        if arg.startswith("--runtime="):
            return arg.split("=", 1)[1].split(","), posargs
    return default.split(","), ["--runtime", default, *posargs]


def ensure_system_packages(session: nox.Session, runtimes: list[str], extra: tuple[str, ...] = ()) -> None:
    """apt-get install what the conformance suite needs and the host lacks (root, Debian only);
    ``extra`` are commands the session needs, each in the Debian package of the same name."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from harness import runtime as rt

    missing = [name for name in extra if not shutil.which(name)]
    if not (shutil.which("cc") or shutil.which("gcc")) or not any(
        os.path.exists(p)
        for p in (
            "/usr/lib/x86_64-linux-gnu/libc.a",
            "/usr/lib/aarch64-linux-gnu/libc.a",
            "/usr/lib64/libc.a",
            "/usr/lib/libc.a",
        )
    ):
        missing += ["gcc", "libc6-dev"]
    defs = rt.load_definitions()
    for name in runtimes:
        d = defs.get(name)
        if d is not None and d.find_binary() is None and d.debian_package:
            missing.append(d.debian_package)
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        session.warn(f"missing system packages {missing}; install them (as root: apt-get install {' '.join(missing)})")
        return
    session.log(f"installing system packages: {' '.join(missing)}")
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    session.run("apt-get", "update", "-qq", external=True, env=env)
    session.run("apt-get", "install", "-y", "-qq", *missing, external=True, env=env)


def run_conformance(session: nox.Session, posargs: list[str], default: str) -> None:
    """Results (results.jsonl, junit.xml, conformance.tap) go to results/conformance/."""
    runtimes, args = requested_runtimes(posargs, default)
    ensure_system_packages(session, runtimes)
    session.run("pytest", "cases", "-n", "auto", f"--results={RESULTS}/conformance", *args)


@shared_session
def tests(session: nox.Session) -> None:
    """The harness's own tests (tests/)."""
    install(session)
    os.makedirs(RESULTS, exist_ok=True)
    session.run("pytest", "tests", f"--junitxml={RESULTS}/tests.xml", *session.posargs, env=spec_env(session))


#: What mypy checks: the harness, and the bundled runtime as its own package (it imports nothing
#: from the harness).
TYPED = ["harness", "runtimes/reference/oci_reference"]


def run_lint(session: nox.Session) -> None:
    """ruff's lint rules and its formatter (check only) over the project, then mypy; the rules
    and what each leaves out, with why, are in pyproject.toml."""
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy", *TYPED)


@shared_session
def lint(session: nox.Session) -> None:
    """ruff (lint rules and format check) and mypy, as nox -s ci runs them first."""
    install(session)
    run_lint(session)


@shared_session
def conformance(session: nox.Session) -> None:
    """The conformance suite (cases/) against --runtime (default: the bundled reference runtime)."""
    install(session)
    run_conformance(session, session.posargs, DEFAULT_RUNTIME)


#: The runtimes the pure-v2 re-run covers. crun 1.8.1 is left out: on v2 it raises
#: RLIMIT_MEMLOCK for its eBPF device filter, which needs CAP_SYS_RESOURCE, and root on this VM
#: does not have it (bit 24 is missing from CapBnd), so every create fails before any case.
V2_RUNTIMES = "reference,runc"


def run_conformance_unified(session: nox.Session, posargs: list[str]) -> None:
    """On a hybrid host: the suite again in a private mount namespace whose /sys/fs/cgroup is the
    host's v2 hierarchy, so the runtimes (and the cases) take their pure cgroup v2 paths.
    Results go to results/conformance-v2/. Cases that need a controller this hierarchy lacks
    skip, saying which."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from harness import host

    if host.cgroup_mode() != "hybrid" or not os.path.exists("/sys/fs/cgroup/unified/cgroup.procs"):
        session.log(
            f"not a hybrid cgroup host ({host.cgroup_mode()}): the normal run already covers this host's cgroup mode"
        )
        return
    if os.geteuid() != 0:
        session.warn("the pure cgroup v2 re-run needs root (a private mount namespace); skipped")
        return
    _, args = requested_runtimes(posargs, V2_RUNTIMES)
    pytest_bin = os.path.join(shared_bin(), "pytest")
    session.run(
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        'mount --bind /sys/fs/cgroup/unified /sys/fs/cgroup && exec "$@"',
        "sh",
        pytest_bin,
        "cases",
        "-n",
        "auto",
        f"--results={RESULTS}/conformance-v2",
        *args,
        external=True,
    )


#: What a matrix cell needs on the host, by command: QEMU, and for virtme-ng depmod (the
#: kernel package's module index), busybox (its initramfs) and file (the kernel's version).
MATRIX_COMMANDS = {
    "qemu-system-x86_64": "qemu-system-x86",
    "depmod": "kmod",
    "busybox": "busybox-static",
    "file": "file",
}
#: The CI's real pure cgroup v2 cell: Debian's 6.1 kernel in a VM (virtme-ng, QEMU), the cgroup
#: and namespace cases named below on the bundled runtime and runc. Under TCG emulation on a
#: busy 2-core machine the boot takes 1-3 minutes and each case 5-20 s, so the selection is kept
#: small and the cell has a fixed budget (a cell past it is stopped and fails CI as timed-out).
CI_CELL_KERNEL = "6.1"
CI_CELL_CASES = [
    "cases/test_cgroups.py::test_pids_limit",
    "cases/test_cgroups.py::test_unified_entry_written",
    "cases/test_cgroups.py::test_no_cgroup_chown_without_cgroup_namespace",
    "cases/test_namespaces.py::test_cgroup_namespace_shows_own_cgroup_as_root",
]
CI_CELL_MINUTES = 9


def ensure_matrix_packages(session: nox.Session, runtimes: list[str]) -> None:
    ensure_system_packages(session, runtimes)
    missing = sorted(
        {
            pkg
            for cmd, pkg in MATRIX_COMMANDS.items()
            if not shutil.which(cmd, path=os.environ["PATH"] + ":/usr/sbin:/sbin")
        }
    )
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        session.error(f"harness matrix needs {' '.join(missing)} (as root: apt-get install {' '.join(missing)})")
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    session.run("apt-get", "update", "-qq", external=True, env=env)
    session.run("apt-get", "install", "-y", "-qq", *missing, external=True, env=env)


@shared_session
def matrix(session: nox.Session) -> None:
    """harness matrix: kernel x cgroup mode cells in VMs (default: Debian 6.1 and 6.12, v1,
    hybrid and v2, reference and runc), results and one merged report in results/matrix/.
    Arguments go to harness matrix: `nox -s matrix -- --kernel 6.1 --cgroup v2 -k cgroup`."""
    install(session)
    runtimes, _ = requested_runtimes(session.posargs, "reference,runc")
    ensure_matrix_packages(session, runtimes)
    session.run("harness", "matrix", "--output", f"{RESULTS}/matrix", *session.posargs)


@nox.session(name="conformance-v2", venv_backend="none")
def conformance_v2(session: nox.Session) -> None:
    """On a hybrid cgroup host, the conformance suite as if the host were pure cgroup v2 (see
    run_conformance_unified); default runtimes: reference and runc."""
    install(session)
    run_conformance_unified(session, session.posargs)


@shared_session
def report(session: nox.Session) -> None:
    """The HTML report (and a Markdown summary) of the newest complete conformance and bench runs
    under results/ (named at the top of the report); `nox -s report -- RESULTS...` shows others."""
    install(session)
    chosen = session.posargs or ["--latest", RESULTS]
    strength = ["--strength", MUTANTS_RESULTS] if os.path.exists(MUTANTS_RESULTS) else []
    session.run(
        "harness",
        "report",
        *chosen,
        "--output",
        f"{RESULTS}/report.html",
        "--markdown",
        f"{RESULTS}/report.md",
        *strength,
    )


@shared_session
def bench(session: nox.Session) -> None:
    """harness bench (default: a full run, about 5 minutes); pass --quick for seconds."""
    install(session)
    session.run("harness", "bench", *session.posargs)


@shared_session
def stability(session: nox.Session) -> None:
    """The conformance suite five times: any case whose outcome changes is reported. With
    ``-- --load`` the runs happen under a CPU, memory and I/O load (stress-ng, installed if
    missing, started and stopped by benchmarks/stability.py); ``--cgroup-v2`` as conformance-v2."""
    install(session)
    runtimes, _ = requested_runtimes(session.posargs, "reference,runc")
    ensure_system_packages(session, runtimes, extra=("stress-ng",) if "--load" in session.posargs else ())
    session.run("python", "benchmarks/stability.py", *session.posargs)


def mutant_survivors() -> list[str]:
    import json

    with open(MUTANTS_RESULTS, encoding="utf-8") as f:
        return [m["id"] for m in json.load(f)["mutants"] if m["outcome"] == "survived"]


@shared_session
def mutants(session: nox.Session) -> None:
    """Every spec mutant of the bundled runtime (tests/mutants/): the cases naming its
    requirements first, the whole suite for those they miss; fails if a mutant survives.
    Results: results/mutants/mutants.json (pass --only ID,AREA or --fast)."""
    install(session)
    ensure_system_packages(session, [DEFAULT_RUNTIME])
    session.run("harness", "mutants", "--output", MUTANTS_RESULTS, *session.posargs)


@shared_session
def ci(session: nox.Session) -> None:
    """Everything CI checks: lint and types (seconds, so first), the harness's tests, then the conformance suite on the bundled
    runtime, runc and crun, a few cgroup and namespace cases on a real pure cgroup v2 kernel in
    a VM (reference and runc, results/matrix-ci/), the spec mutants' fast path, a quick bench,
    then the report from those results."""
    install(session)
    run_lint(session)
    runtimes, _ = requested_runtimes([], CI_RUNTIMES)
    ensure_system_packages(session, runtimes)
    os.makedirs(RESULTS, exist_ok=True)
    session.run(
        "pytest",
        "tests",
        f"--junitxml={RESULTS}/tests.xml",
        "--runtime",
        CI_RUNTIMES,
        *session.posargs,
        env=spec_env(session),
    )
    run_conformance(session, ["--runtime", CI_RUNTIMES, *session.posargs], CI_RUNTIMES)
    # A real pure cgroup v2 host: Debian's 6.1 in a VM, a few cgroup and namespace cases on the
    # bundled runtime and runc, within a fixed budget (the emulated conformance-v2 it replaces
    # here could run only 2 of the cgroup cases on this host's hybrid layout).
    ensure_matrix_packages(session, V2_RUNTIMES.split(","))
    session.run(
        "harness",
        "matrix",
        "--kernel",
        CI_CELL_KERNEL,
        "--cgroup",
        "v2",
        "--runtime",
        V2_RUNTIMES,
        "--jobs",
        "1",
        "--cell-timeout",
        str(CI_CELL_MINUTES),
        "--output",
        f"{RESULTS}/matrix-ci",
        *CI_CELL_CASES,
    )
    # The suite must be able to fail: every spec mutant of the bundled runtime against the cases
    # naming its requirements (the fast path; the whole suite is nox -s mutants). A survivor
    # fails CI, once the bench and the report (which shows it) are done.
    session.run("harness", "mutants", "--fast", "--output", MUTANTS_RESULTS, success_codes=[0, 1])
    # Machines without internet access give a local Alpine tarball once, in $HARNESS_ROOTFS_TAR
    # (.ci/run sets it), which every command and session here reads.
    session.run(
        "harness", "bench", "--quick", "--no-progress", "--runtime", CI_RUNTIMES, "--output", f"{RESULTS}/bench"
    )
    session.run(
        "harness",
        "report",
        f"{RESULTS}/conformance,{RESULTS}/bench",
        "--output",
        f"{RESULTS}/report.html",
        "--markdown",
        f"{RESULTS}/report.md",
        "--strength",
        MUTANTS_RESULTS,
    )
    survivors = mutant_survivors()
    if survivors:
        session.error(f"spec mutants the suite did not notice (see {MUTANTS_RESULTS}): {', '.join(survivors)}")
