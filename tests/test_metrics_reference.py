"""`lcrp eval` beside the official evaluators, run unmodified (tests/reference/, see its README):
davis2017-evaluation (semi-supervised and unsupervised tasks), vos-benchmark, MeViS's
``tools/eval_mevis.py`` and ReferFormer's Ref-DAVIS17 label-map rule, on hand-made tricky
cases: void, ≥ 10 overlapping objects, 1-bit and RGB predictions, missing unscored frames,
one- and two-frame videos, odd sizes. J, F, J&F, recall and decay must agree to 1e-9; each case
also pins a hand-checkable value."""

from __future__ import annotations

import csv
import queue
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lcrp_core.cli import main
from lcrp_core.data import load_dataset
from lcrp_core.data.io import write_label_png
from lcrp_core.data.labels import label_maps, referformer_order
from lcrp_core.data.writers import write_predictions
from lcrp_core.metrics import decay_bins
from tests.fixtures import make_mevis_dataset
from tests.reference import load

pytest.importorskip("skimage", reason="the reference evaluators import skimage.morphology.disk")

STATS = ("J", "J_recall", "J_decay", "F", "F_recall", "F_decay")
TOL = 1e-9


# --- running both sides --------------------------------------------------------------------


def davis_root(root: Path, task: str, videos: dict[str, np.ndarray]) -> Path:
    """A DAVIS folder for davis2017-evaluation: ImageSets/2017/val.txt and the task's
    annotation folder of palette PNGs (frames are not needed with ``codalab=True``)."""
    sets = root / "ImageSets" / "2017"
    sets.mkdir(parents=True)
    (sets / "val.txt").write_text("".join(f"{v}\n" for v in videos))
    folder = "Annotations" if task == "semi-supervised" else "Annotations_unsupervised"
    for name, labels in videos.items():
        for t, label in enumerate(labels):
            write_label_png(root / folder / "480p" / name / f"{t:05d}.png", label)
    return root / folder / "480p"


def write_one_bit(path: Path, mask: np.ndarray) -> None:
    """A 1-bit PNG, as PIL writes a bool array."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(mask, dtype=bool)).save(path)
    assert Image.open(path).mode == "1"


def reference_davis(root: Path, task: str, results: Path) -> dict[str, float]:
    """davis2017-evaluation's dataset statistics (0–1), as its evaluation_method.py forms them."""
    DAVISEvaluation = load("davis2017.evaluation").DAVISEvaluation
    res = DAVISEvaluation(davis_root=str(root), task=task, gt_set="val", codalab=True).evaluate(str(results))
    j, f = res["J"], res["F"]
    out = {"J": np.mean(j["M"]), "J_recall": np.mean(j["R"]), "J_decay": np.mean(j["D"]),
           "F": np.mean(f["M"]), "F_recall": np.mean(f["R"]), "F_decay": np.mean(f["D"])}
    out["JF"] = (out["J"] + out["F"]) / 2
    return {k: float(v) for k, v in out.items()}


