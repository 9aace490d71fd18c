"""`lcrp sweep run|worker|submit|status|check`: sweep studies on Optuna (docs/sweep-spec.md)."""

from __future__ import annotations

import logging

log = logging.getLogger("lcrp")

DEVICES_HELP = ("worker slots: cpu, cpu,cpu, cuda:0,cuda:1, or cuda:0x4,cuda:1x4 for four workers "
                "per GPU (default: the spec's devices)")
PER_DEVICE_HELP = "worker processes on each listed device (default 1; cuda:0x4 says the same)"


def register(sub, common) -> None:
    p = sub.add_parser("sweep", parents=[common], help="run sweep studies (grid, points, TPE)",
                       description="Sweep studies over the pipeline's parameters, stored in an "
                                   "Optuna database (docs/sweep-spec.md).")
    cmds = p.add_subparsers(dest="sweep_command", metavar="SUBCOMMAND")
    cmds.required = True

    r = cmds.add_parser("run", parents=[common], help="create or resume a study and run it",
                        description="Create the study of a sweep spec (or resume it: finished "
                                    "cells are not recomputed) and run it with one worker process "
                                    "per device slot.")
    r.add_argument("spec", help="sweep spec (YAML), e.g. sweeps/mevis_nk.yaml")
    r.add_argument("--storage", help="storage URL (default: the spec's, else "
                                     "sqlite:///studies/<study>.db)")
    r.add_argument("--devices", help=DEVICES_HELP)
    r.add_argument("--workers-per-device", type=int, metavar="N", help=PER_DEVICE_HELP)
    r.add_argument("--workers", type=int, help="worker processes (default: one per device slot; "
                                               "more are spread round-robin over the slots)")
    r.add_argument("--root", help="dataset root (overrides the spec's dataset.root)")
    r.add_argument("--backend-config", metavar="FILE",
                   help="backend config (YAML) replacing the spec's backend config, e.g. the one "
                        "`lcrp extract --backend-config FILE` filled the cache with")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.set_defaults(func=run)

    w = cmds.add_parser("worker", parents=[common], help="join a running study",
                        description="Evaluate waiting trials of an existing study (e.g. from "
                                    "another machine against the same PostgreSQL URL); the spec "
                                    "is read from the study.")
    w.add_argument("--study", required=True, help="study name")
    w.add_argument("--storage", help="storage URL (default: sqlite:///studies/<study>.db)")
    w.add_argument("--devices", help=DEVICES_HELP)
    w.add_argument("--workers-per-device", type=int, metavar="N", help=PER_DEVICE_HELP)
    w.add_argument("--workers", type=int, help="worker processes (default: one per device slot)")
    w.add_argument("--root", help="dataset root on this machine (default: the spec's)")
    w.add_argument("--cache-dir", help="feature cache on this machine (default: the spec's)")
    w.set_defaults(func=worker)

    j = cmds.add_parser("submit", parents=[common], help="run a study on a SLURM cluster",
                        description="Create the study of a sweep spec (or resume it), then submit "
                                    "worker jobs to SLURM through submitit (one job array); each "
                                    "job runs the worker loop on its GPUs against the shared "
                                    "storage. Options override the spec's slurm: block.")
    j.add_argument("spec", help="sweep spec (YAML)")
    j.add_argument("--storage", help="storage URL; several jobs need postgresql://USER@HOST/DB")
    j.add_argument("--jobs", type=int, help="worker jobs (default: the spec's, else 1)")
    j.add_argument("--gpus-per-job", type=int, help="GPUs per job (default 0: CPU workers)")
    j.add_argument("--workers-per-device", type=int, help="worker processes per GPU (default 1)")
    j.add_argument("--partition", help="SLURM partition")
    j.add_argument("--time", help="time limit per job: 90, 4:00:00 or 1-12:00:00 (default 4:00:00)")
    j.add_argument("--account", help="SLURM account")
    j.add_argument("--slurm", action="append", default=[], metavar="KEY=VALUE",
                   help="another sbatch option (qos=high, constraint=a100); repeatable")
    j.add_argument("--root", help="dataset root as the jobs see it (overrides the spec's)")
    j.add_argument("--log-dir", help="where submitit keeps job scripts and logs "
                                     "(default studies/slurm; a folder per study)")
    j.set_defaults(func=submit)

    s = cmds.add_parser("status", parents=[common], help="where a study stands",
                        description="Cells done, running (host/pid/device), waiting and failed, "
                                    "and an ETA from the mean wall time.")
    s.add_argument("study", help="study name")
    s.add_argument("--storage", help="storage URL (default: sqlite:///studies/<study>.db)")
    s.set_defaults(func=status)

    c = cmds.add_parser("check", parents=[common], help="validate sweep specs",
                        description="Validate specs without running anything: the spec itself "
                                    "and, unless --no-root-check, its dataset's split and videos.")
    c.add_argument("specs", nargs="+", help="sweep specs (YAML)")
    c.add_argument("--no-root-check", action="store_true",
                   help="do not require the dataset roots to exist")
    c.set_defaults(func=check)

    d = cmds.add_parser("delete", parents=[common], help="delete a study and its trials",
                        description="Delete a study (e.g. one created from a mistaken spec) and "
                                    "all its trials from its storage, after confirmation.")
    d.add_argument("study", help="study name")
    d.add_argument("--storage", help="storage URL (default: studies/<study>.db, else the one "
                                     "storage under studies/ holding the study)")
    d.add_argument("--yes", action="store_true", help="do not ask for confirmation (scripts)")
    d.set_defaults(func=delete)


