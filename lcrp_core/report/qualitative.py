"""Seeing the masks: the items (expressions, or videos) with the largest |Δ J&F| between a study's
best row and its reference row, with both rows' predictions and the ground truth on a strip of
frames (PNG/PDF) and optionally a side-by-side GIF.

The predictions are read back from the feature cache: the pipeline's stages run on cached
proposals, refinements, tracks and Path outputs, with a backend that refuses every expensive call
(:class:`CacheOnly`), so a report never re-runs extraction, refinement or propagation. An item
whose prediction is not in the cache is left out with a warning saying so.

Items are the keys of the trials' per-item scores: ``<video>/<exp_id>``, or for the Ref-DAVIS17
protocol ``<video>/anno<a>/obj<o>`` — ground-truth object ``o`` of annotation set ``a`` — which
is drawn as the one expression of set ``a`` that refers to object ``o`` (:func:`item_expression`):
its sentence, its predicted mask and object ``o``'s ground truth. The item's J&F is that of the
predicted object Hungarian matching paired with ``o`` (the protocol's score); that is this
expression's own mask unless the matching swapped the set's objects, so a swap shows as a mask
on the wrong object next to a J&F that looks fine.

``load_strips`` is the I/O edge (dataset, cache); ``strip_figure`` and ``strip_gif`` render.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from lcrp_core import schema
from lcrp_core.errors import LcrpError
from lcrp_core.report.fmt import format_params, format_score

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from lcrp_core.report.blocks import Loaded
    from lcrp_core.report.cells import Row


class CacheMiss(LcrpError):
    """A qualitative view needed something the cache does not hold."""


class CacheOnly:
    """A backend stand-in that serves what the cache cannot hold (region–text scoring of cached
    proposals, identity and config hashes) and refuses proposals, text encoding, refinement and
    propagation: those must come from the cache."""

    def __init__(self, backend: Any):
        self._backend = backend

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    def score(self, proposals: Any, text_feature: Any) -> Any:
        return self._backend.score(proposals, text_feature)

    def _refuse(self, what: str) -> None:
        raise CacheMiss(f"{what} is not in the cache (a qualitative view never recomputes it)")

    def propose(self, video: Any, t: int) -> Any:
        self._refuse(f"{video.name}: proposals of frame {t}")

    def encode_text(self, text: str) -> Any:
        self._refuse(f"the text feature of {text!r}")

    def refine(self, video: Any, t: int, mask: Any) -> Any:
        self._refuse(f"{video.name}: a refinement on frame {t}")

    def propagate(self, video: Any, t: int, seeds: Any) -> Any:
        self._refuse(f"{video.name}: a propagation from frame {t}")


@dataclass(frozen=True)
class StripItem:
    """One item: its sentence, both rows' J&F, frames T'×H×W×3 and masks T'×H×W (bool)."""

    key: str
    text: str
    frames: np.ndarray
    frame_ids: tuple[int, ...]
    gt: np.ndarray | None
    best: np.ndarray
    reference: np.ndarray
    best_jf: float
    reference_jf: float


@dataclass(frozen=True)
class Strip:
    best_label: str
    reference_label: str
    items: tuple[StripItem, ...]
    warnings: tuple[str, ...] = ()


def largest_differences(best: Mapping[str, Mapping[str, Any]], reference: Mapping[str, Mapping[str, Any]],
                        top: int) -> list[str]:
    """Item keys with the largest |Δ J&F| (ties: key order), at most ``top``."""
    keys = [k for k in best if k in reference]
    return sorted(keys, key=lambda k: (-abs(float(best[k][schema.JF]) - float(reference[k][schema.JF])),
                                       k))[:top]


_DAVIS_ITEM = re.compile(r"anno(\d+)/obj(\d+)")


def item_expression(video: Any, item: str) -> str | None:
    """The exp_id an item (its key without ``<video>/``) shows: the expression itself, or for a
    Ref-DAVIS17 item ``anno<a>/obj<o>`` the expression of set ``a`` referring to object ``o``;
    None when the video has none."""
    from lcrp_core.data.labels import expression_of_object

    if item in video.expressions:
        return item
    match = _DAVIS_ITEM.fullmatch(item)
    return expression_of_object(video, int(match[1]), int(match[2])) if match else None


