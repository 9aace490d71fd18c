"""Ref-DAVIS17 label maps from per-expression masks, by ReferFormer's rule (one place, used by
the prediction writer and by the evaluator).

ReferFormer (``tools/data/convert_davis_to_ytvos.py``) sorts a video's objects by ``obj_id``
**as text** (the ids are strings: "1" < "10" < "2"), and its ``inference_davis.py`` builds each
annotation set's label map per frame as ``argmax([0.1 background, mask of object 0, mask of
object 1, ...])`` in that order. On binary masks the argmax returns the first maximum, so:

- the label of an object is its 1-based rank in the text order of the set's obj_ids (not the
  obj_id itself: a set of objects 1, 2, 10 is labelled 1 → 1, 10 → 2, 2 → 3);
- where masks overlap, the object that comes first in text order keeps the pixel (object "10"
  wins over object "2").

:func:`label_maps` applies this rule to any (obj_id, mask) pairs; :func:`davis_label_maps` builds
the four annotation sets of a video (expression i belongs to set ``i % 4``,
:attr:`~lcrp_core.data.model.Expression.anno_set`). The DAVIS unsupervised protocol matches
predicted labels to ground-truth objects (Hungarian), so the label values do not change the
scores; they are ReferFormer's so that a written folder is byte-for-byte what ReferFormer
writes for the same masks.

Shapes: a mask stack is T×H×W bool; a label map stack T×H×W uint8 (0 background).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from lcrp_core.data.model import Video
from lcrp_core.errors import DataError

#: Labels are stored as uint8: at most this many objects per label map.
MAX_LABEL = 255


def referformer_order(obj_ids: Sequence[int | str]) -> list[int | str]:
    """``obj_ids`` in ReferFormer's order: sorted as text (``[2, 10, 1]`` → ``[1, 10, 2]``).
    Label k of :func:`label_maps` is the k-th of this list (1-based)."""
    return sorted(obj_ids, key=str)


def label_maps(masks: Sequence[tuple[int | str, np.ndarray]],
               shape: tuple[int, int, int]) -> np.ndarray:
    """T×H×W uint8 label maps of (obj_id, T×H×W mask) pairs by ReferFormer's rule.

    Objects are ranked by obj_id as text (:func:`referformer_order`; a stable sort, so pairs
    with the same obj_id keep their order); the pair of rank k gets label k (1-based); on
    overlapping pixels the lower rank wins (the first maximum of ReferFormer's argmax).
    Non-zero mask values are foreground.
    """
    ids = [str(obj_id) for obj_id, _ in masks]
    if len(ids) > MAX_LABEL:
        raise ValueError(f"a uint8 label map holds at most {MAX_LABEL} objects, got {len(ids)}")
    ranked = sorted(range(len(masks)), key=lambda i: ids[i])
    labels = np.zeros(shape, dtype=np.uint8)
    for rank in reversed(range(len(ranked))):      # the first in text order is written last
        mask = np.asarray(masks[ranked[rank]][1])
        if mask.shape != tuple(shape):
            raise ValueError(f"mask of object {ids[ranked[rank]]} has shape {mask.shape}, "
                             f"expected {tuple(shape)}")
        np.copyto(labels, rank + 1, where=mask.astype(bool, copy=False))
    return labels


def expression_of_object(video: Video, anno_set: int, obj_id: int) -> str | None:
    """The exp_id of annotation set ``anno_set`` that refers to object ``obj_id`` (each object has
    exactly one expression per set, davis.py), or None. A Ref-DAVIS17 item ``anno<a>/obj<o>``
    (metrics/evaluator.py) names the set and the ground-truth object: this is its sentence."""
    for exp_id, expr in video.expressions.items():
        if expr.anno_set == anno_set and expr.obj_ids == (obj_id,):
            return exp_id
    return None


def davis_label_maps(video: Video, masks: Mapping[str, np.ndarray]) -> dict[int, np.ndarray]:
    """Annotation set → T×H×W uint8 label map of the set's expressions (:func:`label_maps`).

    ``masks`` maps every exp_id of the video to a T×H×W mask (T = the video's length, one
    H×W for all); each expression must refer to exactly one object. A missing expression, a
    wrong shape or an expression with several objects is a DataError naming it.
    """
    missing = [e for e in video.expressions if e not in masks]
    if missing:
        raise DataError(f"no predicted masks for expression(s) {missing}", key=video.name)
    size: tuple[int, ...] | None = None
    sets: dict[int, list[tuple[int, np.ndarray]]] = {}
    for exp_id, expr in video.expressions.items():
        where = f"{video.name}/{exp_id}"
        shape = np.shape(masks[exp_id])
        if len(shape) != 3 or shape[0] != len(video) or (size is not None and shape[1:] != size):
            want = f"{len(video)}×" + ("×".join(map(str, size)) if size else "H×W")
            raise DataError(f"expected masks of shape {want} (T×H×W), got {shape}", key=where)
        size = shape[1:]
        if len(expr.obj_ids) != 1:
            raise DataError(f"a Ref-DAVIS17 label map needs one object per expression, got "
                            f"{list(expr.obj_ids)}", key=where)
        sets.setdefault(expr.anno_set, []).append((expr.obj_ids[0], masks[exp_id]))
    if size is None:
        return {}
    return {a: label_maps(sets[a], (len(video), size[0], size[1])) for a in sorted(sets)}
