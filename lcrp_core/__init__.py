"""LCRP sweeps: ablation sweeps for training-free referring video object segmentation.

The public API, imported on first use (``import lcrp_core`` loads no torch, optuna or pandas)::

    import lcrp_core
    s = lcrp_core.open_study("demo_davis_nk")      # a sweep study (Study: trials, best_params)
    ctx = s.eval_context(videos=["synth_000"])     # an EvalContext on the study's data and backend
    ctx.evaluate(s.best_params).per_video          # an EvalResult

- studies: :func:`open_study` → :class:`Study` (lcrp_core.api);
- the pipeline: :class:`Params`, :data:`PRESETS`, :func:`preset`, :class:`EvalContext`,
  :class:`EvalResult`, :func:`evaluate` (lcrp_core.pipeline);
- data: :func:`load_dataset` (lcrp_core.data); a sweep's spec: :class:`SweepSpec`
  (lcrp_core.sweep.spec);
- errors a user can act on: :class:`LcrpError` and its :class:`ConfigError`, :class:`DataError`,
  :class:`WeightsError` (lcrp_core.errors).
"""

import lazy_loader as _lazy

__version__ = "0.1.0"

#: submodule → the public names it provides (loaded on first access)
_LAZY = {
    "api": ["Study", "open_study"],
    "pipeline.params": ["PRESETS", "Params", "preset"],
    "pipeline.evaluation": ["EvalContext", "EvalResult", "evaluate"],
    "data": ["load_dataset"],
    "sweep.spec": ["SweepSpec"],
    "errors": ["ConfigError", "DataError", "LcrpError", "WeightsError"],
}

__getattr__, __dir__, __all__ = _lazy.attach(__name__, submod_attrs=_LAZY)
