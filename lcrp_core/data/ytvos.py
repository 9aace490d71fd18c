"""Ref-YouTube-VOS reader (its ``meta_expressions.json``, shared with MeViS and with ReferFormer's
conversion of Ref-DAVIS17, is parsed by :mod:`lcrp_core.data.meta`).

Layout (kind ``"ref-youtube-vos"``, default split ``valid``)::

    <root>/<split>/JPEGImages/<video>/<frame>.jpg
    <root>/meta_expressions/<split>/meta_expressions.json
    <root>/meta_expressions/test/meta_expressions.json      (optional, see below)

The competition's ``valid`` file also lists the 305 test videos (whose
frames are not in ``valid/JPEGImages``); as in ReferFormer's ``inference_ytvos.py`` the
videos of ``meta_expressions/test/meta_expressions.json`` are dropped when that file exists.
There is no public ground truth: predictions are scored by uploading a submission zip
(:func:`lcrp_core.data.writers.write_submission_zip`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydantic import TypeAdapter

from lcrp_core.config import DataModel
from lcrp_core.data.io import require_dir, require_files
from lcrp_core.data.meta import (
    META_NAME,
    ObjId,
    make_video,
    read_expressions,
    read_meta_expressions,
    read_meta_file,
)
from lcrp_core.data.model import Dataset, Expression
from lcrp_core.errors import DataError

KIND = "ref-youtube-vos"


class YtvosExpression(DataModel):
    """A Ref-YouTube-VOS expression's own key: an optional ``obj_id`` (null is not an id)."""

    obj_id: ObjId = None  # type: ignore[assignment]  # absent: None; a given null is refused


EXPRESSIONS = TypeAdapter(dict[str, YtvosExpression])


def _test_videos(root: Path) -> set[str]:
    """The video names of meta_expressions/test/meta_expressions.json."""
    return set(read_meta_file(root / "meta_expressions" / "test" / META_NAME).videos)


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
        checked = read_expressions(EXPRESSIONS, m, meta_path)
        exps = {}
        for exp_id, e in m.expressions.items():
            obj_id = checked[exp_id].obj_id
            exps[exp_id] = Expression(exp_id, e["exp"], () if obj_id is None else (obj_id,))
        paths = require_files(frame_root / m.name, m.frames, ".jpg", what="frame")
        out[m.name] = make_video(m, paths, exps)
    return Dataset(KIND, root, split, out)
