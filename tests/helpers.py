"""Helpers shared by several test files (no test file imports another test file).

- studies: real Optuna studies with the trial schema (docs/trial-schema.md), written with Optuna's
  own API only, independently of lcrp_core.report, the way the sweep driver writes them
  (:func:`make_study`, :func:`trial`, :func:`cells_of`);
- sweep specs: :func:`synth_spec`, a points spec on the synthetic benchmark;
- metrics: a straightforward per-frame J, F and statistics written here from the definitions
  (the structure of davis2017-evaluation's ``metrics.py``: shifted copies for the boundary map, a
  meshgrid disk, one full-frame dilation per side and frame), also timed by
  bench/bench_metrics.py, and :func:`random_masks`.

Tiny datasets in the benchmarks' on-disk layouts are built by tests/fixtures.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import optuna
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

# --- studies -------------------------------------------------------------------------------------

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


# --- sweep specs ---------------------------------------------------------------------------------

def synth_spec(root: Path | str, study: str = "s", **over) -> dict:
    """A points spec on the synthetic benchmark (classical backend); ``over`` replaces keys."""
    spec = {"study": study,
            "dataset": {"kind": "mevis", "root": str(root), "split": "valid"},
            "backend": {"name": "classical"},
            "base": {"preset": "lcrp-mevis"},
            "points": [{"N": 2, "K": 1}, {"N": 3, "K": 2}, {"N": 4, "K": 3}]}
    spec.update(over)
    return spec


# --- metrics: the straightforward reference ------------------------------------------------------

def ref_seg2bmap(seg: np.ndarray) -> np.ndarray:
    """Boundary map of one H×W mask from shifted copies, with the edge rules applied last."""
    seg = seg.astype(bool)
    right, down, diag = np.zeros_like(seg), np.zeros_like(seg), np.zeros_like(seg)
    right[:, :-1] = seg[:, 1:]
    down[:-1, :] = seg[1:, :]
    diag[:-1, :-1] = seg[1:, 1:]
    b = (seg ^ right) | (seg ^ down) | (seg ^ diag)
    b[-1, :] = seg[-1, :] ^ right[-1, :]
    b[:, -1] = seg[:, -1] ^ down[:, -1]
    b[-1, -1] = False
    return b


def ref_disk(radius: float) -> np.ndarray:
    grid = np.arange(-radius, radius + 1)
    x, y = np.meshgrid(grid, grid)
    return (x ** 2 + y ** 2 <= radius ** 2).astype(np.uint8)


def ref_jaccard(pred: np.ndarray, gt: np.ndarray, void: np.ndarray | None = None) -> float:
    keep = np.ones_like(gt, dtype=bool) if void is None else ~void.astype(bool)
    p, g = pred.astype(bool), gt.astype(bool)
    inter = np.sum(p & g & keep)
    union = np.sum((p | g) & keep)
    return 1.0 if union == 0 else float(inter / union)


def ref_f(pred: np.ndarray, gt: np.ndarray, void: np.ndarray | None = None) -> float:
    keep = np.ones_like(gt, dtype=bool) if void is None else ~void.astype(bool)
    radius = np.ceil(0.008 * np.linalg.norm(pred.shape))
    fg_b = ref_seg2bmap(pred.astype(bool) & keep)
    gt_b = ref_seg2bmap(gt.astype(bool) & keep)
    kernel = ref_disk(radius)
    fg_dil = cv2.dilate(fg_b.astype(np.uint8), kernel)
    gt_dil = cv2.dilate(gt_b.astype(np.uint8), kernel)
    n_fg, n_gt = np.sum(fg_b), np.sum(gt_b)
    if n_fg == 0 and n_gt > 0:
        precision, recall = 1, 0
    elif n_fg > 0 and n_gt == 0:
        precision, recall = 0, 1
    elif n_fg == 0 and n_gt == 0:
        precision, recall = 1, 1
    else:
        precision = np.sum(fg_b * gt_dil) / float(n_fg)
        recall = np.sum(gt_b * fg_dil) / float(n_gt)
    if precision + recall == 0:
        return 0.0
    return float(2 * precision * recall / (precision + recall))


def ref_jf_stack(pred: np.ndarray, gt: np.ndarray, void: np.ndarray | None = None):
    """Per-frame J and F of T×H×W stacks, one frame at a time."""
    vs = [None] * len(gt) if void is None else list(void)
    j = np.array([ref_jaccard(p, g, v) for p, g, v in zip(pred, gt, vs)])
    f = np.array([ref_f(p, g, v) for p, g, v in zip(pred, gt, vs)])
    return j, f


def ref_statistics(values: np.ndarray) -> tuple[float, float, float]:
    n = len(values)
    ids = (np.round(np.linspace(1, n, 5) + 1e-10) - 1).astype(int)
    bins = [values[ids[i]:ids[i + 1] + 1] for i in range(4)]
    return float(np.nanmean(values)), float(np.nanmean(values > 0.5)), \
        float(np.nanmean(bins[0]) - np.nanmean(bins[3]))


def random_masks(rng: np.random.Generator, t: int, h: int, w: int, *, blobs: int = 3) -> np.ndarray:
    """T×H×W bool: a few random rectangles and ellipses per frame (some frames empty, some
    touching the image border), plus salt noise."""
    out = np.zeros((t, h, w), dtype=np.uint8)
    for k in range(t):
        if rng.random() < 0.15:
            continue
        for _ in range(rng.integers(1, blobs + 1)):
            cy, cx = int(rng.integers(-2, h + 2)), int(rng.integers(-2, w + 2))
            ry, rx = int(rng.integers(1, h // 2 + 1)), int(rng.integers(1, w // 2 + 1))
            if rng.random() < 0.5:
                out[k, max(cy - ry, 0):cy + ry, max(cx - rx, 0):cx + rx] = 1
            else:
                cv2.ellipse(out[k], (cx, cy), (rx, ry), float(rng.integers(0, 180)), 0, 360, 1, -1)
        out[k][rng.random((h, w)) < 0.01] ^= 1
    return out.astype(bool)
