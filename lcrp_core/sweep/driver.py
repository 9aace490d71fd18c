"""``lcrp sweep run``: prepare the study, then run one worker process per device slot until every
cell is done.

Workers are subprocesses of ``lcrp sweep worker`` (one long-lived process per slot, EvalContext
opened once each; ``cuda:N`` slots are pinned with CUDA_VISIBLE_DEVICES by the worker). They
report each finished trial as a JSON line on stdout; the progress bar is drawn from those
events, and their log lines are forwarded. When every worker has ended the driver reaps trials
of dead workers (failing and re-queueing them), and starts another round while trials wait; it
waits for trials still running in other processes (or on other machines, until heartbeats fail
them) before it returns.
"""

from __future__ import annotations

import json
import logging
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lcrp_core.errors import LcrpError
from lcrp_core.sweep.queue import SweepQueue, prepare_study
from lcrp_core.sweep.spec import SweepSpec
from lcrp_core.sweep.status import StudyStatus, study_status
from lcrp_core.sweep.storage import storage_kind
from lcrp_core.sweep.worker import sigterm_as_interrupt

log = logging.getLogger("lcrp.sweep")


@dataclass
class RunResult:
    """The study's status after the run, and how many trials this run finished."""

    status: StudyStatus
    computed: int


def worker_slots(devices: Sequence[str], workers: int | None = None) -> list[str]:
    """One device per worker: ``workers`` (default: one per listed device) taken round-robin
    from ``devices`` (``cpu,cpu`` is two CPU workers; ``cuda:0,cuda:1`` with 4 workers is two
    per GPU)."""
    n = len(devices) if workers is None else workers
    if n < 1:
        raise LcrpError(f"expected at least one worker, got {n}", key="--workers")
    return [devices[i % len(devices)] for i in range(n)]


def run_sweep(spec: SweepSpec, *, workers: int | None = None, progress: bool = True,
              verbose: int = 0) -> RunResult:
    """Create or resume ``spec``'s study and run it to completion. The dataset is checked
    first: a wrong split or video name creates no study."""
    spec.check_dataset()
    queue = prepare_study(spec)
    return drive(queue, slots=worker_slots(spec.devices, workers), progress=progress,
                 verbose=verbose)


