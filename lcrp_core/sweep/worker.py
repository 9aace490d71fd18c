"""One sweep worker: opens an EvalContext once, then pops and evaluates trials until none waits.

Each trial records what docs/trial-schema.md lists: the run's complete parameters, scores,
per-video and per-expression scores, wall time, frames per second, peak resident memory of the
trial (Linux: the VmHWM counter reset through /proc/self/clear_refs before the trial; elsewhere
the process peak from getrusage), peak GPU memory on a GPU, device, host, pid, cache key, code
and package versions, and the attempt number.

Failures: an exception from the pipeline fails the trial and re-queues its cell (at most
``max_retries`` times); an :class:`~lcrp_core.errors.LcrpError` (missing weights, a broken
dataset file) fails the trial without using a retry, re-queues it and stops the worker.

Interrupts (Ctrl-C, SIGTERM, SLURM's SIGUSR2; :mod:`lcrp_core.sweep.signals`): a stop signal at
any point between a trial's pop and its record fails the trial ``interrupted`` and re-queues its
cell without using a retry; pops and records are never cut in half (a signal during one takes
effect at the next interruptible point). The worker then stops.
"""

from __future__ import annotations

import logging
import re
import resource
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lcrp_core import schema
from lcrp_core.devices import pin_device
from lcrp_core.errors import ConfigError, LcrpError, environment_error
from lcrp_core.pipeline.params import Params
from lcrp_core.sweep.queue import SweepQueue, unit_of
from lcrp_core.sweep.signals import Stop
from lcrp_core.sweep.spec import INT_PARAMS, SweepSpec

if TYPE_CHECKING:
    import optuna

    from lcrp_core.pipeline.evaluation import EvalContext

log = logging.getLogger("lcrp.sweep")


@dataclass
class WorkerReport:
    """What one worker did: trials completed, pruned, failed and interrupted (at most one: the
    worker stops then; ``stopped_by`` names the signal)."""

    completed: int = 0
    pruned: int = 0
    failed: int = 0
    interrupted: int = 0
    stopped_by: str = ""

    def count(self, state: str) -> None:
        """Count one trial that ended in ``state`` (an event's ``state``)."""
        if state == "completed":
            self.completed += 1
        elif state == "pruned":
            self.pruned += 1
        elif state == "failed":
            self.failed += 1
        elif state == "interrupted":
            self.interrupted += 1
        else:
            raise ValueError(f"unknown trial state {state!r}")


class _Pruned(Exception):
    """Raised from the per-video callback when the pruner stops a TPE trial."""


def run_worker(queue: SweepQueue, *, device: str, root: str | None = None,
               cache_dir: str | None = None, on_event: Callable[[dict], None] | None = None,
               stop: Stop | None = None) -> WorkerReport:
    """Evaluate WAITING trials of ``queue`` until none is left or a stop signal arrives.

    ``root``/``cache_dir`` override the spec's (another machine's paths); ``on_event`` receives
    each finished trial's event (``sweep run`` draws its progress bar from them). Stop signals
    are handled while it runs (or by the caller's ``stop``, which the caller installed).
    """
    own = stop is None
    stop = stop or Stop()
    with stop.installed() if own else _nothing():
        return _run_worker(queue, device=device, root=root, cache_dir=cache_dir,
                           on_event=on_event, stop=stop)


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _run_worker(queue: SweepQueue, *, device: str, root: str | None, cache_dir: str | None,
                on_event: Callable[[dict], None] | None, stop: Stop) -> WorkerReport:
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    from lcrp_core.pipeline.evaluation import EvalContext

    spec = queue.spec
    if root is not None:
        spec = spec.with_root(root)
    report = WorkerReport()
    queue.reap()
    if not queue.trials(TrialState.WAITING):
        return report
    spec.check_root()
    eval_device = pin_device(device)
    _configure_pruner(queue)
    try:
        with stop.interruptible():  # loading models may take a while
            ctx = EvalContext.from_spec(spec, cache_dir=cache_dir or None, device=eval_device)
    except KeyboardInterrupt:
        report.stopped_by = stop.name or "SIGINT"
        return report
    try:
        while not stop.requested:
            queue.reap()
            trial_id = queue.pop(device=device)
            if trial_id is None:
                break
            try:
                event = run_trial(queue, ctx, trial_id, device=device, stop=stop)
            except UpdateFinishedTrialError:
                event = _dropped(queue, trial_id)
            report.count(event["state"])
            if on_event is not None:
                on_event(event)
    finally:
        ctx.close()
    if stop.requested:
        report.stopped_by = stop.name
        log.info("worker %s stopped (%s)", device, stop.name)
    return report


