"""Protocols and the Evaluator: hand-computed cases (per-expression unions, Hungarian matching,
unmatched objects, semi-supervised frame exclusion, Ref-DAVIS17 set averaging, void), the
sweep contract (GT prepared once, scores combinable in any order), errors, and a randomized
comparison with a straightforward reference of each protocol written here."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from lcrp_core.data import load_dataset
from lcrp_core.data.labels import label_maps
from lcrp_core.data.model import Dataset, Expression, GroundTruthObjects, Video
from lcrp_core.errors import ConfigError, DataError
from lcrp_core.metrics import (
    MAX_PROPOSALS,
    PROTOCOLS,
    Evaluator,
    ItemScore,
    Stats,
    Summary,
    VideoScore,
)
from tests.fixtures import make_davis_dataset, make_mevis_dataset
from tests.helpers import random_masks, ref_jf_stack, ref_statistics


def make_video(name: str, labels: np.ndarray, expressions: dict[str, Expression],
               calls: Counter | None = None) -> Video:
    """A video whose ground truth is T×H×W uint8 label maps (0 background, 255 void);
    ``calls`` counts how often each ground-truth loader runs."""
    calls = Counter() if calls is None else calls
    first = np.where(labels[0] == 255, 0, labels[0])
    ids = tuple(range(1, int(first.max()) + 1))

    def masks(expr: Expression) -> np.ndarray:
        calls[f"{name}/mask"] += 1
        return np.isin(labels, expr.obj_ids)

    def objects() -> GroundTruthObjects:
        calls[f"{name}/objects"] += 1
        return GroundTruthObjects(ids, labels)

    return Video(name, [f"{t:05d}" for t in range(len(labels))], expressions,
                 frame_loader=lambda t: np.zeros((*labels.shape[1:], 3), np.uint8),
                 mask_loader=masks, objects_loader=objects)


def dataset(*videos: Video) -> Dataset:
    return Dataset("ref-davis17", Path("/nonexistent"), "valid", {v.name: v for v in videos})


def exps_one_set(*obj_ids: int) -> dict[str, Expression]:
    return {str(i): Expression(str(i), f"object {o}", (o,)) for i, o in enumerate(obj_ids)}


def exps_four_sets(*obj_ids: int) -> dict[str, Expression]:
    """ReferFormer's order: per object, sets 0..3."""
    out = {}
    for o in obj_ids:
        for a in range(4):
            exp_id = str(len(out))
            out[exp_id] = Expression(exp_id, f"object {o} set {a}", (o,), anno_set=a)
    return out


def two_objects(t: int = 4) -> np.ndarray:
    """T×8×8 label maps: object 1 a 3×3 square top-left, object 2 a 2×4 bar bottom-right."""
    labels = np.zeros((t, 8, 8), np.uint8)
    labels[:, 1:4, 1:4] = 1
    labels[:, 5:7, 3:7] = 2
    return labels


# --- per-expression --------------------------------------------------------------------------


def test_per_expression_scores_the_union_over_all_frames():
    labels = two_objects(t=2)
    exps = {"both": Expression("both", "the two things", (1, 2)),
            "one": Expression("one", "the square", (1,))}
    ev = Evaluator(dataset(make_video("v", labels, exps)), "per-expression")
    union = labels > 0
    pred_both = union.copy()
    pred_both[1] = False                      # frame 1 missed: J = F = 0 there
    vs = ev.score_video("v", {"both": pred_both, "one": labels == 1})
    s = ev.summarize([vs])
    assert isinstance(s, Summary) and s.protocol == "per-expression"
    assert s.per_item == {"v/both": {"J": 50.0, "F": 50.0, "JF": 50.0},
                          "v/one": {"J": 100.0, "F": 100.0, "JF": 100.0}}
    assert (s.J, s.F, s.JF) == (75.0, 75.0, 75.0)
    # recall: frames > 0.5 → 1/2 and 2/2; decay with N=2: bins [0] [0,1] [1] [1] → 1 − 0 and 0
    assert (s.J_recall, s.J_decay, s.F_recall, s.F_decay) == (75.0, 50.0, 75.0, 50.0)
    assert s.per_video == {"v": {"J": 75.0, "F": 75.0, "JF": 75.0}}
    # predicting only object 1 for "both" is scored against the union
    s = ev.summarize([ev.score_video("v", {"both": labels == 1, "one": labels == 1})])
    assert s.per_item["v/both"]["J"] == 100 * (9 / 17)


# --- davis-unsupervised ----------------------------------------------------------------------


