"""A deterministic synthetic RVOS benchmark in the MeViS or the Ref-DAVIS17 layout.

``generate(out, videos=10, seed=0)`` writes the MeViS layout (``layout="mevis"``, default split
``valid_u``, the split the MeViS reader reads by default)::

    out/synth.json                                   generation parameters (no timestamps)
    out/<split>/JPEGImages/<video>/<frame:05d>.jpg   frames (JPEG, quality 90, 4:2:0)
    out/<split>/mask_dict.json                       anno_id → per-frame COCO RLE (str counts) or null
    out/<split>/meta_expressions.json                {"videos": {video: {"expressions": {exp_id:
                                                      {"exp", "obj_id": [...], "anno_id": [...]}},
                                                      "frames": [...]}}}

``layout="ref-davis17"`` (default split ``valid``) writes the same videos as ReferFormer's
converted Ref-DAVIS17 folder::

    out/<split>/JPEGImages/<video>/<frame:05d>.jpg
    out/<split>/Annotations/<video>/<frame:05d>.png  palette label maps (DAVIS palette): the
                                                      annotated objects as ids 1..n, 0 elsewhere
    out/meta_expressions/<split>/meta_expressions.json
                                                     per annotated object (ids in order) four
                                                      expressions {"exp", "obj_id": "<id>"}: annotator
                                                      1 first-frame, 1 full-video, 2 first-frame,
                                                      2 full-video (ReferFormer's order)

Its annotated objects are up to two objects per video that are visible in the first frame and
have a unique description (DAVIS takes a video's objects from its first frame's labels); their
four expressions are drawn from that object's unique descriptions (repeated when it has fewer
than four).

Each video shows 4–6 moving, textured shapes (circle, square, triangle, star, diamond) in
several colours and three sizes over a textured background with small coloured specks, with
occlusions (a fixed depth order), objects entering and leaving the frame, illumination drift
and sensor noise. Every video contains distractors on purpose: a "twin" that shares the
target's colour and shape (and differs in size or motion), an object of the same colour and
another of the same shape. Sentences are built from colour, shape, size (absolute and
superlative), relative position and motion, and name their referents uniquely over the whole
video ("the small red circle", "the star moving left", "the blue square on the right",
"the two yellow triangles"); some refer to several objects.

The same (videos, seed, frames, size, split) gives byte-identical files: every random draw
comes from ``numpy.random.default_rng([seed, video, ...])``, JSON is written with sorted keys
and JPEGs with fixed encoder settings. The scene description (:func:`make_video`) is a pure
function, so tests can compare sentences with the objects they name.

Shapes: a frame is H×W×3 uint8 RGB; an object's visible mask is H×W bool.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

from lcrp_core.data import DEFAULT_SPLITS
from lcrp_core.data.io import write_label_png
from lcrp_core.errors import ConfigError, DataError, environment_error
from lcrp_core.masks import rle_encode

log = logging.getLogger("lcrp")

#: Format version of the generator: bump when the same parameters would give other files.
FORMAT = 1
MARKER = "synth.json"
#: Layouts the benchmark can be written in (dataset kinds whose reader reads it back).
LAYOUTS = ("mevis", "ref-davis17")

#: Object colours (sRGB) the generator paints with; each object is jittered by a few levels.
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (212, 38, 36),
    "orange": (238, 128, 24),
    "yellow": (232, 206, 34),
    "green": (44, 160, 64),
    "blue": (38, 78, 212),
    "purple": (138, 52, 184),
    "pink": (232, 104, 172),
}
SHAPES = ("circle", "square", "triangle", "star", "diamond")
#: Size category → half of the bounding-box extent as a fraction of min(H, W).
SIZES = {"small": 0.06, "medium": 0.085, "large": 0.115}
#: Motion → unit direction (x right, y down); "still" objects do not move.
MOTIONS = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0),
           "still": (0.0, 0.0)}
TEXTURES = ("plain", "stripes", "spots", "checker")

_PLURAL = {"circle": "circles", "square": "squares", "triangle": "triangles", "star": "stars",
           "diamond": "diamonds"}
_COUNT_WORDS = {2: "two", 3: "three", 4: "four", 5: "five"}
_MOTION_PHRASES = {
    "left": ("moving left", "moving to the left", "going left", "heading left"),
    "right": ("moving right", "moving to the right", "going right", "heading right"),
    "up": ("moving up", "going up", "moving upwards"),
    "down": ("moving down", "going down", "moving downwards"),
    "still": ("that stays still", "that is not moving", "standing still"),
}
#: Description kinds and how often they are drawn (harder, relational ones more often).
_KIND_WEIGHTS = {"colour_shape": 1.0, "colour": 0.7, "shape": 0.7, "size": 2.0, "motion": 3.0,
                 "shape_motion": 2.0, "superlative": 3.0, "position": 3.0, "group": 1.0}


@dataclass(frozen=True)
class SynthObject:
    """One object: appearance, size, depth (0 = front) and a straight trajectory with a wobble.

    ``radius`` is half the bounding-box extent in pixels; ``start`` the centre at frame 0;
    ``velocity`` pixels per frame.
    """

    obj_id: int
    colour: str
    shape: str
    size: str
    rgb: tuple[int, int, int]
    radius: float
    texture: str
    texture_seed: int
    depth: int
    motion: str
    start: tuple[float, float]
    velocity: tuple[float, float]
    wobble: tuple[float, float, float]  # amplitude (px), period (frames), phase (rad)

    def centre(self, t: int) -> tuple[float, float]:
        """Centre (x, y) in pixels at frame t (the wobble is across the direction of motion)."""
        amp, period, phase = self.wobble
        off = amp * math.sin(2 * math.pi * t / period + phase)
        vx, vy = self.velocity
        norm = math.hypot(vx, vy) or 1.0
        return (self.start[0] + vx * t - vy / norm * off, self.start[1] + vy * t + vx / norm * off)


@dataclass(frozen=True)
class SynthExpression:
    exp_id: str
    text: str
    obj_ids: tuple[int, ...]
    kind: str


@dataclass(frozen=True)
class SynthVideo:
    """A video's scene: everything rendering needs, deterministic from (seed, index)."""

    name: str
    seed: int
    index: int
    size: tuple[int, int]
    num_frames: int
    objects: tuple[SynthObject, ...]
    expressions: tuple[SynthExpression, ...]


