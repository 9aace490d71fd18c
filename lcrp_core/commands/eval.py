"""`lcrp eval`: score a folder of predicted PNGs with J, F and J&F (0–100).

Ground truth: ``--gt`` is a dataset root for every protocol (``--dataset``, ``--split``;
``ref-davis17`` for the DAVIS protocols and ``mevis`` for per-expression by default), or, for
the DAVIS protocols, ``--gt-annotations`` names a bare DAVIS annotation folder
``<video>/<frame>.png`` (palette label maps, 255 void: e.g. DAVIS's ``Annotations/480p``).

Predictions:

- ``davis-semi`` / ``davis-unsupervised``: label maps ``<pred>/<video>/<frame>.png`` for every
  ground-truth frame. For ``davis-unsupervised``, a ``--pred`` folder holding ``anno_0`` ..
  ``anno_3`` (the Ref-DAVIS17 layout ReferFormer and ``lcrp predict`` write) is scored set by set
  and the sets are averaged.
- ``per-expression``: ``<pred>/<video>/<exp_id>/<frame>.png`` (0/255 or palette, non-zero =
  foreground); a folder written by ``lcrp predict`` is read from its ``Annotations/``.

Writes ``<out>/scores.csv`` (one row per scored object or expression, 0–100, full precision),
atomically; ``--out`` defaults to ``eval/<name of the prediction folder>``, never the prediction
folder itself.
"""

from __future__ import annotations

import re
from pathlib import Path

#: A Ref-DAVIS17 prediction folder per annotation set.
_ANNO_DIR = re.compile(r"anno_(\d+)")
_CSV_COLUMNS = ("key", "video", "JF", "J", "F", "J_recall", "J_decay", "F_recall", "F_decay")


def register(sub, common) -> None:
    p = sub.add_parser("eval", parents=[common], help="score predicted PNGs (J, F, J&F)",
                       description="Score a folder of predicted PNGs against ground truth with "
                                   "the DAVIS or MeViS protocol; print J&F, J, F (0-100) and "
                                   "write per-object/per-expression scores to a CSV.")
    gt = p.add_mutually_exclusive_group(required=True)
    gt.add_argument("--gt", metavar="ROOT", help="the dataset root (--dataset, --split)")
    gt.add_argument("--gt-annotations", metavar="DIR",
                    help="davis-*: a DAVIS annotation folder <video>/<frame>.png instead")
    p.add_argument("--pred", required=True, metavar="DIR", help="predicted PNGs")
    p.add_argument("--protocol", required=True,
                   help="davis-semi | davis-unsupervised | per-expression")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="results folder: scores.csv (default: eval/<name of --pred>)")
    p.add_argument("--dataset", default=None,
                   help="--gt's dataset kind (default: ref-davis17 for davis-*, mevis for per-expression)")
    p.add_argument("--split", default=None, help="--gt's split (default: the kind's default)")
    p.add_argument("--exclude-void", action="store_true",
                   help="davis-*: leave void pixels (255) out of J and F; davis2017-evaluation "
                        "counts them as background")
    p.set_defaults(func=run)


def _read_labels(paths: list[Path]):
    """T×H×W uint8 label maps from PNG paths; a size change names the file."""
    import numpy as np

    from lcrp_core.data.io import read_label_png
    from lcrp_core.errors import DataError

    first = read_label_png(paths[0])
    out = np.empty((len(paths), *first.shape), dtype=np.uint8)
    out[0] = first
    for t, path in enumerate(paths[1:], start=1):
        label = read_label_png(path)
        if label.shape != first.shape:
            raise DataError(f"label map is {label.shape[0]}×{label.shape[1]}, {paths[0].name} is "
                            f"{first.shape[0]}×{first.shape[1]}", path=path)
        out[t] = label
    return out


def _objects(paths: list[Path]):
    from lcrp_core.data.davis import objects_from_labels

    return objects_from_labels(_read_labels(paths))


def _no_frames(t: int):
    from lcrp_core.errors import DataError

    raise DataError("frames are not available: this video was read from an annotation folder")


