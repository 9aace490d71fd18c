"""`lcrp sweep run|worker|status|check`: sweep studies on Optuna (docs/sweep-spec.md)."""

from __future__ import annotations

import argparse
import logging
import sys

log = logging.getLogger("lcrp")


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
    r.add_argument("spec", help="sweep spec (YAML), e.g. sweeps/demo_mevis_nk.yaml")
    r.add_argument("--storage", help="storage URL (default: the spec's, else "
                                     "sqlite:///studies/<study>.db)")
    r.add_argument("--devices", help="cpu, cpu,cpu or cuda:0,cuda:1 (default: the spec's)")
    r.add_argument("--workers", type=int, help="worker processes (default: one per device; "
                                               "more are spread round-robin over the devices)")
    r.add_argument("--root", help="dataset root (overrides the spec's dataset.root)")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.set_defaults(func=run)

    w = cmds.add_parser("worker", parents=[common], help="join a running study",
                        description="Evaluate waiting trials of an existing study (e.g. from "
                                    "another machine against the same PostgreSQL URL); the spec "
                                    "is read from the study.")
    w.add_argument("--study", required=True, help="study name")
    w.add_argument("--storage", help="storage URL (default: sqlite:///studies/<study>.db)")
    w.add_argument("--devices", help="cpu, cpu,cpu or cuda:0,cuda:1 (default: the spec's)")
    w.add_argument("--workers", type=int, help="worker processes (default: one per device)")
    w.add_argument("--root", help="dataset root on this machine (default: the spec's)")
    w.add_argument("--cache-dir", help="feature cache on this machine (default: the spec's)")
    w.add_argument("--events", action="store_true", help=argparse.SUPPRESS)  # for `sweep run`
    w.set_defaults(func=worker)

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
    from lcrp_core.devices import parse_devices
    from lcrp_core.sweep.driver import run_sweep
    from lcrp_core.sweep.spec import load_spec
    from lcrp_core.sweep.status import format_status
    from lcrp_core.sweep.storage import storage_errors

    _optuna_logs(args)
    spec = load_spec(args.spec, check_root=args.root is None)
    if args.root is not None:
        spec = spec.with_root(args.root)
        spec.check_root()
    if args.storage:
        spec = spec.with_storage(args.storage)
    if args.devices:
        from dataclasses import replace

        spec = replace(spec, devices=tuple(parse_devices(args.devices)))
    with storage_errors(spec.storage):
        result = run_sweep(spec, workers=args.workers,
                           progress=not (args.quiet or args.no_progress), verbose=args.verbose)
    print(format_status(result.status))
    print(f"  {result.computed} trial(s) computed by this run")
    return _exit_code(result.status)


def worker(args) -> int:
    from lcrp_core.sweep.queue import load_sweep
    from lcrp_core.sweep.storage import default_storage_url, storage_errors

    _optuna_logs(args)
    url = args.storage or default_storage_url(args.study)
    with storage_errors(url):
        return _worker(args, load_sweep(args.study, url))


def _worker(args, queue) -> int:
    from lcrp_core.devices import parse_devices
    from lcrp_core.sweep.driver import drive, worker_slots
    from lcrp_core.sweep.status import format_status, study_status
    from lcrp_core.sweep.worker import run_worker

    devices = parse_devices(args.devices) if args.devices else list(queue.spec.devices)
    slots = worker_slots(devices, args.workers)
    if len(slots) == 1:
        report = run_worker(queue, device=slots[0], root=args.root, cache_dir=args.cache_dir,
                            events=sys.stdout if args.events else None)
        log.info("worker %s: %d completed, %d pruned, %d failed", slots[0], report.completed,
                 report.pruned, report.failed)
        return 0
    result = drive(queue, slots=slots, root=args.root, cache_dir=args.cache_dir,
                   progress=not args.quiet, verbose=args.verbose)
    print(format_status(result.status))
    return _exit_code(study_status(queue))


def status(args) -> int:
    from lcrp_core.sweep.queue import load_sweep
    from lcrp_core.sweep.status import format_status, study_status
    from lcrp_core.sweep.storage import default_storage_url, storage_errors

    _optuna_logs(args)
    url = args.storage or default_storage_url(args.study)
    with storage_errors(url):
        print(format_status(study_status(load_sweep(args.study, url))))
    return 0


def check(args) -> int:
    from lcrp_core.sweep.spec import load_spec

    for path in args.specs:
        spec = load_spec(path, check_root=not args.no_root_check)
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
