"""User-facing errors: one clear message naming the file, key or value and what was expected."""

from __future__ import annotations

from pathlib import Path


class LcrpError(Exception):
    """An error the user can act on. The CLI prints it in one line and exits non-zero."""

    def __init__(self, message: str, *, path: str | Path | None = None, key: str | None = None):
        self.path = str(path) if path is not None else None
        self.key = key
        where = []
        if self.path:
            where.append(self.path)
        if key:
            where.append(key)
        prefix = ": ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class DataError(LcrpError):
    """A dataset file or folder is missing or malformed."""


class ConfigError(LcrpError):
    """A spec, config or parameter value is invalid."""


class WeightsError(LcrpError):
    """Model weights are missing or do not match their config."""