def _dropped(queue: SweepQueue, trial_id: int) -> dict[str, Any]:
    """The event of a trial that another process finished while this worker ran it (a stale
    heartbeat failed it and re-queued its cell; e.g. this worker was frozen): its result is
    dropped with one line and the worker goes on."""
    frozen = queue.storage.get_trial(trial_id)
    log.warning("trial %d (%s) was failed by another process (%s) while this worker ran it: its "
                "result is dropped, its cell was re-queued", frozen.number, unit_of(frozen),
                schema.error(frozen.user_attrs) or "stale heartbeat")
    return {"event": "trial", "number": frozen.number, "unit": unit_of(frozen), "value": None,
            "state": "failed", "seconds": 0.0}


def run_trial(queue: SweepQueue, ctx: EvalContext, trial_id: int, *, device: str,
              stop: Stop | None = None) -> dict[str, Any]:
    """Evaluate one popped trial and record it; an event ``{"event": "trial", "state":
    "completed" | "pruned" | "failed" | "interrupted", "number", "unit", "value", "seconds"}``.

    A stop signal (``stop``) before or during the evaluation fails the trial ``interrupted`` and
    re-queues its cell without using a retry."""
    import optuna
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    from lcrp_core.versions import code_version, package_versions

    spec, study = queue.spec, queue.study
    frozen = queue.storage.get_trial(trial_id)
    unit = unit_of(frozen)
    event: dict[str, Any] = {"event": "trial", "number": frozen.number, "unit": unit, "value": None}
    if spec.tpe is not None:  # seeded per trial: reproducible alone, no duplicates in parallel
        study.sampler = optuna.samplers.TPESampler(seed=spec.tpe.seed + frozen.number,
                                                   n_startup_trials=spec.tpe.n_startup_trials)
    trial = optuna.Trial(study, trial_id)
    try:
        params = suggest(trial, spec, schema.cell(frozen.user_attrs), numeric=queue.numeric_params)
    except ConfigError as exc:
        queue.fail(trial_id, str(exc), counts=True)
        return {**event, "state": "failed", "seconds": 0.0}
    for key, value in schema.run_attrs(params=params.to_short(), code_version=code_version(),
                                       package_versions=package_versions()).items():
        trial.set_user_attr(key, value)

    prune = spec.tpe is not None and spec.tpe.pruner != "none"
    stop = stop or Stop()

    def on_video(step: int, video: str, jf: float) -> None:
        if prune:
            with stop.deferred():  # a storage write: never cut in half
                trial.report(jf, step)
                pruned = trial.should_prune()
            if pruned:
                raise _Pruned(f"pruned after video {step} ({video})")

    usage = _Usage(device)
    state, result = TrialState.COMPLETE, None
    with _heartbeat(queue.storage, trial_id), usage:
        try:
            with stop.interruptible():
                result = ctx.evaluate(params, on_video=on_video)
        except _Pruned as exc:
            state = TrialState.PRUNED
            log.info("trial %d (%s): %s", frozen.number, unit, exc)
        except KeyboardInterrupt:
            queue.fail(trial_id, schema.INTERRUPTED, counts=False)
            log.warning("trial %d (%s) interrupted: failed and its cell re-queued", frozen.number,
                        unit)
            return {**event, "state": "interrupted", "seconds": usage.seconds}
        except LcrpError as exc:
            queue.fail(trial_id, str(exc), counts=False)
            raise
        except Exception as exc:  # a failed cell: recorded, re-queued, the worker goes on
            if (message := environment_error(exc)) is not None:  # disk full: stop, keep the retry
                queue.fail(trial_id, message, counts=False)
                raise LcrpError(message) from exc
            log.exception("trial %d (%s) failed", frozen.number, unit)
            queue.fail(trial_id, f"{type(exc).__name__}: {exc}", counts=True)
            return {**event, "state": "failed", "seconds": usage.seconds}

    if result is None:  # pruned
        attrs = usage.attrs()
    else:
        attrs = {**result.to_attrs(), **usage.attrs(fps=result.frames / max(usage.seconds, 1e-9),
                                                    cache_counters=result.counters.as_dict())}
    try:
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        if state == TrialState.PRUNED:
            study.tell(trial, state=state)
        else:
            study.tell(trial, result.JF)
    except UpdateFinishedTrialError:  # failed meanwhile (a stale heartbeat): its cell is re-queued
        log.warning("trial %d (%s) was failed by another worker; its result is dropped",
                    frozen.number, unit)
        return {**event, "state": "failed", "seconds": usage.seconds}
    value = None if result is None else float(result.JF)
    if value is not None:
        log.info("trial %d (%s) %s: J&F %.1f in %.1f s", frozen.number, unit, _short(params, spec),
                 value, usage.seconds)
    return {**event, "state": "completed" if state == TrialState.COMPLETE else "pruned",
            "value": value, "seconds": usage.seconds}


