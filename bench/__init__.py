"""Speed benchmarks: ``python -m bench`` runs every ``bench_*.py`` module's ``main()``;
``python -m bench metrics pipeline`` runs only those. Results go to ``bench/results/<name>.json``."""

import json
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def write_result(name: str, result: dict) -> Path:
    """Write one benchmark's result to ``bench/results/<name>.json`` (atomically)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{name}.json"
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(out)
    return out


#: Frame sizes (H, W) by their usual names.
SIZES = {"240p": (240, 320), "480p": (480, 854), "720p": (720, 1280), "1080p": (1080, 1920)}


def sam2_bench_config(model_size: str = "tiny", clip: str = "ViT-B-32", dtype: str = "fp32",
                      points_per_side: int = 8) -> dict:
    """The sam2-clip backend config the benchmarks build with random weights: SAM2.1 at input
    1024, a sparse generator grid and no proposal thresholds (random weights predict low IoU)."""
    return {"model_size": model_size, "clip_model": clip, "dtype": dtype, "image_size": 1024,
            "points_per_side": points_per_side, "pred_iou_thresh": 0.0,
            "stability_score_thresh": 0.0}
