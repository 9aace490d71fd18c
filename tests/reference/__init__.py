"""Import the vendored reference evaluators (see README.md here): davis2017-evaluation's
``davis2017`` package, vos-benchmark's ``vos_benchmark`` package and MeViS's ``tools/`` module
``eval_mevis`` (with its sibling ``metrics``), exactly as their own scripts import them."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent


def load(name: str) -> ModuleType:
    """``load("davis2017.evaluation")``, ``load("vos_benchmark.benchmark")``, ``load("eval_mevis")``."""
    for folder in (HERE, HERE / "mevis"):
        if str(folder) not in sys.path:
            sys.path.append(str(folder))
    return importlib.import_module(name)
