"""The weight-free ``classical`` backend: colour segmentation, rule-based grounding, GrabCut
refinement and colour-model template tracking. It sees only pixels and the sentence.

- ``propose``: hue modes of the frame's chromatic pixels (Lab) → connected components of each
  colour (plus parts split at narrow necks and unions of same-coloured regions); regions the
  size of the background are dropped. Quality q = fill (1 − hole fraction) × stability (share
  surviving a 3×3 opening) × (½ + ½·edge contrast) × objectness (area up to 0.4 % of the
  frame), the classical analogue of SAM2's predicted IoU × stability. The descriptor
  (classical_regions.F_*) holds mean Lab, hue, shape measures (circularity, solidity, extent,
  hull corners) and shape probabilities, size, centroid, the part count and the motion: the
  region's displacement to the frames ``motion_step`` before and after, by template matching.
- ``encode_text`` / ``score``: classical_text.parse and classical_text.ground.
- ``refine``: one ``cv2.grabCut`` round initialised from the mask within its dilated box.
- ``propagate``: classical_track.propagate, every seed in one pass over the frames.

Frame-size-dependent settings are fractions: of min(H, W) for lengths, of H·W for areas.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

import cv2
import numpy as np

from lcrp_core.backends import classical_regions as cr
from lcrp_core.backends import classical_text as ct
from lcrp_core.backends.base import Backend, BackendConfig, Proposals
from lcrp_core.backends.classical_track import TrackConfig
from lcrp_core.backends.classical_track import propagate as track_seeds
from lcrp_core.config import Number, expect
from lcrp_core.data.model import Video
from lcrp_core.masks import bbox_xyxy


def _in(low: float, high: float) -> Any:
    return expect(f"a value in [{low}, {high}]", lambda v: low <= v <= high)


class ClassicalConfig(BackendConfig):
    """The classical backend's config keys, their allowed inclusive ranges and defaults."""

    #: Gaussian blur kernel (pixels, odd; 0 = none) before Lab
    blur: Annotated[int, _in(0, 31)] = 3
    #: width of an (a, b) histogram bin (Lab units, 8-bit scale)
    ab_bin: Annotated[int, _in(2, 64)] = 4
    #: less colourful pixels are background for proposals
    min_chroma: Annotated[Number, _in(0, 128)] = 22.0
    #: degrees of hue from a colour mode that still belong to it
    colour_radius: Annotated[Number, _in(1, 90)] = 16.0
    #: smaller regions are not proposed (fraction of H·W)
    min_region_frac: Annotated[Number, _in(0, 1)] = 0.0012
    #: larger regions are background (fraction of H·W)
    max_region_frac: Annotated[Number, _in(0, 1)] = 0.2
    #: keep the best-quality proposals
    max_proposals: Annotated[int, _in(1, 10_000)] = 24
    #: frames before/after a proposal's frame to measure motion
    motion_step: Annotated[int, _in(0, 100)] = 2
    #: search radius of motion and tracking (fraction of min(H, W))
    search_frac: Annotated[Number, _in(0, 1)] = 0.04
    #: pixels a tracked mask may grow per frame
    grow_px: Annotated[int, _in(0, 100)] = 3
    #: a tracked part below this coverage is hidden
    lost_coverage: Annotated[Number, _in(0, 1)] = 0.35
    #: frames a hidden part is extrapolated before it is given up
    max_coast: Annotated[int, _in(0, 10_000)] = 10
    #: GrabCut iterations per refinement round
    grabcut_iters: Annotated[int, _in(1, 100)] = 1
    #: refinement box margin (fraction of the mask's box size)
    grabcut_margin: Annotated[Number, _in(0, 10)] = 0.35