def test_hungarian_matching_fixes_swapped_ids():
    labels = two_objects()
    video = make_video("v", labels, exps_one_set(1, 2))
    swapped = {"0": labels == 2, "1": labels == 1}   # expression of object 1 segments object 2
    ev = Evaluator(dataset(video), "davis-unsupervised")
    s = ev.summarize([ev.score_video(video, swapped)])
    assert (s.J, s.F, s.JF) == (100.0, 100.0, 100.0)
    assert set(s.per_item) == {"v/anno0/obj1", "v/anno0/obj2"}
    per_expr = Evaluator(dataset(video), "per-expression")
    assert per_expr.summarize([per_expr.score_video(video, swapped)]).J == 0.0   # no matching there


def test_label_maps_follow_referformer_text_order():
    a = np.zeros((1, 2, 3), bool)
    a[0, 0, :2] = True
    b = np.zeros((1, 2, 3), bool)
    b[0, 0, 1:] = True
    np.testing.assert_array_equal(label_maps([(2, b), (1, a)], (1, 2, 3))[0], [[1, 1, 2], [0, 0, 0]])
    # as text "10" < "2": object 10 is ranked first (label 1) and keeps the overlap
    np.testing.assert_array_equal(label_maps([(2, a), (10, b)], (1, 2, 3))[0], [[2, 1, 1], [0, 0, 0]])


def test_unmatched_ground_truth_objects_score_against_empty_masks():
    labels = two_objects()
    labels[:, 0, 6:8] = 3                          # a third object with no expression
    video = make_video("v", labels, exps_one_set(1, 2))
    ev = Evaluator(dataset(video), "davis-unsupervised")
    s = ev.summarize([ev.score_video(video, {"0": labels == 1, "1": labels == 2})])
    assert s.per_item["v/anno0/obj3"] == {"J": 0.0, "F": 0.0, "JF": 0.0}
    assert s.J == 100 * (2 / 3) and s.F == 100 * (2 / 3)


def test_extra_predicted_objects_are_left_unmatched():
    labels = two_objects()
    video = make_video("v", labels, exps_one_set(1, 2))
    ev = Evaluator(dataset(video), "davis-unsupervised")
    pred = np.where(labels == 1, 3, labels).astype(np.uint8)   # object 1 predicted as label 3
    pred[:, 7, 0] = 1                                           # label 1: a stray pixel
    s = ev.summarize([ev.score_label_maps(video, {0: pred})])
    assert s.J == 100.0 and s.F == 100.0


def test_ref_davis_averages_the_four_annotation_sets():
    labels = two_objects()
    video = make_video("v", labels, exps_four_sets(1, 2))
    ev = Evaluator(dataset(video), "davis-unsupervised")
    preds = {exp_id: labels == e.obj_ids[0] for exp_id, e in video.expressions.items()}
    preds["5"] = np.zeros_like(labels, bool)   # object 2 (exp 4 + a) in set 1 is missed
    assert video.expressions["5"].anno_set == 1 and video.expressions["5"].obj_ids == (2,)
    vs = ev.score_video(video, preds)
    assert [it.key for it in vs.items][:2] == ["v/anno0/obj1", "v/anno0/obj2"]
    assert [it.group for it in vs.items] == [0, 0, 1, 1, 2, 2, 3, 3]
    s = ev.summarize([vs])
    assert s.per_item["v/anno1/obj2"]["J"] == 0.0
    assert s.J == 100 * np.mean([1.0, 0.5, 1.0, 1.0]) == 87.5


def test_dataset_means_are_taken_per_set_then_over_sets():
    ds = dataset(make_video("a", two_objects(), {}), make_video("b", two_objects(), {}))
    one, zero = Stats(1.0, 1.0, 0.0), Stats(0.0, 0.0, 0.0)
    scores = [VideoScore("davis-unsupervised", "a", (ItemScore("a/anno0/obj1", 0, one, one),
                                                     ItemScore("a/anno1/obj1", 1, zero, zero))),
              VideoScore("davis-unsupervised", "b", (ItemScore("b/anno1/obj1", 1, zero, zero),
                                                     ItemScore("b/anno1/obj2", 1, zero, zero)))]
    s = Evaluator(ds, "davis-unsupervised").summarize(scores)
    assert s.J == 50.0                       # (mean of set 0 = 1, of set 1 = 0) / 2, not 1/4
    assert s.per_video == {"a": {"J": 50.0, "F": 50.0, "JF": 50.0}, "b": {"J": 0.0, "F": 0.0, "JF": 0.0}}


