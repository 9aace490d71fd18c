"""Two measurements of the metrics.

1. ``lcrp eval`` beside the official evaluators (the issue-10 goal), side by side in one run,
   on the same PNG folders: 5 videos × 50 frames at 480×854 with 3 moving objects (palette
   label maps, DAVIS layout), the semi-supervised protocol:

   - davis2017-evaluation: ``DAVISEvaluation(..., task="semi-supervised").evaluate(...)``;
   - vos-benchmark: its per-video ``VideoEvaluator`` over the videos in this process (what
     ``benchmark(..., num_processes=1)`` maps over its one-process pool, without the pool);
   - ``lcrp eval --protocol davis-semi -j 1`` through ``lcrp_core.cli.main``.

   Both references run unmodified from tests/reference/ (see its README); every tool runs in
   this process with its imports done beforehand and OpenCV on one thread, so the ratios are
   one core against one core (CPU time; wall time is printed too). Each tool runs twice,
   interleaved with the others, and its faster run counts. Goal: ≥ 10× faster than
   davis2017-evaluation and ≥ 5× than vos-benchmark; the three J&F must agree (< 1e-9).
   Then ``lcrp eval -j <cores>`` (joblib, one process per video) and the start-up of the
   ``lcrp eval`` command itself (a subprocess on a one-video, three-frame input), reported
   separately.

2. The sweep path: the Evaluator against a straightforward per-frame implementation of the
   same definitions (tests/helpers.py's reference: one full-frame boundary map and
   dilation per side, frame and pair), on the same in-memory masks: one 480×854 video of 200
   frames with 4 moving, deforming objects, predictions perturbed from the ground truth
   (shifts, erosion/dilation, dropped frames, spurious blobs, swapped objects); per-expression
   and davis-unsupervised (one annotation set: a 4×4 Hungarian matching), timed cold (ground
   truth prepared in the call) and warm (a second trial against the prepared ground truth:
   what a sweep pays per trial). Target: warm ≥ 3× faster, differences < 1e-9.

Writes bench/results/metrics.json. Run: python -m bench metrics
"""

from __future__ import annotations

import contextlib
import io
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from bench import write_result
from lcrp_core.data.io import write_label_png
from lcrp_core.data.model import Dataset, Expression, GroundTruthObjects, Video
from lcrp_core.metrics import Evaluator, PreparedGT, PreparedPred, score_pair
from tests.helpers import ref_jf_stack, ref_statistics
from tests.reference import load as load_reference

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


# --- 1. lcrp eval beside davis2017-evaluation and vos-benchmark -------------------------------

SBS_VIDEOS, SBS_FRAMES, SBS_OBJECTS = 5, 50, 3
#: Runs of each tool; the fastest counts.
REPEATS = 2


def _write_davis_folders(root: Path) -> tuple[Path, Path, Path]:
    """(DAVIS root, its Annotations/480p, the predictions folder): ellipses drifting and
    turning; predictions jittered in position and size (deterministic)."""
    rng = np.random.default_rng(1)
    davis, pred = root / "davis", root / "pred"
    (davis / "ImageSets" / "2017").mkdir(parents=True)
    names = [f"video{v}" for v in range(SBS_VIDEOS)]
    (davis / "ImageSets" / "2017" / "val.txt").write_text("".join(f"{n}\n" for n in names))
    for name in names:
        params = [(rng.uniform(80, H - 80), rng.uniform(100, W - 100), rng.uniform(-1, 1),
                   rng.uniform(-2, 2), rng.uniform(25, 90), rng.uniform(30, 120))
                  for _ in range(SBS_OBJECTS)]
        for t in range(SBS_FRAMES):
            gt = np.zeros((H, W), np.uint8)
            guess = np.zeros((H, W), np.uint8)
            for o, (cy, cx, vy, vx, ry, rx) in enumerate(params):
                c = (int(cx + vx * t), int(cy + vy * t))
                cv2.ellipse(gt, c, (int(rx), int(ry)), 10.0 * o + t, 0, 360, o + 1, -1)
                d = rng.integers(-6, 7, size=2)
                cv2.ellipse(guess, (c[0] + int(d[0]), c[1] + int(d[1])),
                            (int(rx * rng.uniform(0.9, 1.1)), int(ry * rng.uniform(0.9, 1.1))),
                            10.0 * o + t, 0, 360, o + 1, -1)
            write_label_png(davis / "Annotations" / "480p" / name / f"{t:05d}.png", gt)
            write_label_png(pred / name / f"{t:05d}.png", guess)
    return davis, davis / "Annotations" / "480p", pred


