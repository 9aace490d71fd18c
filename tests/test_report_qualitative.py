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
