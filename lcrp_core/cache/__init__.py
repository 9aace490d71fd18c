"""The feature cache: checksummed entries on disk (``store``), memoized access to a video's
features for the pipeline (``features``) and one-off extraction (``extract``). Names are imported
on first access.
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach(__name__, submod_attrs={
    "store": ["CacheStore"],
    "features": ["CacheScope", "Counters", "Memo", "VideoFeatures"],
    "extract": ["ExtractJob", "ExtractReport", "cache_summary", "extract"],
})
