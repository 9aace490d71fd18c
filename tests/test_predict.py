"""`lcrp predict` and `lcrp submit` end to end: a study's best trial predicted on the synthetic
benchmark in both layouts (re-scored by `lcrp eval` to the trial's stored J&F exactly), resume,
refusal of a foreign folder, and extract → predict → submit on a hand-made Ref-YouTube-VOS layout."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from lcrp_core.cli import main
from lcrp_core.data import load_dataset
from lcrp_core.data.synth import generate
from lcrp_core.report.study import read_study
from tests.fixtures import make_ytvos_dataset

POINTS = [{"N": 2, "K": 1}, {"N": 4, "K": 2, "H": 1}]
PROTOCOL = {"ref-davis17": "davis-unsupervised", "mevis": "per-expression"}


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def pngs(folder: Path) -> dict[str, int]:
    return {p.relative_to(folder).as_posix(): p.stat().st_mtime_ns for p in sorted(folder.rglob("*.png"))}


@pytest.mark.parametrize("layout", ["ref-davis17", "mevis"])
def test_best_trial_predictions_score_the_trials_stored_jf_exactly(workspace, capsys, layout):
    root = generate(workspace / "data" / layout, videos=2, seed=5, frames=8, size=(64, 96),
                    layout=layout)
    spec = {"study": "s", "dataset": {"kind": layout, "root": str(root)},
            "backend": {"name": "classical"}, "protocol": PROTOCOL[layout], "points": POINTS}
    (workspace / "s.yaml").write_text(yaml.safe_dump(spec))
    assert main(["-q", "sweep", "run", "s.yaml"]) == 0
    study = read_study("s")
    best = max(study.trials, key=lambda t: t.value)
    capsys.readouterr()

    assert main(["-q", "predict", "--study", "s", "--best", "--out", "preds"]) == 0
    out = capsys.readouterr().out
    assert f"equal to trial {best.number}'s stored J&F, J and F" in out
    ds = load_dataset(layout, root)
    if layout == "ref-davis17":   # ReferFormer's anno_0..3 palette label maps
        expected = {f"anno_{a}/{v.name}/{f}.png" for a in range(4) for v in ds for f in v.frame_names}
        img = Image.open(workspace / "preds" / "anno_0" / "synth_000" / "00000.png")
        assert img.mode == "P"
    else:                         # Annotations/<video>/<exp_id>/<frame>.png, 0/255
        expected = {f"Annotations/{v.name}/{e}/{f}.png" for v in ds for e in v.expressions
                    for f in v.frame_names}
        img = Image.open(workspace / "preds" / "Annotations" / "synth_000" / "0" / "00000.png")
        assert img.mode == "L" and set(np.unique(np.asarray(img)).tolist()) <= {0, 255}
    assert set(pngs(workspace / "preds")) == expected

    meta = json.loads((workspace / "preds" / "predict.json").read_text())
    assert meta["complete"] and meta["source"] == {"study": "s", "storage": study.url,
                                                   "trial": best.number}
    assert meta["params"] == best.user_attrs["lcrp_params"]
    assert meta["cache_key"] == best.user_attrs["cache_key"]      # the sweep's cache entries
    assert set(meta["video_seconds"]) == set(ds.videos) and meta["code_version"]
    assert meta["scores"]["JF"] == best.user_attrs["JF"] == best.value
    assert meta["trial_check"]["equal"]

    # lcrp eval scores the folder to the same J&F; the results go under --out
    assert main(["eval", "--gt", str(root), "--pred", "preds", "--protocol", PROTOCOL[layout],
                 "--out", "res"]) == 0
    assert f"J&F {best.value:.1f}   J {best.user_attrs['J']:.1f}" in capsys.readouterr().out
    assert (workspace / "res" / "scores.csv").is_file() and not (workspace / "preds" / "scores.csv").exists()

    # a rerun resumes: nothing is rewritten
    before = pngs(workspace / "preds")
    assert main(["-q", "predict", "--study", "s", "--best", "--out", "preds"]) == 0
    assert "2 videos (2 already done)" in capsys.readouterr().out
    assert pngs(workspace / "preds") == before
    # another configuration into the same folder is refused in one line
    assert main(["-q", "predict", "--study", "s", "--best", "--set", "K=5", "--out", "preds"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "preds: holds the predictions of another configuration" in err[0]


def test_ref_youtube_vos_extract_predict_submit(workspace, capsys):
    fx = make_ytvos_dataset(workspace / "ytvos")
    assert main(["-q", "extract", "--dataset", "ref-youtube-vos", "--root", "ytvos"]) == 0
    cached = {p.parent.name for p in (workspace / "cache").rglob("*") if p.is_file()}
    assert main(["-q", "predict", "--preset", "lcrp-mevis", "--set", "N=2", "--dataset",
                 "ref-youtube-vos", "--root", "ytvos", "--out", "preds", "--devices", "cpu,cpu"]) == 0
    out = capsys.readouterr().out
    assert "no ground truth here" in out and "lcrp submit preds --benchmark ref-youtube-vos" in out
    meta = json.loads((workspace / "preds" / "predict.json").read_text())
    assert meta["params"]["N"] == 2 and meta["source"] == {"preset": "lcrp-mevis", "set": {"N": 2}}
    assert (workspace / "cache" / meta["cache_key"]).is_dir() and cached

    assert main(["submit", "preds", "--benchmark", "ref-youtube-vos", "--out", "sub.zip"]) == 0
    expected = sorted(f"Annotations/{v}/{e}/{f}.png" for v, m in fx.meta["videos"].items()
                      for e in m["expressions"] for f in m["frames"])
    with zipfile.ZipFile(workspace / "sub.zip") as zf:
        assert sorted(zf.namelist()) == expected          # no test video t999, nothing else
        mask = np.asarray(Image.open(zf.open(expected[0])))
        assert mask.shape == (12, 16) and set(np.unique(mask).tolist()) <= {0, 255}
    assert "2 videos, 3 expressions, 10 PNGs -> sub.zip" in capsys.readouterr().out

    # a missing frame: one error naming it, the zip left as it was
    before = (workspace / "sub.zip").read_bytes()
    missing = workspace / "preds" / "Annotations" / "c3d4" / "0" / "00002.png"
    missing.rename(workspace / "kept.png")
    assert main(["submit", "preds", "--benchmark", "ref-youtube-vos", "--out", "sub.zip"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(Path("preds/Annotations/c3d4/0/00002.png")) in err[0]
    assert (workspace / "sub.zip").read_bytes() == before
    # a mask of the wrong size, and the wrong benchmark
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(missing)
    assert main(["submit", "preds", "--benchmark", "ref-youtube-vos", "--out", "new.zip"]) == 2
    assert re.search(r"00002\.png: mask is 8×8, its frame is 12×16", capsys.readouterr().err)
    assert main(["submit", "preds", "--benchmark", "mevis", "--out", "new.zip"]) == 2
    assert "holds ref-youtube-vos predictions, not mevis" in capsys.readouterr().err
    assert not (workspace / "new.zip").exists()
    # sweeps over it stay refused: no public ground truth
    spec = {"study": "y", "dataset": {"kind": "ref-youtube-vos", "root": "ytvos"},
            "backend": {"name": "classical"}, "points": POINTS}
    (workspace / "y.yaml").write_text(yaml.safe_dump(spec))
    assert main(["sweep", "run", "y.yaml"]) == 2
    assert "no public ground truth" in capsys.readouterr().err


def test_mevis_submission_packs_the_video_folders_at_the_top(workspace, capsys):
    root = generate(workspace / "mevis", videos=1, seed=1, frames=4, size=(64, 96), split="valid")
    assert main(["-q", "predict", "--preset", "findtrack", "--dataset", "mevis", "--root", "mevis",
                 "--split", "valid", "--out", "preds"]) == 0
    assert main(["-q", "submit", "preds", "--benchmark", "mevis", "--out", "m.zip"]) == 0
    ds = load_dataset("mevis", root, "valid")
    with zipfile.ZipFile(workspace / "m.zip") as zf:
        assert sorted(zf.namelist()) == sorted(f"{v.name}/{e}/{f}.png" for v in ds
                                               for e in v.expressions for f in v.frame_names)


@pytest.mark.parametrize("argv, message", [
    (["--preset", "lcrp-mevis", "--out", "p"], "--preset needs --dataset and --root"),
    (["--preset", "nope", "--dataset", "mevis", "--root", ".", "--out", "p"], "unknown preset 'nope'"),
    (["--study", "none", "--out", "p"], "none: study not found"),
    (["--preset", "findtrack", "--trial", "2", "--out", "p"], "--trial and --best choose a trial"),
    (["--preset", "findtrack", "--set", "K", "--dataset", "mevis", "--root", ".", "--out", "p"],
     "--set: expected NAME=VALUE, got 'K'"),
    (["--preset", "findtrack", "--set", "K=0", "--dataset", "mevis", "--root", ".", "--out", "p"],
     "K: expected K >= 1"),
])
def test_bad_predict_options_are_one_clear_error(workspace, capsys, argv, message):
    assert main(["predict", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (workspace / "p").exists()
