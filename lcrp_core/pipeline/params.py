"""The pipeline's parameters: one dataclass, validated once, with named presets.

Short names (used in specs, the trial database and reports) map to the field names:
N → num_frames, K → top_k, H → refine_rounds, delta → min_region_frac (δ, a fraction of the
frame area: 0.003 is 0.3 %), w_text, w_quality (Locate's score weights), lam (λ, Core's
support weight).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from lcrp_core.errors import ConfigError

#: short name → field name
SHORT_NAMES = {
    "N": "num_frames",
    "K": "top_k",
    "H": "refine_rounds",
    "delta": "min_region_frac",
    "w_text": "w_text",
    "w_quality": "w_quality",
    "lam": "support_weight",
}
_FIELD_TO_SHORT = {v: k for k, v in SHORT_NAMES.items()}
#: Refine stops early once the mask stops changing; more rounds than this are refused.
MAX_REFINE_ROUNDS = 20


@dataclass(frozen=True)
class Params:
    """LCRP parameters.

    num_frames (N): frames sampled by Locate, ``round(linspace(0, T-1, N))``; N ≥ 1 (N > T
        samples every frame, as N = T).
    top_k (K): candidates Core propagates and cross-checks; K ≥ 1 (K=1: take the top score;
        K more than the candidates takes them all).
    refine_rounds (H): Refine rounds on the anchor mask; 0 ≤ H ≤ MAX_REFINE_ROUNDS (H=0: no
        refinement).
    min_region_frac (δ): components and holes smaller than δ × the frame's area (height × width)
        in pixels are removed; 0 ≤ δ < 1.
    w_text, w_quality: Locate's score = w_text·z(s) + w_quality·q; both ≥ 0.
    support_weight (λ): Core's anchor maximises score + λ·support; λ ≥ 0.
    """

    num_frames: int = 10
    top_k: int = 3
    refine_rounds: int = 3
    min_region_frac: float = 0.003
    w_text: float = 0.5
    w_quality: float = 0.5
    support_weight: float = 1.0

    def __post_init__(self) -> None:
        def need(cond: bool, name: str, what: str) -> None:
            if not cond:
                raise ConfigError(f"expected {what}, got {getattr(self, name)!r}",
                                  key=_FIELD_TO_SHORT[name])

        for name in ("num_frames", "top_k", "refine_rounds"):
            value = getattr(self, name)
            need(isinstance(value, int) and not isinstance(value, bool), name, "an integer")
        for name in ("min_region_frac", "w_text", "w_quality", "support_weight"):
            value = getattr(self, name)
            need(isinstance(value, (int, float)) and not isinstance(value, bool), name, "a number")
        need(self.num_frames >= 1, "num_frames", "N >= 1")
        need(self.top_k >= 1, "top_k", "K >= 1")
        need(0 <= self.refine_rounds <= MAX_REFINE_ROUNDS, "refine_rounds",
             f"H >= 0 and H <= {MAX_REFINE_ROUNDS}")
        need(0 <= self.min_region_frac < 1, "min_region_frac", "0 <= delta < 1 (a fraction: 0.003 is 0.3 %)")
        need(self.w_text >= 0, "w_text", "w_text >= 0")
        need(self.w_quality >= 0, "w_quality", "w_quality >= 0")
        need(self.w_text + self.w_quality > 0, "w_text", "w_text + w_quality > 0")
        need(self.support_weight >= 0, "support_weight", "lam >= 0")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, base: Params | None = None) -> Params:
        """Params from short names (N, K, H, delta, w_text, w_quality, lam) over ``base``."""
        unknown = sorted(set(values) - set(SHORT_NAMES))
        if unknown:
            raise ConfigError(f"unknown parameter(s) {unknown}; expected some of {sorted(SHORT_NAMES)}",
                              key="params")
        merged = asdict(base or cls())
        merged.update({SHORT_NAMES[k]: v for k, v in values.items()})
        return cls(**merged)

    def to_short(self) -> dict[str, Any]:
        """{short name: value} for every parameter."""
        return {_FIELD_TO_SHORT[f.name]: getattr(self, f.name) for f in fields(self)}


#: Named presets (the seed's defaults, and FindTrack's selection rule as a special case).
PRESETS: dict[str, Params] = {
    "lcrp-ref-davis17": Params(num_frames=10, top_k=3, refine_rounds=3, min_region_frac=0.003),
    "lcrp-mevis": Params(num_frames=10, top_k=5, refine_rounds=3, min_region_frac=0.003),
    "findtrack": Params(num_frames=10, top_k=1, refine_rounds=0, min_region_frac=0.0,
                        w_text=0.5, w_quality=0.5),
}


def preset(name: str) -> Params:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; expected one of {sorted(PRESETS)}", key="preset")
    return PRESETS[name]