def load_strip(study: Loaded, best: Row, reference: Row, *, top: int, frames: int,
               names: Sequence[str]) -> Strip:
    """Predictions of ``best`` and ``reference`` on their ``top`` most different items, from the
    cache (see the module doc). Raises CacheMiss / LcrpError when nothing can be shown."""
    from lcrp_core.pipeline import EvalContext, Params
    from lcrp_core.pipeline.stages import run
    from lcrp_core.report.blocks import full_params
    from lcrp_core.sweep.spec import parse_sweep_spec

    assert study.data is not None
    stored = schema.study_spec(study.data.user_attrs)
    if stored is None or not isinstance(stored.get("dataset"), Mapping):
        raise LcrpError("the study has no sweep spec naming its dataset and cache")
    if not stored.get("cache_dir"):
        raise LcrpError("the study's spec has no cache")
    spec = parse_sweep_spec(stored, source=f"study {study.name}", check_root=False)
    ctx = EvalContext.from_spec(spec, wrap_backend=CacheOnly)
    dataset = ctx.dataset
    best_items, ref_items = best.items(), reference.items()
    params = {"best": Params.from_mapping(full_params(best)),
              "reference": Params.from_mapping(full_params(reference))}
    items, warnings = [], []
    for key in largest_differences(best_items, ref_items, top):
        video_name, _, item = key.partition("/")
        video = dataset.videos.get(video_name)
        exp_id = item_expression(video, item) if video is not None else None
        if exp_id is None:
            warnings.append(f"item {key!r} is not an expression of the dataset; not shown")
            continue
        feats = ctx.features(video)
        try:
            masks = {name: run(feats, video.expressions[exp_id].text, p, video.size)[0]
                     for name, p in params.items()}
        except CacheMiss as exc:
            warnings.append(f"item {key!r} not shown: {exc}")
            continue
        ids = tuple(int(t) for t in np.unique(np.round(np.linspace(0, len(video) - 1, frames))))
        gt = video.gt_mask(exp_id)[list(ids)] if video.has_gt else None
        items.append(StripItem(
            key=key, text=video.expressions[exp_id].text,
            frames=np.stack([video.frame(t) for t in ids]), frame_ids=ids, gt=gt,
            best=masks["best"][list(ids)], reference=masks["reference"][list(ids)],
            best_jf=float(best_items[key][schema.JF]), reference_jf=float(ref_items[key][schema.JF])))
    if not items:
        raise CacheMiss("; ".join(warnings) or "no item both rows scored")
    best_label, ref_label = (format_params({n: r.params.get(n) for n in names}) for r in (best, reference))
    return Strip(best_label, ref_label, tuple(items), tuple(warnings))


#: Overlay colours (RGB 0–1): best row, reference row, ground truth.
BEST, REFERENCE, GT = (0.1, 0.75, 0.2), (0.9, 0.2, 0.6), (1.0, 1.0, 1.0)


def strip_figure(strip: Strip, *, title: str) -> Figure:
    """One row of frames per item: the image, the best row's mask (green) and the reference row's
    (magenta) as tinted areas with outlines, the ground truth as a white dashed outline."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    rows, cols = len(strip.items), max(len(it.frame_ids) for it in strip.items)
    height, width = strip.items[0].frames.shape[1:3]
    fig_width = 6.8
    fig = Figure(figsize=(fig_width, 0.6 + rows * (fig_width / cols * height / width + 0.5)),
                 layout="constrained")
    for item, sub in zip(strip.items, fig.subfigures(rows, 1, squeeze=False)[:, 0], strict=True):
        sub.suptitle(f"“{item.text}” ({item.key}): J&F {format_score(item.best_jf)} best, "
                     f"{format_score(item.reference_jf)} reference", fontsize=7)
        axes = sub.subplots(1, cols, squeeze=False)[0]
        for c, ax in enumerate(axes):
            ax.set_axis_off()
            if c >= len(item.frame_ids):
                continue
            ax.imshow(_tint(item.frames[c], item.best[c], item.reference[c]))
            for mask, colour, style in ((item.best[c], BEST, "solid"), (item.reference[c], REFERENCE, "solid"),
                                        (item.gt[c] if item.gt is not None else None, GT, "dashed")):
                if mask is not None and mask.any() and not mask.all():
                    ax.contour(mask.astype(float), levels=[0.5], colors=[colour], linewidths=0.8,
                               linestyles=style)
            ax.set_title(f"frame {item.frame_ids[c]}", fontsize=6, pad=2)
    handles = [Line2D([], [], color=BEST, label=f"best: {strip.best_label}"),
               Line2D([], [], color=REFERENCE, label=f"reference: {strip.reference_label}"),
               Line2D([], [], color="0.4", linestyle="--", label="ground truth")]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, frameon=False, fontsize=7)
    fig.suptitle(title, fontsize=8)
    return fig


def _tint(frame: np.ndarray, best: np.ndarray, reference: np.ndarray, alpha: float = 0.35) -> np.ndarray:
    out = frame.astype(np.float32) / 255
    for mask, colour in ((best, BEST), (reference, REFERENCE)):
        out[mask] = (1 - alpha) * out[mask] + alpha * np.asarray(colour, np.float32)
    return np.clip(out, 0, 1)


def strip_gif(strip: Strip, *, seconds_per_frame: float = 0.5) -> bytes:
    """An animated GIF: for each item and frame, the best row's overlay beside the reference's."""
    from PIL import Image

    pictures = []
    for item in strip.items:
        for c in range(len(item.frame_ids)):
            left = _tint(item.frames[c], item.best[c], np.zeros_like(item.best[c]))
            right = _tint(item.frames[c], np.zeros_like(item.reference[c]), item.reference[c])
            both = np.concatenate([left, np.ones((left.shape[0], 4, 3), np.float32), right], axis=1)
            pictures.append(Image.fromarray((both * 255).astype(np.uint8)))
    buf = io.BytesIO()
    pictures[0].save(buf, format="GIF", save_all=True, append_images=pictures[1:],
                     duration=int(seconds_per_frame * 1000), loop=0)
    return buf.getvalue()
