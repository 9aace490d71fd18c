"""Trial storage chosen by URL, as Optuna does it.

- ``sqlite:///studies/x.db`` (or a bare path ending in ``.db``): one worker, or a few on one machine;
- ``journal:studies/x.log`` (or a bare path ending in ``.log``/``.jsonl``): several worker processes
  on one machine (Optuna's JournalFileBackend, file-locked appends);
- ``postgresql://user:pw@host/db``: several machines; the only one with heartbeats.

The default for a study is ``sqlite:///studies/<study>.db`` under the working directory.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from lcrp_core.errors import ConfigError

if TYPE_CHECKING:
    import optuna

STUDIES_DIR = Path("studies")
_JOURNAL_SUFFIXES = (".log", ".jsonl")


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
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    url = normalize_url(url)
    kind = storage_kind(url)
    path = storage_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "journal":
        return JournalStorage(JournalFileBackend(str(path)))
    if kind == "sqlite":
        return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
    kwargs = {}
    if heartbeat_interval:
        callback = stale_trial_callback or optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=None)
        kwargs = {"heartbeat_interval": heartbeat_interval, "grace_period": grace_period,
                  "heartbeat_stale_trial_callback": callback}
    return optuna.storages.RDBStorage(sqlalchemy_url(url), **kwargs)


def discover_storages(studies_dir: Path = STUDIES_DIR) -> list[str]:
    """URLs of the file storages under ``studies_dir`` (``*.db`` and journal files), sorted."""
    if not studies_dir.is_dir():
        return []
    files = sorted(p for p in studies_dir.iterdir()
                   if p.suffix == ".db" or p.suffix in _JOURNAL_SUFFIXES)
    return [normalize_url(str(p)) for p in files]