# --- scene description -------------------------------------------------------------------

def parse_frames(value: int | Sequence[int] | str) -> tuple[int, int]:
    """(lo, hi) inclusive frame-count range from 8, (30, 60) or "30-60"."""
    try:
        if isinstance(value, str):
            parts = [int(p) for p in value.split("-")]
        elif isinstance(value, int):
            parts = [value]
        else:
            parts = [int(p) for p in value]
    except ValueError:
        raise ConfigError(f"expected a frame count N or a range LO-HI, got {value!r}",
                          key="frames") from None
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or not 2 <= parts[0] <= parts[1]:
        raise ConfigError(f"expected a frame count >= 2 or a range LO-HI with 2 <= LO <= HI, got {value!r}",
                          key="frames")
    return parts[0], parts[1]


def parse_size(value: str | Sequence[int]) -> tuple[int, int]:
    """(H, W) from "240x320" or (240, 320); both at least 64."""
    try:
        parts = ([int(p) for p in value.lower().split("x")] if isinstance(value, str)
                 else [int(p) for p in value])
    except ValueError:
        raise ConfigError(f"expected HxW such as 240x320, got {value!r}", key="size") from None
    if len(parts) != 2 or min(parts) < 64 or max(parts) > 4096:
        raise ConfigError(f"expected HxW with 64 <= H, W <= 4096, got {value!r}", key="size")
    return parts[0], parts[1]


def _pick(rng: np.random.Generator, options: Sequence, exclude: Sequence = ()):
    choices = [o for o in options if o not in exclude]
    return choices[int(rng.integers(len(choices)))]


