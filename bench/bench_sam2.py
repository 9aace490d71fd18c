"""The sam2-clip backend with random weights (speed does not depend on them), on the CPU or a
CUDA GPU, at the switches a researcher's run uses:

    python -m bench sam2 --device cuda --model-size large --clip ViT-L-14 \
        --dtype fp32,bf16 --resolution 480p,1080p --seeds 1,3,5

Per (resolution, dtype) it builds the backend once and measures, on a synthetic video of
``--frames`` frames (textured shapes moving over a gradient, frames in memory):

- extraction: frames/s of ``propose`` (SAM2AutomaticMaskGenerator proposals + CLIP region
  features of every proposal) over ``--extract-frames`` frames; random weights give few
  proposals, so CLIP is also timed on a fixed ``--region-masks`` masks per frame;
- propagation, frames/s of one ``propagate`` call from the middle frame (forward and backward)
  with 1, 3, 5 seeds (``--seeds``): *stock* is SAM2VideoPredictor's own one-frame feature cache
  (every frame re-encoded on every call); *ours, cold* the feature store on a video it has not
  seen (each frame encoded once); *ours, warm* the same video again (no encoder pass: every later
  candidate, refinement and Path call of a video);
- peak memory per phase: ``torch.cuda.max_memory_allocated`` after a reset of the peak on CUDA,
  peak RSS (sampled every 20 ms) on the CPU.

On CUDA every timing is bracketed by ``torch.cuda.synchronize()`` and each phase runs once
untimed first (kernel selection, allocator warm-up), so figures do not depend on run order
(the CPU needs no warm-up, and a short CPU run stays short).
``dtype`` is SAM2's (bf16 autocast + TF32 on CUDA, as SAM2's README runs it); CLIP always runs in
fp32. Writes ``bench/results/sam2.json`` (``--output`` elsewhere).

``LCRP_BENCH_THREADS=n`` sets torch's intra-op threads.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import threading
import time
from pathlib import Path

import numpy as np

from bench import SIZES, write_result
from lcrp_core.backends.sam2_clip import SAM2_MODELS, Sam2ClipBackend
from lcrp_core.data.model import Video

RESOLUTIONS = SIZES
CLIP_MODELS = ("ViT-B-32", "ViT-B-16", "ViT-L-14")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    def csv(kind, choices=None):
        def parse(text: str):
            items = [kind(x) for x in text.split(",") if x]
            bad = [x for x in items if choices is not None and x not in choices]
            if bad or not items:
                raise argparse.ArgumentTypeError(f"expected a comma list of {choices}, got {text!r}")
            return items
        return parse

    p = argparse.ArgumentParser(prog="python -m bench sam2", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    p.add_argument("--model-size", default="tiny", choices=sorted(SAM2_MODELS))
    p.add_argument("--clip", default="ViT-B-32", choices=CLIP_MODELS, help="open_clip model")
    p.add_argument("--dtype", default=["fp32", "bf16"], type=csv(str, ("fp32", "bf16")),
                   help="SAM2 compute dtypes, comma list (default fp32,bf16)")
    p.add_argument("--resolution", default=None, type=csv(str, tuple(RESOLUTIONS)),
                   help="video frame sizes, comma list of 240p,480p,720p,1080p "
                        "(default 240p on the CPU, 480p,1080p on CUDA)")
    p.add_argument("--seeds", default=[1, 3, 5], type=csv(int),
                   help="seed counts propagated in one pass, comma list (default 1,3,5)")
    p.add_argument("--frames", type=int, default=None,
                   help="video length (default 6 on the CPU, 48 on CUDA)")
    p.add_argument("--extract-frames", type=int, default=None,
                   help="frames timed for extraction (default 1 on the CPU, 8 on CUDA)")
    p.add_argument("--image-size", type=int, default=1024, help="SAM2 input size (default 1024)")
    p.add_argument("--points-per-side", type=int, default=None,
                   help="proposal grid (default 8 on the CPU, 32 on CUDA)")
    p.add_argument("--clip-image-size", type=int, default=None,
                   help="CLIP input size (default: the model's own)")
    p.add_argument("--region-masks", type=int, default=16,
                   help="masks per frame for the fixed CLIP timing (default 16)")
    p.add_argument("--no-stock", action="store_true",
                   help="skip the stock predictor's timings (they re-encode every frame)")
    p.add_argument("--output", type=Path, default=None,
                   help="result JSON (default bench/results/sam2.json)")
    args = p.parse_args(argv)
    cuda = args.device.startswith("cuda")
    if args.resolution is None:
        args.resolution = ["480p", "1080p"] if cuda else ["240p"]
    args.frames = args.frames or (48 if cuda else 6)
    args.extract_frames = args.extract_frames or (8 if cuda else 1)
    args.points_per_side = args.points_per_side or (32 if cuda else 8)
    if args.frames < 2 or args.extract_frames < 1 or min(args.seeds) < 1:
        p.error("--frames must be >= 2, --extract-frames and --seeds >= 1")
    return args


# -- inputs -----------------------------------------------------------------------------------

def synthetic_video(name: str, size: tuple[int, int], frames: int, seed: int) -> Video:
    """Five textured discs moving over a gradient with noise (frames built once, held in memory).
    Another ``seed`` gives other pixels, hence frames no feature store holds."""
    height, width = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([60 + xx / width * 90, 90 + yy / height * 60, 140 - xx / width * 30], axis=-1)
    r = min(height, width) / 9
    discs = disc_tracks(size, frames)
    colours = [(200, 40, 40), (40, 200, 60), (230, 210, 40), (60, 60, 220), (220, 120, 200)]
    out = []
    for t in range(frames):
        f = base.copy()
        for (cy, cx), colour in zip(discs[:, t], colours):
            f[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = colour
        f += rng.normal(0, 6, f.shape).astype(np.float32)
        out.append(np.clip(f, 0, 255).astype(np.uint8))
    return Video(name, [f"{t:05d}" for t in range(frames)], {}, frame_loader=lambda t: out[t])


def disc_tracks(size: tuple[int, int], frames: int) -> np.ndarray:
    """5×T×2 disc centres (y, x): five discs drifting across the frame."""
    height, width = size
    start = np.array([[0.2, 0.15], [0.6, 0.7], [0.4, 0.4], [0.75, 0.2], [0.25, 0.8]])
    step = np.array([[0.004, 0.01], [-0.003, -0.008], [0.006, 0.002], [-0.005, 0.006],
                     [0.005, -0.004]])
    t = np.arange(frames)[None, :, None]
    return (start[:, None] + step[:, None] * t) * np.array([height, width])


def seed_masks(size: tuple[int, int], frames: int, count: int) -> np.ndarray:
    """``count`` seed masks (S×H×W bool) on the middle frame: the discs (cycled past five)."""
    height, width = size
    yy, xx = np.mgrid[0:height, 0:width]
    r = min(height, width) / 9
    centres = disc_tracks(size, frames)[:, frames // 2]
    return np.stack([(yy - cy) ** 2 + (xx - cx) ** 2 < (r * (1 - 0.1 * (i // 5))) ** 2
                     for i, (cy, cx) in ((i, centres[i % 5]) for i in range(count))])


def region_masks(size: tuple[int, int], count: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    height, width = size
    masks = np.zeros((count, height, width), dtype=bool)
    for m in masks:
        h, w = rng.integers(height // 20, height // 4), rng.integers(width // 20, width // 4)
        y, x = rng.integers(0, height - h), rng.integers(0, width - w)
        m[y:y + h, x:x + w] = True
    return masks


# -- measuring --------------------------------------------------------------------------------

def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class PeakRss:
    """Peak resident memory (MB) while the block runs, sampled every 20 ms."""

    def __enter__(self) -> PeakRss:
        self.peak = rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_mb())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())


class Meter:
    """Wall time and peak memory of a block on ``device``: CUDA synchronised before and after,
    its peak allocation reset before (``peak_mb`` = max_memory_allocated); peak RSS on the CPU."""

    def __init__(self, device: str):
        import torch

        self.torch = torch
        self.cuda = device.startswith("cuda")
        self.device = device

    def __enter__(self) -> Meter:
        if self.cuda:
            self.torch.cuda.synchronize(self.device)
            self.torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self._rss = PeakRss().__enter__()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        if self.cuda:
            self.torch.cuda.synchronize(self.device)
        self.seconds = time.perf_counter() - self._t0
        if self.cuda:
            self.peak_mb = self.torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            self._rss.__exit__(*exc)
            self.peak_mb = self._rss.peak


def say(label: str, value: str) -> None:
    print(f"  {label:<52}{value}", flush=True)


def frame_mb(args: argparse.Namespace) -> float:
    """MB of one frame's SAM2 features in fp32 (an upper bound for bf16): 32·(S/4)² +
    64·(S/8)² + 256·(S/16)² floats at input size S (the hiera configs' FPN widths)."""
    s = args.image_size
    return 4 * (32 * (s // 4) ** 2 + 64 * (s // 8) ** 2 + 256 * (s // 16) ** 2) / 2**20


def run_one(args: argparse.Namespace, resolution: str, dtype: str) -> dict:
    size = RESOLUTIONS[resolution]
    frames = args.frames
    config = {"model_size": args.model_size, "image_size": args.image_size, "dtype": dtype,
              "points_per_side": args.points_per_side, "pred_iou_thresh": 0.0,
              "stability_score_thresh": 0.0, "clip_model": args.clip,
              "clip_image_size": args.clip_image_size}
    tag = f"[{resolution} {dtype}]"
    # the store holds every frame of the run: propagation is measured, not store eviction
    config["feature_store_mb"] = (2 * frames + args.extract_frames + 4) * frame_mb(args)
    backend = Sam2ClipBackend(config, device=args.device, random_init=True)
    meter = Meter(args.device)
    out: dict = {"resolution": resolution, "frame_size": list(size), "dtype": dtype}
    with meter:
        backend.load()
    out["build_s"], out["build_peak_mb"] = meter.seconds, meter.peak_mb
    say(f"{tag} models built", f"{meter.seconds:.1f} s")

    # extraction: on CUDA one untimed frame first (warm-up), then the timed frames
    cuda = args.device.startswith("cuda")
    video = synthetic_video(f"extract-{resolution}", size, args.extract_frames + 1, 1)
    if cuda:
        backend.propose(video, 0)
    with meter:
        counts = [len(backend.propose(video, t)) for t in range(1, args.extract_frames + 1)]
    out.update(extract_fps=args.extract_frames / meter.seconds,
               proposals_per_frame=float(np.mean(counts)), extract_peak_mb=meter.peak_mb)
    masks = region_masks(size, args.region_masks)
    frame = video.frame(1)
    if cuda:
        backend.region_features(frame, masks[:2])
    with meter:
        backend.region_features(frame, masks)
    out.update(clip_s_at_masks=meter.seconds, region_masks=args.region_masks,
               clip_peak_mb=meter.peak_mb)
    say(f"{tag} extraction", f"{out['extract_fps']:.3f} frames/s "
        f"({out['proposals_per_frame']:.0f} proposals/frame); CLIP {meter.seconds:.2f} s for "
        f"{args.region_masks} masks")

    # propagation: on CUDA a warm-up on a short video, then stock / cold / warm per seed count
    t = frames // 2
    if cuda:
        warm_video = synthetic_video(f"warmup-{resolution}", size, 2, 2)
        backend.propagate(warm_video, 1, seed_masks(size, 2, 1))
        backend.propagate(warm_video, 1, seed_masks(size, 2, 1), all_frame_cache=False)
    video = synthetic_video(f"prop-{resolution}", size, frames, 3)
    prop: dict = {}
    for count in args.seeds:
        seeds = seed_masks(size, frames, count)
        row: dict = {}
        runs = ([("stock", False)] if not args.no_stock else []) + [("ours_cold", True),
                                                                     ("ours_warm", True)]
        tracks = {}
        for name, cached in runs:
            if name == "ours_cold":
                backend.drop_features()
            passes = backend.encoder_passes
            with meter:
                tracks[name] = backend.propagate(video, t, seeds, all_frame_cache=cached)
            row[f"{name}_fps"] = frames / meter.seconds
            row[f"{name}_peak_mb"] = meter.peak_mb
            if cached:
                row[f"{name}_encoder_passes"] = backend.encoder_passes - passes
            say(f"{tag} propagation, {count} seed(s), {name.replace('_', ' ')}",
                f"{frames / meter.seconds:.2f} frames/s, peak {meter.peak_mb:.0f} MB")
        row["warm_equals_cold"] = bool(np.array_equal(tracks["ours_cold"], tracks["ours_warm"]))
        if "stock" in tracks:
            row["ours_equals_stock"] = bool(np.array_equal(tracks["stock"], tracks["ours_cold"]))
            row["speedup_warm_vs_stock"] = row["ours_warm_fps"] / row["stock_fps"]
        prop[str(count)] = row
    out["propagation"] = prop
    backend.close()
    return out


def table(result: dict) -> list[str]:
    """The printed table: one column per (resolution, dtype) run."""
    runs = result["runs"]
    heads = [f"{r['resolution']} {r['dtype']}" for r in runs]
    lines = [f"  {'':<44}" + "".join(f"{h:>14}" for h in heads)]

    def row(label: str, path: tuple, fmt: str) -> None:
        cells = []
        for r in runs:
            value = r
            for part in path:
                value = value.get(part) if isinstance(value, dict) else None
            cells.append(f"{'-':>14}" if value is None else fmt.format(value))
        lines.append(f"  {label:<44}" + "".join(cells))

    row("extraction frames/s (proposals + CLIP)", ("extract_fps",), "{:14.3f}")
    row("  proposals per frame (random weights)", ("proposals_per_frame",), "{:14.1f}")
    row("  CLIP s at region masks", ("clip_s_at_masks",), "{:14.3f}")
    row("  peak MB", ("extract_peak_mb",), "{:14.0f}")
    for count in result["seeds"]:
        p = ("propagation", str(count))
        row(f"propagation frames/s, {count} seed(s): stock", (*p, "stock_fps"), "{:14.2f}")
        row("  ours, cold", (*p, "ours_cold_fps"), "{:14.2f}")
        row("  ours, warm", (*p, "ours_warm_fps"), "{:14.2f}")
        row("  warm vs stock", (*p, "speedup_warm_vs_stock"), "{:13.2f}x")
        row("  encoder passes, cold", (*p, "ours_cold_encoder_passes"), "{:14d}")
        row("  encoder passes, warm", (*p, "ours_warm_encoder_passes"), "{:14d}")
        row("  tracks equal the stock tracks", (*p, "ours_equals_stock"), "{!s:>14}")
        row("  warm tracks equal cold", (*p, "warm_equals_cold"), "{!s:>14}")
        row("  peak MB, ours warm", (*p, "ours_warm_peak_mb"), "{:14.0f}")
    return lines


def main(argv: list[str] | None = None) -> dict:
    import torch

    args = parse_args(argv)
    if os.environ.get("LCRP_BENCH_THREADS"):
        torch.set_num_threads(int(os.environ["LCRP_BENCH_THREADS"]))
    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: torch sees no CUDA device")
    device_name = torch.cuda.get_device_name(args.device) if cuda else "cpu"
    result = {
        "command": "python -m bench sam2 " + " ".join(argv or []),
        "device": args.device, "device_name": device_name, "weights": "random",
        "model_size": args.model_size, "clip_model": args.clip, "image_size": args.image_size,
        "clip_image_size": args.clip_image_size, "points_per_side": args.points_per_side,
        "frames": args.frames, "extract_frames": args.extract_frames, "seeds": args.seeds,
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "runs": [],
    }
    print(f"sam2-clip on {device_name}, random weights: SAM2.1 {args.model_size} at "
          f"{args.image_size}, {args.clip}, {args.frames} frames, torch threads "
          f"{result['torch_threads']}", flush=True)
    for resolution in args.resolution:
        for dtype in args.dtype:
            result["runs"].append(run_one(args, resolution, dtype))
    result["process_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for line in table(result):
        print(line)
    print(f"  process peak RSS {result['process_peak_rss_mb']:.0f} MB")
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n")
    else:
        write_result("sam2", result)
    return result


if __name__ == "__main__":
    main()
