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
    """The bool array packed by pack_masks (or a PackedTrack's payload)."""
    if "frame_bits" in arrays:
        return PackedTrack.from_payload(arrays).unpack()
    shape = tuple(int(s) for s in arrays["shape"])
    return np.unpackbits(arrays["bits"], count=int(np.prod(shape))).reshape(shape).view(bool)


#: set bits of every byte value (popcount of packed masks)
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint16)


class PackedTrack:
    """A T×H×W bool track held as T rows of packed bits (each frame packed on its own, padded to
    whole bytes: ``bits`` T×ceil(H·W/8) uint8, 8× smaller than bools), so one frame is read,
    written or compared without unpacking the others. Payload: ``{"frame_bits", "shape"}``."""

    def __init__(self, bits: np.ndarray, size: tuple[int, int]):
        self.bits = bits
        self.size = (int(size[0]), int(size[1]))

    @classmethod
    def empty(cls, num_frames: int, size: tuple[int, int]) -> PackedTrack:
        return cls(np.zeros((num_frames, (size[0] * size[1] + 7) // 8), dtype=np.uint8), size)

    @classmethod
    def from_masks(cls, masks: np.ndarray) -> PackedTrack:
        masks = np.asarray(masks, dtype=bool)
        return cls(np.packbits(masks.reshape(len(masks), -1), axis=1), masks.shape[1:])

    @classmethod
    def from_payload(cls, arrays: dict[str, np.ndarray]) -> PackedTrack:
        if "frame_bits" not in arrays:          # a whole-array pack_masks entry
            return cls.from_masks(unpack_masks(arrays))
        shape = [int(s) for s in arrays["shape"]]
        return cls(np.asarray(arrays["frame_bits"]), (shape[1], shape[2]))

    def to_payload(self) -> dict[str, np.ndarray]:
        return {"frame_bits": self.bits, "shape": np.asarray([len(self), *self.size])}

    def __len__(self) -> int:
        return len(self.bits)

    @property
    def nbytes(self) -> int:
        return self.bits.nbytes

    def set_frame(self, t: int, mask: np.ndarray) -> None:
        self.bits[t] = np.packbits(np.asarray(mask, dtype=bool).reshape(-1))

    def frame(self, t: int) -> np.ndarray:
        """Frame t as an H×W bool mask."""
        h, w = self.size
        return np.unpackbits(self.bits[t], count=h * w).reshape(h, w).view(bool)

    def frames(self):
        """Every frame in order, one H×W bool mask at a time."""
        return (self.frame(t) for t in range(len(self)))

    def unpack(self) -> np.ndarray:
        """The whole T×H×W bool track."""
        h, w = self.size
        return np.unpackbits(self.bits, axis=1, count=h * w).reshape(len(self), h, w).view(bool)

    def map_frames(self, fn) -> PackedTrack:
        """A new track with ``fn(mask)`` applied to every frame (one frame unpacked at a time)."""
        out = PackedTrack.empty(len(self), self.size)
        for t in range(len(self)):
            out.set_frame(t, fn(self.frame(t)))
        return out


def packed_pair_counts(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Intersection and union pixel counts of packed masks: ``a`` (B,) against ``b`` (N, B)
    rows of packed bits → two (N,) int arrays (padding bits are zero in both)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.size % 8 == 0 and a.flags.c_contiguous and b.flags.c_contiguous:
        a, b = a.view(np.uint64), b.view(np.uint64)     # popcount 8 bytes at a time
    return (_popcount(a & b).sum(axis=-1, dtype=np.int64),
            _popcount(a | b).sum(axis=-1, dtype=np.int64))


def _popcount(x: np.ndarray) -> np.ndarray:
    """Set bits of each element (numpy >= 2: bitwise_count; else a byte table)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x)
    return _POPCOUNT[x.view(np.uint8)].reshape(*x.shape, -1).sum(axis=-1)


def stack_or_empty(masks: Sequence[np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """N×H×W bool from a list of H×W masks (0×H×W when the list is empty)."""
    if not masks:
        return np.zeros((0, *size), dtype=bool)
    return np.stack([np.asarray(m, dtype=bool) for m in masks])