def _in_frame_fraction(obj: SynthObject, size: tuple[int, int], num_frames: int) -> float:
    h, w = size
    inside = [0 <= x <= w and 0 <= y <= h for x, y in (obj.centre(t) for t in range(num_frames))]
    return float(np.mean(inside))


def _place(rng: np.random.Generator, *, radius: float, motion: str, size: tuple[int, int],
           num_frames: int) -> tuple[tuple[float, float], tuple[float, float], tuple[float, float, float]]:
    """Start, velocity and wobble: still objects anywhere; moving ones either cross in from
    outside the frame (entering) or start inside (and may leave)."""
    h, w = size
    dx, dy = MOTIONS[motion]
    speed = 0.0 if motion == "still" else float(rng.uniform(0.006, 0.013)) * min(h, w)
    vel = (dx * speed, dy * speed)
    if motion != "still" and rng.random() < 0.3:  # enters from the edge behind it
        lead = float(rng.uniform(0.0, 0.35)) * num_frames * speed + radius
        x = w / 2 - dx * (w / 2 + lead) if dx else float(rng.uniform(radius, w - radius))
        y = h / 2 - dy * (h / 2 + lead) if dy else float(rng.uniform(radius, h - radius))
    else:
        x, y = float(rng.uniform(radius, w - radius)), float(rng.uniform(radius, h - radius))
    wobble = (0.0, 1.0, 0.0) if motion == "still" else (
        float(rng.uniform(0.0, 0.08)) * radius, float(rng.uniform(16, 32)), float(rng.uniform(0, 2 * math.pi)))
    return (x, y), vel, wobble


def _objects(rng: np.random.Generator, size: tuple[int, int], num_frames: int) -> list[SynthObject]:
    """4–6 objects: target (c0, s0), a twin (c0, s0) differing in size or motion, a colour
    distractor (c0, other shape), a shape distractor (other colour, s0), then random ones."""
    colours, shapes = list(PALETTE), list(SHAPES)
    c0, s0 = _pick(rng, colours), _pick(rng, shapes)
    specs = [(c0, s0), (c0, s0) if rng.random() < 0.75 else (c0, _pick(rng, shapes, [s0])),
             (c0, _pick(rng, shapes, [s0])), (_pick(rng, colours, [c0]), s0)]
    specs += [(_pick(rng, colours), _pick(rng, shapes)) for _ in range(int(rng.integers(0, 3)))]
    order = rng.permutation(len(specs))  # depth order: 0 is in front
    objects: list[SynthObject] = []
    for i, (colour, shape) in enumerate(specs):
        twin = [o for o in objects if (o.colour, o.shape) == (colour, shape)]
        for _ in range(50):
            size_name = _pick(rng, list(SIZES))
            motion = _pick(rng, list(MOTIONS))
            if any(o.size == size_name and o.motion == motion for o in twin):
                continue  # same-looking objects must differ in size or motion
            radius = SIZES[size_name] * min(size) * float(rng.uniform(0.92, 1.08))
            start, vel, wobble = _place(rng, radius=radius, motion=motion, size=size,
                                        num_frames=num_frames)
            rgb = tuple(int(np.clip(c + rng.integers(-12, 13), 0, 255)) for c in PALETTE[colour])
            obj = SynthObject(
                obj_id=i, colour=colour, shape=shape, size=size_name, rgb=rgb, radius=radius,
                texture=_pick(rng, TEXTURES), texture_seed=int(rng.integers(2**31)),
                depth=int(order[i]), motion=motion, start=start, velocity=vel, wobble=wobble)
            if _in_frame_fraction(obj, size, num_frames) >= 0.45:
                break
        objects.append(obj)
    return objects


def _matches(obj: SynthObject, attrs: dict[str, str]) -> bool:
    return all(getattr(obj, k) == v for k, v in attrs.items())