class ClassicalBackend(Backend):
    """Pixels-and-rules backend for the demo and for tests whose scores must mean something."""

    name: ClassVar[str] = "classical"
    Config: ClassVar[type[BackendConfig]] = ClassicalConfig
    proposal_only_keys: ClassVar[tuple[str, ...]] = (
        "min_chroma", "colour_radius", "min_region_frac", "max_region_frac", "max_proposals",
        "motion_step",
    )

    def __init__(self, config: Mapping[str, Any] | None = None, *, device: str = "cpu",
                 random_init: bool = False):
        super().__init__(config, device=device, random_init=random_init)
        self._video: weakref.ref[Video] | None = None
        self._prepared: dict[int, cr.ColourFrame] = {}

    # -- helpers ---------------------------------------------------------------------------
    def _frame(self, video: Video, t: int) -> cr.ColourFrame:
        """Frame t prepared for colour analysis. The current video's prepared frames are kept
        (a working set of decoded pixels, not of results; another video replaces it)."""
        if self._video is None or self._video() is not video:
            self._video, self._prepared = weakref.ref(video), {}
        cf = self._prepared.get(t)
        if cf is None:
            cf = self._prepared[t] = cr.prepare(video.frame(t), blur=self.config["blur"],
                                                ab_bin=self.config["ab_bin"])
        return cf

    def _search(self, size: tuple[int, int]) -> int:
        return max(2, int(round(self.config["search_frac"] * min(size))))

    def _motion(self, region: cr.Region, lut: np.ndarray, neighbours: list[tuple[int, cr.ColourFrame]],
                radius: int) -> tuple[float, float] | None:
        """Mean displacement per frame (px) of a region to its neighbour frames (None if none
        is found): its colour label's pixels there, matched with the region's template."""
        template = np.pad(region.mask, 3).astype(np.float32)
        label = region.label
        moves = []
        for step, cf in neighbours:
            def likelihood_at(x0: int, y0: int, x1: int, y1: int, cf=cf) -> np.ndarray:
                idx = cr.crop_padded(cf.index, x0, y0, x1, y1, cf.nb * cf.nb)
                return (lut[idx] == label).astype(np.float32)

            dx, dy, coverage = cr.match_shift(likelihood_at, template, region.x0 - 3, region.y0 - 3,
                                              radius, cf.size)
            if coverage >= self.config["lost_coverage"]:
                moves.append((dx / step, dy / step))
        return tuple(np.mean(moves, axis=0)) if moves else None

    # -- the four questions ----------------------------------------------------------------
    def propose(self, video: Video, t: int) -> Proposals:
        """Proposals on frame t: masks N×H×W bool, quality (N,) in [0, 1], features
        (N, classical_regions.FEATURE_DIM)."""
        c = self.config
        cf = self._frame(video, t)
        h, w = cf.size
        min_area = max(4, int(c["min_region_frac"] * h * w))
        lut = cr.colour_modes(cf, min_chroma=c["min_chroma"], min_count=min_area,
                              radius=c["colour_radius"])
        labels = lut[cf.index]
        regions = cr.components(labels, int(lut.max()) + 1, min_area=min_area,
                                max_area=int(c["max_region_frac"] * h * w))
        finest: list[cr.Region] = []  # components, with split ones replaced by their parts
        for r in list(regions):
            parts = cr.split_necks(r, min_area=min_area)
            regions += parts
            finest += parts or [r]
        step = c["motion_step"]
        neighbours = [(s - t, self._frame(video, s)) for s in (t - step, t + step)
                      if step > 0 and 0 <= s < len(video)]
        radius = self._search((h, w))
        for r in regions:
            r.feature = cr.describe(r, cf, self._motion(r, lut, neighbours, radius))
        regions += [cr.combine(g, (h, w)) for g in cr.group_by_shape(finest)]
        regions.sort(key=lambda r: -float(r.feature[cr.F_QUALITY]))
        regions = regions[:c["max_proposals"]]
        masks = (np.stack([r.full((h, w)) for r in regions]) if regions
                 else np.zeros((0, h, w), dtype=bool))
        feats = (np.stack([r.feature for r in regions]) if regions
                 else np.zeros((0, cr.FEATURE_DIM), dtype=np.float32))
        return Proposals(masks=masks, quality=feats[:, cr.F_QUALITY].astype(np.float32).copy(),
                         features=feats.astype(np.float32))

    def encode_text(self, text: str) -> np.ndarray:
        """(classical_text.TEXT_DIM,) float32 parse of the sentence."""
        return ct.parse(text)

    def score(self, proposals: Proposals, text_feature: np.ndarray) -> np.ndarray:
        """(N,) grounding scores in (0, 1]."""
        return ct.ground(proposals.features, np.asarray(text_feature, dtype=np.float32))

    def refine(self, video: Video, t: int, mask: np.ndarray) -> np.ndarray:
        """One GrabCut round on the mask's dilated box: the mask is probable foreground, its
        eroded interior sure foreground, the margin probable background, the rest sure
        background. An empty mask, or a box with no background left, is returned unchanged."""
        mask = np.asarray(mask, dtype=bool)
        box = bbox_xyxy(mask)
        if box is None:
            return mask
        rgb = video.frame(t)
        h, w = mask.shape
        x0, y0, x1, y1 = box
        m = max(4, int(round(self.config["grabcut_margin"] * max(x1 - x0, y1 - y0))))
        cx0, cy0, cx1, cy1 = max(x0 - 2 * m, 0), max(y0 - 2 * m, 0), min(x1 + 2 * m, w), min(y1 + 2 * m, h)
        crop = mask[cy0:cy1, cx0:cx1].astype(np.uint8)
        gc = np.full(crop.shape, cv2.GC_BGD, dtype=np.uint8)
        near = cv2.dilate(crop, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * m + 1, 2 * m + 1)))
        gc[near > 0] = cv2.GC_PR_BGD
        gc[crop > 0] = cv2.GC_PR_FGD
        gc[cv2.erode(crop, np.ones((5, 5), np.uint8)) > 0] = cv2.GC_FGD
        if not np.isin(gc, (cv2.GC_BGD, cv2.GC_PR_BGD)).any():
            return mask
        cv2.setRNGSeed(0)  # GrabCut's k-means initialisation draws from OpenCV's global RNG
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        cv2.grabCut(np.ascontiguousarray(rgb[cy0:cy1, cx0:cx1]), gc, None, bgd, fgd,
                    self.config["grabcut_iters"], cv2.GC_INIT_WITH_MASK)
        out = np.zeros_like(mask)
        out[cy0:cy1, cx0:cx1] = (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)
        return out

    def propagate(self, video: Video, t: int, seeds: np.ndarray) -> np.ndarray:
        """Seeds S×H×W bool on frame t → S×T×H×W bool, forward and backward in one pass."""
        seeds = np.asarray(seeds, dtype=bool)
        cfg = TrackConfig(search=self._search(seeds.shape[1:]), grow=self.config["grow_px"],
                          lost_coverage=self.config["lost_coverage"], max_coast=self.config["max_coast"])
        return track_seeds(lambda s: self._frame(video, s), len(video), t, seeds, cfg)

    def close(self) -> None:
        """Forget the current video's prepared frames."""
        self._video, self._prepared = None, {}
