"""`lcrp eval`: score a folder of predicted PNGs with J, F and J&F (0–100).

Ground truth: ``--gt`` is a dataset root for every protocol (``--dataset``, ``--split``;
``ref-davis17`` for the DAVIS protocols and ``mevis`` for per-expression by default), or, for
the DAVIS protocols, ``--gt-annotations`` names a bare DAVIS annotation folder
``<video>/<frame>.png`` (palette label maps, 255 void: e.g. DAVIS's ``Annotations/480p``).

Predictions:

- ``davis-semi`` / ``davis-unsupervised``: label maps ``<pred>/<video>/<frame>.png`` for every
  ground-truth frame. For ``davis-unsupervised``, a ``--pred`` folder holding ``anno_0`` ..
  ``anno_3`` (the Ref-DAVIS17 layout ReferFormer and ``lcrp predict`` write) is scored set by set
  and the sets are averaged. ``davis-semi`` reads (and checks) only the frames it
  scores: every frame but the first and the last, as davis2017-evaluation does.
- ``per-expression``: predictions are ``<pred>/<video>/<exp_id>/<frame>.png`` read as MeViS's ``eval_mevis.py``
  reads them (OpenCV greyscale: grey, palette, RGB or 1-bit PNGs; non-zero = foreground); a folder written
  by ``lcrp predict`` is read from its ``Annotations/``.

Videos are scored in parallel (``--jobs``, joblib); the result does not depend on the order.

Writes ``<out>/scores.csv`` (one row per scored object or expression, 0–100, full precision),
atomically; ``--out`` defaults to ``eval/<name of the prediction folder>``, never the prediction
folder itself.
"""

from __future__ import annotations

import re
from pathlib import Path

from lcrp_core import schema

#: A Ref-DAVIS17 prediction folder per annotation set.
_ANNO_DIR = re.compile(r"anno_(\d+)")
_CSV_COLUMNS = ("key", "video", schema.JF, schema.J, schema.F, schema.J_RECALL, schema.J_DECAY,
                schema.F_RECALL, schema.F_DECAY)


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
    p.add_argument("--void", choices=("exclude", "background"), default=None,
                   help="davis-*: how ground-truth void pixels (255) are scored; default as "
                        "davis2017-evaluation: excluded from J and F in davis-unsupervised, "
                        "background in davis-semi")
    p.add_argument("-j", "--jobs", type=int, default=None, metavar="N",
                   help="videos scored in parallel (default: every available core)")
    p.set_defaults(func=run, optuna_used=False)


def _prediction_paths(folder: Path, frames: list[str]) -> list[Path]:
    from lcrp_core.data.io import require_files

    return require_files(folder, frames, ".png", what="prediction")


def _score_semi(pred_root: Path, evaluator, video):
    """davis-semi: only the scored frames (all but the first and the last) are read."""
    import numpy as np

    from lcrp_core.data.davis import read_label_stack
    from lcrp_core.errors import DataError

    obj_ids = evaluator.object_ids(video)   # checks the video is long enough first
    paths = _prediction_paths(pred_root / video.name, list(video.frame_names[1:-1]))
    scored = read_label_stack(paths)
    # objects 1..n (davis2017-evaluation's count) with no label above n need no np.unique
    n = len(obj_ids)
    if scored.size and (int(scored.max()) > n or tuple(obj_ids) != tuple(range(1, n + 1))):
        unknown = sorted(set(np.unique(scored).tolist()) - {0, *obj_ids})
    else:
        unknown = []
    if unknown:
        t = next(t for t in range(len(scored)) if np.isin(scored[t], unknown).any())
        raise DataError(f"predicted label(s) {unknown} are not ground-truth objects {list(obj_ids)}",
                        path=paths[t])
    return evaluator.score_object_labels(video, scored)


def _score_davis(pred_root: Path, evaluator, video):
    from lcrp_core.data.davis import read_label_stack

    if evaluator.protocol == "davis-semi":
        return _score_semi(pred_root, evaluator, video)
    sets = {int(m.group(1)): p for p in pred_root.iterdir()
            if p.is_dir() and (m := _ANNO_DIR.fullmatch(p.name))} or {0: pred_root}
    return evaluator.score_label_maps(video, {
        a: read_label_stack(_prediction_paths(folder / video.name, list(video.frame_names)))
        for a, folder in sorted(sets.items())})


