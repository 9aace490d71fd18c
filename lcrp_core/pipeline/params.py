"""The pipeline's parameters: one dataclass, validated once, with named presets.

Short names (used in specs, the trial database and reports) map to the field names:
N → num_frames, K → top_k, H → refine_rounds, delta → min_region_frac (δ, a fraction of the
frame area: 0.003 is 0.3 %), w_text, w_quality (Locate's score weights), lam (λ, Core's
support weight).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import ConfigDict, Field, model_validator

from lcrp_core.config import Model, Number, expect, fail, validate
from lcrp_core.errors import ConfigError

#: Refine stops early once the mask stops changing; more rounds than this are refused.
MAX_REFINE_ROUNDS = 20


class Params(Model):
    """LCRP parameters (a spec, the trial database and reports name them by short name: the
    field's alias).

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

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True)

    num_frames: Annotated[int, expect("N >= 1", lambda v: v >= 1), Field(alias="N")] = 10
    top_k: Annotated[int, expect("K >= 1", lambda v: v >= 1), Field(alias="K")] = 3
    refine_rounds: Annotated[int, expect(f"H >= 0 and H <= {MAX_REFINE_ROUNDS}",
                                         lambda v: 0 <= v <= MAX_REFINE_ROUNDS),
                             Field(alias="H")] = 3
    min_region_frac: Annotated[Number, expect("0 <= delta < 1 (a fraction: 0.003 is 0.3 %)",
                                              lambda v: 0 <= v < 1), Field(alias="delta")] = 0.003
    w_text: Annotated[Number, expect("w_text >= 0", lambda v: v >= 0)] = 0.5
    w_quality: Annotated[Number, expect("w_quality >= 0", lambda v: v >= 0)] = 0.5
    support_weight: Annotated[Number, expect("lam >= 0", lambda v: v >= 0),
                              Field(alias="lam")] = 1.0

    @model_validator(mode="after")
    def _some_weight(self) -> Params:
        if self.w_text + self.w_quality <= 0:
            raise fail("w_text", "expected w_text + w_quality > 0", self.w_text)
        return self

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, base: Params | None = None) -> Params:
        """Params from short names (N, K, H, delta, w_text, w_quality, lam) over ``base``."""
        unknown = sorted(set(values) - set(SHORT_NAMES))
        if unknown:
            raise ConfigError(f"unknown parameter(s) {unknown}; expected some of "
                              f"{sorted(SHORT_NAMES)}", key="params")
        return validate(cls, {**(base or cls()).to_short(), **values}, source=None)

    def to_short(self) -> dict[str, Any]:
        """{short name: value} for every parameter."""
        return self.model_dump(by_alias=True)


#: short name → field name
SHORT_NAMES = {f.alias or name: name for name, f in Params.model_fields.items()}

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
