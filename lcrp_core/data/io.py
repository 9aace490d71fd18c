"""File I/O for the dataset readers and writers: images, label PNGs, JSON (lcrp_core.files: atomic).

Every failure raises :class:`~lcrp_core.errors.DataError` naming the file. The structure of
parsed JSON is checked by pydantic models through :mod:`lcrp_core.config` (``DataModel``,
``validate(..., dialect=DATA)``), whose DataErrors name the key path as well, such as
``videos.bike.expressions.0.exp``. Writes go to a temporary file in
the destination folder and are moved into place with ``os.replace``, so a crash never
leaves a half-written file behind.

Shapes: an RGB frame is H×W×3 uint8; a label map is H×W uint8 (0 background, object ids,
255 void); a binary mask is H×W bool.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lcrp_core.errors import DataError
from lcrp_core.files import atomic_open

#: PNG modes read as label maps: palette indices (P), grey values (L), 1-bit (1) as 0/1.
_LABEL_MODES = ("P", "L", "1")

@lru_cache(maxsize=1)
def davis_palette() -> np.ndarray:
    """256×3 uint8: the PASCAL VOC colour map that DAVIS annotations and davis2017-evaluation use.

    Entry i spreads the bits of i over the channels from the most significant bit down:
    bit 3k of i → bit 7−k of red, bit 3k+1 → green, bit 3k+2 → blue
    (1 → (128, 0, 0), 2 → (0, 128, 0), 255 → (224, 224, 192)).
    """
    ids = np.arange(256)
    cmap = np.zeros((256, 3), dtype=np.uint8)
    for k in range(8):
        for channel in range(3):
            bit = (ids >> (3 * k + channel)) & 1
            cmap[:, channel] |= (bit << (7 - k)).astype(np.uint8)
    cmap.setflags(write=False)
    return cmap


def _open_image(path: Path) -> Image.Image:
    """Open and fully decode an image; any failure is a DataError naming the file."""
    try:
        img = Image.open(path)
        img.load()
    except FileNotFoundError:
        raise DataError("file not found", path=path) from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"cannot decode image ({exc})", path=path) from None
    return img


def read_rgb(path: str | Path) -> np.ndarray:
    """H×W×3 uint8 RGB pixels of a JPEG/PNG frame (greyscale and palette images are converted)."""
    img = _open_image(Path(path))
    return np.asarray(img.convert("RGB") if img.mode != "RGB" else img, dtype=np.uint8)


def image_size(path: str | Path) -> tuple[int, int]:
    """(H, W) of an image from its header, without decoding the pixels."""
    path = Path(path)
    try:
        with Image.open(path) as img:
            w, h = img.size
    except FileNotFoundError:
        raise DataError("file not found", path=path) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"cannot read image header ({exc})", path=path) from None
    return h, w


def read_label_png(path: str | Path, out: np.ndarray | None = None) -> np.ndarray:
    """H×W uint8 label map: the palette index of a P-mode PNG, the grey value of an L-mode PNG,
    0/1 for a 1-bit PNG (what PIL writes for a bool array; ``np.array(Image.open(...))``, as
    davis2017-evaluation and vos-benchmark read it, gives label 1). Other modes (RGB, 16-bit)
    are rejected.

    ``out``: an H×W uint8 array to decode into (e.g. one frame of a T×H×W stack, saving a
    copy); an image of another size is a DataError naming the file and both sizes.
    """
    path = Path(path)
    img = _open_image(path)
    if img.mode not in _LABEL_MODES:
        raise DataError(f"expected a palette (P), greyscale (L) or 1-bit PNG label map, got mode "
                        f"{img.mode}", path=path)
    if out is not None and out.shape != (img.size[1], img.size[0]):
        raise DataError(f"label map is {img.size[1]}×{img.size[0]}, expected "
                        f"{out.shape[0]}×{out.shape[1]}", path=path)
    if img.mode == "1":  # PIL gives bool arrays: 0/1
        pixels = np.asarray(img, dtype=np.uint8)
        if out is None:
            return pixels
        out[...] = pixels
        return out
    return _pixels_8bit(img, out)


def _pixels_8bit(img: Image.Image, out: np.ndarray | None = None) -> np.ndarray:
    """The pixel bytes of a decoded P- or L-mode image (palette indices for P) as H×W uint8,
    written into ``out`` when given; equal to ``np.asarray(img)``.

    ``np.asarray(img)`` goes through ``tobytes()`` and a copy; here the image core copies its
    lines straight into a numpy buffer that an image of the same mode maps
    (``Image.frombuffer``), several times faster at 480×854.
    """
    w, h = img.size
    if out is None:
        out = np.empty((h, w), dtype=np.uint8)
    if out.dtype != np.uint8 or not out.flags.c_contiguous or not out.flags.writeable:
        out[...] = np.asarray(img)
    elif out.size:
        shared = Image.frombuffer(img.mode, (w, h), out, "raw", img.mode, 0, 1)
        shared.im.paste(img.im, (0, 0, w, h))  # the core's paste: writes into ``out`` itself
    return out


def read_grey_png(path: str | Path) -> np.ndarray:
    """H×W uint8 grey values of any image, exactly as MeViS's ``tools/eval_mevis.py`` reads a
    prediction: ``cv2.imread(path, cv2.IMREAD_GRAYSCALE)`` (RGB and palette images are
    converted to luma, 16-bit ones scaled to 8 bits, a 1-bit PNG reads 0/255)."""
    import cv2  # imported here: ~0.2 s of start-up that only this reader needs

    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", path=path)
    grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if grey is None:
        raise DataError("cannot decode image (OpenCV could not read it)", path=path)
    return grey


def _save_png(path: Path, img: Image.Image) -> None:
    with atomic_open(path) as f:
        img.save(f, format="PNG")


def _check_2d(array: np.ndarray, path: Path, what: str) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != 2:
        raise DataError(f"{what} must be H×W, got shape {array.shape}", path=path)
    return array


def write_label_png(path: str | Path, labels: np.ndarray) -> None:
    """Write an H×W label map (integers 0..255) as a P-mode PNG with the DAVIS palette."""
    path = Path(path)
    labels = _check_2d(labels, path, "a label map")
    if labels.dtype != np.uint8:
        if not np.issubdtype(labels.dtype, np.integer) or (labels.size and (
                labels.min() < 0 or labels.max() > 255)):
            raise DataError(f"a label map must hold integers 0..255, got dtype {labels.dtype}",
                            path=path)
        labels = labels.astype(np.uint8)
    img = Image.fromarray(np.ascontiguousarray(labels), mode="P")
    img.putpalette(davis_palette().tobytes())
    _save_png(path, img)


def write_binary_png(path: str | Path, mask: np.ndarray) -> None:
    """Write an H×W binary mask as an L-mode PNG with values 0 and 255."""
    path = Path(path)
    mask = _check_2d(mask, path, "a mask")
    _save_png(path, Image.fromarray(np.where(mask.astype(bool), 255, 0).astype(np.uint8), mode="L"))


def read_json(path: str | Path) -> Any:
    """Parse a JSON file; a missing file or bad JSON is a DataError naming the file (and line)."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise DataError("file not found", path=path) from None
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
                        path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read ({exc})", path=path) from None


