"""Sweeps across a SLURM cluster, through submitit (as Hydra's submitit launcher does).

:func:`submit` creates (or resumes) the study, then submits ``jobs`` SLURM jobs as one job array.
Each job runs :class:`WorkerJob`: the same worker loop as ``lcrp sweep run``
(:func:`lcrp_core.sweep.driver.drive`: spawned worker processes, one per slot) on its
GPUs (``gpus_per_job`` × ``workers_per_device`` slots, ``cuda:N`` indexing the GPUs SLURM gave
the job) against the shared storage.

Stops: ``scancel`` and the time limit send SIGTERM, preemption and submitit's pre-timeout
warning SIGUSR2 (``signal_delay_s``). A job fails its running trials ``interrupted`` and
re-queues their cells (no retry used) before it exits; on SIGUSR2 it then hands over to
submitit, which requeues the job (``WorkerJob.checkpoint``). A job killed outright (SIGKILL after
``KillWait``, a node failure) leaves its trials RUNNING: PostgreSQL heartbeats fail them and
re-queue their cells.

SQLite and journal files are locked with ``flock``, which does not hold across nodes: several
jobs need PostgreSQL.
"""

from __future__ import annotations

import logging
import re
import signal
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any

from lcrp_core.config import Model, at_least, checked, expect, typed, validate
from lcrp_core.devices import parse_devices
from lcrp_core.errors import ConfigError
from lcrp_core.sweep.driver import STOPPED, drive
from lcrp_core.sweep.signals import Stop
from lcrp_core.sweep.spec import SweepSpec
from lcrp_core.sweep.storage import storage_kind

log = logging.getLogger("lcrp.sweep")

_TIME = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")


def parse_time(value: str | int, *, key: str = "slurm.time") -> int:
    """A SLURM time limit in minutes: ``90``, ``MM:SS``, ``HH:MM:SS``, ``D-HH[:MM[:SS]]``."""
    if isinstance(value, int) and not isinstance(value, bool):
        minutes = value
    else:
        m = _TIME.match(str(value).strip())
        if m is None:
            raise ConfigError(f"expected a time limit such as 90, 4:00:00 or 1-12:00:00, got "
                              f"{value!r}", key=key)
        days, a, b, c = (int(g) if g is not None else None for g in m.groups())
        if days is not None:  # D-HH[:MM[:SS]]
            minutes = days * 1440 + a * 60 + (b or 0) + ((c or 0) + 59) // 60
        elif c is not None:  # HH:MM:SS
            minutes = a * 60 + b + (c + 59) // 60
        elif b is not None:  # MM:SS
            minutes = a + (b + 59) // 60
        else:
            minutes = a
    if minutes < 1:
        raise ConfigError(f"expected a time limit of at least 1 minute, got {value!r}", key=key)
    return minutes


def _time_text(value: Any) -> str:
    parse_time(value)
    return str(value)


def _int_at_least(minimum: int) -> Any:
    """An integer >= ``minimum``: any other value (``True`` too) is "expected an integer >= m"."""
    return Annotated[int, typed(int, f"an integer >= {minimum}"), at_least(minimum)]


