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
    s = p.add_argument_group("SLURM", "with --submit, shard the videos over SLURM jobs (submitit)")
    s.add_argument("--submit", action="store_true", help="submit jobs instead of extracting here")
    s.add_argument("--jobs", type=int, default=1, help="jobs (videos are split among them)")
    s.add_argument("--gpus-per-job", type=int, default=0, help="GPUs per job")
    s.add_argument("--workers-per-device", type=int, default=1, help="workers per GPU")
    s.add_argument("--partition", help="SLURM partition")
    s.add_argument("--time", default="4:00:00", help="time limit per job (default 4:00:00)")
    s.add_argument("--account", help="SLURM account")
    s.add_argument("--slurm", action="append", default=[], metavar="KEY=VALUE",
                   help="another sbatch option; repeatable")
    s.add_argument("--log-dir", default="studies/slurm", help="job scripts and logs")
    p.set_defaults(func=run)


def run(args) -> int:
    from lcrp_core.backends.base import load_backend_config
    from lcrp_core.cache.extract import ExtractJob, extract
    from lcrp_core.devices import parse_devices

    job = ExtractJob(dataset=args.dataset, root=args.root, split=args.split, backend=args.backend,
                     backend_config=load_backend_config(args.backend_config),
                     cache_dir=args.cache_dir, random_init=args.random_init,
                     videos=tuple(args.videos.split(",")) if args.videos else None)
    if args.submit:
        return _submit(args, job)
    devices = parse_devices(args.devices)
    ds, backend, _, scope = job.open("cpu")          # index only: no model is built here
    print(f"cache key: {scope.features} (tracks: {scope.tracks}) under {args.cache_dir}",
          flush=True)
    del ds, backend
    report = extract(job, devices, progress=not args.quiet)
    log.info("extract: %d videos extracted (%d frames), %d already cached -> %s/%s",
             report.videos_done, report.frames, report.videos_skipped, args.cache_dir, report.scope)
    return 0


def _submit(args, job) -> int:
    from lcrp_core.sweep.slurm import SlurmSettings, parse_key_values, settings_with, submit_extract

    settings = settings_with(SlurmSettings(), {
        "jobs": args.jobs, "gpus_per_job": args.gpus_per_job,
        "workers_per_device": args.workers_per_device, "partition": args.partition,
        "time": args.time, "account": args.account, "log_dir": args.log_dir,
        "additional": parse_key_values(args.slurm) if args.slurm else None})
    done = submit_extract(job, settings, log_level=logging.getLogger("lcrp").getEffectiveLevel())
    if not done.job_ids:
        print("extract: every video is cached already; nothing submitted")
        return 0
    print(f"submitted {len(done.job_ids)} extraction job(s): {' '.join(done.job_ids)}")
    print(f"  logs: {done.log_dir}; rerun the same command to resume what did not finish")
    return 0