def ours(tmp_path: Path, gt: Path, pred: Path, protocol: str, *extra: str) -> dict[str, float]:
    """`lcrp eval`'s dataset statistics (0–1) from its per-item CSV (one group: plain means)."""
    out = tmp_path / f"ours-{len(list(tmp_path.glob('ours-*')))}"
    gt_option = "--gt" if protocol == "per-expression" else "--gt-annotations"
    assert main(["eval", gt_option, str(gt), "--pred", str(pred), "--protocol", protocol,
                 "--out", str(out), "-q", "-j", "1", *extra]) == 0
    with open(out / "scores.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    stats = {k: float(np.mean([float(r[k]) for r in rows])) / 100 for k in STATS}
    stats["JF"] = (stats["J"] + stats["F"]) / 2
    return stats


def assert_same(got: dict[str, float], want: dict[str, float], keys=("JF", *STATS)) -> None:
    for k in keys:
        assert abs(got[k] - want[k]) <= TOL, (k, got[k], want[k])


# --- davis-unsupervised (Ref-DAVIS17) --------------------------------------------------------


def void_strip_case() -> tuple[np.ndarray, np.ndarray]:
    """The issue's smallest case: one 8×8 frame, a 3×3 object, a 3×2 void strip beside it, a
    prediction covering both."""
    gt = np.zeros((1, 8, 8), np.uint8)
    gt[0, 2:5, 2:5] = 1
    gt[0, 2:5, 5:7] = 255
    pred = np.zeros_like(gt)
    pred[0, 2:5, 2:7] = 1
    return gt, pred


def test_unsupervised_void_is_excluded_as_in_davis2017(tmp_path):
    gt, pred = void_strip_case()
    gt_dir = davis_root(tmp_path / "davis", "unsupervised", {"v": gt})
    write_label_png(tmp_path / "pred" / "v" / "00000.png", pred[0])
    want = reference_davis(tmp_path / "davis", "unsupervised", tmp_path / "pred")
    got = ours(tmp_path, gt_dir, tmp_path / "pred", "davis-unsupervised")
    assert_same(got, want)
    assert got["JF"] == want["JF"] == 1.0
    # the other reading, on request (void as background): J = 9/15; the prediction has 16
    # boundary pixels, 12 of them within the radius (1 px) of the object's 12, all of which are
    # matched: P = 3/4, R = 1, F = 6/7; J&F = (0.6 + 6/7) / 2 = 72.9 % (the figure)
    background = ours(tmp_path, gt_dir, tmp_path / "pred", "davis-unsupervised", "--void", "background")
    assert background["J"] == 9 / 15 and abs(background["F"] - 6 / 7) < 1e-12
    assert round(100 * background["JF"], 1) == 72.9


def referformer_label_maps(per_object: dict[str, np.ndarray]) -> np.ndarray:
    """ReferFormer's Ref-DAVIS17 label maps, step for step, on binary masks (numpy for torch):

    tools/data/convert_davis_to_ytvos.py, read_expressions_from_txt:
        value = sorted(value, key = lambda e:e.__getitem__('obj_id'))      # obj_id: a string
    inference_davis.py, per annotator (objects in that order):
        anno_masks[anno_masks < 0.5] = 0.0
        background = 0.1 * torch.ones(1, t, h, w).to(args.device)
        anno_masks = torch.cat([background, anno_masks], dim=0)
        out_masks = torch.argmax(anno_masks, dim=0)
    (torch.argmax, like numpy's, returns the first maximal index.)
    """
    ordered = [per_object[k] for k in sorted(per_object)]
    anno_masks = np.stack(ordered).astype(np.float32)
    anno_masks[anno_masks < 0.5] = 0.0
    background = 0.1 * np.ones((1, *anno_masks.shape[1:]), np.float32)
    return np.argmax(np.concatenate([background, anno_masks], axis=0), axis=0).astype(np.uint8)


def many_objects(t: int = 2, h: int = 23, w: int = 41) -> np.ndarray:
    """T×H×W labels with 12 objects (ids 1..12): a 3×3 grid of boxes plus three bars."""
    labels = np.zeros((t, h, w), np.uint8)
    for k in range(9):
        y, x = 2 + 6 * (k // 3), 2 + 9 * (k % 3)
        labels[:, y:y + 4, x:x + 6] = k + 1
    labels[:, 20:22, 2:12] = 10
    labels[:, 20:22, 14:24] = 11
    labels[:, 2:18, 32:36] = 12
    return labels


def test_ten_or_more_objects_follow_referformers_overlap_rule(tmp_path):
    gt = many_objects()
    ids = list(range(1, 13))
    # predictions grow every object by one pixel on each side, so neighbours overlap; object 10
    # is also painted over object 2's box (as text "10" < "2": ReferFormer gives it to 10)
    masks = {}
    for o in ids:
        m = gt == o
        grown = m.copy()
        grown[:, 1:, :] |= m[:, :-1, :]
        grown[:, :-1, :] |= m[:, 1:, :]
        grown[:, :, 1:] |= m[:, :, :-1]
        grown[:, :, :-1] |= m[:, :, 1:]
        masks[o] = grown
    masks[10][:, 2:6, 11:17] = True
    ref = referformer_label_maps({str(o): masks[o] for o in ids})
    built = label_maps([(o, masks[o]) for o in ids], gt.shape)
    np.testing.assert_array_equal(built, ref)
    order = referformer_order(ids)
    assert order[:5] == [1, 10, 11, 12, 2]
    assert order.index(10) + 1 == 2 and order.index(2) + 1 == 5
    assert (built[:, 2:6, 11:17] == 2).all()                     # object 10 keeps object 2's box
    numeric = label_maps([(f"{o:02d}", masks[o]) for o in ids], gt.shape)   # numeric order
    assert (numeric[:, 2:6, 11:17] == 2).all() and numeric[0, 20, 2] == 10  # (labels = ids here)

    # the writer writes exactly these maps for a Ref-DAVIS17 video; davis2017 scores them as we do
    gt_dir = davis_root(tmp_path / "davis", "unsupervised", {"v": gt})
    for t, label in enumerate(built):
        write_label_png(tmp_path / "pred" / "v" / f"{t:05d}.png", label)
    want = reference_davis(tmp_path / "davis", "unsupervised", tmp_path / "pred")
    assert_same(ours(tmp_path, gt_dir, tmp_path / "pred", "davis-unsupervised"), want)
    assert want["J"] < 1


def test_ref_davis17_writer_output_is_referformers(tmp_path):
    """Through the real reader and writer: a video whose objects 2 and 10 overlap."""
    from tests.fixtures import write_jpegs, write_json

    root = tmp_path / "refdavis"
    gt = many_objects(t=3)
    names = [f"{t:05d}" for t in range(3)]
    write_jpegs(root / "JPEGImages" / "480p" / "v", names, np.zeros((3, *gt.shape[1:], 3), np.uint8))
    for t, label in enumerate(gt):
        write_label_png(root / "Annotations_unsupervised" / "480p" / "v" / f"{names[t]}.png", label)
    exps, i = {}, 0
    for o in sorted(map(str, range(1, 13))):                     # the converter's order
        for a in range(4):
            exps[str(i)] = {"exp": f"object {o} set {a}", "obj_id": o}
            i += 1
    write_json(root / "meta_expressions" / "valid" / "meta_expressions.json",
               {"videos": {"v": {"expressions": exps, "frames": names}}})
    video = load_dataset("ref-davis17", root).videos["v"]
    preds = {}
    for exp_id, e in video.expressions.items():
        m = gt == e.obj_ids[0]
        if e.obj_ids[0] == 10:
            m = m | (gt == 2)                                   # 10 claims all of object 2
        preds[exp_id] = m
    write_predictions(tmp_path / "pred", "ref-davis17", video, preds)
    for a in range(4):
        per_object = {str(e.obj_ids[0]): preds[k] for k, e in video.expressions.items() if e.anno_set == a}
        back = np.stack([np.asarray(Image.open(tmp_path / "pred" / f"anno_{a}" / "v" / f"{n}.png"))
                         for n in names])
        np.testing.assert_array_equal(back, referformer_label_maps(per_object))
    # davis2017 scores the written set as lcrp eval does
    gt_dir = davis_root(tmp_path / "davis", "unsupervised", {"v": gt})
    want = reference_davis(tmp_path / "davis", "unsupervised", tmp_path / "pred" / "anno_0")
    assert_same(ours(tmp_path, gt_dir, tmp_path / "pred" / "anno_0", "davis-unsupervised"), want)
    assert want["J"] < 1


def random_video(rng: np.random.Generator, t: int, h: int, w: int, n: int, void: bool) -> np.ndarray:
    labels = np.zeros((t, h, w), np.uint8)
    for o in range(1, n + 1):
        cy, cx = rng.integers(0, h), rng.integers(0, w)
        ry, rx = rng.integers(2, max(3, h // 3)), rng.integers(2, max(3, w // 3))
        for k in range(t):
            yy, xx = np.ogrid[:h, :w]
            labels[k][((yy - cy - k) / ry) ** 2 + ((xx - cx + k) / rx) ** 2 <= 1] = o
    labels[0, 0, :n] = np.arange(1, n + 1)          # every object in the first frame
    if void:
        labels[:, h // 2:h // 2 + 2, :] = 255
        labels[rng.random(labels.shape) < 0.02] = 255
    return labels


def perturb(rng: np.random.Generator, labels: np.ndarray, max_label: int) -> np.ndarray:
    pred = np.where(labels == 255, 0, labels).astype(np.uint8)
    pred = np.roll(pred, (int(rng.integers(-2, 3)), int(rng.integers(-2, 3))), axis=(1, 2))
    noise = rng.random(pred.shape) < 0.03
    pred[noise] = rng.integers(0, max_label + 1, size=int(noise.sum()))
    pred[rng.integers(0, len(pred))] = 0                        # one frame predicted empty
    return pred


@pytest.mark.parametrize("shape", [(1, 9, 13), (2, 17, 31), (6, 37, 53)])
def test_random_unsupervised_videos_with_void_match_davis2017(tmp_path, shape):
    rng = np.random.default_rng(sum(shape))
    t, h, w = shape
    gts = {f"v{i}": random_video(rng, t, h, w, n=2 + i, void=i != 1) for i in range(3)}
    gt_dir = davis_root(tmp_path / "davis", "unsupervised", gts)
    for name, labels in gts.items():
        pred = perturb(rng, labels, max_label=int(labels[0][labels[0] < 255].max()) + 1)  # one extra label
        for k, label in enumerate(pred):
            write_label_png(tmp_path / "pred" / name / f"{k:05d}.png", label)
    # one frame as a 1-bit PNG: label 1 only
    one_bit = gts["v0"][0] == 1
    write_one_bit(tmp_path / "pred" / "v0" / "00000.png", one_bit)
    want = reference_davis(tmp_path / "davis", "unsupervised", tmp_path / "pred")
    assert_same(ours(tmp_path, gt_dir, tmp_path / "pred", "davis-unsupervised"), want)


# --- davis-semi ------------------------------------------------------------------------------


def test_semi_reads_only_scored_frames_void_background_one_bit(tmp_path):
    rng = np.random.default_rng(7)
    gts = {"a": random_video(rng, 7, 37, 53, n=3, void=True),
           "b": random_video(rng, 4, 37, 53, n=1, void=False)}
    gt_dir = davis_root(tmp_path / "davis", "semi-supervised", gts)
    for name, labels in gts.items():
        pred = perturb(rng, labels, max_label=int(labels[0][labels[0] < 255].max()))
        for k in range(1, len(labels) - 1):                      # no first or last frame
            write_label_png(tmp_path / "pred" / name / f"{k:05d}.png", pred[k])
    write_one_bit(tmp_path / "pred" / "b" / "00001.png", gts["b"][1] == 1)
    want = reference_davis(tmp_path / "davis", "semi-supervised", tmp_path / "pred")
    got = ours(tmp_path, gt_dir, tmp_path / "pred", "davis-semi")
    assert_same(got, want)
    assert not (tmp_path / "pred" / "a" / "00000.png").exists()
    # a scored frame missing is still an error naming it
    (tmp_path / "pred" / "b" / "00002.png").unlink()
    assert main(["eval", "--gt-annotations", str(gt_dir), "--pred", str(tmp_path / "pred"), "--protocol",
                 "davis-semi", "-q", "-j", "1", "--out", str(tmp_path / "x")]) == 2


def test_semi_hand_checked_one_bit_frame(tmp_path):
    """3 frames of 6×6: object 1 a 2×2 square; only frame 1 is scored; its prediction is a
    1-bit PNG covering the square and one more pixel: J = 4/5, F = 1 (radius 1 covers it)."""
    gt = np.zeros((3, 6, 6), np.uint8)
    gt[:, 2:4, 2:4] = 1
    gt_dir = davis_root(tmp_path / "davis", "semi-supervised", {"s": gt})
    pred = gt[1] == 1
    pred[4, 2] = True
    write_one_bit(tmp_path / "pred" / "s" / "00001.png", pred)
    want = reference_davis(tmp_path / "davis", "semi-supervised", tmp_path / "pred")
    got = ours(tmp_path, gt_dir, tmp_path / "pred", "davis-semi")
    assert_same(got, want)
    assert got["J"] == 4 / 5 and got["F"] == 1.0


def test_semi_needs_three_frames_where_the_reference_crashes(tmp_path, capsys):
    gt = np.zeros((2, 6, 6), np.uint8)
    gt[:, 1:3, 1:3] = 1
    gt_dir = davis_root(tmp_path / "davis", "semi-supervised", {"s": gt})
    (tmp_path / "pred" / "s").mkdir(parents=True)
    with pytest.raises(IndexError):                               # masks_id[0] of no frames
        reference_davis(tmp_path / "davis", "semi-supervised", tmp_path / "pred")
    assert main(["eval", "--gt-annotations", str(gt_dir), "--pred", str(tmp_path / "pred"), "--protocol",
                 "davis-semi", "-q", "-j", "1", "--out", str(tmp_path / "x")]) == 2
    assert "needs at least 3, got 2" in capsys.readouterr().err


def test_semi_decay_beyond_255_frames_is_kept_correct(tmp_path):
    """davis2017's decay bins are uint8: with 256 scored frames (NumPy 2) its last bin edge
    wraps and its decay is NaN; ours is the mean of the first bin minus that of the last."""
    t = 258
    gt = np.zeros((t, 5, 6), np.uint8)
    gt[:, 1:4, 1:4] = 1
    gt_dir = davis_root(tmp_path / "davis", "semi-supervised", {"long": gt})
    pred = gt.copy()
    pred[1:40] = 0                                               # the first scored frames missed
    for k in range(1, t - 1):
        write_label_png(tmp_path / "pred" / "long" / f"{k:05d}.png", pred[k])
    want = reference_davis(tmp_path / "davis", "semi-supervised", tmp_path / "pred")
    got = ours(tmp_path, gt_dir, tmp_path / "pred", "davis-semi")
    assert_same(got, want, keys=("JF", "J", "F", "J_recall", "F_recall"))
    if np.lib.NumpyVersion(np.__version__) >= "2.0.0":
        assert np.isnan(want["J_decay"])
    j = np.r_[np.zeros(39), np.ones(256 - 39)]
    (a, b), (c, d) = decay_bins(256)[0], decay_bins(256)[-1]
    assert (a, b, c, d) == (0, 65, 191, 256)
    assert got["J_decay"] == j[a:b].mean() - j[c:d].mean() == -39 / 65


# --- vos-benchmark ---------------------------------------------------------------------------


def vos_benchmark(gt_dir: Path, pred: Path) -> dict[str, float]:
    benchmark = load("vos_benchmark.benchmark").benchmark
    jf, j, f, _ = benchmark([str(gt_dir)], [str(pred)], True, 1, verbose=False)
    return {"JF": jf[0] / 100, "J": j[0] / 100, "F": f[0] / 100}


def test_semi_matches_vos_benchmark_and_where_it_differs_follows_davis2017(tmp_path):
    rng = np.random.default_rng(3)
    gts = {"a": random_video(rng, 5, 31, 47, n=3, void=False),
           "b": random_video(rng, 3, 31, 47, n=2, void=False)}
    for labels in gts.values():                                  # every object in frame 1 too
        n = int(labels[0].max())
        labels[1, -1, :n] = np.arange(1, n + 1)
    gt_dir = davis_root(tmp_path / "davis", "semi-supervised", gts)
    for name, labels in gts.items():
        pred = perturb(rng, labels, max_label=int(labels[0].max()))
        for k in range(1, len(labels) - 1):
            write_label_png(tmp_path / "pred" / name / f"{k:05d}.png", pred[k])
    got = ours(tmp_path, gt_dir, tmp_path / "pred", "davis-semi")
    assert_same(got, vos_benchmark(gt_dir, tmp_path / "pred"), keys=("JF", "J", "F"))
    assert_same(got, reference_davis(tmp_path / "davis", "semi-supervised", tmp_path / "pred"))

    # void: vos-benchmark scores label 255 as one more object; davis2017 (and we) do not
    void = {"v": gts["a"].copy()}
    void["v"][:, 10:13, -3:] = 255
    gt_dir = davis_root(tmp_path / "davis2", "semi-supervised", void)
    for k in range(1, 4):
        write_label_png(tmp_path / "pred2" / "v" / f"{k:05d}.png", np.where(void["v"][k] == 255, 0, void["v"][k]))
    got = ours(tmp_path, gt_dir, tmp_path / "pred2", "davis-semi")
    assert got["JF"] == reference_davis(tmp_path / "davis2", "semi-supervised", tmp_path / "pred2")["JF"] == 1.0
    assert vos_benchmark(gt_dir, tmp_path / "pred2")["JF"] < 1.0


# --- MeViS (per-expression) ------------------------------------------------------------------


def reference_mevis(split_dir: Path, pred: Path) -> dict[str, float]:
    """tools/eval_mevis.py's eval_queue, run unmodified on one queue in this process (its
    __main__ block sets the module globals exp_dict and mask_dict the same way)."""
    import json

    eval_mevis = load("eval_mevis")
    eval_mevis.exp_dict = json.loads((split_dir / "meta_expressions.json").read_text())["videos"]
    eval_mevis.mask_dict = json.loads((split_dir / "mask_dict.json").read_text())
    q: queue.Queue = queue.Queue()
    for vid_name, vid in eval_mevis.exp_dict.items():
        for exp in vid["expressions"]:
            q.put([vid_name, exp])
    out: dict = {}
    eval_mevis.eval_queue(q, 0, out, str(pred))
    j = float(np.mean([v[0] for v in out.values()]))
    f = float(np.mean([v[1] for v in out.values()]))
    return {"J": j, "F": f, "JF": (j + f) / 2}


def test_mevis_rgb_palette_one_bit_and_grey_predictions_match_eval_mevis(tmp_path):
    fx = make_mevis_dataset(tmp_path / "mevis")
    ds = load_dataset("mevis", tmp_path / "mevis")
    preds = {v.name: {e: np.roll(m, 1, axis=2) for e, m in fx.gt[v.name].items()} for v in ds}
    for v in ds:
        write_predictions(tmp_path / "pred", "mevis", v, preds[v.name])  # 0/255 greyscale
    folder = tmp_path / "pred" / "cats"
    # RGB: OpenCV's greyscale PNG decoding (libpng's RGB-to-grey) reads (1, 0, 0) and (0, 1, 0)
    # as 0 (background) and (0, 2, 0) as 1 (foreground)
    rgb = np.zeros((*preds["cats"]["0"][1].shape, 3), np.uint8)
    rgb[preds["cats"]["0"][1]] = (200, 30, 10)
    rgb[0, 0], rgb[0, 1], rgb[0, 2] = (1, 0, 0), (0, 1, 0), (0, 2, 0)
    Image.fromarray(rgb, "RGB").save(folder / "0" / "00001.png")
    write_label_png(folder / "1" / "00002.png", preds["cats"]["1"][2].astype(np.uint8) * 3)  # palette
    write_one_bit(folder / "2" / "00000.png", preds["cats"]["2"][0])
    want = reference_mevis(tmp_path / "mevis" / "valid_u", tmp_path / "pred")
    got = ours(tmp_path, tmp_path / "mevis", tmp_path / "pred", "per-expression")
    assert_same(got, want, keys=("JF", "J", "F"))
    # frame 1 of cats/0: the (0, 2, 0) pixel is one more foreground pixel than the rolled box
    box = preds["cats"]["0"][1]
    gt = fx.gt["cats"]["0"][1]
    assert not box[0, 2] and not gt[0, 2]
    with open(tmp_path / "ours-0" / "scores.csv", newline="") as f:
        row = next(r for r in csv.DictReader(f) if r["key"] == "cats/0")
    j_frames = [(box_t & gt_t).sum() / (box_t | gt_t).sum() for box_t, gt_t in
                zip(preds["cats"]["0"], fx.gt["cats"]["0"])]
    j_frames[1] = (box & gt).sum() / ((box | gt).sum() + 1)
    assert abs(float(row["J"]) / 100 - np.mean(j_frames)) <= TOL
