"""Hooks (config.md "POSIX-platform Hooks"; runtime.md "Lifecycle" steps 3-13): each kind of
hook runs at its point of the lifecycle, in the listed order, with its args and env as
configured, the container's state on stdin, in the namespace the spec names; a failing hook
stops create or start (a failing poststart hook too, since v1.3.0), a failing poststop hook does
not.

Every hook is the static recorder of ``cases/_hooks.py``: it appends what it saw (argv, env,
stdin, namespaces, its root, the state pid's command line and root, the monotonic time) to one
log in the container's root filesystem. The container's own process is the recorder too
(labelled ``/hookrec``), so the log orders hooks against the user program.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _hooks
import pytest
from _errors import left_no_container
from _hooks import CONTAINER_NS_KINDS, CREATE_KINDS, KINDS, RUNTIME_NS_KINDS, USER_LABEL

from harness import host
from harness.runtime import RuntimeCallError, process

pytestmark = pytest.mark.requires("root")

HOSTNAME = "hooked"
# No key under org.opencontainers: the spec reserves that namespace (config.md#annotations).
ANNOTATIONS = {"com.example.hooks": "yes", "com.example.harness.case": "hooks"}
PER_KIND = 3
#: Extra argv words every hook gets: an option-looking word, spaces, an empty word.
EXTRA_ARGS = ["--flag=1", "two words", ""]
USER_ARGS = _hooks.user_process("pause")
#: Namespaces a runtime-namespace hook shares with the runtime (the host here), and the ones a
#: container-namespace hook shares with the container process. mnt is handled apart.
SHARED_WITH_RUNTIME = ("pid", "net", "ipc", "uts", "cgroup", "user")
SHARED_WITH_CONTAINER = ("pid", "net", "ipc", "uts", "mnt")


def hook_env(kind: str, index: int) -> list[str]:
    return [f"HOOK_KIND={kind}", f"HOOK_INDEX={index}", "WITH_EQUALS=a=b", "EMPTY="]


def hooked_bundle(
    bundle_factory,
    tmp_path: Path,
    *,
    per_kind: dict[str, int] | None = None,
    words: dict[str, list[str]] | None = None,
    timeouts: dict[str, int] | None = None,
):
    """A bundle whose hooks are recorders ``<kind>-<i>``; ``words[label]`` adds directives."""
    per_kind = per_kind or dict.fromkeys(KINDS, PER_KIND)
    words = words or {}
    timeouts = timeouts or {}
    bundle = bundle_factory()
    setup = _hooks.install(bundle, tmp_path)
    hooks = {
        kind: [
            _hooks.hook_entry(
                setup,
                kind,
                i,
                *EXTRA_ARGS,
                *words.get(f"{kind}-{i}", []),
                env=hook_env(kind, i),
                timeout=timeouts.get(f"{kind}-{i}"),
            )
            for i in range(n)
        ]
        for kind, n in per_kind.items()
        if n
    }

    def edit(config: dict[str, Any]) -> None:
        config["hooks"] = hooks
        config["process"]["args"] = list(USER_ARGS)
        config["hostname"] = HOSTNAME
        config["annotations"] = dict(ANNOTATIONS)

    bundle.edit(edit)
    setup.hooks = hooks
    return bundle, setup


# --------------------------------------------------------------------------------------------
# One full lifecycle with every kind of hook, observed by many cases


@dataclass
class Run:
    id: str
    bundle: Path
    rootfs: Path
    pid: int
    records: list[_hooks.Record]
    times: dict[str, float]
    host_ns: dict[str, int]
    container_ns: dict[str, int]
    private_runtime_mnt: bool  # the runtime runs in a mount namespace of its own (a quirk)
    hooks: dict[str, list[dict[str, Any]]]

    def labels(self) -> list[str]:
        return [r.label for r in self.records]

    def of_kind(self, kind: str) -> list[_hooks.Record]:
        return [r for r in self.records if r.kind == kind]

    def ran(self, kind: str) -> list[_hooks.Record]:
        """The records of the ``kind`` hooks, at least one: a check over each hook that ran
        must not pass because none did."""
        records = self.of_kind(kind)
        assert records, f"no {kind} hook ran, so there is nothing to check; the log holds {self.labels()}"
        return records

    def index(self, label: str) -> int:
        labels = self.labels()
        assert label in labels, f"{label} never ran; the log holds {labels}"
        return labels.index(label)

    def during(self, record: _hooks.Record, op: str) -> bool:
        return self.times[f"{op}-begin"] <= record["t"] <= self.times[f"{op}-end"]

    def when(self, record: _hooks.Record) -> str:
        t = record["t"]
        for op in ("create", "start", "delete"):
            if self.during(record, op):
                return f"during {op}"
        return f"at t={t:.4f}, outside create/start/delete ({', '.join(f'{k} {v:.4f}' for k, v in self.times.items())})"


_RUNS: dict[str, Run] = {}


@pytest.fixture
def lifecycle(runtime, bundle_factory, container_factory, tmp_path, host_namespaces) -> Run:
    """create, start, kill, delete of one container with three hooks of each kind (once per runtime and worker)."""
    if runtime.name in _RUNS:
        return _RUNS[runtime.name]
    bundle, setup = hooked_bundle(bundle_factory, tmp_path)
    c = container_factory(bundle)
    times: dict[str, float] = {}
    times["create-begin"] = time.monotonic()
    c.create()
    times["create-end"] = time.monotonic()
    container_ns = host.namespace_inodes(c.pid)
    times["start-begin"] = time.monotonic()
    c.start()
    times["start-end"] = time.monotonic()
    setup.wait_for(USER_LABEL)
    c.wait_status("running")
    c.kill("TERM")
    c.wait()
    c.wait_status("stopped")
    times["delete-begin"] = time.monotonic()
    c.delete()
    times["delete-end"] = time.monotonic()
    run = Run(
        id=c.id,
        bundle=bundle.path.resolve(),
        rootfs=Path(bundle.rootfs).resolve(),
        pid=c.pid,
        records=setup.records(),
        times=times,
        host_ns=host_namespaces,
        container_ns=container_ns,
        private_runtime_mnt=runtime.in_private_mount_namespace,
        hooks=setup.hooks,
    )
    _RUNS[runtime.name] = run
    return run


def kinds(selection, *templates: str) -> list:
    """Parameters ``kind`` whose cases name the requirement ids ``template.format(kind=...)``."""
    return [pytest.param(k, marks=pytest.mark.spec(*(t.format(kind=k) for t in templates))) for k in selection]


def one(run: Run, kind: str) -> _hooks.Record:
    records = run.of_kind(kind)
    assert records, f"no {kind} hook ran; the log holds {run.labels()}"
    return records[0]


def stat_id(path: str | Path) -> list[int]:
    st = os.stat(path)
    return [st.st_dev, st.st_ino]


@pytest.mark.parametrize("kind", kinds(KINDS, "runtime.lifecycle.{kind}-invoked"))
def test_every_hook_kind_is_invoked(runtime, lifecycle, kind):
    records = lifecycle.of_kind(kind)
    expected = [f"{kind}-{i}" for i in range(PER_KIND)]
    assert sorted(r.label for r in records) == expected, (
        f"expected the {kind} hooks {expected} to run, the log holds {lifecycle.labels()}"
    )


@pytest.mark.parametrize("kind", kinds(KINDS, "config.hooks.{kind}.path-namespace"))
def test_hook_path_resolves_in_its_namespace(runtime, lifecycle, kind):
    entry = lifecycle.hooks[kind][0]
    path = entry["path"]
    if kind == "startContainer":
        if os.path.exists(path):
            pytest.skip(f"{path} exists on the host too: cannot tell in which namespace the path resolved")
        where = "only inside the container's root filesystem"
    else:
        assert not (lifecycle.rootfs / path.lstrip("/")).exists(), (
            f"{path} exists in the rootfs too: the case cannot tell where it resolved"
        )
        where = "only on the host, not in the container's root filesystem"
    ran = [r.label for r in lifecycle.of_kind(kind)]
    assert ran, f"the {kind} hook at {path} ({where}) never ran; the log holds {lifecycle.labels()}"


@pytest.mark.spec("config.hooks.order")
def test_hooks_of_a_kind_run_in_listed_order(runtime, lifecycle):
    wrong = {}
    for kind in KINDS:
        got = [r.label for r in lifecycle.of_kind(kind)]
        listed = [f"{kind}-{i}" for i in range(PER_KIND)]
        if got != listed:
            wrong[kind] = got
    assert not wrong, f"hooks ran out of their listed order (listed: <kind>-0, -1, -2): {wrong}"


def assert_all_ran_before(lifecycle, first, then):
    """Every ``first`` hook ran before every ``then`` hook."""
    last_first = max(lifecycle.index(f"{first}-{i}") for i in range(PER_KIND))
    first_then = min(lifecycle.index(f"{then}-{i}") for i in range(PER_KIND))
    assert last_first < first_then, f"a {then} hook ran before a {first} hook: {lifecycle.labels()}"


@pytest.mark.spec("config.hooks.prestart.before-createRuntime")
def test_prestart_runs_before_createRuntime(runtime, lifecycle):
    assert_all_ran_before(lifecycle, "prestart", "createRuntime")


@pytest.mark.spec("config.hooks.createContainer.after-createRuntime")
def test_createContainer_runs_after_createRuntime(runtime, lifecycle):
    assert_all_ran_before(lifecycle, "createRuntime", "createContainer")


@pytest.mark.parametrize("kind", kinds(CREATE_KINDS, "config.hooks.{kind}.during-create"))
def test_create_hooks_run_during_create_before_pivot_root(runtime, lifecycle, kind):
    """Part of create; the container's namespaces exist already; its root is not yet the rootfs."""
    host_root = stat_id("/")
    rootfs = stat_id(lifecycle.rootfs)
    for record in lifecycle.ran(kind):
        assert lifecycle.during(record, "create"), f"{record.label} ran {lifecycle.when(record)}, not during create"
        if kind in RUNTIME_NS_KINDS:
            target = record["target"]
            assert target is not None, (
                f"{record.label}: the state pid {record.state.get('pid') if isinstance(record.state, dict) else '?'} named no live process"
            )
            seen = {k: target["ns"].get(k) for k in ("pid", "net", "ipc", "uts", "mnt")}
            expected = {k: lifecycle.container_ns[k] for k in seen}
            assert seen == expected, (
                f"{record.label}: the container process was not yet in its namespaces: {seen}, expected {expected}"
            )
            root = target["root"]
        else:
            root = record["root"]
        assert root != rootfs, (
            f"{record.label} ran after pivot_root: the container's root was already the rootfs {lifecycle.rootfs}"
        )
        assert root == host_root, (
            f"{record.label}: the container's root {root} is neither the host's / {host_root} nor the rootfs {rootfs}"
        )