def test_void_is_excluded_in_unsupervised_and_background_in_semi_by_default():
    labels = two_objects(t=5)
    labels[:, 0, :] = 255                        # a void band along the top row
    video = make_video("v", labels, exps_one_set(1, 2))
    pred = {"0": (labels == 1) | (labels == 255), "1": labels == 2}   # object 1 spills into void
    ev = Evaluator(dataset(video), "davis-unsupervised")
    assert ev.void == "exclude"
    assert ev.summarize([ev.score_video(video, pred)]).J == 100.0     # as davis2017-evaluation
    ev = Evaluator(dataset(video), "davis-unsupervised", void="background")
    s = ev.summarize([ev.score_video(video, pred)])
    assert s.per_item["v/anno0/obj1"]["J"] == 100 * (9 / 17)
    semi = {"1": pred["0"], "2": pred["1"]}
    ev = Evaluator(dataset(video), "davis-semi")
    assert ev.void == "background"
    assert ev.summarize([ev.score_video(video, semi)]).per_item["v/obj1"]["J"] == 100 * (9 / 17)
    ev = Evaluator(dataset(video), "davis-semi", void="exclude")
    assert ev.summarize([ev.score_video(video, semi)]).J == 100.0


def test_too_many_predicted_objects_is_an_error():
    labels = two_objects()
    video = make_video("v", labels, exps_one_set(1, 2))
    pred = labels.copy()
    pred[:, 7, 7] = MAX_PROPOSALS + 1
    with pytest.raises(DataError, match="at most 20"):
        Evaluator(dataset(video), "davis-unsupervised").score_label_maps(video, {0: pred})


# --- davis-semi ------------------------------------------------------------------------------


def test_semi_supervised_leaves_out_the_first_and_last_frames():
    labels = two_objects(t=5)
    video = make_video("v", labels, {})
    ev = Evaluator(dataset(video), "davis-semi")
    preds = {"1": labels == 1, "2": labels == 2}
    preds["1"][0] = preds["1"][-1] = False           # wrong only where it is not scored
    preds["2"][0] = True
    s = ev.summarize([ev.score_video(video, preds)])
    assert (s.J, s.F) == (100.0, 100.0)
    assert set(s.per_item) == {"v/obj1", "v/obj2"}
    preds["1"][2] = False                            # frames 1..3 scored: one of three missed
    s = ev.summarize([ev.score_video(video, preds)])
    assert s.per_item["v/obj1"]["J"] == 100 * (2 / 3)
    with pytest.raises(DataError, match="object id"):
        ev.score_video(video, {"1": preds["1"]})
    short = make_video("s", two_objects(t=2), {})
    with pytest.raises(DataError, match="at least 3"):
        Evaluator(dataset(short), "davis-semi").score_video(short, {"1": labels[:2] == 1,
                                                                   "2": labels[:2] == 2})


def test_semi_object_label_maps_score_as_the_per_object_masks():
    rng = np.random.default_rng(8)
    labels = two_objects(t=6)
    labels[:, 0, :3] = 255
    video = make_video("v", labels, {})
    pred = np.where(rng.random(labels.shape) < 0.2, rng.integers(0, 3, labels.shape), labels)
    pred = np.where(pred == 255, 1, pred).astype(np.uint8)
    for void in ("background", "exclude"):
        ev = Evaluator(dataset(video), "davis-semi", void=void)
        by_masks = ev.score_video(video, {"1": pred == 1, "2": pred == 2})
        assert ev.score_object_labels(video, pred) == by_masks
        assert ev.score_object_labels(video, pred[1:-1]) == by_masks     # only the scored frames
    with pytest.raises(DataError, match=r"v: label maps of shape \(5, 8, 8\), expected"):
        ev.score_object_labels(video, pred[1:])
    with pytest.raises(ConfigError, match="davis-semi"):
        Evaluator(dataset(video), "davis-unsupervised").score_object_labels(video, pred)


# --- the sweep contract ----------------------------------------------------------------------


def test_ground_truth_is_prepared_once_per_video():
    calls: Counter = Counter()
    labels = two_objects()
    exps = {"x": Expression("x", "one", (1,)), "y": Expression("y", "one again", (1,)),
            "z": Expression("z", "two", (2,))}
    video = make_video("v", labels, exps, calls)
    ev = Evaluator(dataset(video), "per-expression")
    preds = {k: labels == e.obj_ids[0] for k, e in exps.items()}
    first = ev.score_video(video, preds)
    assert ev.score_video(video, preds) == first
    assert calls == {"v/mask": 2}        # expressions x and y refer to the same object
    ev2 = Evaluator(dataset(video), "davis-unsupervised")
    for _ in range(3):
        ev2.score_video(video, {"x": labels == 1, "y": labels == 1, "z": labels == 2})
    assert calls["v/objects"] == 1


