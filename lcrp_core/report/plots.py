"""Report figures (matplotlib, Agg), sized for a paper column and returned as file bytes.

- heatmap: mean J&F over two swept parameters;
- lines: J&F against one parameter, one line per value of another, with 95 % CI bars where the
  trials stored per-video scores; lines are offset sideways and use distinct markers so that
  overlapping ones stay visible;
- spread: per-video J&F (box + points) of the best and the base configurations;
- forest: Δ J&F of every row against the reference row, with 95 % CIs;
- history, importances: a TPE study's optimisation history and parameter importances (Optuna's
  default evaluator), drawn here in the same style as every other figure.

One style for all (``paper_style``): a paper column wide, 8 pt text, light grid. A parameter axis
with many distinct values (a TPE study's continuous δ) gets at most six ticks, never one per value.

Where several rows share the plotted parameters (they differ in others), the best mean is
plotted and the title says so.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from lcrp_core.report.cells import Row
from lcrp_core.report.fmt import format_param, format_score, label

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from optuna.trial import FrozenTrial

#: One column of a two-column paper, in inches; fonts stay legible when printed at this size.
FIGSIZE = (3.4, 2.6)
_RC = {
    "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "xtick.labelsize": 7,
    "ytick.labelsize": 7, "legend.fontsize": 7, "figure.figsize": FIGSIZE,
    "pdf.fonttype": 42, "savefig.bbox": "tight", "savefig.pad_inches": 0.03,
}
_BEST_OF = " (best over other parameters)"


@contextmanager
def paper_style() -> Iterator[None]:
    import matplotlib

    matplotlib.use("Agg")
    with matplotlib.rc_context(_RC):
        yield


def figure_bytes(fig: Figure, fmt: str, *, dpi: int) -> bytes:
    """The figure as PNG or PDF bytes (PDF without a creation date, so reruns are identical)."""
    buf = io.BytesIO()
    metadata = {"CreationDate": None} if fmt == "pdf" else {"Software": None}
    fig.savefig(buf, format=fmt, dpi=dpi, metadata=metadata)
    return buf.getvalue()


def _axis_value(name: str, value: Any) -> float:
    """Where a parameter value sits on an axis (δ in percent)."""
    return float(value) * 100 if name == "delta" else float(value)


def _axis_label(name: str) -> str:
    return "δ (% of frame)" if name == "delta" else label(name)


_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
#: Above this many distinct values a parameter axis gets automatic ticks instead of one per value.
MAX_VALUE_TICKS = 8


def new_figure() -> tuple[Figure, Any]:
    """A figure in the report's one style, and its axes."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIGSIZE, layout="constrained")
    ax = fig.add_subplot()
    ax.grid(alpha=0.3, linewidth=0.5)
    ax.set_axisbelow(True)
    return fig, ax


def _value_ticks(axis: Any, name: str, values: Sequence[Any]) -> None:
    """One tick per value when there are few; else at most six, printed as the parameter is."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    if len(values) <= MAX_VALUE_TICKS:
        axis.set_ticks([_axis_value(name, v) for v in values],
                       [format_param(name, v) for v in values])
        return
    axis.set_major_locator(MaxNLocator(nbins=5))
    axis.set_major_formatter(FuncFormatter(
        lambda v, _: f"{v:.2g}%" if name == "delta" else f"{v:.6g}"))


def _score_axis(axis: Any) -> None:
    """At most six ticks, printed as short as they are exact (76.5, 76.55)."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    axis.set_major_locator(MaxNLocator(nbins=5))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.6g}"))


def best_by(rows: Sequence[Row], names: Sequence[str]) -> tuple[dict[tuple[Any, ...], float], bool]:
    """{values of ``names``: best mean J&F} over complete rows, and whether rows were merged."""
    out: dict[tuple[Any, ...], float] = {}
    merged = False
    for row in rows:
        if row.mean is None or any(n not in row.params for n in names):
            continue
        key = tuple(row.params[n] for n in names)
        merged |= key in out
        out[key] = max(out.get(key, -math.inf), row.mean)
    return out, merged


