"""Builders of real Optuna studies with the trial schema (docs/trial-schema.md), for the report
and db tests. Written with Optuna's own API only, independently of lcrp_core.report, the way the
sweep driver writes them: study user_attrs lcrp_kind / lcrp_cells / lcrp_spec, trial params of
the swept names, user_attrs lcrp_cell, lcrp_params, J, F, JF, per_video, resources.

    from tests.test_report_support import cells_of, make_study, trial
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

BASE = {"N": 10, "K": 3, "H": 3, "delta": 0.003, "w_text": 0.5, "w_quality": 0.5, "lam": 1.0}
_INT = {"N", "K", "H", "repeat"}


def cells_of(points: Sequence[Mapping[str, Any]], *, repeats: int = 1,
             base: Mapping[str, Any] = BASE) -> list[dict[str, Any]]:
    """lcrp_cells as the sweep driver writes them: every point × repeats, ids c000, c001, ..."""
    out = []
    for point in points:
        for r in range(repeats):
            out.append({"cell": f"c{len(out):03d}", "params": {**base, **point}, "repeat": r})
    return out


def trial(cell: Mapping[str, Any] | None, value: float | None, *, state: str = "COMPLETE",
          swept: Sequence[str] = ("N", "K"), per_video: Mapping[str, float] | None = None,
          params: Mapping[str, Any] | None = None, **attrs: Any) -> dict[str, Any]:
    """One trial of ``cell`` (its swept params; ``repeat`` when the cell has repeat > 0 or
    ``attrs['with_repeat']``), or of explicit ``params`` (TPE)."""
    with_repeat = attrs.pop("with_repeat", False)
    if cell is not None:
        p = {n: cell["params"][n] for n in swept}
        if with_repeat:
            p["repeat"] = cell["repeat"]
        user_attrs = {"lcrp_cell": cell["cell"], "lcrp_params": dict(cell["params"])}
    else:
        p, user_attrs = dict(params or {}), {"lcrp_params": {**BASE, **(params or {})}}
    if value is not None:
        user_attrs.update(JF=value, J=value - 1.0, F=value + 1.0)
    if per_video is not None:
        user_attrs["per_video"] = {v: {"J": s - 1, "F": s + 1, "JF": s} for v, s in per_video.items()}
    user_attrs.update(attrs)
    return {"state": state, "value": value, "params": p, "user_attrs": user_attrs}


def make_study(url: str, name: str, trials: Sequence[Mapping[str, Any]], *, kind: str = "points",
               cells: Sequence[Mapping[str, Any]] | None = None,
               spec: Mapping[str, Any] | None = None) -> optuna.Study:
    """A study in ``url`` holding ``trials`` (dicts from :func:`trial`) in order."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=name, storage=url, direction="maximize")
    study.set_user_attr("lcrp_kind", kind)
    if cells is not None:
        study.set_user_attr("lcrp_cells", list(cells))
    study.set_user_attr("lcrp_spec", dict(spec or {"base": {"preset": None, **BASE}}))
    values: dict[str, list[Any]] = {}
    for t in trials:
        for k, v in t["params"].items():
            values.setdefault(k, []).append(v)
    dists = {k: (IntDistribution if k in _INT else FloatDistribution)(min(v), max(v))
             for k, v in values.items()}
    for t in trials:
        study.add_trial(create_trial(
            state=TrialState[t["state"]], value=t["value"], params=t["params"],
            distributions={k: dists[k] for k in t["params"]}, user_attrs=t["user_attrs"]))
    return study
