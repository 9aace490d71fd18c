"""`lcrp report` end to end on real SQLite studies: every table and plot written (PNG, PDF),
index.html/index.md showing them, missing and incomplete studies named in the output and in
warnings, TPE plots, nothing half-written."""

import pytest
from PIL import Image

from lcrp_core.cli import main
from tests.helpers import cells_of, make_study, trial

SPEC = """
name: demo_like
title: Demo-like report
tables:
  - {id: davis, kind: ablation, title: Davis, panels: [d_nk, d_hd]}
  - {id: gone, kind: ablation, title: Gone, panels: [{study: not_there, columns: [N, K]}, d_nk]}
  - id: res
    kind: resources
    rows: [{method: SOC, learnable_params: "~110.0 M"}, {method: Ours, study: d_nk}]
plots:
  - {kind: heatmap, study: d_nk, x: N, y: K}
  - {kind: lines, study: d_hd, x: delta, series: H}
  - {kind: spread, study: d_nk}
  - {kind: forest, study: d_nk}
  - {kind: history, study: t}
  - {kind: importances, study: t}
  - {kind: heatmap, study: not_there, x: N, y: K}
"""


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    url = f"sqlite:///{tmp / 'studies.db'}"
    videos = ("bear", "dog", "cows")
    nk = cells_of([{"N": 5, "K": 3}, {"N": 10, "K": 3}, {"N": 10, "K": 5}, {"N": 5, "K": 5}])
    make_study(url, "d_nk", [
        trial(c, v, per_video=dict(zip(videos, (v - 4, v, v + 4), strict=True)), fps=1.5)
        for c, v in zip(nk, (60.0, 64.0, 66.0, 61.0), strict=True)], cells=nk)
    hd = cells_of([{"H": 1, "delta": 0.001}, {"H": 3, "delta": 0.001}, {"H": 1, "delta": 0.003},
                   {"H": 3, "delta": 0.003}])
    make_study(url, "d_hd", [
        trial(hd[0], 61.0, swept=("H", "delta")), trial(hd[1], 63.0, swept=("H", "delta")),
        trial(hd[2], 62.0, swept=("H", "delta")),
        trial(hd[3], None, state="RUNNING", swept=("H", "delta")),
    ], cells=hd)
    points = [(4, 2, 0.002), (8, 2, 0.001), (12, 4, 0.003), (6, 3, 0.002), (10, 5, 0.001),
              (9, 3, 0.003)]
    make_study(url, "t", [trial(None, 50.0 + n + k / 2, params={"N": n, "K": k, "delta": d})
                          for n, k, d in points], kind="tpe")
    spec = tmp / "demo_like.yaml"
    spec.write_text(SPEC)
    return tmp, spec, url


@pytest.fixture(scope="module")
def report(workspace):
    tmp, spec, url = workspace
    out = tmp / "out"
    import io
    from contextlib import redirect_stderr

    err = io.StringIO()
    with redirect_stderr(err):
        rc = main(["report", str(spec), "--storage", url, "--out", str(out)])
    return out, rc, err.getvalue()


def test_every_table_and_plot_is_written(report):
    out, rc, _ = report
    assert rc == 0
    for stem in ("davis", "gone", "res"):
        for fmt in ("md", "html", "tex"):
            assert (out / f"{stem}.{fmt}").stat().st_size > 100
    plots = ["heatmap_d_nk_N_K", "lines_d_hd_delta_H", "spread_d_nk", "forest_d_nk", "history_t",
             "importances_t"]
    for stem in plots:
        png, pdf = (out / f"{stem}.png").read_bytes(), (out / f"{stem}.pdf").read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000
        assert pdf.startswith(b"%PDF-") and len(pdf) > 5000
        with Image.open(out / f"{stem}.png") as im:  # one paper column (3.4 in) at 300 dpi
            assert 700 <= im.width <= 1400, (stem, im.size)
    assert not list(out.glob("heatmap_not_there*"))
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_index_pages_show_every_table_and_plot(report):
    out, _, _ = report
    page = (out / "index.html").read_text()
    for stem in ("davis", "gone", "res"):
        assert (out / f"{stem}.html").read_text().split("<p class")[0].rstrip() in page
        assert f'<a href="{stem}.tex">LaTeX</a>' in page
    for stem in ("heatmap_d_nk_N_K", "lines_d_hd_delta_H", "spread_d_nk", "history_t", "importances_t"):
        assert f'<img src="{stem}.png"' in page and f'<a href="{stem}.pdf">PDF</a>' in page
    md = (out / "index.md").read_text()
    assert "![J&F over N and K](heatmap_d_nk_N_K.png)" in md and "## Davis" in md
    assert "Study `d_nk`." in md and "(study d_nk)" in page


