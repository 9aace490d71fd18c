"""Speed of the classical backend on the default synthetic benchmark (10 videos of 30–60 frames
at 240×320), with the quality numbers that make its speed worth having.

Timed: generating the benchmark; ``propose`` on every frame (what `lcrp extract` does);
``propagate`` of one seed and of five seeds per pass, on a video whose frames are not yet
prepared (cold: decoding and colour conversion included) and prepared (warm: the next pass on
the same video, as the pipeline's Core and Path stages call it); one ``refine`` (GrabCut) round.
Targets (the demo's budget): propose ≤ 30 ms per frame, propagate ≤ 5 ms per frame per seed,
generation a few seconds.

Not timed: proposal recall (best proposal IoU > 0.5 with the referred objects), top-1
grounding (the best-scored proposal, and the best by Locate's 0.5·z(s) + 0.5·q, has IoU > 0.5)
and propagation IoU (the ground-truth mask on a middle frame propagated over the video).

Writes bench/results/classical.json. Run: python -m bench classical
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from bench import write_result
from lcrp_core.backends.classical import ClassicalBackend
from lcrp_core.data import load_dataset
from lcrp_core.data.synth import generate
from lcrp_core.masks import iou
from lcrp_core.pipeline.stages import zscore

TARGET_PROPOSE_MS = 30.0
TARGET_PROPAGATE_MS = 5.0


def _seeds(video, exp_ids, t):
    return np.stack([video.gt_mask(e)[t] for e in exp_ids])


def main() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        root = generate(Path(tmp) / "synth", split="valid", videos=10, seed=0)
        t_generate = time.perf_counter() - t0
        ds = load_dataset("mevis", root, "valid")
        backend = ClassicalBackend()
        frames = sum(len(v) for v in ds)

        t0 = time.perf_counter()
        proposals = {v.name: [backend.propose(v, t) for t in range(len(v))] for v in ds}
        t_propose = time.perf_counter() - t0

        cold = {1: [0.0, 0], 5: [0.0, 0]}  # seeds per pass → [seconds, frame·seeds]
        warm = {1: [0.0, 0], 5: [0.0, 0]}
        refine_s, refines = 0.0, 0
        for k, video in enumerate(ds):
            exp_ids = [e for e in video.expressions if video.gt_mask(e)[len(video) // 2].any()]
            t = len(video) // 2
            seeds = np.concatenate([_seeds(video, exp_ids, t)] * 5)[:5]
            n = 1 if k % 2 == 0 else 5  # cold passes alternate between one and five seeds
            backend.close()
            t0 = time.perf_counter()
            backend.propagate(video, t, seeds[:n])
            cold[n][0] += time.perf_counter() - t0
            cold[n][1] += len(video) * n
            for m in (1, 5):
                t0 = time.perf_counter()
                backend.propagate(video, t, seeds[:m])
                warm[m][0] += time.perf_counter() - t0
                warm[m][1] += len(video) * m
            for seed in seeds[:len(exp_ids)]:
                t0 = time.perf_counter()
                backend.refine(video, t, seed)
                refine_s += time.perf_counter() - t0
                refines += 1

        recall, top1, locate_top1, tracked = [], [], [], []
        for video in ds:
            for exp_id, expr in video.expressions.items():
                gt = video.gt_mask(exp_id)
                feature = backend.encode_text(expr.text)
                for t, p in enumerate(proposals[video.name]):
                    if not gt[t].any() or len(p) == 0:
                        continue
                    ious = np.array([iou(m, gt[t]) for m in p.masks])
                    s = backend.score(p, feature)
                    recall.append(ious.max() > 0.5)
                    top1.append(ious[int(np.argmax(s))] > 0.5)
                    locate_top1.append(ious[int(np.argmax(0.5 * zscore(s) + 0.5 * p.quality))] > 0.5)
                seen = [t for t in range(len(video)) if gt[t].any()]
                track = backend.propagate(video, seen[len(seen) // 2], gt[seen[len(seen) // 2]][None])[0]
                tracked.append(float(np.mean([iou(track[s], gt[s]) for s in range(len(video))])))

    propose_ms = 1000 * t_propose / frames
    ms = {f"{kind}_{n}": 1000 * v[0] / max(v[1], 1) for kind, d in (("cold", cold), ("warm", warm))
          for n, v in d.items()}
    result = {
        "videos": len(ds), "frames": frames, "size": [240, 320], "generate_s": t_generate,
        "propose_ms_per_frame": propose_ms, "propose_fps": 1000 / propose_ms,
        "propose_target_ratio": TARGET_PROPOSE_MS / propose_ms,
        "propagate_ms_per_frame_seed": ms,
        "propagate_fps_per_seed": {k: 1000 / v for k, v in ms.items()},
        "propagate_target_ratio": {k: TARGET_PROPAGATE_MS / v for k, v in ms.items()},
        "refine_ms": 1000 * refine_s / max(refines, 1),
        "proposal_recall": float(np.mean(recall)), "grounding_top1": float(np.mean(top1)),
        "locate_top1": float(np.mean(locate_top1)), "propagation_iou": float(np.mean(tracked)),
    }
    print(f"classical backend: {len(ds)} synthetic videos, {frames} frames at 240×320")
    print(f"  {'generate the benchmark':<40}{t_generate:8.2f} s")
    print(f"  {'propose (every frame)':<40}{propose_ms:8.1f} ms/frame  {1000 / propose_ms:6.1f} fps"
          f"   target {TARGET_PROPOSE_MS:.0f} ms: {TARGET_PROPOSE_MS / propose_ms:.1f}x")
    for key, label in (("cold_1", "propagate, cold video, 1 seed"), ("cold_5", "propagate, cold video, 5 seeds"),
                       ("warm_1", "propagate, prepared video, 1 seed"),
                       ("warm_5", "propagate, prepared video, 5 seeds")):
        print(f"  {label:<40}{ms[key]:8.2f} ms/frame/seed {1000 / ms[key]:6.0f} fps"
              f"   target {TARGET_PROPAGATE_MS:.0f} ms: {TARGET_PROPAGATE_MS / ms[key]:.1f}x")
    print(f"  {'refine (one GrabCut round)':<40}{result['refine_ms']:8.1f} ms")
    print(f"  quality: proposal recall {result['proposal_recall']:.3f}, top-1 grounding "
          f"{result['grounding_top1']:.3f} (Locate score {result['locate_top1']:.3f}), "
          f"propagation IoU {result['propagation_iou']:.3f}")
    write_result("classical", result)
    return result


if __name__ == "__main__":
    main()