def _optuna_logs(args) -> None:
    """Optuna's per-study INFO lines only with -v (lcrp logs what matters itself)."""
    import optuna

    if not args.verbose:
        optuna.logging.set_verbosity(optuna.logging.WARNING)


def run(args) -> int:
    from lcrp_core.sweep.driver import run_sweep
    from lcrp_core.sweep.status import format_status
    from lcrp_core.sweep.storage import storage_errors

    _optuna_logs(args)
    spec = load_spec_with(args)
    spec = spec.with_devices(_devices(args, spec.devices))
    if args.backend_config:
        spec = _with_backend_config(spec, args.backend_config)
    with storage_errors(spec.storage):
        result = run_sweep(spec, workers=args.workers,
                           progress=not (args.quiet or args.no_progress), verbose=args.verbose,
                           on_ready=lambda _queue: _announce_cache(spec))
    print(format_status(result.status))
    print(f"  {result.computed} trial(s) computed by this run")
    return _exit_code(result.status)


def _with_backend_config(spec, path: str):
    """``spec`` with its backend config replaced by the file's (``--backend-config``)."""
    from dataclasses import replace

    from lcrp_core.backends.base import backend_class, load_backend_config, resolve_config
    from lcrp_core.sweep.spec import BackendSpec

    config = resolve_config("--backend-config", backend_class(spec.backend.name).Config,
                            load_backend_config(path))
    return replace(spec, backend=BackendSpec(spec.backend.name, config, spec.backend.random_init,
                                             path))


def _announce_cache(spec) -> None:
    """Print the cache key the sweep's workers read; say so when the cache lacks the features
    of some videos (trials would extract them, slowly), with the `lcrp extract` that fills it."""
    from lcrp_core.backends.base import create_backend
    from lcrp_core.cache.extract import cache_status, extract_command
    from lcrp_core.data import load_dataset

    ds = load_dataset(spec.dataset.kind, spec.dataset.root, spec.dataset.split,
                      videos=spec.dataset.videos)
    backend = create_backend(spec.backend.name, spec.backend.config,
                             random_init=spec.backend.random_init)
    status = cache_status(ds, backend, spec.cache_dir)
    print(f"cache key: {status.key} under {spec.cache_dir} "
          f"({status.videos - len(status.missing)} of {status.videos} videos extracted)", flush=True)
    if status.missing:
        command = extract_command(
            dataset=spec.dataset.kind, root=spec.dataset.root, split=spec.dataset.split,
            backend=spec.backend.name, backend_config=spec.backend.config_file,
            cache_dir=spec.cache_dir, devices=spec.devices, videos=spec.dataset.videos)
        if spec.backend.random_init:
            command += " --random-init"
        log.warning("the feature cache %s holds no features for %d of %d videos (e.g. %s): trials "
                    "will extract them inside their timing; fill it first with:\n    %s",
                    status.key, len(status.missing), status.videos, status.missing[0], command)


def worker(args) -> int:
    from lcrp_core.sweep.queue import open_queue
    from lcrp_core.sweep.storage import default_storage_url, storage_errors

    _optuna_logs(args)
    url = args.storage or default_storage_url(args.study)
    with storage_errors(url):
        return _worker(args, open_queue(args.study, url))


