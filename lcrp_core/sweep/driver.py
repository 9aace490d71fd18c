"""``lcrp sweep run``: prepare the study, then run one worker process per device slot until every
cell is done.

Workers are processes of one Python entry point, :func:`worker_process` (multiprocessing
``spawn``: a fresh interpreter per slot, models loaded once each; ``cuda:N`` slots pin
themselves with CUDA_VISIBLE_DEVICES before CUDA starts). A SLURM job runs the same entry point
(:mod:`lcrp_core.sweep.slurm`). Workers send each finished trial and their end through a
pipe of its own; the progress bar is drawn from those events. When every worker has ended
the driver reaps trials of dead workers (failing and re-queueing them) and starts another round
while trials wait; it waits for trials still running in other processes (or on other machines,
until heartbeats fail them) before it returns.

Stops (:mod:`lcrp_core.sweep.signals`): Ctrl-C in a terminal reaches the driver and its workers
(one process group); SIGTERM to the driver alone is forwarded to the workers. Each worker fails
its running trial ``interrupted`` and re-queues its cell; the driver waits for them, then raises
KeyboardInterrupt. A second Ctrl-C exits at once.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from lcrp_core import schema
from lcrp_core.errors import LcrpError, environment_error
from lcrp_core.sweep.queue import SweepQueue, open_queue, prepare_study
from lcrp_core.sweep.signals import STOP_SIGNALS, Stop
from lcrp_core.sweep.spec import SweepSpec
from lcrp_core.sweep.status import StudyStatus, study_status
from lcrp_core.sweep.storage import storage_kind

log = logging.getLogger("lcrp.sweep")

#: A worker's exit codes: done, crashed, a user-facing error (LcrpError), stopped by a signal.
OK, CRASHED, USER_ERROR, STOPPED = 0, 1, 2, 130


@dataclass
class RunResult:
    """The study's status after the run, and how many trials this run finished."""

    status: StudyStatus
    computed: int


@dataclass(frozen=True)
class WorkerTask:
    """What one worker process runs (picklable): a study, its storage, one device slot, this
    machine's dataset root and cache, and the log level and prefix of its lines."""

    study: str
    storage: str
    device: str
    root: str | None = None
    cache_dir: str | None = None
    log_level: int = logging.WARNING
    label: str = ""


def worker_slots(devices: Sequence[str], workers: int | None = None) -> list[str]:
    """One device per worker: ``workers`` (default: one per device slot) taken round-robin from
    ``devices`` (``cpu,cpu`` is two CPU workers; ``cuda:0,cuda:1`` with 4 workers is two per
    GPU; ``cuda:0x4`` is four workers on one GPU)."""
    n = len(devices) if workers is None else workers
    if n < 1:
        raise LcrpError(f"expected at least one worker, got {n}", key="--workers")
    return [devices[i % len(devices)] for i in range(n)]


def run_sweep(spec: SweepSpec, *, workers: int | None = None, progress: bool = True,
              verbose: int = 0, on_ready: Callable[[SweepQueue], None] | None = None) -> RunResult:
    """Create or resume ``spec``'s study and run it to completion (this machine's dataset root
    and cache are the spec's). The dataset is checked first: a wrong split or video name creates
    no study. ``on_ready(queue)`` runs once the study is ready, before any worker starts."""
    spec.check_dataset()
    queue = prepare_study(spec)
    if on_ready is not None:  # the study exists: e.g. say which cache the workers read
        on_ready(queue)
    return drive(queue, slots=worker_slots(spec.devices, workers), root=spec.dataset.root,
                 cache_dir=spec.cache_dir, progress=progress, verbose=verbose)


