"""The sweep driver: YAML specs, Optuna studies as an exactly-once work queue, workers, status.

- ``spec``: :func:`load_spec` / :func:`parse_spec` → :class:`SweepSpec` (docs/sweep-spec.md);
- ``queue``: :func:`prepare_study` (create or resume) and :func:`load_sweep` → :class:`SweepQueue`
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

import importlib

_LAZY = {
    "SweepSpec": "spec", "load_spec": "spec", "parse_spec": "spec",
    "SweepQueue": "queue", "prepare_study": "queue", "load_sweep": "queue",
    "run_worker": "worker", "run_sweep": "driver", "drive": "driver",
    "Stop": "signals", "submit": "slurm", "SlurmSettings": "slurm",
    "StudyStatus": "status", "study_status": "status", "format_status": "status",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"lcrp_core.sweep.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'lcrp_core.sweep' has no attribute {name!r}")
