"""Sweep throughput: trials per hour for 1, 2, 4 ... workers on one device.

A points study on the synthetic benchmark is run by ``run_sweep`` with ``W`` workers on one
device (``--device cuda:0`` gives ``cuda:0xW``: W workers sharing one GPU), for each W of
``--workers``. Every run starts from the same feature cache (extracted once, before the timed
runs) and an empty track cache, so each does the same work: Locate, Core's propagations, Refine
and Path on the device, and the metrics. Also timed: the same cells in one in-process loop (a
fresh EvalContext, no driver), which gives the driver's overhead per trial.

Run: python -m bench sweep [--workers 1,2,4] [--device cpu|cuda:0] [--backend classical|sam2-clip]
     [--cells 8] [--videos 6] [--frames 24] [--storage journal|sqlite|postgresql://...]
     [--model-size tiny|...|large] [--clip ViT-B-32|ViT-L-14] [--dtype fp32|bf16] [--size 480p]
(sam2-clip runs with random weights: speed does not depend on them.) Writes bench/results/sweep.json, or sweep-<backend>-<device>.json for other settings.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import tempfile
import time
from pathlib import Path

from bench import SIZES, sam2_bench_config, write_result
from lcrp_core.cache.extract import ExtractJob, extract
from lcrp_core.data.synth import generate
from lcrp_core.devices import compact_devices, parse_devices, pin_device
from lcrp_core.pipeline import EvalContext
from lcrp_core.sweep.driver import run_sweep
from lcrp_core.sweep.queue import open_queue
from lcrp_core.sweep.spec import parse_sweep_spec

#: The cells, in order: (N, K, H) around the lcrp-mevis base; ``--cells n`` takes the first n.
CELLS = [{"N": n, "K": k, "H": h} for h, n, k in itertools.product((0, 3), (3, 5, 7, 10), (1, 3, 5))]


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench sweep", description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", default="1,2,4", help="worker counts to time (default 1,2,4)")
    p.add_argument("--device", default="cpu", help="the one device every worker shares")
    p.add_argument("--backend", default="classical", choices=["classical", "sam2-clip"])
    p.add_argument("--cells", type=int, default=8, help=f"cells per run (at most {len(CELLS)})")
    p.add_argument("--videos", type=int, default=6)
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--size", default="120x160", help=f"frame size, HxW or one of {sorted(SIZES)}")
    p.add_argument("--model-size", default="tiny", help="sam2-clip: SAM2.1 size (default tiny)")
    p.add_argument("--clip", default="ViT-B-32", help="sam2-clip: open_clip model (default ViT-B-32)")
    p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"], help="sam2-clip: SAM2's dtype")
    p.add_argument("--storage", default="journal",
                   help="journal, sqlite, or a postgresql:// URL (a study per run is created there)")
    args = p.parse_args(argv or [])
    args.counts = [int(w) for w in args.workers.split(",")]
    if not 1 <= args.cells <= len(CELLS) or min(args.counts) < 1:
        p.error(f"expected 1 <= --cells <= {len(CELLS)} and worker counts >= 1")
    parse_devices(args.device)
    return args


def _spec(args, root: Path, cache: Path, url: str, study: str, workers: int):
    backend = {"name": args.backend}
    if args.backend == "sam2-clip":
        backend.update(config=sam2_bench_config(args.model_size, args.clip, args.dtype),
                       random_init=True)
    return parse_sweep_spec({"study": study, "dataset": {"kind": "mevis", "root": str(root), "split": "valid"},
                       "backend": backend, "base": {"preset": "lcrp-mevis"},
                       "points": CELLS[:args.cells], "storage": url, "cache_dir": str(cache),
                       "devices": [f"{args.device}x{workers}"]}, source="bench")


def _url(args, tmp: Path, study: str) -> str:
    if args.storage == "journal":
        return f"journal:{tmp}/{study}.log"
    if args.storage == "sqlite":
        return f"sqlite:///{tmp}/{study}.db"
    return args.storage


def _bookkeeping_s(url: str, study: str) -> float:
    """Mean time a trial spends in the queue's records rather than in its evaluation:
    (complete − start) − wall_time_s over the study's complete trials."""
    trials = [t for t in open_queue(study, url).trials() if t.datetime_complete is not None
              and "wall_time_s" in t.user_attrs]
    gaps = [(t.datetime_complete - t.datetime_start).total_seconds() - t.user_attrs["wall_time_s"]
            for t in trials]
    return sum(gaps) / len(gaps)


