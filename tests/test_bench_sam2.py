"""``python -m bench sam2`` with its switches, tiny on the CPU (the GPU run uses the same code)."""

from __future__ import annotations

import importlib.util
import json

import pytest

from bench.__main__ import main as bench_main

MISSING = [m for m in ("torch", "torchvision", "sam2", "open_clip") if
           importlib.util.find_spec(m) is None]
pytestmark = [pytest.mark.models,
              pytest.mark.skipif(bool(MISSING), reason=f"needs the [models] extra: {MISSING}")]


def test_bench_sam2_switches_tiny_on_cpu(tmp_path, capsys):
    out = tmp_path / "sam2.json"
    rc = bench_main(["sam2", "--device", "cpu", "--model-size", "tiny", "--clip", "ViT-B-32",
                     "--dtype", "fp32", "--resolution", "240p", "--seeds", "2",
                     "--frames", "3", "--extract-frames", "1", "--image-size", "256",
                     "--points-per-side", "2", "--clip-image-size", "64", "--region-masks", "2",
                     "--output", str(out)])
    assert rc == 0
    result = json.loads(out.read_text())
    assert result["device"] == "cpu" and result["model_size"] == "tiny"
    (run,) = result["runs"]
    assert run["resolution"] == "240p" and run["dtype"] == "fp32"
    assert run["extract_fps"] > 0 and run["extract_peak_mb"] > 0
    for seeds in ("2",):
        prop = run["propagation"][seeds]
        assert prop["stock_fps"] > 0 and prop["ours_warm_fps"] > 0
        assert prop["ours_cold_encoder_passes"] == 3      # each frame once
        assert prop["ours_warm_encoder_passes"] == 0      # none on a later pass
        assert prop["ours_equals_stock"] and prop["warm_equals_cold"]
    assert "propagation frames/s, 2 seed(s): stock" in capsys.readouterr().out


def test_bench_options_go_to_one_benchmark(capsys):
    assert bench_main(["sam2", "metrics", "--device", "cpu"]) == 2
    assert "one benchmark" in capsys.readouterr().err
