"""Prediction PNGs in each benchmark's layout, and submission zips for the online servers.

- MeViS / Ref-YouTube-VOS: ``<out>/<video>/<exp_id>/<frame>.png``, greyscale 0/255 (the
  layout MeViS's ``tools/eval_mevis.py`` reads and ReferFormer's ``inference_ytvos.py``
  writes).
- Ref-DAVIS17: ``<out>/anno_<a>/<video>/<frame>.png`` for each annotation set a = 0..3, a
  palette label map holding every expression of that set as its obj_id (ReferFormer's
  ``inference_davis.py`` layout; each ``anno_<a>`` folder is a results folder for
  davis2017-evaluation's unsupervised task), built by ReferFormer's rule
  (:mod:`lcrp_core.data.labels`: objects ranked by obj_id as text, label = rank, the first in
  that order keeps overlapping pixels).
- Submission zips: Ref-YouTube-VOS ``Annotations/<video>/<exp_id>/<frame>.png`` (ReferFormer's
  docs: rename the output folder to ``Annotations`` and ``zip -r submission.zip Annotations``);
  MeViS ``<video>/<exp_id>/<frame>.png`` at the top of the zip (its README: the sample
  submission "directly packages" the video folders).

Every file is written atomically (temporary file + ``os.replace``).
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from lcrp_core.data.davis import NUM_ANNO_SETS
from lcrp_core.data.io import (
    read_label_png,
    require_files,
    write_binary_png,
    write_label_png,
)
from lcrp_core.data.labels import davis_label_maps
from lcrp_core.data.model import Dataset, Video
from lcrp_core.errors import ConfigError, DataError
from lcrp_core.files import atomic_open

#: Folder prefix inside each benchmark's submission zip.
ZIP_PREFIX = {"ref-youtube-vos": "Annotations/", "mevis": ""}


def _check_masks(video_name: str, num_frames: int, masks: Mapping[str, np.ndarray],
                 exp_ids: Sequence[str]) -> tuple[int, int]:
    """(H, W) shared by the ``masks`` of ``exp_ids`` (each T×H×W with T = num_frames)."""
    missing = [e for e in exp_ids if e not in masks]
    if missing:
        raise DataError(f"no predicted masks for expression(s) {missing}", key=video_name)
    size: tuple[int, ...] | None = None
    for exp_id in exp_ids:
        shape = np.shape(masks[exp_id])
        if len(shape) != 3 or shape[0] != num_frames or (size is not None and shape[1:] != size):
            want = f"{num_frames}×" + ("×".join(map(str, size)) if size else "H×W")
            raise DataError(f"expected masks of shape {want} (T×H×W), got {shape}",
                            key=f"{video_name}/{exp_id}")
        size = shape[1:]
    return (size[0], size[1]) if size else (0, 0)


def write_expression_masks(out_dir: str | Path, video_name: str, exp_id: str,
                           frame_names: Sequence[str], masks: np.ndarray) -> None:
    """``<out>/<video>/<exp_id>/<frame>.png`` (0/255) for T×H×W bool ``masks``."""
    _check_masks(video_name, len(frame_names), {exp_id: masks}, [exp_id])
    folder = Path(out_dir) / video_name / exp_id
    for name, mask in zip(frame_names, masks):
        write_binary_png(folder / f"{name}.png", mask)


def write_davis_label_maps(out_dir: str | Path, video_name: str, frame_names: Sequence[str],
                           label_maps: Mapping[int, np.ndarray]) -> None:
    """``<out>/anno_<a>/<video>/<frame>.png`` palette PNGs for each set's T×H×W label map."""
    for anno_set, labels in label_maps.items():
        if not 0 <= anno_set < NUM_ANNO_SETS:
            raise DataError(f"annotation sets are 0..{NUM_ANNO_SETS - 1}, got {anno_set}",
                            key=video_name)
        if len(labels) != len(frame_names):
            raise DataError(f"annotation set {anno_set} has {len(labels)} label maps for "
                            f"{len(frame_names)} frames", key=video_name)
        folder = Path(out_dir) / f"anno_{anno_set}" / video_name
        for name, label in zip(frame_names, labels):
            write_label_png(folder / f"{name}.png", label)


