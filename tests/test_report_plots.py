"""Figures: tick labels never overlap (a TPE study's continuous δ), line plots carry CI bars,
the forest plot shows one interval per row against the reference."""

import numpy as np
import pytest

from lcrp_core.report import plots
from lcrp_core.report.cells import study_rows
from lcrp_core.report.study import StudyData
from tests.helpers import make_study, trial


@pytest.fixture(scope="module")
def tpe_rows(tmp_path_factory):
    """A TPE study over continuous δ (30 distinct values) and H."""
    import optuna

    url = f"sqlite:///{tmp_path_factory.mktemp('tpe') / 't.db'}"
    rng = np.random.default_rng(0)
    deltas = rng.uniform(0.0005, 0.005, 30)
    make_study(url, "t", [trial(None, 60 + 1000 * d + h, params={"H": h, "delta": float(d)})
                          for h, d in zip([1, 2, 3] * 10, deltas, strict=True)], kind="tpe")
    study = optuna.load_study(study_name="t", storage=url)
    data = StudyData(name="t", url=url, user_attrs=study.user_attrs, trials=tuple(study.trials))
    return study_rows(data).complete_rows, data


def tick_boxes(fig, axis):
    renderer = fig.canvas.get_renderer()
    return [t.get_window_extent(renderer) for t in axis.get_ticklabels() if t.get_visible() and t.get_text()]


def assert_no_overlap(boxes):
    assert len(boxes) >= 2
    for a, b in zip(boxes, boxes[1:]):
        assert not a.overlaps(b), (a, b)


def _canvas(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    fig.canvas.draw()
    return fig


def test_tick_labels_never_overlap_on_a_continuous_delta(tpe_rows):
    rows, _ = tpe_rows
    with plots.paper_style():
        fig = _canvas(plots.lines_figure(rows, x="delta", series="H", title="J&F against δ"))
        ax = fig.axes[0]
        labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
        assert 2 <= len(labels) <= 8 and all(t.endswith("%") for t in labels)
        assert_no_overlap(tick_boxes(fig, ax.xaxis))
        fig = _canvas(plots.heatmap_figure(rows, x="delta", y="H", title="J&F over δ and H"))
        assert_no_overlap(tick_boxes(fig, fig.axes[0].xaxis))


def test_history_and_importances_are_drawn_in_the_report_style(tpe_rows):
    _, data = tpe_rows
    with plots.paper_style():
        fig = plots.history_figure(data.trials, direction="maximize", title="TPE optimisation history")
        assert fig.get_size_inches().tolist() == list(plots.FIGSIZE)
        ax = fig.axes[0]
        best = ax.lines[0].get_ydata()
        assert list(best) == sorted(best) and best[-1] == max(t.value for t in data.trials)
        imp = plots.param_importances(data.trials, direction="maximize", name="t")
        assert set(imp) == {"H", "delta"} and sum(imp.values()) == pytest.approx(1)
        fig = _canvas(plots.importances_figure(imp, title="Parameter importances"))
        assert_no_overlap(tick_boxes(fig, fig.axes[0].yaxis))


class FixedRow:
    """A row with a fixed mean (all that lines_figure reads)."""

    def __init__(self, params, mean):
        self.params, self.mean = params, mean


def test_lines_carry_ci_bars_and_forest_one_interval_per_row():
    rows = [FixedRow({"H": h, "delta": d}, 70.0 + i)
            for i, (h, d) in enumerate([(1, 0.001), (1, 0.003), (2, 0.001), (2, 0.003)])]
    intervals = {(r.params["H"], r.params["delta"]): (r.mean - 2, r.mean + 1) for r in rows}
    with plots.paper_style():
        fig = _canvas(plots.lines_figure(rows, x="delta", series="H", title="t", intervals=intervals))
        ax = fig.axes[0]
        assert len(ax.containers) == 2  # one errorbar container per H
        bars = ax.containers[0].lines[2][0]
        assert [tuple(np.round(seg[:, 1], 6)) for seg in bars.get_segments()] == [(68.0, 71.0),
                                                                                  (69.0, 72.0)]
        xs = [np.asarray(c.lines[0].get_xdata(), float) for c in ax.containers]
        assert not np.allclose(xs[0], xs[1])  # the two lines are offset sideways
        fig = _canvas(plots.forest_figure(["N=5", "N=7"], [(1.0, -0.5, 2.0), (-3.0, -4.0, -2.0)],
                                          [False, True], reference="N=10", title="Δ"))
        ax = fig.axes[0]
        ys = {t.get_text(): t.get_position()[1] for t in ax.get_yticklabels()}
        assert ys["N=5"] > ys["N=7"]  # rows top to bottom in table order
        assert "Δ J&F vs N=10" in ax.get_xlabel()


def test_tpe_top_k_table_prints_delta_to_two_significant_digits(tpe_rows):
    from lcrp_core.report.blocks import Loaded, ablation_panel

    _, data = tpe_rows
    table, _, _ = ablation_panel(Loaded("t", data), columns=None, std=False, top=5)
    assert [h.text for h in table.headers] == ["H", "δ", "J&F"]
    means = [float(r[-1]) for r in table.rows]
    assert len(table.rows) == 5 and means == sorted(means, reverse=True)
    assert table.bold == frozenset({0})
    for row in table.rows:  # e.g. "0.41%", never "0.412345%"
        digits = row[1].rstrip("%").replace("0.", "", 1).lstrip("0")
        assert row[1].endswith("%") and len(digits) <= 2, row


def test_checked_in_demo_tpe_report_renders_its_top_table_and_plots(tmp_path):
    from pathlib import Path

    from lcrp_core.cli import main

    url = f"sqlite:///{tmp_path / 'tpe.db'}"
    rng = np.random.default_rng(1)
    videos = ("a", "b", "c", "d", "e", "f")
    trials = []
    for n, k, d in zip(rng.integers(2, 12, 12), rng.integers(1, 5, 12), rng.uniform(0.0005, 0.005, 12),
                       strict=True):
        value = 50 + float(n) + 800 * float(d)
        trials.append(trial(None, value, params={"N": int(n), "K": int(k), "delta": float(d)},
                            per_video={v: value + i - 2.5 for i, v in enumerate(videos)}))
    make_study(url, "demo_tpe", trials, kind="tpe")
    spec = Path(__file__).parent.parent / "lcrp_core" / "commands" / "demo_specs" / "reports" / "demo_tpe.yaml"
    out = tmp_path / "out"
    assert main(["report", str(spec), "--storage", url, "--out", str(out), "-q"]) == 0
    md = (out / "demo_tpe_top.md").read_text()
    body = [line for line in md.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(body) == 5 and body[0].startswith("| **")
    deltas = [line.split("|")[3].strip().strip("*") for line in body]
    assert all(d.endswith("%") and len(d.rstrip("%").replace(".", "").lstrip("0")) <= 2
               for d in deltas), deltas  # δ to two significant digits
    for stem in ("history_demo_tpe", "importances_demo_tpe"):
        assert (out / f"{stem}.png").stat().st_size > 5000