def test_missing_and_incomplete_studies_are_named_in_output_and_warnings(report):
    out, _, stderr = report
    missing = "study 'not_there' is missing"
    incomplete = "study 'd_hd' is incomplete: 1 of 4 cells have no complete trial (c003)"
    running = "study 'd_hd' still has 1 running or waiting trial(s)"
    for text in (missing, incomplete, running):
        assert text in stderr
        assert text in (out / "index.md").read_text()
        assert text in (out / "index.html").read_text()
    assert '<div class="lcrp-warnings">' in (out / "index.html").read_text()
    gone = (out / "gone.md").read_text()
    assert f"> **Warning:** {missing}" in gone and "| – | – | – |" in gone
    assert "plot 'heatmap_not_there_N_K' not drawn" in (out / "index.html").read_text()
    davis = (out / "davis.md").read_text()
    assert "| 3 | 0.3% | – |" in davis  # the RUNNING cell is shown, not dropped


def test_spread_plot_uses_the_best_and_the_spec_base(report, workspace):
    from lcrp_core.report.blocks import Loaded
    from lcrp_core.report.build import _spread_groups
    from lcrp_core.report.spec import Plot
    from lcrp_core.report.study import read_study

    _, _, stderr = report
    assert "spread_d_nk" not in stderr  # both found: no warning
    study = Loaded("d_nk", read_study("d_nk", storage=workspace[2]))
    rows = study.rows.complete_rows

    def groups(**base):
        out, reason = _spread_groups(Plot(id="s", kind="spread", study="d_nk", base=base or None), study, rows)
        return [(label.replace("\n", " "), per_video) for label, per_video in out], reason

    # best (10, 5): J&F 66 on (bear, dog, cows) = (62, 66, 70); the spec's base (10, 3): 64
    assert groups() == ([("best N=10 K=5", {"bear": 62.0, "dog": 66.0, "cows": 70.0}),
                         ("base N=10 K=3", {"bear": 60.0, "dog": 64.0, "cows": 68.0})], "")
    # a base named by the plot replaces the spec's; the best row at the base is drawn once
    assert groups(N=5, K=5)[0][1] == ("base N=5 K=5", {"bear": 57.0, "dog": 61.0, "cows": 65.0})
    assert groups(N=10, K=5) == ([("best = base N=10 K=5", {"bear": 62.0, "dog": 66.0,
                                                            "cows": 70.0})], "")
    assert groups(N=7, K=7)[1] == "no complete trial at the base configuration N=7 K=7"


def test_strict_fails_on_warnings_and_outputs_replace_atomically(workspace, capsys):
    tmp, _, url = workspace
    spec = tmp / "strict.yaml"
    spec.write_text("tables: [{id: davis, kind: ablation, title: Davis, panels: [d_nk, d_hd]}]\n")
    out = tmp / "strict"
    out.mkdir()
    (out / "davis.md").write_text("stale")
    assert main(["report", str(spec), "--storage", url, "--out", str(out), "--strict", "-q"]) == 1
    assert (out / "davis.md").read_text().startswith("### Davis")
    spec.write_text("tables: [{id: davis, kind: ablation, title: Davis, panels: [d_nk]}]\n")
    assert main(["report", str(spec), "--storage", url, "--out", str(out), "--strict", "-q"]) == 0


def test_default_output_folder_is_beside_the_spec(tmp_path, workspace):
    _, _, url = workspace
    spec = tmp_path / "reports" / "mini.yaml"
    spec.parent.mkdir()
    spec.write_text("tables: [{id: t1, kind: ablation, panels: [d_nk]}]\n")
    assert main(["report", str(spec), "--storage", url, "-q"]) == 0
    assert sorted(p.name for p in (tmp_path / "reports" / "mini").iterdir()) == \
        ["index.html", "index.md", "t1.html", "t1.md", "t1.tex", "t1.txt"]
