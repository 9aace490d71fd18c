"""Peak host memory of Core (the K candidates' tracks and their support) as K and T grow.

Core's K tracks stay packed (PackedTrack, one bit per pixel) and support is computed frame by
frame on the packed bits, so the memory Core allocates beyond the packed tracks themselves
grows with one frame (K packed frames), not with K×T×H×W. The old code held a K×T×H×W bool
array (4 GB at K=10, T=200, 1080p).

Measured with tracemalloc (numpy reports its buffers to it) around ``core()`` alone: the packed
tracks are built beforehand (they live in the feature cache's memo either way) and reported
separately. Frames are 1080×1920 (``--size 480p`` for 480×854); tracks are moving discs.

Run: python -m bench core_memory [--size 480p|1080p]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from bench import write_result
from lcrp_core.masks import PackedTrack
from lcrp_core.pipeline.params import Params
from lcrp_core.pipeline.stages import Candidate, core

SIZES = {"480p": (480, 854), "1080p": (1080, 1920)}


class PackedFeatures:
    """The VideoFeatures calls Core makes, over precomputed packed tracks keyed by seed mask."""

    def __init__(self, tracks: dict[int, PackedTrack], num_frames: int):
        self.by_seed = tracks            # id(seed mask) → its track
        self.num_frames = num_frames

    def packed_tracks(self, t: int, seeds) -> list[PackedTrack]:
        return [self.by_seed[id(s)] for s in seeds]

    def derived(self, kind: str, parts, compute):
        return compute()


def disc_track(k: int, num_frames: int, size: tuple[int, int]) -> PackedTrack:
    """A disc drifting across the frame, packed frame by frame (never T×H×W bools at once)."""
    h, w = size
    yy, xx = np.ogrid[:h, :w]
    track = PackedTrack.empty(num_frames, size)
    r = min(h, w) / 8
    for t in range(num_frames):
        cy = h * (0.3 + 0.02 * k) + t * h / (4 * num_frames)
        cx = w * (0.3 + 0.03 * k) + t * w / (3 * num_frames)
        track.set_frame(t, (yy - cy) ** 2 + (xx - cx) ** 2 < r * r)
    return track


def measure(k: int, num_frames: int, size: tuple[int, int]) -> dict:
    tracks = [disc_track(i, num_frames, size) for i in range(k)]
    candidates = [Candidate(0, i, 1.0 - 0.01 * i, tracks[i].frame(0)) for i in range(k)]
    feats = PackedFeatures({id(c.mask): tr for c, tr in zip(candidates, tracks)}, num_frames)
    params = Params(top_k=k)
    tracemalloc.start()
    t0 = time.perf_counter()
    anchor = core(feats, candidates, params)
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    h, w = size
    return {"K": k, "T": num_frames, "core_peak_mb": peak / 2**20,
            "packed_tracks_mb": sum(t.nbytes for t in tracks) / 2**20,
            "unpacked_KxTxHxW_mb": k * num_frames * h * w / 2**20,
            "one_frame_KxHxW_mb": k * h * w / 2**20, "seconds": seconds,
            "anchor": anchor.candidate.index}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m bench core_memory")
    p.add_argument("--size", default="1080p", choices=sorted(SIZES))
    p.add_argument("--frames", default="50,200", help="T values, comma list (default 50,200)")
    p.add_argument("--k", default="3,10", help="K values, comma list (default 3,10)")
    args = p.parse_args(argv)
    size = SIZES[args.size]
    rows = [measure(k, t, size) for t in map(int, args.frames.split(","))
            for k in map(int, args.k.split(","))]
    print(f"Core peak host memory (tracemalloc, MB) at {size[0]}x{size[1]}:")
    print(f"  {'K':>3} {'T':>5} {'core peak':>10} {'K frames':>9} {'packed tracks':>14} "
          f"{'K×T×H×W bools':>14} {'seconds':>8}")
    for r in rows:
        print(f"  {r['K']:>3} {r['T']:>5} {r['core_peak_mb']:>10.1f} {r['one_frame_KxHxW_mb']:>9.1f} "
              f"{r['packed_tracks_mb']:>14.1f} {r['unpacked_KxTxHxW_mb']:>14.1f} {r['seconds']:>8.2f}")
    result = {"size": list(size), "rows": rows}
    write_result("core_memory", result)
    return result


if __name__ == "__main__":
    main()
