"""What a study and its trials record: the one home of every key (docs/trial-schema.md).

The sweep driver writes studies through the ``*_attrs`` builders below; the reports, ``lcrp db``,
``lcrp sweep status``, ``lcrp predict`` and the Python API read them through the accessors. The
keys are plain strings in Optuna's ``user_attrs``, so any storage holds them.

:data:`SCHEMA_VERSION` is written as the study user_attr ``lcrp_schema_version`` when a study is
created. Studies written before that attr existed read as version 1 and hold the same keys.

Base layer: the standard library and :mod:`lcrp_core.errors` only (no Optuna): the accessors
take a study's or a trial's ``user_attrs`` mapping.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Version of the layout below; studies without ``lcrp_schema_version`` are version 1.
SCHEMA_VERSION = 2
#: What a study without ``lcrp_schema_version`` is read as.
UNVERSIONED = 1

# --- study user_attrs ----------------------------------------------------------------------------

SCHEMA_VERSION_ATTR = "lcrp_schema_version"
SPEC = "lcrp_spec"                      # the resolved sweep spec (JSON object)
SPEC_HASH = "lcrp_spec_hash"            # hash of its result-defining parts; set last on creation
DATASET = "lcrp_dataset"                # the dataset's fingerprint {"digest", "videos"}
PARAM_DISTRIBUTIONS = "lcrp_param_distributions"  # "numeric", or absent (categorical, older)
KIND = "lcrp_kind"                      # "grid" | "points" | "tpe" | "reference"
CELLS = "lcrp_cells"                    # [{"cell", "params", "repeat"}] in the spec's order
STUDY_SOURCE = "lcrp_source"            # reference imports: where the numbers come from

STUDY_KEYS = (SCHEMA_VERSION_ATTR, SPEC, SPEC_HASH, DATASET, PARAM_DISTRIBUTIONS, KIND, CELLS,
              STUDY_SOURCE)

#: ``lcrp_param_distributions`` of studies whose grid/points params are int/float distributions.
NUMERIC = "numeric"
#: ``lcrp_kind`` of a study of rows imported with ``lcrp db import``.
REFERENCE_KIND = "reference"

# --- trial user_attrs ----------------------------------------------------------------------------

CELL = "lcrp_cell"                      # the grid/points cell a trial runs ("c000")
SLOT = "lcrp_slot"                      # the TPE slot a trial runs ("t000")
PARAMS = "lcrp_params"                  # every pipeline parameter of the run (short names)

#: Score names: the dataset means (0–100) and, per video or expression, J, F and J&F.
J, F, JF = "J", "F", "JF"
J_RECALL, J_DECAY, F_RECALL, F_DECAY = "J_recall", "J_decay", "F_recall", "F_decay"
J_STATS, F_STATS = (J, J_RECALL, J_DECAY), (F, F_RECALL, F_DECAY)  # Mean, Recall, Decay
SCORES = (J, F, JF, J_RECALL, J_DECAY, F_RECALL, F_DECAY)
ITEM_SCORES = (J, F, JF)
PER_VIDEO = "per_video"                 # {video: {"J", "F", "JF"}}
PER_EXPRESSION = "per_expression"       # {"<video>/<exp_id>": {"J", "F", "JF", "text"}}
TEXT = "text"                           # the sentence of a per_expression item

WALL_TIME_S, FRAMES, FPS = "wall_time_s", "frames", "fps"
PEAK_RSS_MB, PEAK_GPU_MB = "peak_rss_mb", "peak_gpu_mb"
DEVICE, HOST, PID, SLURM_JOB, GPU = "device", "host", "pid", "slurm_job", "gpu"
CACHE_KEY, CACHE_COUNTERS = "cache_key", "cache_counters"
CODE_VERSION, PACKAGE_VERSIONS, ATTEMPT = "code_version", "package_versions", "attempt"
#: What the backend found nothing for (pipeline.evaluation.EvalResult).
EXPRESSIONS, NO_ANCHOR_EXPRESSIONS, NO_PROPOSAL_FRAMES = (
    "expressions", "no_anchor_expressions", "no_proposal_frames")
REFERENCE, SOURCE = "reference", "source"
ERROR = "error"                         # one line, on failed trials

#: Trial user_attrs by the section ``lcrp db show`` prints them in.
RESOURCES = (WALL_TIME_S, FRAMES, FPS, PEAK_RSS_MB, PEAK_GPU_MB, DEVICE, HOST, PID)
PROVENANCE = (CACHE_KEY, CODE_VERSION, ATTEMPT, REFERENCE, SOURCE)
MISSES = (EXPRESSIONS, NO_ANCHOR_EXPRESSIONS, NO_PROPOSAL_FRAMES)

TRIAL_KEYS = (CELL, SLOT, PARAMS, *SCORES, PER_VIDEO, PER_EXPRESSION, *RESOURCES, SLURM_JOB, GPU,
              CACHE_KEY, CACHE_COUNTERS, CODE_VERSION, PACKAGE_VERSIONS, ATTEMPT, *MISSES,
              REFERENCE, SOURCE, ERROR)

#: ``error`` of a trial stopped by Ctrl-C, SIGTERM or a cancelled SLURM job.
INTERRUPTED = "interrupted"
#: Most characters of an ``error`` kept.
ERROR_CHARS = 500

# --- trial system_attrs --------------------------------------------------------------------------

PID_START = "lcrp_pid_start"            # the worker's start time (tells a reused pid from it)
SYSTEM_KEYS = (PID_START,)


# --- writing -------------------------------------------------------------------------------------

def study_attrs(*, spec: Mapping[str, Any], kind: str, dataset: Mapping[str, Any] | None = None,
                cells: list[Mapping[str, Any]] | None = None, source: str | None = None,
                numeric: bool = True) -> dict[str, Any]:
    """A new study's user_attrs, without ``lcrp_spec_hash`` (set last: it marks a study whose
    creation finished). ``cells`` for grid/points/reference; ``source`` for reference imports."""
    attrs: dict[str, Any] = {SCHEMA_VERSION_ATTR: SCHEMA_VERSION, SPEC: dict(spec), KIND: kind}
    if dataset is not None:
        attrs[DATASET] = dict(dataset)
    if numeric:
        attrs[PARAM_DISTRIBUTIONS] = NUMERIC
    if cells is not None:
        attrs[CELLS] = [dict(c) for c in cells]
    if source is not None:
        attrs[STUDY_SOURCE] = source
    return attrs


def unit_attrs(unit: str, *, tpe: bool, attempt: int) -> dict[str, Any]:
    """An enqueued trial's user_attrs: its cell (or TPE slot) and attempt (0 for the first try)."""
    return {SLOT if tpe else CELL: unit, ATTEMPT: attempt}