def test_cache_bound_drops_least_recently_used_videos():
    calls: Counter = Counter()
    videos = [make_video(n, two_objects(), exps_one_set(1, 2), calls) for n in "ab"]
    ev = Evaluator(dataset(*videos), "davis-unsupervised", cache_bytes=1)
    preds = {"0": two_objects() == 1, "1": two_objects() == 2}
    scores = [ev.score_video(v, preds) for v in videos + videos]
    assert calls == {"a/objects": 2, "b/objects": 2}
    assert scores[:2] == scores[2:]


def test_scores_combine_in_any_order():
    rng = np.random.default_rng(3)
    videos, preds = [], {}
    for n in "abcd":
        labels = np.zeros((5, 20, 30), np.uint8)
        for o in (1, 2):
            labels[random_masks(rng, 5, 20, 30, blobs=1)] = o
        labels[0, 0, 0], labels[0, 19, 29] = 1, 2
        videos.append(make_video(n, labels, exps_four_sets(1, 2)))
        preds[n] = {e: random_masks(rng, 5, 20, 30) for e in videos[-1].expressions}
    ev = Evaluator(dataset(*videos), "davis-unsupervised")
    scores = [ev.score_video(v, preds[v.name]) for v in videos]
    forward = ev.summarize(scores).to_dict()
    assert ev.summarize(scores[::-1]).to_dict() == forward
    assert ev.summarize([scores[2], scores[0], scores[3], scores[1]]).to_dict() == forward
    assert list(forward["per_video"]) == ["a", "b", "c", "d"]


# --- errors ----------------------------------------------------------------------------------


def test_errors_name_what_is_wrong():
    labels = two_objects()
    video = make_video("v", labels, exps_one_set(1, 2))
    ds = dataset(video)
    with pytest.raises(ConfigError, match="protocol.*expected one of"):
        Evaluator(ds, "davis")
    with pytest.raises(ConfigError, match="void: the per-expression protocol has no void"):
        Evaluator(ds, "per-expression", void="exclude")
    with pytest.raises(ConfigError, match=r"void: expected one of \['exclude', 'background'\]"):
        Evaluator(ds, "davis-semi", void="ignore")
    ev = Evaluator(ds, "per-expression")
    with pytest.raises(DataError, match=r"v: .*missing expression\(s\) \['1'\]"):
        ev.score_video(video, {"0": labels == 1})
    with pytest.raises(DataError, match=r"unknown expression\(s\) \['9'\]"):
        ev.score_video(video, {"0": labels == 1, "1": labels == 2, "9": labels == 2})
    with pytest.raises(DataError, match=r"v/1: prediction shape \(4, 8, 7\), expected \(4, 8, 8\)"):
        ev.score_video(video, {"0": labels == 1, "1": (labels == 2)[:, :, :7]})
    with pytest.raises(DataError, match="'w' is not in the dataset"):
        ev.score_video("w", {})
    vs = ev.score_video(video, {"0": labels == 1, "1": labels == 2})
    with pytest.raises(DataError, match="scored twice"):
        ev.summarize([vs, vs])
    with pytest.raises(DataError, match="nothing to summarize"):
        ev.summarize([])
    with pytest.raises(ConfigError, match="cannot be combined"):
        Evaluator(ds, "davis-unsupervised").summarize([vs])
    with pytest.raises(ConfigError, match="davis-unsupervised"):
        ev.score_label_maps(video, {0: labels})
    assert PROTOCOLS == ("per-expression", "davis-unsupervised", "davis-semi")


# --- the real readers ------------------------------------------------------------------------


def test_ref_davis17_reader_ground_truth_scores_perfectly(tmp_path):
    fx = make_davis_dataset(tmp_path)
    ds = load_dataset("ref-davis17", tmp_path)
    ev = Evaluator(ds, "davis-unsupervised")
    s = ev.summarize([ev.score_video(v, fx.gt[v.name]) for v in ds])
    assert (s.J, s.F) == (100.0, 100.0)
    # objects come from the first frame (davis2017-evaluation): bike's object 3 enters later
    assert sorted(s.per_item) == sorted(f"{v}/anno{a}/obj{o}" for v, objs in
                                        (("bike", (1, 2)), ("swan", (1,))) for a in range(4) for o in objs)


