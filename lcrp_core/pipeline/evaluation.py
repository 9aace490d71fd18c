"""Evaluate one configuration of the pipeline over a dataset, through the feature cache.

An :class:`EvalContext` is opened once per worker: it loads the dataset index, builds the
backend (models load lazily, once), opens the cache and prepares the metrics' ground-truth side
once per video. ``evaluate(params)`` then runs Locate → Core → Refine → Path on every expression
and scores it; everything a trial cannot change (proposals, text features, refinements,
tracks, GT boundaries) is computed at most once and shared by every later trial.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from lcrp_core import schema
from lcrp_core.backends.base import Backend, create_backend
from lcrp_core.cache.features import CacheScope, Counters, Memo, VideoFeatures
from lcrp_core.cache.store import CacheStore
from lcrp_core.data import load_dataset
from lcrp_core.data.model import Dataset
from lcrp_core.errors import ConfigError
from lcrp_core.masks import mask_hash
from lcrp_core.metrics import Evaluator, Summary
from lcrp_core.pipeline.params import Params
from lcrp_core.pipeline.stages import path, sample_frames, seed

#: Protocols a pipeline evaluation can be scored with (davis-semi needs per-object seeds).
PIPELINE_PROTOCOLS = ("per-expression", "davis-unsupervised")


@dataclass
class EvalResult:
    """Scores of one configuration (0–100, full precision) and what it cost."""

    summary: Summary
    frames: int
    seconds: float
    counters: Counters
    cache_key: str
    params: Params
    texts: dict[str, str] = field(default_factory=dict)  # {"<video>/<exp_id>": sentence}
    expressions: int = 0
    no_anchor_expressions: int = 0     # no proposal on any of Locate's frames: empty masks
    no_proposal_frames: int = 0        # Locate's sampled frames (per video) with no proposal

    @property
    def mostly_unanchored(self) -> bool:
        """More than half of the expressions had no anchor (flagged in reports and status)."""
        return schema.mostly_unanchored(self.expressions, self.no_anchor_expressions)

    @property
    def J(self) -> float:
        return self.summary.J

    @property
    def F(self) -> float:
        return self.summary.F

    @property
    def JF(self) -> float:
        return self.summary.JF

    @property
    def per_video(self) -> dict[str, dict[str, float]]:
        return self.summary.per_video

    @property
    def per_expression(self) -> dict[str, dict[str, Any]]:
        """Per-item J, F, J&F, plus the sentence (``text``) where the item is an expression."""
        return {key: {**scores, **({schema.TEXT: self.texts[key]} if key in self.texts else {})}
                for key, scores in self.summary.per_item.items()}

    def to_attrs(self) -> dict[str, Any]:
        """The scores part of a trial's user_attrs (:func:`lcrp_core.schema.result_attrs`)."""
        return schema.result_attrs(
            scores={name: getattr(self.summary, name) for name in schema.SCORES},
            per_video=self.per_video, per_expression=self.per_expression, frames=self.frames,
            cache_key=self.cache_key, expressions=self.expressions,
            no_anchor_expressions=self.no_anchor_expressions,
            no_proposal_frames=self.no_proposal_frames)


