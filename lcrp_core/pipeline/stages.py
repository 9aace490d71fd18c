"""The four LCRP stages as pure functions of (cached features, parameters).

``feats`` is anything with the VideoFeatures interface (``num_frames``, ``proposals(t)``,
``scores(t, text)``, ``refine(t, mask)``, ``tracks(t, seeds)``); every call on it is memoized by
content, so a stage never recomputes what a trial cannot change.

- **Locate (N)**: sample N frames ``round(linspace(0, T-1, N))``; score every proposal on them:
  ``score = w_text·z(s) + w_quality·q`` with z the per-frame standardisation of the region–text
  scores s (z = 0 when a frame's scores are all equal).
- **Core (K)**: keep the K best (frame, proposal) candidates; propagate each through the video;
  a candidate's support is the score-weighted mean temporal IoU of its track with the other K−1
  tracks (weights: softmax of the candidates' scores; temporal IoU: the mean per-frame IoU, 1 on
  frames where both are empty); the anchor maximises ``score + λ·support``. K=1 takes the top one.
- **Refine (H, δ)**: H rounds on the anchor mask, each re-prompting the segmenter, then dropping
  components and filling holes smaller than δ × frame area (height × width) pixels; stops early once a round changes the
  mask by little (IoU > 0.98); a round that returns an empty mask is rejected and ends refinement.
  H=0 is the identity.
- **Path**: propagate the refined anchor forward to the last frame and backward to the first;
  apply the δ small-region filter to every output mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lcrp_core.masks import (
    PackedTrack,
    iou,
    mask_hash,
    packed_pair_counts,
    remove_small_regions,
    unpack_masks,
)
from lcrp_core.pipeline.params import Params

#: Refinement stops once a round's output overlaps its input by more than this IoU.
REFINE_CONVERGED_IOU = 0.98


@dataclass(frozen=True)
class Candidate:
    """A (frame, proposal) pair with its Locate score; ``mask`` H×W bool."""

    frame: int
    index: int
    score: float
    mask: np.ndarray


@dataclass(frozen=True)
class Anchor:
    """Core's choice: the candidate and its support."""

    candidate: Candidate
    support: float


def sample_frames(num_frames_video: int, n: int) -> np.ndarray:
    """Locate's frames: ``round(linspace(0, T-1, N))`` (duplicates, when N > T, removed).

    N > T samples every frame, as N = T does: N is clamped to T before sampling, so a huge N
    costs nothing."""
    n = min(n, num_frames_video)
    return np.unique(np.round(np.linspace(0, num_frames_video - 1, n)).astype(int))


def zscore(values: np.ndarray) -> np.ndarray:
    """Per-frame standardisation; 0 everywhere when the values do not vary."""
    values = np.asarray(values, dtype=np.float64)
    std = values.std()
    return np.zeros_like(values) if std == 0 else (values - values.mean()) / std


def locate(feats, text: str, params: Params) -> list[Candidate]:
    """Every proposal on the N sampled frames, scored, best first (ties: earlier frame, index)."""
    out = []
    for t in sample_frames(feats.num_frames, params.num_frames):
        props = feats.proposals(int(t))
        if len(props) == 0:
            continue
        score = params.w_text * zscore(feats.scores(int(t), text)) + params.w_quality * props.quality
        out += [Candidate(int(t), i, float(score[i]), props.masks[i]) for i in range(len(props))]
    return sorted(out, key=lambda c: (-c.score, c.frame, c.index))


