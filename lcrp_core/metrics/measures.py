"""Region similarity J and boundary accuracy F, exactly as davis2017-evaluation computes them.

Definitions (``davis2017/metrics.py``; MeViS and vos-benchmark share them):

- **J** = |P∩G| / |P∪G| per frame, void pixels left out of both counts; a union of 0 scores 1.
- **F**: boundary maps by :func:`seg2bmap`; tolerance radius ``r = ceil(0.008·sqrt(H²+W²))``
  (8 at 480×854); each boundary map is dilated with :func:`disk` ``(r)`` (zero padding);
  precision = predicted boundary pixels within the dilated GT boundary / predicted boundary
  pixels, recall likewise; no boundary on either side → 1; on exactly one side → 0;
  F = 2PR/(P+R), 0 when P+R = 0. With void, both masks are cut by the void mask first.

Scoring a sweep means scoring many predictions against the same ground truth, so each side is
prepared once: :class:`PreparedGT` holds the ground truth's areas, boundary maps and their
dilations, :class:`PreparedPred` a prediction's areas and boundary maps (shared by every GT
object it is compared with), both cropped per frame to the boxes where they are non-zero, and
:func:`score_pair` compares the two with per-frame counts on those crops. Only the boundary matches that the
definitions need are computed: the predicted boundary is dilated inside the GT boundary's
band, and not at all in a frame where no predicted boundary pixel lies inside that band (the
relation "within r" is symmetric, so then neither side matches).

Shapes: a mask is H×W bool, a stack T×H×W bool; per-frame scores are (T,) float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

#: davis2017-evaluation's ``bound_th``: the boundary tolerance as a fraction of the image diagonal.
BOUNDARY_FRACTION = 0.008

Box = tuple[int, int, int, int]  # (y0, y1, x0, x1), exclusive ends


def boundary_radius(height: int, width: int) -> int:
    """The F tolerance in pixels: ``ceil(0.008 · sqrt(H² + W²))`` (8 at 480×854)."""
    return int(math.ceil(BOUNDARY_FRACTION * math.sqrt(height * height + width * width)))


def disk(radius: int) -> np.ndarray:
    """(2r+1)×(2r+1) uint8 structuring element: the points with x² + y² ≤ r² (skimage's disk)."""
    offsets = np.arange(-radius, radius + 1)
    return (offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius * radius).astype(np.uint8)


def seg2bmap(mask: np.ndarray) -> np.ndarray:
    """Boundary map of a mask (H×W) or of every frame of a stack (T×H×W), same shape, bool.

    A pixel is boundary if it differs from its right, lower or lower-right neighbour; pixels of
    the last row only look right, pixels of the last column only look down, and the bottom-right
    pixel is never boundary (the image border itself is no boundary).
    """
    s = np.asarray(mask, dtype=bool)
    if s.ndim not in (2, 3):
        raise ValueError(f"seg2bmap expects H×W or T×H×W, got shape {s.shape}")
    b = np.zeros_like(s)
    np.not_equal(s[..., :, :-1], s[..., :, 1:], out=b[..., :, :-1])
    b[..., :-1, :] |= s[..., :-1, :] != s[..., 1:, :]
    b[..., :-1, :-1] |= s[..., :-1, :-1] != s[..., 1:, 1:]
    return b


def jaccard_from_counts(inter: np.ndarray, area_pred: np.ndarray, area_gt: np.ndarray) -> np.ndarray:
    """J per frame from integer counts (T,): ``inter / union``, 1 where the union is empty."""
    union = area_pred + area_gt - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        j = inter / union
    j[union == 0] = 1.0
    return j


def f_from_counts(n_pred: np.ndarray, n_gt: np.ndarray, pred_match: np.ndarray,
                  gt_match: np.ndarray) -> np.ndarray:
    """F per frame (T,) from boundary pixel counts and matched boundary pixel counts.

    ``n_pred``/``n_gt``: boundary pixels of each side; ``pred_match``: predicted boundary pixels
    within the dilated GT boundary; ``gt_match``: GT boundary pixels within the dilated
    predicted boundary. The arithmetic is the reference's, operation for operation.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(n_pred > 0, pred_match / n_pred.astype(np.float64), 1.0)
        recall = np.where(n_gt > 0, gt_match / n_gt.astype(np.float64), 1.0)
        only_gt, only_pred = (n_pred == 0) & (n_gt > 0), (n_pred > 0) & (n_gt == 0)
        precision[only_pred] = 0.0
        recall[only_gt] = 0.0
        total = precision + recall
        f = 2 * precision * recall / total
    f[total == 0] = 0.0
    return f


def _stack(mask: np.ndarray, name: str) -> np.ndarray:
    m = np.asarray(mask)
    if m.ndim != 3:
        raise ValueError(f"{name} must be T×H×W, got shape {m.shape}")
    return m if m.dtype == bool else m != 0


def _cut_void(mask: np.ndarray, void: np.ndarray | None) -> np.ndarray:
    if void is None or not void.any():
        return mask
    if void.shape != mask.shape:
        raise ValueError(f"void mask shape {void.shape} differs from the mask's {mask.shape}")
    return mask & ~void


def _frame_box(frame: np.ndarray) -> Box | None:
    """The box of an H×W bool mask's non-zero pixels (None if empty)."""
    ys = np.flatnonzero(frame.any(axis=1))
    if ys.size == 0:
        return None
    xs = np.flatnonzero(frame[ys[0]:ys[-1] + 1].any(axis=0))
    return (int(ys[0]), int(ys[-1]) + 1, int(xs[0]), int(xs[-1]) + 1)


def _frames_of_stack(mask: np.ndarray, void: np.ndarray | None, name: str):
    """(T×H×W shape, per-frame H×W bool masks) of a mask stack, void cut."""
    m = _cut_void(_stack(mask, name), void)
    return m.shape, (m[t] for t in range(m.shape[0]))


def _frames_of_labels(labels: np.ndarray, label: int, void: np.ndarray | None):
    """(T×H×W shape, per-frame H×W bool masks ``labels[t] == label``, void cut) of a T×H×W label
    map stack, one frame at a time (no T×H×W temporary)."""
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise ValueError(f"label maps must be T×H×W, got shape {labels.shape}")
    if void is not None and void.shape != labels.shape:
        raise ValueError(f"void mask shape {void.shape} differs from the label maps' {labels.shape}")

    def frames():
        for t in range(labels.shape[0]):
            m = labels[t] == label
            if void is not None:
                m &= ~void[t]
            yield m
    return labels.shape, frames()


def _masks_and_boundaries(frames):
    """Per frame of H×W bool masks: (area, mask box, mask crop, boundary box, boundary crop,
    boundary pixel count); the boxes and crops are None where the frame is empty."""
    for frame in frames:
        box = _frame_box(frame)
        if box is None:
            yield 0, None, None, None, None, 0
            continue
        crop = frame[box[0]:box[1], box[2]:box[3]].copy()
        bbox, boundary = _boundary_crop(frame, box)
        yield np.count_nonzero(crop), box, crop, bbox, boundary, np.count_nonzero(boundary)


def _grow(box: Box, margin: int, height: int, width: int) -> Box:
    return (max(box[0] - margin, 0), min(box[1] + margin, height),
            max(box[2] - margin, 0), min(box[3] + margin, width))


def _boundary_crop(frame: np.ndarray, box: Box) -> tuple[Box, np.ndarray]:
    """The boundary map of an H×W mask whose pixels lie inside ``box``, cropped to the box
    grown by one pixel: boundary pixels lie at most one pixel above/left of the mask, and the
    zero row/column below/right lets the crop's last row/column follow the full frame's rule."""
    grown = _grow(box, 1, *frame.shape)
    return grown, seg2bmap(frame[grown[0]:grown[1], grown[2]:grown[3]])


def _window(crop: np.ndarray, crop_box: Box, box: Box) -> np.ndarray | None:
    """``box`` of a frame that is zero outside ``crop_box`` (where it equals ``crop``): a view
    when the box lies inside the crop, a zero-filled copy otherwise, None if they do not meet."""
    y0, y1 = max(box[0], crop_box[0]), min(box[1], crop_box[1])
    x0, x1 = max(box[2], crop_box[2]), min(box[3], crop_box[3])
    if y0 >= y1 or x0 >= x1:
        return None
    part = crop[y0 - crop_box[0]:y1 - crop_box[0], x0 - crop_box[2]:x1 - crop_box[2]]
    if (y0, y1, x0, x1) == box:
        return part
    out = np.zeros((box[1] - box[0], box[3] - box[2]), dtype=crop.dtype)
    out[y0 - box[0]:y1 - box[0], x0 - box[2]:x1 - box[2]] = part
    return out


@dataclass(frozen=True, eq=False)
class PreparedGT:
    """The ground-truth side of J and F for one T×H×W mask, computed once, reused per trial.

    Per frame t: ``area[t]`` and ``n_boundary[t]`` (pixel counts); the mask cropped to its box
    (``mask_box[t]``, ``mask_crop[t]``); the boundary map and its disk dilation on the band box
    (the boundary's box grown by the radius: ``band_box[t]``, ``boundary_crop[t]``,
    ``band_crop[t]``). Boxes are (y0, y1, x0, x1) or None where the frame has nothing.
    """

    shape: tuple[int, int, int]
    radius: int
    area: np.ndarray
    n_boundary: np.ndarray
    mask_box: tuple[Box | None, ...]
    mask_crop: tuple[np.ndarray | None, ...]
    band_box: tuple[Box | None, ...]
    boundary_crop: tuple[np.ndarray | None, ...]
    band_crop: tuple[np.ndarray | None, ...]

    @classmethod
    def build(cls, mask: np.ndarray, void: np.ndarray | None = None) -> PreparedGT:
        """Prepare a T×H×W ground-truth mask; ``void`` (T×H×W) pixels are cut from it."""
        return cls._build(*_frames_of_stack(mask, void, "ground truth"))

    @classmethod
    def from_labels(cls, labels: np.ndarray, label: int, void: np.ndarray | None = None) -> PreparedGT:
        """Prepare the mask ``labels == label`` of T×H×W label maps (void pixels cut), frame by
        frame: the same result as ``build(labels == label, void)`` without the T×H×W mask."""
        return cls._build(*_frames_of_labels(labels, label, void))

    @classmethod
    def _build(cls, shape: tuple[int, ...], frames) -> PreparedGT:
        t_len, h, w = shape
        radius = boundary_radius(h, w)
        kernel = disk(radius)
        area = np.zeros(t_len, dtype=np.int64)
        n_boundary = np.zeros(t_len, dtype=np.int64)
        mask_box: list[Box | None] = []
        mask_crop: list[np.ndarray | None] = []
        band_box: list[Box | None] = []
        boundary_crop: list[np.ndarray | None] = []
        band_crop: list[np.ndarray | None] = []
        for t, (a, box, crop, bbox, boundary, nb) in enumerate(_masks_and_boundaries(frames)):
            area[t], n_boundary[t] = a, nb
            mask_box.append(box)
            mask_crop.append(crop)
            if not nb:
                band_box.append(None)
                boundary_crop.append(None)
                band_crop.append(None)
                continue
            band = _grow(bbox, radius, h, w)
            placed = np.ascontiguousarray(_window(boundary, bbox, band))
            band_box.append(band)
            boundary_crop.append(placed)
            band_crop.append(cv2.dilate(placed.view(np.uint8), kernel).view(bool))
        return cls((t_len, h, w), radius, area, n_boundary, tuple(mask_box), tuple(mask_crop),
                   tuple(band_box), tuple(boundary_crop), tuple(band_crop))

    @property
    def nbytes(self) -> int:
        """Memory held by the prepared arrays."""
        arrays = [self.area, self.n_boundary, *self.mask_crop, *self.boundary_crop, *self.band_crop]
        return sum(a.nbytes for a in arrays if a is not None)


@dataclass(frozen=True, eq=False)
class PreparedPred:
    """The prediction side of J and F for one T×H×W mask (void cut): per frame its pixel
    count, its box and crop (``mask_box[t]``, ``mask_crop[t]``) and its boundary map cropped
    (``boundary_box[t]``, ``boundary_crop[t]``). Built once per prediction, compared with any
    number of GT objects."""

    shape: tuple[int, int, int]
    area: np.ndarray
    n_boundary: np.ndarray
    mask_box: tuple[Box | None, ...]
    mask_crop: tuple[np.ndarray | None, ...]
    boundary_box: tuple[Box | None, ...]
    boundary_crop: tuple[np.ndarray | None, ...]

    @classmethod
    def build(cls, mask: np.ndarray, void: np.ndarray | None = None) -> PreparedPred:
        """Prepare a T×H×W prediction (non-zero = foreground); ``void`` pixels are cut from it."""
        return cls._build(*_frames_of_stack(mask, void, "prediction"))

    @classmethod
    def from_labels(cls, labels: np.ndarray, label: int, void: np.ndarray | None = None) -> PreparedPred:
        """Prepare the prediction ``labels == label`` of T×H×W label maps (void pixels cut),
        frame by frame: the same result as ``build(labels == label, void)``."""
        return cls._build(*_frames_of_labels(labels, label, void))

    @classmethod
    def _build(cls, shape: tuple[int, ...], frames) -> PreparedPred:
        t_len = shape[0]
        area = np.zeros(t_len, dtype=np.int64)
        n_boundary = np.zeros(t_len, dtype=np.int64)
        parts = list(_masks_and_boundaries(frames))
        for t, part in enumerate(parts):
            area[t], n_boundary[t] = part[0], part[5]
        return cls((shape[0], shape[1], shape[2]), area, n_boundary,
                   tuple(p[1] for p in parts), tuple(p[2] for p in parts),
                   tuple(p[3] for p in parts), tuple(p[4] for p in parts))


def score_pair(gt: PreparedGT, pred: PreparedPred) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame J and F, each (T,) float64, of a prepared prediction against a prepared GT."""
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from the ground truth's {gt.shape}")
    t_len = gt.shape[0]
    kernel = disk(gt.radius)
    inter = np.zeros(t_len, dtype=np.int64)
    pred_match = np.zeros(t_len, dtype=np.int64)
    gt_match = np.zeros(t_len, dtype=np.int64)
    for t in range(t_len):
        box, pbox = gt.mask_box[t], pred.mask_box[t]
        if box is not None and pbox is not None:
            y0, y1 = max(box[0], pbox[0]), min(box[1], pbox[1])
            x0, x1 = max(box[2], pbox[2]), min(box[3], pbox[3])
            if y0 < y1 and x0 < x1:   # both crops cut to the boxes' overlap: views, no copy
                g = gt.mask_crop[t][y0 - box[0]:y1 - box[0], x0 - box[2]:x1 - box[2]]
                p = pred.mask_crop[t][y0 - pbox[0]:y1 - pbox[0], x0 - pbox[2]:x1 - pbox[2]]
                inter[t] = np.count_nonzero(g & p)
        band = gt.band_box[t]
        if band is None or not pred.n_boundary[t]:
            continue
        pb = _window(pred.boundary_crop[t], pred.boundary_box[t], band)
        if pb is None:
            continue
        matched = np.count_nonzero(pb & gt.band_crop[t])
        if matched:
            pred_match[t] = matched
            dilated = cv2.dilate(np.ascontiguousarray(pb).view(np.uint8), kernel).view(bool)
            gt_match[t] = np.count_nonzero(gt.boundary_crop[t] & dilated)
    j = jaccard_from_counts(inter, pred.area, gt.area)
    f = f_from_counts(pred.n_boundary, gt.n_boundary, pred_match, gt_match)
    return j, f


def _counts(stack: np.ndarray) -> np.ndarray:
    """Non-zero pixels per frame of a T×H×W bool stack, (T,) int64."""
    return np.count_nonzero(stack.reshape(stack.shape[0], -1), axis=1).astype(np.int64)


def _as_stacks(pred: np.ndarray, gt: np.ndarray, void: np.ndarray | None):
    p, g = np.asarray(pred), np.asarray(gt)
    if p.shape != g.shape or p.ndim not in (2, 3):
        raise ValueError(f"prediction {p.shape} and ground truth {g.shape} must both be H×W or T×H×W")
    v = None if void is None else np.asarray(void, dtype=bool)
    if v is not None and v.shape != g.shape:
        raise ValueError(f"void mask shape {v.shape} differs from the ground truth's {g.shape}")
    single = p.ndim == 2
    if single:
        p, g, v = p[None], g[None], (None if v is None else v[None])
    return p != 0, g != 0, v, single


def jaccard(pred: np.ndarray, gt: np.ndarray, void: np.ndarray | None = None) -> float | np.ndarray:
    """J of an H×W mask pair (float) or per frame of T×H×W stacks ((T,) float64)."""
    p, g, v, single = _as_stacks(pred, gt, void)
    p, g = _cut_void(p, v), _cut_void(g, v)
    j = jaccard_from_counts(_counts(p & g), _counts(p), _counts(g))
    return float(j[0]) if single else j


def f_measure(pred: np.ndarray, gt: np.ndarray, void: np.ndarray | None = None) -> float | np.ndarray:
    """F of an H×W mask pair (float) or per frame of T×H×W stacks ((T,) float64)."""
    p, g, v, single = _as_stacks(pred, gt, void)
    _, f = score_pair(PreparedGT.build(g, v), PreparedPred.build(p, v))
    return float(f[0]) if single else f
