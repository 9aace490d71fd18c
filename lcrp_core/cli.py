"""The `lcrp` console script: one argparse parser, one module per subcommand in lcrp_core.commands.

Each command module defines ``register(subparsers, common)``, where ``common`` is the parent parser
that carries -v/-q, and sets ``func`` on its parser(s); ``func(args) -> int`` is the exit code.
Modules are imported when the parser is built, so keep heavy imports (torch, optuna) inside ``func``.
An LcrpError, or a failure of the machine (disk full, out of memory, an unreachable storage:
errors.environment_error), is printed as one line (its traceback only under -v) and exits with 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from lcrp_core import __version__
from lcrp_core.errors import LcrpError, environment_error

#: Subcommand modules under lcrp_core.commands, in the order `lcrp --help` lists them.
COMMANDS = (
    "demo",
    "data",
    "extract",
    "cache",
    "run",
    "eval",
    "predict",
    "submit",
    "sweep",
    "report",
    "db",
)

log = logging.getLogger("lcrp")


def _verbosity_parser(*, suppress: bool) -> argparse.ArgumentParser:
    """-v/-q, accepted before and after the subcommand. The subcommands' copies leave an absent
    flag unset (SUPPRESS) so that they do not reset what was given before the subcommand."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_mutually_exclusive_group()
    default = {"default": argparse.SUPPRESS} if suppress else {}
    group.add_argument("-v", "--verbose", action="count", help="more output; -v also shows "
                       "tracebacks on errors", **(default or {"default": 0}))
    group.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors",
                       **default)
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _verbosity_parser(suppress=True)
    parser = argparse.ArgumentParser(
        prog="lcrp", parents=[_verbosity_parser(suppress=False)],
        description="Ablation sweeps for training-free referring video object segmentation.",
    )
    parser.add_argument("--version", action="version", version=f"lcrp {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"lcrp_core.commands.{name}").register(sub, common)
    return parser


def setup_logging(verbose: int, quiet: bool, *, optuna_used: bool = True) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s" if verbose == 0 else
                                           "%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("lcrp")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    if verbose == 0 and optuna_used:  # Optuna's per-trial INFO lines only with -v
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # a command that never imports optuna sets optuna_used=False: no ~1 s import at start-up
    setup_logging(args.verbose, args.quiet, optuna_used=getattr(args, "optuna_used", True))
    try:
        return int(args.func(args) or 0)
    except LcrpError as exc:
        if args.verbose:
            log.exception("error")
        print(f"lcrp {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lcrp {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # disk full, out of memory, storage unreachable: one line too
        message = environment_error(exc)
        if message is None:
            raise
        if args.verbose:
            log.exception("error")
        print(f"lcrp {args.command}: error: {message}", file=sys.stderr)
        return 2