def temporal_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Mean per-frame IoU of two T×H×W tracks (1 on frames where both are empty)."""
    return float(_pairwise_tiou([a, b])[0, 1])


def _packed(track) -> PackedTrack:
    return track if isinstance(track, PackedTrack) else PackedTrack.from_masks(track)


def _pairwise_tiou(tracks) -> np.ndarray:
    """K×K temporal IoU of K tracks (T×H×W bool arrays or PackedTracks), computed frame by frame
    on packed bits: memory grows with K packed frames, never with K×T×H×W."""
    packed = [_packed(t) for t in tracks]
    k = len(packed)
    if k < 2:
        return np.eye(k)
    num_frames = len(packed[0])
    total = np.zeros((k, k))
    for t in range(num_frames):
        rows = np.stack([p.bits[t] for p in packed])          # K×B packed frame t
        for i in range(k - 1):
            inter, union = packed_pair_counts(rows[i], rows[i + 1:])
            total[i, i + 1:] += np.where(union == 0, 1.0, inter / np.maximum(union, 1))
    out = total / max(num_frames, 1)
    out = out + out.T
    np.fill_diagonal(out, 1.0)
    return out


def support_scores(scores: np.ndarray, tracks) -> np.ndarray:
    """(K,) score-weighted mean temporal IoU of each track with the other K−1 (0 when K=1);
    ``tracks``: K T×H×W bool tracks (an array) or PackedTracks."""
    k = len(scores)
    if k == 1:
        return np.zeros(1)
    weights = np.exp(scores - scores.max())
    others = weights[None, :] * (1 - np.eye(k))
    return (_pairwise_tiou(tracks) * others).sum(axis=1) / others.sum(axis=1)


def core(feats, candidates: list[Candidate], params: Params) -> Anchor | None:
    """Core's anchor among the K best candidates (None when there are no candidates). The K
    tracks stay packed (``feats.packed_tracks``) and support is computed frame by frame."""
    top = candidates[:params.top_k]
    if not top:
        return None
    scores = np.array([c.score for c in top])

    def choose() -> dict[str, np.ndarray]:
        tracks: list[PackedTrack | None] = [None] * len(top)
        for t in sorted({c.frame for c in top}):
            idx = [i for i, c in enumerate(top) if c.frame == t]
            for i, track in zip(idx, feats.packed_tracks(t, [top[i].mask for i in idx]), strict=True):
                tracks[i] = track
        support = support_scores(scores, tracks)
        best = int(np.argmax(scores + params.support_weight * support))
        return {"best": np.array(best), "support": np.array(support[best])}

    # the choice depends only on the candidates' seeds, their scores and λ
    parts = (tuple((c.frame, mask_hash(c.mask)) for c in top), scores.tobytes(), params.support_weight)
    choice = feats.derived("core", parts, choose)
    return Anchor(top[int(choice["best"])], float(choice["support"]))


def min_region_area(params: Params, size: tuple[int, int]) -> float:
    """δ × the frame's area in pixels; ``size`` is (height, width)."""
    return params.min_region_frac * size[0] * size[1]


def refine(feats, frame: int, mask: np.ndarray, params: Params) -> np.ndarray:
    """H refinement rounds of ``mask`` (H×W bool) on ``frame``; H=0 returns it unchanged."""
    area = min_region_area(params, mask.shape)
    for _ in range(params.refine_rounds):
        new = remove_small_regions(feats.refine(frame, mask), area)
        if not new.any():
            break
        converged = iou(new, mask) > REFINE_CONVERGED_IOU
        mask = new
        if converged:
            break
    return mask


def path(feats, frame: int, mask: np.ndarray, params: Params) -> np.ndarray:
    """The refined anchor propagated over every frame, δ-filtered: T×H×W bool (the track stays
    packed and is filtered one frame at a time)."""
    area = min_region_area(params, mask.shape)

    def propagate() -> dict[str, np.ndarray]:
        track = feats.packed_tracks(frame, [mask])[0]
        if area > 0:
            track = track.map_frames(lambda m: remove_small_regions(m, area))
        return track.to_payload()

    return unpack_masks(feats.derived("path", (frame, mask_hash(mask), area), propagate))


@dataclass(frozen=True)
class Trace:
    """What one run decided: the anchor's frame and proposal index, its Locate score and Core
    support (all None when no sampled frame had a proposal)."""

    frame: int | None
    proposal: int | None
    score: float | None
    support: float | None


def seed(feats, text: str, params: Params) -> tuple[np.ndarray | None, Trace]:
    """Locate → Core → Refine: the refined anchor mask (H×W bool; None without any proposal on
    the sampled frames) and the trace of the decision. Path's output depends only on
    (trace.frame, this mask, δ)."""
    anchor = core(feats, locate(feats, text, params), params)
    if anchor is None:
        return None, Trace(None, None, None, None)
    c = anchor.candidate
    return refine(feats, c.frame, c.mask, params), Trace(c.frame, c.index, c.score, anchor.support)


def run(feats, text: str, params: Params, size: tuple[int, int]) -> tuple[np.ndarray, Trace]:
    """Locate → Core → Refine → Path for one expression: (T×H×W bool masks, trace).
    With no proposal on any sampled frame, every mask is empty."""
    mask, trace = seed(feats, text, params)
    if mask is None:
        return np.zeros((feats.num_frames, *size), dtype=bool), trace
    return path(feats, trace.frame, mask, params), trace
