"""The Python API, as a notebook would use it: open a sweep study, look at its trials, and re-run
its best configuration on a few videos.

Run it after `lcrp demo`, from the same folder (the demo writes studies/ and cache/ there):

    python docs/examples/notebook_api.py                      # the demo's study demo_davis_nk
    python docs/examples/notebook_api.py STUDY --storage URL --videos v1,v2

The re-run reads the study's own spec (dataset, backend, protocol, cache), so its per-video
scores equal those the sweep stored for the best trial. CI runs this file on a tiny synthetic
study (tests/test_api.py).
"""

from __future__ import annotations

import argparse

import lcrp_core


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", nargs="?", default="demo_davis_nk")
    parser.add_argument("--storage", default=None, help="storage URL (default: studies/STUDY.db)")
    parser.add_argument("--videos", default=None, help="comma-separated videos (default: the first two)")
    args = parser.parse_args(argv)

    # 1. open the study: its trials as a pandas DataFrame, its best configuration
    s = lcrp_core.open_study(args.study, storage=args.storage)
    trials = s.trials
    params = [c for c in trials.columns if c.startswith("params.")]
    print(trials[["state", "value", *params]].to_string())
    print(f"best: {s.best_params.to_short()}  J&F {s.best_value:.2f}")

    # 2. re-run the best configuration on a few of the study's videos (the three lines)
    stored = s.best_trial.user_attrs["per_video"]
    videos = args.videos.split(",") if args.videos else sorted(stored)[:2]
    ctx = s.eval_context(videos=videos)
    result = ctx.evaluate(s.best_params)
    ctx.close()

    for video, scores in result.per_video.items():
        print(f"{video}: J&F {scores['JF']:.2f} (stored {stored[video]['JF']:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
