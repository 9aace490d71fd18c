"""The qualitative strip on a real (tiny) sweep: the largest-|Δ| expressions of the best and the
reference rows, read from the cache — and never recomputed: without the cache it is not drawn."""

import shutil

import numpy as np
import optuna
import pytest
from PIL import Image

from lcrp_core.cli import main
from lcrp_core.data.synth import generate
from lcrp_core.report.qualitative import CacheMiss, CacheOnly, largest_differences

SWEEP = """
study: q
dataset: {kind: mevis, root: data/synth, split: valid}
backend: {name: classical}
protocol: per-expression
base: {preset: lcrp-ref-davis17, H: 0, delta: 0.003}
points:
  - {N: 1, K: 1}
  - {N: 10, K: 3}
"""
REPORT = """
name: q
options: {plot_formats: [png], dpi: 100}
plots:
  - {kind: masks, study: q, base: {N: 1, K: 1}, top: 2, frames: 3, gif: true}
"""


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("q")
    generate(tmp / "data" / "synth", split="valid", videos=2, seed=5, frames=6, size=(64, 80))
    (tmp / "q.yaml").write_text(SWEEP)
    (tmp / "report.yaml").write_text(REPORT)
    return tmp


def test_largest_differences():
    best = {"a/0": {"JF": 80.0}, "a/1": {"JF": 50.0}, "b/0": {"JF": 70.0}}
    ref = {"a/0": {"JF": 79.0}, "a/1": {"JF": 60.0}, "b/0": {"JF": 40.0}}
    assert largest_differences(best, ref, 2) == ["b/0", "a/1"]


def test_cache_only_backend_refuses_expensive_calls():
    class Real:
        name = "classical"

        def score(self, proposals, feature):
            return [1.0]

    guard = CacheOnly(Real())
    assert guard.name == "classical" and guard.score(None, None) == [1.0]
    with pytest.raises(CacheMiss, match="not in the cache"):
        guard.propagate(type("V", (), {"name": "v"})(), 0, np.zeros((1, 2, 2), bool))


def test_strip_from_the_cache_and_not_without_it(workspace, monkeypatch, capsys):
    monkeypatch.chdir(workspace)
    assert main(["-q", "sweep", "run", "q.yaml", "--storage", "sqlite:///q.db"]) == 0
    study = optuna.load_study(study_name="q", storage="sqlite:///q.db")
    assert study.metric_names == ["J&F"]  # optuna-dashboard shows the objective's name
    texts = {k: v["text"] for k, v in study.best_trial.user_attrs["per_expression"].items()}
    assert len(texts) >= 2 and all(isinstance(t, str) and t for t in texts.values())
    out = workspace / "out"
    assert main(["-q", "report", "report.yaml", "--storage", "sqlite:///q.db", "--out", str(out)]) == 0
    page = (out / "index.html").read_text()
    assert '<img src="masks_q.png"' in page and "not drawn" not in page
    with Image.open(out / "masks_q.png") as im:
        assert im.width > 400
    with Image.open(out / "masks_q.gif") as gif:
        assert gif.n_frames >= 2
    # the same report without the cache: the strip is not drawn (nothing is recomputed)
    shutil.rmtree(workspace / "cache")
    out2 = workspace / "out2"
    assert main(["-q", "report", "report.yaml", "--storage", "sqlite:///q.db", "--out", str(out2)]) == 0
    page = (out2 / "index.html").read_text()
    assert "plot &#x27;masks_q&#x27; not drawn" in page or "plot 'masks_q' not drawn" in page
    assert "not in the cache" in page
    assert not (workspace / "cache").exists() or not any((workspace / "cache").rglob("*.lcrp"))


DAVIS_SWEEP = """
study: qd
dataset: {kind: ref-davis17, root: data/davis, split: valid}
backend: {name: classical}
protocol: davis-unsupervised
base: {preset: lcrp-ref-davis17, H: 0, delta: 0.003}
points:
  - {N: 1, K: 1}
  - {N: 6, K: 3}
"""


def test_strip_of_a_ref_davis17_study_shows_the_expression_of_each_set_and_object(tmp_path, monkeypatch):
    # Ref-DAVIS17 items are "<video>/anno<a>/obj<o>": drawn as set a's expression of object o
    from lcrp_core.data import load_dataset

    monkeypatch.chdir(tmp_path)
    generate(tmp_path / "data" / "davis", layout="ref-davis17", videos=1, seed=3, frames=5, size=(64, 64))
    (tmp_path / "qd.yaml").write_text(DAVIS_SWEEP)
    (tmp_path / "report.yaml").write_text(
        "name: qd\noptions: {plot_formats: [png], dpi: 60}\n"
        "plots:\n  - {kind: masks, study: qd, base: {N: 1, K: 1}, top: 3, frames: 2}\n")
    assert main(["-q", "sweep", "run", "qd.yaml", "--storage", "sqlite:///qd.db"]) == 0
    assert main(["-q", "report", "report.yaml", "--storage", "sqlite:///qd.db", "--out", "out"]) == 0
    page = (tmp_path / "out" / "index.html").read_text()
    assert '<img src="masks_qd.png"' in page and "not drawn" not in page and "not an expression" not in page

    from lcrp_core.report.qualitative import item_expression
    items = optuna.load_study(study_name="qd", storage="sqlite:///qd.db").best_trial.user_attrs["per_expression"]
    video = next(iter(load_dataset("ref-davis17", tmp_path / "data" / "davis", split="valid").videos.values()))
    assert items and all(k.startswith(f"{video.name}/anno") for k in items)
    for key in items:
        a, o = (int(x) for x in key.split("/", 1)[1].removeprefix("anno").split("/obj"))
        expr = video.expressions[item_expression(video, key.split("/", 1)[1])]
        assert (expr.anno_set, expr.obj_ids) == (a, (o,))
    first = next(iter(video.expressions))
    assert item_expression(video, first) == first and item_expression(video, "anno9/obj1") is None