def _clocked(fn):
    """(result, CPU seconds, wall seconds) of fn() with its output silenced."""
    c0, w0 = time.process_time(), time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        out = fn()
    return out, time.process_time() - c0, time.perf_counter() - w0


def _lcrp_eval(gt: Path, pred: Path, out: Path, jobs: int) -> float:
    from lcrp_core.cli import main as lcrp

    args = ["eval", "--gt-annotations", str(gt), "--pred", str(pred), "--protocol", "davis-semi", "-q",
            "-j", str(jobs), "--out", str(out)]
    if lcrp(args) != 0:
        raise RuntimeError(f"lcrp {' '.join(args)} failed")
    import csv

    with open(out / "scores.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return (np.mean([float(r["J"]) for r in rows]) + np.mean([float(r["F"]) for r in rows])) / 200


def _startup(root: Path, repeats: int = 3) -> dict[str, float]:
    """Wall and CPU (user + sys) seconds of a whole ``lcrp eval`` process on a one-video,
    three-frame 8×8 input: what the command costs before and around any scoring (median)."""
    for t in range(3):
        label = np.zeros((8, 8), np.uint8)
        label[2:5, 2:5] = 1
        write_label_png(root / "gt" / "v" / f"{t:05d}.png", label)
        write_label_png(root / "pred" / "v" / f"{t:05d}.png", label)
    cmd = [sys.executable, "-m", "lcrp_core", "eval", "--gt-annotations", str(root / "gt"),
           "--pred", str(root / "pred"), "--protocol", "davis-semi", "-q", "-j", "1", "--out", str(root / "s")]
    walls, cpus = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        w0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        walls.append(time.perf_counter() - w0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return {"wall_s": float(np.median(walls)), "cpu_s": float(np.median(cpus))}


def side_by_side() -> dict:
    davis_evaluation = load_reference("davis2017.evaluation")
    vos = load_reference("vos_benchmark.benchmark")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    import joblib  # noqa: F401  (imported before timing, like the references' imports)

    import lcrp_core.commands.eval  # noqa: F401
    import lcrp_core.metrics  # noqa: F401

    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        with tempfile.TemporaryDirectory(prefix="lcrp-bench-metrics-") as tmp:
            root = Path(tmp)
            print(f"  writing {SBS_VIDEOS} videos × {SBS_FRAMES} frames ({H}×{W}, {SBS_OBJECTS} objects)")
            davis, gt, pred = _write_davis_folders(root)

            def run_davis():
                res = davis_evaluation.DAVISEvaluation(str(davis), "semi-supervised", "val",
                                                       codalab=True).evaluate(str(pred))
                return (np.mean(res["J"]["M"]) + np.mean(res["F"]["M"])) / 2

            def run_vos():  # benchmark()'s per-video work and global mean, without its pool
                evaluate = vos.VideoEvaluator(str(gt), str(pred))
                ious, fs = [], []
                for name in sorted(os.listdir(gt)):
                    _, iou, boundary = evaluate(name)
                    ious += list(iou.values())
                    fs += list(boundary.values())
                return (np.mean(ious) + np.mean(fs)) / 200

            # each tool twice, interleaved; the faster run of each counts (a loaded machine
            # slows runs unevenly; every tool gets the same treatment)
            runs: dict[str, list] = {"davis": [], "vos": [], "lcrp": []}
            for _ in range(REPEATS):
                runs["davis"].append(_clocked(run_davis))
                runs["vos"].append(_clocked(run_vos))
                runs["lcrp"].append(_clocked(lambda: _lcrp_eval(gt, pred, root / "a", 1)))
            best = {k: min(v, key=lambda r: r[1]) for k, v in runs.items()}
            jf_davis, cpu_davis, wall_davis = best["davis"]
            jf_vos, cpu_vos, wall_vos = best["vos"]
            jf_lcrp, cpu_lcrp, wall_lcrp = best["lcrp"]
            jf_par, _, wall_par = _clocked(lambda: _lcrp_eval(gt, pred, root / "b", cores))
            startup = _startup(root / "tiny")
    finally:
        cv2.setNumThreads(threads)
    out = {
        "videos": SBS_VIDEOS, "frames": SBS_FRAMES, "objects": SBS_OBJECTS, "height": H, "width": W,
        "repeats": REPEATS, "davis2017_cpu_s": cpu_davis, "davis2017_wall_s": wall_davis,
        "vos_benchmark_cpu_s": cpu_vos, "vos_benchmark_wall_s": wall_vos,
        "lcrp_cpu_s": cpu_lcrp, "lcrp_wall_s": wall_lcrp,
        "speedup_vs_davis2017": cpu_davis / cpu_lcrp, "speedup_vs_vos_benchmark": cpu_vos / cpu_lcrp,
        "wall_speedup_vs_davis2017": wall_davis / wall_lcrp,
        "wall_speedup_vs_vos_benchmark": wall_vos / wall_lcrp,
        "parallel_jobs": cores, "lcrp_parallel_wall_s": wall_par,
        "startup_wall_s": startup["wall_s"], "startup_cpu_s": startup["cpu_s"],
        "JF": {"davis2017": float(jf_davis), "vos_benchmark": float(jf_vos), "lcrp": float(jf_lcrp),
               "lcrp_parallel": float(jf_par)},
        "max_abs_diff_JF": float(max(abs(jf_lcrp - jf_davis), abs(jf_lcrp - jf_vos),
                                     abs(jf_par - jf_lcrp))),
    }
    print(f"  {'tool (one core)':<34}{'CPU':>8}{'wall':>9}{'J&F':>12}")
    for label, cpu, wall, jf in (("davis2017-evaluation (semi)", cpu_davis, wall_davis, jf_davis),
                                 ("vos-benchmark", cpu_vos, wall_vos, jf_vos),
                                 ("lcrp eval -j 1", cpu_lcrp, wall_lcrp, jf_lcrp)):
        print(f"  {label:<34}{cpu:7.2f}s{wall:8.2f}s{100 * jf:12.6f}")
    print(f"  lcrp eval is {out['speedup_vs_davis2017']:.1f}x faster than davis2017-evaluation "
          f"(goal >= 10x) and {out['speedup_vs_vos_benchmark']:.1f}x faster than vos-benchmark "
          f"(goal >= 5x), CPU time on one core (wall: {out['wall_speedup_vs_davis2017']:.1f}x, "
          f"{out['wall_speedup_vs_vos_benchmark']:.1f}x)")
    print(f"  lcrp eval -j {cores}: {wall_par:.2f}s wall; start-up of the command (a 3-frame "
          f"video, whole process): {startup['wall_s']:.2f}s wall, {startup['cpu_s']:.2f}s CPU; "
          f"largest J&F difference {out['max_abs_diff_JF']:.1e}")
    return out


# --- 2. the sweep path -------------------------------------------------------------------------


def sweep_path() -> dict:
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
    print(f"metrics, the sweep path: one {H}×{W} video, {T} frames, {OBJECTS} objects")
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
    return result


def main() -> dict:
    print("metrics: lcrp eval beside the official evaluators")
    result = {"vs_references": side_by_side()}
    result.update(sweep_path())
    write_result("metrics", result)
    return result


if __name__ == "__main__":
    main()