@pytest.mark.spec("config.hooks.startContainer.during-start")
def test_startContainer_runs_after_start_before_user_process(runtime, lifecycle):
    user = lifecycle.index(USER_LABEL)
    for record in lifecycle.ran("startContainer"):
        assert record["t"] >= lifecycle.times["start-begin"], (
            f"{record.label} ran {lifecycle.when(record)}, before start was called"
        )
        assert lifecycle.index(record.label) < user, f"{record.label} ran after the user program: {lifecycle.labels()}"


@dataclass
class SlowStart:
    """A start whose first startContainer hook sleeps a second before the user program can run."""

    returned: float  # when start returned
    setup: _hooks.HookSetup


_SLOW: dict[str, SlowStart] = {}


@pytest.fixture
def slow_start(runtime, bundle_factory, container_factory, tmp_path) -> SlowStart:
    """Once per runtime and worker: a runtime that does not wait for startContainer hooks, or runs
    poststart hooks before the user program is executed, then shows it every time, not by chance."""
    if runtime.name in _SLOW:
        return _SLOW[runtime.name]
    bundle, setup = hooked_bundle(
        bundle_factory,
        tmp_path,
        per_kind={"startContainer": 2, "poststart": 2},
        words={"startContainer-0": ["sleep=1"]},
    )
    c = container_factory(bundle)
    c.create()
    c.start()
    returned = time.monotonic()
    setup.wait_for(USER_LABEL)
    setup.wait_for("poststart-1")
    c.kill("KILL")
    c.wait()
    _SLOW[runtime.name] = SlowStart(returned, setup)
    return _SLOW[runtime.name]


