"""A study as an exactly-once work queue on Optuna.

Every unit of work is enqueued once when the study is created: each grid/points cell
(``enqueue_trial`` with the cell's params and ``user_attrs`` ``lcrp_cell``/``attempt``,
:func:`lcrp_core.schema.unit_attrs`), and for
TPE ``n_trials`` empty slots (``lcrp_slot``; the sampler fills their params when a worker runs
them). Workers only ever pop WAITING trials, never create new ones, so a study runs each cell
once whatever the number of workers, and a TPE study runs exactly ``n_trials``.

Popping is Optuna's own WAITING → RUNNING transition (``set_trial_state_values``). Every pop,
reap, fail + re-queue and enqueue of a study runs under one lock (:func:`queue_lock`): an
``flock`` on ``<storage file>.lcrp-lock`` for SQLite and journal files (one machine), a session
advisory lock for PostgreSQL. SQLite needs it most: pysqlite opens its transaction only at the
first write, so Optuna's read-check-write pop alone is not atomic there.

A failed cell is re-queued as a new trial (same params, ``attempt`` + 1) at most ``max_retries``
times; a rerun of ``lcrp sweep run`` gives a cell that gave up a fresh budget. A worker that dies mid-trial leaves its trial RUNNING: :func:`reap` fails it and re-queues
its cell when the trial's recorded host is this machine and its pid is gone (or is a zombie, or
was reused by another process); on PostgreSQL heartbeats do the same for workers on other
machines (``heartbeat_interval``, ``grace_period``; the stale-trial callback re-queues).
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import logging
import os
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from lcrp_core import schema
from lcrp_core.errors import ConfigError
from lcrp_core.sweep.spec import SweepSpec, parse_sweep_spec, study_identity
from lcrp_core.sweep.storage import (
    check_storage_file,
    normalize_url,
    open_storage,
    sqlalchemy_url,
    storage_errors,
    storage_file,
    storage_kind,
)

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

log = logging.getLogger("lcrp.sweep")

def unit_of(trial: FrozenTrial) -> str | None:
    """The cell (``c000``) or TPE slot (``t000``) a trial runs; None for a foreign trial."""
    return schema.unit(trial.user_attrs)


# --- opening a study ---------------------------------------------------------------------------

def name_objective(study) -> None:
    """Name the objective "J&F" (``set_metric_names``) so optuna-dashboard labels it."""
    import warnings

    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["J&F"])


def prepare_study(spec: SweepSpec) -> SweepQueue:
    """Create the study (or resume it) and enqueue every cell/slot that has no trial yet.

    Resuming checks the dataset's contents (fingerprint), not its path. A spec that adds points
    extends the study: only the new cells are enqueued, the finished ones are kept. A spec whose
    other result-defining parts differ, or that drops cells, is refused with what differs.
    Nothing is written before the spec and the dataset have been checked.
    """
    import optuna
    from optuna.trial import TrialState

    from lcrp_core.sweep.fingerprint import dataset_fingerprint

    ds = spec.dataset
    fingerprint = dataset_fingerprint(ds.kind, ds.root, ds.split, ds.videos)
    with _creation_lock(spec), queue_lock(spec):  # two runs on a new storage: one creates it
        storage = _open_storage(spec)
        study = optuna.create_study(study_name=spec.study, storage=storage, direction="maximize",
                                    load_if_exists=True)
        attrs = study.user_attrs
        if schema.SPEC_HASH in attrs:
            spec = _resume(spec, study, attrs, fingerprint)
        elif study.get_trials(deepcopy=False):
            raise ConfigError(f"study {spec.study!r} in {spec.storage} exists and is not an lcrp "
                              f"sweep study", path=spec.source, key="study")
        else:
            cells = None if spec.kind == "tpe" else [c.to_json() for c in spec.cells()]
            for key, value in schema.study_attrs(spec=spec.to_json(), kind=spec.kind,
                                                 dataset=fingerprint, cells=cells).items():
                study.set_user_attr(key, value)
            name_objective(study)
            study.set_user_attr(schema.SPEC_HASH, spec.hash())  # last: marks the study as complete
        by_unit: dict[str | None, list[FrozenTrial]] = {}
        for t in study.get_trials(deepcopy=False):
            by_unit.setdefault(unit_of(t), []).append(t)
        for unit, params in units(spec).items():  # new, or gave up before: a fresh retry budget
            if all(t.state == TrialState.FAIL for t in by_unit.get(unit, [])):
                enqueue(spec, study, unit, params, attempt=0)
    return SweepQueue(spec, study, storage)


@contextmanager
def _creation_lock(spec: SweepSpec) -> Iterator[None]:
    """PostgreSQL: one advisory lock for the whole database while its schema may be created
    (studies of different names race on it too). File storages: nothing more than queue_lock."""
    if storage_kind(spec.storage) != "postgresql":
        yield
        return
    with storage_errors(spec.storage), _advisory_lock(spec.storage, "lcrp: create storage"):
        yield


def delete_sweep(study_name: str, url: str) -> int:
    """Delete study ``study_name`` and its trials from the storage at ``url`` (under the queue
    lock, so no worker pops from it meanwhile); the number of trials it had. The stored spec is
    not parsed, so a study an older lcrp wrote can be deleted too."""
    import optuna

    check_storage_file(url)  # refuses a missing file or a non-database; never creates one
    storage = open_storage(url)
    try:
        trials = optuna.load_study(study_name=study_name, storage=storage).get_trials(deepcopy=False)
    except KeyError as exc:
        raise ConfigError(f"no study {study_name!r} in this storage", path=url, key="study") from exc
    running = [t.number for t in trials if t.state.name == "RUNNING"]
    with queue_lock(_LockKey(normalize_url(url), study_name)):
        if running:
            log.warning("study %s had running trial(s) %s: their workers' results are dropped",
                        study_name, running)
        optuna.delete_study(study_name=study_name, storage=storage)
    return len(trials)


@dataclass(frozen=True)
class _LockKey:
    """What queue_lock needs of a spec: its storage URL and study name."""

    storage: str
    study: str


def _resume(spec: SweepSpec, study: optuna.Study, attrs: Mapping[str, Any],
            fingerprint: Mapping[str, Any]) -> SweepSpec:
    """Check ``spec`` against the existing study and extend it with the spec's new cells; the
    spec to run (its cells in the study's order, so cell ids never move)."""
    from dataclasses import replace

    from lcrp_core.sweep.fingerprint import fingerprint_diff

    stored = attrs.get(schema.SPEC, {})
    where = f"study {spec.study!r} in {spec.storage}"
    if study_identity(stored) != study_identity(spec.to_json()):
        diff = spec_diff(study_identity(stored), study_identity(spec.to_json()))
        raise ConfigError(f"{where} was created from a different spec ({'; '.join(diff)}); use "
                          f"another study name or storage, or delete the study",
                          path=spec.source, key="study")
    old_print = attrs.get(schema.DATASET)
    if old_print is None:  # a study from before fingerprints: adopt this dataset's
        study.set_user_attr(schema.DATASET, dict(fingerprint))
    elif old_print.get("digest") != fingerprint["digest"]:
        raise ConfigError(f"the dataset at {spec.dataset.root} is not the one {where} was run on "
                          f"({fingerprint_diff(old_print, fingerprint)})", path=spec.source,
                          key="dataset.root")
    if spec.kind == "tpe":
        return spec
    old = {_cell_key(c["params"], c["repeat"]): c for c in attrs.get(schema.CELLS, [])}
    new = {_cell_key(c.params.to_short(), c.repeat): c for c in spec.cells()}
    dropped = [c for key, c in old.items() if key not in new]
    if dropped:
        names = spec.swept_names()

        def label(c: Mapping[str, Any]) -> str:
            values = " ".join(f"{n}={c['params'][n]}" for n in names)
            return f"{c['cell']} ({values})"

        shown = ", ".join(label(c) for c in dropped[:5]) + (" ..." if len(dropped) > 5 else "")
        raise ConfigError(f"the spec drops cell(s) {shown} of {where}; a study's cells can only "
                          f"be added to (use another study name to run fewer or other cells)",
                          path=spec.source, key=spec.kind)
    running = parse_sweep_spec(stored, source=where, check_root=False)
    added = [c for key, c in new.items() if key not in old]
    if added:
        if spec.kind == "grid":
            raise ConfigError(f"adding values to the grid of {where} is not supported: their cells "
                              f"would renumber the finished ones; run them as a points study",
                              path=spec.source, key="grid")
        if not schema.numeric_params(attrs):
            raise ConfigError(f"{where} records its parameters as categorical (it was created by an "
                              f"older lcrp), so no values can be added; use another study name",
                              path=spec.source, key="points")
        first = sorted({spec.cells().index(c) // spec.repeats for c in added})
        grown = dict(stored, points=list(stored["points"]) + [dict(spec.points[i]) for i in first])
        running = parse_sweep_spec(grown, source=where, check_root=False)
        study.set_user_attr(schema.SPEC, running.to_json())
        study.set_user_attr(schema.CELLS, [c.to_json() for c in running.cells()])
        study.set_user_attr(schema.SPEC_HASH, running.hash())
        log.info("study %s extended by %d cell(s): %s", spec.study, len(added),
                 ", ".join(c.cell for c in running.cells()[len(old):]))
    return replace(spec, grid=running.grid, points=running.points)


def _cell_key(params: Mapping[str, Any], repeat: int) -> str:
    return json.dumps([dict(params), repeat], sort_keys=True)


def open_queue(study_name: str, url: str) -> SweepQueue:
    """An existing sweep study, with the resolved spec stored in it (for workers and status)."""
    import optuna

    check_storage_file(url)  # an existing study: never create (or write a schema into) a file
    try:
        attrs = optuna.load_study(study_name=study_name, storage=open_storage(url)).user_attrs
    except KeyError as exc:
        raise ConfigError(f"no study {study_name!r} in this storage; start it with "
                          f"`lcrp sweep run SPEC`", path=url, key="study") from exc
    if schema.SPEC not in attrs:
        raise ConfigError(f"study {study_name!r} is not an lcrp sweep study (no {schema.SPEC})",
                          path=url, key="study")
    spec = parse_sweep_spec(attrs[schema.SPEC], source=f"study {study_name} in {url}", check_root=False)
    spec = spec.with_storage(url)
    storage = _open_storage(spec)
    return SweepQueue(spec, optuna.load_study(study_name=study_name, storage=storage), storage)


def _open_storage(spec: SweepSpec) -> optuna.storages.BaseStorage:
    """The spec's storage; on PostgreSQL with heartbeats whose stale trials are re-queued."""
    if storage_kind(spec.storage) != "postgresql":
        return open_storage(spec.storage)

    def stale(study: optuna.Study, trial: FrozenTrial) -> None:
        log.warning("trial %d (%s) lost its heartbeat: failed", trial.number, unit_of(trial))
        requeue(spec, study, trial, counts=True)

    return open_storage(spec.storage, heartbeat_interval=spec.heartbeat_interval,
                        grace_period=spec.grace_period, stale_trial_callback=stale)


def units(spec: SweepSpec) -> dict[str, dict[str, Any]]:
    """Unit id → the params its trials are enqueued with (a cell's trial params; {} for a slot)."""
    if spec.tpe is not None:
        return {f"t{i:03d}": {} for i in range(spec.tpe.n_trials)}
    return {c.cell: c.trial_params for c in spec.cells()}


def enqueue(spec: SweepSpec, study: optuna.Study, unit: str, params: Mapping[str, Any], *,
            attempt: int) -> None:
    """A WAITING trial for ``unit`` (a cell or a TPE slot) with fixed ``params``."""
    study.enqueue_trial(dict(params), user_attrs=schema.unit_attrs(unit, tpe=spec.kind == "tpe",
                                                                   attempt=attempt))


def requeue(spec: SweepSpec, study: optuna.Study, trial: FrozenTrial, *, counts: bool) -> bool:
    """Enqueue a new trial for the failed ``trial``'s unit; ``counts`` uses one of the unit's
    ``max_retries`` (an interrupted or aborted trial does not). False when the unit gave up."""
    unit = unit_of(trial)
    todo = units(spec)
    if unit not in todo:
        return False
    attempt = schema.attempt(trial.user_attrs) + int(counts)
    if attempt > spec.max_retries:
        log.warning("%s failed %d times: given up (max_retries %d)", unit, attempt, spec.max_retries)
        return False
    enqueue(spec, study, unit, todo[unit], attempt=attempt)
    return True


def spec_diff(old: Mapping[str, Any], new: Mapping[str, Any], *, limit: int = 5) -> list[str]:
    """``key.path: old → new`` for the result-defining keys that differ (at most ``limit``)."""
    keep = ("dataset", "backend", "protocol", "base", "grid", "points", "tpe", "repeats", "kind")
    out: list[str] = []

    def walk(a: Any, b: Any, path: str) -> None:
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            for k in list(a) + [k for k in b if k not in a]:
                walk(a.get(k), b.get(k), f"{path}.{k}" if path else str(k))
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                walk(x, y, f"{path}[{i}]")
        elif a != b:
            out.append(f"{path}: {a!r} → {b!r}")

    walk({k: old.get(k) for k in keep}, {k: new.get(k) for k in keep}, "")
    return out[:limit] + ([f"and {len(out) - limit} more"] if len(out) > limit else [])


@contextmanager
def queue_lock(spec: SweepSpec | _LockKey) -> Iterator[None]:
    """Exclusive across processes for one study: every pop, reap, fail + re-queue and enqueue
    runs under it. A file storage takes an ``flock`` on ``<file>.lcrp-lock``; PostgreSQL a
    session advisory lock keyed by the study name. Re-entrant within a process."""
    key = (spec.storage, spec.study)
    if _held.get(key):
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    path = storage_file(spec.storage)
    with _flock(path) if path is not None else _advisory_lock(spec.storage, spec.study):
        _held[key] = 1
        try:
            yield
        finally:
            _held[key] = 0


_held: dict[tuple[str, str], int] = {}


@contextmanager
def _flock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lcrp-lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextmanager
def _advisory_lock(url: str, study: str) -> Iterator[None]:
    import sqlalchemy

    key = int.from_bytes(hashlib.sha256(study.encode()).digest()[:8], "big", signed=True)
    with _engine(url).connect() as conn:
        conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
        try:
            yield
        finally:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})


@functools.cache
def _engine(url: str) -> Any:
    import sqlalchemy

    return sqlalchemy.create_engine(sqlalchemy_url(url), pool_size=2, max_overflow=0,
                                    pool_pre_ping=True)


# --- the queue -----------------------------------------------------------------------------------

class SweepQueue:
    """A sweep study as a work queue: its spec, the Optuna study and its storage."""

    def __init__(self, spec: SweepSpec, study: optuna.Study, storage: optuna.storages.BaseStorage):
        self.spec, self.study, self.storage = spec, study, storage

    @functools.cached_property
    def numeric_params(self) -> bool:
        """Whether grid/points trials record their params as int/float distributions (studies
        created since studies can grow) rather than categorical ones."""
        return schema.numeric_params(self.study.user_attrs)

    def trials(self, *states: Any) -> list[FrozenTrial]:
        """The study's trials (in number order), optionally only those in ``states``."""
        return self.study.get_trials(deepcopy=False, states=states or None)

    @functools.cached_property
    def study_id(self) -> int:
        """The study's id in its storage (Optuna's public storage API; ``Study._study_id`` is
        private)."""
        return self.storage.get_study_id_from_name(self.study.study_name)

    def trial_id(self, trial: FrozenTrial) -> int:
        """The storage id of one of the study's trials (what the storage's trial methods take),
        through the public storage API rather than the private ``FrozenTrial._trial_id``."""
        return self.storage.get_trial_id_from_study_id_trial_number(self.study_id, trial.number)

    def pop(self, *, device: str) -> int | None:
        """Take the first WAITING trial (RUNNING now, owned by this process); its id, or None
        when none waits. The owner (``host``, ``pid``, ``device``) is recorded under the same
        lock, so a reaper never sees a popped trial without one.

        The WAITING → RUNNING step is the one of Optuna's private ``Study._pop_waiting_trial_id``,
        written with public storage calls: Optuna's only public route to it, ``Study.ask``,
        creates a new trial when none waits, which would break exactly-once."""
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        with queue_lock(self.spec):
            for trial in self.trials(TrialState.WAITING):
                trial_id = self.trial_id(trial)
                try:
                    if not self.storage.set_trial_state_values(trial_id, state=TrialState.RUNNING):
                        continue
                except UpdateFinishedTrialError:
                    continue
                me = ProcessId.current()
                owner = schema.owner_attrs(host=me.host, pid=me.pid, device=device,
                                           slurm_job=_slurm_job(), gpu=_gpu(device))
                for key, value in owner.items():
                    self.storage.set_trial_user_attr(trial_id, key, value)
                self.storage.set_trial_system_attr(trial_id, schema.PID_START, me.start)
                if getattr(self.storage, "heartbeat_interval", None):  # stale from now on if we die
                    self.storage.record_heartbeat(trial_id)
                return trial_id
        return None

    def fail(self, trial_id: int, error: str, *, counts: bool) -> bool:
        """Fail a RUNNING trial with a one-line ``error`` and re-queue its unit; False if it had
        finished already (another process failed or finished it first)."""
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        with queue_lock(self.spec):
            try:
                self.storage.set_trial_user_attr(trial_id, schema.ERROR, schema.error_text(error))
                if not self.storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
                    return False
            except UpdateFinishedTrialError:
                return False
            requeue(self.spec, self.study, self.storage.get_trial(trial_id), counts=counts)
        return True

    def reap(self) -> list[int]:
        """Fail and re-queue the RUNNING trials whose worker is gone; their trial numbers.

        Same host: the recorded pid is dead, a zombie, or now another process. Other hosts: only
        PostgreSQL heartbeats can tell (``optuna.storages.fail_stale_trials``).
        """
        import warnings

        import optuna
        from optuna.trial import TrialState

        reaped = []
        me = ProcessId.current()
        with queue_lock(self.spec):
            for trial in self.trials(TrialState.RUNNING):
                owner = ProcessId.of(trial)
                if owner is None:  # pops record the owner under this lock: none means it died
                    if unit_of(trial) is None:
                        continue  # not ours
                    why = "lost: its worker ended before recording itself"
                elif owner.host == me.host and not owner.alive():
                    why = f"lost: worker pid {owner.pid} on {owner.host} ended while running it"
                else:
                    continue
                if self.fail(self.trial_id(trial), why, counts=True):
                    log.warning("trial %d (%s) %s; failed and re-queued", trial.number,
                                unit_of(trial), why)
                    reaped.append(trial.number)
            if storage_kind(self.spec.storage) == "postgresql":
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    optuna.storages.fail_stale_trials(self.study)
        return reaped


# --- worker identity -----------------------------------------------------------------------------

def _slurm_job() -> str | None:
    """The SLURM job this process runs in (``<array id>_<index>`` or the job id); None outside."""
    env = os.environ
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env.get("SLURM_JOB_ID") or None


def _gpu(device: str) -> str | None:
    """The physical GPU index a ``cuda`` worker is pinned to (CUDA_VISIBLE_DEVICES); else None."""
    if device.startswith("cuda"):
        return os.environ.get("CUDA_VISIBLE_DEVICES") or None
    return None


class ProcessId:
    """A worker process: host name, pid and its start time (psutil's ``create_time``, as text)."""

    def __init__(self, host: str, pid: int, start: str | None):
        self.host, self.pid, self.start = host, pid, start

    @classmethod
    def current(cls) -> ProcessId:
        return cls(socket.gethostname(), os.getpid(), _start_time(psutil.Process()))

    @classmethod
    def of(cls, trial: FrozenTrial) -> ProcessId | None:
        owner = schema.owner(trial.user_attrs)
        if owner is None:
            return None
        return cls(*owner, trial.system_attrs.get(schema.PID_START))

    def alive(self) -> bool:
        """Whether this process still runs (call on its own host only): it exists, is not a
        zombie, and started when recorded (a reused pid belongs to another process)."""
        try:
            proc = psutil.Process(self.pid)
            if proc.status() == psutil.STATUS_ZOMBIE:
                return False
            return self.start is None or _start_time(proc) == self.start
        except psutil.NoSuchProcess:
            return False
        except psutil.AccessDenied:
            return True  # exists, owned by another user


def _start_time(proc: psutil.Process) -> str:
    """A process's start time (seconds since the epoch, to the clock tick) as recorded in trials."""
    return f"{proc.create_time():.3f}"
