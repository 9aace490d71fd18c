"""δ (``delta``, ``min_region_frac``) as users write it: one rule for sweep specs, reference
imports and report selectors.

A number is a fraction of the frame area (``0.003``); a string ending in ``%`` is a percent
(``"0.3%"``); a bare number of 0.05 or more is refused as a likely percent written without its
sign, with a message suggesting the percent form.
"""

from __future__ import annotations

import math
import re
from typing import Any

#: A bare fraction at or above this is refused as a probable percent without its sign.
MAX_BARE_FRACTION = 0.05

_PERCENT = re.compile(r"^\s*([-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?)\s*%\s*$")
_EXPECTED = "expected a fraction like 0.003 or a percent like '0.3%'"


def _short(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else format(value, ".6g")


def percent_text(frac: float) -> str:
    """A fraction as a percent: 0.003 → "0.3%", 0.0015 → "0.15%", 0 → "0%"."""
    return f"{_short(round(frac * 100, 9))}%"


def parse_delta(value: Any) -> float:
    """δ as a fraction from ``0.003`` / ``"0.003"`` (a fraction) or ``"0.3%"`` (a percent).

    Raises ValueError with a message a user can act on (a bare ``0.3`` suggests ``'0.3%'``)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"{_EXPECTED}, got {value!r}")
    if isinstance(value, str):
        match = _PERCENT.match(value)
        if match:
            frac = float(match.group(1)) / 100
        else:
            try:
                frac = _bare(float(value), value)
            except ValueError as exc:
                if "read as a fraction" in str(exc):
                    raise
                raise ValueError(f"{_EXPECTED}, got {value!r}") from None
    else:
        frac = _bare(float(value), value)
    if not (math.isfinite(frac) and 0 <= frac < 1):
        raise ValueError(f"expected 0 <= delta < 100%, got {value!r}")
    return round(frac, 12)


def _bare(frac: float, raw: Any) -> float:
    if frac >= MAX_BARE_FRACTION:
        raise ValueError(f"{raw!r} read as a fraction is {percent_text(frac)} of the frame; "
                         f"write '{_short(frac)}%' for a percent, or '{percent_text(frac)}' "
                         f"if that is what is meant")
    return frac
