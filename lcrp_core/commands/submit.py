"""`lcrp submit`: zip an `lcrp predict` folder for a benchmark's evaluation server.

The split is read from the folder's predict.json (``--root``/``--split`` override it). Every
video, expression and frame of the split must have its PNG, with its frame's size; the first
one missing is one error naming it, and no zip is written. The zip is written atomically.
Layouts: docs/predict.md.
"""

from __future__ import annotations

import logging

log = logging.getLogger("lcrp")


def register(sub, common) -> None:
    p = sub.add_parser("submit", parents=[common], help="zip predictions for an evaluation server",
                       description="Check that an `lcrp predict` folder holds a mask for every "
                                   "video, expression and frame of the split, then write the zip "
                                   "the benchmark's evaluation server takes.")
    p.add_argument("pred_dir", metavar="PRED_DIR", help="a folder written by `lcrp predict`")
    p.add_argument("--benchmark", required=True, choices=["ref-youtube-vos", "mevis"],
                   help="the evaluation server")
    p.add_argument("--out", required=True, metavar="FILE.zip", help="the zip to write")
    p.add_argument("--root", default=None, help="dataset root (default: predict.json's)")
    p.add_argument("--split", default=None, help="split (default: predict.json's)")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from lcrp_core.data import load_dataset
    from lcrp_core.data.writers import prediction_root, write_submission_zip
    from lcrp_core.errors import ConfigError
    from lcrp_core.pipeline.predict import load_meta

    meta = load_meta(args.pred_dir)
    kind = meta["dataset"]["kind"]
    if kind != args.benchmark:
        raise ConfigError(f"{args.pred_dir} holds {kind} predictions, not {args.benchmark}",
                          key="--benchmark")
    if not str(args.out).endswith(".zip"):
        raise ConfigError(f"expected a .zip file name, got {args.out!r}", key="--out")
    # the whole split, whatever subset was predicted: the server scores every video
    ds = load_dataset(kind, args.root or meta["dataset"]["root"], args.split or meta["dataset"]["split"])
    n = write_submission_zip(prediction_root(args.pred_dir, kind), args.out, ds)
    print(f"submit: {len(ds)} videos, {ds.num_expressions} expressions, {n} PNGs -> {args.out}")
    if not meta.get("complete", False):
        log.warning("%s: predict.json says the run did not finish, though every PNG is there",
                    Path(args.pred_dir))
    return 0