def test_mevis_reader_per_expression(tmp_path):
    fx = make_mevis_dataset(tmp_path)
    ds = load_dataset("mevis", tmp_path)
    ev = Evaluator(ds, "per-expression")
    s = ev.summarize([ev.score_video(v, fx.gt[v.name]) for v in ds])
    assert (s.J, s.F, len(s.per_item)) == (100.0, 100.0, 4)
    cats = {k: np.zeros_like(m) for k, m in fx.gt["cats"].items()}
    s = ev.summarize([ev.score_video("cats", cats)])
    # every cats expression has a non-empty union in every frame: all-empty predictions score 0
    assert (s.J, s.F) == (0.0, 0.0)


# --- randomized comparison with a straightforward reference ----------------------------------


def ref_unsupervised(gt_labels: np.ndarray, pred_labels: np.ndarray, void_excluded: bool):
    """davis2017-evaluation's _evaluate_unsupervised on one video: per-object means in
    assignment order."""
    first = np.where(gt_labels[0] == 255, 0, gt_labels[0])
    n_gt = int(first.max())
    void = (gt_labels == 255) if void_excluded else None
    n = max(int(pred_labels.max()), n_gt)
    j = np.zeros((n, n_gt, len(gt_labels)))
    f = np.zeros_like(j)
    for r in range(n):
        for c in range(n_gt):
            j[r, c], f[r, c] = ref_jf_stack(pred_labels == r + 1, gt_labels == c + 1, void)
    rows, cols = linear_sum_assignment(-(np.mean(j, axis=2) + np.mean(f, axis=2)) / 2)
    return [(ref_statistics(j[r, c]), ref_statistics(f[r, c])) for r, c in zip(rows, cols)]


@pytest.mark.parametrize("void", ["background", "exclude"])
def test_random_ref_davis_matches_the_reference(void):
    exclude_void = void == "exclude"
    rng = np.random.default_rng(11 + exclude_void)
    videos, preds, gts = [], {}, {}
    for n in ("v1", "v2"):
        labels = np.zeros((4, 24, 36), np.uint8)
        for o in (1, 2, 3):
            labels[random_masks(rng, 4, 24, 36, blobs=1)] = o
        labels[0, 0, :3] = (1, 2, 3)
        labels[rng.random(labels.shape) < 0.03] = 255
        gts[n] = labels
        videos.append(make_video(n, labels, exps_four_sets(1, 2, 3)))
        preds[n] = {e: random_masks(rng, 4, 24, 36) if rng.random() < 0.5 else
                    np.roll(labels == videos[-1].expressions[e].obj_ids[0], 1, axis=2)
                    for e in videos[-1].expressions}
    ev = Evaluator(dataset(*videos), "davis-unsupervised", void=void)
    s = ev.summarize([ev.score_video(v, preds[v.name]) for v in videos])

    per_set = []
    for a in range(4):
        items = []
        for v in videos:
            pairs = [(e.obj_ids[0], preds[v.name][k]) for k, e in v.expressions.items() if e.anno_set == a]
            items += ref_unsupervised(gts[v.name], label_maps(pairs, gts[v.name].shape), exclude_void)
        per_set.append([np.mean([it[0][k] for it in items]) for k in range(3)] +
                       [np.mean([it[1][k] for it in items]) for k in range(3)])
    expected = 100 * np.mean(np.array(per_set), axis=0)
    got = [s.J, s.J_recall, s.J_decay, s.F, s.F_recall, s.F_decay]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert s.J == 100 * np.mean([p[0] for p in per_set])


def test_random_per_expression_matches_the_reference():
    rng = np.random.default_rng(5)
    labels = np.zeros((6, 30, 40), np.uint8)
    for o in (1, 2, 3):
        labels[random_masks(rng, 6, 30, 40, blobs=2)] = o
    exps = {"a": Expression("a", "1", (1,)), "b": Expression("b", "1+3", (1, 3)),
            "c": Expression("c", "2", (2,))}
    video = make_video("v", labels, exps)
    preds = {k: random_masks(rng, 6, 30, 40) | np.isin(labels, e.obj_ids) & (rng.random((6, 1, 1)) < 0.5)
             for k, e in exps.items()}
    ev = Evaluator(dataset(video), "per-expression")
    s = ev.summarize([ev.score_video(video, preds)])
    ref = [ref_jf_stack(preds[k], np.isin(labels, e.obj_ids)) for k, e in exps.items()]
    assert s.J == 100 * np.mean([ref_statistics(j)[0] for j, _ in ref])
    assert s.F == 100 * np.mean([ref_statistics(f)[0] for _, f in ref])
    assert s.J_decay == 100 * np.mean([ref_statistics(j)[2] for j, _ in ref])
