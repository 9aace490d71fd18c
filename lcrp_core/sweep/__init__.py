"""The sweep driver: YAML specs, Optuna studies as an exactly-once work queue, workers, status.

- ``spec``: :func:`load_sweep_spec` / :func:`parse_sweep_spec` → :class:`SweepSpec` (docs/sweep-spec.md);
- ``queue``: :func:`prepare_study` (create or resume) and :func:`open_queue` → :class:`SweepQueue`
  (pop, fail + re-queue, reap lost workers);
- ``worker``: :func:`run_worker` (one EvalContext, trials until none waits);
- ``driver``: :func:`run_sweep` / :func:`drive` (spawned worker processes per device slot,
  events through a queue, progress);
- ``signals``: :class:`Stop` (Ctrl-C, SIGTERM, SIGUSR2: clean stops that re-queue running cells);
- ``slurm``: :func:`submit` (worker jobs on SLURM through submitit, the ``slurm:`` block);
- ``fingerprint``: the dataset's identity by contents;
- ``status``: :func:`study_status`, :func:`format_status`;
- ``storage``: storage URLs (sqlite, journal file, PostgreSQL).

Names are imported on first access, so importing ``lcrp_core.sweep.storage`` stays light.
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach(__name__, submod_attrs={
    "spec": ["SweepSpec", "load_sweep_spec", "parse_sweep_spec"],
    "queue": ["SweepQueue", "open_queue", "prepare_study"],
    "worker": ["run_worker"],
    "driver": ["drive", "run_sweep"],
    "status": ["StudyStatus", "format_status", "study_status"],
    "signals": ["Stop"],
    "slurm": ["SlurmSettings", "submit"],
})
