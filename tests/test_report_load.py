"""harness.report.load: result folders and files to frames; bad input names the file.

The generators here (``samples``, ``record``, ``write_conformance``, ``write_bench``) make
synthetic runs for the other tests of the report (``from test_report_load import ...``).
"""

import json

import numpy as np
import pytest

from harness.errors import HarnessError
from harness.report.load import load_run

# ------------------------------------------------------------------ generators

ENV = {
    "kernel": "6.1.0",
    "machine": "x86_64",
    "cpu": "Test CPU",
    "cpus": 4,
    "hostname": "testhost",
    "cgroup_mode": "v2",
    "python": "3.11",
    "runtimes": {"runc": "runc 1.1", "crun": "crun 1.8"},
}


def sample(suite, workload, value, *, runtime=None, mode=None, phase=None, params=None, unit="s", i=0, warmup=False):
    return {
        "schema": "oci-harness/bench-sample/1",
        "run": "r1",
        "suite": suite,
        "runtime": runtime,
        "mode": mode,
        "workload": workload,
        "phase": phase,
        "params": params or {},
        "iteration": i,
        "warmup": warmup,
        "value": float(value),
        "unit": unit,
        "time": 1700000000.0 + i,
    }


def samples(seed=0, slow=None, n=30):
    """A full synthetic bench run; ``slow`` multiplies the values of one runtime (``{"crun": 1.3}``)."""
    rng = np.random.default_rng(seed)
    slow = slow or {}
    out = []
    base = {"runc": 0.080, "crun": 0.045}
    phases = {"create": 0.5, "start": 0.2, "state": 0.05, "kill": 0.05, "delete": 0.2}
    for rt, b in base.items():
        k = slow.get(rt, 1.0)
        for i in range(n + 3):
            warm = i < 3
            out.append(
                sample(
                    "lifecycle", "lifecycle", b * k * rng.lognormal(0, 0.08), runtime=rt, phase="run", i=i, warmup=warm
                )
            )
            for ph, f in phases.items():
                out.append(
                    sample(
                        "lifecycle",
                        "lifecycle",
                        b * k * f * rng.lognormal(0, 0.1),
                        runtime=rt,
                        phase=ph,
                        i=i,
                        warmup=warm,
                    )
                )
        for c in (1, 2, 4, 8):
            for i in range(5):
                out.append(
                    sample(
                        "lifecycle",
                        "concurrent",
                        b * k * (1 + 0.6 * c) * rng.lognormal(0, 0.05),
                        runtime=rt,
                        params={"concurrency": c},
                        i=i,
                    )
                )
    for i in range(n):
        out.append(sample("lifecycle", "floor-null", 0.0012 * rng.lognormal(0, 0.1), i=i))
        out.append(sample("lifecycle", "floor-namespaces", 0.004 * rng.lognormal(0, 0.1), i=i))
    for wl, raw, ov in (("seq-read", 0.02, 0.021), ("small-files-create", 0.05, 0.08), ("readdir", 0.003, 0.0045)):
        for cache in ("warm", "dropped"):
            for i in range(15):
                out.append(sample("io", wl, raw * rng.lognormal(0, 0.05), mode="raw", params={"cache": cache}, i=i))
                out.append(sample("io", wl, ov * rng.lognormal(0, 0.05), mode="overlay", params={"cache": cache}, i=i))
    for size in (1, 4, 16, 64):
        for i in range(8):
            out.append(
                sample(
                    "io",
                    "copy-up",
                    (0.0005 + 0.0012 * size) * rng.lognormal(0, 0.04),
                    mode="overlay",
                    params={"size_mib": size, "cache": "warm"},
                    i=i,
                )
            )
    for d in (1, 2, 4, 8, 16):
        for i in range(8):
            for wl in ("depth-readdir", "depth-stat"):
                out.append(
                    sample(
                        "io",
                        wl,
                        0.001 * (1 + 0.15 * d) * rng.lognormal(0, 0.05),
                        mode="overlay",
                        params={"depth": d},
                        i=i,
                    )
                )
                out.append(sample("io", wl, 0.001 * rng.lognormal(0, 0.05), mode="raw", params={"depth": d}, i=i))
    for mode, per in (("raw", 3_000_000), ("overlay", 40_000)):
        for n_c in (1, 5, 10, 20):
            for i in range(3):
                for phase, seconds, factor in (("setup", 0.01, 3 if mode == "raw" else 1), ("teardown", 0.004, 1)):
                    value = seconds * n_c * factor * rng.lognormal(0, 0.05)
                    out.append(sample("scale", "n-containers", value, mode=mode, phase=phase, params={"n": n_c}, i=i))
            totals = {
                "bytes": per * n_c + 4096,
                "inodes": (12 if mode == "overlay" else 40) * n_c,
                "mounts": (1 if mode == "overlay" else 0) * n_c,
            }
            for unit, total in totals.items():
                out.append(sample("scale", "n-containers", total, mode=mode, phase=unit, params={"n": n_c}, unit=unit))
    return out


