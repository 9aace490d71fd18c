"""Binary-mask helpers shared by the backends, the pipeline and the cache.

Shapes: ``mask`` is H×W bool; ``masks`` is N×H×W bool; a track is T×H×W bool.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import cv2
import numpy as np
from pycocotools import mask as mask_utils


def rle_encode(mask: np.ndarray) -> dict:
    """COCO RLE of an H×W bool mask, with ``counts`` as a str (JSON-safe)."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def rle_runs(rle: dict) -> np.ndarray:
    """The run lengths (int64, background first) of a COCO RLE; ValueError saying why when
    ``counts`` is malformed or its runs do not cover the ``size`` H×W.

    A compressed string is decoded as maskApi.c's ``rleFrString`` does: 6-bit groups offset by
    48, bit 5 = more, bit 4 of the last = sign, counts from the third on are deltas to the count
    two before. Decoding here (not in pycocotools) keeps a malformed string from making its C
    code read out of bounds.
    """
    counts = rle["counts"]
    if isinstance(counts, list):
        if not all(isinstance(c, int) and not isinstance(c, bool) for c in counts):
            raise ValueError("counts must be integers")
        runs = np.asarray(counts, dtype=np.int64)
    else:
        try:
            raw = counts if isinstance(counts, bytes) else counts.encode("ascii")
        except UnicodeEncodeError:
            raise ValueError("counts must be ASCII") from None
        code = np.frombuffer(raw, dtype=np.uint8).astype(np.int64) - 48
        if code.size == 0:
            raise ValueError("empty RLE counts")
        if code.min() < 0 or code.max() > 63:
            raise ValueError("counts has characters outside '0'..'o'")
        last = (code & 0x20) == 0
        if not last[-1]:
            raise ValueError("counts ends inside a number")
        starts = np.flatnonzero(np.r_[True, last[:-1]])
        k = np.arange(code.size) - np.repeat(starts, np.diff(np.r_[starts, code.size]))
        runs = np.add.reduceat((code & 0x1F) << (5 * k), starts)
        ends = np.flatnonzero(last)
        negative = (code[ends] & 0x10) != 0
        runs[negative] -= np.int64(1) << (5 * (k[ends[negative]] + 1))
        runs[3::2] = np.cumsum(runs[1::2])[1:]
        runs[4::2] = np.cumsum(runs[2::2])[1:]
    h, w = rle["size"]
    if (runs < 0).any() or int(runs.sum()) != h * w:
        raise ValueError(f"its runs do not cover the {h}×{w} mask")
    return runs


def rle_decode(rle: dict) -> np.ndarray:
    """H×W bool mask of a COCO RLE (``counts`` as str or bytes, compressed or a list).

    Decoded in numpy (column-major runs, background first), not by pycocotools.decode: that one
    goes through numpy 2's deprecated ``__array__`` fallback without ``copy=``, which a signal
    or a warnings filter can turn into ``TypeError: __array__() got an unexpected keyword
    argument 'copy'``."""
    h, w = rle["size"]
    runs = rle_runs(rle)
    flat = np.repeat(np.arange(runs.size) % 2 == 1, runs)
    return flat.reshape(w, h).T  # column-major like pycocotools' own result


def mask_hash(mask: np.ndarray) -> str:
    """Content hash of a mask (shape and bits), for content-addressed caches."""
    m = np.ascontiguousarray(mask, dtype=bool)
    h = hashlib.sha256(repr(m.shape).encode())
    h.update(np.packbits(m).tobytes())
    return h.hexdigest()[:32]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two same-shaped bool arrays; 1.0 when both are empty."""
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


def bbox_xyxy(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Tight box (x0, y0, x1, y1) with exclusive x1, y1; None for an empty mask."""
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    if ys.size == 0:
        return None
    return int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1


def _drop_small(mask: np.ndarray, min_area: float) -> np.ndarray:
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    small = np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] < min_area) + 1
    if small.size == 0:
        return mask
    return mask & ~np.isin(labels, small)


def _fill_small_holes(mask: np.ndarray, min_area: float) -> np.ndarray:
    n, labels, stats, _ = cv2.connectedComponentsWithStats((~mask).astype(np.uint8), connectivity=4)
    if n <= 1:
        return mask
    border = set(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]).tolist())
    areas = stats[:, cv2.CC_STAT_AREA]
    holes = [i for i in range(1, n) if areas[i] < min_area and i not in border]
    return mask | np.isin(labels, holes) if holes else mask


def remove_small_regions(mask: np.ndarray, min_area: float) -> np.ndarray:
    """Drop foreground components and fill holes with fewer than ``min_area`` pixels.

    Components are 8-connected, holes 4-connected (the complement's components that do not
    touch the image border count as holes; background touching the border is never filled).
    ``min_area <= 0`` returns the mask unchanged. This replaces sam2's `_C`-based
    post-processing and is the δ filter of the Refine and Path stages.

    The work is done on the mask's bounding box grown by one pixel (clipped to the image):
    the ring of background around the box connects every outside region, so a region
    touching the crop's border is never a hole there, exactly as in the full frame.
    """
    mask = np.asarray(mask, dtype=bool)
    box = bbox_xyxy(mask) if min_area > 0 else None
    if box is None:
        return mask
    x0, y0, x1, y1 = box
    h, w = mask.shape
    ys, xs = slice(max(y0 - 1, 0), min(y1 + 1, h)), slice(max(x0 - 1, 0), min(x1 + 1, w))
    crop = _fill_small_holes(_drop_small(mask[ys, xs], min_area), min_area)
    out = np.zeros_like(mask)
    out[ys, xs] = crop
    return out


def pack_masks(masks: np.ndarray) -> dict[str, np.ndarray]:
    """A bool array of any shape as {"bits", "shape"} (8× smaller; see unpack_masks)."""
    return {"bits": np.packbits(masks.astype(bool), axis=None), "shape": np.asarray(masks.shape)}


def unpack_masks(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """The bool array packed by pack_masks."""
    shape = tuple(int(s) for s in arrays["shape"])
    return np.unpackbits(arrays["bits"], count=int(np.prod(shape))).reshape(shape).view(bool)


def stack_or_empty(masks: Sequence[np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """N×H×W bool from a list of H×W masks (0×H×W when the list is empty)."""
    if not masks:
        return np.zeros((0, *size), dtype=bool)
    return np.stack([np.asarray(m, dtype=bool) for m in masks])
