"""How parameters and scores are printed and read back: one place for every table, plot and CLI.

δ is stored as a fraction of the frame area (0.003) and printed as a percent ("0.3%"); J&F is
stored at full precision on the 0–100 scale and printed with one decimal.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from lcrp_core import schema
from lcrp_core.pipeline.delta import parse_delta as parse_delta  # δ's one rule, re-exported
from lcrp_core.pipeline.delta import percent_text
from lcrp_core.pipeline.params import SHORT_NAMES

#: What a table shows where a value was not measured or is missing.
DASH = "–"
#: Canonical order of parameter names in tables, exports and plots.
PARAM_ORDER: tuple[str, ...] = (*SHORT_NAMES, "repeat")
#: Plain (Unicode) labels of parameters and scores; HTML and LaTeX forms live in tables.HEADERS.
LABELS = {"delta": "δ", "lam": "λ", schema.JF: "J&F"}



def label(name: str) -> str:
    """Plain label of a parameter or score name: ``delta`` → ``δ``, ``JF`` → ``J&F``."""
    return LABELS.get(name, name)


def order_names(names: Any) -> list[str]:
    """Parameter names in PARAM_ORDER first, then any others sorted."""
    names = set(names)
    return [n for n in PARAM_ORDER if n in names] + sorted(names - set(PARAM_ORDER))


def format_number(value: float) -> str:
    """A parameter value as short as it is exact: 10 → "10", 0.5 → "0.5", 1e-05 → "1e-05"."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return format(value, ".6g") if isinstance(value, float) else str(value)


def format_delta(frac: float, *, digits: int | None = None) -> str:
    """δ as a percent of the frame area: 0.003 → "0.3%", 0.0015 → "0.15%", 0 → "0%"; with
    ``digits`` significant digits for continuous values (TPE): 0.000515822 → "0.052%"."""
    if digits is not None:
        return f"{float(f'{frac * 100:.{digits}g}'):g}%"
    return percent_text(frac)


def format_param(name: str, value: Any, *, digits: int | None = None) -> str:
    """One parameter value as tables print it (δ as a percent); ``digits``: significant digits
    of continuous (TPE) values."""
    if value is None:
        return DASH
    if name == "delta" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return format_delta(value, digits=digits)
    if digits is not None and isinstance(value, float) and not value.is_integer():
        return f"{value:.{max(digits, 3)}g}"
    return format_number(value)


def format_params(params: Mapping[str, Any], *, sep: str = " ") -> str:
    """``N=10 K=3 H=3 δ=0.3%`` in canonical order."""
    return sep.join(f"{label(k)}={format_param(k, params[k])}" for k in order_names(params))


def format_score(value: float | None, std: float | None = None, *, decimals: int = 1) -> str:
    """A 0–100 score with one decimal, "76.7" or "76.7 ± 0.2"; DASH when not measured."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    text = f"{value:.{decimals}f}"
    return text if std is None else f"{text} ± {std:.{decimals}f}"


def display_value(value: float, *, decimals: int = 1) -> float:
    """The value a reader sees once printed with ``decimals`` decimals (used to pick bold rows)."""
    return float(f"{value:.{decimals}f}")


def param_key(params: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """A hashable key of a parameter set; numbers compare at 12 significant digits (10 == 10.0)."""
    return tuple(sorted((k, _norm(v)) for k, v in params.items()))


def _norm(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(f"{value:.12g}")
    return value


def params_match(params: Mapping[str, Any], selector: Mapping[str, Any]) -> bool:
    """Whether ``params`` has every item of ``selector`` (numbers compared as in param_key)."""
    return all(k in params and _norm(params[k]) == _norm(v) for k, v in selector.items())
