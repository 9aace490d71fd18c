"""The LCRP pipeline: Locate (N), Core (K), Refine (H, δ), Path, over cached features.

Names are imported on first access: ``EvalContext``, ``EvalResult`` and ``evaluate`` pull in the
datasets and metrics, the stages and parameters do not.
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach(__name__, submod_attrs={
    "params": ["PRESETS", "Params", "preset"],
    "stages": ["core", "locate", "path", "refine", "run", "sample_frames"],
    "evaluation": ["EvalContext", "EvalResult", "evaluate"],
})
