"""The classical backend's language side: a rule-based parse of a referring sentence into a
fixed-length vector, and the grounding of that vector on measured region descriptors.

Text vector layout (``TEXT_DIM`` float32; indices below): a one-hot colour, a one-hot shape,
size words (small, large), superlatives (biggest, smallest), relative positions (left, right,
top, bottom), motion (moving left/right/up/down, moving at all, still), the count (0 when the
sentence gives none) and a plural flag.

Grounding multiplies one factor in (0, 1] per constraint the sentence makes (a floor keeps one
failed constraint from erasing the others); relative terms (biggest, leftmost, "on the left")
compare the proposals of the frame that satisfy the other constraints.
"""

from __future__ import annotations

import re

import cv2
import numpy as np

from lcrp_core.backends import classical_regions as cr

#: Colour names with a conventional sRGB value each (their Lab values are the prototypes).
COLOUR_RGB: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30), "orange": (245, 135, 20), "yellow": (240, 215, 30),
    "green": (40, 165, 60), "cyan": (20, 190, 210), "blue": (35, 75, 220),
    "purple": (135, 45, 185), "pink": (240, 105, 175), "brown": (130, 75, 35),
    "white": (235, 235, 235), "gray": (128, 128, 128), "black": (20, 20, 20),
}
COLOUR_NAMES = tuple(COLOUR_RGB)
_COLOUR_WORDS = {**{c: c for c in COLOUR_NAMES}, "crimson": "red", "scarlet": "red",
                 "golden": "yellow", "gold": "yellow", "lime": "green", "turquoise": "cyan",
                 "navy": "blue", "violet": "purple", "magenta": "pink", "grey": "gray"}
_SHAPE_WORDS = {"circle": "circle", "circles": "circle", "ball": "circle", "balls": "circle",
                "disc": "circle", "discs": "circle", "disk": "circle", "disks": "circle",
                "dot": "circle", "dots": "circle", "square": "square", "squares": "square",
                "box": "square", "boxes": "square", "block": "square", "blocks": "square",
                "triangle": "triangle", "triangles": "triangle", "star": "star", "stars": "star",
                "diamond": "diamond", "diamonds": "diamond", "rhombus": "diamond"}
_GENERIC_PLURALS = {"objects", "shapes", "things", "ones", "items"}
_SMALL = {"small", "little", "tiny", "smaller"}
_LARGE = {"big", "large", "huge", "bigger", "larger"}
_BIGGEST = {"biggest", "largest"}
_SMALLEST = {"smallest", "tiniest"}
_POSITION = {"left": "left", "leftmost": "left", "right": "right", "rightmost": "right",
             "top": "top", "topmost": "top", "upper": "top", "uppermost": "top",
             "bottom": "bottom", "bottommost": "bottom", "lower": "bottom", "lowest": "bottom"}
_MOVE_VERBS = {"moving", "move", "moves", "going", "goes", "heading", "heads", "travelling",
               "traveling", "drifting", "sliding", "running", "flying", "floating", "rolling",
               "passing", "crossing"}
_DIRECTIONS = {"left": "left", "leftward": "left", "leftwards": "left", "right": "right",
               "rightward": "right", "rightwards": "right", "up": "up", "upward": "up",
               "upwards": "up", "top": "up", "down": "down", "downward": "down",
               "downwards": "down", "bottom": "down"}
_FILLER = {"to", "the", "towards", "toward", "its", "their", "slowly", "quickly", "fast", "of"}
_STILL = {"still", "static", "stationary", "motionless", "immobile", "unmoving", "resting",
          "stopped"}
_COUNTS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "both": 2, "pair": 2}

# text vector layout
T_COLOUR = 0
T_SHAPE = T_COLOUR + len(COLOUR_NAMES)
T_SMALL = T_SHAPE + len(cr.SHAPE_NAMES)
T_LARGE, T_BIGGEST, T_SMALLEST = T_SMALL + 1, T_SMALL + 2, T_SMALL + 3
T_LEFT, T_RIGHT, T_TOP, T_BOTTOM = range(T_SMALL + 4, T_SMALL + 8)
T_MOVE_LEFT, T_MOVE_RIGHT, T_MOVE_UP, T_MOVE_DOWN, T_MOVING, T_STILL = range(T_SMALL + 8, T_SMALL + 14)
T_COUNT, T_PLURAL = T_SMALL + 14, T_SMALL + 15
TEXT_DIM = T_SMALL + 16