@pytest.mark.spec("config.hooks.startContainer.during-start")
def test_start_returns_after_startContainer_hooks(runtime, slow_start):
    """startContainer hooks are part of start: start does not return while they still run."""
    second = slow_start.setup.by_label()["startContainer-1"]
    assert second["t"] <= slow_start.returned, (
        f"start returned {second['t'] - slow_start.returned:.3f} s before startContainer-1 began (startContainer-0 sleeps 1 s)"
    )


@pytest.mark.spec("config.hooks.poststart.after-user-process")
def test_poststart_runs_after_user_process_is_executed(runtime, slow_start):
    """At poststart time the container process is already the user program (its command line)."""
    records = slow_start.setup.of_kind("poststart")
    assert records, f"no poststart hook ran; the log holds {slow_start.setup.labels()}"
    for record in records:
        target = record["target"]
        cmdline = target["cmdline"] if target else None
        assert cmdline == USER_ARGS, (
            f"{record.label} ran before the user program was executed: the container process's command line was {cmdline}, expected {USER_ARGS}"
        )


@pytest.mark.spec("config.hooks.poststart.before-start-returns")
def test_poststart_runs_as_part_of_start(runtime, lifecycle):
    for record in lifecycle.ran("poststart"):
        assert lifecycle.during(record, "start"), f"{record.label} ran {lifecycle.when(record)}, not during start"


