"""The one small data model every reader produces and every stage consumes.

A :class:`Dataset` holds :class:`Video` objects; a video has frame names, lazily loaded RGB
frames and its referring :class:`Expression` objects. Ground truth, where the benchmark has
it, is loaded on demand by a loader the reader supplies:

- ``gt_mask(exp_id)``: T×H×W bool, the union of the expression's referred objects;
- ``gt_objects()``: the per-object masks of a label-map benchmark (Ref-DAVIS17 / DAVIS),
  O×T×H×W bool with their object ids, plus the T×H×W void mask (palette value 255).

Scoring needs only the ground-truth side: :class:`GroundTruth` (a root and its videos) of
:class:`VideoGroundTruth` (frame names, expressions, ``gt_mask``, ``gt_objects``). A
:class:`Dataset` and its videos are one; so is a bare DAVIS annotation folder read by
:func:`lcrp_core.data.davis.read_annotation_folder`, which has no frames.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from lcrp_core.errors import DataError

#: Dataset kinds a reader exists for.
DATASET_KINDS = ("ref-davis17", "mevis", "ref-youtube-vos")


@dataclass(frozen=True)
class Expression:
    """One referring expression of a video.

    ``obj_ids`` are the referred objects (one or several); ``anno_ids`` are MeViS annotation
    ids (empty elsewhere). ``anno_set`` is the Ref-DAVIS17 annotation set 0..3
    (2 annotators × 2 expression types); 0 on other benchmarks.
    """

    exp_id: str
    text: str
    obj_ids: tuple[int, ...]
    anno_ids: tuple[str, ...] = ()
    anno_set: int = 0


@dataclass(frozen=True, eq=False)
class GroundTruthObjects:
    """Per-object ground truth of one video as its label maps: ``labels`` T×H×W uint8 (0
    background, 255 void) and the object ids (O,); object ``obj_ids[i]`` is
    ``labels == obj_ids[i]``. ``masks`` (O×T×H×W bool) and ``void`` (T×H×W bool) are computed
    on request; the evaluator prepares each object from ``labels`` frame by frame instead."""

    obj_ids: tuple[int, ...]
    labels: np.ndarray

    #: The void label of DAVIS annotations.
    VOID = 255

    @property
    def masks(self) -> np.ndarray:
        """O×T×H×W bool: one mask stack per object id."""
        ids = np.asarray(self.obj_ids, dtype=self.labels.dtype)
        return self.labels[None] == ids[:, None, None, None]

    @property
    def void(self) -> np.ndarray:
        """T×H×W bool: the void pixels."""
        return self.labels == self.VOID


class VideoGroundTruth(Protocol):
    """The ground-truth side of one video, all that scoring reads (a :class:`Video` is one)."""

    name: str
    frame_names: Sequence[str]
    expressions: Mapping[str, Expression]

    def __len__(self) -> int: ...

    def gt_mask(self, exp_id: str) -> np.ndarray: ...

    def gt_objects(self) -> GroundTruthObjects: ...


class GroundTruth(Protocol):
    """Ground truth of a set of videos, in their order (a :class:`Dataset` is one); ``root``
    names it in messages."""

    root: Path
    videos: Mapping[str, VideoGroundTruth]

    def __len__(self) -> int: ...


@dataclass(eq=False)
class Video:
    """A video: frame names (no extension), lazily read frames, expressions, optional ground truth."""

    name: str
    frame_names: Sequence[str]
    expressions: Mapping[str, Expression]
    frame_loader: Callable[[int], np.ndarray] = field(repr=False)
    mask_loader: Callable[[Expression], np.ndarray] | None = field(default=None, repr=False)
    objects_loader: Callable[[], GroundTruthObjects] | None = field(default=None, repr=False)
    _size: tuple[int, int] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.frame_names)

    def frame(self, t: int) -> np.ndarray:
        """Frame ``t`` as H×W×3 uint8 RGB (read from disk on every call)."""
        if not 0 <= t < len(self.frame_names):
            raise IndexError(f"{self.name}: frame {t} out of range 0..{len(self.frame_names) - 1}")
        img = self.frame_loader(t)
        self._size = img.shape[:2]
        return img

    def frames(self) -> np.ndarray:
        """All frames, T×H×W×3 uint8."""
        return np.stack([self.frame(t) for t in range(len(self))])

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the frames."""
        if self._size is None:
            self.frame(0)
        assert self._size is not None
        return self._size

    @property
    def has_gt(self) -> bool:
        return self.mask_loader is not None

    def gt_mask(self, exp_id: str) -> np.ndarray:
        """T×H×W bool: the union of the referred objects' ground-truth masks."""
        if self.mask_loader is None:
            raise DataError("this benchmark has no public ground truth", key=self.name)
        return self.mask_loader(self.expressions[exp_id])

    def gt_objects(self) -> GroundTruthObjects:
        """Per-object ground truth (label-map benchmarks only)."""
        if self.objects_loader is None:
            raise DataError("no per-object label maps for this video", key=self.name)
        return self.objects_loader()


@dataclass(eq=False)
class Dataset:
    """A benchmark split: kind (one of DATASET_KINDS), root folder, split name, ordered videos."""

    kind: str
    root: Path
    split: str
    videos: dict[str, Video]

    def __iter__(self) -> Iterator[Video]:
        return iter(self.videos.values())

    def __len__(self) -> int:
        return len(self.videos)

    @property
    def num_expressions(self) -> int:
        return sum(len(v.expressions) for v in self)

    @property
    def key(self) -> str:
        """Stable identity for cache keys: kind, split and a hash of the resolved root."""
        digest = hashlib.sha256(str(Path(self.root).resolve()).encode()).hexdigest()[:10]
        return f"{self.kind}-{self.split}-{Path(self.root).resolve().name}-{digest}"
