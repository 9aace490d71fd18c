"""One module per `lcrp` subcommand (see lcrp_core.cli), and the helpers they share."""

from __future__ import annotations

import sys

from lcrp_core.errors import LcrpError


def confirm(question: str, *, yes: bool) -> bool:
    """True when ``yes`` (``--yes``) or the user answers y on the terminal; without a terminal
    (a script, a pipe, a batch job) an LcrpError asks for ``--yes`` instead of reading stdin."""
    if yes:
        return True
    if not sys.stdin.isatty():
        raise LcrpError(f"{question} needs confirmation and stdin is not a terminal; pass --yes",
                        key="--yes")
    try:
        return input(f"{question} [y/N] ").strip().lower() == "y"
    except EOFError:
        return False
