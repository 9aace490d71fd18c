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
from typing import Any

import numpy as np

from lcrp_core.data.io import expect, get_field, image_size, read_json, require_dir, require_files
from lcrp_core.data.meta import (
    META_NAME,
    MetaVideo,
    make_video,
    parse_obj_id,
    read_meta_expressions,
)
from lcrp_core.data.model import Dataset, Expression
from lcrp_core.errors import DataError
from lcrp_core.masks import rle_decode, rle_runs

KIND = "mevis"
MASK_DICT_NAME = "mask_dict.json"


def _id_list(e: Mapping[str, Any], name: str, *, path: Path, key: str, required: bool) -> list[Any]:
    if name not in e and not required:
        return []
    values = get_field(e, name, list, path=path, key=key)
    for i, v in enumerate(values):
        expect(v, (int, str), path=path, key=f"{key}.{name}[{i}]")
    return values


def _expressions(meta: MetaVideo, path: Path, *, has_gt: bool) -> dict[str, Expression]:
    out = {}
    for exp_id, e in meta.expressions.items():
        key = f"{meta.key}.expressions.{exp_id}"
        obj_ids = _id_list(e, "obj_id", path=path, key=key, required=False)
        anno_ids = _id_list(e, "anno_id", path=path, key=key, required=has_gt)
        out[exp_id] = Expression(
            exp_id, e["exp"],
            tuple(parse_obj_id(v, path=path, key=f"{key}.obj_id[{i}]") for i, v in enumerate(obj_ids)),
            tuple(str(a) for a in anno_ids))
    return out


def _check_track(track: Any, num_frames: int, *, path: Path, key: str) -> list[Any]:
    """One mask_dict entry: a list of ``num_frames`` COCO RLEs or nulls."""
    expect(track, list, path=path, key=key)
    if len(track) != num_frames:
        raise DataError(f"expected one entry per frame ({num_frames}), got {len(track)}",
                        path=path, key=key)
    for t, rle in enumerate(track):
        if not rle:
            continue
        k = f"{key}[{t}]"
        expect(rle, dict, path=path, key=k)
        size = get_field(rle, "size", list, path=path, key=k)
        if len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                                     for v in size):
            raise DataError(f"expected [H, W], got {size!r:.60}", path=path, key=f"{k}.size")
        counts = get_field(rle, "counts", (str, list), path=path, key=k)
        if not counts:
            raise DataError("empty RLE counts", path=path, key=f"{k}.counts")
    return track


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
        mask_dict = expect(read_json(mask_path), dict, path=mask_path, key="(document)")
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
                    tracks[anno_id] = _check_track(mask_dict[anno_id], len(m.frames),
                                                   path=mask_path, key=anno_id)
            mask_loader = partial(_union_mask, tracks, len(frames), frames[0], mask_path)
        out[m.name] = make_video(m, frames, exps, mask_loader=mask_loader)
    return Dataset(KIND, root, split, out)
