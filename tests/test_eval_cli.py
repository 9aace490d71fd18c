"""`lcrp eval` end to end on tiny PNG folders in the real layouts."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from lcrp_core.cli import main
from lcrp_core.data import load_dataset
from lcrp_core.data.io import write_binary_png, write_label_png
from lcrp_core.data.writers import davis_label_maps, write_davis_label_maps, write_predictions
from lcrp_core.metrics import Evaluator
from tests.fixtures import make_davis_dataset, make_mevis_dataset
from tests.helpers import ref_jf_stack, ref_statistics


@pytest.fixture(autouse=True)
def one_process(monkeypatch):
    """Score videos in this process unless a test asks for --jobs (process start-up is slow)."""
    monkeypatch.setattr("lcrp_core.commands.eval._default_jobs", lambda: 1)


def write_folder(root: Path, video: str, labels: np.ndarray) -> None:
    for t, label in enumerate(labels):
        write_label_png(root / video / f"{t:05d}.png", label)


def read_csv(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as f:
        return {row["key"]: row for row in csv.DictReader(f)}


def davis_gt(t: int = 5) -> dict[str, np.ndarray]:
    """Two videos of 12×16 label maps: 'a' with objects 1, 2 and a void corner, 'b' with object 1."""
    a = np.zeros((t, 12, 16), np.uint8)
    for k in range(t):
        a[k, 2:6, 2 + k:7 + k] = 1
        a[k, 7:11, 9:14] = 2
    a[:, :2, 14:] = 255
    b = np.zeros((t, 12, 16), np.uint8)
    b[:, 3:9, 4:12] = 1
    return {"a": a, "b": b}


def test_davis_semi_end_to_end(tmp_path, capsys):
    gt = davis_gt()
    pred = {v: np.where(lab == 255, 0, lab).astype(np.uint8) for v, lab in gt.items()}
    pred["a"][0] = 0                              # first and last frames are not scored
    pred["a"][-1] = 2
    pred["b"][2, 3:9, 4:8] = 0                    # a scored frame: object 1 half missed
    for v in gt:
        write_folder(tmp_path / "gt", v, gt[v])
        write_folder(tmp_path / "pred", v, pred[v])
    assert main(["eval", "--gt-annotations", str(tmp_path / "gt"), "--pred", str(tmp_path / "pred"),
                 "--protocol", "davis-semi", "--out", str(tmp_path / "res")]) == 0
    out = tmp_path / "res" / "scores.csv"
    rows = read_csv(out)
    assert list(rows) == ["a/obj1", "a/obj2", "b/obj1"]
    assert float(rows["a/obj1"]["J"]) == 100.0 and float(rows["a/obj2"]["F"]) == 100.0
    j, f = ref_jf_stack(pred["b"][1:-1] == 1, gt["b"][1:-1] == 1)
    assert float(rows["b/obj1"]["J"]) == 100 * ref_statistics(j)[0]
    assert float(rows["b/obj1"]["F"]) == 100 * ref_statistics(f)[0]
    assert float(rows["b/obj1"]["J_decay"]) == 100 * ref_statistics(j)[2]
    text = capsys.readouterr().out
    jm = (200 + 100 * ref_statistics(j)[0]) / 3
    assert "davis-semi: 2 videos, 3 objects" in text and f"J {jm:.1f}" in text
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]


def test_davis_unsupervised_annotation_sets_match_the_api(tmp_path, capsys, monkeypatch):
    fx = make_davis_dataset(tmp_path / "refdavis")
    ds = load_dataset("ref-davis17", tmp_path / "refdavis")
    preds = {v.name: {e: m.copy() for e, m in fx.gt[v.name].items()} for v in ds}
    bike = ds.videos["bike"]
    set2_obj1 = next(e for e, x in bike.expressions.items() if x.anno_set == 2 and x.obj_ids == (1,))
    preds["bike"][set2_obj1] = np.roll(preds["bike"][set2_obj1], 2, axis=2)
    for v in ds:
        write_davis_label_maps(tmp_path / "pred", v.name, v.frame_names, davis_label_maps(v, preds[v.name]))
    ev = Evaluator(ds, "davis-unsupervised")
    expected = ev.summarize([ev.score_video(v, preds[v.name]) for v in ds])

    # --gt is the dataset root; results go under eval/<prediction folder name> by default
    monkeypatch.chdir(tmp_path)
    assert main(["eval", "--gt", str(tmp_path / "refdavis"), "--pred", str(tmp_path / "pred"),
                 "--protocol", "davis-unsupervised"]) == 0
    rows = read_csv(tmp_path / "eval" / "pred" / "scores.csv")
    assert sorted(p.name for p in (tmp_path / "pred").iterdir()) == [f"anno_{a}" for a in range(4)]
    assert set(rows) == set(expected.per_item)
    for key, item in expected.per_item.items():
        assert float(rows[key]["J"]) == item["J"] and float(rows[key]["F"]) == item["F"]
    assert float(rows["bike/anno2/obj1"]["J"]) < 100.0
    text = capsys.readouterr().out
    assert f"J&F {expected.JF:.1f}   J {expected.J:.1f}   F {expected.F:.1f}" in text

    # one plain label-map folder (no anno_<a>) is one set
    gt_dir = tmp_path / "refdavis" / "Annotations_unsupervised" / "480p"
    assert main(["eval", "--gt-annotations", str(gt_dir), "--pred", str(tmp_path / "pred" / "anno_2"),
                 "--protocol", "davis-unsupervised", "--out", str(tmp_path / "plain"), "-q"]) == 0
    plain = read_csv(tmp_path / "plain" / "scores.csv")
    assert set(plain) == {"bike/anno0/obj1", "bike/anno0/obj2", "swan/anno0/obj1"}
    assert plain["bike/anno0/obj1"]["J"] == rows["bike/anno2/obj1"]["J"]


def test_void_option_changes_the_davis_scores(tmp_path):
    gt = davis_gt()
    pred = {v: np.where(lab == 255, 1, lab).astype(np.uint8) for v, lab in gt.items()}  # 1 spills into void
    for v in gt:
        write_folder(tmp_path / "gt", v, gt[v])
        write_folder(tmp_path / "pred", v, pred[v])
    args = ["eval", "--gt-annotations", str(tmp_path / "gt"), "--pred", str(tmp_path / "pred"), "-q"]
    unsup = [*args, "--protocol", "davis-unsupervised"]
    assert main([*unsup, "--out", str(tmp_path / "default")]) == 0     # void excluded
    assert main([*unsup, "--out", str(tmp_path / "bg"), "--void", "background"]) == 0
    assert float(read_csv(tmp_path / "default" / "scores.csv")["a/anno0/obj1"]["J"]) == 100.0
    assert float(read_csv(tmp_path / "bg" / "scores.csv")["a/anno0/obj1"]["J"]) < 100.0
    semi = [*args, "--protocol", "davis-semi"]
    assert main([*semi, "--out", str(tmp_path / "semi")]) == 0         # void as background
    assert main([*semi, "--out", str(tmp_path / "semi_ex"), "--void", "exclude"]) == 0
    assert float(read_csv(tmp_path / "semi" / "scores.csv")["a/obj1"]["J"]) < 100.0
    assert float(read_csv(tmp_path / "semi_ex" / "scores.csv")["a/obj1"]["J"]) == 100.0


def test_per_expression_on_a_mevis_root(tmp_path, capsys):
    fx = make_mevis_dataset(tmp_path / "mevis")
    ds = load_dataset("mevis", tmp_path / "mevis")
    preds = {v.name: {e: m.copy() for e, m in fx.gt[v.name].items()} for v in ds}
    preds["cats"]["1"][1:] = False                  # "two cats on the left" found in frame 0 only
    for v in ds:
        write_predictions(tmp_path / "pred", "mevis", v, preds[v.name])
    # a palette PNG (label 3) counts as foreground too
    write_label_png(tmp_path / "pred" / "road" / "0" / "00001.png", preds["road"]["0"][1].astype(np.uint8) * 3)
    assert main(["eval", "--gt", str(tmp_path / "mevis"), "--pred", str(tmp_path / "pred"),
                 "--protocol", "per-expression", "--out", str(tmp_path / "res")]) == 0
    rows = read_csv(tmp_path / "res" / "scores.csv")
    assert list(rows) == ["cats/0", "cats/1", "cats/2", "road/0"]
    j, f = ref_jf_stack(preds["cats"]["1"], fx.gt["cats"]["1"])
    assert float(rows["cats/1"]["J"]) == 100 * ref_statistics(j)[0] == 25.0
    assert float(rows["road/0"]["JF"]) == 100.0
    text = capsys.readouterr().out
    assert "per-expression: 2 videos, 4 expressions" in text
    assert f"J {100 * np.mean([1, 0.25, 1, 1]):.1f}" in text


def test_missing_prediction_names_the_file_and_writes_nothing(tmp_path, capsys):
    gt = davis_gt()
    for v in gt:
        write_folder(tmp_path / "gt", v, gt[v])
        write_folder(tmp_path / "pred", v, np.where(gt[v] == 255, 0, gt[v]).astype(np.uint8))
    (tmp_path / "pred" / "b" / "00003.png").unlink()
    out = tmp_path / "res" / "scores.csv"
    code = main(["eval", "--gt-annotations", str(tmp_path / "gt"), "--pred", str(tmp_path / "pred"),
                 "--protocol", "davis-semi", "--out", str(out.parent)])
    err = capsys.readouterr().err
    assert code == 2
    assert "lcrp eval: error:" in err and str(tmp_path / "pred" / "b" / "00003.png") in err
    assert "prediction file not found" in err and not out.exists()
    # a missing video folder is named too
    (tmp_path / "pred" / "a" / "00000.png").rename(tmp_path / "moved.png")
    code = main(["eval", "--gt-annotations", str(tmp_path / "gt"), "--pred", str(tmp_path / "pred"),
                 "--protocol", "davis-unsupervised", "--out", str(out.parent)])
    assert code == 2 and str(tmp_path / "pred" / "a" / "00000.png") in capsys.readouterr().err


@pytest.mark.parametrize("case", ["protocol", "label", "gt", "void-option"])
def test_bad_input_is_one_clear_error(tmp_path, capsys, case):
    gt = davis_gt()
    for v in gt:
        write_folder(tmp_path / "gt", v, gt[v])
        write_folder(tmp_path / "pred", v, np.where(gt[v] == 255, 0, gt[v]).astype(np.uint8))
    args = {"protocol": ["--protocol", "davis"], "label": ["--protocol", "davis-semi"],
            "gt": ["--protocol", "davis-semi"], "void-option": ["--protocol", "per-expression",
                                                                   "--void", "exclude"]}[case]
    gt_dir = tmp_path / ("missing" if case == "gt" else "gt")
    if case == "label":
        bad = gt["b"][2].copy()
        bad[0, 0] = 7
        write_binary_png(tmp_path / "pred" / "b" / "00001.png", gt["b"][1] > 0)   # 0/255: label 255
        write_label_png(tmp_path / "pred" / "b" / "00002.png", bad)
    if case == "void-option":
        make_mevis_dataset(tmp_path / "mevis")
        gt_dir = tmp_path / "mevis"
    gt_option = "--gt" if case == "void-option" else "--gt-annotations"
    code = main(["eval", gt_option, str(gt_dir), "--pred", str(tmp_path / "pred"), *args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    expected = {"protocol": "--protocol: expected one of",
                "label": f"{tmp_path / 'pred' / 'b' / '00001.png'}: predicted label(s) [7, 255]",
                "gt": f"{gt_dir}: ground-truth annotation folder not found",
                "void-option": "--void: the per-expression protocol has no void"}[case]
    assert expected in err


def test_parallel_jobs_give_the_same_scores(tmp_path, capsys):
    gt = davis_gt()
    for v in gt:
        write_folder(tmp_path / "gt", v, gt[v])
        pred = np.where(gt[v] == 255, 0, gt[v]).astype(np.uint8)
        write_folder(tmp_path / "pred", v, np.roll(pred, 1, axis=2))
    args = ["eval", "--gt-annotations", str(tmp_path / "gt"), "--pred", str(tmp_path / "pred"), "-q",
            "--protocol", "davis-unsupervised"]
    assert main([*args, "-j", "1", "--out", str(tmp_path / "one")]) == 0
    assert main([*args, "-j", "2", "--out", str(tmp_path / "two")]) == 0   # joblib, 2 processes
    assert (tmp_path / "one" / "scores.csv").read_text() == (tmp_path / "two" / "scores.csv").read_text()
    assert main([*args, "-j", "0", "--out", str(tmp_path / "zero")]) == 2
    capsys.readouterr()
    (tmp_path / "pred" / "b" / "00002.png").unlink()            # a worker's error: one line
    assert main([*args, "-j", "2", "--out", str(tmp_path / "three")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "prediction file not found" in err
    assert str(tmp_path / "pred" / "b" / "00002.png") in err and not (tmp_path / "three" / "scores.csv").exists()


def test_gt_option_names_what_it_wants(tmp_path, capsys):
    make_mevis_dataset(tmp_path / "mevis")
    (tmp_path / "pred").mkdir()
    code = main(["eval", "--gt-annotations", str(tmp_path / "mevis"), "--pred", str(tmp_path / "pred"),
                 "--protocol", "per-expression"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "--gt-annotations: a bare annotation folder holds no expressions; pass the dataset root" in err[0]
    # --gt is a dataset root for the DAVIS protocols too (ref-davis17 by default)
    code = main(["eval", "--gt", str(tmp_path / "mevis"), "--pred", str(tmp_path / "pred"),
                 "--protocol", "davis-unsupervised"])
    assert code == 2 and "meta_expressions/valid: split folder not found" in capsys.readouterr().err
