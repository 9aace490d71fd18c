"""The sam2-clip backend on CPU with random weights (tiny SAM2 config at input 1024, ViT-B-32 at
224): extraction speed (proposals + CLIP), SAM2 propagation seconds per frame with the all-frame
feature cache versus the stock SAM2VideoPredictor feature cache (same run, same seeds), fp32
versus bf16 autocast, and peak RSS per phase. Writes bench/results/sam2.json.

Propagation is timed on calls from the middle frame (forward and backward) with 1 seed (a Path
call) and 2 seeds (Core candidates in one pass):
- stock (fp32 only, to keep the run short): the predictor's one-frame cache, which re-encodes
  every frame on every call;
- cached, cold: the all-frame cache on a video it has not seen (each frame encoded once);
- cached, warm: the same video again (every later candidate, refinement and Path call of a
  video): no encoder pass. Target: stock / warm >= 1.8x for one seed. The encoder pass is
  shared by all seeds and the rest is paid per seed, so the gain shrinks as seeds are added.
The random weights give about one proposal per frame, so CLIP is also timed on a fixed set of
REGION_MASKS masks.

Run: python -m bench sam2   (LCRP_BENCH_THREADS=n sets torch's intra-op threads)
"""

from __future__ import annotations

import os
import resource
import threading
import time

import numpy as np

from bench import write_result
from lcrp_core.backends.sam2_clip import Sam2ClipBackend
from lcrp_core.data.model import Video

FRAMES, HEIGHT, WIDTH = 6, 240, 320
EXTRACT_FRAMES = 1
REGION_MASKS = 16            # a proposal count per frame, for the CLIP timing
CONFIG = {"model_size": "tiny", "image_size": 1024, "points_per_side": 8,
          "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}


def synthetic_video(seed: int) -> Video:
    """Three textured shapes moving over a gradient with noise, frames in memory."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    base = np.stack([60 + xx * 0.3, 90 + yy * 0.2, 140 - xx * 0.1], axis=-1)
    shapes = [((200, 40, 40), 60, 50, 4, 2), ((40, 200, 60), 150, 220, -3, 1),
              ((230, 210, 40), 100, 140, 1, -2)]
    frames = []
    for t in range(FRAMES):
        f = base.copy()
        for colour, y, x, vx, vy in shapes:
            cy, cx = y + vy * t, x + vx * t
            f[(yy - cy) ** 2 + (xx - cx) ** 2 < 30 ** 2] = colour
        f += rng.normal(0, 6, f.shape)
        frames.append(np.clip(f, 0, 255).astype(np.uint8))
    return Video(f"synthetic-{seed}", [f"{t:05d}" for t in range(FRAMES)], {},
                 frame_loader=lambda t: frames[t])


def seeds() -> np.ndarray:
    """Two seed masks (S×H×W bool) on the middle frame."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    t = FRAMES // 2
    a = (yy - (50 + 2 * t)) ** 2 + (xx - (60 + 4 * t)) ** 2 < 30 ** 2
    b = (yy - (150 + t)) ** 2 + (xx - (220 - 3 * t)) ** 2 < 30 ** 2
    return np.stack([a, b])


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class PeakRss:
    """Peak resident memory (MB) while the block runs, sampled every 20 ms."""

    def __enter__(self) -> PeakRss:
        self.peak = rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_mb())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def say(label: str, value: str) -> None:
    print(f"  {label:<44}{value}", flush=True)


