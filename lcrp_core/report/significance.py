"""Uncertainty of ablation rows from the per-video / per-expression scores every trial stores.

- A cell's J, F and J&F get a 95 % confidence interval from a bootstrap over **videos**
  (``scipy.stats.bootstrap``, BCa where it is defined, else percentile). For a per-expression
  protocol the videos are clusters: a resample draws videos and keeps each video's expressions
  together; the statistic is the mean over the drawn expressions (sum of per-video sums over
  sum of per-video counts), i.e. the dataset score the protocol reports.
- A row against a reference row: the paired difference Δ (same ratio statistic on per-video sums
  of item differences) with its bootstrap CI, and a two-sided paired permutation test
  (``scipy.stats.permutation_test``, ``permutation_type="samples"``: each video's difference
  keeps or flips its sign; exact when 2^videos <= n_resamples).
- p-values of one table are Holm-corrected.
- Fewer than two videos (``MIN_VIDEOS``) allow neither: a score or Δ over one video is a point
  alone (``Interval.low``/``high`` None) and a pair sharing one video has no p-value (None); the
  tables print the points and say why (blocks.py). A resampling method would either fail or
  return a degenerate "[x, x]" interval and a p of 1, which read as certainty.

Everything is seeded: the same scores give the same intervals and p-values on every run.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from lcrp_core import schema

#: The score names an item carries (0–100).
METRICS = (schema.JF, schema.J, schema.F)
#: The fewest videos a confidence interval or a paired test needs.
MIN_VIDEOS = 2
CONFIDENCE = 0.95
N_RESAMPLES = 9999
SEED = 0

Items = Mapping[str, Mapping[str, float]]  # {"<video>/<exp>": {"J":, "F":, "JF":}} or {video: ...}


def video_of(key: str) -> str:
    """The video an item key belongs to (``bear/0`` → ``bear``, ``bear/anno0/obj1`` → ``bear``)."""
    return key.split("/", 1)[0]


@dataclass(frozen=True)
class Interval:
    """A point estimate and its confidence interval (0–100 scale, or points of Δ); ``low`` and
    ``high`` are None where no interval is possible (fewer than ``MIN_VIDEOS`` videos) or none
    was asked for."""

    value: float
    low: float | None
    high: float | None

    @property
    def defined(self) -> bool:
        return self.low is not None and self.high is not None


@dataclass(frozen=True)
class Paired:
    """A row against a reference row over the items both have; ``p`` is None when they share
    fewer than ``MIN_VIDEOS`` videos (no test is possible)."""

    delta: Interval
    p: float | None
    videos: int
    items: int


def clusters(items: Items, metric: str, keys: Sequence[str] | None = None
             ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(videos, per-video sum of ``metric`` over its items, per-video item count), videos in
    first-seen order; only ``keys`` when given."""
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for key in keys if keys is not None else list(items):
        v = video_of(key)
        sums[v] = sums.get(v, 0.0) + float(items[key][metric])
        counts[v] = counts.get(v, 0) + 1
    videos = list(sums)
    return videos, np.array([sums[v] for v in videos]), np.array([counts[v] for v in videos], float)


def _ratio(sums: np.ndarray, counts: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.sum(sums, axis=axis) / np.sum(counts, axis=axis)


def cluster_ci(sums: np.ndarray, counts: np.ndarray, *, seed: int = SEED,
               n_resamples: int = N_RESAMPLES, confidence: float = CONFIDENCE) -> Interval:
    """Σsums/Σcounts and its bootstrap CI over clusters (videos): BCa, or percentile where
    BCa is undefined (e.g. two videos); a degenerate interval when every video scores the same;
    no interval (low, high None) with fewer than ``MIN_VIDEOS`` videos."""
    from scipy import stats

    value = float(_ratio(sums, counts))
    if len(sums) < MIN_VIDEOS:
        return Interval(value, None, None)
    per_video = sums / counts
    if np.ptp(per_video) <= 1e-12 * max(1.0, abs(value)):
        return Interval(value, value, value)
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = stats.bootstrap((sums, counts), _ratio, paired=True, vectorized=True,
                                  n_resamples=n_resamples, confidence_level=confidence,
                                  method=method, rng=np.random.default_rng(seed))
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if math.isfinite(low) and math.isfinite(high):
            return Interval(value, low, high)
    return Interval(value, value, value)


def item_ci(items: Items, metric: str = schema.JF, **kw) -> Interval:
    """The dataset score (mean over items) of ``metric`` and its CI from a bootstrap over videos."""
    _, sums, counts = clusters(items, metric)
    return cluster_ci(sums, counts, **kw)


def paired_permutation_p(diff_sums: np.ndarray, *, seed: int = SEED,
                         n_resamples: int = N_RESAMPLES) -> float | None:
    """Two-sided p-value of H0 "each video's difference is as likely to have either sign"
    (sign-flip permutation of per-video difference sums; exact for few videos); None with fewer
    than ``MIN_VIDEOS`` videos, where no test is possible."""
    from scipy import stats

    if len(diff_sums) < MIN_VIDEOS:
        return None
    if not np.any(np.abs(diff_sums) > 1e-12):
        return 1.0
    res = stats.permutation_test((diff_sums,), lambda d, axis=-1: np.sum(d, axis=axis),
                                 permutation_type="samples", vectorized=True,
                                 n_resamples=n_resamples, alternative="two-sided",
                                 rng=np.random.default_rng(seed))
    return float(min(1.0, res.pvalue))


def paired(row: Items, reference: Items, metric: str = schema.JF, *, seed: int = SEED,
           n_resamples: int = N_RESAMPLES, confidence: float = CONFIDENCE,
           with_ci: bool = True) -> Paired | None:
    """Δ = score(row) − score(reference) over the items both have, its CI (bootstrap over
    videos; the point alone when not ``with_ci`` or over fewer than ``MIN_VIDEOS`` videos) and
    the paired permutation p-value (None over fewer than ``MIN_VIDEOS`` videos); None when they
    share no item."""
    keys = [k for k in row if k in reference]
    if not keys:
        return None
    diff = {k: {metric: float(row[k][metric]) - float(reference[k][metric])} for k in keys}
    videos, sums, counts = clusters(diff, metric)
    if with_ci:
        ci = cluster_ci(sums, counts, seed=seed, n_resamples=n_resamples, confidence=confidence)
    else:
        ci = Interval(float(_ratio(sums, counts)), None, None)
    return Paired(ci, paired_permutation_p(sums, seed=seed, n_resamples=n_resamples),
                  videos=len(videos), items=len(keys))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (step-down, monotone, capped at 1), in input order."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def format_p(p: float) -> str:
    """A p-value as a table prints it: ``<0.001``, ``0.012``, ``0.35``, ``1``."""
    if p < 0.001:
        return "<0.001"
    if p >= 0.995:
        return "1"
    return f"{p:.3f}" if p < 0.1 else f"{p:.2f}"