def heatmap_figure(rows: Sequence[Row], *, x: str, y: str, title: str) -> Figure:
    """Mean J&F (colour and number) over the (x, y) values; blank where not measured."""
    import numpy as np

    values, merged = best_by(rows, (x, y))
    xs = sorted({k[0] for k in values})
    ys = sorted({k[1] for k in values})
    grid = np.full((len(ys), len(xs)), np.nan)
    for (xv, yv), v in values.items():
        grid[ys.index(yv), xs.index(xv)] = v
    fig, ax = new_figure()
    ax.grid(False)
    image = ax.imshow(np.ma.masked_invalid(grid), origin="lower", cmap="viridis", aspect="auto")
    finite = grid[np.isfinite(grid)]
    middle = (finite.min() + finite.max()) / 2 if finite.size else 0
    for (i, j), v in np.ndenumerate(grid):
        if np.isfinite(v):
            ax.text(j, i, format_score(v), ha="center", va="center", fontsize=7,
                    color="black" if v > middle else "white")
    for axis, values, name in ((ax.xaxis, xs, x), (ax.yaxis, ys, y)):
        if len(values) <= MAX_VALUE_TICKS:
            axis.set_ticks(range(len(values)), [format_param(name, v) for v in values])
        else:  # continuous values (TPE): a few labels, two significant digits
            step = math.ceil(len(values) / 4)
            axis.set_ticks(range(0, len(values), step),
                           [format_param(name, v, digits=2) for v in values[::step]])
    ax.set_xlabel(label(x))
    ax.set_ylabel(label(y))
    ax.set_title(title + (_BEST_OF if merged else ""))
    fig.colorbar(image, ax=ax, label="J&F")
    return fig


def lines_figure(rows: Sequence[Row], *, x: str, series: str, title: str,
                 intervals: Mapping[tuple[Any, ...], tuple[float, float]] | None = None) -> Figure:
    """J&F against ``x``, one line per value of ``series`` (own marker, a small sideways offset so
    that equal values stay visible), with CI bars from ``intervals`` ({(series value, x value):
    (low, high)}) where given."""
    values, merged = best_by(rows, (series, x))
    fig, ax = new_figure()
    names = sorted({k[0] for k in values})
    xs = sorted({k[1] for k in values})
    span = (_axis_value(x, xs[-1]) - _axis_value(x, xs[0])) if len(xs) > 1 else 1.0
    dodge = 0.015 * span if len(xs) <= MAX_VALUE_TICKS else 0.0
    for i, s in enumerate(names):
        keys = sorted((k for k in values if k[0] == s), key=lambda k: _axis_value(x, k[1]))
        offset = (i - (len(names) - 1) / 2) * dodge
        px = [_axis_value(x, k[1]) + offset for k in keys]
        py = [values[k] for k in keys]
        err = None
        if intervals and all(k in intervals for k in keys):
            err = [[values[k] - intervals[k][0] for k in keys], [intervals[k][1] - values[k] for k in keys]]
        ax.errorbar(px, py, yerr=err, marker=_MARKERS[i % len(_MARKERS)], markersize=3.5,
                    linewidth=1, elinewidth=0.7, capsize=2, alpha=0.9,
                    label=f"{label(series)}={format_param(series, s)}")
    _value_ticks(ax.xaxis, x, xs)
    ax.set_xlabel(_axis_label(x))
    _score_axis(ax.yaxis)
    ax.set_ylabel("J&F" + (" (95% CI)" if intervals else ""))
    ax.legend(frameon=False)
    ax.set_title(title + (_BEST_OF if merged else ""))
    return fig


def forest_figure(labels: Sequence[str], intervals: Sequence[tuple[float, float | None, float | None]],
                  significant: Sequence[bool], *, reference: str, title: str) -> Figure:
    """Δ J&F (point, 95 % CI) of each labelled row against the ``reference`` row (a point
    without a bar where no interval is possible); rows whose Holm-corrected paired test is
    significant are filled, the others hollow."""
    fig, ax = new_figure()
    fig.set_size_inches(FIGSIZE[0], max(1.6, 0.9 + 0.28 * len(labels)))
    ys = list(range(len(labels)))[::-1]
    for y, (value, low, high), sig in zip(ys, intervals, significant, strict=True):
        xerr = None if low is None or high is None else [[value - low], [high - value]]
        ax.errorbar([value], [y], xerr=xerr, fmt="o", markersize=4,
                    color="C0", mfc="C0" if sig else "white", elinewidth=1, capsize=2)
    ax.axvline(0, color="0.3", linewidth=0.8, linestyle="--")
    ax.set_yticks(ys, labels)
    bars = sum(low is not None and high is not None for _, low, high in intervals)
    ax.set_xlabel(f"Δ J&F vs {reference} " + ("(95% CI)" if bars == len(intervals) else
                                              "(one video: no CI)" if not bars else
                                              "(95% CI; none over one video)"))
    ax.set_ylim(-0.7, len(labels) - 0.3)
    ax.set_title(title)
    return fig