def _worker(args, queue) -> int:
    from lcrp_core.sweep.driver import drive, worker_slots
    from lcrp_core.sweep.status import format_status, study_status
    from lcrp_core.sweep.worker import run_worker

    slots = worker_slots(_devices(args, queue.spec.devices), args.workers)
    if len(slots) == 1:  # in this process
        report = run_worker(queue, device=slots[0], root=args.root, cache_dir=args.cache_dir)
        log.info("worker %s: %d completed, %d pruned, %d failed, %d interrupted", slots[0],
                 report.completed, report.pruned, report.failed, report.interrupted)
        if report.stopped_by:
            raise KeyboardInterrupt
        return 0
    result = drive(queue, slots=slots, root=args.root, cache_dir=args.cache_dir,
                   progress=not args.quiet, verbose=args.verbose)
    print(format_status(result.status))
    return _exit_code(study_status(queue))


def submit(args) -> int:
    import logging as _logging

    from lcrp_core.sweep.slurm import parse_key_values, parse_slurm, settings_with
    from lcrp_core.sweep.slurm import submit as submit_jobs

    _optuna_logs(args)
    spec = load_spec_with(args)
    settings = settings_with(parse_slurm(spec.slurm, source=spec.source), {
        "jobs": args.jobs, "gpus_per_job": args.gpus_per_job,
        "workers_per_device": args.workers_per_device, "partition": args.partition,
        "time": args.time, "account": args.account, "log_dir": args.log_dir,
        "additional": parse_key_values(args.slurm) if args.slurm else None})
    level = _logging.getLogger("lcrp").getEffectiveLevel()
    done = submit_jobs(spec, settings, log_level=level)
    print(f"submitted {len(done.job_ids)} job(s) for study {spec.study}: {' '.join(done.job_ids)}")
    print(f"  logs: {done.log_dir}/<job id>_*; follow with `lcrp sweep status {spec.study} "
          f"--storage {spec.storage}`")
    return 0


def load_spec_with(args):
    """The spec of ``args.spec`` with ``--root`` and ``--storage`` applied."""
    from lcrp_core.sweep.spec import load_sweep_spec

    spec = load_sweep_spec(args.spec, check_root=args.root is None)
    if args.root is not None:
        spec = spec.with_root(args.root)
        spec.check_root()
    if args.storage:
        spec = spec.with_storage(args.storage)
    return spec


def _devices(args, default) -> list[str]:
    """The worker slots from ``--devices`` (default: the spec's) and ``--workers-per-device``."""
    from lcrp_core.devices import parse_devices

    return parse_devices(args.devices or list(default), per_device=args.workers_per_device or 1)


def status(args) -> int:
    from lcrp_core.sweep.queue import open_queue
    from lcrp_core.sweep.status import format_status, study_status
    from lcrp_core.sweep.storage import default_storage_url, storage_errors

    _optuna_logs(args)
    url = args.storage or default_storage_url(args.study)
    with storage_errors(url):
        print(format_status(study_status(open_queue(args.study, url))))
    return 0


def check(args) -> int:
    from lcrp_core.sweep.spec import load_sweep_spec

    for path in args.specs:
        spec = load_sweep_spec(path, check_root=not args.no_root_check)
        if not args.no_root_check:
            spec.check_dataset()
        cells = spec.tpe.n_trials if spec.tpe is not None else len(spec.cells())
        print(f"{path}: ok (study {spec.study}, {spec.kind}, {cells} trials, hash {spec.hash()})")
    return 0


def delete(args) -> int:
    from lcrp_core.commands import confirm
    from lcrp_core.report.study import find_study
    from lcrp_core.sweep.queue import delete_sweep

    url = find_study(args.study, storage=args.storage)
    if not confirm(f"delete study {args.study!r} and all its trials from {url}?", yes=args.yes):
        print("nothing deleted")
        return 1
    n = delete_sweep(args.study, url)
    print(f"deleted study {args.study} ({n} trials) from {url}")
    return 0


def _exit_code(status) -> int:
    """1 when some cells gave up after their retries (listed above), else 0."""
    if status.failed:
        log.warning("%d cell(s) failed after max_retries; rerun to retry them with "
                    "`lcrp sweep run` after fixing the cause", len(status.failed))
        return 1
    return 0