def _relation_holds(target: SynthObject, others: Sequence[SynthObject], axis: int, sign: int,
                    size: tuple[int, int], num_frames: int) -> bool:
    """Target is ahead of every other object along ``axis`` (0: x, 1: y; sign −1: smaller) by at
    least its radius on every frame where both centres are inside the frame (and ≥1 such frame)."""
    h, w = size
    seen = False
    for t in range(num_frames):
        a = target.centre(t)
        if not (0 <= a[0] <= w and 0 <= a[1] <= h):
            continue
        for o in others:
            b = o.centre(t)
            if not (0 <= b[0] <= w and 0 <= b[1] <= h):
                continue
            seen = True
            if sign * (a[axis] - b[axis]) < target.radius:
                return False
    return seen


def _singular_candidates(rng: np.random.Generator, objects: Sequence[SynthObject],
                         size: tuple[int, int], num_frames: int) -> list[tuple[str, str, tuple[int, ...]]]:
    """(kind, text, obj_ids) for descriptions that pick exactly one object over the video."""
    out = []
    for o in objects:
        motion = _pick(rng, _MOTION_PHRASES[o.motion])
        noun = _pick(rng, ("object", "shape", "one"))
        plain = {
            "colour_shape": ({"colour": o.colour, "shape": o.shape}, f"the {o.colour} {o.shape}"),
            "colour": ({"colour": o.colour}, f"the {o.colour} {noun}"),
            "shape": ({"shape": o.shape}, f"the {o.shape}"),
            "motion": ({"colour": o.colour, "shape": o.shape, "motion": o.motion},
                       f"the {o.colour} {o.shape} {motion}"),
            "shape_motion": ({"shape": o.shape, "motion": o.motion}, f"the {o.shape} {motion}"),
        }
        if o.size != "medium":
            word = "small" if o.size == "small" else _pick(rng, ("big", "large"))
            plain["size"] = ({"colour": o.colour, "shape": o.shape, "size": o.size},
                             f"the {word} {o.colour} {o.shape}")
        for kind, (attrs, text) in plain.items():
            if [p.obj_id for p in objects if _matches(p, attrs)] == [o.obj_id]:
                out.append((kind, text, (o.obj_id,)))
        twins = [p for p in objects if p is not o and (p.colour, p.shape) == (o.colour, o.shape)]
        if not twins:
            continue
        if all(o.radius > 1.3 * p.radius for p in twins):
            out.append(("superlative", f"the {_pick(rng, ('biggest', 'largest'))} {o.colour} {o.shape}",
                        (o.obj_id,)))
        if all(o.radius * 1.3 < p.radius for p in twins):
            out.append(("superlative", f"the smallest {o.colour} {o.shape}", (o.obj_id,)))
        for word, axis, sign in (("left", 0, -1), ("right", 0, 1), ("top", 1, -1), ("bottom", 1, 1)):
            if _relation_holds(o, twins, axis, sign, size, num_frames):
                prep = "on the" if axis == 0 else "at the"
                text = (f"the {o.colour} {o.shape} {prep} {word}" if rng.random() < 0.6
                        else f"the {word} {o.colour} {o.shape}")
                out.append(("position", text, (o.obj_id,)))
    return out


def _group_candidates(objects: Sequence[SynthObject]) -> list[tuple[str, str, tuple[int, ...]]]:
    """Descriptions of every object of one colour (and shape) when there are 2–5 of them."""
    out = []
    for colour in PALETTE:
        same = [o for o in objects if o.colour == colour]
        if 2 <= len(same) <= 5:
            noun = "objects" if len({o.shape for o in same}) > 1 else _PLURAL[same[0].shape]
            out.append(("group", f"the {_COUNT_WORDS[len(same)]} {colour} {noun}",
                        tuple(o.obj_id for o in same)))
        for shape in SHAPES:
            both = [o for o in same if o.shape == shape]
            if 2 <= len(both) <= 5 and len(both) < len(same):
                count = "both" if len(both) == 2 and len(same) > 2 else f"the {_COUNT_WORDS[len(both)]}"
                out.append(("group", f"{count} {colour} {_PLURAL[shape]}", tuple(o.obj_id for o in both)))
    return out