def drive(queue: SweepQueue, *, slots: Sequence[str], root: str | None = None,
          cache_dir: str | None = None, progress: bool = True, verbose: int = 0) -> RunResult:
    """Run rounds of worker processes on ``slots`` until no trial of ``queue`` waits or runs.

    SIGTERM or Ctrl-C stops the workers (their trials are re-queued) and raises KeyboardInterrupt.
    """
    from optuna.trial import TrialState
    from tqdm import tqdm

    spec = queue.spec
    start = study_status(queue)
    computed = 0
    best = start.best_value
    with sigterm_as_interrupt(), tqdm(total=start.total, initial=start.done + start.pruned,
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

        while True:
            queue.reap()
            waiting = len(queue.trials(TrialState.WAITING))
            if waiting:
                n = min(waiting, len(slots))
                if n > 1 and storage_kind(spec.storage) == "sqlite":
                    log.info("%d workers share %s; for many workers a journal file scales better "
                             "(--storage journal:studies/%s.log)", n, spec.storage, spec.study)
                before = computed
                ends = _round(queue, list(slots)[:n], on_event, root=root, cache_dir=cache_dir,
                              verbose=verbose, write=bar.write)
                _check_ends(ends, progressed=computed > before)
                continue
            running = queue.trials(TrialState.RUNNING)
            if not running:
                break
            bar.set_postfix_str(f"waiting for {len(running)} trial(s) running elsewhere")
            time.sleep(min(spec.heartbeat_interval, 10))
    return RunResult(study_status(queue), computed)


def _check_ends(ends: list[tuple[str, int, str]], *, progressed: bool) -> None:
    """Stop on a worker's user-facing error (exit code 2), or when no worker got anywhere."""
    for device, code, last in ends:
        if code == 2:
            raise LcrpError(f"the worker on {device} stopped: {last}")
    crashed = [(d, c, last) for d, c, last in ends if c != 0]
    if crashed and not progressed:
        device, code, last = crashed[0]
        raise LcrpError(f"the worker on {device} exited with code {code} before finishing a "
                        f"trial: {last or 'no message'}")


def _worker_command(queue: SweepQueue, device: str, *, root: str | None, cache_dir: str | None,
                    verbose: int) -> list[str]:
    cmd = [sys.executable, "-m", "lcrp_core", "sweep", "worker", "--study", queue.spec.study,
           "--storage", queue.spec.storage, "--devices", device, "--events"]
    if root is not None:
        cmd += ["--root", root]
    if cache_dir is not None:
        cmd += ["--cache-dir", cache_dir]
    return cmd + (["-" + "v" * verbose] if verbose else ["-q"])


def _round(queue: SweepQueue, slots: list[str], on_event: Callable[[dict], None], *,
           root: str | None, cache_dir: str | None, verbose: int,
           write: Callable[..., None]) -> list[tuple[str, int, str]]:
    """Run one worker process per slot until all end; (device, exit code, last stderr line)."""
    procs = [subprocess.Popen(_worker_command(queue, d, root=root, cache_dir=cache_dir,
                                              verbose=verbose),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
             for d in slots]
    last = [""] * len(procs)
    heartbeats = storage_kind(queue.spec.storage) == "postgresql"
    next_reap = time.monotonic() + queue.spec.heartbeat_interval
    killed: set[int] = set()  # frozen workers killed by _reap_stale: not crashes
    try:
        with selectors.DefaultSelector() as sel:
            pending: dict[int, bytes] = {}
            for i, p in enumerate(procs):
                for stream, kind in ((p.stdout, "out"), (p.stderr, "err")):
                    sel.register(stream.fileno(), selectors.EVENT_READ, (i, kind))
                    pending[stream.fileno()] = b""
            while sel.get_map():
                if heartbeats and time.monotonic() >= next_reap:
                    killed |= _reap_stale(queue, procs)
                    next_reap = time.monotonic() + queue.spec.heartbeat_interval
                for key, _ in sel.select(timeout=queue.spec.heartbeat_interval if heartbeats else None):
                    fd, (i, kind) = key.fd, key.data
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        sel.unregister(fd)
                        lines, pending[fd] = [pending[fd]] if pending[fd] else [], b""
                    else:
                        *lines, pending[fd] = (pending[fd] + chunk).split(b"\n")
                    for raw in lines:
                        line = raw.decode(errors="replace").rstrip()
                        event = _event(line) if kind == "out" else None
                        if event is not None:
                            on_event(event)
                        elif line:
                            if kind == "err":
                                last[i] = line
                            write(f"[{slots[i]} pid {procs[i].pid}] {line}", file=sys.stderr)
    except BaseException:
        for p in procs:  # interrupted: workers re-queue their trials on SIGTERM
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait()
        raise
    finally:
        for p in procs:
            p.stdout.close()
            p.stderr.close()
    return [(slots[i], 0 if p.pid in killed else p.wait(), last[i]) for i, p in enumerate(procs)]


def _reap_stale(queue: SweepQueue, procs: Sequence[subprocess.Popen]) -> set[int]:
    """While a round runs (PostgreSQL): fail the trials whose heartbeat went stale and re-queue
    their cells. A worker of this round whose trial was failed that way is frozen (stopped,
    hung): it is killed with one warning, so that the round ends and its cell runs again in the
    next one. The pids killed."""
    from optuna.trial import TrialState

    alive = {p.pid: p for p in procs if p.poll() is None}
    host = socket.gethostname()
    ours = {t._trial_id: t.user_attrs["pid"] for t in queue.trials(TrialState.RUNNING)
            if t.user_attrs.get("host") == host and t.user_attrs.get("pid") in alive}
    queue.reap()
    killed = set()
    for trial_id, pid in ours.items():
        trial = queue.storage.get_trial(trial_id)
        # a worker that fails its own trial records an error first; a stale heartbeat does not
        if trial.state == TrialState.FAIL and "error" not in trial.user_attrs \
                and alive[pid].poll() is None:
            log.warning("the worker pid %d stopped beating while running trial %d (%s): killed; "
                        "its cell was re-queued", pid, trial.number, trial.user_attrs.get("lcrp_cell")
                        or trial.user_attrs.get("lcrp_slot"))
            alive[pid].kill()
            killed.add(pid)
    return killed


def _event(line: str) -> dict | None:
    """A worker's event line (JSON with ``"event": "trial"``); None for anything else a library
    printed on stdout."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) and event.get("event") == "trial" else None
