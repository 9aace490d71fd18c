"""The ``meta_expressions.json`` format that Ref-YouTube-VOS, MeViS and ReferFormer's conversion
of Ref-DAVIS17 share, and the lazily loaded videos its entries describe.

``meta_expressions.json`` is ``{"videos": {video: {"expressions": {exp_id: {"exp": text,
...}}, "frames": [frame names without extension]}}}``; videos, expressions and frames keep
the file's order. Each benchmark adds its own keys to an expression (``obj_id``, ``anno_id``):
its reader (lcrp_core.data.davis, .mevis, .ytvos) checks them with a model of its own.

The file is checked with pydantic models (:class:`MetaFile`, :class:`MetaEntry`,
:class:`MetaExpression`) through :func:`lcrp_core.config.validate`: a fault is one DataError
naming the file and the key path (``videos.bike.expressions.3.exp``). A video's entry is
checked only when that video is read (``videos=`` restricts a reader).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import AfterValidator, TypeAdapter

from lcrp_core.config import DATA, DataModel, either, fail, validate
from lcrp_core.data.io import image_size, read_json, read_rgb
from lcrp_core.data.model import Expression, GroundTruthObjects, Video
from lcrp_core.errors import DataError

META_NAME = "meta_expressions.json"


@dataclass(frozen=True)
class MetaVideo:
    """One checked video entry of a meta_expressions.json.

    ``expressions`` maps exp_id → the raw expression object (checked as a
    :class:`MetaExpression`; benchmark-specific keys are checked by each reader's own model).
    ``key`` is the entry's key path (``videos.<name>``) for error messages.
    """

    name: str
    frames: tuple[str, ...]
    expressions: Mapping[str, Mapping[str, Any]]
    key: str


def _name(name: str) -> str:
    if not name or name in (".", "..") or any(c in name for c in "/\\\0"):
        raise fail(None, f"{name!r} cannot be used as a file or folder name")
    return name


def _frame_list(frames: list[str]) -> list[str]:
    if len(set(frames)) != len(frames):
        dup = next(f for i, f in enumerate(frames) if f in frames[:i])
        raise fail(None, f"frame {dup!r} is listed twice")
    if not frames:
        raise fail(None, "a video needs at least one frame")
    return frames


def _sentence(text: str) -> str:
    if not text.strip():
        raise fail(None, "empty referring expression; expected a sentence")
    return text


def _obj_id(value: int | str) -> int:
    if isinstance(value, str):
        if not value.strip().isdigit():
            raise fail(None, f"expected an integer object id, got {value!r}")
        return int(value)
    return value


#: a video, expression or frame name: usable as one path component
Name = Annotated[str, AfterValidator(_name)]
#: an object id given as an integer or a decimal string ("1"), read as an int
ObjId = Annotated[int | str, either(int, str), AfterValidator(_obj_id)]
#: the same, Ref-DAVIS17's way: its converted files hold strings, named first in the message
StrObjId = Annotated[str | int, either(str, int), AfterValidator(_obj_id)]


class MetaExpression(DataModel):
    """``videos.<video>.expressions.<exp_id>``: the keys all benchmarks share."""

    exp: Annotated[str, AfterValidator(_sentence)]


class MetaEntry(DataModel):
    """``videos.<video>``: its frames (names without extension, in order) and expressions."""

    frames: Annotated[list[Name], AfterValidator(_frame_list)]
    expressions: dict[Name, MetaExpression]


class MetaFile(DataModel):
    """The document: ``videos`` (each entry is checked only when its video is read)."""

    videos: dict[str, Any]


#: ``{video: entry}``: the video's name is checked with its entry
_VIDEO = TypeAdapter(dict[Name, MetaEntry])


def read_meta_file(path: Path) -> MetaFile:
    """The document of a meta_expressions.json, its video entries not yet checked."""
    return validate(MetaFile, read_json(path), source=path)


def read_meta_video(name: str, entry: Any, path: Path) -> MetaVideo:
    """One checked video entry ``videos.<name>`` of the meta_expressions.json ``path``."""
    checked = validate(_VIDEO, {name: entry}, source=path, at="videos", dialect=DATA)[name]
    return MetaVideo(name, tuple(checked.frames), entry["expressions"], f"videos.{name}")


def read_meta_expressions(path: Path, *, videos: Sequence[str] | None = None) -> dict[str, MetaVideo]:
    """The checked video entries of a meta_expressions.json, in file order (or in the order
    of ``videos``; an unknown name is a DataError listing it)."""
    entries = read_meta_file(path).videos
    if videos is None:
        names = list(entries)
    else:
        names = list(dict.fromkeys(videos))
        missing = [n for n in names if n not in entries]
        if missing:
            raise DataError(f"video(s) {missing} not in this file ({len(entries)} videos)", path=path)
    return {name: read_meta_video(name, entries[name], path) for name in names}


def read_expressions(adapter: TypeAdapter[dict[str, Any]], meta: MetaVideo, path: Path) -> dict[str, Any]:
    """``meta``'s expressions checked with a reader's ``adapter`` (``dict[str, <its model>]``)."""
    return validate(adapter, meta.expressions, source=path, at=f"{meta.key}.expressions",
                    dialect=DATA)


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