def _expressions(rng: np.random.Generator, objects: Sequence[SynthObject], size: tuple[int, int],
                 num_frames: int) -> list[SynthExpression]:
    """3–5 expressions drawn (weighted by kind) from the unique descriptions; at most two per
    referent set, distinct texts, and a group expression in about half of the videos."""
    pool = _singular_candidates(rng, objects, size, num_frames)
    groups = _group_candidates(objects)
    chosen: list[tuple[str, str, tuple[int, ...]]] = []
    if groups and rng.random() < 0.5:
        chosen.append(groups[int(rng.integers(len(groups)))])
    pool += [g for g in groups if g not in chosen]
    want = int(rng.integers(3, 6))
    while len(chosen) < want and pool:
        weights = np.array([_KIND_WEIGHTS[k] for k, _, _ in pool])
        kind, text, ids = pool.pop(int(rng.choice(len(pool), p=weights / weights.sum())))
        if sum(c[2] == ids for c in chosen) >= 2 or any(c[1] == text for c in chosen):
            continue
        chosen.append((kind, text, ids))
    return [SynthExpression(str(i), text, ids, kind) for i, (kind, text, ids) in enumerate(chosen)]


def davis_expressions(scene: SynthVideo, visible0: Sequence[bool]) -> list[tuple[int, list[str]]]:
    """The Ref-DAVIS17 layout's annotated objects of ``scene`` (indices into ``scene.objects``,
    in order) and their four expressions; ``visible0[i]`` says whether object i shows in frame 0."""
    rng = np.random.default_rng([scene.seed, scene.index, 4])
    texts: dict[int, list[str]] = {}
    for _, text, ids in _singular_candidates(rng, scene.objects, scene.size, scene.num_frames):
        if visible0[ids[0]] and text not in texts.setdefault(ids[0], []):
            texts[ids[0]].append(text)
    chosen = sorted(texts)
    if len(chosen) > 2:
        chosen = sorted(int(i) for i in rng.choice(chosen, size=2, replace=False))
    out = []
    for i in chosen:
        pool = [texts[i][k] for k in rng.permutation(len(texts[i]))]
        out.append((i, [pool[k % len(pool)] for k in range(4)]))
    return out


def make_video(seed: int, index: int, *, frames: tuple[int, int] = (30, 60),
               size: tuple[int, int] = (240, 320)) -> SynthVideo:
    """The scene of video ``index`` of the benchmark with ``seed`` (pure; no pixels)."""
    rng = np.random.default_rng([seed, index, 1])
    num_frames = int(rng.integers(frames[0], frames[1] + 1))
    objects = _objects(rng, size, num_frames)
    exprs = _expressions(rng, objects, size, num_frames)
    return SynthVideo(name=f"synth_{index:03d}", seed=seed, index=index, size=size,
                      num_frames=num_frames, objects=tuple(objects), expressions=tuple(exprs))


# --- rendering ----------------------------------------------------------------------------

def shape_polygon(shape: str, centre: tuple[float, float], radius: float) -> np.ndarray:
    """(K, 2) float vertices (x, y) of a shape whose bounding box is about 2·radius wide."""
    if shape == "circle":
        a = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        pts = np.stack([np.cos(a), np.sin(a)], axis=1)
    elif shape == "square":
        pts = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=float)
    elif shape == "triangle":
        s = math.sqrt(3) / 2
        pts = np.array([[0, -s], [1, s], [-1, s]], dtype=float)
    elif shape == "diamond":
        pts = np.array([[0, -1], [1, 0], [0, 1], [-1, 0]], dtype=float)
    elif shape == "star":
        a = -np.pi / 2 + np.arange(10) * np.pi / 5
        r = np.where(np.arange(10) % 2 == 0, 1.0, 0.5)
        pts = np.stack([r * np.cos(a), r * np.sin(a)], axis=1)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return pts * radius + np.asarray(centre, dtype=float)


def _alpha(shape: str, centre: tuple[float, float], radius: float, size: tuple[int, int]) -> np.ndarray:
    """H×W uint8 anti-aliased coverage of a shape (0..255)."""
    canvas = np.zeros(size, dtype=np.uint8)
    pts = np.round(shape_polygon(shape, centre, radius) * 16).astype(np.int32)
    cv2.fillPoly(canvas, [pts], 255, lineType=cv2.LINE_AA, shift=4)
    return canvas


