"""The pytest plugin: options, markers and fixtures for conformance cases.

Options
    ``--runtime NAME[,NAME...]`` runs every case that uses the ``runtime`` fixture once per runtime
    (a name from runtimes/*.toml or a binary path; default ``$HARNESS_RUNTIME`` or the bundled
    ``reference``, which needs nothing installed).

Markers
    ``@pytest.mark.spec(*ids)`` names the requirements a case checks, by their ids in the
    catalogue (:mod:`harness.requirements`, which gives spec file, section and RFC 2119 level);
    an unknown id is a usage error. They are recorded in the JUnit properties.
    ``@pytest.mark.requires(*needs)`` skips with a stated reason when the host lacks one of:
    ``root``, ``cgroup-v1``, ``cgroup-v2``, ``userns``, ``resctrl``, ``controller-NAME`` (the cgroup controller
    NAME, e.g. ``controller-memory``, can be given to a container here).
    ``@pytest.mark.feature(path, contains=None)`` skips a runtime whose ``features`` document
    does not claim the property at the dotted ``path`` (:mod:`harness.features`).

Fixtures
    ``runtime`` (a :class:`~harness.runtime.Runtime` with its own state root per run and worker),
    ``probe_binary``, ``bundle_factory`` (bundles in the test's tmp folder), ``container_factory``
    (containers that are always removed, also when the case fails), ``host_namespaces``,
    ``host_baseline`` (the host's namespaced sysctls, hostname and domainname before the run's
    first container: the leak check restores them and cases compare the host with them).

Expected failures listed in a runtime's definition turn into strict xfails of that runtime's
cases, with the definition's reason; a failure counts as the listed deviation only when its
message matches the entry's ``match`` regex (:class:`~harness.runtime.ExpectedFailure`),
otherwise it is reported as a failure. When a case fails, the report shows the config.json of
each container it made and what the runtime wrote to stderr.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from . import features, host, requirements, results
from . import runtime as _runtime
from .bundle import PROBE_PATH, Bundle, SharedProbe, create_bundle
from .errors import HarnessError

_REQUIREMENTS: dict[str, tuple[Callable[[], bool], str]] = {
    "root": (host.is_root, "needs root"),
    "cgroup-v1": (lambda: host.cgroup_mode() in ("v1", "hybrid"), "needs cgroup v1 controllers on the host"),
    "cgroup-v2": (lambda: host.cgroup_mode() == "v2", "needs a cgroup v2 (unified) host"),
    "userns": (host.user_namespaces_available, "needs user namespaces (/proc/sys/user/max_user_namespaces > 0)"),
    "resctrl": (
        lambda: any(m.fstype == "resctrl" for m in host.mounts()),
        "needs a mounted resctrl filesystem (Intel RDT), which this host does not have (no resctrl in /proc/self/mountinfo)",
    ),
}


def _requirement(item: pytest.Item, need: str) -> tuple[Callable[[], bool], str]:
    if need.startswith("controller-") and len(need) > len("controller-"):
        name = need[len("controller-") :]
        where = (
            "/sys/fs/cgroup/cgroup.controllers"
            if host.cgroup_mode() == "v2"
            else "the v1 hierarchies in /proc/self/mountinfo"
        )
        return (
            lambda: name in host.cgroup_controllers()
        ), f"needs the {name} cgroup controller, which this host does not offer (see {where})"
    if need not in _REQUIREMENTS:
        raise pytest.UsageError(
            f"{item.nodeid}: unknown requirement {need!r} (known: {', '.join(_REQUIREMENTS)}, controller-NAME)"
        )
    return _REQUIREMENTS[need]


_CONTAINERS = pytest.StashKey[list]()
_DEVIATION = pytest.StashKey[_runtime.ExpectedFailure]()
#: ``{requirement id: [case ids]}`` of the collected cases, before any is deselected (--results).
_COVERED = pytest.StashKey[dict]()
#: The key under which an xdist worker sends that map to the controller (``workeroutput``).
_COVERED_OUTPUT = "oci_harness_covered"

#: What pytest_configure settles for the whole run, kept in pytest's stash (public keys, so a
#: companion plugin such as harness._mutant_select reads them without private attributes):
#: the runtimes to parametrize with, the problems found resolving them, and this worker's run id.
RUNTIMES = pytest.StashKey[dict[str, "_runtime.RuntimeDefinition"]]()
RUNTIME_PROBLEMS = pytest.StashKey[list[str]]()
RUN_ID = pytest.StashKey[str]()
#: The host's namespaced sysctls (hostname and domainname among them) before the run's first
#: container (:func:`harness.leaks.host_baseline`); under xdist taken by the controller and
#: handed to the workers under ``_BASELINE_INPUT`` (``workerinput``).
HOST_BASELINE = pytest.StashKey[dict[str, str]]()
_BASELINE_INPUT = "oci_harness_host_baseline"
#: The runtime cases run on when neither --runtime nor $HARNESS_RUNTIME names one: the bundled
#: one, so the suite works on a machine with no runtime installed.
DEFAULT_RUNTIME = "reference"
#: The fixture of the differential cases; they run only with --diff A,B.
DIFF_FIXTURE = "diff_runtimes"
_T = TypeVar("_T")
_PROFILE = "oci-quick"


def hypothesis_settings() -> Any:
    """The hypothesis settings for property-based cases: ``oci-quick`` (CI: few examples, the
    same ones every run) or, with ``--deep``, ``oci-deep`` (many random examples)."""
    from hypothesis import HealthCheck, settings

    common: dict[str, Any] = {
        "deadline": None,
        "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        "print_blob": True,
    }
    settings.register_profile("oci-quick", max_examples=12, derandomize=True, **common)
    settings.register_profile("oci-deep", max_examples=300, **common)
    return settings.get_profile(_PROFILE)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("oci-harness", "OCI runtime conformance")
    group.addoption(
        "--runtime",
        default=os.environ.get("HARNESS_RUNTIME", DEFAULT_RUNTIME),
        help="runtimes to test, comma separated: names from runtimes/*.toml or binary paths "
        "(default: %(default)s; e.g. --runtime reference,runc,crun)",
    )
    group.addoption("--runtime-timeout", type=float, default=None, help="timeout of each runtime call, in seconds")
    group.addoption(
        "--diff",
        metavar="A,B",
        default=None,
        help="also run the differential cases: the same bundles on runtimes A and B must give the same view inside",
    )
    group.addoption(
        "--deep", action="store_true", help="property-based cases run the deep hypothesis profile (many more examples)"
    )
    group.addoption(
        "--results",
        metavar="DIR",
        default=None,
        help="write results.jsonl (one record per case and runtime), junit.xml, conformance.tap, environment.json and requirements.json into DIR (see docs/results.md)",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    results_dir = config.getoption("--results")
    if results_dir and not hasattr(config, "workerinput"):
        Path(results_dir).mkdir(parents=True, exist_ok=True)
        if not config.option.xmlpath:
            config.option.xmlpath = str(Path(results_dir) / "junit.xml")
        config.pluginmanager.register(_Recorder(config, Path(results_dir)), "oci-harness-results")
    if results_dir:
        config.pluginmanager.register(_Coverage(), "oci-harness-coverage")
    config.addinivalue_line("markers", "spec(*ids): the catalogue ids of the spec requirements a case checks")
    config.addinivalue_line(
        "markers",
        "feature(path, contains=None): a features-document property the runtime must claim, or the case skips",
    )
    config.addinivalue_line(
        "markers",
        "requires(*needs): host capabilities a case needs (root, cgroup-v1, cgroup-v2, userns, resctrl, controller-NAME)",
    )
    config.addinivalue_line(
        "markers",
        "long_running: the case runs long (many containers, a large image): it is scheduled first, so that "
        "pytest-xdist's workers end together",
    )
    config.addinivalue_line(
        "markers",
        "private_runtime_mount_namespace: the runtime's calls run in a private mount namespace held for the case, "
        "whose mount table the leak check compares before and after",
    )
    names = [n.strip() for n in config.getoption("--runtime").split(",") if n.strip()]
    defs: dict[str, _runtime.RuntimeDefinition] = {}
    problems = []
    for name in names:
        try:
            d = _runtime.resolve(name)
        except HarnessError as err:
            problems.append(str(err))
            continue
        defs[d.name] = d
        if d.find_binary() is None:
            hint = f": apt-get install {d.debian_package}" if d.debian_package else ""
            problems.append(f"runtime {d.name!r}: binary {d.binary!r} is not installed{hint}")
    config.stash[RUNTIMES] = defs
    # Reported only if the run has cases that need a runtime: unit tests do not.
    config.stash[RUNTIME_PROBLEMS] = problems
    global _PROFILE
    _PROFILE = "oci-deep" if config.getoption("--deep") else "oci-quick"
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    # HARNESS_RUN_ID names the run (a tool that runs the suite, like benchmarks/stability.py,
    # then knows which container ids, cgroups and state roots on the host are its run's)
    tag = os.environ.get("HARNESS_RUN_ID") or uuid.uuid4().hex[:8]
    if not ((tag.isascii() and tag.isalnum() and tag.islower()) or tag.isdigit()) or len(tag) > 12:
        raise pytest.UsageError(f"HARNESS_RUN_ID={tag!r}: give 1 to 12 lower-case letters and digits, or unset it")
    config.stash[RUN_ID] = f"{tag}-{worker}"


def host_baseline(config: pytest.Config) -> dict[str, str]:
    """The run-wide baseline of the host's values a container must not change: taken once,
    before any container of the run starts. Per worker, one worker would record the value another
    worker's non-isolating container had just set, and later "restore" it on the host."""
    baseline = config.stash.get(HOST_BASELINE, None)
    if baseline is None:
        from . import leaks

        baseline = getattr(config, "workerinput", {}).get(_BASELINE_INPUT)
        if baseline is None:  # the controller (or a run without xdist), before its first container
            baseline = leaks.host_baseline()
        config.stash[HOST_BASELINE] = baseline
    return baseline


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist, in the controller, before it starts each worker: hand it the run's baseline."""
    node.workerinput[_BASELINE_INPUT] = host_baseline(node.config)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "runtime" in metafunc.fixturenames:
        defs = metafunc.config.stash[RUNTIMES]
        names = list(defs)
        metafunc.parametrize("runtime", names, indirect=True, ids=names)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    defs = config.stash[RUNTIMES]
    problems = config.stash[RUNTIME_PROBLEMS]
    if (
        problems
        and not config.option.collectonly
        and any("runtime" in getattr(item, "fixturenames", ()) for item in items)
    ):
        raise pytest.UsageError("\n".join(problems))
    diff = config.getoption("--diff")
    if not diff:
        # Without --diff the differential cases have no runtimes to compare: leave them out
        # rather than record them as skipped on no runtime at all.
        left_out = [item for item in items if DIFF_FIXTURE in getattr(item, "fixturenames", ())]
        if left_out:
            config.hook.pytest_deselected(items=left_out)
            items[:] = [item for item in items if item not in left_out]
    for item in items:
        if diff and DIFF_FIXTURE in getattr(item, "fixturenames", ()):
            item.user_properties.append(("runtime", " vs ".join(n.strip() for n in diff.split(","))))
        for marker in item.iter_markers("requires"):
            for need in marker.args:
                available, reason = _requirement(item, need)
                if not available():
                    item.add_marker(pytest.mark.skip(reason=reason))
        for req in case_requirements(item):
            item.user_properties.append(("requirement", f"{req.id} ({req.level}, {req.anchor})"))
            item.user_properties.append(("requirement_id", req.id))
        callspec = getattr(item, "callspec", None)
        name = callspec.params.get("runtime") if callspec else None
        if name is not None:
            item.user_properties.append(("runtime", name))
        if name in defs:
            known = _expected_failure(defs[name], item)
            if known:
                item.stash[_DEVIATION] = known
                item.add_marker(pytest.mark.xfail(reason=f"{name}: {known.reason} ({known.spec})", strict=True))
    items.sort(key=_runs_long_first)


