"""J, F and J&F exactly as davis2017-evaluation and MeViS compute them, built for sweeps.

    from lcrp_core.metrics import Evaluator, Summary, PROTOCOLS
    ev = Evaluator(dataset, "per-expression")     # GT side prepared lazily, once per video
    vs = ev.score_video(video, {exp_id: masks})   # masks: T×H×W bool
    summary = ev.summarize([vs, ...])             # 0–100 scale, full precision

The frame-level functions (:func:`jaccard`, :func:`f_measure`, :func:`seg2bmap`,
:func:`db_statistics`, ...) are exported for tests and benchmarks.
"""

from lcrp_core.metrics.evaluator import Evaluator, ItemScore, Summary, VideoScore
from lcrp_core.metrics.measures import (
    PreparedGT,
    PreparedPred,
    boundary_radius,
    disk,
    f_measure,
    jaccard,
    score_pair,
    seg2bmap,
)
from lcrp_core.metrics.protocols import (
    DEFAULT_VOID,
    MAX_PROPOSALS,
    PROTOCOLS,
    VOID_MODES,
    match_unsupervised,
)
from lcrp_core.metrics.stats import Stats, db_statistics, decay_bins

__all__ = [
    "DEFAULT_VOID",
    "MAX_PROPOSALS",
    "PROTOCOLS",
    "VOID_MODES",
    "Evaluator",
    "ItemScore",
    "PreparedGT",
    "PreparedPred",
    "Stats",
    "Summary",
    "VideoScore",
    "boundary_radius",
    "db_statistics",
    "decay_bins",
    "disk",
    "f_measure",
    "jaccard",
    "match_unsupervised",
    "score_pair",
    "seg2bmap",
]