def spread_figure(groups: Sequence[tuple[str, Mapping[str, float]]], *, title: str) -> Figure:
    """Per-video J&F of each (label, {video: J&F}) group: a box plot and the videos as points."""
    import numpy as np

    fig, ax = new_figure()
    ax.grid(False)
    data = [list(per_video.values()) for _, per_video in groups]
    ax.boxplot(data, widths=0.5, showfliers=False, medianprops={"color": "black"})
    rng = np.random.default_rng(0)  # fixed jitter: the same figure on every run
    for i, values in enumerate(data, start=1):
        ax.scatter(i + rng.uniform(-0.12, 0.12, len(values)), values, s=6, alpha=0.7, zorder=3)
    ax.set_xticks(range(1, len(groups) + 1), [g[0] for g in groups])
    _score_axis(ax.yaxis)
    ax.set_ylabel("J&F per video")
    ax.grid(axis="y", alpha=0.3, linewidth=0.5)
    ax.set_title(title)
    return fig


def history_figure(trials: Sequence[FrozenTrial], *, direction: str, title: str) -> Figure:
    """J&F of every complete trial by trial number, and the best so far (a TPE study's history)."""
    done = sorted((t for t in trials if t.state.name == "COMPLETE" and t.value is not None),
                  key=lambda t: t.number)
    if not done:
        raise ValueError("no complete trial")
    fig, ax = new_figure()
    numbers = [t.number for t in done]
    values = [float(t.value) for t in done]
    pick = max if direction == "maximize" else min
    best = [pick(values[: i + 1]) for i in range(len(values))]
    ax.scatter(numbers, values, s=8, color="C0", label="trial J&F", zorder=3)
    ax.step(numbers, best, where="post", color="C1", linewidth=1.2, label="best so far")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
    _score_axis(ax.yaxis)
    ax.set_xlabel("trial")
    ax.set_ylabel("J&F")
    ax.legend(frameon=False)
    ax.set_title(title)
    return fig


def param_importances(trials: Sequence[FrozenTrial], *, direction: str, name: str) -> dict[str, float]:
    """{parameter: importance} for J&F (Optuna's default evaluator, PED-ANOVA in Optuna 5),
    most important first. Raises ValueError without two complete trials over a varying parameter."""
    import optuna

    from lcrp_core.report.study import quiet_optuna

    complete = [t for t in trials if t.state.name == "COMPLETE" and t.value is not None]
    if len(complete) < 2 or not any(len({repr(t.params.get(p)) for t in complete}) > 1
                                    for p in complete[0].params):
        raise ValueError("importances need at least two complete trials over a varying parameter")
    with quiet_optuna():
        study = optuna.create_study(study_name=name, direction=direction)
    study.add_trials(complete)
    return dict(optuna.importance.get_param_importances(study))


def importances_figure(importances: Mapping[str, float], *, title: str) -> Figure:
    """Horizontal bars of parameter importances (largest on top), values printed."""
    fig, ax = new_figure()
    ax.grid(axis="y", visible=False)
    names = list(importances)[::-1]
    values = [importances[n] for n in names]
    bars = ax.barh(range(len(names)), values, color="C0", height=0.6)
    ax.bar_label(bars, labels=[f"{v:.2f}" for v in values], padding=2, fontsize=7)
    ax.set_yticks(range(len(names)), [_axis_label(n) for n in names])
    ax.set_xlim(0, max(values) * 1.2 if values and max(values) > 0 else 1)
    ax.set_xlabel("importance for J&F")
    ax.set_title(title)
    return fig
