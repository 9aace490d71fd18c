"""Cost of evaluating one configuration over the synthetic benchmark: cold (nothing cached)
versus cached features and tracks (a fresh context over a filled cache), and the track-cache
hit rate over the seed's point lists. Writes bench/results/pipeline.json.

Run: python -m bench pipeline
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench import write_result
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


def _open(root: Path, cache: Path) -> EvalContext:
    return EvalContext.open(dataset="mevis", root=root, split="valid", backend="classical",
                            protocol="per-expression", cache_dir=cache)


def main() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = generate(Path(tmp) / "synth", split="valid", videos=10, seed=0)
        cache = Path(tmp) / "cache"
        t0 = time.perf_counter()
        cold = _open(root, cache).evaluate(BASE)
        t_cold = time.perf_counter() - t0
        # a fresh worker over the filled cache: its one-time set-up (ground truth) included
        t0 = time.perf_counter()
        worker = _open(root, cache)
        fresh = worker.evaluate(BASE)
        t_fresh = time.perf_counter() - t0
        # a running worker's trial of BASE: ground truth prepared (by an earlier trial of
        # another configuration), features and tracks read from the cache, Core, Refine, Path
        # and the metrics run (nothing of BASE is in the worker's memory yet)
        worker = _open(root, cache)
        worker.evaluate(PRESETS["findtrack"])
        t0 = time.perf_counter()
        cached = worker.evaluate(BASE)
        t_cached = time.perf_counter() - t0
        assert fresh.counters.computed == 0 and cached.counters.computed == 0
        assert cached.JF == fresh.JF == cold.JF

        # the seed's point lists, in order, over a fresh cache: how often a track is reused
        sweep_cache = Path(tmp) / "sweep-cache"
        ctx = _open(root, sweep_cache)
        t0 = time.perf_counter()
        points = 0
        for base, pts in SEED_POINTS:
            for p in pts:
                ctx.evaluate(Params.from_mapping({**base, **p}, base=BASE))
                points += 1
        t_sweep = time.perf_counter() - t0
        c = ctx.counters
        hit_rate = 1 - c.tracks_computed / max(c.tracks_requested, 1)

    result = {
        "videos": 10, "expressions": len(cold.per_expression), "JF": cold.JF,
        "cold_s": t_cold, "fresh_worker_s": t_fresh, "fresh_worker_speedup": t_cold / t_fresh,
        "cached_s": t_cached, "cached_speedup": t_cold / t_cached,
        "seed_points": points, "seed_points_s": t_sweep,
        "tracks_requested": c.tracks_requested, "tracks_computed": c.tracks_computed,
        "track_hit_rate": hit_rate, "videos_scored": c.scores_computed, "videos_reused": c.scores_reused,
    }
    print("pipeline: one configuration over the synthetic benchmark (classical backend)")
    print(f"  {'cold (nothing cached)':<34}{t_cold:8.2f} s   J&F {cold.JF:.1f}")
    print(f"  {'cached, fresh worker (+GT set-up)':<34}{t_fresh:8.2f} s   ({t_cold / t_fresh:.1f}x cheaper)")
    print(f"  {'cached, next trial in a worker':<34}{t_cached:8.2f} s   ({t_cold / t_cached:.1f}x cheaper; target >= 20x)")
    print(f"  {'seed point lists (' + str(points) + ' configs)':<34}{t_sweep:8.2f} s   "
          f"track-cache hit rate {hit_rate:.1%} ({c.tracks_computed} of {c.tracks_requested} computed)")
    write_result("pipeline", result)
    return result


if __name__ == "__main__":
    main()
