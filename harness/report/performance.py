"""Bench samples to tables and figures: lifecycle latency, overlay against raw, scaling.

Warm-up samples are left out. Every median, interval, ratio and fit comes from
:mod:`harness.bench.stats` (through :mod:`._stats`); this module only groups and draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from . import _stats
from ._figures import (
    COLOURS,
    MARKERS,
    MIN_N_95,
    Figure,
    Table,
    fmt,
    fmt_median_interval,
    fmt_quantity,
    fmt_ratio,
    new_figure,
    plain_log_ticks,
    style,
    time_unit,
    to_svg,
)
from .load import params_key

PHASES = ("run", "create", "start", "state", "kill", "delete", "create+start+delete")
FLOORS = ("floor-null", "floor-namespaces")
#: The phase set against the floors (a whole container run against a bare fork+exec).
FLOOR_PHASES = ("run", "create+start+delete")


@dataclass
class Part:
    """One sub-section: a title, a lead paragraph, figures and tables."""

    id: str
    title: str
    lead: str = ""
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)


def measured(samples: pd.DataFrame) -> pd.DataFrame:
    return samples[~samples["warmup"].astype(bool)]


def sections(samples: pd.DataFrame | None) -> list[Part]:
    if samples is None:
        return []
    s = measured(samples)
    parts = [lifecycle(s), concurrency(s), overlay_vs_raw(s), copy_up(s), depth(s), scaling(s)]
    return [p for p in parts if p is not None]


def _order(values, known=()) -> list:
    present = list(dict.fromkeys(v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))))
    return [k for k in known if k in present] + sorted(v for v in present if v not in known)


def _colour(i: int) -> str:
    return COLOURS[i % len(COLOURS)]


# ---------------------------------------------------------------- lifecycle


def lifecycle_frame(s: pd.DataFrame) -> pd.DataFrame:
    return s[(s["suite"] == "lifecycle") & (s["workload"] == "lifecycle") & s["runtime"].notna()]


def floors(s: pd.DataFrame) -> dict[str, list[float]]:
    f = s[(s["suite"] == "lifecycle") & s["workload"].isin(FLOORS)]
    return {w: f[f["workload"] == w]["value"].tolist() for w in FLOORS if (f["workload"] == w).any()}


def lifecycle_summaries(s: pd.DataFrame) -> dict[tuple[str, str], dict]:
    """``{(runtime, phase): summary}``."""
    lc = lifecycle_frame(s)
    return {
        (rt, ph): _stats.summary(g["value"].tolist()) for (rt, ph), g in lc.groupby(["runtime", "phase"], sort=False)
    }


def lifecycle(s: pd.DataFrame) -> Part | None:
    lc = lifecycle_frame(s)
    if lc.empty:
        return None
    runtimes = _order(lc["runtime"])
    phases = _order(lc["phase"], PHASES)
    fl = floors(s)
    sums = lifecycle_summaries(s)
    scale, unit = time_unit(lc["value"])
    part = Part(
        "perf-lifecycle",
        "Lifecycle latency",
        f"Latency of each lifecycle phase per runtime, {len(lc)} samples (warm-up left out). "
        "Medians with distribution-free intervals (95% from six samples up; with fewer, the real coverage is given); "
        "ratios of medians with bootstrap 95% intervals (none with fewer than six samples a side).",
    )

    # Box plots, one panel per phase.
    ncols = min(4, len(phases))
    nrows = math.ceil(len(phases) / ncols)
    fig, axes = new_figure(width=2.3 * ncols + 0.8, height=2.3 * nrows + 0.4, ncols=ncols, nrows=nrows)
    for i, ph in enumerate(phases):
        ax = axes[i // ncols][i % ncols]
        data = [lc[(lc["runtime"] == rt) & (lc["phase"] == ph)]["value"].to_numpy() * scale for rt in runtimes]
        keep = [j for j, d in enumerate(data) if len(d)]
        bp = ax.boxplot([data[j] for j in keep], patch_artist=True, widths=0.6, flierprops={"markersize": 2})
        for box, j in zip(bp["boxes"], keep, strict=False):
            box.set_facecolor(_colour(j))
            box.set_alpha(0.6)
        ax.set_xticks(range(1, len(keep) + 1), [runtimes[j] for j in keep], rotation=30)
        if ph in FLOOR_PHASES:
            for k, (name, values) in enumerate(fl.items()):
                ax.axhline(
                    _stats.summary(values)["median"] * scale,
                    color="#555555",
                    linestyle=("--", ":")[k % 2],
                    linewidth=0.8,
                    label=f"{name} (median)",
                )
        style(ax, ph, ylabel=unit if i % ncols == 0 else "")
    for j in range(len(phases), nrows * ncols):
        axes[j // ncols][j % ncols].set_visible(False)
    fig.tight_layout()
    _legend_below(fig, axes, ncol=2)
    part.figures.append(
        Figure(
            "Latency per phase and runtime",
            to_svg(fig),
            "Box: quartiles; whiskers: 1.5 IQR; points: the samples beyond. Dashed and dotted lines: the floors (fork+exec of the probe, and the same with namespaces).",
        )
    )

    # ECDF of the whole-run phase.
    main = next((p for p in FLOOR_PHASES if p in phases), phases[0])
    fig, axes = new_figure(width=7.0, height=3.2)
    ax = axes[0][0]
    series = [(rt, lc[(lc["runtime"] == rt) & (lc["phase"] == main)]["value"].to_numpy()) for rt in runtimes]
    series += [(name, np.asarray(values)) for name, values in fl.items()]
    for j, (name, values) in enumerate(series):
        if len(values):
            x = np.sort(values) * scale
            y = np.arange(1, len(x) + 1) / len(x)
            floor = name in FLOORS
            ax.step(
                x,
                y,
                where="post",
                color="#555555" if floor else _colour(j),
                linestyle=":" if floor else "-",
                label=name,
                linewidth=1.2,
            )
    ax.set_xscale("log")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    style(ax, f"ECDF of '{main}'", xlabel=f"latency ({unit}, log scale)", ylabel="fraction of samples ≤ x")
    part.figures.append(
        Figure(
            f"Empirical distribution of '{main}'",
            to_svg(fig),
            "Each step is one sample; curves further left are faster.",
        )
    )

    # Medians with intervals, ratio to the fastest runtime of the phase.
    t = Table(
        "Medians per runtime and phase",
        [
            "phase",
            "runtime",
            "n",
            f"median ({unit})",
            "interval (95% unless noted)",
            "outliers",
            "ratio to fastest [95% interval]",
        ],
        numeric={2, 3, 5},
    )
    for ph in phases:
        present = [rt for rt in runtimes if (rt, ph) in sums]
        if not present:
            continue
        fastest = min(present, key=lambda rt: sums[(rt, ph)]["median"])
        fastest_values = lc[(lc["runtime"] == fastest) & (lc["phase"] == ph)]["value"].tolist()
        for rt in present:
            sm = sums[(rt, ph)]
            if rt == fastest:
                rel = "fastest"
            else:
                rel = fmt_ratio(
                    _stats.ratio(lc[(lc["runtime"] == rt) & (lc["phase"] == ph)]["value"].tolist(), fastest_values)
                )
            t.add(
                [
                    ph,
                    rt,
                    str(sm["n"]),
                    fmt(sm["median"] * scale),
                    fmt_median_interval(sm, scale),
                    str(sm["outliers"]),
                    rel,
                ],
                "best" if rt == fastest else "",
            )
    part.tables.append(t)

    if fl:
        t = Table(
            f"'{main}' against the floors",
            ["runtime", *[f"ratio to {n} [95% interval]" for n in fl]],
            caption=(
                "Floors: "
                + "; ".join(
                    f"{n} median {fmt_quantity(_stats.summary(v)['median'], 's')} (n={len(v)})" for n, v in fl.items()
                )
            ),
        )
        for rt in runtimes:
            values = lc[(lc["runtime"] == rt) & (lc["phase"] == main)]["value"].tolist()
            if values:
                t.add([rt, *[fmt_ratio(_stats.ratio(values, v)) for v in fl.values()]])
        part.tables.append(t)
    return part


def concurrency(s: pd.DataFrame) -> Part | None:
    c = s[(s["suite"] == "lifecycle") & (s["workload"] == "concurrent")].copy()
    if c.empty:
        return None
    c["n"] = c["params"].map(lambda p: p.get("concurrency"))
    runtimes = _order(c["runtime"])
    scale, unit = time_unit(c["value"])
    part = Part("perf-concurrency", "Concurrent containers", "Wall time to run N containers at once, per runtime.")
    fig, axes = new_figure(width=6.5, height=3.0)
    ax = axes[0][0]
    t = Table(
        "Wall time by concurrency",
        ["runtime", "N", "n", f"median ({unit})", "interval (95% unless noted)", f"per container ({unit})"],
        numeric={1, 2, 3, 5},
    )
    for j, rt in enumerate(runtimes):
        points = _summaries(c[c["runtime"] == rt], "n")
        for n, sm in points:
            t.add(
                [
                    rt,
                    str(n),
                    str(sm["n"]),
                    fmt(sm["median"] * scale),
                    fmt_median_interval(sm, scale),
                    fmt(sm["median"] * scale / n),
                ]
            )
        _median_line(ax, points, scale, j, rt)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    style(ax, "", xlabel="containers run at once (N)", ylabel=f"wall time ({unit})")
    part.figures.append(Figure("Wall time against concurrency", to_svg(fig), BARS))
    part.tables.append(t)
    return part


def _summaries(g: pd.DataFrame, by: str) -> list[tuple[Any, dict[str, Any]]]:
    """``(x, summary of the values at x)`` for each value x of column ``by``, in order."""
    return [(x, _stats.summary(gg["value"].tolist())) for x, gg in sorted(g.groupby(by), key=lambda kv: kv[0])]


def _median_line(ax, points: list[tuple[Any, dict[str, Any]]], scale: float, j, label, **kwargs) -> None:
    """:func:`_errorline` of the medians and intervals of ``points`` (from :func:`_summaries`),
    times ``scale``."""
    _errorline(
        ax,
        [x for x, _ in points],
        [sm["median"] * scale for _, sm in points],
        [sm["low"] * scale for _, sm in points],
        [sm["high"] * scale for _, sm in points],
        j,
        label,
        ns=[sm["n"] for _, sm in points],
        **kwargs,
    )


def _errorline(ax, xs, med, lo, hi, j, label, ns=None, linestyle="-", colour=None, marker=None) -> None:
    """Medians joined by a line, with interval bars only where ``ns`` (samples per point) is
    enough for a 95% interval (six or more): a bar of fewer samples would claim too much."""
    med, lo, hi = np.asarray(med, float), np.asarray(lo, float), np.asarray(hi, float)
    if ns is not None:
        few = np.asarray([n < MIN_N_95 for n in ns])
        lo, hi = np.where(few, med, lo), np.where(few, med, hi)
    err = np.vstack([np.nan_to_num(med - lo), np.nan_to_num(hi - med)])
    ax.errorbar(
        xs,
        med,
        yerr=np.clip(err, 0, None),
        color=colour or _colour(j),
        marker=marker or MARKERS[j % len(MARKERS)],
        markersize=4,
        capsize=2,
        linewidth=1,
        linestyle=linestyle,
        label=label,
    )


BARS = "Points: medians; bars: 95% intervals, drawn only where a point has six samples or more."


def _legend_below(fig, axes, ncol: int = 4) -> None:
    """One legend for the whole figure, under the plots: it never covers data."""
    handles, labels = [], []
    for ax in np.ravel(axes):
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=False):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    if handles:
        fig.legend(
            handles,
            labels,
            loc="lower center",
            ncol=min(ncol, len(labels)),
            fontsize=7,
            frameon=False,
            bbox_to_anchor=(0.5, 0.0),
        )
        rows = math.ceil(len(labels) / min(ncol, len(labels)))
        fig.subplots_adjust(bottom=min(0.45, 0.12 + 0.07 * rows))


# ---------------------------------------------------------------- io


def io_frame(s: pd.DataFrame) -> pd.DataFrame:
    io = s[s["suite"] == "io"].copy()
    io["key"] = io["params"].map(params_key)
    io["runtime"] = io["runtime"].fillna("–")
    return io


def overlay_ratios(s: pd.DataFrame) -> list[dict]:
    """Per runtime, workload and params present in both modes: overlay median over raw median."""
    io = io_frame(s)
    out = []
    for (rt, wl, key), g in io.groupby(["runtime", "workload", "key"], sort=False):
        ov, raw = g[g["mode"] == "overlay"]["value"].tolist(), g[g["mode"] == "raw"]["value"].tolist()
        if ov and raw:
            out.append(
                {
                    "runtime": rt,
                    "workload": wl,
                    "params": key,
                    "unit": g["unit"].iloc[0],
                    "overlay": _stats.summary(ov),
                    "raw": _stats.summary(raw),
                    "ratio": _stats.ratio(ov, raw),
                }
            )
    return out


def overlay_vs_raw(s: pd.DataFrame) -> Part | None:
    ratios = overlay_ratios(s)
    if not ratios:
        return None
    part = Part(
        "perf-overlay",
        "Overlay against raw bundles",
        "For each I/O workload: the median of the overlay bundle over that of the raw bundle (above 1: overlay is slower), with a bootstrap 95% interval.",
    )
    t = Table(
        "Overlay over raw, per workload",
        ["workload", "params", "runtime", "raw median", "overlay median", "overlay / raw [95% interval]"],
        numeric={3, 4, 5},
    )
    for r in ratios:
        t.add(
            [
                r["workload"],
                r["params"],
                r["runtime"],
                fmt_quantity(r["raw"]["median"], r["unit"]),
                fmt_quantity(r["overlay"]["median"], r["unit"]),
                fmt_ratio(r["ratio"]),
            ]
        )
    part.tables.append(t)
    fig, axes = new_figure(width=7.0, height=0.28 * len(ratios) + 1.0)
    ax = axes[0][0]
    labels = [f"{r['workload']} ({r['params']})" if r["params"] else r["workload"] for r in ratios]
    for i, r in enumerate(ratios):
        v, lo, hi = r["ratio"]["value"], r["ratio"]["low"], r["ratio"]["high"]
        if min(r["ratio"].get("n_a", 0), r["ratio"].get("n_b", 0)) < MIN_N_95:
            lo = hi = v  # a bootstrap of so few samples is no 95% interval: the point alone
        ax.errorbar(
            [v],
            [i],
            xerr=[[max(0.0, v - lo) if not math.isnan(lo) else 0], [max(0.0, hi - v) if not math.isnan(hi) else 0]],
            fmt="o",
            color=_colour(0),
            markersize=4,
            capsize=2,
        )
    ax.axvline(1.0, color="#555555", linewidth=0.8, linestyle="--")
    ax.set_yticks(range(len(ratios)), labels)
    ax.invert_yaxis()
    ax.set_xscale("log")
    plain_log_ticks(ax.xaxis)
    style(ax, "", xlabel="overlay / raw (log scale; 1 = no difference)")
    part.figures.append(
        Figure(
            "Overlay over raw with 95% intervals",
            to_svg(fig),
            "Bars: bootstrap 95% intervals, drawn only with six samples or more on each side.",
        )
    )
    return part


def _xparam(frame: pd.DataFrame, name: str) -> pd.Series:
    return frame["params"].map(lambda p: p.get(name))


#: Params that restate the file size (or are the same for every sample) and so do not make a series.
SIZE_PARAMS = ("size_mib", "bytes", "count", "runtime_io")
#: Line styles by page cache state: colour tells the mode, the line how the cache was.
CACHE_STYLES = {"warm": "-", "dropped": "--"}


def copy_up(s: pd.DataFrame) -> Part | None:
    io = io_frame(s)
    cu = io[io["workload"] == "copy-up"].copy()
    if cu.empty:
        return None
    cu["size"] = _xparam(cu, "size_mib")
    cu = cu[cu["size"].notna()]
    cu["rest"] = cu["params"].map(lambda p: params_key(p, drop=SIZE_PARAMS))
    part = Part(
        "perf-copy-up",
        "Copy-up cost",
        "Time of the first write to a file of the lower layer (overlay copies it up whole) against its size, "
        "with a least-squares line per series; the raw bundle (no copy-up) for comparison.",
    )
    fig, axes = new_figure(width=6.5, height=3.6)
    ax = axes[0][0]
    scale, unit = time_unit(cu["value"])
    t = Table(
        "Copy-up fit: time = intercept + slope × size",
        ["series", "n", "sizes", f"slope ({unit}/MiB)", f"intercept ({unit})", "r²", "throughput"],
        numeric={1, 2, 3, 4, 5},
        caption="± is the standard error. A series needs two sizes or more for a line.",
    )
    modes = _order(cu["mode"], ("raw", "overlay"))
    runtimes = _order(cu["runtime"])
    for (mode, rt, rest), g in cu.groupby(["mode", "runtime", "rest"], sort=False):
        j = modes.index(mode)
        label = " ".join(
            x for x in (mode, rt if rt != "–" and len(runtimes) > 1 else "", rest.replace("cache=", "cache ")) if x
        )
        cache = g["params"].iloc[0].get("cache", "")
        style_ = CACHE_STYLES.get(cache, ":")
        ax.scatter(g["size"], g["value"] * scale, s=8, color=_colour(j), alpha=0.45, marker=MARKERS[j % len(MARKERS)])
        sizes = g["size"].nunique()
        if sizes >= 2:
            f = _stats.linear_fit(g["size"].astype(float).tolist(), g["value"].tolist())
            xs = np.linspace(0, g["size"].max(), 50)
            ax.plot(
                xs,
                (f["intercept"] + f["slope"] * xs) * scale,
                color=_colour(j),
                linewidth=1.2,
                linestyle=style_,
                label=label,
            )
            mibps = 1.0 / f["slope"] if f["slope"] > 0 else math.nan
            t.add(
                [
                    label,
                    str(len(g)),
                    str(sizes),
                    f"{fmt(f['slope'] * scale)} ± {fmt(f['slope_stderr'] * scale)}",
                    f"{fmt(f['intercept'] * scale)} ± {fmt(f['intercept_stderr'] * scale)}",
                    fmt(f.get("r2", math.nan)),
                    f"{fmt(mibps)} MiB/s" if math.isfinite(mibps) else "– (no growth)",
                ]
            )
        else:
            ax.plot([], [], color=_colour(j), linestyle=style_, label=f"{label} (one size: no line)")
            t.add([label, str(len(g)), str(sizes), "–", "–", "–", "–"])
    style(ax, "", xlabel="file size (MiB)", ylabel=f"time of first write ({unit})")
    _legend_below(fig, axes, ncol=2)
    part.figures.append(
        Figure(
            "Copy-up time against file size",
            to_svg(fig),
            "Points: samples (colour: bundle mode); lines: least-squares fits (solid: warm page cache, dashed: caches dropped).",
        )
    )
    part.tables.append(t)
    return part


def depth(s: pd.DataFrame) -> Part | None:
    io = io_frame(s)
    d = io[io["workload"].str.startswith("depth-")].copy()
    if d.empty:
        return None
    d["depth"] = _xparam(d, "depth")
    d = d[d["depth"].notna()]
    d["rest"] = d["params"].map(lambda p: params_key(p, drop=("depth", "bytes", "count", "runtime_io")))
    workloads = _order(d["workload"])
    scale, unit = time_unit(d["value"])
    part = Part(
        "perf-depth",
        "Layer depth",
        "Time of an operation through a stack of D image layers (overlay lowerdirs) and on the flattened raw copy.",
    )
    fig, axes = new_figure(width=max(6.5, 3.4 * len(workloads)), height=3.4, ncols=len(workloads))
    t = Table(
        "Median time by layer depth",
        ["workload", "series", "depth", "n", f"median ({unit})", "interval (95% unless noted)"],
        numeric={2, 3, 4},
    )
    modes = _order(d["mode"], ("raw", "overlay"))
    runtimes = _order(d["runtime"])
    for i, wl in enumerate(workloads):
        ax = axes[0][i]
        for (mode, rt, rest), g in d[d["workload"] == wl].groupby(["mode", "runtime", "rest"], sort=False):
            j = modes.index(mode)
            label = " ".join(
                x for x in (mode, rt if rt != "–" and len(runtimes) > 1 else "", rest.replace("cache=", "cache ")) if x
            )
            points = _summaries(g, "depth")
            for dep, sm in points:
                t.add([wl, label, str(dep), str(sm["n"]), fmt(sm["median"] * scale), fmt_median_interval(sm, scale)])
            cache = g["params"].iloc[0].get("cache", "")
            _median_line(ax, points, scale, j, label, linestyle=CACHE_STYLES.get(cache, "-"))
        style(ax, wl, xlabel="layers (D)", ylabel=f"median ({unit})" if i == 0 else "")
    fig.tight_layout()
    _legend_below(fig, axes, ncol=4)
    part.figures.append(
        Figure(
            "Operation time against layer depth",
            to_svg(fig),
            BARS + " Colour: bundle mode; solid: warm page cache, dashed: caches dropped.",
        )
    )
    part.tables.append(t)
    return part


# ---------------------------------------------------------------- scale

SCALE_PHASES = ("setup", "teardown", "bytes", "inodes", "mounts")


def scaling(s: pd.DataFrame) -> Part | None:
    sc = s[(s["suite"] == "scale") & (s["workload"] == "n-containers")].copy()
    if sc.empty:
        return None
    sc["n"] = _xparam(sc, "n")
    sc = sc[sc["n"].notna()]
    sc["runtime"] = sc["runtime"].fillna("–")
    phases = _order(sc["phase"], SCALE_PHASES)
    part = Part(
        "perf-scale",
        "N containers: setup and disk",
        "Time to set up and tear down N bundles, and the disk they take (bytes, inodes) and the mounts they need, per mode. The slope of a least-squares line is the cost of one more container.",
    )
    ncols = min(3, len(phases))
    nrows = math.ceil(len(phases) / ncols)
    fig, axes = new_figure(width=3.0 * ncols + 0.6, height=2.6 * nrows + 0.3, ncols=ncols, nrows=nrows)
    t = Table(
        "Cost per container (least-squares slope against N)",
        ["measure", "series", "points", "per container", "at N=0", "r²"],
        numeric={2, 3, 4, 5},
    )
    for i, ph in enumerate(phases):
        ax = axes[i // ncols][i % ncols]
        g_ph = sc[sc["phase"] == ph]
        unit = g_ph["unit"].iloc[0]
        scale, shown = (
            time_unit(g_ph["value"]) if unit == "s" else ((1 / 2**20, "MiB") if unit == "bytes" else (1.0, unit))
        )
        for j, ((mode, rt), g) in enumerate(g_ph.groupby(["mode", "runtime"], sort=False)):
            label = " ".join(x for x in (mode, rt if rt != "–" else "") if x)
            _median_line(ax, _summaries(g, "n"), scale, j, label)
            if g["n"].nunique() >= 2:
                f = _stats.linear_fit(g["n"].astype(float).tolist(), g["value"].tolist())
                t.add(
                    [
                        ph,
                        label,
                        str(g["n"].nunique()),
                        f"{fmt_quantity(f['slope'], unit)} ± {fmt_quantity(f['slope_stderr'], unit)}",
                        fmt_quantity(f["intercept"], unit),
                        fmt(f.get("r2", math.nan)),
                    ]
                )
        style(ax, ph, xlabel="containers (N)" if i // ncols == nrows - 1 else "", ylabel=shown)
    for j in range(len(phases), nrows * ncols):
        axes[j // ncols][j % ncols].set_visible(False)
    fig.tight_layout()
    _legend_below(fig, axes, ncol=4)
    part.figures.append(Figure("Setup, teardown and disk against N", to_svg(fig), BARS))
    part.tables.append(t)
    return part