def require_dir(path: str | Path, what: str, *, list_siblings: bool = False) -> Path:
    """``path`` if it is a folder, else a DataError naming it; ``list_siblings`` adds the
    folders found beside it (e.g. the splits a dataset root does have)."""
    path = Path(path)
    if path.is_dir():
        return path
    hint = ""
    if list_siblings and path.parent.is_dir():
        found = sorted(p.name for p in path.parent.iterdir() if p.is_dir() and not p.name.startswith("."))
        hint = f" (found: {', '.join(found)})" if found else " (the folder above it is empty)"
    raise DataError(f"{what} folder not found{hint}", path=path)


def require_files(folder: Path, stems: Iterable[str], suffix: str, *, what: str) -> list[Path]:
    """Paths ``folder/<stem><suffix>`` for every stem, checked with one ``os.listdir``.

    A missing folder or file is a DataError naming it (``what`` says what the folder holds).
    """
    try:
        present = set(os.listdir(folder))
    except FileNotFoundError:
        raise DataError(f"{what} folder not found", path=folder) from None
    except NotADirectoryError:
        raise DataError(f"expected a {what} folder, found a file", path=folder) from None
    names = [f"{stem}{suffix}" for stem in stems]
    missing = [n for n in names if n not in present]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise DataError(f"{what} file not found{more}", path=folder / missing[0])
    return [folder / n for n in names]