def prediction_root(out_dir: str | Path, kind: str) -> Path:
    """Where ``lcrp predict`` writes a benchmark's masks inside its output folder: the folder
    itself for Ref-DAVIS17 (``anno_<a>/``), ``Annotations/`` for the per-expression benchmarks."""
    return Path(out_dir) if kind == "ref-davis17" else Path(out_dir) / "Annotations"


def read_label_stack(paths: Sequence[Path]) -> np.ndarray:
    """T×H×W uint8 label maps from PNG paths; a size change names the file."""
    first = read_label_png(paths[0])
    out = np.empty((len(paths), *first.shape), dtype=np.uint8)
    out[0] = first
    for t, path in enumerate(paths[1:], start=1):
        label = read_label_png(path)
        if label.shape != first.shape:
            raise DataError(f"label map is {label.shape[0]}×{label.shape[1]}, {paths[0].name} is "
                            f"{first.shape[0]}×{first.shape[1]}", path=path)
        out[t] = label
    return out


def read_predictions(pred_dir: str | Path, kind: str, video: Video) -> dict:
    """What :func:`write_predictions` wrote for ``video``: Ref-DAVIS17 ``{anno_set: T×H×W uint8
    label maps}`` for the sets its expressions use; otherwise ``{exp_id: T×H×W bool}`` (non-zero =
    foreground). A missing file is a DataError naming it."""
    pred_dir = Path(pred_dir)
    if kind == "ref-davis17":
        sets = sorted({e.anno_set for e in video.expressions.values()})
        return {a: read_label_stack(require_files(pred_dir / f"anno_{a}" / video.name,
                                                  video.frame_names, ".png", what="prediction"))
                for a in sets}
    return {exp_id: read_label_stack(require_files(pred_dir / video.name / exp_id, video.frame_names,
                                                   ".png", what="prediction")) != 0
            for exp_id in video.expressions}


def write_predictions(out_dir: str | Path, kind: str, video: Video,
                      masks: Mapping[str, np.ndarray]) -> None:
    """Write one video's predictions (exp_id → T×H×W bool) in the layout of benchmark ``kind``.

    Ref-DAVIS17 needs every expression of the video (each annotation set is one label map);
    the other benchmarks write the expressions given.
    """
    if kind == "ref-davis17":
        write_davis_label_maps(out_dir, video.name, video.frame_names, davis_label_maps(video, masks))
        return
    if kind not in ZIP_PREFIX:
        raise ConfigError(f"unknown dataset kind {kind!r}", key="dataset")
    for exp_id, m in masks.items():
        if exp_id not in video.expressions:
            raise DataError(f"expression {exp_id!r} is not one of this video's", key=video.name)
        write_expression_masks(out_dir, video.name, exp_id, video.frame_names, m)


def _check_png(path: Path, size: tuple[int, int]) -> None:
    """A PNG mask of ``size`` (H, W) in a mode the servers read as one channel."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            fmt, mode, (w, h) = img.format, img.mode, img.size
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"cannot read image header ({exc})", path=path) from None
    if fmt != "PNG" or mode not in ("L", "P", "1"):
        raise DataError(f"expected a greyscale PNG mask, got {fmt} mode {mode}", path=path)
    if (h, w) != tuple(size):
        raise DataError(f"mask is {h}×{w}, its frame is {size[0]}×{size[1]}", path=path)


def write_submission_zip(pred_dir: str | Path, zip_path: str | Path, dataset: Dataset) -> int:
    """Zip the per-expression PNGs under ``pred_dir`` for ``dataset``'s online server.

    Every expression's PNG for every frame must exist, be a greyscale or palette PNG and have
    its frame's size (the servers compare masks with their ground truth pixel by pixel); the
    first problem is a DataError naming the file, and no zip is written. Returns the number of
    PNGs stored.
    """
    if dataset.kind not in ZIP_PREFIX:
        raise ConfigError(f"{dataset.kind} has no submission server; score it locally with "
                          "`lcrp eval`", key="dataset")
    prefix, pred_dir = ZIP_PREFIX[dataset.kind], Path(pred_dir)
    files = []
    for video in dataset:
        size = video.size
        for exp_id in video.expressions:
            paths = require_files(pred_dir / video.name / exp_id, video.frame_names, ".png",
                                  what="prediction")
            for p in paths:
                _check_png(p, size)
            files += [(p, f"{prefix}{video.name}/{exp_id}/{p.name}") for p in paths]
    with atomic_open(zip_path) as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, arcname in files:
            zf.write(path, arcname)
    return len(files)
