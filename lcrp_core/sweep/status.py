"""Where a sweep study stands: cells done, running (where), waiting, failed, and an ETA."""

from __future__ import annotations

import datetime as dt
import socket
from dataclasses import dataclass, field
from typing import Any

from lcrp_core import schema
from lcrp_core.sweep.queue import ProcessId, SweepQueue, unit_of, units


@dataclass(frozen=True)
class RunningTrial:
    """A RUNNING trial and its worker; ``alive`` is None when the worker is on another host."""

    number: int
    unit: str | None
    host: str | None
    pid: int | None
    device: str | None
    started: dt.datetime | None
    alive: bool | None
    slurm_job: str | None = None
    gpu: str | None = None


@dataclass
class StudyStatus:
    """Units (grid/points cells or TPE slots) by state; ``failed`` maps a unit that gave up to
    its last error."""

    study: str
    storage: str
    kind: str
    total: int
    done: int = 0
    pruned: int = 0
    waiting: int = 0
    running: list[RunningTrial] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    mean_wall_s: float | None = None
    best_value: float | None = None
    best_params: dict[str, Any] | None = None
    #: every distinct configuration that reaches ``best_value`` (ties), best_params first
    best_tied: list[dict[str, Any]] = field(default_factory=list)
    #: failed trials whose cell was re-queued (they did not give up), and how many of those
    #: were interrupted (Ctrl-C, SIGTERM, a cancelled job: no retry used)
    requeued: int = 0
    interrupted: int = 0
    #: completed trials' (number, expressions without an anchor, expressions, frames without a
    #: proposal), for the trials where any expression had no anchor
    unanchored: list[tuple[int, int, int, int]] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return not self.waiting and not self.running

    @property
    def eta_s(self) -> float | None:
        """Mean wall time × units left / workers running now (at least one)."""
        left = self.waiting + len(self.running)
        if self.mean_wall_s is None or not left:
            return None if left else 0.0
        return self.mean_wall_s * left / max(1, len(self.running))


def study_status(queue: SweepQueue) -> StudyStatus:
    """The state of every unit of ``queue``'s study, from its trials (read-only)."""
    from optuna.trial import TrialState

    spec = queue.spec
    by_unit: dict[str, list[Any]] = {u: [] for u in units(spec)}
    for trial in queue.trials():
        if unit_of(trial) in by_unit:
            by_unit[unit_of(trial)].append(trial)
    status = StudyStatus(spec.study, spec.storage, spec.kind, total=len(by_unit))
    host = socket.gethostname()
    walls = []
    for unit, trials in by_unit.items():
        states = {t.state for t in trials}
        if TrialState.COMPLETE in states:
            status.done += 1
            walls += [t.user_attrs[schema.WALL_TIME_S] for t in trials
                      if t.state == TrialState.COMPLETE and schema.WALL_TIME_S in t.user_attrs]
        elif TrialState.PRUNED in states:
            status.pruned += 1
        elif TrialState.RUNNING in states:
            for t in trials:
                if t.state == TrialState.RUNNING:
                    owner = ProcessId.of(t)
                    status.running.append(RunningTrial(
                        t.number, unit, t.user_attrs.get(schema.HOST), t.user_attrs.get(schema.PID),
                        t.user_attrs.get(schema.DEVICE), t.datetime_start,
                        owner.alive() if owner is not None and owner.host == host else None,
                        t.user_attrs.get(schema.SLURM_JOB), t.user_attrs.get(schema.GPU)))
        elif TrialState.WAITING in states:
            status.waiting += 1
        elif trials:
            last = trials[-1]
            status.failed[unit] = schema.error(last.user_attrs) or "lost (no heartbeat)"
        for t in trials[:-1] if trials else []:  # a failed trial followed by another attempt
            if t.state == TrialState.FAIL:
                status.requeued += 1
                status.interrupted += schema.error(t.user_attrs) == schema.INTERRUPTED
    status.running.sort(key=lambda r: r.number)
    if walls:
        status.mean_wall_s = sum(walls) / len(walls)
    complete = queue.trials(TrialState.COMPLETE)
    status.unanchored = [(t.number, no_anchor, expressions, frames) for t in complete
                         for expressions, no_anchor, frames in [schema.misses(t.user_attrs)]
                         if no_anchor]
    if complete:
        best = max(complete, key=lambda t: t.value)
        status.best_value = best.value
        status.best_params = best.params
        for t in complete:
            if abs(t.value - best.value) <= 1e-9 and t.params not in status.best_tied:
                status.best_tied.append(t.params)
        status.best_tied.sort(key=lambda p: p != best.params)
    return status


def format_params(params: dict[str, Any]) -> str:
    """Parameters for people: ``N=5 K=3 delta=0.43%`` (δ as a percent of the frame area, other
    numbers to 4 significant digits)."""
    out = []
    for name, value in params.items():
        if name == "delta" and isinstance(value, (int, float)):
            out.append(f"delta={value * 100:.4g}%")
        elif isinstance(value, float):
            out.append(f"{name}={value:.4g}")
        else:
            out.append(f"{name}={value}")
    return " ".join(out)


def format_status(status: StudyStatus, *, now: dt.datetime | None = None) -> str:
    """A few lines for a terminal."""
    now = now or dt.datetime.now()
    lines = [f"study {status.study} ({status.kind}) in {status.storage}",
             f"  {status.done}/{status.total} done"
             + (f", {status.pruned} pruned" if status.pruned else "")
             + f", {len(status.running)} running, {status.waiting} waiting, {len(status.failed)} failed"]
    if status.requeued:
        lines.append(f"  {status.requeued} trial(s) failed and re-queued: {status.interrupted} "
                     f"interrupted (no retry used), {status.requeued - status.interrupted} retried "
                     f"or lost")
    if status.best_value is not None:
        tied = [format_params(p) for p in status.best_tied if p] or [""]
        head = f"  best J&F {status.best_value:.1f}"
        if len(tied) > 1:
            lines.append(f"{head}, {len(tied)} configurations tied:")
            lines += [f"    {t}" for t in tied]
        else:
            lines.append(head + (f" at {tied[0]}" if tied[0] else ""))
    eta = status.eta_s
    if status.mean_wall_s is not None:
        lines.append(f"  mean wall time {status.mean_wall_s:.1f} s"
                     + (f", ETA {_duration(eta)}" if eta else ""))
    for r in status.running:
        since = f" for {_duration((now - r.started).total_seconds())}" if r.started else ""
        gone = " (worker gone: re-queued at the next reap)" if r.alive is False else ""
        where = (f" job {r.slurm_job}" if r.slurm_job else "") + (f" gpu {r.gpu}" if r.gpu else "")
        lines.append(f"  running trial {r.number} ({r.unit}) on {r.host} pid {r.pid}{where} "
                     f"{r.device}{since}{gone}")
    for unit, error in status.failed.items():
        lines.append(f"  failed {unit}: {error}")
    for number, none, total, frames in status.unanchored:
        flag = (" — MORE THAN HALF: check weights and proposal thresholds"
                if schema.mostly_unanchored(total, none) else "")
        lines.append(f"  trial {number}: {none} of {total} expressions without an anchor, "
                     f"{frames} sampled frames without a proposal{flag}")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")
