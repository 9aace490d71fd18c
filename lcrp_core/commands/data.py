"""`lcrp data synth`: write the deterministic synthetic RVOS benchmark (MeViS or Ref-DAVIS17
layout); `lcrp data check`: validate a dataset folder and summarise it, or list every problem."""

from __future__ import annotations

import logging

log = logging.getLogger("lcrp")


def register(sub, common) -> None:
    p = sub.add_parser("data", parents=[common], help="datasets: generate the synthetic benchmark",
                       description="Dataset utilities.")
    actions = p.add_subparsers(dest="data_command", metavar="ACTION")
    actions.required = True
    s = actions.add_parser(
        "synth", parents=[common], help="write the synthetic benchmark (MeViS or Ref-DAVIS17 layout)",
        description="Write a deterministic synthetic RVOS benchmark in the MeViS layout (or, with "
                    "--layout ref-davis17, ReferFormer's converted Ref-DAVIS17 layout): moving "
                    "textured shapes with occlusions, distractors, noise and illumination drift, "
                    "and sentences built from colour, shape, size, position and motion. The same "
                    "options give byte-identical files. Read it back with --dataset LAYOUT "
                    "--root OUT (the split defaults agree).")
    s.add_argument("--out", required=True, metavar="DIR",
                   help="output folder (must not exist, be empty, or hold this same benchmark)")
    s.add_argument("--videos", type=int, default=10, help="number of videos (default 10)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    s.add_argument("--frames", default="30-60", metavar="N|LO-HI",
                   help="frames per video, fixed or a range drawn per video (default 30-60)")
    s.add_argument("--size", default="240x320", metavar="HxW", help="frame size (default 240x320)")
    s.add_argument("--layout", default="mevis", choices=["mevis", "ref-davis17"],
                   help="dataset layout (default mevis)")
    s.add_argument("--split", default=None,
                   help="split folder name (default: the layout's reader default, valid_u for "
                        "mevis and valid for ref-davis17)")
    s.set_defaults(func=run_synth)
    c = actions.add_parser(
        "check", parents=[common], help="validate a dataset folder and summarise it",
        description="Check a dataset folder in its benchmark's layout: print a summary (videos, "
                    "frames, expressions, objects, frame sizes) or every problem found, one line "
                    "each (exit code 1).")
    c.add_argument("--dataset", required=True, choices=["ref-davis17", "mevis", "ref-youtube-vos"])
    c.add_argument("--root", required=True, metavar="DIR", help="dataset root folder")
    c.add_argument("--split", default=None, help="split (default: the kind's default)")
    c.set_defaults(func=run_check)


def run_synth(args) -> int:
    from lcrp_core.data.synth import generate

    out = generate(args.out, videos=args.videos, seed=args.seed, frames=args.frames,
                   size=args.size, split=args.split, layout=args.layout, progress=not args.quiet)
    log.info("data synth: %d videos (seed %d, %s frames, %s, %s layout) -> %s", args.videos,
             args.seed, args.frames, args.size, args.layout, out)
    return 0


def run_check(args) -> int:
    from lcrp_core.data.check import check_dataset

    result = check_dataset(args.dataset, args.root, args.split)
    if result.problems:
        for line in result.problems:
            print(line)
        print(f"data check: {len(result.problems)} problem(s) in {result.kind} {result.split} at "
              f"{result.root}")
        return 1
    for line in result.summary_lines():
        print(line)
    return 0