def _background(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """H×W×3 float32: muted base colour, low-frequency shading, a fine texture and small
    saturated specks (confetti) in the objects' colours."""
    h, w = size
    base = rng.uniform(95, 150) + rng.normal(0, 9, 3)
    low = cv2.resize(rng.standard_normal((4, 5)).astype(np.float32), (w, h),
                     interpolation=cv2.INTER_CUBIC)[..., None] * 16
    tint = cv2.resize(rng.standard_normal((3, 4, 3)).astype(np.float32), (w, h),
                      interpolation=cv2.INTER_CUBIC) * 5
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    kind = int(rng.integers(3))
    period = float(rng.uniform(7, 14))
    if kind == 0:
        fine = 7 * np.sin(2 * np.pi * (xx + yy) / period)
    elif kind == 1:
        fine = 6 * (((xx // period) + (yy // period)) % 2 * 2 - 1)
    else:
        fine = cv2.resize(rng.standard_normal((h // 6, w // 6)).astype(np.float32), (w, h),
                          interpolation=cv2.INTER_LINEAR) * 9
    img = (base + low + tint + fine[..., None]).astype(np.float32)
    colours = list(PALETTE.values())
    for _ in range(int(rng.integers(10, 26))):
        c = colours[int(rng.integers(len(colours)))]
        centre = (float(rng.uniform(0, w)), float(rng.uniform(0, h)))
        r = float(rng.uniform(0.005, 0.02)) * min(h, w)
        a = _alpha("circle", centre, r, size).astype(np.float32)[..., None] / 255
        img = img * (1 - a) + np.asarray(c, dtype=np.float32) * a
    return img


def _texture(obj: SynthObject, centre: tuple[float, float], box: tuple[int, int, int, int]) -> np.ndarray:
    """h×w×3 float32 appearance of an object over ``box`` (x0, y0, x1, y1), in object coordinates
    so the pattern moves with it."""
    x0, y0, x1, y1 = box
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    u, v = xx - centre[0], yy - centre[1]
    r = obj.radius
    rng = np.random.default_rng(obj.texture_seed)
    rgb = np.asarray(obj.rgb, dtype=np.float32)
    shade = 1 - 0.12 * np.clip((u * u + v * v) / (r * r), 0, 1.5)
    if obj.texture == "stripes":
        theta, period = rng.uniform(0, np.pi), rng.uniform(0.35, 0.6) * r
        shade = shade * (1 - 0.22 * (0.5 + 0.5 * np.sin(2 * np.pi * (u * np.cos(theta) + v * np.sin(theta)) / period)))
    elif obj.texture == "checker":
        cell = rng.uniform(0.3, 0.5) * r
        shade = shade * np.where(((u // cell) + (v // cell)) % 2 == 0, 1.0, 0.84)
    img = shade[..., None] * rgb
    if obj.texture == "spots":
        light = 0.15 * rgb + 0.85 * 235
        for _ in range(int(rng.integers(2, 5))):
            sx, sy = rng.uniform(-0.5, 0.5, 2) * r
            sr = rng.uniform(0.15, 0.4) * r
            spot = (u - sx) ** 2 + (v - sy) ** 2 <= sr * sr
            img[spot] = light
    return img.astype(np.float32)


def render(video: SynthVideo) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Per frame: (H×W×3 uint8 RGB, O×H×W bool visible masks in ``video.objects`` order)."""
    h, w = video.size
    rng = np.random.default_rng([video.seed, video.index, 2])
    background = _background(rng, video.size)
    gain_amp, gain_period, gain_phase = rng.uniform(0.05, 0.15), rng.uniform(20, 60), rng.uniform(0, 2 * np.pi)
    grad_amp, grad_period, grad_phase = rng.uniform(0.05, 0.2), rng.uniform(20, 60), rng.uniform(0, 2 * np.pi)
    noise_sigma = float(rng.uniform(3, 7))
    ramp = (np.arange(w, dtype=np.float32) / w - 0.5)[None, :, None]
    back_to_front = sorted(range(len(video.objects)), key=lambda i: -video.objects[i].depth)
    for t in range(video.num_frames):
        img = background.copy()
        full = np.zeros((len(video.objects), h, w), dtype=bool)
        for i in back_to_front:
            obj = video.objects[i]
            centre = obj.centre(t)
            pts = shape_polygon(obj.shape, centre, obj.radius)
            box = (max(int(pts[:, 0].min()) - 1, 0), max(int(pts[:, 1].min()) - 1, 0),
                   min(int(pts[:, 0].max()) + 2, w), min(int(pts[:, 1].max()) + 2, h))
            if box[0] >= box[2] or box[1] >= box[3]:
                continue
            alpha = _alpha(obj.shape, centre, obj.radius, video.size)
            a = alpha[box[1]:box[3], box[0]:box[2]].astype(np.float32)[..., None] / 255
            crop = img[box[1]:box[3], box[0]:box[2]]
            img[box[1]:box[3], box[0]:box[2]] = crop * (1 - a) + _texture(obj, centre, box) * a
            full[i] = alpha >= 128
        visible = np.zeros_like(full)
        covered = np.zeros((h, w), dtype=bool)
        for i in reversed(back_to_front):
            visible[i] = full[i] & ~covered
            covered |= full[i]
        gain = 1 + gain_amp * math.sin(2 * math.pi * t / gain_period + gain_phase)
        slope = grad_amp * math.sin(2 * math.pi * t / grad_period + grad_phase)
        img = img * (gain * (1 + slope * ramp))
        noise = np.random.default_rng([video.seed, video.index, 3, t]).standard_normal(
            (h, w, 3), dtype=np.float32)
        yield np.clip(img + noise_sigma * noise, 0, 255).round().astype(np.uint8), visible


# --- writing ------------------------------------------------------------------------------

def _marker(*, videos: int, seed: int, frames: tuple[int, int], size: tuple[int, int],
            split: str, layout: str) -> dict:
    return {"generator": "lcrp_core.data.synth", "format": FORMAT, "videos": videos, "seed": seed,
            "frames": list(frames), "size": list(size), "split": split, "layout": layout}


def _dump_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, sort_keys=True, separators=(",", ":")), encoding="utf-8")


def _write_davis_split(root: Path, scenes: Sequence[SynthVideo], split: str, progress: bool) -> None:
    meta: dict[str, dict] = {}
    for scene in tqdm(scenes, desc="synth", unit="video", disable=None if progress else True,
                      leave=False):
        frame_dir = root / split / "JPEGImages" / scene.name
        frame_dir.mkdir(parents=True)
        visible = []
        for t, (rgb, vis) in enumerate(render(scene)):
            Image.fromarray(rgb).save(frame_dir / f"{t:05d}.jpg", format="JPEG", quality=90,
                                      subsampling=2, optimize=False)
            visible.append(vis)
        annotated = davis_expressions(scene, [bool(m.any()) for m in visible[0]])
        expressions: dict[str, dict] = {}
        for label, (_, texts) in enumerate(annotated, start=1):
            for text in texts:
                expressions[str(len(expressions))] = {"exp": text, "obj_id": str(label)}
        for t, vis in enumerate(visible):
            labels = np.zeros(scene.size, dtype=np.uint8)
            for label, (i, _) in enumerate(annotated, start=1):
                labels[vis[i]] = label
            write_label_png(root / split / "Annotations" / scene.name / f"{t:05d}.png", labels)
        meta[scene.name] = {"frames": [f"{t:05d}" for t in range(scene.num_frames)],
                            "expressions": expressions}
    (root / "meta_expressions" / split).mkdir(parents=True)
    _dump_json(root / "meta_expressions" / split / "meta_expressions.json", {"videos": meta})


def _write_split(root: Path, scenes: Sequence[SynthVideo], split: str, progress: bool) -> None:
    split_dir = root / split
    mask_dict: dict[str, list] = {}
    meta: dict[str, dict] = {}
    anno = 0
    for scene in tqdm(scenes, desc="synth", unit="video", disable=None if progress else True,
                      leave=False):
        frame_dir = split_dir / "JPEGImages" / scene.name
        frame_dir.mkdir(parents=True)
        anno_ids = {o.obj_id: anno + k for k, o in enumerate(scene.objects)}
        anno += len(scene.objects)
        rles: dict[int, list] = {o.obj_id: [] for o in scene.objects}
        for t, (rgb, visible) in enumerate(render(scene)):
            Image.fromarray(rgb).save(frame_dir / f"{t:05d}.jpg", format="JPEG", quality=90,
                                      subsampling=2, optimize=False)
            for obj, mask in zip(scene.objects, visible, strict=True):
                rles[obj.obj_id].append(rle_encode(mask) if mask.any() else None)
        for obj_id, per_frame in rles.items():
            mask_dict[str(anno_ids[obj_id])] = per_frame
        meta[scene.name] = {
            "frames": [f"{t:05d}" for t in range(scene.num_frames)],
            "expressions": {e.exp_id: {"exp": e.text, "obj_id": list(e.obj_ids),
                                       "anno_id": [anno_ids[i] for i in e.obj_ids]}
                            for e in scene.expressions},
        }
    _dump_json(split_dir / "mask_dict.json", mask_dict)
    _dump_json(split_dir / "meta_expressions.json", {"videos": meta})


def generate(out: str | Path, *, videos: int = 10, seed: int = 0,
             frames: int | Sequence[int] | str = (30, 60), size: str | Sequence[int] = (240, 320),
             split: str | None = None, layout: str = "mevis", progress: bool = False) -> Path:
    """Write the benchmark to ``out`` (built in a temporary folder beside it, then renamed) in
    ``layout`` (one of LAYOUTS); ``split=None`` is the split that layout's reader reads by default.

    An existing ``out`` must be empty, or hold a benchmark generated with the same parameters
    (then nothing is written); anything else is refused. Returns ``out``.
    """
    out = Path(out)
    if not isinstance(videos, int) or isinstance(videos, bool) or videos < 1:
        raise ConfigError(f"expected a number of videos >= 1, got {videos!r}", key="videos")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"expected a seed >= 0, got {seed!r}", key="seed")
    if layout not in LAYOUTS:
        raise ConfigError(f"expected one of {list(LAYOUTS)}, got {layout!r}", key="layout")
    if split is None:
        split = DEFAULT_SPLITS[layout]
    if not split or "/" in split or split.startswith("."):
        raise ConfigError(f"expected a plain folder name, got {split!r}", key="split")
    frame_range, hw = parse_frames(frames), parse_size(size)
    marker = _marker(videos=videos, seed=seed, frames=frame_range, size=hw, split=split,
                     layout=layout)
    if out.exists():
        if not out.is_dir():
            raise DataError("exists and is not a folder", path=out)
        if any(out.iterdir()):
            try:
                same = json.loads((out / MARKER).read_text(encoding="utf-8")) == marker
            except (OSError, ValueError):
                same = False
            if same:
                log.info("synth: %s already holds this benchmark", out)
                return out
            raise DataError("folder exists and is not empty (and is not this benchmark: "
                            f"{MARKER} differs or is missing); choose another folder or remove it",
                            path=out)
    scenes = [make_video(seed, i, frames=frame_range, size=hw) for i in range(videos)]
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    except OSError as exc:
        raise DataError(f"cannot create the output folder ({exc.strerror or exc})", path=out) from None
    try:
        (_write_split if layout == "mevis" else _write_davis_split)(tmp, scenes, split, progress)
        _dump_json(tmp / MARKER, marker)
        tmp.chmod(0o755)  # mkdtemp's folder is private
        os.replace(tmp, out)  # an existing empty folder is replaced atomically
    except OSError as exc:  # disk full: nothing is left behind, one line names the folder
        shutil.rmtree(tmp, ignore_errors=True)
        if environment_error(exc) is None:
            raise
        raise DataError(f"cannot write the benchmark ({exc.strerror or exc})", path=out) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out