_POS_INDEX = {"left": T_LEFT, "right": T_RIGHT, "top": T_TOP, "bottom": T_BOTTOM}
_MOVE_INDEX = {"left": T_MOVE_LEFT, "right": T_MOVE_RIGHT, "up": T_MOVE_UP, "down": T_MOVE_DOWN}


def parse(text: str) -> np.ndarray:
    """(TEXT_DIM,) float32 vector of a sentence (unknown words are ignored)."""
    words = re.findall(r"[a-z]+|\d+", text.lower())
    v = np.zeros(TEXT_DIM, dtype=np.float32)
    i = 0
    while i < len(words):
        w = words[i]
        if w in _MOVE_VERBS:
            j = i + 1
            while j < len(words) and words[j] in _FILLER:
                j += 1
            negated = i > 0 and words[i - 1] in {"not", "never", "isn", "t"}
            if negated:
                v[T_STILL] = 1
            elif j < len(words) and words[j] in _DIRECTIONS:
                v[_MOVE_INDEX[_DIRECTIONS[words[j]]]] = 1
                i = j
            else:
                v[T_MOVING] = 1
        elif w in _STILL and not (i + 1 < len(words) and words[i + 1] in _MOVE_VERBS):
            v[T_STILL] = 1
        elif w in _COLOUR_WORDS:
            v[T_COLOUR + COLOUR_NAMES.index(_COLOUR_WORDS[w])] = 1
        elif w in _SHAPE_WORDS:
            v[T_SHAPE + cr.SHAPE_NAMES.index(_SHAPE_WORDS[w])] = 1
            v[T_PLURAL] = max(v[T_PLURAL], float(w != _SHAPE_WORDS[w] and w.endswith("s")
                                                   and w not in {"rhombus"}))
        elif w in _GENERIC_PLURALS:
            v[T_PLURAL] = 1
        elif w in _BIGGEST:
            v[T_BIGGEST] = 1
        elif w in _SMALLEST:
            v[T_SMALLEST] = 1
        elif w in _SMALL:
            v[T_SMALL] = 1
        elif w in _LARGE:
            v[T_LARGE] = 1
        elif w in _POSITION:
            v[_POS_INDEX[_POSITION[w]]] = 1
        elif w in _COUNTS or w.isdigit():
            count = _COUNTS.get(w) or int(w)
            if count >= 2:
                v[T_COUNT], v[T_PLURAL] = count, 1
        elif w == "all":
            v[T_PLURAL] = 1
        i += 1
    return v


