"""`lcrp run`: segment one video from a sentence; write mask PNGs and an overlay GIF/MP4."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger("lcrp")


def register(sub, common) -> None:
    p = sub.add_parser("run", parents=[common], help="segment one video from a sentence",
                       description="Run Locate-Core-Refine-Path on one video (a frame folder or a "
                                   "video file) and write masks/<frame>.png, an overlay and run.json.")
    p.add_argument("--video", required=True, metavar="DIR_OR_FILE")
    p.add_argument("--text", required=True, help='the referring expression, e.g. "the red ball"')
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--preset", default="lcrp-ref-davis17",
                   help="lcrp-ref-davis17 | lcrp-mevis | findtrack (default: %(default)s)")
    for name, kind, what in (("N", int, "frames Locate samples"), ("K", int, "candidates Core checks"),
                             ("H", int, "Refine rounds"),
                             ("delta", float, "min region, fraction of the frame (0.003 = 0.3%%)")):
        p.add_argument(f"--{name}", type=kind, default=None, help=f"{what} (overrides the preset)")
    p.add_argument("--backend", default="classical", help="classical | sam2-clip")
    p.add_argument("--backend-config", default=None, metavar="FILE")
    p.add_argument("--device", default="cpu")
    p.add_argument("--random-init", action="store_true",
                   help="random model weights: for tests and speed measurements only")
    p.add_argument("--cache-dir", default="cache")
    p.add_argument("--overlay", default="overlay.gif", help="overlay file name in --out (.gif or .mp4)")
    p.add_argument("--fps", type=float, default=10.0, help="overlay frame rate")
    p.set_defaults(func=run)


def run(args) -> int:
    from lcrp_core.backends.base import create_backend, load_backend_config
    from lcrp_core.cache.features import CacheScope, VideoFeatures
    from lcrp_core.cache.store import CacheStore
    from lcrp_core.data.io import write_binary_png
    from lcrp_core.data.video_file import open_video, overlay_frames, write_overlay
    from lcrp_core.files import write_json_atomic
    from lcrp_core.pipeline import Params, preset
    from lcrp_core.pipeline import run as run_pipeline

    _check_options(args)
    overrides = {k: getattr(args, k) for k in ("N", "K", "H", "delta") if getattr(args, k) is not None}
    params = Params.from_mapping(overrides, base=preset(args.preset))
    config = load_backend_config(args.backend_config)
    dataset = open_video(args.video, args.text)
    video = next(iter(dataset))
    backend = create_backend(args.backend, config, device=args.device, random_init=args.random_init)
    try:
        feats = VideoFeatures(video, backend, CacheStore(args.cache_dir), CacheScope.of(dataset, backend))
        masks, trace = run_pipeline(feats, args.text.strip(), params, video.size)
    finally:
        backend.close()
    out = Path(args.out)
    for name, mask in zip(video.frame_names, masks, strict=True):
        write_binary_png(out / "masks" / f"{name}.png", mask)
    write_overlay(out / args.overlay, overlay_frames(video.frames(), masks, args.text.strip()), fps=args.fps)
    write_json_atomic(out / "run.json", {
        "video": str(args.video), "text": args.text.strip(), "backend": args.backend,
        "backend_config": backend.config, "params": params.to_short(),
        "anchor": {"frame": trace.frame, "proposal": trace.proposal, "score": trace.score,
                   "support": trace.support},
        "frames": len(video), "counters": feats.counters.as_dict()}, indent=2)
    if trace.frame is None:
        log.warning("run: no proposal on any sampled frame: every mask is empty")
    else:
        log.info("run: anchor on frame %s (score %.3f, support %.3f)", video.frame_names[trace.frame],
                 trace.score, trace.support)
    log.info("run: %d masks in %s, overlay %s", len(masks), out / "masks", out / args.overlay)
    return 0


def _check_options(args) -> None:
    """Refuse a bad option before anything runs or is written (masks, overlay, run.json)."""
    import math

    from lcrp_core.errors import ConfigError

    if not (math.isfinite(args.fps) and args.fps > 0):
        raise ConfigError(f"expected a positive frame rate, got {args.fps}", key="--fps")
    if Path(args.overlay).suffix.lower() not in (".gif", ".mp4") or Path(args.overlay).name != args.overlay:
        raise ConfigError(f"expected a file name ending in .gif or .mp4, got {args.overlay!r}",
                          key="--overlay")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError("expected a folder (or a path to create), found a file", path=out,
                          key="--out")