def owner_attrs(*, host: str, pid: int, device: str, slurm_job: str | None = None,
                gpu: str | None = None) -> dict[str, Any]:
    """Who runs a popped trial; ``slurm_job``/``gpu`` only when known."""
    attrs: dict[str, Any] = {HOST: host, PID: pid, DEVICE: device}
    if slurm_job is not None:
        attrs[SLURM_JOB] = slurm_job
    if gpu is not None:
        attrs[GPU] = gpu
    return attrs


def run_attrs(*, params: Mapping[str, Any], code_version: str,
              package_versions: Mapping[str, str]) -> dict[str, Any]:
    """What a trial records before it runs: its complete parameters and the code's versions."""
    return {PARAMS: dict(params), CODE_VERSION: code_version,
            PACKAGE_VERSIONS: dict(package_versions)}


def result_attrs(*, scores: Mapping[str, float], per_video: Mapping[str, Any],
                 per_expression: Mapping[str, Any], frames: int, cache_key: str,
                 expressions: int, no_anchor_expressions: int,
                 no_proposal_frames: int) -> dict[str, Any]:
    """The scores part of a trial's user_attrs: ``scores`` holds every name of SCORES (0–100)."""
    attrs: dict[str, Any] = {name: float(scores[name]) for name in SCORES}
    attrs.update({PER_VIDEO: per_video, PER_EXPRESSION: per_expression, FRAMES: frames,
                  CACHE_KEY: cache_key, EXPRESSIONS: expressions,
                  NO_ANCHOR_EXPRESSIONS: no_anchor_expressions,
                  NO_PROPOSAL_FRAMES: no_proposal_frames})
    return attrs


def usage_attrs(*, wall_time_s: float, peak_rss_mb: float, peak_gpu_mb: float | None,
                fps: float | None = None,
                cache_counters: Mapping[str, int] | None = None) -> dict[str, Any]:
    """What a trial cost: wall time, peak memory, and (when it ran) FPS and cache counters."""
    attrs: dict[str, Any] = {WALL_TIME_S: wall_time_s, PEAK_RSS_MB: peak_rss_mb,
                             PEAK_GPU_MB: peak_gpu_mb}
    if fps is not None:
        attrs[FPS] = fps
    if cache_counters is not None:
        attrs[CACHE_COUNTERS] = dict(cache_counters)
    return attrs


def error_text(error: str) -> str:
    """A failure message as a trial's ``error``: one line, at most ERROR_CHARS characters."""
    return " ".join(error.split())[:ERROR_CHARS]


def reference_attrs(*, cell: str, params: Mapping[str, Any], scores: Mapping[str, float],
                    source: str, code_version: str) -> dict[str, Any]:
    """A trial of a reference study: a row of numbers from a paper (``scores``: JF, maybe J, F)."""
    return {CELL: cell, PARAMS: dict(params), **{k: scores[k] for k in ITEM_SCORES if k in scores},
            REFERENCE: True, SOURCE: source, CODE_VERSION: code_version, ATTEMPT: 0}