def suggest(trial: optuna.Trial, spec: SweepSpec, cell: str | None, *,
            numeric: bool = True) -> Params:
    """The trial's complete parameters: a cell's (recorded as trial params: int and float
    distributions over the cells' range, or categorical ones in studies of older lcrp
    versions, ``numeric=False``), or the TPE sampler's choice within the spec's ranges, over the
    base."""
    if spec.tpe is None:
        cells = {c.cell: c for c in spec.cells()}
        if cell not in cells:
            raise ConfigError(f"trial has no known cell (got {cell!r})", key=schema.CELL)
        choices, ranges = spec.choices(), spec.value_ranges()
        for name, value in cells[cell].trial_params.items():
            if not numeric:
                got = trial.suggest_categorical(name, choices[name])
            elif isinstance(value, int):
                got = trial.suggest_int(name, *ranges[name])
            else:
                got = trial.suggest_float(name, *ranges[name])
            if got != value:
                raise ConfigError(f"trial param {name}={got!r} differs from cell {cell}'s {value!r}",
                                  key="params")
        return cells[cell].params
    values: dict[str, Any] = {}
    for name, r in spec.tpe.params.items():
        if r.choices is not None:
            values[name] = trial.suggest_categorical(name, list(r.choices))
        elif name in INT_PARAMS:
            values[name] = trial.suggest_int(name, int(r.low), int(r.high), step=int(r.step or 1),
                                             log=r.log)
        else:
            values[name] = trial.suggest_float(name, r.low, r.high, step=r.step, log=r.log)
    return Params.from_mapping(values, base=spec.base)


def _short(params: Params, spec: SweepSpec) -> str:
    shown = spec.swept_names() if spec.tpe is None else list(spec.tpe.params)
    values = params.to_short()
    return " ".join(f"{n}={values[n]}" for n in shown)


def _configure_pruner(queue: SweepQueue) -> None:
    import optuna

    tpe = queue.spec.tpe
    if tpe is not None and tpe.pruner == "wilcoxon":
        queue.study.pruner = optuna.pruners.WilcoxonPruner(p_threshold=tpe.p_threshold)
    else:
        queue.study.pruner = optuna.pruners.NopPruner()


class _Usage:
    """Wall time, peak RSS and peak GPU memory of the block it wraps."""

    def __init__(self, device: str):
        self.device = device
        self.seconds = 0.0
        self._torch: Any = None

    def __enter__(self) -> _Usage:
        _reset_peak_rss()
        if self.device.startswith("cuda"):
            import torch

            self._torch = torch
            torch.cuda.reset_peak_memory_stats()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start

    def attrs(self, **extra: Any) -> dict[str, Any]:
        """The usage part of the trial's user_attrs; ``extra``: ``fps``, ``cache_counters``."""
        gpu = (self._torch.cuda.max_memory_allocated() / 2**20) if self._torch is not None else None
        return schema.usage_attrs(wall_time_s=self.seconds, peak_rss_mb=_peak_rss_mb(),
                                  peak_gpu_mb=gpu, **extra)


#: Linux's per-process peak RSS (VmHWM) and its reset. psutil has no peak RSS on Linux
#: (giampaolo/psutil#383; ``memory_info``/``memory_full_info`` hold the current RSS only) and no
#: way to reset one, and polling its current RSS would miss short peaks; getrusage's ru_maxrss
#: cannot be reset, so it would report the process's peak (model loading) for every trial.
_STATUS, _CLEAR_REFS = Path("/proc/self/status"), Path("/proc/self/clear_refs")


def _reset_peak_rss() -> None:
    """Reset VmHWM to the current RSS (Linux); elsewhere nothing (the process peak is used)."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        pass


def _peak_rss_mb() -> float:
    """The peak RSS since :func:`_reset_peak_rss` (VmHWM, Linux); elsewhere the process's peak
    from getrusage."""
    try:
        return int(re.search(r"VmHWM:\s+(\d+)\s+kB", _STATUS.read_text()).group(1)) / 1024
    except (OSError, AttributeError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024


@contextmanager
def _heartbeat(storage: Any, trial_id: int) -> Iterator[None]:
    """Record the trial's heartbeat every ``heartbeat_interval`` seconds (PostgreSQL)."""
    interval = getattr(storage, "heartbeat_interval", None)
    if not interval:
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while True:
            try:
                storage.record_heartbeat(trial_id)
            except Exception:  # a database hiccup: try again at the next beat
                log.warning("could not record the heartbeat of trial id %d", trial_id, exc_info=True)
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, name="lcrp-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
