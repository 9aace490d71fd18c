"""Report figures (matplotlib, Agg), sized for a paper column and returned as file bytes.

- heatmap: mean J&F over two swept parameters;
- lines: J&F against one parameter, one line per value of another;
- spread: per-video J&F (box + points) of the best and the base configurations;
- history, importances: a TPE study's optimisation history and parameter importances
  (optuna.visualization.matplotlib).

Where several rows share the plotted parameters (they differ in others), the best mean is
plotted and the title says so.
"""

from __future__ import annotations

import io
import math
import warnings
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
    from matplotlib.figure import Figure

    values, merged = best_by(rows, (x, y))
    xs = sorted({k[0] for k in values})
    ys = sorted({k[1] for k in values})
    grid = np.full((len(ys), len(xs)), np.nan)
    for (xv, yv), v in values.items():
        grid[ys.index(yv), xs.index(xv)] = v
    fig = Figure(figsize=FIGSIZE, layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(np.ma.masked_invalid(grid), origin="lower", cmap="viridis", aspect="auto")
    finite = grid[np.isfinite(grid)]
    middle = (finite.min() + finite.max()) / 2 if finite.size else 0
    for (i, j), v in np.ndenumerate(grid):
        if np.isfinite(v):
            ax.text(j, i, format_score(v), ha="center", va="center", fontsize=7,
                    color="black" if v > middle else "white")
    ax.set_xticks(range(len(xs)), [format_param(x, v) for v in xs])
    ax.set_yticks(range(len(ys)), [format_param(y, v) for v in ys])
    ax.set_xlabel(label(x))
    ax.set_ylabel(label(y))
    ax.set_title(title + (_BEST_OF if merged else ""))
    fig.colorbar(image, ax=ax, label="J&F")
    return fig


def lines_figure(rows: Sequence[Row], *, x: str, series: str, title: str) -> Figure:
    """J&F against ``x``, one line (with markers) per value of ``series``."""
    from matplotlib.figure import Figure

    values, merged = best_by(rows, (series, x))
    fig = Figure(figsize=FIGSIZE, layout="constrained")
    ax = fig.add_subplot()
    for s in sorted({k[0] for k in values}):
        points = sorted((_axis_value(x, xv), v) for (sv, xv), v in values.items() if sv == s)
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3,
                linewidth=1, label=f"{label(series)}={format_param(series, s)}")
    ticks = sorted({k[1] for k in values})
    ax.set_xticks([_axis_value(x, v) for v in ticks], [format_param(x, v) for v in ticks])
    ax.set_xlabel(_axis_label(x))
    _score_axis(ax.yaxis)
    ax.set_ylabel("J&F")
    ax.grid(alpha=0.3, linewidth=0.5)
    ax.legend(frameon=False)
    ax.set_title(title + (_BEST_OF if merged else ""))
    return fig


def spread_figure(groups: Sequence[tuple[str, Mapping[str, float]]], *, title: str) -> Figure:
    """Per-video J&F of each (label, {video: J&F}) group: a box plot and the videos as points."""
    import numpy as np
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIGSIZE, layout="constrained")
    ax = fig.add_subplot()
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


def _optuna_study(trials: Sequence[FrozenTrial], direction: str, name: str) -> Any:
    """An in-memory copy of a study's trials, for Optuna's own plotting functions."""
    import optuna

    from lcrp_core.report.study import quiet_optuna

    with quiet_optuna():
        study = optuna.create_study(study_name=name, direction=direction)
    study.add_trials(trials)
    return study


def optuna_figure(kind: str, trials: Sequence[FrozenTrial], *, direction: str, name: str,
                  title: str) -> Figure:
    """``history`` (plot_optimization_history) or ``importances`` (plot_param_importances).

    Raises ValueError when the study cannot give that plot (e.g. importances need at least two
    complete trials over a parameter that varies)."""
    import matplotlib.pyplot as plt
    import optuna
    import optuna.visualization.matplotlib as ovm
    from matplotlib.text import Text

    study = _optuna_study(trials, direction, name)
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        raise ValueError("no complete trial")
    if kind == "importances" and (len(complete) < 2 or not any(
            len({repr(t.params.get(p)) for t in complete}) > 1 for p in complete[0].params)):
        raise ValueError("importances need at least two complete trials over a varying parameter")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        ax = (ovm.plot_optimization_history(study, target_name="J&F") if kind == "history"
              else ovm.plot_param_importances(study, target_name="J&F"))
    fig = ax.figure
    plt.close(fig)  # detach from pyplot's registry; the figure object stays usable
    fig.set_size_inches(*FIGSIZE)
    for loc in ("left", "right"):  # Optuna titles some plots on the left
        ax.set_title("", loc=loc)
    ax.set_title(title)
    for text in fig.findobj(Text):  # Optuna's style uses larger fonts than a paper column takes
        text.set_fontsize(min(text.get_fontsize(), _RC["font.size"]))
    fig.set_layout_engine("constrained")
    return fig
