"""Ref-DAVIS17 reader: DAVIS 2017 frames and unsupervised label maps with referring expressions.

Layout (kind ``"ref-davis17"``, default split ``valid``)::

    <root>/meta_expressions/<split>/meta_expressions.json
    <root>/<split>/JPEGImages/<video>/<frame>.jpg           (ReferFormer's converted layout)
    <root>/<split>/Annotations/<video>/<frame>.png

or, with the DAVIS 2017 folders as they unzip::

    <davis>/JPEGImages/480p/<video>/<frame>.jpg
    <davis>/Annotations_unsupervised/480p/<video>/<frame>.png

where ``<davis>`` is ``<root>`` itself or ``<root>/DAVIS``. ReferFormer's
``tools/data/convert_davis_to_ytvos.py`` writes ``meta_expressions/{train,valid}/
meta_expressions.json`` and moves each split's videos from ``DAVIS/JPEGImages/480p`` and
``DAVIS/Annotations_unsupervised/480p`` to ``<split>/JPEGImages`` and ``<split>/Annotations``
(its ``inference_davis.py`` reads exactly those), so ``--root`` can point at a ReferFormer
``data/ref-davis`` folder before or after that conversion. The converted layout is used when
``<root>/<split>/JPEGImages`` exists.

Expressions: the converted file lists, per object (sorted by obj_id), four expressions in a
fixed order: annotator 1 first-frame, annotator 1 full-video, annotator 2 first-frame,
annotator 2 full-video; ``obj_id`` is a string ("1"). ReferFormer forms annotation set
``a`` from expressions ``4·o + a`` (o = 0..num_obj−1, num_obj = len(exps) // 4), so the
i-th expression has ``anno_set = i % 4``. Object ids must differ within a set (each set is
written as one label map).

Ground truth: ``gt_mask(exp) = (label == obj_id)`` per frame. ``gt_objects()`` follows
davis2017-evaluation (``DAVIS.get_all_masks(seq, True)``): the objects are ids
``1..max(first-frame label)`` with void (255) left out of the maximum, held as the video's
T×H×W label maps (:class:`~lcrp_core.data.model.GroundTruthObjects`); void is ``label == 255``.
A listed frame without its annotation PNG is an error. Label PNGs are read by
:func:`~lcrp_core.data.io.read_label_png` (a 1-bit PNG is label 1, as the DAVIS evaluators
read it).

A bare annotation folder ``<dir>/<video>/<frame>.png`` (e.g. DAVIS's ``Annotations/480p``) is read
by :func:`read_annotation_folder` as ground truth alone (no frames, no expressions), for
scoring label-map predictions with the DAVIS protocols.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from pydantic import TypeAdapter

from lcrp_core.config import DataModel
from lcrp_core.data.io import image_size, read_label_png, require_dir, require_files
from lcrp_core.data.meta import (
    META_NAME,
    MetaVideo,
    StrObjId,
    make_video,
    read_expressions,
    read_meta_expressions,
)
from lcrp_core.data.model import Dataset, Expression, GroundTruthObjects
from lcrp_core.errors import DataError

KIND = "ref-davis17"
#: Annotation sets: 2 annotators × 2 expression types (first-frame, full-video).
NUM_ANNO_SETS = 4
VOID = 255


def davis_folder(root: Path) -> Path:
    """The folder holding JPEGImages/480p: ``root`` or ``root/DAVIS`` (ReferFormer's layout)."""
    for davis in (root, root / "DAVIS"):
        if (davis / "JPEGImages" / "480p").is_dir():
            return davis
    raise DataError("frame folder not found (expected <split>/JPEGImages as ReferFormer converts "
                    "it, or DAVIS 2017's JPEGImages/480p under the root or under <root>/DAVIS)",
                    path=root / "JPEGImages" / "480p")


def frame_and_annotation_folders(root: Path, split: str) -> tuple[Path, Path]:
    """(frames, annotations) folders of ``split``: ReferFormer's converted
    ``<split>/{JPEGImages,Annotations}`` when present, else DAVIS's ``480p`` folders."""
    converted = root / split / "JPEGImages"
    if converted.is_dir():
        return converted, root / split / "Annotations"
    davis = davis_folder(root)
    return davis / "JPEGImages" / "480p", davis / "Annotations_unsupervised" / "480p"


class DavisExpression(DataModel):
    """A Ref-DAVIS17 expression's own key (``exp`` is checked by lcrp_core.data.meta)."""

    obj_id: StrObjId


_EXPRESSIONS = TypeAdapter(dict[str, DavisExpression])


def _expressions(meta: MetaVideo, path: Path) -> dict[str, Expression]:
    n = len(meta.expressions)
    if n % NUM_ANNO_SETS:
        raise DataError(f"expected {NUM_ANNO_SETS} expressions per object (2 annotators × 2 "
                        f"expression types), got {n}", path=path, key=f"{meta.key}.expressions")
    out: dict[str, Expression] = {}
    seen: dict[tuple[int, int], str] = {}
    checked = read_expressions(_EXPRESSIONS, meta, path)
    for i, (exp_id, e) in enumerate(meta.expressions.items()):
        key = f"{meta.key}.expressions.{exp_id}.obj_id"
        obj_id = checked[exp_id].obj_id
        if not 1 <= obj_id < VOID:
            raise DataError(f"object ids are 1..{VOID - 1}, got {obj_id}", path=path, key=key)
        anno_set = i % NUM_ANNO_SETS
        if (anno_set, obj_id) in seen:
            raise DataError(f"object {obj_id} appears twice in annotation set {anno_set} "
                            f"(also expression {seen[anno_set, obj_id]!r})", path=path, key=key)
        seen[anno_set, obj_id] = exp_id
        out[exp_id] = Expression(exp_id, e["exp"], (obj_id,), anno_set=anno_set)
    return out


class _LabelMaps:
    """Reads a video's T×H×W uint8 label maps; keeps the last video's (read-only) for the
    repeated gt_mask/gt_objects calls of one video, so memory stays at one video."""

    def __init__(self) -> None:
        self._name: str | None = None
        self._labels: np.ndarray | None = None

    def get(self, name: str, paths: Sequence[Path], frame0: Path) -> np.ndarray:
        if self._name != name or self._labels is None:
            size = image_size(frame0)
            labels = np.empty((len(paths), *size), dtype=np.uint8)
            for t, p in enumerate(paths):
                label = read_label_png(p)
                if label.shape != size:
                    raise DataError(f"annotation is {label.shape[0]}×{label.shape[1]}, its frame "
                                    f"{frame0.name} is {size[0]}×{size[1]}", path=p)
                labels[t] = label
            labels.setflags(write=False)
            self._name, self._labels = name, labels
        return self._labels


def objects_from_labels(labels: np.ndarray) -> GroundTruthObjects:
    """davis2017-evaluation's objects of T×H×W label maps: ids 1..max(first frame, void
    excluded)."""
    first = labels[0]
    num = int(np.where(first == VOID, 0, first).max(initial=0))
    return GroundTruthObjects(tuple(range(1, num + 1)), labels)


def _gt_mask(labels: Callable[[], np.ndarray], expr: Expression) -> np.ndarray:
    return np.isin(labels(), expr.obj_ids)


def _gt_objects(labels: Callable[[], np.ndarray]) -> GroundTruthObjects:
    return objects_from_labels(labels())


def read_ref_davis17(root: str | Path, split: str = "valid", *,
                     videos: Sequence[str] | None = None) -> Dataset:
    """Ref-DAVIS17 ``split`` under ``root``. Frames and label maps load lazily; the existence
    of every listed frame's JPEG and annotation PNG is checked now."""
    root = require_dir(root, "dataset root")
    meta_path = require_dir(root / "meta_expressions" / split, "split", list_siblings=True) / META_NAME
    meta = read_meta_expressions(meta_path, videos=videos)
    frame_root, anno_root = frame_and_annotation_folders(root, split)
    anno_root = require_dir(anno_root, "annotation")
    cache = _LabelMaps()
    out = {}
    for m in meta.values():
        exps = _expressions(m, meta_path)
        frames = require_files(frame_root / m.name, m.frames, ".jpg", what="frame")
        annos = require_files(anno_root / m.name, m.frames, ".png", what="annotation")

        labels = partial(cache.get, m.name, annos, frames[0])
        mask, objects = partial(_gt_mask, labels), partial(_gt_objects, labels)
        out[m.name] = make_video(m, frames, exps, mask_loader=mask, objects_loader=objects)
    return Dataset(KIND, root, split, out)


def read_label_stack(paths: Sequence[Path]) -> np.ndarray:
    """T×H×W uint8 label maps from PNG paths, in order; a size other than the first's is a
    DataError naming the file."""
    first = read_label_png(paths[0])
    out = np.empty((len(paths), *first.shape), dtype=np.uint8)
    out[0] = first
    for t, path in enumerate(paths[1:], start=1):
        read_label_png(path, out=out[t])
    return out


@dataclass(eq=False)
class AnnotatedVideo:
    """One video of a bare annotation folder: its frame names and label PNGs, no frames and no
    expressions (a :class:`~lcrp_core.data.model.VideoGroundTruth`)."""

    name: str
    paths: Sequence[Path] = field(repr=False)
    expressions: Mapping[str, Expression] = field(default_factory=dict)

    @property
    def frame_names(self) -> list[str]:
        return [p.stem for p in self.paths]

    def __len__(self) -> int:
        return len(self.paths)

    def gt_mask(self, exp_id: str) -> np.ndarray:
        raise DataError("an annotation folder holds no expressions", key=self.name)

    def gt_objects(self) -> GroundTruthObjects:
        """The objects as davis2017-evaluation counts them (see the module doc)."""
        return objects_from_labels(read_label_stack(self.paths))


@dataclass(eq=False)
class AnnotationFolder:
    """The videos of a bare annotation folder (a :class:`~lcrp_core.data.model.GroundTruth`)."""

    root: Path
    videos: dict[str, AnnotatedVideo]

    def __len__(self) -> int:
        return len(self.videos)


def read_annotation_folder(folder: str | Path) -> AnnotationFolder:
    """The label-map videos of a DAVIS annotation folder ``<folder>/<video>/<frame>.png``, in
    name order; a folder without PNGs is skipped, a folder with none at all is a DataError."""
    folder = require_dir(folder, "ground-truth annotation")
    videos = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        paths = sorted(sub.glob("*.png"))
        if paths:
            videos[sub.name] = AnnotatedVideo(sub.name, paths)
    if not videos:
        raise DataError("no video folders with PNG annotations (expected <video>/<frame>.png)",
                        path=folder)
    return AnnotationFolder(folder, videos)
