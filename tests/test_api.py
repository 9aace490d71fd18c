"""The Python API for notebooks (lcrp_core.open_study → Study) on a real tiny sweep: the three
lines reproduce the stored per-video scores, the trials DataFrame, the best row as the report
marks it, lookup and refusals; and docs/examples/notebook_api.py runs as CI's notebook example."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import lcrp_core
from lcrp_core.data.synth import generate
from lcrp_core.errors import ConfigError
from lcrp_core.report.study import MissingStudy
from lcrp_core.sweep.driver import run_sweep
from lcrp_core.sweep.spec import parse_sweep_spec
from tests.helpers import cells_of, make_study, synth_spec, trial

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "docs" / "examples" / "notebook_api.py"
POINTS = [{"N": 2, "K": 1}, {"N": 4, "K": 2, "H": 1}, {"N": 3, "K": 3, "delta": 0.0}]


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A finished points study ``nb`` on a 3-video synthetic benchmark, classical backend."""
    tmp = tmp_path_factory.mktemp("api")
    bench = generate(tmp / "bench", split="valid", videos=3, seed=7, frames=8, size=(64, 96))
    url = f"sqlite:///{tmp / 'studies' / 'nb.db'}"
    (tmp / "studies").mkdir()
    spec = parse_sweep_spec(synth_spec(bench, study="nb", storage=url, cache_dir=str(tmp / "cache"),
                                 points=POINTS), source="nb.yaml")
    result = run_sweep(spec, progress=False)
    assert result.status.done == len(POINTS)
    return tmp, url


def test_three_lines_reproduce_the_best_trials_stored_scores(swept):
    _, url = swept
    s = lcrp_core.open_study("nb", storage=url)
    stored = s.best_trial.user_attrs["per_video"]
    video = sorted(stored)[1]

    ctx = s.eval_context(videos=[video])
    got = ctx.evaluate(s.best_params).per_video
    ctx.close()
    assert got == {video: stored[video]}


def test_best_is_the_row_the_report_marks_and_params_are_complete(swept):
    _, url = swept
    s = lcrp_core.open_study("nb", storage=url)
    complete = [t for t in s.data.trials if t.state.name == "COMPLETE"]
    top = max(complete, key=lambda t: t.value)
    assert s.best_value == top.value and s.best_trial.number == top.number
    full = s.best_params.to_short()
    assert full == s.best_trial.user_attrs["lcrp_params"]
    point = POINTS[int(top.user_attrs["lcrp_cell"][1:])]
    assert {k: full[k] for k in point} == point
    assert s.best_params == lcrp_core.Params.from_mapping(point, base=s.spec.base)
    assert (s.name, s.kind, s.url) == ("nb", "points", url)


def test_trials_is_a_dataframe_of_every_trial(swept):
    _, url = swept
    s = lcrp_core.open_study("nb", storage=url)
    df = s.trials
    assert list(df.index) == [t.number for t in s.data.trials]
    assert list(df["state"]) == ["COMPLETE"] * len(POINTS)
    assert sorted(df["params.N"]) == sorted(p["N"] for p in POINTS)
    best = df["value"].idxmax()
    assert df.loc[best, "value"] == s.best_value == df.loc[best, "user_attrs.JF"]


def test_open_study_finds_the_default_storage_and_names_a_missing_study(swept, monkeypatch):
    tmp, url = swept
    monkeypatch.chdir(tmp)  # studies/nb.db is the study's default storage
    found = lcrp_core.open_study("nb")
    assert found.url == "sqlite:///studies/nb.db"
    assert found.best_value == lcrp_core.open_study("nb", storage=url).best_value
    with pytest.raises(MissingStudy, match="no_such"):
        lcrp_core.open_study("no_such")


def test_a_reference_study_has_no_spec_and_cannot_be_re_evaluated(tmp_path):
    url = f"sqlite:///{tmp_path / 'ref.db'}"
    cells = cells_of([{"N": 5, "K": 3}, {"N": 10, "K": 3}])
    make_study(url, "paper", [trial(c, v) for c, v in zip(cells, (60.0, 64.0), strict=True)],
               kind="reference", cells=cells, spec={"reference": {"file": "paper.csv"}})
    s = lcrp_core.open_study("paper", storage=url)
    assert s.spec is None and s.best_value == 64.0 and s.best_params.num_frames == 10
    with pytest.raises(ConfigError, match="'reference' study, not a sweep"):
        s.eval_context()


def test_a_study_without_complete_trials_says_so(tmp_path):
    url = f"sqlite:///{tmp_path / 'e.db'}"
    cells = cells_of([{"N": 5, "K": 3}])
    make_study(url, "empty", [trial(cells[0], None, state="RUNNING")], cells=cells,
               kind="reference", spec={"reference": {"file": "paper.csv"}})
    with pytest.raises(ConfigError, match="no COMPLETE trial"):
        _ = lcrp_core.open_study("empty", storage=url).best_params


def test_the_notebook_example_runs(swept):
    tmp, url = swept
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, str(EXAMPLE), "nb", "--storage", url], cwd=tmp, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert any(line.startswith("best: {'N':") for line in lines), out.stdout
    reruns = [line for line in lines if "(stored" in line]
    assert len(reruns) == 2, out.stdout
    for line in reruns:  # "<video>: J&F 71.23 (stored 71.23)"
        rerun, stored = line.split("J&F ")[1].rstrip(")").split(" (stored ")
        assert rerun == stored, line
