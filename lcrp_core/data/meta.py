"""The ``meta_expressions.json`` format that Ref-YouTube-VOS, MeViS and ReferFormer's conversion
of Ref-DAVIS17 share, and the lazily loaded videos its entries describe.

``meta_expressions.json`` is ``{"videos": {video: {"expressions": {exp_id: {"exp": text,
...}}, "frames": [frame names without extension]}}}``; videos, expressions and frames keep
the file's order. Each benchmark adds its own keys to an expression (``obj_id``, ``anno_id``):
its reader (lcrp_core.data.davis, .mevis, .ytvos) checks them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lcrp_core.data.io import expect, get_field, image_size, read_json, read_rgb
from lcrp_core.data.model import Expression, GroundTruthObjects, Video
from lcrp_core.errors import DataError

META_NAME = "meta_expressions.json"


@dataclass(frozen=True)
class MetaVideo:
    """One checked video entry of a meta_expressions.json.

    ``expressions`` maps exp_id → the raw expression object (its ``exp`` is known to be a
    string; benchmark-specific keys are checked by each reader). ``key`` is the entry's key
    path (``videos.<name>``) for error messages.
    """

    name: str
    frames: tuple[str, ...]
    expressions: Mapping[str, Mapping[str, Any]]
    key: str


def check_name(name: str, *, path: Path, key: str) -> str:
    """``name`` if it can be used as one path component (video, expression or frame name)."""
    if not name or name in (".", "..") or any(c in name for c in "/\\\0"):
        raise DataError(f"{name!r} cannot be used as a file or folder name", path=path, key=key)
    return name


def read_meta_video(name: str, entry: Any, path: Path) -> MetaVideo:
    """One checked video entry ``videos.<name>`` of the meta_expressions.json ``path``."""
    key = f"videos.{name}"
    check_name(name, path=path, key=key)
    expect(entry, dict, path=path, key=key)
    frames = get_field(entry, "frames", list, path=path, key=key)
    for i, frame in enumerate(frames):
        check_name(expect(frame, str, path=path, key=f"{key}.frames[{i}]"), path=path,
                   key=f"{key}.frames[{i}]")
    if len(set(frames)) != len(frames):
        dup = next(f for i, f in enumerate(frames) if f in frames[:i])
        raise DataError(f"frame {dup!r} is listed twice", path=path, key=f"{key}.frames")
    if not frames:
        raise DataError("a video needs at least one frame", path=path, key=f"{key}.frames")
    expressions = get_field(entry, "expressions", dict, path=path, key=key)
    for exp_id, exp in expressions.items():
        exp_key = f"{key}.expressions.{exp_id}"
        check_name(exp_id, path=path, key=exp_key)
        expect(exp, dict, path=path, key=exp_key)
        if not get_field(exp, "exp", str, path=path, key=exp_key).strip():
            raise DataError("empty referring expression; expected a sentence", path=path,
                            key=f"{exp_key}.exp")
    return MetaVideo(name, tuple(frames), expressions, key)


def read_meta_expressions(path: Path, *, videos: Sequence[str] | None = None) -> dict[str, MetaVideo]:
    """The checked video entries of a meta_expressions.json, in file order (or in the order
    of ``videos``; an unknown name is a DataError listing it)."""
    data = expect(read_json(path), dict, path=path, key="(document)")
    entries = get_field(data, "videos", dict, path=path, key="")
    if videos is None:
        names = list(entries)
    else:
        names = list(dict.fromkeys(videos))
        missing = [n for n in names if n not in entries]
        if missing:
            raise DataError(f"video(s) {missing} not in this file ({len(entries)} videos)", path=path)
    return {name: read_meta_video(name, entries[name], path) for name in names}


def parse_obj_id(value: Any, *, path: Path, key: str) -> int:
    """An object id given as an integer or a decimal string ("1")."""
    expect(value, (int, str), path=path, key=key)
    if isinstance(value, str):
        if not value.strip().isdigit():
            raise DataError(f"expected an integer object id, got {value!r}", path=path, key=key)
        value = int(value)
    return value


def frame_loader(paths: Sequence[Path]) -> Callable[[int], np.ndarray]:
    """A Video.frame_loader reading frame t from ``paths[t]`` on each call."""
    paths = tuple(paths)
    size: list[tuple[int, int]] = []  # the first frame's (H, W), read once

    def load(t: int) -> np.ndarray:
        img = read_rgb(paths[t])
        if not size:
            size.append(image_size(paths[0]))
        if img.shape[:2] != size[0]:
            raise DataError(f"frame is {img.shape[0]}×{img.shape[1]}, the video's first frame "
                            f"{paths[0].name} is {size[0][0]}×{size[0][1]}", path=paths[t])
        return img

    return load


def make_video(meta: MetaVideo, frame_paths: Sequence[Path], expressions: Mapping[str, Expression], *,
               mask_loader: Callable[[Expression], np.ndarray] | None = None,
               objects_loader: Callable[[], GroundTruthObjects] | None = None) -> Video:
    """A lazily loaded Video for one checked meta entry."""
    return Video(meta.name, meta.frames, dict(expressions), frame_loader(frame_paths),
                 mask_loader=mask_loader, objects_loader=objects_loader)