def record(case, runtime, outcome, reqs, reason=None, message=None, sections=None):
    """A conformance record as the pytest plugin writes it; ``reqs`` are ``(id, level)`` pairs."""
    path, _, name = case.partition("::")
    return {
        "schema": "oci-harness/conformance-result/1",
        "case": f"{case}[{runtime}]",
        "file": path,
        "name": name,
        "runtime": runtime,
        "requirements": [{"id": i, "level": lvl, "anchor": "runtime.md#x", "text": f"text of {i}"} for i, lvl in reqs],
        "outcome": outcome,
        "duration": 0.1,
        "reason": reason,
        "message": message,
        "sections": sections or {},
        "runtime_version": f"{runtime} 1.0",
    }


def write_jsonl(path, objects):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(o) + "\n" for o in objects))
    return path


def write_conformance(folder, records, env=ENV):
    write_jsonl(folder / "results.jsonl", records)
    (folder / "environment.json").write_text(json.dumps(env))
    return folder


def write_bench(folder, objects, env=ENV):
    write_jsonl(folder / "samples.jsonl", objects)
    (folder / "environment.json").write_text(
        json.dumps({**env, "filesystem": {"type": "ext4", "options": "rw,relatime"}, "run": "r1"})
    )
    return folder


RECORDS = [
    record("cases/test_a.py::test_one", "runc", "passed", [("runtime.state.id-unique", "MUST")]),
    record(
        "cases/test_a.py::test_one",
        "crun",
        "failed",
        [("runtime.state.id-unique", "MUST")],
        message="assert 'a' == 'b'",
        sections={"harness: config.json of container x": "{}"},
    ),
]

# ------------------------------------------------------------------ tests


def test_conformance_folder(tmp_path):
    run = load_run(write_conformance(tmp_path / "conf", RECORDS))
    assert run.samples is None
    assert list(run.conformance["outcome"]) == ["passed", "failed"]
    assert run.conformance["requirements"][0][0]["id"] == "runtime.state.id-unique"
    assert run.environments["conformance"]["hostname"] == "testhost"
    assert run.runtimes == ["runc", "crun"]


def test_bench_folder_with_warmup_flagged(tmp_path):
    run = load_run(write_bench(tmp_path / "bench", samples(n=5)))
    assert run.conformance is None
    assert run.samples["warmup"].sum() == 2 * 3 * 6  # 3 warm-up iterations of 6 phases for 2 runtimes
    assert run.environments["bench"]["filesystem"]["type"] == "ext4"


def test_file_is_recognised_by_its_schema(tmp_path):
    path = write_jsonl(tmp_path / "whatever.jsonl", samples(n=2))
    assert load_run(path).samples is not None
    path = write_jsonl(tmp_path / "other.jsonl", RECORDS)
    assert load_run(path).conformance is not None


def test_mixed_folder_and_comma_joined_parts(tmp_path):
    both = tmp_path / "both"
    write_conformance(both, RECORDS)
    write_bench(both, samples(n=2))
    run = load_run(both)
    assert run.conformance is not None and run.samples is not None
    joined = load_run(f"{write_conformance(tmp_path / 'c', RECORDS)},{write_bench(tmp_path / 'b', samples(n=2))}")
    assert (
        joined.conformance is not None
        and joined.samples is not None
        and set(joined.environments) == {"conformance", "bench"}
    )


def status(kind, state, started, **kw):
    return {"run_status": {"kind": kind, "status": state, "started": started, "finished": started + 60, **kw}}


