"""MeViS reader: frames, multi-object referring expressions and COCO-RLE ground truth.

Layout (kind ``"mevis"``, default split ``valid_u``)::

    <root>/<split>/JPEGImages/<video>/<frame>.jpg
    <root>/<split>/meta_expressions.json
    <root>/<split>/mask_dict.json          (train and valid_u; absent for valid)

Expressions are ``{"exp": text, "obj_id": [ints], "anno_id": [ids]}``; one expression may
refer to several objects (or, in MeViS v2, to none). ``mask_dict.json`` maps an anno_id
(a string key; meta files may hold it as an int, read as ``str(x)`` like MeViS's loaders) to
a list over the video's frames, in the order of its ``frames`` list, of a COCO RLE
``{"size": [H, W], "counts": str}`` or null where the object is absent. Frame names carry
no extension. As in MeViS's ``tools/eval_mevis.py``, ``gt_mask`` is the union of the
expression's anno_ids and a null (or empty) entry adds nothing. Without ``mask_dict.json``
the split has no ground truth (``Video.has_gt`` is False).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import BeforeValidator, ConfigDict, TypeAdapter, ValidationInfo, with_config
from pydantic_core import core_schema
from typing_extensions import TypedDict

from lcrp_core.config import DATA, DataModel, either, fail, rule, validate
from lcrp_core.data.io import image_size, read_json, require_dir, require_files
from lcrp_core.data.meta import (
    META_NAME,
    MetaVideo,
    ObjId,
    make_video,
    read_expressions,
    read_meta_expressions,
)
from lcrp_core.data.model import Dataset, Expression
from lcrp_core.errors import DataError
from lcrp_core.masks import rle_decode, rle_runs

KIND = "mevis"
MASK_DICT_NAME = "mask_dict.json"

#: an anno_id as a meta file holds it (read as ``str(x)``)
AnnoId = Annotated[int | str, either(int, str)]


class MevisExpression(DataModel):
    """A MeViS expression's own keys (a split without ground truth may leave ``anno_id`` out)."""

    obj_id: list[ObjId] = []
    anno_id: list[AnnoId] = []


class MevisGtExpression(MevisExpression):
    """A MeViS expression of a split with ground truth: ``anno_id`` is required."""

    anno_id: list[AnnoId]


_EXPRESSIONS = {False: TypeAdapter(dict[str, MevisExpression]),
                True: TypeAdapter(dict[str, MevisGtExpression])}


def _expressions(meta: MetaVideo, path: Path, *, has_gt: bool) -> dict[str, Expression]:
    checked = read_expressions(_EXPRESSIONS[has_gt], meta, path)
    return {exp_id: Expression(exp_id, e["exp"], tuple(checked[exp_id].obj_id),
                               tuple(str(a) for a in checked[exp_id].anno_id))
            for exp_id, e in meta.expressions.items()}


@with_config(ConfigDict(strict=True))
class RLE(TypedDict):
    """One frame of a mask_dict track: a COCO RLE (other keys are dropped). Checked by
    pydantic-core alone, no Python call per frame: a track has one per frame and the file
    thousands of tracks. Whether ``counts`` decode to ``size`` is checked when it is decoded."""

    size: Annotated[list, rule(core_schema.list_schema(
        core_schema.int_schema(strict=True, ge=0), min_length=2, max_length=2, strict=True),
        "expected [H, W]")]
    counts: Annotated[str | list, either(str, list), rule(core_schema.union_schema(
        [core_schema.str_schema(min_length=1), core_schema.list_schema(min_length=1)]),
        "empty RLE counts", got=False)]


def _per_frame(track: Any, info: ValidationInfo) -> Any:
    """One entry per frame; a null (or any empty) entry is an absent object: None."""
    if isinstance(track, list):
        frames = (info.context or {})["frames"]
        if len(track) != frames:
            raise fail(None, f"expected one entry per frame ({frames}), got {len(track)}")
        return [rle or None for rle in track]
    return track


#: one mask_dict entry (validated with ``context={"frames": T}``): T COCO RLEs or nulls
TRACK = TypeAdapter(Annotated[list[RLE | None], BeforeValidator(_per_frame)],
                    config=ConfigDict(strict=True))
#: the mask_dict.json document: anno_id → track (each checked when its video is read)
MASK_DICT = TypeAdapter(dict[str, Any], config=ConfigDict(strict=True))


def read_track(track: Any, num_frames: int, *, path: Path, anno_id: str) -> list[dict | None]:
    """The checked mask_dict entry ``anno_id``: ``num_frames`` COCO RLEs or None."""
    return validate(TRACK, track, source=path, at=anno_id, context={"frames": num_frames},
                    dialect=DATA)


def _rle_problem(rle: Mapping[str, Any]) -> str | None:
    """Why ``rle`` is not a valid COCO RLE of its size (None if it is): see masks.rle_runs."""
    try:
        rle_runs(rle)
    except ValueError as exc:
        return str(exc)
    return None


def _union_mask(tracks: Mapping[str, list[Any]], num_frames: int, frame0: Path, path: Path,
                expr: Expression) -> np.ndarray:
    """T×H×W bool: the union of the expression's anno_id tracks (null frames add nothing)."""
    size = image_size(frame0)
    out = np.zeros((num_frames, *size), dtype=bool)
    for anno_id in expr.anno_ids:
        for t, rle in enumerate(tracks[anno_id]):
            if not rle:
                continue
            key = f"{anno_id}[{t}]"
            if tuple(rle["size"]) != size:
                raise DataError(f"RLE size {rle['size']} differs from the frame's [H, W] "
                                f"{list(size)} ({frame0})", path=path, key=f"{key}.size")
            problem = _rle_problem(rle)
            if problem:
                raise DataError(f"invalid COCO RLE: {problem}", path=path, key=key)
            out[t] |= rle_decode(rle)
    return out


def read_mevis(root: str | Path, split: str = "valid_u", *,
               videos: Sequence[str] | None = None) -> Dataset:
    """MeViS ``split`` under ``root``. Frames and masks decode lazily; the existence of every
    listed frame, and every anno_id's entry in mask_dict.json, are checked now."""
    root = require_dir(root, "dataset root")
    split_dir = require_dir(root / split, "split", list_siblings=True)
    meta_path = split_dir / META_NAME
    meta = read_meta_expressions(meta_path, videos=videos)
    frame_root = require_dir(split_dir / "JPEGImages", "frame")
    mask_path = split_dir / MASK_DICT_NAME
    mask_dict = None
    if mask_path.is_file():
        mask_dict = validate(MASK_DICT, read_json(mask_path), source=mask_path, dialect=DATA)
    out = {}
    for m in meta.values():
        exps = _expressions(m, meta_path, has_gt=mask_dict is not None)
        frames = require_files(frame_root / m.name, m.frames, ".jpg", what="frame")
        mask_loader = None
        if mask_dict is not None:
            tracks = {}
            for e in exps.values():
                for anno_id in e.anno_ids:
                    if anno_id not in mask_dict:
                        raise DataError(f"anno_id {anno_id} is not in {mask_path}", path=meta_path,
                                        key=f"{m.key}.expressions.{e.exp_id}.anno_id")
                    if anno_id not in tracks:  # shared by several expressions: checked once
                        tracks[anno_id] = read_track(mask_dict[anno_id], len(m.frames),
                                                     path=mask_path, anno_id=anno_id)
            mask_loader = partial(_union_mask, tracks, len(frames), frames[0], mask_path)
        out[m.name] = make_video(m, frames, exps, mask_loader=mask_loader)
    return Dataset(KIND, root, split, out)
