"""Reading the YAML files a user writes (sweep specs, report specs, backend configs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from lcrp_core.errors import ConfigError


def read_yaml(path: str | Path, *, what: str) -> Any:
    """The parsed content of ``path``; a missing or unreadable file or bad YAML is one
    ConfigError naming the file (``what`` says what the file is, e.g. "sweep spec")."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} not found", path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {what} ({getattr(exc, 'strerror', None) or exc})",
                          path=path) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"invalid YAML{where}: {getattr(exc, 'problem', None) or exc}",
                          path=path) from None
