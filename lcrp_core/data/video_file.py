"""One video from a folder of frames or a video file, and the overlay a `lcrp run` writes.

A folder holds frames named so that they sort in time order (``*.jpg``, ``*.jpeg``, ``*.png``);
a file is anything OpenCV can decode (mp4, avi, ...). The overlay tints the mask over each frame
and writes the sentence as a caption, as a GIF or an MP4 (by the output's suffix).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from lcrp_core.data.meta import frame_loader
from lcrp_core.data.model import Dataset, Expression, Video
from lcrp_core.errors import DataError
from lcrp_core.files import atomic_open

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")
#: Overlay tint (RGB) and its opacity.
TINT, ALPHA = np.array([255, 64, 32], dtype=np.float32), 0.5


def _read_video_file(path: Path) -> np.ndarray:
    cap = cv2.VideoCapture(str(path))
    frames = []
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    finally:
        cap.release()
    if not frames:
        raise DataError("not a readable video (no frame could be decoded)", path=path)
    return np.stack(frames)


def open_video(path: str | Path, text: str, *, exp_id: str = "0") -> Dataset:
    """A one-video dataset (kind "video") holding ``path`` and the expression ``text``."""
    path = Path(path)
    if not text.strip():
        raise DataError("the sentence is empty; pass the referring expression with --text")
    expressions = {exp_id: Expression(exp_id, text.strip(), (1,))}
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in FRAME_SUFFIXES)
        if not files:
            raise DataError(f"no frames ({', '.join(FRAME_SUFFIXES)}) in this folder", path=path)
        video = Video(path.name, [p.stem for p in files], expressions,
                      frame_loader=frame_loader(files))
    elif path.is_file():
        frames = _read_video_file(path)
        video = Video(path.stem, [f"{t:05d}" for t in range(len(frames))], expressions,
                      frame_loader=lambda t: frames[t])
    else:
        raise DataError("no such video file or frame folder", path=path)
    return Dataset("video", path, "single", {video.name: video})


def overlay_frames(frames: np.ndarray, masks: np.ndarray, caption: str) -> np.ndarray:
    """T×H×W×3 uint8 frames with T×H×W bool masks tinted over them and a caption at the top."""
    out = frames.astype(np.float32)
    out[masks] = (1 - ALPHA) * out[masks] + ALPHA * TINT
    out = out.round().clip(0, 255).astype(np.uint8)
    h, w = frames.shape[1:3]
    scale = max(0.35, w / 900)
    lines = textwrap.wrap(caption, width=max(12, int(w / (18 * scale))))
    line_h = int(26 * scale) + 4
    for frame in out:
        cv2.rectangle(frame, (0, 0), (w, line_h * len(lines) + 4), (0, 0, 0), thickness=-1)
        for i, line in enumerate(lines):
            cv2.putText(frame, line, (6, line_h * (i + 1) - 4), cv2.FONT_HERSHEY_SIMPLEX, scale,
                        (255, 255, 255), 1, cv2.LINE_AA)
    return out


def write_overlay(path: str | Path, frames: np.ndarray, *, fps: float = 10.0) -> None:
    """Write overlay frames (T×H×W×3 uint8) as a GIF or an MP4, atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".gif":
        images = [Image.fromarray(f) for f in frames]
        with atomic_open(path) as fh:
            images[0].save(fh, format="GIF", save_all=True, append_images=images[1:],
                           duration=int(1000 / fps), loop=0)
    elif suffix == ".mp4":
        tmp = path.with_name(f".tmp-{path.name}")
        h, w = frames.shape[1:3]
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
        try:
            for f in frames:
                writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
        finally:
            writer.release()
        tmp.replace(path)
    else:
        raise DataError("expected an overlay file ending in .gif or .mp4", path=path)
