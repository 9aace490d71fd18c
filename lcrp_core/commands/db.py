"""`lcrp db studies|trials|show|export|import`: inspect the trial database, export it, and
import reference results (numbers from papers) as studies."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("db", parents=[common], help="inspect, export and import trial databases",
                       description="Inspect studies and trials, export them flat, or import "
                                   "reference results. Every action accepts --storage URL.")
    dsub = p.add_subparsers(dest="db_command", metavar="ACTION")
    dsub.required = True
    storage = argparse.ArgumentParser(add_help=False)
    storage.add_argument("--storage", default=None, metavar="URL",
                         help="sqlite:///FILE.db, journal:FILE.log or postgresql://...; default: "
                              "studies/STUDY.db, else any storage under studies/ holding the study")
    parents = [common, storage]

    q = dsub.add_parser("studies", parents=parents,
                        help="every study: trials by state, best J&F and its parameters")
    q.set_defaults(func=studies)

    q = dsub.add_parser("trials", parents=parents, help="the trials of one study")
    q.add_argument("study")
    q.add_argument("--sort", default="number", choices=("number", "jf", "j", "f", "time"),
                   help="number (default), jf/j/f (best first) or time (longest first)")
    q.add_argument("--state", action="append", default=None, metavar="STATE",
                   help="only these states (complete, running, waiting, fail, pruned); repeat the "
                        "option or separate with commas")
    q.set_defaults(func=trials)

    q = dsub.add_parser("show", parents=parents,
                        help="one trial: params, scores per video/expression, resources, provenance")
    q.add_argument("study")
    q.add_argument("trial", type=int, help="trial number (see `lcrp db trials STUDY`)")
    q.set_defaults(func=show)

    q = dsub.add_parser("export", parents=parents, help="one row per trial, flattened, as CSV or Parquet")
    q.add_argument("study")
    q.add_argument("--format", default="csv", choices=("csv", "parquet"))
    q.add_argument("--out", default=None, metavar="FILE",
                   help="output file (default: STUDY.csv / STUDY.parquet, STUDY_long.* with "
                        "--long; '-' writes CSV to stdout)")
    q.add_argument("--long", action="store_true",
                   help="one row per (trial, video, expression) with the expression text, J, F, "
                        "J&F and the trial's parameters (the form pandas/seaborn analyse)")
    q.set_defaults(func=export)

    q = dsub.add_parser("import", parents=parents,
                        help="store reference results from a CSV (N,K,H,delta,JF[,J,F]) as a study")
    q.add_argument("study")
    q.add_argument("csv", metavar="FILE.csv")
    q.add_argument("--source", default=None, metavar="TEXT",
                   help="where the numbers come from (default: the file name)")
    q.add_argument("--replace", action="store_true",
                   help="replace an existing reference study of that name")
    q.set_defaults(func=import_csv)


def studies(args: argparse.Namespace) -> int:
    from lcrp_core.report.db import studies_table
    from lcrp_core.report.study import load_storages
    from lcrp_core.report.tables import to_text
    from lcrp_core.sweep.storage import STUDIES_DIR, discover_storages

    urls = [args.storage] if args.storage else discover_storages(STUDIES_DIR)
    found = load_storages(urls, skip_unreadable=not args.storage)
    if not found:
        print(f"no studies in {args.storage or str(STUDIES_DIR) + '/'}")
        return 0
    print(to_text(studies_table(found)), end="")
    return 0


def trials(args: argparse.Namespace) -> int:
    from lcrp_core.report.db import select_trials, trials_table
    from lcrp_core.report.study import read_study
    from lcrp_core.report.tables import to_text

    study = read_study(args.study, storage=args.storage)
    states = [s for item in args.state or [] for s in item.split(",") if s.strip()]
    chosen = select_trials(study, sort=args.sort, states=[s.strip() for s in states] or None)
    print(f"study {study.name} ({study.kind}) in {study.url}: {len(chosen)} of "
          f"{len(study.trials)} trials")
    if chosen:
        print(to_text(trials_table(study, chosen)), end="")
    return 0


def show(args: argparse.Namespace) -> int:
    from lcrp_core.report.db import trial_text
    from lcrp_core.report.study import read_study

    print(trial_text(read_study(args.study, storage=args.storage), args.trial), end="")
    return 0


def export(args: argparse.Namespace) -> int:
    from lcrp_core.errors import ConfigError
    from lcrp_core.report.db import csv_bytes, export_records, long_records, parquet_bytes
    from lcrp_core.report.output import write_atomic
    from lcrp_core.report.study import read_study

    study = read_study(args.study, storage=args.storage)
    columns, records = long_records(study) if args.long else export_records(study)
    if args.out == "-":
        if args.format != "csv":
            raise ConfigError("only CSV can be written to stdout; give --out FILE", key="--out")
        sys.stdout.write(csv_bytes(columns, records).decode("utf-8"))
        return 0
    data = csv_bytes(columns, records) if args.format == "csv" else parquet_bytes(columns, records)
    stem = f"{study.name}_long" if args.long else study.name
    out = write_atomic(Path(args.out or f"{stem}.{args.format}"), data)
    if not args.quiet:
        what = "rows (trial × video × expression)" if args.long else "trials"
        print(f"wrote {len(records)} {what} × {len(columns)} columns to {out}")
    return 0


def import_csv(args: argparse.Namespace) -> int:
    from lcrp_core.report.db import import_reference
    from lcrp_core.sweep.storage import default_storage_url

    url = args.storage or default_storage_url(args.study)
    n = import_reference(args.study, args.csv, storage=url, source=args.source, replace=args.replace)
    if not args.quiet:
        print(f"imported {n} reference rows into study {args.study} ({url})")
    return 0