def _runs_long_first(item: pytest.Item) -> int:
    """Cases that run many containers first, the rest in their collected order (a stable sort).

    pytest-xdist hands cases out in this order; a long case near the end keeps one worker busy
    while the others have nothing left to take. Long are the property cases (each example a
    container) and those marked ``long_running``. Every worker sorts the same way, so they all
    collect the same order, as xdist requires."""
    obj = getattr(item, "obj", None)
    if getattr(obj, "is_hypothesis_test", False) or item.get_closest_marker("long_running"):
        return 0
    return 1


def case_requirements(item: pytest.Item) -> list[requirements.Requirement]:
    """The catalogue entries a case names with ``spec(...)``; an unknown id is a usage error."""
    catalogue = requirements.catalogue()
    found = []
    for marker in item.iter_markers("spec"):
        if not marker.args:
            raise pytest.UsageError(f"{item.nodeid}: spec() needs at least one requirement id")
        for rid in marker.args:
            if rid not in catalogue:
                raise pytest.UsageError(
                    f"{item.nodeid}: unknown requirement id {rid!r} (see harness/requirements/*.toml)"
                )
            found.append(catalogue[rid])
    return found


def _expected_failure(definition: _runtime.RuntimeDefinition, item: pytest.Item) -> _runtime.ExpectedFailure | None:
    """A definition lists failures by case name, optionally with its other parameters and file.

    For ``cases/test_ns.py::test_x[runsc-ipc]`` the keys tried are ``cases/test_ns.py::test_x[ipc]``,
    ``test_x[ipc]``, ``cases/test_ns.py::test_x`` and ``test_x``.
    """
    return _listed(definition.expected_failures, definition.name, item)


