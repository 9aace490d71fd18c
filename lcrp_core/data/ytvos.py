"""Ref-YouTube-VOS reader, and the ``meta_expressions.json`` format it shares with MeViS and
with ReferFormer's conversion of Ref-DAVIS17.

Layout (kind ``"ref-youtube-vos"``, default split ``valid``)::

    <root>/<split>/JPEGImages/<video>/<frame>.jpg
    <root>/meta_expressions/<split>/meta_expressions.json
    <root>/meta_expressions/test/meta_expressions.json      (optional, see below)

``meta_expressions.json`` is ``{"videos": {video: {"expressions": {exp_id: {"exp": text,
...}}, "frames": [frame names without extension]}}}``; videos, expressions and frames keep
the file's order. The competition's ``valid`` file also lists the 305 test videos (whose
frames are not in ``valid/JPEGImages``); as in ReferFormer's ``inference_ytvos.py`` the
videos of ``meta_expressions/test/meta_expressions.json`` are dropped when that file exists.
There is no public ground truth: predictions are scored by uploading a submission zip
(:func:`lcrp_core.data.writers.write_submission_zip`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lcrp_core.data.io import (
    expect,
    get_field,
    image_size,
    read_json,
    read_rgb,
    require_dir,
    require_files,
)
from lcrp_core.data.model import Dataset, Expression, GroundTruthObjects, Video
from lcrp_core.errors import DataError

KIND = "ref-youtube-vos"
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


def _meta_video(name: str, entry: Any, path: Path) -> MetaVideo:
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
    return {name: _meta_video(name, entries[name], path) for name in names}


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


def _test_videos(root: Path) -> set[str]:
    """The video names of meta_expressions/test/meta_expressions.json."""
    path = root / "meta_expressions" / "test" / META_NAME
    data = expect(read_json(path), dict, path=path, key="(document)")
    return set(get_field(data, "videos", dict, path=path, key=""))


def read_ref_youtube_vos(root: str | Path, split: str = "valid", *,
                         videos: Sequence[str] | None = None) -> Dataset:
    """Ref-YouTube-VOS ``split`` under ``root`` (no ground truth). Frames load lazily; the
    existence of every listed frame is checked now."""
    root = require_dir(root, "dataset root")
    meta_path = require_dir(root / "meta_expressions" / split, "split", list_siblings=True) / META_NAME
    frame_root = require_dir(root / split / "JPEGImages", "frame")
    meta = read_meta_expressions(meta_path, videos=videos)
    has_test_meta = (root / "meta_expressions" / "test" / META_NAME).is_file()
    if videos is None and split == "valid" and has_test_meta:
        test = _test_videos(root)
        meta = {name: m for name, m in meta.items() if name not in test}
    out = {}
    for m in meta.values():
        if split == "valid" and not has_test_meta and not (frame_root / m.name).is_dir():
            raise DataError("frame folder not found; the competition's valid file also lists the "
                            "test videos: put meta_expressions/test/meta_expressions.json beside "
                            "it so they are skipped", path=frame_root / m.name)
        exps = {}
        for exp_id, e in m.expressions.items():
            key = f"{m.key}.expressions.{exp_id}"
            obj_ids = ((parse_obj_id(e["obj_id"], path=meta_path, key=f"{key}.obj_id"),)
                       if "obj_id" in e else ())
            exps[exp_id] = Expression(exp_id, e["exp"], obj_ids)
        paths = require_files(frame_root / m.name, m.frames, ".jpg", what="frame")
        out[m.name] = make_video(m, paths, exps)
    return Dataset(KIND, root, split, out)