@dataclass
class EvalContext:
    """Everything a worker opens once: dataset, backend, cache, ground truth."""

    dataset: Dataset
    backend: Backend
    store: CacheStore | None
    protocol: str
    counters: Counters = field(default_factory=Counters)
    memo: Memo = field(default_factory=Memo)  # decoded features and tracks kept across trials

    def __post_init__(self) -> None:
        if self.protocol not in PIPELINE_PROTOCOLS:
            raise ConfigError(f"the pipeline is scored with one of {list(PIPELINE_PROTOCOLS)}, "
                              f"got {self.protocol!r}", key="protocol")
        self.scope = CacheScope.of(self.dataset, self.backend)
        self.evaluator = Evaluator(self.dataset, self.protocol)
        self._scores: dict[tuple, Any] = {}

    @classmethod
    def open(cls, *, dataset: str, root: str | Path, split: str | None = None,
             backend: str = "classical", backend_config: Mapping[str, Any] | None = None,
             protocol: str = "per-expression", cache_dir: str | Path | None = "cache",
             device: str = "cpu", random_init: bool = False,
             videos: Sequence[str] | None = None,
             wrap_backend: Callable[[Backend], Backend] | None = None) -> EvalContext:
        """``wrap_backend`` replaces the created backend by a wrapper of it (a report's
        cache-only stand-in)."""
        ds = load_dataset(dataset, root, split, videos=videos)
        be = create_backend(backend, backend_config, device=device, random_init=random_init)
        return cls(ds, wrap_backend(be) if wrap_backend is not None else be,
                   CacheStore(cache_dir) if cache_dir is not None else None, protocol)

    @classmethod
    def from_spec(cls, spec: Any, *, videos: Sequence[str] | None = None,
                  root: str | Path | None = None, cache_dir: str | Path | None = None,
                  device: str = "cpu",
                  wrap_backend: Callable[[Backend], Backend] | None = None) -> EvalContext:
        """The context a sweep's trials are evaluated in, from its spec (a
        :class:`lcrp_core.sweep.spec.SweepSpec`: dataset, backend, protocol, cache folder).
        ``videos``, ``root`` and ``cache_dir`` replace the spec's; ``wrap_backend`` as in
        :meth:`open`."""
        ds, be = spec.dataset, spec.backend
        return cls.open(dataset=ds.kind, root=root if root is not None else ds.root, split=ds.split,
                        backend=be.name, backend_config=be.config, protocol=spec.protocol,
                        cache_dir=cache_dir if cache_dir is not None else spec.cache_dir,
                        device=device, random_init=be.random_init,
                        videos=videos if videos is not None else ds.videos,
                        wrap_backend=wrap_backend)

    def features(self, video) -> VideoFeatures:
        return VideoFeatures(video, self.backend, self.store, self.scope, self.counters, self.memo)

    def evaluate(self, params: Params, *, on_video: Callable[[int, str, float], None] | None = None,
                 progress: bool = False, reuse_scores: bool = True) -> EvalResult:
        """Run and score ``params`` on every expression; ``on_video(step, video, jf)`` is called
        after each video (a pruner may raise from it to stop the trial). ``reuse_scores=False``
        runs Path and the metrics even for decisions scored before (for benchmarks)."""
        start, before = time.perf_counter(), self.counters.copy()
        scores, frames, texts = [], 0, {}
        misses = {"expressions": 0, "no_anchor": 0, "no_proposal": 0}
        for step, video in enumerate(tqdm(self.dataset, desc="videos", unit="video",
                                          disable=not progress, leave=False)):
            score = self._score_video(self.features(video), params, reuse_scores, misses)
            scores.append(score)
            texts.update({f"{video.name}/{exp_id}": e.text for exp_id, e in video.expressions.items()})
            frames += len(video) * len(video.expressions)
            if on_video is not None:
                jf = self.evaluator.summarize([score]).per_video[video.name][schema.JF]
                on_video(step, video.name, jf)
        return EvalResult(self.evaluator.summarize(scores), frames, time.perf_counter() - start,
                          self.counters - before, self.scope.features, params, texts,
                          misses["expressions"], misses["no_anchor"], misses["no_proposal"])

    def predict(self, video, params: Params) -> dict[str, np.ndarray]:
        """Every expression's T×H×W bool masks for one video (what a trial scores)."""
        feats = self.features(video)
        return _paths(feats, _decisions(feats, params), params)

    def _score_video(self, feats: VideoFeatures, params: Params, reuse: bool,
                     misses: dict[str, int]):
        """Score one video; Path and the metrics run only for a set of decisions not seen before
        (Path's output depends only on the anchor frame, the refined mask and δ). ``misses``
        counts expressions, those without an anchor, and sampled frames without a proposal."""
        video = feats.video
        decisions = _decisions(feats, params)
        misses["expressions"] += len(decisions)
        misses["no_anchor"] += sum(mask is None for mask, _ in decisions.values())
        if decisions:
            misses["no_proposal"] += sum(len(feats.proposals(int(t))) == 0
                                         for t in sample_frames(len(video), params.num_frames))
        key = (video.name, params.min_region_frac,
               tuple((exp_id, trace.frame, None if mask is None else mask_hash(mask))
                     for exp_id, (mask, trace) in decisions.items()))
        if reuse and key in self._scores:
            self.counters.scores_reused += 1
            return self._scores[key]
        preds = _paths(feats, decisions, params)
        self.counters.scores_computed += 1
        score = self._scores[key] = self.evaluator.score_video(video, preds)
        return score

    def close(self) -> None:
        self.backend.close()


def _decisions(feats: VideoFeatures, params: Params) -> dict[str, tuple]:
    """exp_id → (refined anchor mask or None, its trace): Locate, Core and Refine per expression."""
    return {exp_id: seed(feats, expr.text, params) for exp_id, expr in feats.video.expressions.items()}


def _paths(feats: VideoFeatures, decisions: Mapping[str, tuple], params: Params) -> dict[str, np.ndarray]:
    """exp_id → T×H×W bool: Path from each decision (all-empty masks where nothing was found)."""
    video = feats.video
    return {exp_id: (np.zeros((len(video), *video.size), dtype=bool) if mask is None
                     else path(feats, trace.frame, mask, params))
            for exp_id, (mask, trace) in decisions.items()}


def evaluate(dataset: Dataset, backend: Backend, params: Params, protocol: str, *,
             cache_dir: str | Path | None = "cache") -> EvalResult:
    """One-shot evaluation of ``params`` (a sweep keeps an EvalContext open instead)."""
    store = CacheStore(cache_dir) if cache_dir is not None else None
    return EvalContext(dataset, backend, store, protocol).evaluate(params)
