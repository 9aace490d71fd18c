"""Cost of evaluating one configuration over the synthetic benchmark: cold (nothing cached)
versus cached features and tracks (a fresh context over a filled cache), and the track-cache
hit rate and time per point over the seed's 18 ablation points. Writes
bench/results/pipeline.json (pipeline-<backend>-<device>.json for other settings).

Run: python -m bench pipeline
     python -m bench pipeline --backend sam2-clip --device cuda --model-size large \
         --clip ViT-L-14 --dtype bf16 --size 480p --videos 10 --frames 20
(sam2-clip runs with random weights: speed does not depend on them; its J&F means nothing.)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench import SIZES, sam2_bench_config, write_result
from lcrp_core.data.synth import generate
from lcrp_core.pipeline import PRESETS, EvalContext, Params

#: The seed's four ablations as (base, points) — Ref-DAVIS17 and MeViS, (N, K) and (H, δ).
SEED_POINTS = [
    ({"H": 3, "delta": 0.003}, [{"N": 5, "K": 5}, {"N": 7, "K": 3}, {"N": 5, "K": 3}, {"N": 10, "K": 3},
                                {"N": 10, "K": 5}]),
    ({"N": 10, "K": 3}, [{"H": 1, "delta": 0.001}, {"H": 2, "delta": 0.003}, {"H": 3, "delta": 0.003},
                         {"H": 2, "delta": 0.002}, {"H": 3, "delta": 0.002}]),
    ({"H": 3, "delta": 0.003}, [{"N": 5, "K": 5}, {"N": 10, "K": 10}, {"N": 10, "K": 3}, {"N": 10, "K": 5}]),
    ({"N": 10, "K": 5}, [{"H": 3, "delta": 0.001}, {"H": 3, "delta": 0.003}, {"H": 2, "delta": 0.003},
                         {"H": 2, "delta": 0.002}]),
]
BASE = Params(num_frames=10, top_k=3, refine_rounds=3, min_region_frac=0.003)
#: The 18 points in order.
ALL_POINTS = [Params.from_mapping({**base, **p}, base=BASE) for base, pts in SEED_POINTS for p in pts]


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench pipeline", description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", default="classical", choices=["classical", "sam2-clip"])
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    p.add_argument("--model-size", default="tiny", help="sam2-clip: SAM2.1 size (default tiny)")
    p.add_argument("--clip", default="ViT-B-32", help="sam2-clip: open_clip model (default ViT-B-32)")
    p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"], help="sam2-clip: SAM2's dtype")
    p.add_argument("--points-per-side", type=int, default=8, help="sam2-clip: generator grid (default 8)")
    p.add_argument("--size", default="240p", choices=sorted(SIZES), help="frame size (default 240p)")
    p.add_argument("--videos", type=int, default=10)
    p.add_argument("--frames", default="30-60", help="frames per video, N or MIN-MAX (default 30-60)")
    p.add_argument("--points", type=int, default=len(ALL_POINTS), choices=range(len(ALL_POINTS) + 1),
                   metavar=f"0..{len(ALL_POINTS)}",
                   help=f"how many of the seed's points to time in order (default all {len(ALL_POINTS)})")
    return p.parse_args(argv or [])


def main(argv: list[str] | None = None) -> dict:
    args = _args(argv)
    config = (sam2_bench_config(args.model_size, args.clip, args.dtype, args.points_per_side)
              if args.backend == "sam2-clip" else None)

    def _open(root: Path, cache: Path) -> EvalContext:
        return EvalContext.open(dataset="mevis", root=root, split="valid", backend=args.backend,
                                backend_config=config, protocol="per-expression", cache_dir=cache,
                                device=args.device, random_init=config is not None)

    with tempfile.TemporaryDirectory() as tmp:
        root = generate(Path(tmp) / "synth", split="valid", videos=args.videos, seed=0,
                        frames=args.frames, size=SIZES[args.size])
        cache = Path(tmp) / "cache"
        t0 = time.perf_counter()
        ctx = _open(root, cache)
        cold = ctx.evaluate(BASE)
        t_cold = time.perf_counter() - t0
        ctx.close()
        # a fresh worker over the filled cache: its one-time set-up (models, ground truth) included
        t0 = time.perf_counter()
        ctx = _open(root, cache)
        fresh = ctx.evaluate(BASE)
        t_fresh = time.perf_counter() - t0
        ctx.close()
        # a running worker's trial of BASE: ground truth prepared (by an earlier trial of
        # another configuration), features and tracks read from the cache, Core, Refine, Path
        # and the metrics run (nothing of BASE is in the worker's memory yet)
        ctx = _open(root, cache)
        ctx.evaluate(PRESETS["findtrack"])
        t0 = time.perf_counter()
        cached = ctx.evaluate(BASE)
        t_cached = time.perf_counter() - t0
        ctx.close()
        if config is None:  # sam2-clip re-encodes frames for Refine (not cached), in bf16 too
            assert fresh.counters.computed == 0 and cached.counters.computed == 0
            assert cached.JF == fresh.JF == cold.JF

        name = ("pipeline" if args.backend == "classical" and args.device == "cpu"
                and args.size == "240p" and args.points == len(ALL_POINTS)
                else f"pipeline-{args.backend}-{args.device.replace(':', '')}-{args.size}"
                     f"-{args.videos}v")
        result = {
            "backend": args.backend, "device": args.device, "size": args.size,
            "frames": args.frames, "backend_config": config, "videos": args.videos,
            "expressions": len(cold.per_expression), "JF": cold.JF,
            "cold_s": t_cold, "fresh_worker_s": t_fresh, "fresh_worker_speedup": t_cold / t_fresh,
            "cached_s": t_cached, "cached_speedup": t_cold / t_cached,
            "computed_in_fresh_worker": fresh.counters.computed,
            "computed_in_cached_trial": cached.counters.computed,
        }
        print(f"pipeline: one configuration over the synthetic benchmark ({args.videos} videos, "
              f"{args.size}, {args.backend} on {args.device}"
              + (f", SAM2.1 {args.model_size} {args.dtype}, {args.clip}" if config else "") + ")")
        print(f"  {'cold (nothing cached)':<34}{t_cold:8.2f} s   J&F {cold.JF:.1f}")
        print(f"  {'cached, fresh worker (+GT set-up)':<34}{t_fresh:8.2f} s   "
              f"({t_cold / t_fresh:.1f}x cheaper)")
        print(f"  {'cached, next trial in a worker':<34}{t_cached:8.2f} s   "
              f"({t_cold / t_cached:.1f}x cheaper; target >= 20x)")
        write_result(name, result)  # kept if the point lists below are cut short
        if not args.points:
            return result

        # the seed's point lists, in order, over a fresh cache: how often a track is reused
        ctx = _open(root, Path(tmp) / "sweep-cache")
        t0 = time.perf_counter()
        for point in ALL_POINTS[:args.points]:
            ctx.evaluate(point)
        t_sweep = time.perf_counter() - t0
        c = ctx.counters
        ctx.close()
        hit_rate = 1 - c.tracks_computed / max(c.tracks_requested, 1)

    points = args.points
    result.update({
        "seed_points": points, "seed_points_s": t_sweep, "s_per_point": t_sweep / points,
        "device_hours_per_point": t_sweep / points / 3600,
        "tracks_requested": c.tracks_requested, "tracks_computed": c.tracks_computed,
        "track_hit_rate": hit_rate, "videos_scored": c.scores_computed, "videos_reused": c.scores_reused,
    })
    print(f"  {'seed point lists (' + str(points) + ' configs)':<34}{t_sweep:8.2f} s   "
          f"track-cache hit rate {hit_rate:.1%} ({c.tracks_computed} of {c.tracks_requested} computed), "
          f"{t_sweep / points:.2f} s per point")
    write_result(name, result)
    return result


if __name__ == "__main__":
    main()
