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


#: OS errors a user fixes outside the program (space, quota, permissions, a read-only disk).
_ENVIRONMENT_ERRNOS = frozenset({"ENOSPC", "EDQUOT", "EFBIG", "EROFS", "EACCES", "EPERM", "EIO",
                                 "EMFILE", "ENFILE", "ENOMEM"})


def environment_error(exc: BaseException) -> str | None:
    """One line for a failure of the machine rather than of the program — disk full, a file
    too large for its limit, permission denied, out of memory, a storage server that cannot be
    reached or a database file that is not one — or None for anything else.

    Wrapped causes are unwrapped (Optuna re-raises SQLAlchemy's "database or disk is full" as
    a misleading "exceeding max length"): the message is the innermost cause's.
    """
    import errno

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, MemoryError):
            return f"out of memory ({exc or 'an allocation failed'})"
        if isinstance(exc, OSError) and errno.errorcode.get(exc.errno or 0) in _ENVIRONMENT_ERRNOS:
            where = exc.filename or getattr(exc, "lcrp_path", None)
            what = exc.strerror or str(exc)
            return f"{where}: {what}" if where else what
        orig = getattr(exc, "orig", None)  # a SQLAlchemy DBAPIError: the driver's own error
        if orig is not None and type(exc).__module__.startswith("sqlalchemy"):
            line = " ".join(str(orig).split())[:300]
            url = getattr(exc, "lcrp_url", None)
            return f"{url}: {line}" if url else f"storage error: {line}"
        exc = exc.__cause__ or exc.__context__
    return None
