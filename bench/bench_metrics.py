"""Cost of scoring one trial with the Evaluator versus a straightforward per-frame
implementation of the same definitions (tests/test_metrics.py's reference: one full-frame
boundary map and dilation per side, frame and pair), on the same in-memory masks: one
480×854 video of 200 frames with 4 moving, deforming objects, predictions perturbed from the
ground truth (shifts, erosion/dilation, dropped frames, spurious blobs, swapped objects).

Two protocols: per-expression (one expression per object) and davis-unsupervised (one
annotation set: a 4×4 Hungarian matching). The Evaluator is timed cold (ground truth prepared
in the call) and warm (a second trial's predictions against the prepared ground truth: what a
sweep pays per trial). Target: warm ≥ 3× faster than the reference, differences < 1e-9.
Writes bench/results/metrics.json.

Run: python -m bench metrics
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from bench import write_result
from lcrp_core.data.model import Dataset, Expression, GroundTruthObjects, Video
from lcrp_core.metrics import Evaluator, PreparedGT, PreparedPred, score_pair
from tests.test_metrics import ref_jf_stack, ref_statistics

H, W, T, OBJECTS = 480, 854, 200, 4


def _objects(rng: np.random.Generator) -> np.ndarray:
    """O×T×H×W bool: ellipses drifting across the frame, breathing in size; object 3 leaves
    the frame for a while; objects overlap (later ids on top)."""
    masks = np.zeros((OBJECTS, T, H, W), dtype=np.uint8)
    for o in range(OBJECTS):
        cy, cx = rng.uniform(80, H - 80), rng.uniform(100, W - 100)
        vy, vx = rng.uniform(-0.8, 0.8), rng.uniform(-1.5, 1.5)
        ry, rx = rng.uniform(25, 90), rng.uniform(30, 120)
        for t in range(T):
            if o == 3 and 100 <= t < 140:
                continue
            y = (cy + vy * t) % H
            x = (cx + vx * t) % W
            s = 1 + 0.2 * np.sin(t / 9 + o)
            cv2.ellipse(masks[o, t], (int(x), int(y)), (int(rx * s), int(ry / s)), 10.0 * o + t / 4,
                        0, 360, 1, -1)
    out = masks.astype(bool)
    for o in range(OBJECTS - 1):  # occlusion: a later object covers an earlier one
        out[o] &= ~out[o + 1:].any(axis=0)
    return out


def _perturb(rng: np.random.Generator, gt: np.ndarray) -> np.ndarray:
    """T×H×W bool prediction near a T×H×W GT track."""
    pred = np.empty_like(gt)
    kernel = np.ones((5, 5), np.uint8)
    for t in range(T):
        m = gt[t].astype(np.uint8)
        u = rng.random()
        if u < 0.05:
            pred[t] = False
            continue
        if u < 0.35:
            m = cv2.dilate(m, kernel)
        elif u < 0.65:
            m = cv2.erode(m, kernel)
        m = np.roll(m, (int(rng.integers(-6, 7)), int(rng.integers(-6, 7))), axis=(0, 1))
        if rng.random() < 0.1:
            cv2.circle(m, (int(rng.integers(0, W)), int(rng.integers(0, H))), int(rng.integers(5, 40)), 1, -1)
        pred[t] = m.astype(bool)
    return pred


def _trial(rng: np.random.Generator, objects: np.ndarray) -> dict[str, np.ndarray]:
    """Predictions keyed by exp_id ("0".."3" refer to objects 1..4); two are swapped."""
    preds = {str(o): _perturb(rng, objects[o]) for o in range(OBJECTS)}
    preds["1"], preds["2"] = preds["2"], preds["1"]
    return preds


def _dataset(objects: np.ndarray, protocol: str) -> Dataset:
    labels = np.zeros((T, H, W), dtype=np.uint8)
    for o in range(OBJECTS):
        labels[objects[o]] = o + 1
    exps = {str(o): Expression(str(o), f"object {o + 1}", (o + 1,)) for o in range(OBJECTS)}
    video = Video(
        "bench", [f"{t:05d}" for t in range(T)], exps,
        frame_loader=lambda t: np.zeros((H, W, 3), np.uint8),
        mask_loader=lambda e: labels == e.obj_ids[0],
        objects_loader=lambda: GroundTruthObjects(tuple(range(1, OBJECTS + 1)), labels),
    )
    return Dataset("ref-davis17", Path("."), protocol, {"bench": video})


def _reference_per_expression(objects, preds):
    items = []
    for o in range(OBJECTS):
        j, f = ref_jf_stack(preds[str(o)], objects[o])
        items.append((ref_statistics(j)[0], ref_statistics(f)[0]))
    return np.mean([i[0] for i in items]), np.mean([i[1] for i in items])


def _reference_unsupervised(objects, preds):
    labels = np.zeros((T, H, W), dtype=np.uint8)
    for o in reversed(range(OBJECTS)):          # the smallest obj_id wins overlaps
        labels[preds[str(o)]] = o + 1
    n = max(int(labels.max()), OBJECTS)
    j = np.zeros((n, OBJECTS, T))
    f = np.zeros_like(j)
    for r in range(n):
        for c in range(OBJECTS):
            j[r, c], f[r, c] = ref_jf_stack(labels == r + 1, objects[c])
    rows, cols = linear_sum_assignment(-(np.mean(j, axis=2) + np.mean(f, axis=2)) / 2)
    jm = [ref_statistics(j[r, c])[0] for r, c in zip(rows, cols)]
    fm = [ref_statistics(f[r, c])[0] for r, c in zip(rows, cols)]
    return np.mean(jm), np.mean(fm)


def _timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def main() -> dict:
    rng = np.random.default_rng(0)
    objects = _objects(rng)
    trial1, trial2 = _trial(rng, objects), _trial(rng, objects)

    # per-frame agreement of the prepared path with the reference (trial 2, every object)
    frame_diff_j = frame_diff_f = 0.0
    for o in range(OBJECTS):
        j, f = score_pair(PreparedGT.build(objects[o]), PreparedPred.build(trial2[str(o)]))
        j_ref, f_ref = ref_jf_stack(trial2[str(o)], objects[o])
        frame_diff_j = max(frame_diff_j, float(np.abs(j - j_ref).max()))
        frame_diff_f = max(frame_diff_f, float(np.abs(f - f_ref).max()))

    result: dict = {"height": H, "width": W, "frames": T, "objects": OBJECTS,
                    "max_frame_diff_J": frame_diff_j, "max_frame_diff_F": frame_diff_f}
    reference = {"per-expression": _reference_per_expression,
                 "davis-unsupervised": _reference_unsupervised}
    print(f"metrics: one {H}×{W} video, {T} frames, {OBJECTS} objects")
    print(f"  {'protocol':<20}{'reference':>11}{'cold':>9}{'warm':>9}{'warm speedup':>14}"
          f"{'|ΔJ|':>10}{'|ΔF|':>10}")
    for protocol, ref_fn in reference.items():
        ev = Evaluator(_dataset(objects, protocol), protocol)
        _, t_cold = _timed(ev.score_video, "bench", trial1)
        score, t_warm = _timed(ev.score_video, "bench", trial2)
        (j_ref, f_ref), t_ref = _timed(ref_fn, objects, trial2)
        s = ev.summarize([score])
        dj, df = abs(s.J / 100 - j_ref), abs(s.F / 100 - f_ref)
        result[protocol] = {"reference_s": t_ref, "cold_s": t_cold, "warm_s": t_warm,
                            "warm_speedup": t_ref / t_warm, "cold_speedup": t_ref / t_cold,
                            "J": s.J, "F": s.F, "abs_diff_J": dj, "abs_diff_F": df}
        print(f"  {protocol:<20}{t_ref:10.2f}s{t_cold:8.2f}s{t_warm:8.2f}s{t_ref / t_warm:13.1f}x"
              f"{dj:10.1e}{df:10.1e}")
    print(f"  per-frame max |ΔJ| {frame_diff_j:.1e}, |ΔF| {frame_diff_f:.1e} (target < 1e-9); "
          f"target warm speedup >= 3x")
    write_result("metrics", result)
    return result


if __name__ == "__main__":
    main()
