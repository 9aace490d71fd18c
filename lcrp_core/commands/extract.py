"""`lcrp extract`: fill the feature cache for a dataset with one backend."""

from __future__ import annotations

import logging

log = logging.getLogger("lcrp")


def register(sub, common) -> None:
    p = sub.add_parser("extract", parents=[common], help="extract and cache a backend's features",
                       description="Compute proposals on every frame and every expression's text "
                                   "feature; resumable (cached videos are skipped).")
    p.add_argument("--dataset", required=True, choices=["ref-davis17", "mevis", "ref-youtube-vos"])
    p.add_argument("--root", required=True, help="dataset root folder")
    p.add_argument("--split", default=None, help="split (default: the benchmark's evaluation split)")
    p.add_argument("--videos", default=None, help="comma-separated subset of videos")
    p.add_argument("--backend", default="classical", help="classical | sam2-clip")
    p.add_argument("--backend-config", default=None, metavar="FILE", help="backend config (YAML)")
    p.add_argument("--devices", default="cpu", help="cpu, cpu,cpu or cuda:0,cuda:1 (one worker each)")
    p.add_argument("--cache-dir", default="cache")
    p.add_argument("--random-init", action="store_true",
                   help="random model weights: for tests and speed measurements only")
    p.set_defaults(func=run)


def run(args) -> int:
    from lcrp_core.backends.base import load_backend_config
    from lcrp_core.cache.extract import ExtractJob, extract
    from lcrp_core.devices import parse_devices

    job = ExtractJob(dataset=args.dataset, root=args.root, split=args.split, backend=args.backend,
                     backend_config=load_backend_config(args.backend_config),
                     cache_dir=args.cache_dir, random_init=args.random_init,
                     videos=tuple(args.videos.split(",")) if args.videos else None)
    devices = parse_devices(args.devices)
    ds, backend, _, scope = job.open("cpu")          # index only: no model is built here
    print(f"cache key: {scope.features} (tracks: {scope.tracks}) under {args.cache_dir}",
          flush=True)
    del ds, backend
    report = extract(job, devices, progress=not args.quiet)
    log.info("extract: %d videos extracted (%d frames), %d already cached -> %s/%s",
             report.videos_done, report.frames, report.videos_skipped, args.cache_dir, report.scope)
    return 0