def _listed(entries: dict[str, _T], runtime_name: str, item: pytest.Item) -> _T | None:
    """The reason ``entries`` (case keys as in :func:`_expected_failure`) give for ``item``, or None."""
    path, _, name = item.nodeid.split("[", 1)[0].rpartition("::")
    params = item.callspec.id.split("-") if hasattr(item, "callspec") else []
    if runtime_name in params:
        params.remove(runtime_name)
    names = [f"{name}[{'-'.join(params)}]"] if params else []
    names.append(name)
    for key in [f"{path}::{n}" for n in names] + names:
        if key in entries:
            return entries[key]
    return None


@pytest.hookimpl(tryfirst=True, specname="pytest_runtest_makereport")
def pytest_runtest_makereport_of_known_deviation(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport | None:
    """The report of a known deviation failing as listed, without its formatted traceback.

    pytest formats a failure's traceback (parsing each frame's source file) before xfail turns
    it into an expected failure, whose traceback nothing shows or records (the terminal, JUnit
    and results.jsonl keep the reason): about a tenth of a second per case, for each of a
    runtime's known deviations. A failure that does not match its entry, or any other
    failure, gets pytest's own report (None here), traceback and all."""
    known = item.stash.get(_DEVIATION, None)
    excinfo = call.excinfo
    if (
        known is None
        or excinfo is None
        or call.when != "call"
        or item.config.option.runxfail
        or not isinstance(excinfo.value, (Exception, pytest.fail.Exception))
        or not _is_known_deviation(known, excinfo.value, excinfo.exconly())
    ):
        return None
    entry = excinfo.traceback[-1] if excinfo.traceback else None
    where = f"{entry.path}:{entry.lineno + 1}: " if entry is not None else ""
    return pytest.TestReport(
        item.nodeid,
        item.location,
        dict.fromkeys(item.keywords, 1),
        "failed",
        f"{where}{excinfo.exconly()}\n(a known deviation of the runtime: traceback not formatted)",
        call.when,
        [],
        call.duration,
        call.start,
        call.stop,
        user_properties=item.user_properties,
    )


def _is_known_deviation(known: _runtime.ExpectedFailure, error: BaseException, message: str) -> bool:
    """Whether a failure is the listed deviation. A group of failures (hypothesis reports each
    distinct failing example as one exception of a group, whose own text names none of them)
    is the deviation only when every failure in it is."""
    if isinstance(error, BaseExceptionGroup):
        import traceback

        leaves: list[BaseException] = []
        stack: list[BaseException] = [error]
        while stack:
            e = stack.pop()
            if isinstance(e, BaseExceptionGroup):
                stack.extend(e.exceptions)
            else:
                leaves.append(e)
        return bool(leaves) and all(
            known.matches("".join(traceback.format_exception_only(type(e), e)).strip()) for e in leaves
        )
    return known.matches(message)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    known = item.stash.get(_DEVIATION, None)
    if known is not None and getattr(report, "wasxfail", None) is not None and call.excinfo is not None:
        # pytest's xfail takes any failure; a known deviation is one specific failing check.
        message = call.excinfo.exconly()
        if not _is_known_deviation(known, call.excinfo.value, message):
            del report.wasxfail
            report.outcome = "failed"
            note = (
                f"this case is listed as a known deviation ({known.reason}), but it failed differently:\n"
                f"  the failure message does not match {known.match!r}\n"
                "A new failure, not the known deviation: fix it or update the entry in the runtime's definition."
            )
            addsection = getattr(report.longrepr, "addsection", None)
            if addsection is not None:
                addsection("harness: not the known deviation", note)
            report.sections.append(("harness: not the known deviation", note))
    if report.failed:
        for container in item.stash.get(_CONTAINERS, []):
            try:
                config = container.bundle.joinpath("config.json").read_text()
            except OSError as err:
                config = f"(unreadable: {err})"
            report.sections.append((f"harness: config.json of container {container.id}", config))
            if container.create_stderr.strip():
                report.sections.append(
                    (f"harness: {container.runtime.name} stderr at create of {container.id}", container.create_stderr)
                )
            stdout, stderr = container.stdout(), container.stderr()
            if stdout.strip():
                report.sections.append((f"harness: stdout of container {container.id}", stdout))
            if stderr.strip():
                report.sections.append((f"harness: stderr of container {container.id}", stderr))
    return report


# --------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="session")
def harness_session(request: pytest.FixtureRequest) -> Iterator[_runtime.Session]:
    """The run's session (:func:`harness.runtime.open_session`): one state root per run and
    xdist worker, the journal (so `harness cleanup` removes what a killed run left behind), the
    harness a child subreaper (container inits are adopted once `create` returns: their exit
    statuses are ours to read); all removed when the run ends. Runtimes come from
    ``harness_session.runtime(...)``."""
    with _runtime.open_session(request.config.stash[RUN_ID], subreaper=host.is_root()) as session:
        yield session


@pytest.fixture(scope="session", name="host_baseline")
def host_baseline_fixture(request: pytest.FixtureRequest) -> dict[str, str]:
    """The host's namespaced sysctls (``kernel.hostname``, ``kernel.domainname``,
    ``kernel.shm_rmid_forced``, ``net.ipv4.ip_forward`` ...; values as read from /proc/sys, with
    their newline) before the run's first container: what a case compares the host with. Under
    xdist the host's current value may be a neighbour worker's container's doing."""
    return dict(host_baseline(request.config))


@pytest.fixture(scope="session")
def _runtimes(request: pytest.FixtureRequest, harness_session: _runtime.Session) -> dict[str, _runtime.Runtime]:
    timeout = request.config.getoption("--runtime-timeout")
    return {name: harness_session.runtime(d, timeout=timeout) for name, d in request.config.stash[RUNTIMES].items()}


@pytest.fixture
def runtime(request: pytest.FixtureRequest, _runtimes: dict[str, _runtime.Runtime]) -> _runtime.Runtime:
    """The runtime under test (cases run once per ``--runtime``). A case marked
    ``feature(PATH, contains=VALUE)`` skips when the runtime's ``features`` output does not claim
    it (see :mod:`harness.features`)."""
    rt = _runtimes[request.param]
    for marker in request.node.iter_markers("feature"):
        if not marker.args:
            raise pytest.UsageError(f"{request.node.nodeid}: feature() needs a dotted features path")
        reason = features.unclaimed(
            features.document(rt),
            marker.args[0],
            marker.kwargs.get("contains"),
            rt.name,
            marker.kwargs.get("at_least"),
            marker.kwargs.get("what"),
        )
        if reason:
            pytest.skip(reason)
    return rt


@pytest.fixture(scope="session")
def probe_binary() -> Path:
    from .probe import build_probe

    try:
        return build_probe()
    except HarnessError as err:
        pytest.exit(f"cannot build the probe: {err}", returncode=3)


@pytest.fixture(scope="session")
def host_namespaces() -> dict[str, int]:
    """The namespace inodes of the test process, i.e. of the host."""
    return host.namespace_inodes()


BundleFactory = Callable[..., Bundle]


_TMP_NUMBERS = itertools.count()


@pytest.fixture
def tmp_path(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """pytest's ``tmp_path``, a new folder per case under the run's base temporary folder (the
    case's name, up to 30 characters, and a number), made with one ``mkdir``.

    pytest's own numbers the folder by listing the whole base folder (every case's folder so
    far, so the cost grows with the run) and re-points a ``<name>current`` symlink at it: one
    more inode made and one freed per case, on the file system the bundles are on, where each
    freed inode slows later allocations (an ext4 without journal skips recently freed inodes).
    What is kept afterwards follows pytest's ``tmp_path_retention_policy`` as pytest's does."""
    try:  # pytest's own record of the case's outcome (pytest >= 7.3; private, so looked up with care)
        from _pytest.tmpdir import tmppath_result_key
    except ImportError:
        tmppath_result_key = None  # type: ignore[assignment]

    name = re.sub(r"[\W]", "_", request.node.name)[:30]
    base = tmp_path_factory.getbasetemp()
    while True:
        path = base / f"{name}{next(_TMP_NUMBERS)}"
        try:
            path.mkdir(mode=0o700)
            break
        except FileExistsError:
            continue
    yield path
    if tmppath_result_key is None:  # a pytest that records no outcome there: keep the folder
        return
    results = request.node.stash.get(tmppath_result_key, {})
    if getattr(tmp_path_factory, "_retention_policy", "all") == "failed" and results.get("call", True):
        shutil.rmtree(path, ignore_errors=True)
    with contextlib.suppress(KeyError):
        del request.node.stash[tmppath_result_key]


@pytest.fixture(scope="session")
def _shared_probe(tmp_path_factory: pytest.TempPathFactory, probe_binary: Path) -> SharedProbe:
    """The probe that ``bundle_factory``'s bundles hard link (:class:`~harness.bundle.SharedProbe`):
    one copy per run and worker, in the run's base temporary folder, beside the bundles."""
    return SharedProbe(probe_binary, tmp_path_factory.getbasetemp() / "shared-probe")


@pytest.fixture
def bundle_factory(tmp_path: Path, _shared_probe: SharedProbe) -> BundleFactory:
    """``bundle_factory(*probe_verbs, edit=None, rootfs="probe", **create_bundle_args)``.

    Makes a bundle in the test's tmp folder whose process runs the probe with the given verbs
    (``bundle_factory("report")``); ``edit(config)`` may change the config in place before it is
    validated and written. The root filesystem is writable unless ``readonly=True``. Its
    ``/probe`` is a hard link of the run's one copy (:class:`~harness.bundle.SharedProbe`).
    """
    counter = itertools.count()

    def make(*verbs: str, edit: Callable[[dict[str, Any]], None] | None = None, **kwargs: Any) -> Bundle:
        kwargs.setdefault("readonly", False)
        kwargs.setdefault("probe_binary", _shared_probe)
        if verbs:
            kwargs["args"] = [PROBE_PATH, *verbs]
        return create_bundle(tmp_path / f"bundle{next(counter)}", edit=edit, **kwargs)

    return make


#: The user namespace of ``userns_bundle``: container ids 0..65535 are host ids 100000...
USERNS_HOST_ID = 100000
USERNS_SIZE = 65536


def add_user_namespace(config: dict[str, Any]) -> None:
    """A new user namespace mapping container 0.. to host ``USERNS_HOST_ID``.. (uids and gids)."""
    from . import spec

    spec.set_namespace(config, "user")
    mapping = {"containerID": 0, "hostID": USERNS_HOST_ID, "size": USERNS_SIZE}
    config.setdefault("linux", {})["uidMappings"] = [dict(mapping)]
    config["linux"]["gidMappings"] = [dict(mapping)]


@pytest.fixture
def userns_bundle(probe_binary: Path) -> Iterator[Callable[..., Bundle]]:
    """``userns_bundle(*probe_verbs, edit=None)``: a bundle with a user namespace
    (:func:`add_user_namespace`) that the mapped host ids can reach.

    pytest's tmp folders are private to root, which the container's root (host uid 100000)
    cannot enter: these bundles live in their own world-searchable folder, removed at teardown.
    The rootfs stays owned by root: its mount points exist and /shared is writable by anyone, so
    the runtime never needs to chown anything.
    """
    import tempfile

    made = []

    def make(*verbs: str, edit: Callable[[dict[str, Any]], None] | None = None) -> Bundle:
        base = tempfile.mkdtemp(prefix="oci-harness-userns-")
        made.append(base)
        os.chmod(base, 0o755)

        def change(config: dict[str, Any]) -> None:
            add_user_namespace(config)
            if edit is not None:
                edit(config)

        bundle = create_bundle(
            Path(base) / "bundle", probe_binary=probe_binary, args=[PROBE_PATH, *verbs], readonly=False, edit=change
        )
        rootfs = Path(base) / "bundle" / "rootfs"
        for name in ("proc", "dev", "sys", "shared"):
            (rootfs / name).mkdir(exist_ok=True)
        os.chmod(rootfs / "shared", 0o1777)
        return bundle

    yield make
    for base in made:
        shutil.rmtree(base, ignore_errors=True)


_ids = itertools.count()


_ISSUED = pytest.StashKey[list]()


@pytest.fixture
def container_id(request: pytest.FixtureRequest) -> Callable[[], str]:
    """Fresh container ids, unique per run and per xdist worker. The ids a case got are the
    names by which what its runtime leaves on the host is told from other runs' (harness.leaks)."""
    run_id = request.config.stash[RUN_ID]
    issued = request.node.stash.setdefault(_ISSUED, [])

    def fresh() -> str:
        issued.append(f"h{run_id}-{next(_ids)}")
        return issued[-1]

    return fresh


@pytest.fixture
def container_factory(
    request: pytest.FixtureRequest, runtime: _runtime.Runtime, tmp_path: Path, container_id: Callable[[], str]
) -> Iterator[Callable[[Bundle], _runtime.Container]]:
    """``container_factory(bundle)``: a :class:`Container` on the runtime under test, not yet created.

    Every container made here is killed and deleted at teardown, whatever the case did.
    """
    from . import leaks

    made: list[_runtime.Container] = []
    request.node.stash[_CONTAINERS] = made
    mounts_before: set[str] = set()
    host_before: dict[str, str] = {}
    # A case whose container shares the runtime's mount namespace asks for a private one held
    # for the whole case (a namespace made for each call, as a definition's quirk does, would
    # vanish with the call, and with it what the runtime left mounted there). It is a copy of
    # ours when the case begins: host mounts made later are not seen in it.
    held = None
    if request.node.get_closest_marker("private_runtime_mount_namespace"):
        quirk = runtime.definition.private_mount_namespace
        held = leaks.RuntimeMountNamespace(quirk.unmount if quirk is not None and quirk.applies() else ())
    setup = runtime.with_process_setup(held.enter) if held is not None else contextlib.nullcontext()
    setup.__enter__()

    def make(bundle: Bundle, *, id: str | None = None) -> _runtime.Container:
        # stdio files in the case's own folder, beside its bundles (a folder of their own would
        # be one more inode made and freed per case)
        c = _runtime.Container(runtime, id or container_id(), bundle.path, tmp_path)
        mounts_before.update(leaks.mount_points([os.path.realpath(bundle.path)]))  # overlay bundles' own
        try:  # the host's values of what the container is to set in its own namespaces
            linux = bundle.config().get("linux") or {}
            sysctls = set(linux.get("sysctl") or {})
            devices = {d["path"] for d in linux.get("devices") or [] if isinstance(d.get("path"), str)}
            net = linux.get("netDevices") or {}
            links = set(net) | {
                d["name"] for d in net.values() if isinstance(d, dict) and isinstance(d.get("name"), str)
            }
        except (OSError, ValueError, AttributeError, TypeError, HarnessError):
            sysctls, devices, links = set(), set(), set()
        # the run's baseline where it has the key (a neighbour worker's container may have
        # changed the host since); what it lacks (devices, links, other sysctls) is read now
        baseline = host_baseline(request.config)
        for key, value in leaks.host_state(sysctls, devices, links).items():
            host_before.setdefault(key, baseline.get(key, value))
        made.append(c)
        return c

    try:
        yield make
        errors = []
        for c in reversed(made):
            try:
                c.cleanup()
            except HarnessError as err:
                errors.append(str(err))
        if made:
            _check_leaks(request.node, runtime, made, mounts_before, errors, host_before, held)
    finally:
        setup.__exit__(None, None, None)
        if held is not None:
            held.close()


def _check_leaks(
    item: pytest.Item,
    runtime: _runtime.Runtime,
    made: list[_runtime.Container],
    mounts_before: set[str],
    errors: list[str],
    host_before: dict[str, str],
    held: Any = None,
) -> None:
    """After its containers were deleted: what the runtime left on the host is a finding
    (runtime.md, delete), removed here, and a failure of the case unless the runtime's
    definition lists it under ``[known_leaks]``. When the runtime could not even delete a
    container (``errors``), what it left is removed all the same, and the case fails."""
    from . import leaks

    if errors:
        # the runtime cannot delete it (a delete killed by SIGPIPE each time): take it apart
        for c in made:
            c.end_process()
    ids = [c.id for c in made]
    issued: list[str] = item.stash.get(_ISSUED, [])
    tokens = sorted(set(ids) | set(issued))
    found = [f"{w} (removed by the harness)" for c in made for w in c.left_behind]
    scanned = leaks.find(
        ids=ids,
        tokens=tokens,
        bundles=[str(c.bundle) for c in made],
        state_roots=[runtime.state_root],
        mounts_before=mounts_before,
        own_processes=True,
    )
    problems = leaks.remove(scanned)
    found += [str(x) for x in scanned] + [f"could not remove {p}" for p in problems]
    if held is not None:  # removed with the namespace when the case ends
        found += [f"mount {m} in the runtime's mount namespace" for m in held.changes([str(c.bundle) for c in made])]
    # the host's hostname, domainname and the sysctls the configs set: a runtime that skipped
    # a namespace it was asked for changed the host's own (config-linux.md, Sysctl; config.md)
    changed, unrestored = leaks.restore_host_state(host_before)
    found += changed + unrestored
    known = _listed(runtime.definition.known_leaks, runtime.definition.name, item)
    if known is None and found and not errors and not changed and not unrestored:
        known = _known_leak_kind(runtime.definition.known_leak_patterns, found)
    if found or errors:
        left = found + [f"a container the runtime could not delete: {e.splitlines()[0]}" for e in errors]
        item.user_properties.append(("leak", json.dumps({"runtime": runtime.name, "left": left, "known": known})))
    if errors and known is None:
        pytest.fail(
            "cleanup failed: the runtime could not delete its containers; the harness removed what it found:\n  "
            + "\n  ".join(found or ["(nothing found)"])
            + "\n"
            + "\n".join(errors),
            pytrace=False,
        )
    if problems or unrestored:
        # a known leak excuses the runtime, not a host the harness could not put back
        pytest.fail(
            f"HOST NOT RESTORED: after {runtime.name}'s containers were deleted the harness could not remove or "
            "restore what was left; remove it by hand:\n  " + "\n  ".join(found),
            pytrace=False,
        )
    if found and known is None:
        head = []
        if any(not f.startswith("host ") for f in found):
            head.append(
                f"LEAK: {runtime.name} left this behind after its containers were deleted (runtime.delete.removes-resources)"
            )
        if changed or unrestored:
            head.append(
                f"HOST CHANGED: {runtime.name} changed the host's own values (a namespace it was asked for was not made, or not used)"
            )
        pytest.fail(
            "; ".join(head)
            + "; list it under [known_leaks] in its definition if it is a known deviation:\n  "
            + "\n  ".join(found),
            pytrace=False,
        )


def _known_leak_kind(patterns: dict[str, str], found: list[str]) -> str | None:
    """The reasons of ``[known_leak_patterns]`` when every leak line matches one, else None: a
    leak of another kind beside a known one still fails the case."""
    reasons: list[str] = []
    for line in found:
        reason = next((r for p, r in patterns.items() if re.search(p, line)), None)
        if reason is None:
            return None
        if reason not in reasons:
            reasons.append(reason)
    return "; ".join(reasons) if reasons else None


@pytest.fixture
def run_probe(
    bundle_factory: BundleFactory, container_factory: Callable[[Bundle], _runtime.Container]
) -> Callable[..., tuple[_runtime.Container, Any]]:
    """``run_probe(*verbs, edit=None)``: run a probe container to its end; returns (container, parsed stdout).

    With the ``report`` verb the parsed stdout is the report (a dict); otherwise the raw text.
    The container has exited but is not yet deleted.
    """

    def run(
        *verbs: str, edit: Callable[[dict[str, Any]], None] | None = None, timeout: float = 30.0
    ) -> tuple[_runtime.Container, Any]:
        bundle = bundle_factory(*verbs, edit=edit)
        c = container_factory(bundle)
        c.create()
        c.start()
        end = c.wait(timeout=timeout)
        out = c.stdout()
        if end.code not in (0, None):
            raise AssertionError(f"probe {' '.join(verbs)} exited with {end}; stderr: {c.stderr()!r}")
        if verbs and verbs[0] == "report":
            from .probe import parse_report

            return c, parse_report(out)
        return c, out

    return run


# --------------------------------------------------------------------------------------------
# Result files (--results DIR)


class _Coverage:
    """With --results: which requirements the collected cases name, before -k, -m or the
    differential cases' removal deselect any, so the report tells "not run" from "not covered"
    without collecting the cases again. Under xdist the workers collect, and send it along."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        covered = requirements.cases_by_requirement(items)
        config.stash[_COVERED] = covered
        workeroutput = getattr(config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput[_COVERED_OUTPUT] = covered


class _Recorder:
    """Collects one record per case and runtime from the reports (also those of xdist workers)."""

    def __init__(self, config: pytest.Config, directory: Path):
        self.config = config
        self.directory = directory
        self.records: dict[str, dict[str, Any]] = {}
        self.started = time.time()
        self.collected = 0
        self.deselected = 0
        #: Cases that ran on no runtime (none in cases/ today): never recorded, only counted.
        self.without_runtime: set[str] = set()

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.collected = max(self.collected, len(session.items))

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self.collected = max(self.collected, len(ids))  # under xdist the workers collect

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self.deselected += len(items)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props = {k: v for k, v in report.user_properties if k != "requirement_id"}
        if not props.get("runtime"):
            self.without_runtime.add(report.nodeid)
            return
        rec = self.records.get(report.nodeid)
        if rec is None:
            catalogue = requirements.catalogue()
            ids = [v for k, v in report.user_properties if k == "requirement_id"]
            rec = self.records[report.nodeid] = results.new(
                report.nodeid, str(props["runtime"]), [catalogue[i] for i in ids if i in catalogue]
            )
        rec["duration"] = round(rec["duration"] + report.duration, 6)
        for key, value in report.user_properties:
            leak = json.loads(str(value)) if key == "leak" else None
            if leak is not None and leak not in rec.setdefault("leaks", []):
                # what the runtime left on the host: a finding against runtime.delete.removes-resources
                rec["leaks"].append(leak)
                catalogue = requirements.catalogue()
                if "runtime.delete.removes-resources" in catalogue and not leak["known"]:
                    entry = catalogue["runtime.delete.removes-resources"]
                    if all(r["id"] != entry.id for r in rec["requirements"]):
                        rec["requirements"].append(results.requirement(entry))
        xfail_reason = getattr(report, "wasxfail", None)
        if report.when == "call":
            if report.skipped and xfail_reason is not None:
                rec["outcome"], rec["reason"] = "xfailed", xfail_reason
            elif report.passed and xfail_reason is not None:
                rec["outcome"], rec["reason"] = "xpassed", xfail_reason
            elif report.failed:
                rec["outcome"] = "failed"
            elif report.skipped:
                rec["outcome"], rec["reason"] = "skipped", _skip_reason(report)
        elif report.skipped and report.when == "setup":
            if xfail_reason is not None:
                rec["outcome"], rec["reason"] = "xfailed", xfail_reason
            else:
                rec["outcome"], rec["reason"] = "skipped", _skip_reason(report)
        elif report.failed:
            rec["outcome"] = "error" if rec["outcome"] in ("passed", "xfailed") else rec["outcome"]
        if report.failed:
            rec["message"] = ((rec["message"] + "\n") if rec["message"] else "") + report.longreprtext
            rec["sections"].update({title: text for title, text in report.sections if title.startswith("harness:")})

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        covered = getattr(node, "workeroutput", {}).get(_COVERED_OUTPUT)
        if covered is not None:
            self.config.stash[_COVERED] = covered

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        from . import environment
        from .requirements import record as requirements_record

        versions = {name: d.version() for name, d in (self.config.stash.get(RUNTIMES, None) or {}).items()}
        env = environment.collect(versions)
        records = results.finish(self.records.values(), versions, env)
        status = int(session.exitstatus)
        env["run_status"] = environment.run_block(
            started=self.started,
            exitstatus=status,
            args=[str(a) for a in self.config.invocation_params.args],
            runtimes=list(self.config.stash.get(RUNTIMES, None) or ()),
            collected=self.collected,
            deselected=self.deselected,
            recorded=len(records),
            keyword=self.config.getoption("keyword", "") or "",
            markexpr=self.config.getoption("markexpr", "") or "",
            without_runtime=len(self.without_runtime),
            stopped_early=bool(session.shouldfail or session.shouldstop),
        )
        results.write(records, self.directory)
        environment.write(env, self.directory)
        covered = self.config.stash.get(_COVERED, None)
        if covered is not None:
            requirements_record.write(requirements_record.build(requirements.catalogue(), covered), self.directory)


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr or "")
