"""`lcrp report SPEC`: regenerate a report's tables and plots from the trial database."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "report", parents=[common],
        help="render the tables and plots of a report spec (reports/*.yaml)",
        description="Render every table (Markdown, HTML, LaTeX) and plot (PNG, PDF) of a report "
                    "spec into reports/<name>/, with an index.html. Missing or incomplete studies "
                    "are named in the output and in warnings. See docs/report-spec.md.")
    p.add_argument("spec", help="report spec, e.g. reports/lcrp_paper.yaml")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output folder (default: reports/<name>/ beside the spec)")
    p.add_argument("--storage", default=None, metavar="URL",
                   help="read every study from this storage (sqlite:///FILE.db, journal:FILE.log, "
                        "postgresql://...); default: the spec's storage, else studies/<study>.db")
    p.add_argument("--strict", action="store_true",
                   help="exit with status 1 when a study is missing or incomplete")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lcrp_core.report.build import build_report

    result = build_report(args.spec, out_dir=args.out, storage=args.storage)
    if not args.quiet:
        print(f"wrote {len(result.files)} files to {result.out_dir}/ "
              f"(open {result.out_dir / 'index.html'})")
    if result.warnings:
        print(f"{len(result.warnings)} warning(s): the report is incomplete (see index.html)")
    return 1 if args.strict and result.warnings else 0
