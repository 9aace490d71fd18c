"""Per-sequence statistics of per-frame scores: Mean, Recall and Decay (davis2017-evaluation's
``utils.db_statistics``)."""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np

#: Decay compares the first and the last of this many bins.
NUM_DECAY_BINS = 4


class Stats(NamedTuple):
    """Mean, Recall (fraction of frames scoring > 0.5) and Decay of one sequence, 0–1 scale."""

    mean: float
    recall: float
    decay: float


def decay_bins(num_frames: int) -> list[tuple[int, int]]:
    """The 4 Decay bins of a sequence of ``num_frames`` values as (start, stop) slices.

    Edges are ``round(linspace(1, N, 5) + 1e-10) - 1`` and bin i is ``[e_i, e_{i+1}]``
    inclusive, so neighbouring bins share a frame (N=4: [0,1] [1,2] [2] [2,3]). The reference
    casts the edges to uint8, which wraps for N > 256; they are plain integers here.
    """
    edges = (np.round(np.linspace(1, num_frames, NUM_DECAY_BINS + 1) + 1e-10) - 1).astype(np.int64)
    return [(int(edges[i]), int(edges[i + 1]) + 1) for i in range(NUM_DECAY_BINS)]


def db_statistics(values: np.ndarray) -> Stats:
    """Mean (NaN-ignoring), Recall (> 0.5) and Decay (mean of the first bin minus mean of the
    last, see :func:`decay_bins`) of per-frame scores (T,)."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"statistics need a non-empty 1-D array of per-frame scores, got shape {v.shape}")
    bins = decay_bins(v.size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        mean = np.nanmean(v)
        recall = np.nanmean(v > 0.5)
        decay = np.nanmean(v[slice(*bins[0])]) - np.nanmean(v[slice(*bins[-1])])
    return Stats(float(mean), float(recall), float(decay))
