"""Atomic file writes: a temporary file beside the destination, moved into place with
``os.replace``, so a crash never leaves a half-written file behind.

Used by every layer that writes a file (dataset writers, the feature cache, predictions,
reports); failures are :class:`~lcrp_core.errors.DataError` naming the file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

from lcrp_core.errors import DataError, environment_error


@lru_cache(maxsize=1)
def process_umask() -> int:
    """The process umask, read on first use and cached (reading it means setting it, so it is
    set back at once): written files get the permissions open() would give them."""
    umask = os.umask(0)
    os.umask(umask)
    return umask


@contextmanager
def atomic_open(path: str | Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; move it onto ``path`` on success.

    The parent folder is created. On an exception the temporary file is removed and
    ``path`` is left as it was.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise DataError(f"cannot write ({exc.strerror or exc})", path=path) from None
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            os.fchmod(f.fileno(), 0o666 & ~process_umask())  # mkstemp creates 0600
            yield f
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if environment_error(exc) is None or exc.filename:
            raise
        raise DataError(f"cannot write ({exc.strerror or exc})", path=path) from exc  # disk full
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | Path, obj: Any, *, indent: int | None = None) -> None:
    """Write ``obj`` as UTF-8 JSON, atomically (temp file + rename)."""
    with atomic_open(path, "w") as f:
        json.dump(obj, f, indent=indent, ensure_ascii=False)
