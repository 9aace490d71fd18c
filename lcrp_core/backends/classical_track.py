"""Propagation of the classical backend: colour-model template tracking, frame to frame.

Each seed mask is split into its connected parts and every part is tracked on its own:

1. a colour model from the seed frame: smoothed (L, a, b) histograms of the part (foreground) and
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

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from lcrp_core.backends.classical_regions import L_BINS, ColourFrame, crop_padded, match_shift


@dataclass(frozen=True)
class TrackConfig:
    """search: radius in pixels at the first step; grow: pixels a mask may grow per frame;
    lost_coverage: coverage below which a part is hidden; max_coast: frames to extrapolate."""

    search: int
    grow: int
    lost_coverage: float
    max_coast: int


def colour_model(cf: ColourFrame, mask: np.ndarray) -> np.ndarray:
    """(L_BINS*nb*nb+1,) float32 foreground likelihood per (L, a, b) bin from an H×W bool mask
    (the last entry, "outside the frame", is 0). Foreground: the mask; background: the box
    around it (half its size on every side) less the mask dilated by 2 pixels. Histograms are
    smoothed over about 6 units in a and b and one neighbouring lightness bin."""
    nb = cf.nb
    bins = L_BINS * nb * nb
    sigma = 6.0 * nb / 256
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    m = max(4, int(max(np.ptp(ys), np.ptp(xs)) + 1) // 2)
    x0, y0 = max(int(xs.min()) - m, 0), max(int(ys.min()) - m, 0)
    x1, y1 = min(int(xs.max()) + m + 1, w), min(int(ys.max()) + m + 1, h)
    box_mask = mask[y0:y1, x0:x1]
    near = cv2.dilate(box_mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    index = cf.lab_index[y0:y1, x0:x1]

    def hist(sel: np.ndarray) -> np.ndarray:
        counts = np.bincount(index[sel], minlength=bins + 1)[:bins].astype(np.float32)
        cube = np.stack([cv2.GaussianBlur(plane, (0, 0), sigma)
                         for plane in counts.reshape(L_BINS, nb, nb)])
        out = cube.copy()
        out[1:] += 0.5 * cube[:-1]
        out[:-1] += 0.5 * cube[1:]
        return out.ravel() / max(int(sel.sum()), 1)

    fg, bg = hist(box_mask), hist(~near)
    lut = np.zeros(bins + 1, dtype=np.float32)
    lut[:bins] = fg / (fg + bg + 1e-5)
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


def _template(mask: np.ndarray, x: int = 0, y: int = 0) -> tuple[np.ndarray, int, int] | None:
    """(template, x, y) of a bool mask placed at (x, y): its tight crop with a zero margin."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return None
    y0, x0 = int(ys.min()), int(xs.min())
    crop = mask[y0:int(ys.max()) + 1, x0:int(xs.max()) + 1]
    return np.pad(crop, _MARGIN).astype(np.float32), x + x0 - _MARGIN, y + y0 - _MARGIN


def _step(part: _Part, cf: ColourFrame, cfg: TrackConfig) -> tuple[np.ndarray, int, int] | None:
    """Move a part onto frame ``cf``: its mask there as (h×w bool crop, x, y; the crop may
    reach outside the frame, where it is False), or None while it is hidden."""
    def likelihood_at(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        return part.lut[crop_padded(cf.lab_index, x0, y0, x1, y1, L_BINS * cf.nb * cf.nb)]

    px, py = int(round(part.x + part.vx)), int(round(part.y + part.vy))
    # full radius until the velocity is known and after a gap; half of it while locked on
    radius = (cfg.search + 2 * part.hidden if part.steps < 2 or part.hidden
              else max(2, cfg.search // 2))
    dx, dy, coverage = match_shift(likelihood_at, part.template, px, py, radius, cf.size)
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
    crop = (likelihood_at(bx, by, bx + tw + 2 * g, by + th + 2 * g) > 0.5) & region.astype(bool)
    new = _template(crop, bx, by) if crop.sum() >= 0.85 * float(part.template.sum()) else None
    if new is not None:  # fully seen: the template follows the object's shape
        part.template, part.x, part.y = new
    else:
        part.x, part.y = nx, ny
    return crop, bx, by


def _paste(out: np.ndarray, crop: np.ndarray, x: int, y: int) -> None:
    """``out`` (H×W bool) |= ``crop`` placed at (x, y), clipped to the frame."""
    h, w = out.shape
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + crop.shape[1], w), min(y + crop.shape[0], h)
    if x0 < x1 and y0 < y1:
        out[y0:y1, x0:x1] |= crop[y0 - y:y1 - y, x0 - x:x1 - x]


def _track_part(frame: Callable[[int], ColourFrame], num_frames: int, t: int, mask: np.ndarray,
                lut: np.ndarray, direction: int, cfg: TrackConfig, out: np.ndarray) -> None:
    tpl = _template(mask)
    if tpl is None:
        return
    part = _Part(tpl[0], tpl[1], tpl[2], lut)
    for s in range(t + direction, num_frames if direction > 0 else -1, direction):
        placed = _step(part, frame(s), cfg)
        if placed is not None:
            _paste(out[s], *placed)
        elif part.hidden > cfg.max_coast:
            return


def split_parts(seed: np.ndarray, *, min_frac: float = 0.02) -> list[np.ndarray]:
    """The 8-connected parts of an H×W seed mask holding at least ``min_frac`` of its pixels."""
    n, cc, stats, _ = cv2.connectedComponentsWithStats(seed.astype(np.uint8), connectivity=8)
    total = max(int(seed.sum()), 1)
    keep = [k for k in range(1, n) if stats[k, cv2.CC_STAT_AREA] >= max(2, min_frac * total)]
    return [cc == k for k in keep]


def propagate(frame: Callable[[int], ColourFrame], num_frames: int, t: int, seeds: np.ndarray,
              cfg: TrackConfig) -> np.ndarray:
    """Seeds S×H×W bool on frame t → S×T×H×W bool tracks (the seed itself on frame t);
    ``frame(s)`` gives frame s prepared (called only for frames a part reaches)."""
    seeds = np.asarray(seeds, dtype=bool)
    out = np.zeros((len(seeds), num_frames, *seeds.shape[1:]), dtype=bool)
    for i, seed in enumerate(seeds):
        out[i, t] = seed
        for part in split_parts(seed):
            lut = colour_model(frame(t), part)
            for direction in (1, -1):
                _track_part(frame, num_frames, t, part, lut, direction, cfg, out[i])
    return out