@pytest.mark.spec("config.hooks.poststop.during-delete")
def test_poststop_runs_as_part_of_delete(runtime, lifecycle):
    for record in lifecycle.ran("poststop"):
        assert lifecycle.during(record, "delete"), f"{record.label} ran {lifecycle.when(record)}, not during delete"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.spec("config.hooks.state-stdin")
def test_hook_gets_state_on_stdin(runtime, lifecycle, kind):
    record = one(lifecycle, kind)
    state = record.state
    assert isinstance(state, dict), f"{record.label} got no state JSON on stdin: {record['stdin']!r}"
    assert isinstance(state.get("ociVersion"), str), f"{record.label}: state has no ociVersion: {state}"
    assert state.get("id") == lifecycle.id, f"{record.label}: state id {state.get('id')!r}, expected {lifecycle.id!r}"
    assert state.get("bundle") == str(lifecycle.bundle), (
        f"{record.label}: state bundle {state.get('bundle')!r}, expected {str(lifecycle.bundle)!r}"
    )
    assert state.get("annotations") == ANNOTATIONS, (
        f"{record.label}: state annotations {state.get('annotations')}, expected {ANNOTATIONS}"
    )


#: The status each hook should see (runtime.md "State"): during create the operation has not
#: finished ("creating"; "created" is accepted, the spec also places it "after step 2"); before
#: the user program runs it is "created"; after, "running"; after delete, "stopped".
EXPECTED_STATUS = {
    "prestart": {"creating", "created"},
    "createRuntime": {"creating", "created"},
    "createContainer": {"creating", "created"},
    "startContainer": {"created"},
    "poststart": {"running"},
    "poststop": {"stopped"},
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.spec("config.hooks.state-stdin", "runtime.state.status")
def test_hook_state_status(runtime, lifecycle, kind):
    for record in lifecycle.ran(kind):
        status = record.state.get("status") if isinstance(record.state, dict) else None
        assert status in EXPECTED_STATUS[kind], (
            f"{record.label} saw status {status!r}, expected one of {sorted(EXPECTED_STATUS[kind])}"
        )


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "poststop"])
@pytest.mark.spec("runtime.state.pid-in-hooks", "runtime.state.pid")
def test_hook_state_pid_as_seen_from_its_namespace(runtime, lifecycle, kind):
    expected = (
        lifecycle.pid if kind in RUNTIME_NS_KINDS else 1
    )  # the container process is pid 1 in its own pid namespace
    view = "the runtime's (host) pid" if kind in RUNTIME_NS_KINDS else "the pid the container sees"
    for record in lifecycle.ran(kind):
        pid = record.state.get("pid") if isinstance(record.state, dict) else None
        assert pid == expected, f"{record.label} got pid {pid!r} in its state, expected {expected} ({view})"