def drive(queue: SweepQueue, *, slots: Sequence[str], root: str | None = None,
          cache_dir: str | None = None, progress: bool = True, verbose: int = 0,
          stop: Stop | None = None) -> RunResult:
    """Run rounds of worker processes on ``slots`` until no trial of ``queue`` waits or runs.

    A stop signal stops the workers (their trials are re-queued) and raises KeyboardInterrupt.
    Signals are handled while it runs, or by the caller's ``stop``, which the caller installed.
    """
    from optuna.trial import TrialState
    from tqdm import tqdm

    spec = queue.spec
    start = study_status(queue)
    computed = 0
    best = start.best_value
    level = logging.getLogger("lcrp").getEffectiveLevel()
    own = stop is None
    stop = stop or Stop()
    with stop.installed() if own else nullcontext(), tqdm(total=start.total, initial=start.done + start.pruned,
                                desc=spec.study, unit="trial", disable=not progress,
                                dynamic_ncols=True) as bar:

        def on_event(event: dict) -> None:
            nonlocal computed, best
            if event["state"] in ("completed", "pruned"):
                computed += 1
                bar.update(1)
            if event.get("value") is not None and (best is None or event["value"] > best):
                best = event["value"]
            if best is not None:
                bar.set_postfix_str(f"best J&F {best:.1f}")

        while not stop.requested:
            queue.reap()
            waiting = len(queue.trials(TrialState.WAITING))
            if waiting:
                n = min(waiting, len(slots))
                if n > 1 and storage_kind(spec.storage) == "sqlite":
                    log.info("%d workers share %s; for many workers a journal file scales better "
                             "(--storage journal:studies/%s.log)", n, spec.storage, spec.study)
                before = computed
                tasks = [WorkerTask(spec.study, spec.storage, d, root, cache_dir, level,
                                    f"{d} #{i}") for i, d in enumerate(list(slots)[:n])]
                reap = (None if storage_kind(spec.storage) != "postgresql"
                        else (lambda procs: _reap_stale(queue, procs), spec.heartbeat_interval))
                ends = run_workers(tasks, on_event, stop=stop, reap=reap)
                if stop.requested:
                    break
                _check_ends(ends, progressed=computed > before)
                continue
            running = queue.trials(TrialState.RUNNING)
            if not running:
                break
            bar.set_postfix_str(f"waiting for {len(running)} trial(s) running elsewhere")
            try:
                stop.sleep(min(spec.heartbeat_interval, 10))
            except KeyboardInterrupt:
                break
    if stop.requested:
        raise KeyboardInterrupt
    return RunResult(study_status(queue), computed)


def _check_ends(ends: list[tuple[str, int, str]], *, progressed: bool) -> None:
    """Stop on a worker's user-facing error, or when no worker got anywhere."""
    for device, code, last in ends:
        if code == USER_ERROR:
            raise LcrpError(f"the worker on {device} stopped: {last}")
    crashed = [(d, c, last) for d, c, last in ends if c != OK]
    if crashed and not progressed:
        device, code, last = crashed[0]
        raise LcrpError(f"the worker on {device} exited with code {code} before finishing a "
                        f"trial: {last or 'no message'}")


def run_workers(tasks: Sequence[WorkerTask], on_event: Callable[[dict], None], *,
                stop: Stop, reap: tuple[Callable[[Sequence[Any]], set[int]], float] | None = None,
                ) -> list[tuple[str, int, str]]:
    """Run one :func:`worker_process` per task until all end; (device, exit code, last error
    message) per task. Once ``stop`` is requested, the workers are sent SIGTERM (in case the
    signal reached only the driver) and awaited; a second Ctrl-C (KeyboardInterrupt from
    ``stop``) kills them. ``reap = (function, seconds)`` calls ``function(processes)`` every
    ``seconds`` while they run; the pids it returns were killed on purpose (frozen workers whose
    trials were failed and re-queued) and count as ended normally."""
    from multiprocessing.connection import wait

    ctx = mp.get_context("spawn")
    # one pipe per worker, not one shared queue: a worker killed while it writes (SIGKILL, a
    # signal at exit) must not leave a lock held that the other workers' writes wait on forever
    pipes = [ctx.Pipe(duplex=False) for _ in tasks]
    procs = [ctx.Process(target=worker_process, args=(t, i, pipes[i][1]), name=f"lcrp-worker-{i}")
             for i, t in enumerate(tasks)]
    readers = {pipes[i][0]: i for i in range(len(tasks))}
    ends: dict[int, tuple[int, str]] = {}
    killed: set[int] = set()
    next_reap = time.monotonic() + reap[1] if reap else None
    forwarded = False
    try:
        # the workers start with stop signals blocked, and unblock them once their own handlers
        # are in place: a Ctrl-C while they import is theirs to handle, not a traceback
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            for p in procs:
                p.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        for _, writer in pipes:  # the workers hold the only write ends: a dead one reads as EOF
            writer.close()
        while True:
            if stop.requested and not forwarded:
                forwarded = True
                for p in procs:
                    if p.is_alive():
                        os.kill(p.pid, signal.SIGTERM)
            if reap and not stop.requested and time.monotonic() >= next_reap:
                killed |= reap[0](procs)
                next_reap = time.monotonic() + reap[1]
            if not readers:  # every worker has closed its pipe (ended, or died)
                if all(not p.is_alive() for p in procs):
                    break
                time.sleep(0.05)
                continue
            # never interrupted inside a read (stop only sets a flag here): a half-read message
            # would wedge the pipe
            for reader in wait(list(readers), timeout=0.2):
                try:
                    kind, i, payload = reader.recv()
                except (EOFError, OSError):
                    del readers[reader]
                    reader.close()
                    continue
                _handle(kind, i, payload, on_event, ends)
    except BaseException:  # a second Ctrl-C, or an error in the driver: stop at once
        for p in procs:
            if p.is_alive():
                p.kill()
        raise
    finally:
        for p in procs:
            if p.pid is not None:
                p.join()
        for reader in readers:
            reader.close()
    out = []
    for i, (t, p) in enumerate(zip(tasks, procs, strict=True)):
        code, message = ends.get(i, (OK, "") if p.pid in killed else
                                 (p.exitcode or CRASHED, f"exited with code {p.exitcode}"))
        out.append((t.device, code, message))
    return out


