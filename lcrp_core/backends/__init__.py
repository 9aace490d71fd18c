"""Backends: what the pipeline asks of a segmenter + region–text scorer (proposals, scores,
refinement, propagation), and the two that implement it: ``classical`` (weight-free) and
``sam2-clip`` (SAM2 + open_clip). Names are imported on first access; models load lazily.
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach(__name__, submod_attrs={
    "base": ["BACKENDS", "Backend", "Proposals", "backend_class", "create_backend",
             "load_backend_config", "resolve_config"],
})
