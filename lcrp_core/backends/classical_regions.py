"""Colour segmentation and region descriptors of the classical backend (pixels only).

A frame is blurred and converted to CIE Lab (OpenCV's 8-bit scale: L, a, b in 0..255, a and b
offset by 128). Its (a, b) plane is binned into an ``nb×nb`` grid; the *colour modes* are the
peaks of the hue histogram of chromatic pixels (hue survives shading and illumination drift),
and every chromatic bin near a mode in hue takes its label. Proposals are the 8-connected
components of each label, components split at narrow necks, and unions of same-coloured
regions (groups, for sentences about several objects).

Shapes: ``rgb`` H×W×3 uint8; ``index`` H×W int16 (a-bin·nb + b-bin); a region's ``mask`` is an
h×w bool crop placed at ``(x0, y0)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: Descriptor layout (``FEATURE_DIM`` float32 values per proposal); read with these indices.
F_L, F_A, F_B, F_CHROMA, F_HUE_COS, F_HUE_SIN = range(6)
F_CIRC, F_SOLID, F_EXTENT, F_VERTS, F_ASPECT = range(6, 11)
F_AREA, F_SIZE, F_CX, F_CY = range(11, 15)
F_VX, F_VY, F_MOTION_OK = range(15, 18)
F_PARTS, F_QUALITY = range(18, 20)
F_SHAPE_P = 20  # p(shape) for SHAPE_NAMES, in that order

#: Shapes the descriptor recognises, with prototype features measured on pixel contours of
#: ideal shapes (circularity 4πA/P², solidity A/hull, extent pixels/box, hull vertices).
SHAPE_PROTOTYPES: dict[str, tuple[float, float, float, float]] = {
    "circle": (0.89, 0.97, 0.785, 7.0),
    "square": (0.79, 1.00, 1.00, 4.0),
    "triangle": (0.55, 0.94, 0.52, 3.0),
    "star": (0.38, 0.62, 0.46, 5.0),
    "diamond": (0.79, 1.00, 0.50, 4.0),
}
SHAPE_NAMES = tuple(SHAPE_PROTOTYPES)
FEATURE_DIM = F_SHAPE_P + len(SHAPE_NAMES)
_SHAPE_SIGMA = np.array([0.07, 0.07, 0.08], dtype=np.float64)
#: Regions smaller than this fraction of the frame get a proportionally lower quality (specks
#: are rarely the object a sentence is about).
OBJECT_AREA_FRAC = 0.004


#: Lightness bins of the (L, a, b) index (L // 32).
L_BINS = 8


@dataclass(frozen=True)
class ColourFrame:
    """A frame prepared for colour analysis: ``lab`` H×W×3 uint8 (blurred); ``index`` H×W int16,
    the (a, b) bin of every pixel (``nb*nb`` is reserved for "outside the frame"); ``lab_index``
    H×W uint16, the (L, a, b) bin (``L_BINS*nb*nb`` is "outside")."""

    lab: np.ndarray
    index: np.ndarray
    lab_index: np.ndarray
    ab_bin: int

    @property
    def nb(self) -> int:
        """Bins per axis of the (a, b) grid."""
        return -(-256 // self.ab_bin)

    @property
    def size(self) -> tuple[int, int]:
        return self.index.shape


def prepare(rgb: np.ndarray, *, blur: int, ab_bin: int) -> ColourFrame:
    """Blur (Gaussian, kernel ``blur``; 0 = none), convert to Lab and bin the (a, b) plane."""
    if blur > 0:
        rgb = cv2.GaussianBlur(rgb, (blur | 1, blur | 1), 0)
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)
    nb = -(-256 // ab_bin)
    if L_BINS * nb * nb >= 2 ** 16:
        raise ValueError(f"ab_bin {ab_bin} is too fine (at least 2 expected)")
    index = (lab[..., 1] // ab_bin).astype(np.uint16) * nb + lab[..., 2] // ab_bin
    lab_index = (lab[..., 0] // (256 // L_BINS)).astype(np.uint16) * (nb * nb) + index
    return ColourFrame(lab, index.astype(np.int16), lab_index, ab_bin)


def bin_polar(cf: ColourFrame) -> tuple[np.ndarray, np.ndarray]:
    """(nb*nb,) chroma and hue (degrees, −180..180) of every (a, b) bin's centre."""
    centre = (np.arange(cf.nb) + 0.5) * cf.ab_bin - 128
    a, b = np.meshgrid(centre, centre, indexing="ij")
    return np.hypot(a, b).ravel(), np.degrees(np.arctan2(b, a)).ravel()


#: Hue histogram resolution of the colour modes (degrees per bin).
HUE_BIN = 4