def _reap_stale(queue: SweepQueue, procs: Sequence[Any]) -> set[int]:
    """While a round runs (PostgreSQL): fail the trials whose heartbeat went stale and re-queue
    their cells. A worker of this round whose trial was failed that way is frozen (stopped,
    hung): it is killed with one warning, so that the round ends and its cell runs again in the
    next one. The pids killed."""
    from optuna.trial import TrialState

    alive = {p.pid: p for p in procs if p.is_alive()}
    host = socket.gethostname()
    ours = {queue.trial_id(t): owner[1] for t in queue.trials(TrialState.RUNNING)
            if (owner := schema.owner(t.user_attrs)) is not None and owner[0] == host
            and owner[1] in alive}
    queue.reap()
    killed = set()
    for trial_id, pid in ours.items():
        trial = queue.storage.get_trial(trial_id)
        # a worker that fails its own trial records an error first; a stale heartbeat does not
        if (trial.state == TrialState.FAIL and schema.error(trial.user_attrs) is None
                and alive[pid].is_alive()):
            log.warning("the worker pid %d stopped beating while running trial %d (%s): killed; "
                        "its cell was re-queued", pid, trial.number, schema.unit(trial.user_attrs))
            alive[pid].kill()
            killed.add(pid)
    return killed


def _handle(kind: str, i: int, payload: Any, on_event: Callable[[dict], None],
            ends: dict[int, tuple[int, str]]) -> None:
    if kind == "trial":
        on_event(payload)
    elif kind == "end":
        ends[i] = payload


def worker_process(task: WorkerTask, index: int, events: Any) -> None:
    """The entry point of a local worker process: join ``task.study`` and evaluate waiting
    trials on ``task.device`` until none is left or a stop signal arrives. Sends
    ``("trial", index, event)`` per finished trial and ``("end", index, (code, message))`` on
    ``events``, the write end of its own pipe."""
    stop = Stop()
    with stop.installed():
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # blocked by run_workers
        _log_to_stderr(task.log_level, task.label)
        code, message = run_task(task, lambda e: events.send(("trial", index, e)), stop=stop)
        events.send(("end", index, (code, message)))
        events.close()


def run_task(task: WorkerTask, on_event: Callable[[dict], None] | None, *,
             stop: Stop) -> tuple[int, str]:
    """One worker's whole life: (exit code, message). Shared by local worker processes and SLURM
    jobs."""
    from lcrp_core.sweep.storage import storage_errors
    from lcrp_core.sweep.worker import run_worker

    try:
        with storage_errors(task.storage):  # a database failure names the storage
            with stop.interruptible():
                queue = open_queue(task.study, task.storage)
            report = run_worker(queue, device=task.device, root=task.root,
                                cache_dir=task.cache_dir, on_event=on_event, stop=stop)
    except LcrpError as exc:
        log.error("%s", exc)
        return USER_ERROR, str(exc)
    except KeyboardInterrupt:
        return STOPPED, f"stopped ({stop.name or 'SIGINT'})"
    except Exception as exc:
        if (message := environment_error(exc)) is not None:  # disk full, out of memory, ...
            log.error("%s", message)
            return USER_ERROR, message
        log.exception("the worker crashed")
        return CRASHED, f"{type(exc).__name__}: {exc}"
    log.info("worker %s: %d completed, %d pruned, %d failed, %d interrupted", task.device,
             report.completed, report.pruned, report.failed, report.interrupted)
    if report.stopped_by:
        return STOPPED, f"stopped ({report.stopped_by})"
    return OK, ""


def _log_to_stderr(level: int, label: str) -> None:
    """A worker process's log lines: to stderr, at the driver's level, prefixed with its slot."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"[{label} pid {os.getpid()}] %(message)s"))
    root = logging.getLogger("lcrp")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING if level > logging.DEBUG
                                 else optuna.logging.INFO)
