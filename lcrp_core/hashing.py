"""Content hashes of configurations: the keys of the feature cache, predictions and studies."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def config_hash(config: Mapping[str, Any], *, digits: int = 12) -> str:
    """Stable short hash (sha256, ``digits`` hex digits) of the canonical JSON of a mapping."""
    blob = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:digits]
