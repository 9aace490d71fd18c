"""Scoring a dataset's predictions with one protocol, built for sweeps.

An :class:`Evaluator` prepares the ground-truth side of J and F (areas, boundary maps and their
dilations) the first time it sees a video and keeps it, so later trials only pay for their
predictions. Videos are scored one at a time (:meth:`Evaluator.score_video`) and combined in any
order (:meth:`Evaluator.summarize`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

import numpy as np

from lcrp_core import schema
from lcrp_core.data.labels import davis_label_maps
from lcrp_core.data.model import GroundTruth, VideoGroundTruth
from lcrp_core.errors import ConfigError, DataError
from lcrp_core.metrics.measures import PreparedGT, PreparedPred, score_pair
from lcrp_core.metrics.protocols import DEFAULT_VOID, PROTOCOLS, VOID_MODES, match_unsupervised
from lcrp_core.metrics.stats import Stats, db_statistics

#: Default bound on the memory the prepared ground truth may hold (least recently used
#: videos are dropped beyond it and prepared again when next scored).
DEFAULT_CACHE_BYTES = 4 << 30


@dataclass(frozen=True)
class ItemScore:
    """One scored item: an expression, a (set, object) pair or an object; stats on 0–1.

    ``group`` is the Ref-DAVIS17 annotation set for ``davis-unsupervised`` (dataset means are
    taken per set, then averaged over sets) and 0 otherwise.
    """

    key: str
    group: int
    J: Stats
    F: Stats


@dataclass(frozen=True)
class VideoScore:
    """The scored items of one video, in the protocol's order."""

    protocol: str
    video: str
    items: tuple[ItemScore, ...]


@dataclass(frozen=True)
class Summary:
    """Dataset scores on the 0–100 scale, full precision.

    ``per_video``: {video: {"J", "F", "JF"}}; ``per_item``: {key: {"J", "F", "JF"}} with keys
    ``<video>/<exp_id>`` (per-expression), ``<video>/anno<a>/obj<o>`` (davis-unsupervised) or
    ``<video>/obj<o>`` (davis-semi).
    """

    protocol: str
    J: float
    F: float
    JF: float
    J_recall: float
    J_decay: float
    F_recall: float
    F_decay: float
    per_video: dict[str, dict[str, float]]
    per_item: dict[str, dict[str, float]]

    def to_dict(self) -> dict:
        return asdict(self)


_STAT_NAMES = (*schema.J_STATS, *schema.F_STATS)


def _aggregate(items: Iterable[ItemScore]) -> dict[str, float]:
    """Means (0–100) of the items' stats: over the items of each group, then over groups."""
    groups: dict[int, list[list[float]]] = {}
    for item in items:
        groups.setdefault(item.group, []).append([*item.J, *item.F])
    # one 1-D mean per statistic, as the reference's np.mean over its per-object lists
    per_group = [[np.mean(np.ascontiguousarray(col)) for col in np.asarray(rows).T]
                 for _, rows in sorted(groups.items())]
    means = [np.mean(np.ascontiguousarray(col)) for col in np.asarray(per_group).T]
    return {name: 100 * float(v) for name, v in zip(_STAT_NAMES, means, strict=True)}


def _jf(j: float, f: float) -> dict[str, float]:
    return {schema.J: j, schema.F: f, schema.JF: (j + f) / 2}


@dataclass(frozen=True, eq=False)
class _ObjectsGT:
    """Prepared per-object ground truth of a label-map video (DAVIS protocols); ``shape`` is the
    video's T×H×W (davis-semi prepares the objects without the first and last frames)."""

    shape: tuple[int, int, int]
    obj_ids: tuple[int, ...]
    objects: tuple[PreparedGT, ...]
    void: np.ndarray | None

    @property
    def nbytes(self) -> int:
        return sum(o.nbytes for o in self.objects) + (0 if self.void is None else self.void.nbytes)


