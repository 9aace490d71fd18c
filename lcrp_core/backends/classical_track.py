"""Propagation of the classical backend: colour-model template tracking, frame to frame.

Each seed mask is split into its connected parts and every part is tracked on its own:

1. a colour model from the seed frame: smoothed (a, b) histograms of the part (foreground) and
   of a ring around it (background); a pixel's likelihood is p_fg / (p_fg + p_bg);
2. on the next frame the part's template (its mask with a margin) is placed where it best
   fits the likelihood map (TM_SQDIFF, within a search radius around the position predicted
   from its velocity);
3. the new mask is the likely pixels (> 0.5) within a few pixels of the placed template; the
   template follows the object while it is fully seen (not while occluded);
4. when the placed template's coverage drops below ``lost_coverage`` the part is hidden
   (occluded or out of the frame): its mask is empty and its position is extrapolated for up
   to ``max_coast`` frames (the search radius grows), after which it is given up.

Shapes: frames are :class:`ColourFrame` s; a track is T×H×W bool.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from lcrp_core.backends.classical_regions import ColourFrame, crop_padded, match_shift


@dataclass(frozen=True)
class TrackConfig:
    """search: radius in pixels at the first step; grow: pixels a mask may grow per frame;
    lost_coverage: coverage below which a part is hidden; max_coast: frames to extrapolate."""

    search: int
    grow: int
    lost_coverage: float
    max_coast: int


def colour_model(cf: ColourFrame, mask: np.ndarray) -> np.ndarray:
    """(nb*nb+1,) float32 foreground likelihood per (a, b) bin from an H×W bool mask (the last
    entry, "outside the frame", is 0); histograms are smoothed over about 6 Lab units."""
    nb = cf.nb
    sigma = 6.0 * nb / 256
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    span = max(np.ptp(ys), np.ptp(xs)) + 1
    m = max(4, int(span) // 2)
    x0, y0 = max(int(xs.min()) - m, 0), max(int(ys.min()) - m, 0)
    x1, y1 = min(int(xs.max()) + m + 1, w), min(int(ys.max()) + m + 1, h)
    box_mask = mask[y0:y1, x0:x1]
    near = cv2.dilate(box_mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    index = cf.index[y0:y1, x0:x1]

    def hist(sel: np.ndarray) -> np.ndarray:
        counts = np.bincount(index[sel], minlength=nb * nb + 1)[:nb * nb].astype(np.float32)
        return cv2.GaussianBlur(counts.reshape(nb, nb), (0, 0), sigma).ravel() / max(sel.sum(), 1)

    fg, bg = hist(box_mask), hist(~near)
    lut = np.zeros(nb * nb + 1, dtype=np.float32)
    lut[:nb * nb] = fg / (fg + bg + 1e-4)
    return lut


@dataclass
class _Part:
    template: np.ndarray   # h×w float32, 1 inside the shape (with a margin of zeros)
    x: int                 # template's top-left in the frame
    y: int
    lut: np.ndarray
    vx: float = 0.0
    vy: float = 0.0
    hidden: int = 0
    steps: int = 0


_MARGIN = 3


def _template(mask: np.ndarray) -> tuple[np.ndarray, int, int] | None:
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return None
    y0, x0 = int(ys.min()), int(xs.min())
    crop = mask[y0:int(ys.max()) + 1, x0:int(xs.max()) + 1]
    return np.pad(crop, _MARGIN).astype(np.float32), x0 - _MARGIN, y0 - _MARGIN


def _step(part: _Part, cf: ColourFrame, cfg: TrackConfig) -> np.ndarray | None:
    """Move a part onto frame ``cf``; its H×W mask there, or None while hidden."""
    def likelihood_at(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        return part.lut[crop_padded(cf.index, x0, y0, x1, y1, cf.nb * cf.nb)]

    px, py = int(round(part.x + part.vx)), int(round(part.y + part.vy))
    radius = cfg.search + 2 * part.hidden
    dx, dy, coverage = match_shift(likelihood_at, part.template, px, py, radius)
    if coverage < cfg.lost_coverage:
        part.hidden += 1  # keep template and velocity; extrapolate the position
        part.x, part.y = px, py
        return None
    nx, ny = px + dx, py + dy
    if part.hidden == 0:  # velocity from consecutive sightings only
        rate = 1.0 if part.steps == 0 else 0.5
        part.vx += rate * ((nx - part.x) - part.vx)
        part.vy += rate * ((ny - part.y) - part.vy)
    part.hidden, part.steps = 0, part.steps + 1
    th, tw = part.template.shape
    g = cfg.grow
    # the mask may grow by g pixels on every side of the placed template
    region = cv2.dilate(np.pad((part.template > 0).astype(np.uint8), g),
                        cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * g + 1, 2 * g + 1)))
    bx, by = nx - g, ny - g
    lik = likelihood_at(bx, by, bx + tw + 2 * g, by + th + 2 * g)
    crop = (lik > 0.5) & region.astype(bool)
    h, w = cf.size
    mask = np.zeros((h, w), dtype=bool)
    sx0, sy0 = max(bx, 0), max(by, 0)
    sx1, sy1 = min(bx + crop.shape[1], w), min(by + crop.shape[0], h)
    if sx0 >= sx1 or sy0 >= sy1:
        part.x, part.y = nx, ny
        return None
    mask[sy0:sy1, sx0:sx1] = crop[sy0 - by:sy1 - by, sx0 - bx:sx1 - bx]
    area, ref = int(crop.sum()), float(part.template.sum())
    new = _template(mask) if area >= 0.85 * ref else None
    if new is not None:  # fully seen: the template follows the object's shape
        part.template, part.x, part.y = new
    else:
        part.x, part.y = nx, ny
    return mask


def _track_part(frames: Sequence[ColourFrame], t: int, mask: np.ndarray, lut: np.ndarray,
                direction: int, cfg: TrackConfig, out: np.ndarray) -> None:
    tpl = _template(mask)
    if tpl is None:
        return
    part = _Part(tpl[0], tpl[1], tpl[2], lut)
    for s in range(t + direction, len(frames) if direction > 0 else -1, direction):
        m = _step(part, frames[s], cfg)
        if m is not None:
            out[s] |= m
        elif part.hidden > cfg.max_coast:
            return


def split_parts(seed: np.ndarray, *, min_frac: float = 0.02) -> list[np.ndarray]:
    """The 8-connected parts of an H×W seed mask holding at least ``min_frac`` of its pixels."""
    n, cc, stats, _ = cv2.connectedComponentsWithStats(seed.astype(np.uint8), connectivity=8)
    total = max(int(seed.sum()), 1)
    keep = [k for k in range(1, n) if stats[k, cv2.CC_STAT_AREA] >= max(2, min_frac * total)]
    return [cc == k for k in keep]


def propagate(frames: Sequence[ColourFrame], t: int, seeds: np.ndarray, cfg: TrackConfig) -> np.ndarray:
    """Seeds S×H×W bool on frame t → S×T×H×W bool tracks (the seed itself on frame t)."""
    num, (h, w) = len(frames), frames[t].size
    out = np.zeros((len(seeds), num, h, w), dtype=bool)
    for i, seed in enumerate(seeds):
        seed = np.asarray(seed, dtype=bool)
        out[i, t] = seed
        for part in split_parts(seed):
            lut = colour_model(frames[t], part)
            for direction in (1, -1):
                _track_part(frames, t, part, lut, direction, cfg, out[i])
    return out
