"""Tables and figures as plain data the templates render; matplotlib figures as inline SVG."""

from __future__ import annotations

import io
import itertools
import math
import re
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

_COUNTER = itertools.count(1)

#: Colour-blind safe (Okabe-Ito), also distinct in greyscale print by marker.
COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    caption: str = ""
    #: Per row: a CSS class ("" for none), e.g. "significant".
    classes: list[str] = field(default_factory=list)
    #: Columns holding numbers (right-aligned).
    numeric: set[int] = field(default_factory=set)

    def add(self, row: list[str], cls: str = "") -> None:
        self.rows.append(row)
        self.classes.append(cls)


@dataclass
class Figure:
    title: str
    svg: str
    caption: str = ""


def new_figure(width: float = 7.5, height: float = 3.6, ncols: int = 1, nrows: int = 1, **kw):
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False, **kw)
    return fig, axes


def to_svg(fig) -> str:
    """The figure as an ``<svg>`` element (no XML prologue, no external references, unique ids)."""
    buf = io.StringIO()
    with matplotlib.rc_context(
        {"svg.fonttype": "none", "svg.hashsalt": f"fig{next(_COUNTER)}", "font.family": "sans-serif"}
    ):
        fig.savefig(
            buf,
            format="svg",
            bbox_inches="tight",
            metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
        )
    plt.close(fig)
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    # Width and height in pt make the figure fixed-size; keep the aspect ratio, let CSS scale it.
    text = re.sub(
        r'<svg([^>]*?) width="([^"]*)" height="[^"]*"',
        r'<svg\1 class="plot" role="img" style="max-width: \2"',
        text,
        count=1,
    )
    return text


def style(ax, title: str = "", xlabel: str = "", ylabel: str = "") -> None:
    if title:
        ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(True, which="major", color="#dddddd", linewidth=0.5)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def plain_log_ticks(axis) -> None:
    """Plain numbers (0.5, 1, 2) on a log axis instead of powers of ten."""
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    formatter = ScalarFormatter()
    formatter.set_scientific(False)
    axis.set_major_formatter(formatter)
    axis.set_minor_formatter(NullFormatter())


def time_unit(values) -> tuple[float, str]:
    """A scale and unit name that suit seconds ``values`` (µs, ms or s)."""
    finite = [abs(v) for v in values if v is not None and not math.isnan(v)]
    top = max(finite, default=1.0)
    if top < 1e-3:
        return 1e6, "µs"
    if top < 1.0:
        return 1e3, "ms"
    return 1.0, "s"


def fmt(value: float, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, digits - 1 - magnitude)
    return f"{value:,.{decimals}f}"


def fmt_seconds(value: float) -> str:
    scale, unit = time_unit([value])
    return f"{fmt(value * scale)} {unit}"


def fmt_interval(low: float, high: float, scale: float = 1.0) -> str:
    if any(v is None or math.isnan(v) for v in (low, high)):
        return "–"
    return f"[{fmt(low * scale)}, {fmt(high * scale)}]"


#: Below this many samples on a side an interval does not reach 95% (see harness.bench.stats).
MIN_N_95 = 6


def fmt_median_interval(sm: dict, scale: float = 1.0) -> str:
    """A median's interval labelled with its real coverage: ``[a, b]`` at 95% or more,
    ``[a, b] (75% only, n=3)`` below, ``too few samples (n=1)`` with no interval at all."""
    n = int(sm.get("n", 0))
    coverage = float(sm.get("ci_coverage", 0.95 if n >= MIN_N_95 else 0.0))
    if n < 2 or coverage <= 0:
        return f"too few samples (n={n})"
    text = fmt_interval(sm["low"], sm["high"], scale)
    if coverage + 1e-12 < 0.95:
        text += f" ({coverage * 100:.4g}% only, n={n})"
    return text


def fmt_ratio(r: dict) -> str:
    """A ratio of medians with its bootstrap 95% interval, or without one when a side has fewer
    than six samples (a bootstrap of so few values does not cover 95%)."""
    n = min(int(r.get("n_a", MIN_N_95)), int(r.get("n_b", MIN_N_95)))
    if n < MIN_N_95:
        return f"{fmt(r['value'])}× (no interval: n={r.get('n_a')}/{r.get('n_b')})"
    return f"{fmt(r['value'])}× {fmt_interval(r['low'], r['high'])}"


def fmt_quantity(value: float, unit: str) -> str:
    if unit == "s":
        return fmt_seconds(value)
    if unit == "bytes":
        for name, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
            if abs(value) >= size:
                return f"{fmt(value / size)} {name}"
        return f"{fmt(value)} B"
    return f"{fmt(value)} {unit}"
