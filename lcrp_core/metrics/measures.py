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
dilations (cropped per frame to where they are non-zero), :class:`PreparedPred` a prediction's
areas and boundary maps (shared by every GT object it is compared with), and :func:`score_pair`
compares the two with per-frame counts on the GT's crops. Only the boundary matches that the
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


def _box(mask2d: np.ndarray) -> Box | None:
    rows = np.flatnonzero(mask2d.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask2d.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _counts(stack: np.ndarray) -> np.ndarray:
    """Non-zero pixels per frame of a T×h×w bool stack, (T,) int64."""
    return np.count_nonzero(stack.reshape(stack.shape[0], -1), axis=1).astype(np.int64)


@dataclass(frozen=True, eq=False)
class PreparedGT:
    """The ground-truth side of J and F for one T×H×W mask, computed once, reused per trial.

    Per frame t: ``area[t]`` and ``n_boundary[t]`` (pixel counts); the mask cropped to its box
    (``mask_box[t]``, ``mask_crop[t]``); the boundary map and its disk dilation cropped to the
    boundary's box grown by the radius (``band_box[t]``, ``boundary_crop[t]``, ``band_crop[t]``).
    Boxes are (y0, y1, x0, x1) or None where the frame has nothing.
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
        g = _cut_void(_stack(mask, "ground truth"), void)
        t_len, h, w = g.shape
        radius = boundary_radius(h, w)
        kernel = disk(radius)
        boundary = seg2bmap(g)
        mask_box, mask_crop, band_box, boundary_crop, band_crop = [], [], [], [], []
        for t in range(t_len):
            box = _box(g[t])
            mask_box.append(box)
            mask_crop.append(None if box is None else g[t, box[0]:box[1], box[2]:box[3]].copy())
            bbox = _box(boundary[t])
            if bbox is None:
                band_box.append(None)
                boundary_crop.append(None)
                band_crop.append(None)
                continue
            y0, y1 = max(bbox[0] - radius, 0), min(bbox[1] + radius, h)
            x0, x1 = max(bbox[2] - radius, 0), min(bbox[3] + radius, w)
            crop = np.ascontiguousarray(boundary[t, y0:y1, x0:x1])
            band_box.append((y0, y1, x0, x1))
            boundary_crop.append(crop)
            band_crop.append(cv2.dilate(crop.view(np.uint8), kernel).view(bool))
        return cls((t_len, h, w), radius, _counts(g), _counts(boundary), tuple(mask_box),
                   tuple(mask_crop), tuple(band_box), tuple(boundary_crop), tuple(band_crop))

    @property
    def nbytes(self) -> int:
        """Memory held by the prepared arrays."""
        arrays = [self.area, self.n_boundary, *self.mask_crop, *self.boundary_crop, *self.band_crop]
        return sum(a.nbytes for a in arrays if a is not None)


@dataclass(frozen=True, eq=False)
class PreparedPred:
    """The prediction side of J and F for one T×H×W mask: the (void-cut) mask, its boundary map,
    and their per-frame pixel counts. Built once per prediction, compared with any number of
    ground-truth objects."""

    mask: np.ndarray
    boundary: np.ndarray
    area: np.ndarray
    n_boundary: np.ndarray

    @classmethod
    def build(cls, mask: np.ndarray, void: np.ndarray | None = None) -> PreparedPred:
        """Prepare a T×H×W prediction (non-zero = foreground); ``void`` pixels are cut from it."""
        p = _cut_void(_stack(mask, "prediction"), void)
        t_len, h, w = p.shape
        boundary = np.zeros_like(p)
        box = _box(p.any(axis=0))
        if box is None:
            zeros = np.zeros(t_len, dtype=np.int64)
            return cls(p, boundary, zeros, zeros)
        # Boundary pixels lie within one pixel above/left of the mask's box; a zero row/column
        # below/right lets the crop's last row/column follow the full frame's rule.
        y0, y1 = max(box[0] - 1, 0), min(box[1] + 1, h)
        x0, x1 = max(box[2] - 1, 0), min(box[3] + 1, w)
        crop = p[:, y0:y1, x0:x1]
        b = seg2bmap(crop)
        boundary[:, y0:y1, x0:x1] = b
        return cls(p, boundary, _counts(crop), _counts(b))


def score_pair(gt: PreparedGT, pred: PreparedPred) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame J and F, each (T,) float64, of a prepared prediction against a prepared GT."""
    if pred.mask.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.mask.shape} differs from the ground truth's {gt.shape}")
    t_len = gt.shape[0]
    kernel = disk(gt.radius)
    inter = np.zeros(t_len, dtype=np.int64)
    pred_match = np.zeros(t_len, dtype=np.int64)
    gt_match = np.zeros(t_len, dtype=np.int64)
    for t in range(t_len):
        box = gt.mask_box[t]
        if box is not None and pred.area[t]:
            inter[t] = np.count_nonzero(pred.mask[t, box[0]:box[1], box[2]:box[3]] & gt.mask_crop[t])
        box = gt.band_box[t]
        if box is None or not pred.n_boundary[t]:
            continue
        pb = pred.boundary[t, box[0]:box[1], box[2]:box[3]]
        matched = np.count_nonzero(pb & gt.band_crop[t])
        if matched:
            pred_match[t] = matched
            dilated = cv2.dilate(np.ascontiguousarray(pb).view(np.uint8), kernel).view(bool)
            gt_match[t] = np.count_nonzero(gt.boundary_crop[t] & dilated)
    j = jaccard_from_counts(inter, pred.area, gt.area)
    f = f_from_counts(pred.n_boundary, gt.n_boundary, pred_match, gt_match)
    return j, f


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
