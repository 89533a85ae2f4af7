"""The bench sample record: writer and reader round trip, validation, hyperfine export."""

from __future__ import annotations

import json

import pytest

from harness.bench.records import SCHEMA, SampleWriter, hyperfine_export, read_samples, sample


def _some(run: str = "r1") -> list[dict]:
    return [
        sample(run, "lifecycle", "lifecycle", 0.05, runtime="runc", phase="run", iteration=0, warmup=True, when=1.0),
        sample(run, "lifecycle", "floor-null", 0.001, iteration=3, when=2.0),
        sample(run, "lifecycle", "concurrent", 0.4, runtime="crun", params={"concurrency": 16}, when=3.0),
        sample(
            run,
            "io",
            "copy-up",
            0.02,
            runtime="runc",
            mode="overlay",
            params={"size_mib": 16, "cache": "warm"},
            when=4.0,
        ),
        sample(run, "scale", "n-containers", 123456.0, "bytes", mode="raw", phase="bytes", params={"n": 10}, when=5.0),
    ]


def test_round_trip(tmp_path):
    records = _some()
    path = tmp_path / "out" / "samples.jsonl"
    with SampleWriter(path) as w:
        for r in records:
            w.write(r)
    assert w.count == 5
    assert read_samples(path) == records
    first = json.loads(path.read_text().splitlines()[0])
    assert first["schema"] == SCHEMA
    assert set(first) == {
        "schema",
        "run",
        "suite",
        "runtime",
        "mode",
        "workload",
        "phase",
        "params",
        "iteration",
        "warmup",
        "value",
        "unit",
        "time",
    }


def test_pandas_reads_it_as_a_tidy_frame(tmp_path):
    pd = pytest.importorskip("pandas")
    path = tmp_path / "samples.jsonl"
    with SampleWriter(path) as w:
        for r in _some():
            w.write(r)
    frame = pd.read_json(path, lines=True)
    assert list(frame["workload"]) == ["lifecycle", "floor-null", "concurrent", "copy-up", "n-containers"]
    assert frame["value"].sum() == pytest.approx(0.05 + 0.001 + 0.4 + 0.02 + 123456.0)


def test_appending_keeps_earlier_samples(tmp_path):
    path = tmp_path / "samples.jsonl"
    a, b = _some("a"), _some("b")
    with SampleWriter(path) as w:
        w.write(a[0])
    with SampleWriter(path) as w:
        w.write(b[1])
    assert read_samples(path) == [a[0], b[1]]


def test_a_line_cut_by_a_kill_at_the_end_is_skipped_but_a_bad_line_inside_is_an_error(tmp_path):
    path = tmp_path / "samples.jsonl"
    good = json.dumps(_some()[0])
    path.write_text(good + "\n" + good[:30])
    assert len(read_samples(path)) == 1
    path.write_text(good[:30] + "\n" + good + "\n")
    with pytest.raises(ValueError, match=":1: not JSON"):
        read_samples(path)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"suite": "disk"}, "suite 'disk' is not one of"),
        ({"unit": "ms"}, "unit 'ms' is not one of"),
        ({"mode": "copy"}, "mode 'copy' is not one of"),
        ({"value": float("nan")}, "finite"),
        ({"schema": "x"}, "not a bench sample"),
    ],
)
def test_invalid_records_are_refused(tmp_path, change, message):
    record = {**_some()[0], **change}
    with SampleWriter(tmp_path / "s.jsonl") as w, pytest.raises(ValueError, match=message):
        w.write(record)


def test_hyperfine_export_shape_and_values():
    out = hyperfine_export(
        {"runc run": {"times": [0.1, 0.3, 0.2], "user": [0.01, 0.03], "system": [0.02]}, "empty": {"times": []}}
    )
    (r,) = out["results"]
    assert r["command"] == "runc run"
    assert r["median"] == pytest.approx(0.2)
    assert r["mean"] == pytest.approx(0.2)
    assert r["stddev"] == pytest.approx(0.1)
    assert (r["min"], r["max"]) == (0.1, 0.3)
    assert r["user"] == pytest.approx(0.02) and r["system"] == pytest.approx(0.02)
    assert r["times"] == [0.1, 0.3, 0.2]


def test_scale_summary_has_medians_and_overlay_over_raw(tmp_path):
    from types import SimpleNamespace

    from harness.bench import scale

    path = tmp_path / "samples.jsonl"
    with SampleWriter(path) as w:
        for i, (raw, ovl) in enumerate([(1.0, 0.02), (1.2, 0.03), (1.1, 0.025)]):
            for mode, t in (("raw", raw), ("overlay", ovl)):
                common = {"mode": mode, "params": {"n": 10}, "iteration": i}
                w.write(sample("r1", "scale", "n-containers", t, "s", phase="setup", **common))
                w.write(
                    sample(
                        "r1",
                        "scale",
                        "n-containers",
                        1000.0 if mode == "raw" else 100.0,
                        "bytes",
                        phase="bytes",
                        **common,
                    )
                )
                w.write(
                    sample(
                        "r1",
                        "scale",
                        "n-containers",
                        0.0 if mode == "raw" else 10.0,
                        "mounts",
                        phase="mounts",
                        **common,
                    )
                )
        w.write(
            sample("r0", "scale", "n-containers", 99.0, "s", mode="raw", phase="setup", params={"n": 10})
        )  # another run
    summary = scale.summarize(SimpleNamespace(writer=SimpleNamespace(path=path), run_id="r1"))
    n10 = summary["N=10"]
    assert n10["setup"]["raw"] == pytest.approx(1.1) and n10["setup"]["overlay"] == pytest.approx(0.025)
    ratio = n10["setup"]["overlay_over_raw"]
    assert ratio["ratio"] == pytest.approx(0.025 / 1.1) and ratio["ci95_low"] <= ratio["ratio"] <= ratio["ci95_high"]
    assert n10["bytes"]["overlay_over_raw"] == pytest.approx(0.1)
    assert "overlay_over_raw" not in n10["mounts"]  # raw bundles hold no mounts: no ratio