# --- reading: a study's user_attrs ---------------------------------------------------------------

def schema_version(attrs: Mapping[str, Any]) -> int:
    """The schema version a study was written with (UNVERSIONED when it records none)."""
    version = attrs.get(SCHEMA_VERSION_ATTR)
    return version if isinstance(version, int) and not isinstance(version, bool) else UNVERSIONED


def study_kind(attrs: Mapping[str, Any]) -> str:
    """``grid``, ``points``, ``tpe``, ``reference``, or ``unknown`` for a foreign study."""
    return str(attrs.get(KIND, "unknown"))


def study_cells(attrs: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The spec's cells in order; empty for TPE and foreign studies (malformed cells skipped)."""
    cells = attrs.get(CELLS) or []
    return [c for c in cells if isinstance(c, Mapping) and isinstance(c.get("params"), Mapping)]


def study_spec(attrs: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The stored sweep spec (a mapping), or None for a study that has none."""
    spec = attrs.get(SPEC)
    return spec if isinstance(spec, Mapping) else None


def numeric_params(attrs: Mapping[str, Any]) -> bool:
    """Whether grid/points trials record int/float distributions (else categorical, older)."""
    return attrs.get(PARAM_DISTRIBUTIONS) == NUMERIC


# --- reading: a trial's user_attrs ---------------------------------------------------------------

def as_number(value: Any) -> float | None:
    """A stored number as a float; None when it is not one (bools are not)."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def number(attrs: Mapping[str, Any], key: str) -> float | None:
    """A numeric user_attr as a float; None when absent or not a number."""
    return as_number(attrs.get(key))


def cell(attrs: Mapping[str, Any]) -> str | None:
    """The grid/points cell of a trial; None for TPE and foreign trials."""
    return attrs.get(CELL)


def unit(attrs: Mapping[str, Any]) -> str | None:
    """The cell (``c000``) or TPE slot (``t000``) a trial runs; None for a foreign trial."""
    return attrs.get(CELL) or attrs.get(SLOT)


def run_params(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Every pipeline parameter of the run (``lcrp_params``); {} when not recorded."""
    params = attrs.get(PARAMS)
    return dict(params) if isinstance(params, Mapping) else {}


def per_video(attrs: Mapping[str, Any]) -> Mapping[str, Any]:
    """``{video: {"J", "F", "JF"}}``; {} when not recorded."""
    scores = attrs.get(PER_VIDEO)
    return scores if isinstance(scores, Mapping) else {}


def per_expression(attrs: Mapping[str, Any]) -> Mapping[str, Any]:
    """``{"<video>/<exp_id>": {"J", "F", "JF", "text"}}``; {} when not recorded."""
    scores = attrs.get(PER_EXPRESSION)
    return scores if isinstance(scores, Mapping) else {}


def items(attrs: Mapping[str, Any]) -> Any:
    """Per-item scores: ``per_expression`` where recorded (and not empty), else ``per_video``;
    returned as stored (the caller checks the type: older studies may hold anything)."""
    return attrs.get(PER_EXPRESSION) or attrs.get(PER_VIDEO) or {}


def item_score(scores: Any, name: str) -> float | None:
    """One score (J, F or JF) of a per-video or per-expression entry; None when absent."""
    return number(scores, name) if isinstance(scores, Mapping) else None


def attempt(attrs: Mapping[str, Any]) -> int:
    """The attempt of a trial's cell (0 for the first try)."""
    return int(attrs.get(ATTEMPT, 0))


def error(attrs: Mapping[str, Any]) -> str | None:
    """A failed trial's one-line error; None when it recorded none."""
    return attrs.get(ERROR)


def owner(attrs: Mapping[str, Any]) -> tuple[str, int] | None:
    """(host, pid) of the worker that popped a trial; None when not (validly) recorded."""
    host, pid = attrs.get(HOST), attrs.get(PID)
    if not isinstance(host, str) or not isinstance(pid, int) or isinstance(pid, bool):
        return None
    return host, pid


def misses(attrs: Mapping[str, Any]) -> tuple[int, int, int]:
    """(expressions, expressions without an anchor, sampled frames without a proposal)."""
    return (int(attrs.get(EXPRESSIONS) or 0), int(attrs.get(NO_ANCHOR_EXPRESSIONS) or 0),
            int(attrs.get(NO_PROPOSAL_FRAMES) or 0))


def mostly_unanchored(expressions: int, no_anchor: int) -> bool:
    """More than half of the expressions had no anchor (flagged by status, db show, results)."""
    return expressions > 0 and no_anchor > expressions / 2