def run_dtype(dtype: str, video_seed: int, *, stock: bool) -> dict:
    backend = Sam2ClipBackend({**CONFIG, "dtype": dtype}, random_init=True,
                              feature_cache_frames=FRAMES + EXTRACT_FRAMES)
    out: dict = {}
    with PeakRss() as mem:
        _, out["build_s"] = timed(backend.load)
    out["build_peak_rss_mb"] = mem.peak
    say(f"[{dtype}] models built", f"{out['build_s']:.1f} s")

    video = synthetic_video(video_seed)
    with PeakRss() as mem:
        t0 = time.perf_counter()
        counts = [len(backend.propose(video, t)) for t in range(EXTRACT_FRAMES)]
        extract_s = (time.perf_counter() - t0) / EXTRACT_FRAMES
        frame = video.frame(0)
        rng = np.random.default_rng(0)
        masks = np.zeros((REGION_MASKS, HEIGHT, WIDTH), dtype=bool)
        for m in masks:
            y, x = rng.integers(0, HEIGHT - 40), rng.integers(0, WIDTH - 40)
            m[y:y + rng.integers(10, 40), x:x + rng.integers(10, 40)] = True
        _, clip_s = timed(lambda: backend.region_features(frame, masks))
    out.update(extract_s_per_frame=extract_s, proposals_per_frame=float(np.mean(counts)),
               extract_fps=1.0 / extract_s,
               clip_s_per_frame_at_masks=clip_s, region_masks=REGION_MASKS,
               extract_fps_at_masks=1.0 / (extract_s + clip_s),
               extract_peak_rss_mb=mem.peak)
    say(f"[{dtype}] extraction", f"{extract_s:.1f} s/frame, CLIP {clip_s:.1f} s for "
        f"{REGION_MASKS} masks")

    video = synthetic_video(video_seed + 1)          # frames the store has not seen
    both, t = seeds(), FRAMES // 2
    one = both[:1]

    def propagate(name: str, s: np.ndarray, *, all_frame_cache: bool = True) -> np.ndarray:
        passes = backend.encoder_passes
        tracks, sec = timed(lambda: backend.propagate(video, t, s, all_frame_cache=all_frame_cache))
        out[f"{name}_s_per_frame"] = sec / FRAMES
        if all_frame_cache:
            out[f"{name}_encoder_passes"] = backend.encoder_passes - passes
        say(f"[{dtype}] propagation, {name.replace('_', ' ')}", f"{sec / FRAMES:.2f} s/frame")
        return tracks

    with PeakRss() as mem:
        reference = propagate("1_seed_stock", one, all_frame_cache=False) if stock else None
        cold = propagate("1_seed_cold", one)
        warm = propagate("1_seed_warm", one)
        if stock:
            reference2 = propagate("2_seeds_stock", both, all_frame_cache=False)
            warm2 = propagate("2_seeds_warm", both)
    out["propagate_peak_rss_mb"] = mem.peak
    out["encoder_passes"] = f"{out['1_seed_cold_encoder_passes']}/{out['1_seed_warm_encoder_passes']}"
    out["warm_equals_cold"] = bool(np.array_equal(cold, warm))
    if stock:
        out["tracks_equal_stock"] = bool(np.array_equal(reference, cold)
                                         and np.array_equal(reference2, warm2))
        for n in ("1_seed", "2_seeds"):
            out[f"{n}_speedup"] = out[f"{n}_stock_s_per_frame"] / out[f"{n}_warm_s_per_frame"]
    backend.close()
    return out


def main() -> dict:
    import torch

    if os.environ.get("LCRP_BENCH_THREADS"):
        torch.set_num_threads(int(os.environ["LCRP_BENCH_THREADS"]))
    result = {
        "frames": FRAMES, "frame_size": [HEIGHT, WIDTH], "config": CONFIG,
        "clip_model": "ViT-B-32 (224)", "torch_threads": torch.get_num_threads(),
        "device": "cpu", "weights": "random",
    }
    print(f"sam2-clip on CPU, random weights, tiny config at {CONFIG['image_size']}, "
          f"{FRAMES} frames of {HEIGHT}x{WIDTH}, torch threads "
          f"{result['torch_threads']}", flush=True)
    result["fp32"] = run_dtype("fp32", 0, stock=True)
    result["bf16"] = run_dtype("bf16", 10, stock=False)
    result["process_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    f32, b16 = result["fp32"], result["bf16"]
    print(f"  {'':<40}{'fp32':>10}{'bf16':>10}")
    rows = [
        ("extraction fps (proposals + CLIP)", "extract_fps", "{:10.3f}"),
        ("  proposals per frame (random weights)", "proposals_per_frame", "{:10.1f}"),
        (f"  CLIP s/frame at {REGION_MASKS} masks", "clip_s_per_frame_at_masks", "{:10.2f}"),
        (f"  fps at {REGION_MASKS} masks/frame", "extract_fps_at_masks", "{:10.3f}"),
        ("propagation s/frame, 1 seed: stock", "1_seed_stock_s_per_frame", "{:10.2f}"),
        ("  cached, cold", "1_seed_cold_s_per_frame", "{:10.2f}"),
        ("  cached, warm", "1_seed_warm_s_per_frame", "{:10.2f}"),
        ("  encoder passes cold / warm", "encoder_passes", "{:>10}"),
        ("  speedup warm vs stock (target >= 1.8x)", "1_seed_speedup", "{:9.2f}x"),
        ("propagation s/frame, 2 seeds: stock", "2_seeds_stock_s_per_frame", "{:10.2f}"),
        ("  cached, warm", "2_seeds_warm_s_per_frame", "{:10.2f}"),
        ("  speedup warm vs stock", "2_seeds_speedup", "{:9.2f}x"),
        ("tracks equal to stock", "tracks_equal_stock", "{!s:>10}"),
        ("warm tracks equal to cold", "warm_equals_cold", "{!s:>10}"),
        ("peak RSS MB: build", "build_peak_rss_mb", "{:10.0f}"),
        ("peak RSS MB: extraction", "extract_peak_rss_mb", "{:10.0f}"),
        ("peak RSS MB: propagation", "propagate_peak_rss_mb", "{:10.0f}"),
    ]
    for label, key, fmt in rows:
        cells = [fmt.format(r[key]) if key in r else f"{'-':>10}" for r in (f32, b16)]
        print(f"  {label:<40}{''.join(cells)}")
    print(f"  process peak RSS {result['process_peak_rss_mb']:.0f} MB")
    write_result("sam2", result)
    return result


if __name__ == "__main__":
    main()