def test_a_results_tree_is_refused_with_its_runs_listed(tmp_path):
    root = tmp_path / "results"
    write_conformance(root / "conformance", RECORDS)
    write_bench(root / "bench" / "20240101T000000Z", samples(n=2))
    with pytest.raises(HarnessError) as err:
        load_run(root)
    text = str(err.value)
    assert "holds no results.jsonl or samples.jsonl itself" in text and "--latest" in text
    assert str(root / "conformance") in text and str(root / "bench" / "20240101T000000Z") in text


def test_latest_takes_the_newest_complete_run_and_names_the_others(tmp_path):
    root = tmp_path / "results"
    write_conformance(root / "conformance", RECORDS, env={**ENV, **status("conformance", "complete", 1000.0)})
    old = write_bench(
        root / "bench" / "a", samples(n=2, slow={"runc": 5}), env={**ENV, **status("bench", "complete", 2000.0)}
    )
    new = write_bench(root / "bench" / "b", samples(n=2), env={**ENV, **status("bench", "complete", 3000.0)})
    broken = write_bench(root / "bench" / "c", samples(n=2), env={**ENV, **status("bench", "interrupted", 4000.0)})
    run = load_run(root, latest=True)
    assert (
        new / "samples.jsonl" in run.sources
        and old / "samples.jsonl" not in run.sources
        and broken / "samples.jsonl" not in run.sources
    )
    assert any(str(old) in n and "passed over" in n for n in run.notes)
    assert any(str(broken) in n and "interrupted" in n for n in run.notes)
    assert run.conformance is not None
    # what was chosen is described: kind, status, when, runtimes, counts
    conf, bench = run.parts
    assert (conf.kind, conf.status, conf.count, conf.runtimes) == ("conformance", "complete", 2, ["runc", "crun"])
    assert bench.status == "complete" and bench.started == 3000.0 and bench.count > 0 and "1970-01-01" in bench.when


@pytest.mark.parametrize(
    "env",
    [
        status("bench", "interrupted", 10.0),
        status("bench", "failed", 10.0, error="HarnessError: boom"),
        {"interrupted": True},
    ],
)
def test_a_partial_run_is_refused_or_flagged(tmp_path, env):
    folder = write_bench(tmp_path / "b", samples(n=2), env={**ENV, **env})
    with pytest.raises(HarnessError, match=r"partial.*--allow-partial"):
        load_run(folder)
    run = load_run(folder, allow_partial=True)
    assert run.partial and run.parts[0].partial and run.parts[0].status in ("interrupted", "failed")


def test_a_conformance_run_missing_cases_is_partial(tmp_path):
    env = {**ENV, **status("conformance", "interrupted", 10.0, exit="interrupted", collected=300, recorded=2)}
    folder = write_conformance(tmp_path / "c", RECORDS, env=env)
    run = load_run(folder, allow_partial=True)
    assert "2 of 300 cases recorded" in run.parts[0].detail


def test_merge_runtimes_from_two_runs_on_one_host(tmp_path):
    a = write_conformance(tmp_path / "a", [RECORDS[0]])
    b = write_conformance(tmp_path / "b", [RECORDS[1]])
    with pytest.raises(HarnessError, match="--merge"):
        load_run(f"{a},{b}")
    run = load_run(f"{a},{b}", merge=True)
    assert not run.multi_host and sorted(run.runtimes) == ["crun", "runc"] and len(run.parts) == 2


def test_merge_two_hosts_gives_a_host_dimension(tmp_path):
    a = write_conformance(tmp_path / "a", RECORDS, env={**ENV, "hostname": "ci-amd64"})
    b = write_conformance(tmp_path / "b", RECORDS, env={**ENV, "hostname": "ci-arm64"})
    run = load_run(f"{a},{b}", merge=True)
    assert run.multi_host
    assert sorted(run.runtimes) == ["crun @ ci-amd64", "crun @ ci-arm64", "runc @ ci-amd64", "runc @ ci-arm64"]
    assert set(run.conformance["host"]) == {"ci-amd64", "ci-arm64"}
    assert run.conformance["case"].is_unique