def _read_masks(paths: list[Path]):
    """T×H×W bool masks (non-zero grey = foreground) read as MeViS reads predictions."""
    import numpy as np

    from lcrp_core.data.io import read_grey_png
    from lcrp_core.errors import DataError

    first = read_grey_png(paths[0])
    out = np.empty((len(paths), *first.shape), dtype=bool)
    np.not_equal(first, 0, out=out[0])
    for t, path in enumerate(paths[1:], start=1):
        grey = read_grey_png(path)
        if grey.shape != first.shape:
            raise DataError(f"mask is {grey.shape[0]}×{grey.shape[1]}, {paths[0].name} is "
                            f"{first.shape[0]}×{first.shape[1]}", path=path)
        np.not_equal(grey, 0, out=out[t])
    return out


def _expression_root(pred: Path) -> Path:
    """``<pred>/Annotations`` for a folder written by ``lcrp predict``, else ``pred``."""
    from lcrp_core.pipeline.predict import PREDICT_JSON

    return pred / "Annotations" if (pred / PREDICT_JSON).is_file() else pred


def _score_expressions(pred_root: Path, evaluator, video):
    if not video.expressions:
        return None
    return evaluator.score_video(video, {
        exp_id: _read_masks(_prediction_paths(pred_root / video.name / exp_id,
                                              list(video.frame_names)))
        for exp_id in video.expressions})


def _score_one(truth, protocol: str, void: str | None, pred_root: Path, name: str):
    """One video's scores (None for a video without expressions); runs in a worker process."""
    from lcrp_core.metrics import Evaluator

    # each video is scored once: keep no prepared ground truth
    evaluator = Evaluator(truth, protocol, void=void, cache_bytes=0)
    score = _score_expressions if protocol == "per-expression" else _score_davis
    return score(pred_root, evaluator, truth.videos[name])


def _default_jobs() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _score_all(args, truth) -> list:
    """Every video's scores, in the ground truth's order; videos in parallel over ``--jobs`` processes."""
    from tqdm import tqdm

    names = list(truth.videos)
    jobs = min(args.jobs or _default_jobs(), len(names))
    bar = {"desc": "videos", "unit": "video", "total": len(names),
           "disable": args.quiet or None, "leave": False}
    pred = Path(args.pred).resolve()   # (so are the roots) joblib reuses workers started elsewhere
    call = (args.protocol, args.void, _expression_root(pred) if args.protocol == "per-expression" else pred)
    if jobs <= 1:
        results = [_score_one(truth, *call, n) for n in tqdm(names, **bar)]
    else:
        from joblib import Parallel, delayed  # imported here: only parallel runs need it

        parallel = Parallel(n_jobs=jobs, return_as="generator")
        results = list(tqdm(parallel(delayed(_score_one)(truth, *call, n) for n in names), **bar))
    return [s for s in results if s is not None]


def _write_csv(path: Path, scores) -> int:
    import csv

    from lcrp_core.files import atomic_open

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
    from lcrp_core.data import load_dataset
    from lcrp_core.data.davis import read_annotation_folder
    from lcrp_core.data.io import require_dir
    from lcrp_core.errors import ConfigError
    from lcrp_core.metrics import PROTOCOLS, Evaluator

    if args.protocol not in PROTOCOLS:
        raise ConfigError(f"expected one of {list(PROTOCOLS)}, got {args.protocol!r}", key="--protocol")
    if args.jobs is not None and args.jobs < 1:
        raise ConfigError(f"expected a positive number of processes, got {args.jobs}", key="--jobs")
    if args.void is not None and args.protocol == "per-expression":
        raise ConfigError("the per-expression protocol has no void pixels", key="--void")
    require_dir(args.pred, "prediction")
    if args.gt_annotations is not None:
        if args.protocol == "per-expression":
            raise ConfigError("a bare annotation folder holds no expressions; pass the dataset "
                              "root with --gt", key="--gt-annotations")
        truth = read_annotation_folder(Path(args.gt_annotations).resolve())
    else:
        kind = args.dataset or ("mevis" if args.protocol == "per-expression" else "ref-davis17")
        truth = load_dataset(kind, Path(args.gt).resolve(), args.split)
    evaluator = Evaluator(truth, args.protocol, void=args.void)
    scores = _score_all(args, truth)
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
