"""Datasets: readers for Ref-DAVIS17, MeViS and Ref-YouTube-VOS into one data model.

``load_dataset(kind, root, split)`` is the entry point; see each reader's module docstring
for the folder layout it expects (lcrp_core.data.davis, .mevis, .ytvos). Prediction PNGs and
submission zips are written by lcrp_core.data.writers.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lcrp_core.data.davis import read_ref_davis17
from lcrp_core.data.mevis import read_mevis
from lcrp_core.data.model import DATASET_KINDS, Dataset, Expression, GroundTruthObjects, Video
from lcrp_core.data.ytvos import read_ref_youtube_vos
from lcrp_core.errors import ConfigError

#: The split each kind reads when none is given.
DEFAULT_SPLITS = {"ref-davis17": "valid", "mevis": "valid_u", "ref-youtube-vos": "valid"}

_READERS = {"ref-davis17": read_ref_davis17, "mevis": read_mevis,
            "ref-youtube-vos": read_ref_youtube_vos}

__all__ = ["DATASET_KINDS", "DEFAULT_SPLITS", "Dataset", "Expression", "GroundTruthObjects",
           "Video", "load_dataset"]


def load_dataset(kind: str, root: str | Path, split: str | None = None, *,
                 videos: Sequence[str] | None = None) -> Dataset:
    """Read a benchmark split (``split=None``: DEFAULT_SPLITS[kind]); ``videos`` restricts it
    to those names, in that order. Frames and ground truth load lazily."""
    if kind not in _READERS:
        raise ConfigError(f"unknown dataset kind {kind!r}; expected one of {list(DATASET_KINDS)}",
                          key="dataset")
    return _READERS[kind](root, split or DEFAULT_SPLITS[kind], videos=videos)