def test_merge_refuses_one_runtime_on_one_host_twice(tmp_path):
    a, b = write_conformance(tmp_path / "a", RECORDS), write_conformance(tmp_path / "b", RECORDS)
    with pytest.raises(HarnessError, match="runc on testhost is also in"):
        load_run(f"{a},{b}", merge=True)


def test_records_without_a_runtime_are_left_out(tmp_path):
    phantom = {
        **record("cases/test_differential.py::test_same_view", "x", "skipped", [("runtime.state.id-unique", "MUST")]),
        "runtime": None,
    }
    run = load_run(write_conformance(tmp_path / "c", [*RECORDS, phantom]))
    assert "(none)" not in run.runtimes and None not in run.runtimes and run.runtimes == ["runc", "crun"]
    assert any("1 record(s) without a runtime left out" in n for n in run.notes)


def test_an_unknown_outcome_is_kept(tmp_path):
    leak = record(
        "cases/test_b.py::test_leaky",
        "runc",
        "leak",
        [("runtime.state.id-unique", "MUST")],
        message="a mount was left behind",
    )
    run = load_run(write_conformance(tmp_path / "c", [*RECORDS, leak]))
    assert "leak" in set(run.conformance["outcome"])


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json\n", "results.jsonl:2: not valid JSON"),
        (
            '{"schema": "oci-harness/conformance-result/1", "case": "a"}\n',
            "results.jsonl:2: conformance record without 'outcome'",
        ),
        (
            '{"schema": "oci-harness/bench-sample/1"}\n',
            "results.jsonl:2: schema 'oci-harness/bench-sample/1', expected",
        ),
        ("[1, 2]\n", "results.jsonl:2: expected a JSON object"),
        (
            '{"schema": "oci-harness/conformance-result/1", "case": "a", "outcome": "passed", "requirements": ["x"]}\n',
            "results.jsonl:2: 'requirements' must be a list",
        ),
    ],
)
def test_bad_conformance_line_names_file_and_line(tmp_path, content, message):
    (tmp_path / "results.jsonl").write_text(json.dumps(RECORDS[0]) + "\n" + content)
    with pytest.raises(HarnessError) as err:
        load_run(tmp_path)
    assert str(err.value).startswith(str(tmp_path / "results.jsonl") + ":2:")
    assert message in str(err.value)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"value": "fast"}, "value 'fast' is not a finite number"),
        ({"value": float("nan")}, "value nan is not a finite number"),
        ({"suite": "disk"}, "suite 'disk' is not one of"),
        ({"unit": "ms"}, "unit 'ms' is not one of"),
        ({"params": [1]}, "'params' must be an object"),
    ],
)
def test_bad_sample_names_file_and_line(tmp_path, change, message):
    good = samples(n=1)[:3]
    write_jsonl(tmp_path / "samples.jsonl", [*good, {**good[0], **change}])
    with pytest.raises(HarnessError, match=f"samples.jsonl:4: {message}"):
        load_run(tmp_path)


def test_missing_and_empty_inputs(tmp_path):
    with pytest.raises(HarnessError, match="nothing-here: no such file or folder"):
        load_run(tmp_path / "nothing-here")
    (tmp_path / "empty").mkdir()
    with pytest.raises(HarnessError, match="empty: no results found"):
        load_run(tmp_path / "empty")
    write_jsonl(tmp_path / "x.jsonl", [{"schema": "something/else"}])
    with pytest.raises(HarnessError, match=r"x.jsonl:1: unknown schema 'something/else'"):
        load_run(tmp_path / "x.jsonl")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "results.jsonl").write_text("\n")
    with pytest.raises(HarnessError, match=r"results.jsonl: no conformance records"):
        load_run(tmp_path / "c")


def test_bad_environment_names_the_file(tmp_path):
    write_conformance(tmp_path, RECORDS)
    (tmp_path / "environment.json").write_text("{oops")
    with pytest.raises(HarnessError, match=r"environment.json: not valid JSON"):
        load_run(tmp_path)


def test_two_conformance_parts_in_one_run_are_refused(tmp_path):
    a, b = write_conformance(tmp_path / "a", RECORDS), write_conformance(tmp_path / "b", RECORDS)
    with pytest.raises(HarnessError, match="a second set of conformance results"):
        load_run(f"{a},{b}")
