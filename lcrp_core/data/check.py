"""Validate a dataset folder without stopping at the first problem (``lcrp data check``).

The readers (lcrp_core.data.davis, .mevis, .ytvos) stop at the first fault; :func:`check_dataset`
walks the same layout and collects every fault it finds, one line each (``path: key: what``),
using the readers' own checks per entry: a meta_expressions entry, an expression, a listed frame
(present, a readable image, the video's size), a Ref-DAVIS17 annotation (present, a palette or
greyscale PNG of the frame's size, holding the expressions' objects), a MeViS mask_dict track
(present, one entry per frame, each a valid COCO RLE of the frame's size). Without faults it
summarises the split: videos, frames, expressions, objects and a frame-size histogram.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lcrp_core.config import DATA, validate
from lcrp_core.data import DEFAULT_SPLITS
from lcrp_core.data.davis import VOID, frame_and_annotation_folders
from lcrp_core.data.davis import _expressions as davis_expressions
from lcrp_core.data.io import image_size, read_json, read_label_png
from lcrp_core.data.meta import META_NAME, MetaVideo, read_meta_file, read_meta_video
from lcrp_core.data.mevis import MASK_DICT, MASK_DICT_NAME, _rle_problem
from lcrp_core.data.mevis import _expressions as mevis_expressions
from lcrp_core.data.model import DATASET_KINDS, Expression
from lcrp_core.data.ytvos import YtvosExpression
from lcrp_core.errors import ConfigError, DataError


@dataclass
class CheckResult:
    """Every problem found (one line each) and the split's summary."""

    kind: str
    root: Path
    split: str
    problems: list[str] = field(default_factory=list)
    videos: int = 0
    frames: int = 0
    expressions: int = 0
    objects: int = 0
    sizes: Counter = field(default_factory=Counter)

    def add(self, exc: DataError) -> None:
        self.problems.append(str(exc))

    def summary_lines(self) -> list[str]:
        sizes = ", ".join(f"{h}×{w}: {n}" for (h, w), n in sorted(self.sizes.items(),
                                                                key=lambda kv: -kv[1]))
        return [f"{self.kind} {self.split} at {self.root}: {self.videos} videos, {self.frames} "
                f"frames, {self.expressions} expressions, {self.objects} objects",
                f"frame sizes (H×W: videos): {sizes or 'none'}"]


def _attempt(result: CheckResult, fn: Callable[[], Any]) -> Any:
    """``fn()``, or None with its DataError recorded as a problem."""
    try:
        return fn()
    except DataError as exc:
        result.add(exc)
        return None


def _frames(result: CheckResult, folder: Path, meta: MetaVideo, suffix: str,
            what: str) -> list[Path | None]:
    """Each listed frame's path (None where missing), every missing file one problem."""
    try:
        present = set(os.listdir(folder))
    except (FileNotFoundError, NotADirectoryError):
        result.add(DataError(f"{what} folder not found", path=folder))
        return [None] * len(meta.frames)
    out: list[Path | None] = []
    for name in meta.frames:
        if f"{name}{suffix}" in present:
            out.append(folder / f"{name}{suffix}")
        else:
            result.add(DataError(f"{what} file not found", path=folder / f"{name}{suffix}"))
            out.append(None)
    return out


def _video_size(result: CheckResult, paths: list[Path | None]) -> tuple[int, int] | None:
    """The frames' (H, W): every unreadable frame and every frame of another size is a problem."""
    size = None
    for p in paths:
        if p is None:
            continue
        hw = _attempt(result, lambda p=p: image_size(p))
        if hw is None:
            continue
        if size is None:
            size = hw
        elif hw != size:
            result.add(DataError(f"frame is {hw[0]}×{hw[1]}, the video's first frame is "
                                 f"{size[0]}×{size[1]}", path=p))
    return size


def _meta_entries(result: CheckResult, meta_path: Path) -> dict[str, MetaVideo]:
    data = _attempt(result, lambda: read_meta_file(meta_path))
    if data is None:
        return {}
    out = {}
    for name, entry in data.videos.items():
        meta = _attempt(result, lambda n=name, e=entry: read_meta_video(n, e, meta_path))
        if meta is not None:
            out[name] = meta
    return out


def _check_davis(result: CheckResult, root: Path, split: str) -> None:
    meta_path = root / "meta_expressions" / split / META_NAME
    metas = _meta_entries(result, meta_path)
    folders = _attempt(result, lambda: frame_and_annotation_folders(root, split))
    if folders is None:
        return
    frame_root, anno_root = folders
    for m in metas.values():
        exps = _attempt(result, lambda m=m: davis_expressions(m, meta_path))
        frames = _frames(result, frame_root / m.name, m, ".jpg", "frame")
        annos = _frames(result, anno_root / m.name, m, ".png", "annotation")
        size = _video_size(result, frames)
        _count(result, m, size, exps, {o for e in (exps or {}).values() for o in e.obj_ids})
        seen: set[int] = set()
        for p in annos:
            if p is None:
                continue
            label = _attempt(result, lambda p=p: read_label_png(p))
            if label is None:
                continue
            if size is not None and label.shape != size:
                result.add(DataError(f"annotation is {label.shape[0]}×{label.shape[1]}, its "
                                     f"frame is {size[0]}×{size[1]}", path=p))
            seen.update(int(v) for v in np.unique(label) if v not in (0, VOID))
        if exps and all(p is not None for p in annos):
            for e in exps.values():
                if e.obj_ids[0] not in seen:
                    result.add(DataError(f"object {e.obj_ids[0]} is in no annotation of the video",
                                         path=meta_path, key=f"{m.key}.expressions.{e.exp_id}.obj_id"))


