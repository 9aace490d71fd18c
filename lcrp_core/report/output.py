"""Atomic file output: a reader sees the old file or the whole new one, never a partial one."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from lcrp_core.files import atomic_open


def write_atomic(path: str | Path, data: bytes | str) -> Path:
    """Write ``data`` (str as UTF-8) to ``path`` atomically."""
    path = Path(path)
    with atomic_open(path) as fh:
        fh.write(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def write_files(out_dir: str | Path, files: Mapping[str, bytes | str]) -> list[Path]:
    """Write every {relative name: content} under ``out_dir``, each atomically, in order."""
    return [write_atomic(Path(out_dir) / name, data) for name, data in files.items()]
