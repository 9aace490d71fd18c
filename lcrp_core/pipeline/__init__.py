"""The LCRP pipeline: Locate (N), Core (K), Refine (H, δ), Path, over cached features."""

from lcrp_core.pipeline.evaluate import EvalContext, EvalResult, evaluate
from lcrp_core.pipeline.params import PRESETS, Params, preset
from lcrp_core.pipeline.stages import core, locate, path, refine, run, sample_frames

__all__ = ["EvalContext", "EvalResult", "PRESETS", "Params", "core", "evaluate", "locate", "path",
           "preset", "refine", "run", "sample_frames"]
