"""The LCRP pipeline: Locate (N), Core (K), Refine (H, δ), Path, over cached features.

``EvalContext``, ``EvalResult`` and ``evaluate`` (which pull in the datasets and metrics) are
imported on first access.
"""

from lcrp_core.pipeline.params import PRESETS, Params, preset
from lcrp_core.pipeline.stages import core, locate, path, refine, run, sample_frames

_LAZY = {"EvalContext", "EvalResult", "evaluate"}


def __getattr__(name: str):
    if name in _LAZY:
        from lcrp_core.pipeline import evaluation as module

        return getattr(module, name)
    raise AttributeError(f"module 'lcrp_core.pipeline' has no attribute {name!r}")


__all__ = ["EvalContext", "EvalResult", "PRESETS", "Params", "core", "evaluate", "locate", "path",
           "preset", "refine", "run", "sample_frames"]
