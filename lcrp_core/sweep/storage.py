"""Trial storage chosen by URL, as Optuna does it.

- ``sqlite:///studies/x.db`` (or a bare path ending in ``.db``): one worker, or a few on one machine;
- ``journal:studies/x.log`` (or a bare path ending in ``.log``/``.jsonl``): several worker processes
  on one machine (Optuna's JournalFileBackend, file-locked appends);
- ``postgresql://user:pw@host/db``: several machines; the only one with heartbeats.

The default for a study is ``sqlite:///studies/<study>.db`` under the working directory.

File storages are opened by absolute path (a relative one is resolved against the working
directory first). A journal is appended under a lock file ``<journal>.lock`` that is broken, with
one warning naming it, once it is older than :data:`JOURNAL_LOCK_GRACE_S` (a process killed while
appending leaves it behind). A journal never grows after a cut-off last line: an append that
fails (disk full) cuts its own partial line off again, and a partial line found before an append
is truncated with a warning naming the file and the byte offset. A journal line that does not
parse is a :class:`~lcrp_core.errors.DataError` naming the file and its byte offset.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lcrp_core.errors import ConfigError, DataError

if TYPE_CHECKING:
    import optuna

log = logging.getLogger("lcrp.sweep")

STUDIES_DIR = Path("studies")
_JOURNAL_SUFFIXES = (".log", ".jsonl")
#: A journal lock file older than this (seconds) was left by a killed process: it is broken.
JOURNAL_LOCK_GRACE_S = 30.0
_SQLITE_MAGIC = b"SQLite format 3\x00"


def default_storage_url(study: str, studies_dir: Path = STUDIES_DIR) -> str:
    return f"sqlite:///{studies_dir / f'{study}.db'}"


def normalize_url(url: str) -> str:
    """A storage URL from a URL or a bare file path (``x.db`` → sqlite, ``x.log`` → journal)."""
    if "://" in url or url.startswith("journal:"):
        return url
    if url.endswith(".db"):
        return f"sqlite:///{url}"
    if url.endswith(_JOURNAL_SUFFIXES):
        return f"journal:{url}"
    raise ConfigError("expected a storage URL (sqlite:///FILE.db, journal:FILE.log, "
                      "postgresql://USER@HOST/DB) or a path ending in .db or .log", key=url)


def storage_kind(url: str) -> str:
    """'sqlite', 'journal' or 'postgresql'."""
    url = normalize_url(url)
    if url.startswith("journal:"):
        return "journal"
    scheme = url.split("://", 1)[0].split("+", 1)[0]
    if scheme not in ("sqlite", "postgresql"):
        raise ConfigError(f"unsupported storage scheme {scheme!r}; expected sqlite, journal or postgresql",
                          key=url)
    return scheme


def storage_file(url: str) -> Path | None:
    """The file behind a sqlite or journal storage URL; None for a server (PostgreSQL)."""
    url = normalize_url(url)
    kind = storage_kind(url)
    if kind == "journal":
        return Path(url.removeprefix("journal:").removeprefix("//"))
    if kind == "sqlite":
        return Path(url.removeprefix("sqlite:///"))
    return None


def sqlalchemy_url(url: str) -> str:
    """A PostgreSQL URL with a driver SQLAlchemy can import: a bare ``postgresql://`` means
    psycopg (v3) to SQLAlchemy 2.1; use psycopg2 (the ``postgres`` extra) when psycopg is absent."""
    if not url.startswith("postgresql://"):
        return url
    import importlib.util

    if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2") is not None:
        return "postgresql+psycopg2://" + url.removeprefix("postgresql://")
    return url


def open_storage(url: str, *, heartbeat_interval: int | None = None,
                 grace_period: int | None = None,
                 stale_trial_callback: Callable[[optuna.Study, optuna.trial.FrozenTrial], None]
                 | None = None) -> optuna.storages.BaseStorage:
    """An Optuna storage for ``url``; folders of a file storage are created.

    Heartbeats (``heartbeat_interval``, ``grace_period``, seconds) apply to PostgreSQL only;
    ``stale_trial_callback`` is called on each trial failed for a stale heartbeat (default:
    re-queue it with RetryHeartbeatStaleTrialCallback).
    """
    import optuna
    from optuna.storages.journal import JournalStorage

    url = normalize_url(url)
    kind = storage_kind(url)
    path = storage_file(url)
    if path is not None:
        path = path.absolute()
        path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "journal":
        return JournalStorage(_journal_backend(path))
    kwargs: dict[str, Any] = {}
    if kind == "sqlite":
        url, kwargs = f"sqlite:///{path}", {"engine_kwargs": {"connect_args": {"timeout": 60}}}
    elif heartbeat_interval:
        callback = stale_trial_callback or optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=None)
        kwargs = {"heartbeat_interval": heartbeat_interval, "grace_period": grace_period,
                  "heartbeat_stale_trial_callback": callback}
    with storage_errors(url):
        return optuna.storages.RDBStorage(sqlalchemy_url(url), **kwargs)


def shown_url(url: str) -> str:
    """``url`` with its password hidden, for messages."""
    if "://" not in url or "@" not in url:
        return url
    try:
        import sqlalchemy

        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # not parseable: show only the scheme and host part after '@'
        return url.split("://", 1)[0] + "://***@" + url.rsplit("@", 1)[1]


@contextmanager
def storage_errors(url: str) -> Iterator[None]:
    """Turn a database failure inside the block (unreachable server, a file that is not a
    database, disk full) into a DataError naming the storage and the driver's own message."""
    import sqlalchemy.exc
    from optuna.exceptions import StorageInternalError

    try:
        yield
    except (sqlalchemy.exc.SQLAlchemyError, StorageInternalError) as exc:
        cause = exc.__cause__ if isinstance(exc, StorageInternalError) else exc
        if not isinstance(cause, sqlalchemy.exc.SQLAlchemyError):
            raise
        orig = getattr(cause, "orig", None) or cause
        first = next((line for line in str(orig).splitlines() if line.strip()), type(cause).__name__)
        raise DataError(f"storage failed: {first.strip()[:300]}", key=shown_url(url)) from exc