def assert_each_hook_got(lifecycle, kind, field, recorded, what):
    """Each ``kind`` hook that ran got, as its record's ``recorded`` (``what``), exactly its
    entry's ``field``."""
    configured = {e["args"][0]: e[field] for e in lifecycle.hooks[kind]}
    for record in lifecycle.ran(kind):
        assert record[recorded] == configured[record.label], (
            f"{record.label} got {what} {record[recorded]}, configured {field} {configured[record.label]}"
        )


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.spec("config.hooks.args")
def test_hook_args_as_configured(runtime, lifecycle, kind):
    assert_each_hook_got(lifecycle, kind, "args", "argv", "argv")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.spec("config.hooks.env")
def test_hook_env_as_configured(runtime, lifecycle, kind):
    assert_each_hook_got(lifecycle, kind, "env", "env", "environment")


@pytest.mark.parametrize("kind", kinds(KINDS, "config.hooks.{kind}.namespace"))
def test_hook_runs_in_its_namespace(runtime, lifecycle, kind):
    for record in lifecycle.ran(kind):
        ns = record["ns"]
        if kind in CONTAINER_NS_KINDS:
            seen = {k: ns.get(k) for k in SHARED_WITH_CONTAINER}
            expected = {k: lifecycle.container_ns[k] for k in SHARED_WITH_CONTAINER}
            assert seen == expected, (
                f"{record.label} is not in the container's namespaces: {seen}, container {expected}, host { {k: lifecycle.host_ns[k] for k in seen} }"
            )
            if kind == "startContainer":
                assert record["hostname"] == HOSTNAME, (
                    f"{record.label} sees hostname {record['hostname']!r}, the container's is {HOSTNAME!r}"
                )
        else:
            seen = {k: ns.get(k) for k in SHARED_WITH_RUNTIME if k in lifecycle.host_ns}
            expected = {k: lifecycle.host_ns[k] for k in seen}
            assert seen == expected, (
                f"{record.label} is not in the runtime's namespaces: {seen}, runtime (host) {expected}"
            )
            if kind != "poststop":  # once the container is gone, its namespace inodes may be reused
                assert ns.get("mnt") != lifecycle.container_ns["mnt"], (
                    f"{record.label} runs in the container's mount namespace"
                )
            if not lifecycle.private_runtime_mnt:
                assert ns.get("mnt") == lifecycle.host_ns["mnt"], (
                    f"{record.label} is not in the runtime's mount namespace ({ns.get('mnt')}, runtime {lifecycle.host_ns['mnt']})"
                )


# --------------------------------------------------------------------------------------------
# Failing hooks