class SlurmSettings(Model):
    """How a study's workers are submitted (the spec's ``slurm:`` block; CLI options override).
    ``additional`` holds further sbatch options (``--slurm KEY=VALUE``: ``qos=high``)."""

    jobs: _int_at_least(1) = 1
    gpus_per_job: _int_at_least(0) = 0
    workers_per_device: _int_at_least(1) = 1
    partition: str | None = None
    time: Annotated[Any, checked(_time_text)] = "4:00:00"
    account: str | None = None
    cpus_per_job: _int_at_least(1) | None = None
    mem: str | None = None
    log_dir: str = "studies/slurm"
    additional: Annotated[Any, expect("a mapping of sbatch options (qos: high)", lambda v: isinstance(
        v, Mapping) and all(isinstance(k, str) for k in v)), checked(lambda v: {
            k: str(x) for k, x in v.items()})] = {}

    def to_json(self) -> dict[str, Any]:
        return self.model_dump()

    def slots(self) -> list[str]:
        """The worker slots of one job: its GPUs (``cuda:0..G-1``, as SLURM's
        CUDA_VISIBLE_DEVICES lists them) or the CPU, each ``workers_per_device`` times."""
        devices = [f"cuda:{i}" for i in range(self.gpus_per_job)] or ["cpu"]
        return parse_devices(devices, per_device=self.workers_per_device)

    def executor_parameters(self, study: str) -> dict[str, Any]:
        """submitit SlurmExecutor parameters."""
        minutes = parse_time(self.time)
        out: dict[str, Any] = {"job_name": f"lcrp-{study}", "time": minutes,
                               # submitit's pre-timeout SIGUSR2: 90 s before the limit, less
                               # for short jobs (else it would stop them as they start)
                               "signal_delay_s": min(90, minutes * 60 // 4),
                               "ntasks_per_node": 1, "nodes": 1,
                               "cpus_per_task": self.cpus_per_job or len(self.slots()),
                               "array_parallelism": self.jobs}
        if self.gpus_per_job:
            out["gpus_per_node"] = self.gpus_per_job
        for key in ("partition", "account", "mem"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.additional:
            out["additional_parameters"] = dict(self.additional)
        return out


def parse_slurm(value: Any, *, source: str = "") -> SlurmSettings:
    """The spec's ``slurm:`` block; errors name ``slurm.<key>``."""
    if value is None:
        return SlurmSettings()
    return validate(SlurmSettings, value, source=source or None, at="slurm")


def settings_with(base: SlurmSettings, over: Mapping[str, Any], *, source: str = "") -> SlurmSettings:
    """``base`` with the non-None values of ``over`` (``additional`` merged), validated."""
    values = {k: v for k, v in over.items() if v is not None}
    if isinstance(values.get("additional"), Mapping):
        values["additional"] = {**base.additional, **values["additional"]}
    return parse_slurm(base.to_json() | values, source=source)


def parse_key_values(items: Sequence[str]) -> dict[str, str]:
    """``["qos=high", "constraint=a100"]`` → a mapping (``--slurm KEY=VALUE``)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"expected KEY=VALUE (an sbatch option), got {item!r}", key="--slurm")
        out[key.strip().replace("-", "_")] = value.strip()
    return out


def check_storage_for_jobs(url: str, jobs: int) -> None:
    """Several jobs may land on several nodes: refuse a file storage then."""
    kind = storage_kind(url)
    if jobs > 1 and kind != "postgresql":
        raise ConfigError(f"{jobs} SLURM jobs may run on several nodes, and a {kind} file is "
                          f"locked with flock, which does not hold across nodes; use "
                          f"--storage postgresql://USER@HOST/DB (or --jobs 1)", key="storage")


class WorkerJob:
    """What one SLURM job runs: worker processes on the job's device slots until the study is
    done, or a stop signal. Picklable (submitit sends it to the job); requeued on preemption."""

    def __init__(self, *, study: str, storage: str, slots: Sequence[str], root: str | None,
                 cache_dir: str | None, log_level: int = logging.INFO):
        self.study, self.storage, self.slots = study, storage, list(slots)
        self.root, self.cache_dir, self.log_level = root, cache_dir, log_level

    def __call__(self) -> dict[str, Any]:
        """Run worker rounds (:func:`~lcrp_core.sweep.driver.drive`) on this job's slots until
        no trial of the study waits or runs anywhere: the last job standing also runs the
        cells that other jobs' stops re-queued."""
        from lcrp_core.sweep.queue import open_queue

        _log_to_stderr(self.log_level)
        previous = signal.getsignal(signal.SIGUSR2)  # submitit's: checkpoint and requeue
        stop = Stop()
        with stop.installed():
            try:
                with stop.interruptible():
                    queue = open_queue(self.study, self.storage)
                result = drive(queue, slots=self.slots, root=self.root, cache_dir=self.cache_dir,
                               progress=False, stop=stop)
            except KeyboardInterrupt:
                log.warning("lcrp slurm job stopped (%s): running trials re-queued", stop.name)
                if stop.signum == signal.SIGUSR2 and callable(previous):
                    previous(signal.SIGUSR2, None)  # requeues this job, then exits
                raise SystemExit(STOPPED) from None
        log.info("lcrp slurm job done: %d trial(s) computed; study %d/%d done",
                 result.computed, result.status.done, result.status.total)
        return {"study": self.study, "computed": result.computed, "done": result.status.done}

    def checkpoint(self) -> Any:
        """submitit's requeue hook: the same job again (the study remembers what is done)."""
        import submitit

        return submitit.helpers.DelayedSubmission(WorkerJob(
            study=self.study, storage=self.storage, slots=self.slots, root=self.root,
            cache_dir=self.cache_dir, log_level=self.log_level))


def _log_to_stderr(level: int) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
    root = logging.getLogger("lcrp")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def executor(folder: str | Path, settings: SlurmSettings, study: str) -> Any:
    """A submitit SlurmExecutor with ``settings`` (log files under ``folder``)."""
    import shutil

    try:
        import submitit
    except ImportError as exc:
        raise ConfigError("SLURM submission needs submitit: pip install submitit",
                          key="slurm") from exc
    if shutil.which("sbatch") is None:
        raise ConfigError("sbatch not found: submit from a machine of the SLURM cluster (a login "
                          "node), or run here with `lcrp sweep run`", key="slurm")
    ex = submitit.SlurmExecutor(folder=str(folder), python=sys.executable)
    ex.update_parameters(**settings.executor_parameters(study))
    return ex


@dataclass(frozen=True)
class Submitted:
    """Job ids (``<array id>_<index>``) and the folder of their logs."""

    job_ids: list[str]
    log_dir: Path


def submit(spec: SweepSpec, settings: SlurmSettings, *, log_level: int = logging.INFO) -> Submitted:
    """Create or resume ``spec``'s study, then submit ``settings.jobs`` worker jobs (one array).
    The dataset is checked first: a wrong split or video name creates no study."""
    from lcrp_core.sweep.queue import prepare_study
    from lcrp_core.sweep.storage import storage_errors

    check_storage_for_jobs(spec.storage, settings.jobs)
    spec.check_dataset()
    with storage_errors(spec.storage):
        prepare_study(spec)
    folder = Path(settings.log_dir) / spec.study
    folder.mkdir(parents=True, exist_ok=True)
    ex = executor(folder / "%j", settings, spec.study)
    root = str(Path(spec.dataset.root).resolve())
    cache = str(Path(spec.cache_dir).resolve())
    jobs = []
    with _sbatch_errors(), ex.batch():
        for _ in range(settings.jobs):
            jobs.append(ex.submit(WorkerJob(study=spec.study, storage=spec.storage,
                                            slots=settings.slots(), root=root, cache_dir=cache,
                                            log_level=log_level)))
    return Submitted([j.job_id for j in jobs], folder)


@contextmanager
def _sbatch_errors() -> Iterator[None]:
    """sbatch refusing a job (an unknown partition, a bad option) as one line."""
    import contextlib
    import io

    from submitit.core.utils import FailedJobError

    try:
        with contextlib.redirect_stderr(io.StringIO()):  # submitit echoes sbatch's stderr
            yield
    except FailedJobError as exc:
        last = next((line for line in reversed(str(exc).splitlines()) if line.strip()), "")
        raise ConfigError(f"sbatch refused the jobs: {last.removeprefix('sbatch: error: ').strip()}",
                          key="slurm") from None


# --- feature extraction over SLURM jobs -----------------------------------------------------------

class ExtractShardJob:
    """What one extraction job runs: ``lcrp extract`` of its shard of the videos on its slots
    (resumable: videos already cached are skipped)."""

    def __init__(self, job: Any, slots: Sequence[str], log_level: int = logging.INFO):
        self.job, self.slots, self.log_level = job, list(slots), log_level

    def __call__(self) -> dict[str, Any]:
        from lcrp_core.cache.extract import extract

        _log_to_stderr(self.log_level)
        report = extract(self.job, self.slots, progress=False)
        log.info("lcrp slurm extract: %d video(s) extracted, %d already cached", report.videos_done,
                 report.videos_skipped)
        return {"videos_done": report.videos_done, "videos_skipped": report.videos_skipped}

    def checkpoint(self) -> Any:
        """Requeued on preemption: the shard again (finished videos are skipped)."""
        import submitit

        return submitit.helpers.DelayedSubmission(ExtractShardJob(self.job, self.slots, self.log_level))


def submit_extract(job: Any, settings: SlurmSettings, *, log_level: int = logging.INFO) -> Submitted:
    """Shard the videos of ``job`` (an :class:`~lcrp_core.cache.extract.ExtractJob`) that are not
    cached yet over ``settings.jobs`` SLURM jobs (round-robin, so long and short videos mix)."""
    from lcrp_core.cache.features import VideoFeatures

    ds, backend, store, scope = job.open("cpu")  # index only
    pending = [v.name for v in ds if not VideoFeatures(v, backend, store, scope).is_extracted()]
    if not pending:
        return Submitted([], Path(settings.log_dir))
    shards = [pending[i::settings.jobs] for i in range(min(settings.jobs, len(pending)))]
    folder = Path(settings.log_dir) / f"extract-{Path(job.root).name}-{job.backend}"
    folder.mkdir(parents=True, exist_ok=True)
    ex = executor(folder / "%j", settings.model_copy(update={"jobs": len(shards)}), f"extract-{job.backend}")
    absolute = replace(job, root=str(Path(job.root).resolve()),
                       cache_dir=str(Path(job.cache_dir).resolve()))
    with _sbatch_errors(), ex.batch():
        jobs = [ex.submit(ExtractShardJob(replace(absolute, videos=tuple(shard)), settings.slots(),
                                     log_level)) for shard in shards]
    return Submitted([j.job_id for j in jobs], folder)