def check_storage_file(url: str) -> None:
    """Refuse, naming the file, an existing SQLite file that is not a database (empty, garbage or
    cut before its header): reading it would fail with a traceback, and opening an empty one
    would write a schema into it. A missing file is refused too (reading never creates one)."""
    path = storage_file(url)
    if path is None:
        return
    if not path.is_file():
        raise DataError("storage file not found", key=normalize_url(url))
    if storage_kind(url) != "sqlite":
        return
    with open(path, "rb") as fh:
        head = fh.read(len(_SQLITE_MAGIC))
    if not head:
        raise DataError("empty file (0 bytes), not an SQLite trial database", path=path)
    if head != _SQLITE_MAGIC:
        raise DataError("not an SQLite trial database (no SQLite header: garbage or truncated)",
                        path=path)


def _journal_backend(path: Path) -> Any:
    """Optuna's JournalFileBackend on ``path`` with a lock that breaks when stale and appends
    that never follow a cut-off line (see the module doc)."""
    return _journal_backend_class()(str(path), lock_obj=_JournalLock(f"{path}.lock"))


class _JournalLock:
    """An O_EXCL lock file (Optuna's lock interface: acquire/release); one older than
    JOURNAL_LOCK_GRACE_S is broken with a warning naming it."""

    def __init__(self, lock: str):
        self.lock = lock

    def acquire(self) -> bool:
        delay = 0.001
        while True:
            try:
                os.close(os.open(self.lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                return True
            except FileExistsError:
                _break_stale_lock(self.lock)
            time.sleep(delay)
            delay = min(2 * delay, 0.05)

    def release(self) -> None:
        try:
            os.unlink(self.lock)
        except FileNotFoundError:
            pass


@functools.cache
def _journal_backend_class() -> type:
    """The JournalFileBackend subclass, built on first use (Optuna is imported lazily); module
    attribute ``_JournalBackend`` (see __getattr__), so storages pickle like Optuna's own."""
    from optuna.storages.journal import JournalFileBackend

    class _JournalBackend(JournalFileBackend):
        def read_logs(self, log_number_from: int) -> Iterator[dict[str, Any]]:
            try:
                yield from super().read_logs(log_number_from)
            except ValueError as exc:  # json.JSONDecodeError is one
                raise _journal_corrupt(self._file_path) from exc

        def append_logs(self, logs: list[dict[str, Any]]) -> None:
            text = "".join(json.dumps(entry, separators=(",", ":")) + "\n" for entry in logs)
            self._lock.acquire()
            try:
                with open(self._file_path, "rb+", buffering=0) as fh:  # no buffer to flush
                    end = _cut_partial_line(fh, self._file_path)
                    fh.seek(end)
                    data = memoryview(text.encode("utf-8"))
                    try:
                        while data:
                            data = data[fh.write(data):]
                        os.fsync(fh.fileno())
                    except OSError as exc:
                        fh.truncate(end)  # never leave a cut-off line behind (disk full)
                        raise OSError(exc.errno, exc.strerror, self._file_path) from exc
                    except BaseException:
                        fh.truncate(end)
                        raise
            finally:
                self._lock.release()

    _JournalBackend.__module__, _JournalBackend.__qualname__ = __name__, "_JournalBackend"
    return _JournalBackend


def __getattr__(name: str) -> Any:
    if name == "_JournalBackend":
        return _journal_backend_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _break_stale_lock(lock: str) -> None:
    try:
        age = time.time() - os.lstat(lock).st_mtime
    except FileNotFoundError:
        return
    if age <= JOURNAL_LOCK_GRACE_S:
        return
    aside = f"{lock}.{uuid.uuid4().hex}.stale"
    try:
        os.rename(lock, aside)  # atomic: one process breaks it
    except FileNotFoundError:
        return
    os.unlink(aside)
    log.warning("%s: broke a stale journal lock (%.0f s old, left by a killed process)", lock, age)


def _cut_partial_line(fh: Any, path: str) -> int:
    """The journal's size after cutting off a last line that has no newline (left by a write
    that failed); a warning names the file, the offset and the bytes dropped."""
    size = fh.seek(0, os.SEEK_END)
    if size == 0:
        return 0
    fh.seek(size - 1)
    if fh.read(1) == b"\n":
        return size
    end = size
    while end > 0:
        start = max(0, end - 65536)
        fh.seek(start)
        chunk = fh.read(end - start)
        cut = chunk.rfind(b"\n")
        if cut >= 0:
            end = start + cut + 1
            break
        end = start
    fh.truncate(end)
    log.warning("%s: cut off a partial last line at byte offset %d (%d bytes, left by a write "
                "that failed)", path, end, size - end)
    return end


def _journal_corrupt(path: str) -> DataError:
    """A DataError naming the first journal line that does not parse and its byte offset."""
    offset = 0
    with open(path, "rb") as fh:
        for number, line in enumerate(fh):
            try:
                if not line.endswith(b"\n"):
                    raise ValueError("no newline")
                json.loads(line)
            except ValueError:
                return DataError(f"corrupt journal: line {number + 1} at byte offset {offset} is "
                                 f"not a complete JSON record; restore the file from a backup or "
                                 f"cut it before that offset", path=path)
            offset += len(line)
    return DataError("corrupt journal (a record does not parse)", path=path)


def discover_storages(studies_dir: Path = STUDIES_DIR) -> list[str]:
    """URLs of the file storages under ``studies_dir`` (``*.db`` and journal files), sorted."""
    if not studies_dir.is_dir():
        return []
    files = sorted(p for p in studies_dir.iterdir()
                   if p.suffix == ".db" or p.suffix in _JOURNAL_SUFFIXES)
    return [normalize_url(str(p)) for p in files]