def main(argv: list[str] | None = None) -> dict:
    args = _args(argv)
    run_id = f"{os.getpid()}-{int(time.time())}"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = generate(tmp / "synth", split="valid", videos=args.videos, seed=0, frames=args.frames,
                        size=SIZES.get(args.size, args.size))
        features = tmp / "features"
        first = _spec(args, root, features, f"journal:{tmp}/x.log", "x", 1)
        t0 = time.perf_counter()
        extract(ExtractJob(dataset="mevis", root=str(root), split="valid", backend=args.backend,
                           backend_config=first.backend.config, cache_dir=str(features),
                           random_init=first.backend.random_init), [args.device], progress=False)
        t_extract = time.perf_counter() - t0

        # the in-process loop in this process (pinned like a worker), on a fresh copy of the cache
        loop_cache = tmp / "cache-loop"
        shutil.copytree(features, loop_cache)
        saved = os.environ.get("CUDA_VISIBLE_DEVICES")
        t0 = time.perf_counter()
        ctx = EvalContext.open(dataset="mevis", root=root, split="valid", backend=args.backend,
                               backend_config=first.backend.config, protocol="per-expression",
                               cache_dir=loop_cache, device=pin_device(args.device),
                               random_init=first.backend.random_init)
        for cell in first.cells():
            ctx.evaluate(cell.params)
        ctx.close()
        t_loop = time.perf_counter() - t0
        if saved is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = saved

        runs = {}
        for w in args.counts:
            cache = tmp / f"cache-{w}"
            shutil.copytree(features, cache)
            study = f"bench-sweep-{run_id}-w{w}"
            url = _url(args, tmp, study)
            spec = _spec(args, root, cache, url, study, w)
            t0 = time.perf_counter()
            result = run_sweep(spec, progress=False)
            wall = time.perf_counter() - t0
            assert result.computed == args.cells and result.status.done == args.cells, result
            runs[str(w)] = {"devices": compact_devices(spec.devices), "wall_s": wall,
                            "trials_per_hour": args.cells * 3600 / wall,
                            "overhead_per_trial_s": (wall - t_loop) / args.cells,
                            "bookkeeping_per_trial_s": _bookkeeping_s(url, study)}

    base = runs[str(args.counts[0])]["trials_per_hour"]
    for r in runs.values():
        r["speedup"] = r["trials_per_hour"] / base
    result = {"backend": args.backend, "device": args.device, "size": args.size,
              "backend_config": dict(first.backend.config) if args.backend == "sam2-clip" else None, "cells": args.cells,
              "videos": args.videos, "frames": args.frames, "storage": args.storage.split(":")[0],
              "cpus": os.cpu_count(), "extract_s": t_extract, "in_process_loop_s": t_loop,
              "in_process_trials_per_hour": args.cells * 3600 / t_loop, "runs": runs}
    print(f"sweep: {args.cells} cells, {args.backend} on {args.device}, synthetic benchmark "
          f"({args.videos} videos x {args.frames} frames), features cached, {args.storage} "
          f"storage, {os.cpu_count()} CPUs")
    print(f"  {'in-process loop':<22}{t_loop:8.2f} s  {args.cells * 3600 / t_loop:9.0f} trials/h"
          f"   (a fresh EvalContext, no driver)")
    for r in runs.values():
        print(f"  {r['devices']:<22}{r['wall_s']:8.2f} s  {r['trials_per_hour']:9.0f} trials/h"
              f"   x{r['speedup']:.2f}   overhead {r['overhead_per_trial_s'] * 1000:6.0f} ms/trial"
              f"   records {r['bookkeeping_per_trial_s'] * 1000:5.0f} ms/trial")
    default = args.backend == "classical" and args.device == "cpu"
    write_result("sweep" if default else f"sweep-{args.backend}-{args.device.replace(':', '')}", result)
    return result


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