def _annotation_dataset(gt_dir: Path):
    """A Dataset of the videos in a DAVIS annotation folder ``<video>/<frame>.png``."""
    from functools import partial

    from lcrp_core.data.io import require_dir
    from lcrp_core.data.model import Dataset, Video
    from lcrp_core.errors import DataError

    gt_dir = require_dir(gt_dir, "ground-truth annotation")
    videos = {}
    for folder in sorted(p for p in gt_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        paths = sorted(folder.glob("*.png"))
        if not paths:
            continue
        videos[folder.name] = Video(folder.name, [p.stem for p in paths], {}, frame_loader=_no_frames,
                                    objects_loader=partial(_objects, paths))
    if not videos:
        raise DataError("no video folders with PNG annotations (expected <video>/<frame>.png)",
                        path=gt_dir)
    return Dataset("ref-davis17", gt_dir, gt_dir.name, videos)


def _prediction_paths(folder: Path, frames: list[str]) -> list[Path]:
    from lcrp_core.data.io import require_files

    return require_files(folder, frames, ".png", what="prediction")


def _score_davis(args, evaluator, video):
    import numpy as np

    from lcrp_core.errors import DataError

    pred_root = Path(args.pred)
    if args.protocol == "davis-semi":
        paths = _prediction_paths(pred_root / video.name, list(video.frame_names))
        labels = _read_labels(paths)
        obj_ids = evaluator.object_ids(video)
        unknown = sorted(set(np.unique(labels).tolist()) - {0, *obj_ids})
        if unknown:
            t = next(t for t in range(len(labels)) if np.isin(labels[t], unknown).any())
            raise DataError(f"predicted label(s) {unknown} are not ground-truth objects {list(obj_ids)}",
                            path=paths[t])
        return evaluator.score_video(video, {str(o): labels == o for o in obj_ids})
    sets = {int(m.group(1)): p for p in pred_root.iterdir()
            if p.is_dir() and (m := _ANNO_DIR.fullmatch(p.name))} or {0: pred_root}
    return evaluator.score_label_maps(video, {
        a: _read_labels(_prediction_paths(folder / video.name, list(video.frame_names)))
        for a, folder in sorted(sets.items())})


def _expression_root(pred: Path) -> Path:
    """``<pred>/Annotations`` for a folder written by ``lcrp predict``, else ``pred``."""
    from lcrp_core.pipeline.predict import PREDICT_JSON

    return pred / "Annotations" if (pred / PREDICT_JSON).is_file() else pred


def _score_expressions(args, evaluator, video):
    if not video.expressions:
        return None
    root = _expression_root(Path(args.pred))
    return evaluator.score_video(video, {
        exp_id: _read_labels(_prediction_paths(root / video.name / exp_id,
                                               list(video.frame_names))) != 0
        for exp_id in video.expressions})


def _write_csv(path: Path, scores) -> int:
    import csv

    from lcrp_core.data.io import atomic_open

    rows = 0
    with atomic_open(path, "w") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(_CSV_COLUMNS)
        for s in scores:
            for it in s.items:
                j, fm = 100 * it.J.mean, 100 * it.F.mean
                writer.writerow([it.key, s.video, repr((j + fm) / 2), repr(j), repr(fm),
                                 repr(100 * it.J.recall), repr(100 * it.J.decay),
                                 repr(100 * it.F.recall), repr(100 * it.F.decay)])
                rows += 1
    return rows


def run(args) -> int:
    from tqdm import tqdm

    from lcrp_core.data import load_dataset
    from lcrp_core.data.io import require_dir
    from lcrp_core.errors import ConfigError
    from lcrp_core.metrics import PROTOCOLS, Evaluator

    if args.protocol not in PROTOCOLS:
        raise ConfigError(f"expected one of {list(PROTOCOLS)}, got {args.protocol!r}", key="--protocol")
    require_dir(args.pred, "prediction")
    score = _score_expressions if args.protocol == "per-expression" else _score_davis
    if args.gt_annotations is not None:
        if args.protocol == "per-expression":
            raise ConfigError("a bare annotation folder holds no expressions; pass the dataset "
                              "root with --gt", key="--gt-annotations")
        dataset = _annotation_dataset(Path(args.gt_annotations))
    else:
        kind = args.dataset or ("mevis" if args.protocol == "per-expression" else "ref-davis17")
        dataset = load_dataset(kind, args.gt, args.split)
    # each video is scored once: keep only the current video's prepared ground truth
    evaluator = Evaluator(dataset, args.protocol, exclude_void=args.exclude_void, cache_bytes=0)
    scores = []
    for video in tqdm(dataset, desc="videos", unit="video", disable=args.quiet or None, leave=False):
        s = score(args, evaluator, video)
        if s is not None:
            scores.append(s)
    summary = evaluator.summarize(scores)
    out = (Path(args.out) if args.out else Path("eval") / Path(args.pred).resolve().name) / "scores.csv"
    rows = _write_csv(out, scores)
    what = "expressions" if args.protocol == "per-expression" else "objects"
    print(f"{args.protocol}: {len(summary.per_video)} videos, {rows} {what}")
    print(f"J&F {summary.JF:.1f}   J {summary.J:.1f}   F {summary.F:.1f}")
    print(f"J-recall {summary.J_recall:.1f}   J-decay {summary.J_decay:.1f}   "
          f"F-recall {summary.F_recall:.1f}   F-decay {summary.F_decay:.1f}")
    print(f"per-{what[:-1]} scores: {out}")
    return 0