@dataclass(frozen=True, eq=False)
class _ExpressionsGT:
    """Prepared per-expression ground truth (video shape T×H×W); expressions referring to the
    same objects share it."""

    shape: tuple[int, int, int]
    by_exp: dict[str, PreparedGT]

    @property
    def nbytes(self) -> int:
        return sum(g.nbytes for g in {id(g): g for g in self.by_exp.values()}.values())


class Evaluator:
    """Scores predictions of the videos of ``truth`` with ``protocol`` (one of :data:`PROTOCOLS`).

    ``truth`` is the ground-truth side (:class:`~lcrp_core.data.model.GroundTruth`): a
    :class:`~lcrp_core.data.model.Dataset`, or a bare annotation folder
    (:func:`lcrp_core.data.davis.read_annotation_folder`).

    ``void`` (DAVIS protocols): how ground-truth void pixels (label 255) are scored:
    ``"exclude"`` leaves them out of J and F on both sides, ``"background"`` counts them as
    background. ``None`` (the default) is davis2017-evaluation's choice for the task
    (:data:`~lcrp_core.metrics.protocols.DEFAULT_VOID`): excluded in davis-unsupervised,
    background in davis-semi.
    ``cache_bytes``: memory bound on the prepared ground truth kept across calls.
    """

    def __init__(self, truth: GroundTruth, protocol: str, *, void: str | None = None,
                 cache_bytes: int = DEFAULT_CACHE_BYTES):
        if protocol not in PROTOCOLS:
            raise ConfigError(f"expected one of {list(PROTOCOLS)}, got {protocol!r}", key="protocol")
        if void is not None and protocol == "per-expression":
            raise ConfigError("the per-expression protocol has no void pixels", key="void")
        if void is not None and void not in VOID_MODES:
            raise ConfigError(f"expected one of {list(VOID_MODES)}, got {void!r}", key="void")
        self.truth = truth
        self.protocol = protocol
        self.void = DEFAULT_VOID.get(protocol) if void is None else void
        self.cache_bytes = cache_bytes
        self._prepared: OrderedDict[str, _ObjectsGT | _ExpressionsGT] = OrderedDict()

    # --- ground truth -------------------------------------------------------------------

    def _video(self, video: VideoGroundTruth | str) -> VideoGroundTruth:
        name = video if isinstance(video, str) else video.name
        if name not in self.truth.videos:
            raise DataError(f"video {name!r} is not in the dataset ({len(self.truth)} videos)",
                            path=self.truth.root)
        return self.truth.videos[name]

    def _ground_truth(self, video: VideoGroundTruth) -> _ObjectsGT | _ExpressionsGT:
        """The video's prepared ground truth, built on first use."""
        if video.name in self._prepared:
            self._prepared.move_to_end(video.name)
            return self._prepared[video.name]
        gt = self._prepare(video)
        self._prepared[video.name] = gt
        total = sum(g.nbytes for g in self._prepared.values())
        while total > self.cache_bytes and len(self._prepared) > 1:
            _, dropped = self._prepared.popitem(last=False)
            total -= dropped.nbytes
        return gt

    def _prepare(self, video: VideoGroundTruth) -> _ObjectsGT | _ExpressionsGT:
        if self.protocol == "per-expression":
            shared: dict[tuple, PreparedGT] = {}
            by_exp = {}
            shape = (len(video), 0, 0)
            for exp_id, expr in video.expressions.items():
                key = (tuple(sorted(expr.obj_ids)), tuple(sorted(expr.anno_ids)))
                if key not in shared:
                    shared[key] = PreparedGT.build(video.gt_mask(exp_id))
                by_exp[exp_id] = shared[key]
                shape = shared[key].shape
            return _ExpressionsGT(shape, by_exp)
        objs = video.gt_objects()
        labels = objs.labels
        shape = labels.shape
        if self.protocol == "davis-semi":
            if len(labels) < 3:
                raise DataError(f"the semi-supervised protocol leaves out the first and last "
                                f"frames and needs at least 3, got {len(labels)}", key=video.name)
            labels = labels[1:-1]
        void = None
        if self.void == "exclude" and labels.size and int(labels.max()) == objs.VOID:
            void = labels == objs.VOID   # built only when there is void (uint8: 255 is the max)
        # an object and the void are disjoint: cutting void changes only the prediction side
        return _ObjectsGT(shape, tuple(objs.obj_ids),
                          tuple(PreparedGT.from_labels(labels, o) for o in objs.obj_ids), void)

    def object_ids(self, video: VideoGroundTruth | str) -> tuple[int, ...]:
        """The ground-truth object ids of a video (DAVIS protocols), as the protocol counts them."""
        gt = self._ground_truth(self._video(video))
        if not isinstance(gt, _ObjectsGT):
            raise ConfigError(f"the {self.protocol!r} protocol scores expressions, not objects",
                              key="protocol")
        return gt.obj_ids

    # --- scoring ------------------------------------------------------------------------

    def _check_preds(self, video: VideoGroundTruth, preds: Mapping[str, np.ndarray], expected: list[str],
                     what: str, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
        missing = [k for k in expected if k not in preds]
        extra = [k for k in preds if k not in expected]
        if missing or extra:
            parts = ([f"missing {what} {missing}"] if missing else []) + (
                [f"unknown {what} {extra}"] if extra else [])
            raise DataError(f"predictions do not match the video: {'; '.join(parts)}", key=video.name)
        out = {}
        for k in expected:
            m = np.asarray(preds[k])
            if m.shape != shape:
                raise DataError(f"prediction shape {m.shape}, expected {shape} (T×H×W)",
                                key=f"{video.name}/{k}")
            out[k] = m if m.dtype == bool else m != 0
        return out

    def score_video(self, video: VideoGroundTruth | str, preds: Mapping[str, np.ndarray]) -> VideoScore:
        """Score one video's predictions: ``{exp_id: T×H×W bool}`` for per-expression and
        davis-unsupervised, ``{str(obj_id): T×H×W bool}`` for davis-semi."""
        video = self._video(video)
        gt = self._ground_truth(video)
        if isinstance(gt, _ExpressionsGT):
            masks = self._check_preds(video, preds, list(video.expressions), "expression(s)", gt.shape)
            items = []
            for exp_id, mask in masks.items():
                j, f = score_pair(gt.by_exp[exp_id], PreparedPred.build(mask))
                items.append(ItemScore(f"{video.name}/{exp_id}", 0, db_statistics(j), db_statistics(f)))
            return VideoScore(self.protocol, video.name, tuple(items))
        if self.protocol == "davis-semi":
            keys = [str(o) for o in gt.obj_ids]
            masks = self._check_preds(video, preds, keys, "object id(s)", gt.shape)
            return self._score_objects(
                video, gt, lambda o: PreparedPred.build(masks[str(o)][1:-1], gt.void))
        masks = self._check_preds(video, preds, list(video.expressions), "expression(s)", gt.shape)
        return self._score_sets(video, gt, davis_label_maps(video, masks))

    def score_object_labels(self, video: VideoGroundTruth | str, labels: np.ndarray) -> VideoScore:
        """davis-semi scores of predicted uint8 label maps (label k = object k, 0 background),
        e.g. read from a results folder: T×H×W for every frame (frames 0 and T−1 are not
        looked at), or (T−2)×H×W holding only the scored frames 1..T−2. The same scores as
        :meth:`score_video` with ``{str(k): labels == k}``."""
        if self.protocol != "davis-semi":
            raise ConfigError(f"object label maps are scored with davis-semi, not {self.protocol!r}",
                              key="protocol")
        video = self._video(video)
        gt = self._ground_truth(video)
        assert isinstance(gt, _ObjectsGT)  # the DAVIS protocols prepare per-object GT
        t_len, h, w = gt.shape
        if np.shape(labels) not in (gt.shape, (t_len - 2, h, w)):
            raise DataError(f"label maps of shape {np.shape(labels)}, expected {gt.shape} (T×H×W) "
                            f"or {(t_len - 2, h, w)} (the scored frames)", key=video.name)
        scored = np.asarray(labels)
        scored = scored[1:-1] if len(scored) == t_len else scored
        return self._score_objects(video, gt, lambda o: PreparedPred.from_labels(scored, o, gt.void))

    def _score_objects(self, video: VideoGroundTruth, gt: _ObjectsGT, prepare) -> VideoScore:
        items = []
        for obj_id, prepared in zip(gt.obj_ids, gt.objects, strict=True):
            j, f = score_pair(prepared, prepare(obj_id))
            items.append(ItemScore(f"{video.name}/obj{obj_id}", 0, db_statistics(j), db_statistics(f)))
        return VideoScore(self.protocol, video.name, tuple(items))

    def score_label_maps(self, video: VideoGroundTruth | str, labels: Mapping[int, np.ndarray]) -> VideoScore:
        """davis-unsupervised scores of predicted label maps ``{anno_set: T×H×W uint8}`` (label
        k = predicted object k, 0 background), e.g. read from ReferFormer's ``anno_<a>`` folders."""
        if self.protocol != "davis-unsupervised":
            raise ConfigError(f"label maps are scored with davis-unsupervised, not {self.protocol!r}",
                              key="protocol")
        video = self._video(video)
        gt = self._ground_truth(video)
        assert isinstance(gt, _ObjectsGT)  # the DAVIS protocols prepare per-object GT
        for a, lab in labels.items():
            if np.shape(lab) != gt.shape:
                raise DataError(f"label maps of shape {np.shape(lab)}, expected {gt.shape} (T×H×W)",
                                key=f"{video.name}/anno{a}")
        return self._score_sets(video, gt, labels)

    def _score_sets(self, video: VideoGroundTruth, gt: _ObjectsGT, labels: Mapping[int, np.ndarray]) -> VideoScore:
        items = []
        for a in sorted(labels):
            for index, j, f in match_unsupervised(gt.objects, np.asarray(labels[a]), void=gt.void,
                                                  name=video.name):
                items.append(ItemScore(f"{video.name}/anno{a}/obj{gt.obj_ids[index]}", a,
                                       db_statistics(j), db_statistics(f)))
        return VideoScore(self.protocol, video.name, tuple(items))

    # --- combining ----------------------------------------------------------------------

    def summarize(self, scores: Iterable[VideoScore]) -> Summary:
        """Dataset scores of any set of scored videos, given in any order (the ground truth's video
        order is used, so the result does not depend on it)."""
        by_video: dict[str, VideoScore] = {}
        for s in scores:
            if s.protocol != self.protocol:
                raise ConfigError(f"a {s.protocol!r} score cannot be combined with {self.protocol!r}",
                                  key=s.video)
            if s.video in by_video:
                raise DataError("video scored twice in one summary", key=s.video)
            self._video(s.video)
            by_video[s.video] = s
        ordered = [by_video[name] for name in self.truth.videos if name in by_video]
        items = [item for s in ordered for item in s.items]
        if not items:
            raise DataError("nothing to summarize: no scored expressions or objects",
                            path=self.truth.root)
        total = _aggregate(items)
        per_video = {}
        for s in ordered:
            if s.items:
                v = _aggregate(s.items)
                per_video[s.video] = _jf(v[schema.J], v[schema.F])
        per_item = {it.key: _jf(100 * it.J.mean, 100 * it.F.mean) for it in items}
        jf = (total[schema.J] + total[schema.F]) / 2
        return Summary(self.protocol, **total, JF=jf, per_video=per_video, per_item=per_item)

