"""Reading studies from trial storage (the I/O edge of reports and `lcrp db`).

A study is found by name: in ``--storage`` when given; else in its default storage
``sqlite:///studies/NAME.db``; else in any storage under ``studies/`` that holds it. A storage
file that does not exist is never created by reading.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lcrp_core import schema
from lcrp_core.errors import DataError
from lcrp_core.sweep.storage import (
    STUDIES_DIR,
    check_storage_file,
    default_storage_url,
    discover_storages,
    normalize_url,
    open_storage,
    storage_errors,
    storage_file,
)

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

log = logging.getLogger("lcrp.report")

#: Trial states in the order tables list them (Optuna's names).
STATES = ("COMPLETE", "RUNNING", "WAITING", "FAIL", "PRUNED")


class MissingStudy(DataError):
    """A study name that no storage searched holds."""


@dataclass(frozen=True)
class StudyData:
    """One study as stored: its user_attrs (docs/trial-schema.md) and every trial, by number."""

    name: str
    url: str
    user_attrs: Mapping[str, Any]
    trials: tuple[FrozenTrial, ...] = field(repr=False)
    direction: str = "maximize"

    @property
    def kind(self) -> str:
        """``grid``, ``points``, ``tpe``, ``reference``, or ``unknown`` for a foreign study."""
        return schema.study_kind(self.user_attrs)

    @property
    def cells(self) -> list[Mapping[str, Any]]:
        """The spec's cells in order (``lcrp_cells``); empty for TPE and foreign studies."""
        return schema.study_cells(self.user_attrs)

    @property
    def schema_version(self) -> int:
        """The trial schema version the study was written with (1: before versions)."""
        return schema.schema_version(self.user_attrs)

    def state_counts(self) -> dict[str, int]:
        """Trials per state name, every name in STATES present."""
        counts = Counter(t.state.name for t in self.trials)
        return {s: counts.get(s, 0) for s in STATES} | dict(counts)

    def trial(self, number: int) -> FrozenTrial:
        for t in self.trials:
            if t.number == number:
                return t
        raise DataError(f"no trial {number} in study {self.name!r} "
                        f"(trials {self.trials[0].number}..{self.trials[-1].number})"
                        if self.trials else f"study {self.name!r} has no trials", key=self.url)


def storage_exists(url: str) -> bool:
    path = storage_file(url)
    return path is None or path.is_file()


def _open_existing(url: str) -> optuna.storages.BaseStorage:
    url = normalize_url(url)
    check_storage_file(url)  # missing, empty or not a database: refused, never written into
    return open_storage(url)


def study_names(url: str) -> list[str]:
    """Names of the studies in an existing storage, in creation order."""
    with storage_errors(url):
        return [s.study_name for s in _open_existing(url).get_all_studies()]


def _readable(urls: Sequence[str], read: Callable[[str], Any]) -> Iterator[tuple[str, Any]]:
    """(url, read(url)) for each discovered storage that can be read; one that cannot (a corrupt
    file under studies/) is skipped with a warning naming it and why."""
    for url in urls:
        try:
            yield url, read(url)
        except DataError as exc:
            log.warning("skipped %s", exc)


def find_study(name: str, *, storage: str | None = None,
               studies_dir: Path = STUDIES_DIR) -> str:
    """The URL of the storage holding study ``name`` (see the module doc). Raises MissingStudy."""
    if storage is not None:
        url = normalize_url(storage)
        if storage_exists(url) and name in study_names(url):
            return url
        raise MissingStudy(f"no study {name!r} in this storage", key=url)
    default = default_storage_url(name, studies_dir)
    if storage_exists(default) and name in study_names(default):
        return default
    holders = [u for u, names in _readable(discover_storages(studies_dir), study_names)
               if name in names]
    if len(holders) == 1:
        return holders[0]
    if holders:
        raise DataError(f"study {name!r} is in several storages {holders}; pass --storage", key=name)
    raise MissingStudy(f"study not found in {default} nor in any storage under {studies_dir}/",
                       key=name)


def read_study(name: str, *, storage: str | None = None,
               studies_dir: Path = STUDIES_DIR) -> StudyData:
    """Study ``name`` with all its trials (see find_study for where it is looked up)."""
    url = find_study(name, storage=storage, studies_dir=studies_dir)
    with storage_errors(url):
        return _read(_open_existing(url), url, name)


def load_storage(url: str) -> list[StudyData]:
    """Every study in one existing storage, in creation order."""
    with storage_errors(url):
        backend = _open_existing(url)
        return [_read(backend, normalize_url(url), s.study_name) for s in backend.get_all_studies()]


def load_storages(urls: Sequence[str], *, skip_unreadable: bool = False) -> list[StudyData]:
    """Every study of every storage in ``urls``; ``skip_unreadable`` (storages discovered under
    studies/) skips a corrupt one with a warning instead of failing."""
    if skip_unreadable:
        return [study for _, studies in _readable(urls, load_storage) for study in studies]
    return [study for url in urls for study in load_storage(url)]


def _read(backend: optuna.storages.BaseStorage, url: str, name: str) -> StudyData:
    study_id = backend.get_study_id_from_name(name)
    directions = backend.get_study_directions(study_id)
    trials = sorted(backend.get_all_trials(study_id, deepcopy=False), key=lambda t: t.number)
    return StudyData(name=name, url=url, user_attrs=backend.get_study_user_attrs(study_id),
                     trials=tuple(trials), direction=directions[0].name.lower())


@contextmanager
def quiet_optuna() -> Iterator[None]:
    """Silence Optuna's INFO lines ("A new study created ...") for a block; restores the level."""
    import optuna

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(max(level, optuna.logging.WARNING))
    try:
        yield
    finally:
        optuna.logging.set_verbosity(level)