def colour_modes(cf: ColourFrame, *, min_chroma: float, min_count: int, radius: float) -> np.ndarray:
    """(nb*nb+1,) int32 colour label of every (a, b) bin (−1: achromatic, unassigned, outside).

    Colours are told apart by hue, which shading and illumination leave unchanged: the modes
    are the local maxima (±8°) of the circular, smoothed hue histogram of chromatic pixels
    (chroma ≥ ``min_chroma``) that hold at least ``min_count`` pixels within ±8°; a mode within
    12° of a stronger one is dropped. Every chromatic bin takes the nearest mode within
    ``radius`` degrees.
    """
    nb = cf.nb
    chroma, hue = bin_polar(cf)
    chromatic = chroma >= min_chroma
    nh = 360 // HUE_BIN
    hue_bin = ((hue + 180) // HUE_BIN).astype(np.int64) % nh
    counts = np.bincount(cf.index.ravel(), minlength=nb * nb + 1)[:nb * nb]
    hist = np.bincount(hue_bin[chromatic], weights=counts[chromatic], minlength=nh)

    def circular(kernel: np.ndarray) -> np.ndarray:
        k = len(kernel) // 2
        return np.convolve(np.concatenate([hist[-k:], hist, hist[:k]]), kernel, mode="valid")

    smooth = circular(np.exp(-0.5 * np.arange(-3, 4) ** 2))
    mass = circular(np.ones(5))
    window = np.stack([np.roll(smooth, k) for k in range(-2, 3)])
    peaks = np.flatnonzero((smooth >= window.max(axis=0)) & (mass >= min_count))
    modes: list[int] = []
    for p in peaks[np.argsort(-mass[peaks], kind="stable")]:
        if all(min(abs(p - m), nh - abs(p - m)) > 3 for m in modes):
            modes.append(int(p))
    lut = np.full(nb * nb + 1, -1, dtype=np.int32)
    if not modes:
        return lut
    centres = (np.asarray(modes) + 0.5) * HUE_BIN - 180
    diff = np.abs((hue[:, None] - centres[None, :] + 180) % 360 - 180)
    near = diff.argmin(axis=1)
    ok = chromatic & (diff[np.arange(nb * nb), near] <= radius)
    lut[:nb * nb][ok] = near[ok]
    return lut


def crop_padded(array: np.ndarray, x0: int, y0: int, x1: int, y1: int, fill) -> np.ndarray:
    """``array[y0:y1, x0:x1]`` where the box may leave the array; outside pixels are ``fill``."""
    h, w = array.shape[:2]
    out = np.full((y1 - y0, x1 - x0, *array.shape[2:]), fill, dtype=array.dtype)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if sx0 < sx1 and sy0 < sy1:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = array[sy0:sy1, sx0:sx1]
    return out


def match_shift(likelihood_at, template: np.ndarray, x0: int, y0: int, radius: int,
                size: tuple[int, int]) -> tuple[int, int, float]:
    """Where a template fits best near ``(x0, y0)``: (dx, dy, coverage).

    ``template`` h×w float32 (1 inside the shape, 0 around it) placed with its top-left at
    ``(x0, y0)`` in a frame of ``size`` (H, W); ``likelihood_at(x0, y0, x1, y1)`` returns the
    float32 foreground likelihood of that box (0 outside the frame). The shift within
    ±``radius`` minimises the squared difference (TM_SQDIFF), with pixels outside the frame
    read as 0.5 (unknown, so a part leaving the frame is not pulled back in) and a small pull
    towards no shift. Coverage is the mean likelihood over the template's pixels inside the
    frame at that shift (0 when less than a tenth of the template is inside).
    """
    h, w = template.shape
    bx, by = x0 - radius, y0 - radius
    window = likelihood_at(bx, by, x0 + w + radius, y0 + h + radius)
    rows = (np.arange(by, by + window.shape[0]) >= 0) & (np.arange(by, by + window.shape[0]) < size[0])
    cols = (np.arange(bx, bx + window.shape[1]) >= 0) & (np.arange(bx, bx + window.shape[1]) < size[1])
    inside = rows[:, None] & cols[None, :]
    cost = cv2.matchTemplate(np.where(inside, window, np.float32(0.5)), template, cv2.TM_SQDIFF)
    d = np.arange(-radius, radius + 1, dtype=np.float32)
    cost += 0.02 * float(template.sum()) * (d[:, None] ** 2 + d[None, :] ** 2) / max(radius, 1) ** 2
    dy, dx = np.unravel_index(int(np.argmin(cost)), cost.shape)
    seen = template * inside[dy:dy + h, dx:dx + w]
    if seen.sum() < 0.1 * max(float(template.sum()), 1e-6):
        return int(dx) - radius, int(dy) - radius, 0.0
    coverage = float((window[dy:dy + h, dx:dx + w] * seen).sum() / float(seen.sum()))
    return int(dx) - radius, int(dy) - radius, coverage


@dataclass
class Region:
    """A proposal under construction: ``mask`` h×w bool crop at (x0, y0), its colour label, the
    parts it unites (1 for a single region) and its measured descriptor."""

    mask: np.ndarray
    x0: int
    y0: int
    label: int
    parts: int = 1
    feature: np.ndarray | None = None

    def full(self, size: tuple[int, int]) -> np.ndarray:
        """The H×W bool mask."""
        out = np.zeros(size, dtype=bool)
        h, w = self.mask.shape
        out[self.y0:self.y0 + h, self.x0:self.x0 + w] = self.mask
        return out


def shape_probabilities(circ: float, solid: float, extent: float, verts: float) -> np.ndarray:
    """p(shape) over SHAPE_NAMES (softmax of Gaussian log-likelihoods around the prototypes,
    with a penalty per missing or extra hull vertex; a circle needs ≥ 6 vertices)."""
    f = np.array([circ, solid, extent])
    logits = []
    for name, (*proto, v) in SHAPE_PROTOTYPES.items():
        ll = -0.5 * float((((f - np.array(proto)) / _SHAPE_SIGMA) ** 2).sum())
        ll -= 0.8 * (max(0.0, 6.0 - verts) if name == "circle" else abs(verts - v))
        logits.append(ll)
    logits_arr = np.array(logits)
    p = np.exp(logits_arr - logits_arr.max())
    return p / p.sum()


def _ring(mask: np.ndarray, px: int) -> np.ndarray:
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return cv2.dilate(mask.astype(np.uint8), k).astype(bool) & ~mask


def describe(region: Region, cf: ColourFrame, motion: tuple[float, float] | None) -> np.ndarray:
    """(FEATURE_DIM,) float32 descriptor of a single region (colour, shape, size, position,
    motion per frame as a fraction of min(H, W), quality)."""
    h_img, w_img = cf.size
    pad = 3
    x0, y0 = region.x0 - pad, region.y0 - pad
    mask = np.pad(region.mask, pad)
    mh, mw = mask.shape
    m8 = mask.astype(np.uint8)
    contours, _ = cv2.findContours(m8, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    contour = max(contours, key=cv2.contourArea)
    area = int(mask.sum())
    c_area = max(cv2.contourArea(contour), 1.0)
    perim = max(cv2.arcLength(contour, True), 1.0)
    hull = cv2.convexHull(contour)
    hull_area = max(cv2.contourArea(hull), 1.0)
    verts = len(cv2.approxPolyDP(hull, 0.04 * cv2.arcLength(hull, True), True))
    bx, by, bw, bh = cv2.boundingRect(contour)
    circ = min(4 * np.pi * c_area / perim ** 2, 1.2)
    solid = min(c_area / hull_area, 1.0)
    extent = area / float(bw * bh)

    lab = crop_padded(cf.lab, x0, y0, x0 + mw, y0 + mh, 0).astype(np.float32)
    inside = lab[mask]
    mean = inside.mean(axis=0)
    ring = _ring(mask, 3) & (crop_padded(cf.index, x0, y0, x0 + mw, y0 + mh, -1) >= 0)
    contrast = float(np.linalg.norm(lab[ring].mean(axis=0) - mean)) if ring.any() else 0.0
    filled = np.zeros_like(m8)
    cv2.drawContours(filled, [contour], -1, 1, thickness=-1)
    fill = min(area / max(float(filled.sum()), 1.0), 1.0)
    opened = cv2.morphologyEx(m8, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    stability = float(opened.sum()) / max(area, 1)
    objectness = min(1.0, area / (OBJECT_AREA_FRAC * h_img * w_img))
    quality = fill * stability * (0.5 + 0.5 * min(contrast / 40.0, 1.0)) * objectness

    a, b = mean[1] - 128, mean[2] - 128
    chroma = float(np.hypot(a, b))
    ys, xs = np.nonzero(mask)
    side = float(min(h_img, w_img))
    f = np.zeros(FEATURE_DIM, dtype=np.float32)
    f[[F_L, F_A, F_B, F_CHROMA]] = mean[0], mean[1], mean[2], chroma
    f[F_HUE_COS], f[F_HUE_SIN] = (a / chroma, b / chroma) if chroma > 0 else (0.0, 0.0)
    f[[F_CIRC, F_SOLID, F_EXTENT, F_VERTS]] = circ, solid, extent, verts
    f[F_ASPECT] = min(bw, bh) / max(bw, bh)
    f[F_AREA] = area / float(h_img * w_img)
    f[F_SIZE] = max(bw, bh) / 2 / side
    f[F_CX], f[F_CY] = (xs.mean() + x0 + 0.5) / w_img, (ys.mean() + y0 + 0.5) / h_img
    if motion is not None:
        f[F_VX], f[F_VY], f[F_MOTION_OK] = motion[0] / side, motion[1] / side, 1.0
    f[F_PARTS] = 1
    f[F_QUALITY] = quality
    f[F_SHAPE_P:] = shape_probabilities(circ, solid, extent, verts)
    return f


def combine(parts: list[Region], size: tuple[int, int]) -> Region:
    """The union of several regions of one colour as one proposal; its descriptor averages the
    parts' (area-weighted), keeps the largest part's shape measures and counts the parts."""
    h, w = size
    x0 = min(p.x0 for p in parts)
    y0 = min(p.y0 for p in parts)
    x1 = max(p.x0 + p.mask.shape[1] for p in parts)
    y1 = max(p.y0 + p.mask.shape[0] for p in parts)
    mask = np.zeros((y1 - y0, x1 - x0), dtype=bool)
    for p in parts:
        ph, pw = p.mask.shape
        mask[p.y0 - y0:p.y0 - y0 + ph, p.x0 - x0:p.x0 - x0 + pw] |= p.mask
    feats = np.stack([p.feature for p in parts])
    weights = feats[:, F_AREA] / feats[:, F_AREA].sum()
    f = (feats * weights[:, None]).sum(axis=0)
    largest = feats[int(np.argmax(feats[:, F_AREA]))]
    for k in (F_CIRC, F_SOLID, F_EXTENT, F_VERTS, F_ASPECT, F_SIZE):
        f[k] = largest[k]
    f[F_AREA] = feats[:, F_AREA].sum()
    f[F_MOTION_OK] = feats[:, F_MOTION_OK].min()
    f[F_PARTS] = len(parts)
    f[F_SHAPE_P:] = feats[:, F_SHAPE_P:].mean(axis=0)
    f[F_QUALITY] = feats[:, F_QUALITY].mean()
    return Region(mask, x0, y0, parts[0].label, len(parts), f.astype(np.float32))


def components(labels: np.ndarray, num_labels: int, *, min_area: int, max_area: int) -> list[Region]:
    """8-connected components of every colour label with min_area ≤ area ≤ max_area pixels."""
    out = []
    for label in range(num_labels):
        binary = (labels == label).astype(np.uint8)
        n, cc, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
        for k in range(1, n):
            x, y, w, h, area = (int(v) for v in stats[k])
            if min_area <= area <= max_area:
                out.append(Region(cc[y:y + h, x:x + w] == k, x, y, label))
    return out


def split_necks(region: Region, *, min_area: int) -> list[Region]:
    """Parts of a region joined by narrow necks (e.g. two touching objects of one colour): the
    cores left by an erosion of about a quarter of its half-size, each grown back over the
    region's pixels nearest to it. Empty when the region has a single core."""
    h, w = region.mask.shape
    r = max(2, int(round(0.25 * min(h, w) / 2)))
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    padded = np.pad(region.mask.astype(np.uint8), 1)
    core = cv2.erode(padded, k)
    n, cc, stats, _ = cv2.connectedComponentsWithStats(core, connectivity=8)
    big = [i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= max(4, min_area // 8)]
    if len(big) < 2:
        return []
    seeds = np.where(np.isin(cc, big), 0, 255).astype(np.uint8)
    _, nearest = cv2.distanceTransformWithLabels(seeds, cv2.DIST_L2, 5,
                                                 labelType=cv2.DIST_LABEL_PIXEL)
    seed_label = np.zeros(nearest.max() + 1, dtype=np.int32)
    zy, zx = np.nonzero(seeds == 0)
    seed_label[nearest[zy, zx]] = cc[zy, zx]
    owner = seed_label[nearest][1:-1, 1:-1]
    parts = []
    for i in big:
        part = region.mask & (owner == i)
        ys, xs = np.nonzero(part)
        if len(ys) >= min_area:
            y0, x0 = ys.min(), xs.min()
            parts.append(Region(part[y0:ys.max() + 1, x0:xs.max() + 1], region.x0 + int(x0),
                                region.y0 + int(y0), region.label))
    return parts if len(parts) >= 2 else []


def group_by_shape(regions: list[Region]) -> list[list[Region]]:
    """Groups of ≥ 2 same-coloured, object-sized regions (at least half of OBJECT_AREA_FRAC of
    the frame) for group proposals: every such region of a colour, and those of one colour
    sharing their most likely shape (when that is a smaller set)."""
    groups = []
    sized = [r for r in regions if r.feature[F_AREA] >= 0.5 * OBJECT_AREA_FRAC]
    for label in sorted({r.label for r in sized}):
        same = [r for r in sized if r.label == label]
        if len(same) < 2:
            continue
        groups.append(same)
        shape = [int(np.argmax(r.feature[F_SHAPE_P:])) for r in same]
        for s in sorted(set(shape)):
            sub = [r for r, k in zip(same, shape, strict=True) if k == s]
            if 2 <= len(sub) < len(same):
                groups.append(sub)
    return groups