def gone_within(pid: int | None, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while process.alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def exists(runtime, cid: str) -> bool:
    try:
        runtime.state(cid)
        return True
    except RuntimeCallError:
        return False


FAIL = ["exit=3"]
FAILURE_COUNTS = {
    "prestart": 3,
    "createRuntime": 3,
    "createContainer": 3,
    "startContainer": 3,
    "poststart": 3,
    "poststop": 2,
}


def failing_create(bundle_factory, container_factory, tmp_path, kind):
    """A container whose hook ``<kind>-1`` exits 3; create is attempted and must fail."""
    bundle, setup = hooked_bundle(bundle_factory, tmp_path, per_kind=FAILURE_COUNTS, words={f"{kind}-1": FAIL})
    c = container_factory(bundle)
    failure = None
    try:
        c.create()
    except RuntimeCallError as err:
        failure = err
    records = setup.records()
    first = records[0] if records else None
    pid = (
        first.state.get("pid")
        if first is not None and first.kind in RUNTIME_NS_KINDS and isinstance(first.state, dict)
        else None
    )
    return c, setup, failure, records, pid


@pytest.mark.parametrize("kind", kinds(CREATE_KINDS, "runtime.lifecycle.{kind}-failure"))
def test_failing_create_hook_fails_create(runtime, bundle_factory, container_factory, tmp_path, kind):
    _c, _setup, failure, records, _ = failing_create(bundle_factory, container_factory, tmp_path, kind)
    labels = [r.label for r in records]
    assert failure is not None, f"create succeeded although {kind}-1 exited 3; hooks run: {labels}"
    earlier = [f"{k}-{i}" for k in CREATE_KINDS[: CREATE_KINDS.index(kind)] for i in range(FAILURE_COUNTS[k])]
    expected = [*earlier, f"{kind}-0", f"{kind}-1"]
    before_poststop = [label for label in labels if not label.startswith("poststop")]
    assert before_poststop == expected, (
        f"after {kind}-1 failed the lifecycle must go on at step 12 (destroy, then poststop); the hooks and program run were {labels}, expected {expected} (then poststop)"
    )


@pytest.mark.parametrize("kind", kinds(CREATE_KINDS, "runtime.lifecycle.{kind}-failure"))
def test_failing_create_hook_destroys_container(runtime, bundle_factory, container_factory, tmp_path, kind):
    c, _setup, failure, records, pid = failing_create(bundle_factory, container_factory, tmp_path, kind)
    assert failure is not None, f"create succeeded although {kind}-1 exited 3"
    assert pid, f"no runtime-namespace hook recorded the container's pid: {[r.label for r in records]}"
    assert gone_within(pid), (
        f"the container process {pid} still runs after {kind}-1 failed (the container must be stopped)"
    )
    assert left_no_container(c), (
        f"container {c.id} still exists after {kind}-1 failed: {runtime.state(c.id).raw} (lifecycle step 12 destroys it)"
    )


@pytest.mark.parametrize("kind", kinds(CREATE_KINDS, "runtime.lifecycle.{kind}-failure"))
def test_failing_create_hook_still_runs_poststop(runtime, bundle_factory, container_factory, tmp_path, kind):
    _c, _setup, failure, records, _ = failing_create(bundle_factory, container_factory, tmp_path, kind)
    assert failure is not None, f"create succeeded although {kind}-1 exited 3"
    labels = [r.label for r in records]
    assert [x for x in labels if x.startswith("poststop")] == ["poststop-0", "poststop-1"], (
        f"after {kind}-1 failed the lifecycle continues at step 12 and then 13 (poststop); hooks run: {labels}"
    )


def failing_start(bundle_factory, container_factory, tmp_path, kind="startContainer"):
    """A created container whose hook ``<kind>-1`` (startContainer or poststart) exits 3; start is attempted."""
    bundle, setup = hooked_bundle(bundle_factory, tmp_path, per_kind=FAILURE_COUNTS, words={f"{kind}-1": FAIL})
    c = container_factory(bundle)
    try:
        c.create()
    except RuntimeCallError as err:
        if kind != "poststart":
            raise
        # poststart hooks belong to start; a runtime that runs them during create deviates from
        # config.md#poststart, which test_poststart_runs_as_part_of_start checks. Here only the
        # failure's consequences are: an error, a stopped container, step 12, step 13.
        return c, setup, err
    failure = None
    try:
        c.start()
    except RuntimeCallError as err:
        failure = err
    return c, setup, failure


START_KINDS = ("startContainer", "poststart")


@pytest.mark.parametrize("kind", kinds(START_KINDS, "runtime.lifecycle.{kind}-failure"))
def test_failing_start_hook_fails_start(runtime, bundle_factory, container_factory, tmp_path, kind):
    """runtime.md Lifecycle steps 7 and 9: if a startContainer or poststart hook fails, the
    runtime MUST generate an error and stop the container. Both run as part of start, so start
    is the operation that fails."""
    c, setup, failure = failing_start(bundle_factory, container_factory, tmp_path, kind)
    assert setup.wait_for(f"{kind}-1"), f"{kind}-1 never ran"
    assert gone_within(c.pid), f"the container process {c.pid} still runs after {kind}-1 failed"
    labels = setup.labels()
    if kind == "startContainer":
        assert USER_LABEL not in labels, f"the user program ran although startContainer-1 failed: {labels}"
        assert "startContainer-2" not in labels, f"startContainer-2 ran after startContainer-1 failed: {labels}"
    assert failure is not None, f"start succeeded although {kind}-1 exited 3; hooks run: {labels}"


@pytest.mark.parametrize("kind", kinds(START_KINDS, "runtime.lifecycle.{kind}-failure"))
def test_failing_start_hook_destroys_container(runtime, bundle_factory, container_factory, tmp_path, kind):
    c, setup, _failure = failing_start(bundle_factory, container_factory, tmp_path, kind)
    assert setup.wait_for(f"{kind}-1"), f"{kind}-1 never ran"
    assert gone_within(c.pid), f"the container process {c.pid} still runs after {kind}-1 failed (it must be stopped)"
    assert not exists(runtime, c.id), (
        f"container {c.id} still exists after {kind}-1 failed: {runtime.state(c.id).raw} (lifecycle step 12 destroys it)"
    )


@pytest.mark.parametrize("kind", kinds(START_KINDS, "runtime.lifecycle.{kind}-failure"))
def test_failing_start_hook_still_runs_poststop(runtime, bundle_factory, container_factory, tmp_path, kind):
    c, setup, _failure = failing_start(bundle_factory, container_factory, tmp_path, kind)
    assert setup.wait_for(f"{kind}-1"), f"{kind}-1 never ran"
    gone_within(c.pid)
    labels = setup.labels()
    assert [x for x in labels if x.startswith("poststop")] == ["poststop-0", "poststop-1"], (
        f"after {kind}-1 failed the lifecycle continues at step 12 and then 13 (poststop), without a delete; hooks run: {labels}"
    )


@pytest.mark.spec("runtime.lifecycle.poststop-failure", "runtime.warnings.continue")
def test_failing_poststop_hook_is_only_a_warning(runtime, bundle_factory, container_factory, tmp_path):
    bundle, setup = hooked_bundle(
        bundle_factory, tmp_path, per_kind={**FAILURE_COUNTS, "poststop": 3}, words={"poststop-1": FAIL}
    )
    c = container_factory(bundle)
    c.create()
    c.start()
    setup.wait_for(USER_LABEL)
    c.kill("KILL")
    c.wait()
    c.wait_status("stopped")
    c.delete()
    assert not exists(runtime, c.id), "the container still exists after a delete whose poststop hook failed"
    labels = setup.labels()
    assert [x for x in labels if x.startswith("poststop")] == ["poststop-0", "poststop-1", "poststop-2"], (
        f"the poststop hooks after the failing poststop-1 did not all run: {labels}"
    )


@pytest.mark.spec("config.hooks.timeout", "runtime.lifecycle.createRuntime-failure")
def test_hook_timeout_aborts_the_hook(runtime, bundle_factory, container_factory, tmp_path):
    bundle, setup = hooked_bundle(
        bundle_factory,
        tmp_path,
        per_kind={"createRuntime": 1, "poststop": 1},
        words={"createRuntime-0": ["sleep=60"]},
        timeouts={"createRuntime-0": 1},
    )
    c = container_factory(bundle)
    begin = time.monotonic()
    with pytest.raises(RuntimeCallError):
        c.create(timeout=40)
    elapsed = time.monotonic() - begin
    hook = setup.wait_for("createRuntime-0")
    assert elapsed < 20, f"create took {elapsed:.1f} s with a hook timeout of 1 s (the hook sleeps 60 s)"
    assert gone_within(hook["pid"]), f"the hook process {hook['pid']} still runs after its timeout"