def _check_mevis(result: CheckResult, root: Path, split: str) -> None:
    split_dir = root / split
    meta_path = split_dir / META_NAME
    metas = _meta_entries(result, meta_path)
    mask_path = split_dir / MASK_DICT_NAME
    mask_dict = None
    if mask_path.is_file():
        mask_dict = _attempt(result, lambda: validate(MASK_DICT, read_json(mask_path),
                                                      source=mask_path, dialect=DATA))
    for m in metas.values():
        exps = _attempt(result, lambda m=m: mevis_expressions(m, meta_path, has_gt=mask_path.is_file()))
        frames = _frames(result, split_dir / "JPEGImages" / m.name, m, ".jpg", "frame")
        size = _video_size(result, frames)
        anno_ids = {a for e in (exps or {}).values() for a in e.anno_ids}
        _count(result, m, size, exps, anno_ids or {o for e in (exps or {}).values() for o in e.obj_ids})
        if mask_dict is None:
            continue
        for e in (exps or {}).values():
            for a in e.anno_ids:
                if a not in mask_dict:
                    result.add(DataError(f"anno_id {a} is not in {mask_path}", path=meta_path,
                                         key=f"{m.key}.expressions.{e.exp_id}.anno_id"))
        for a in sorted(anno_ids & set(mask_dict)):
            _check_track(result, mask_dict[a], len(m.frames), size, mask_path, a)


def _check_track(result: CheckResult, track: Any, num_frames: int, size: tuple[int, int] | None,
                 path: Path, key: str) -> None:
    if not isinstance(track, list) or len(track) != num_frames:
        got = f"{len(track)} entries" if isinstance(track, list) else type(track).__name__
        result.add(DataError(f"expected a list of one entry per frame ({num_frames}), got {got}",
                             path=path, key=key))
        return
    for t, rle in enumerate(track):
        if not rle:
            continue
        k = f"{key}[{t}]"
        if not isinstance(rle, dict) or not isinstance(rle.get("size"), list) or len(rle["size"]) != 2 \
                or not isinstance(rle.get("counts"), (str, list)) or not rle["counts"]:
            result.add(DataError("expected a COCO RLE {size: [H, W], counts}", path=path, key=k))
            continue
        if size is not None and tuple(rle["size"]) != size:
            result.add(DataError(f"RLE size {rle['size']} differs from the frame's [H, W] "
                                 f"{list(size)}", path=path, key=f"{k}.size"))
            continue
        problem = _rle_problem(rle)
        if problem:
            result.add(DataError(f"invalid COCO RLE: {problem}", path=path, key=k))


def _check_ytvos(result: CheckResult, root: Path, split: str) -> None:
    meta_path = root / "meta_expressions" / split / META_NAME
    metas = _meta_entries(result, meta_path)
    test_meta = root / "meta_expressions" / "test" / META_NAME
    if split == "valid" and test_meta.is_file():
        test = _meta_entries(result, test_meta)
        metas = {n: m for n, m in metas.items() if n not in test}
    for m in metas.values():
        obj_ids = set()
        for exp_id, e in m.expressions.items():
            key = f"{m.key}.expressions.{exp_id}"
            checked = _attempt(result, lambda e=e, key=key: validate(YtvosExpression, e, source=meta_path,
                                                                     at=key))
            if checked is not None and checked.obj_id is not None:
                obj_ids.add(checked.obj_id)
        exps = {exp_id: Expression(exp_id, e["exp"], ()) for exp_id, e in m.expressions.items()}
        frames = _frames(result, root / split / "JPEGImages" / m.name, m, ".jpg", "frame")
        _count(result, m, _video_size(result, frames), exps, obj_ids)


def _count(result: CheckResult, m: MetaVideo, size, exps, objects) -> None:
    result.videos += 1
    result.frames += len(m.frames)
    result.expressions += len(exps or {})
    result.objects += len(objects)
    if size is not None:
        result.sizes[size] += 1


_CHECKS = {"ref-davis17": _check_davis, "mevis": _check_mevis, "ref-youtube-vos": _check_ytvos}


def check_dataset(kind: str, root: str | Path, split: str | None = None) -> CheckResult:
    """Every layout fault of ``kind``'s ``split`` under ``root`` (see the module doc)."""
    if kind not in _CHECKS:
        raise ConfigError(f"unknown dataset kind {kind!r}; expected one of {list(DATASET_KINDS)}",
                          key="dataset")
    root = Path(root)
    result = CheckResult(kind, root, split or DEFAULT_SPLITS[kind])
    if not root.is_dir():
        result.add(DataError("dataset root folder not found", path=root))
        return result
    _CHECKS[kind](result, root, result.split)
    return result


__all__ = ["CheckResult", "check_dataset"]