def _polar(lab: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lightness, chroma and hue (degrees) of N×3 8-bit Lab values."""
    a, b = lab[:, 1] - 128.0, lab[:, 2] - 128.0
    return lab[:, 0], np.hypot(a, b), np.degrees(np.arctan2(b, a))


_PROTO_L, _PROTO_CHROMA, _PROTO_HUE = _polar(cv2.cvtColor(
    np.array([list(COLOUR_RGB.values())], dtype=np.uint8), cv2.COLOR_RGB2LAB)[0].astype(np.float64))
_ACHROMATIC = _PROTO_CHROMA < 15
_FLOOR = 0.02
#: "small" / "large": half the box extent below / above these fractions of min(H, W).
SMALL_BELOW, LARGE_ABOVE = 0.075, 0.1
#: Shape evidence counts for nothing below the first half-extent and fully above the second.
SHAPE_TRUST = (0.02, 0.06)


def colour_probabilities(lab: np.ndarray) -> np.ndarray:
    """N×C p(colour name | mean Lab) for N×3 8-bit Lab means: a softmax over the names of
    distances in hue (σ 12°) and lightness (σ 45) for colours, in chroma (σ 10) and lightness
    (σ 40) for white, gray and black; weakly coloured regions lean to the achromatic names."""
    light, chroma, hue = _polar(np.asarray(lab, dtype=np.float64))
    dh = np.abs((hue[:, None] - _PROTO_HUE[None] + 180) % 360 - 180)
    dl = light[:, None] - _PROTO_L[None]
    colourful = (dh / 12) ** 2 + (dl / 45) ** 2 + (np.maximum(0, 30 - chroma)[:, None] / 8) ** 2
    grey = (chroma[:, None] / 10) ** 2 + (dl / 40) ** 2
    d2 = np.where(_ACHROMATIC[None], grey, colourful)
    logits = -0.5 * d2
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _motion_factor(f: np.ndarray, text: np.ndarray) -> np.ndarray:
    vx, vy, ok = f[:, cr.F_VX], f[:, cr.F_VY], f[:, cr.F_MOTION_OK] > 0
    speed = np.hypot(vx, vy)
    factor = np.ones(len(f))
    for name, idx in _MOVE_INDEX.items():
        if text[idx]:
            dx, dy = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}[name]
            along = vx * dx + vy * dy
            across = np.abs(vx * dy - vy * dx)
            factor *= _sigmoid((along - 0.003) / 0.0012) * _sigmoid((along - across) / 0.002)
    still = np.exp(-(speed / 0.003) ** 2)
    if text[T_STILL]:
        factor *= still
    if text[T_MOVING]:
        factor *= 1 - still
    return np.where(ok, factor, 0.5) if text[T_MOVE_LEFT:T_STILL + 1].any() else factor


def _relative(values: np.ndarray, cand: np.ndarray, *, smaller_first: bool, scale: float) -> np.ndarray:
    """1 for the candidate with the extreme value, decaying with the distance to it."""
    v = values if smaller_first else -values
    best = v[cand].min()
    return np.where(cand, np.exp(-np.maximum(v - best, 0) / scale), 1.0)


def ground(features: np.ndarray, text: np.ndarray) -> np.ndarray:
    """(N,) grounding scores in (0, 1] of N×FEATURE_DIM region descriptors for a text vector."""
    f = np.asarray(features, dtype=np.float64)
    n = len(f)
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    base = np.ones(n)
    colours = text[T_COLOUR:T_SHAPE]
    if colours.any():
        p = colour_probabilities(f[:, [cr.F_L, cr.F_A, cr.F_B]])
        base *= np.maximum(p @ colours, _FLOOR)
    size = f[:, cr.F_SIZE]
    shapes = text[T_SHAPE:T_SMALL]
    if shapes.any():
        # a speck's outline says little about its shape: trust it in proportion to its size
        trust = np.clip((size - SHAPE_TRUST[0]) / (SHAPE_TRUST[1] - SHAPE_TRUST[0]), 0, 1)
        p_shape = trust[:, None] * f[:, cr.F_SHAPE_P:] + (1 - trust[:, None]) / len(cr.SHAPE_NAMES)
        base *= np.maximum(p_shape @ shapes, _FLOOR)
    if text[T_SMALL]:
        base *= np.maximum(_sigmoid((SMALL_BELOW - size) / 0.005), _FLOOR)
    if text[T_LARGE]:
        base *= np.maximum(_sigmoid((size - LARGE_ABOVE) / 0.005), _FLOOR)
    base *= np.maximum(_motion_factor(f, text), _FLOOR)
    parts = f[:, cr.F_PARTS]
    if text[T_PLURAL]:
        count = text[T_COUNT]
        base *= (np.where(parts == count, 1.0, 0.25 ** np.abs(parts - count)) if count >= 2
                 else np.where(parts >= 2, 1.0, 0.15))
    else:
        base *= np.where(parts == 1, 1.0, 0.1)
    score = base.copy()
    cand = base >= 0.5 * base.max()
    if text[T_BIGGEST]:
        score *= _relative(f[:, cr.F_SIZE], cand, smaller_first=False, scale=0.01)
    if text[T_SMALLEST]:
        score *= _relative(f[:, cr.F_SIZE], cand, smaller_first=True, scale=0.01)
    for idx, col, first in ((T_LEFT, cr.F_CX, True), (T_RIGHT, cr.F_CX, False),
                            (T_TOP, cr.F_CY, True), (T_BOTTOM, cr.F_CY, False)):
        if text[idx]:
            score *= _relative(f[:, col], cand, smaller_first=first, scale=0.08)
    return np.maximum(score, 1e-6).astype(np.float32)
