"""The sam2-clip path as a researcher runs it with real weight files: random weights saved in the
real formats — a SAM2.1 ``large`` checkpoint (``{"model": state_dict}``) and an open_clip
ViT-L-14 in a local Hugging Face cache layout (safetensors) — then ``lcrp extract`` and
``lcrp sweep run sweeps/refdavis17_nk.yaml`` on a small Ref-DAVIS17-layout dataset, sharing one
cache and building the large model; a wrong-size checkpoint fails in under a second naming the
size it is. Building SAM2-large and ViT-L-14 on the CPU is slow-ish: the files are made once.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import shutil
import time
from pathlib import Path

import pytest

from lcrp_core.backends.base import create_backend, load_backend_config
from lcrp_core.cache.features import CacheScope
from lcrp_core.cli import main
from lcrp_core.data import load_dataset
from lcrp_core.errors import WeightsError
from lcrp_core.sweep.spec import load_sweep_spec
from tests.fixtures import make_davis_dataset

REPO = Path(__file__).resolve().parents[1]
MISSING = [m for m in ("torch", "torchvision", "sam2", "open_clip", "safetensors") if
           importlib.util.find_spec(m) is None]
MODELS = [pytest.mark.models,
          pytest.mark.skipif(bool(MISSING), reason=f"needs the [models] extra: {MISSING} missing")]
#: open_clip's Hugging Face repo for the ViT-L-14 "openai" tag
CLIP_REPO = "timm/vit_large_patch14_clip_224.openai"


@contextlib.contextmanager
def log_lines(name: str):
    """The messages logged to ``name`` (INFO and up) inside the block, whatever the CLI did to
    the ``lcrp`` loggers' handlers and propagation."""
    logger, lines = logging.getLogger(name), []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_paper_specs_use_the_backend_config_that_extract_is_given(tmp_path, monkeypatch):
    """No model is built: the cache key of `lcrp extract --backend-config
    sweeps/backends/sam2_large.yaml` is the one the paper's specs resolve to."""
    monkeypatch.chdir(REPO)
    ckpt = tmp_path / "sam2.1_hiera_large.pt"
    ckpt.write_bytes(b"x" * 10)
    monkeypatch.setenv("LCRP_SAM2_CHECKPOINT", str(ckpt))
    root = make_davis_dataset(tmp_path / "davis").root
    ds = load_dataset("ref-davis17", root)
    extract_cfg = load_backend_config("sweeps/backends/sam2_large.yaml")
    extract_key = CacheScope.of(ds, create_backend("sam2-clip", extract_cfg)).features
    for name in ("refdavis17_nk", "refdavis17_hd", "mevis_nk", "mevis_hd"):
        spec = load_sweep_spec(f"sweeps/{name}.yaml", check_root=False)
        assert spec.backend.config["model_size"] == "large", name
        assert spec.backend.config["clip_model"] == "ViT-L-14", name
        assert spec.backend.config_file == "sweeps/backends/sam2_large.yaml"
        backend = create_backend(spec.backend.name, spec.backend.config)
        assert CacheScope.of(ds, backend).features == extract_key, name
    # run-time keys change no cache key
    fast = create_backend("sam2-clip", {**extract_cfg, "points_per_batch": 128,
                                        "feature_store_mb": 100, "offload_state_to_cpu": True})
    assert CacheScope.of(ds, fast).features == extract_key


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """(SAM2.1-large checkpoint in fp16, HF hub cache with ViT-L-14/openai in fp32), random
    weights (fp32 CLIP weights: resizing the position embedding for clip_image_size needs it)."""
    if MISSING:
        pytest.skip(f"needs the [models] extra: {MISSING} missing")
    import open_clip
    import torch
    from safetensors.torch import save_file

    from lcrp_core.backends import sam2_engine

    root = tmp_path_factory.mktemp("weights")
    model = sam2_engine.build_sam2("configs/sam2.1/sam2.1_hiera_l.yaml", None, image_size=256,
                                   device="cpu")
    ckpt = root / "sam2.1_hiera_large.pt"
    torch.save({"model": {k: v.half() for k, v in model.state_dict().items()}}, ckpt)
    del model
    clip = open_clip.create_model("ViT-L-14", pretrained=None)
    snapshot = root / "hub" / f"models--{CLIP_REPO.replace('/', '--')}" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    save_file({k: v.detach().contiguous() for k, v in clip.state_dict().items()},  # fp32
              str(snapshot / "open_clip_model.safetensors"))
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0" * 40)
    del clip
    return ckpt, root / "hub"


@pytest.fixture
def offline_hub(weights, monkeypatch):
    from huggingface_hub import constants

    ckpt, hub = weights
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub))
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))          # for worker processes
    monkeypatch.setenv("LCRP_SAM2_CHECKPOINT", str(ckpt))
    return ckpt


@pytest.mark.models
def test_wrong_size_checkpoint_fails_in_under_a_second_naming_its_size(offline_hub):
    from lcrp_core.backends import sam2_engine

    sam2_engine.inspect_checkpoint(offline_hub)          # imports and page cache out of the timing
    for size in ("tiny", "base_plus"):
        backend = create_backend("sam2-clip", {"model_size": size})
        start = time.perf_counter()
        with pytest.raises(WeightsError) as info:
            backend.check_weights()
        assert time.perf_counter() - start < 1.0
        msg = str(info.value)
        assert "is a SAM2.1 model_size: large checkpoint" in msg and "set model_size: large" in msg
        assert str(offline_hub) in msg and "download" not in msg


@pytest.mark.models
def test_extract_then_paper_sweep_share_one_cache_with_the_large_model(
        offline_hub, tmp_path, monkeypatch, capsys):
    import optuna

    fx = make_davis_dataset(tmp_path / "ref-davis17")
    work = tmp_path / "project"                        # the project root lcrp runs in
    shutil.copytree(REPO / "sweeps", work / "sweeps")
    monkeypatch.chdir(work)
    # the paper's config with inputs small enough for the CPU (same models and weights)
    cfg = load_backend_config("sweeps/backends/sam2_large.yaml")
    cfg.update(image_size=256, dtype="fp32", points_per_side=2, pred_iou_thresh=0.0,
               stability_score_thresh=0.0, clip_image_size=56)
    small = work / "sam2_large_cpu.yaml"
    small.write_text("".join(f"{k}: {'null' if v is None else v}\n" for k, v in cfg.items()))

    with log_lines("lcrp.backends.sam2_clip") as lines:
        assert main(["extract", "--dataset", "ref-davis17", "--root", str(fx.root), "--backend",
                     "sam2-clip", "--backend-config", str(small), "--cache-dir", "cache"]) == 0
    out = capsys.readouterr().out
    key = out.split("cache key: ")[1].split()[0]
    assert "sam2-clip-" in key
    text = "\n".join(lines)
    assert "SAM2.1 large (input 256)" in text
    assert "open_clip ViT-L-14 with weights" in text and "open_clip_model.safetensors" in text

    storage = f"sqlite:///{tmp_path / 'nk.db'}"
    assert main(["sweep", "run", "sweeps/refdavis17_nk.yaml", "--root", str(fx.root),
                 "--backend-config", str(small), "--storage", storage, "--devices", "cpu",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"cache key: {key} under cache (2 of 2 videos extracted)" in out
    study = optuna.load_study(study_name="refdavis17_nk", storage=storage)
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 5 and all(t.state.name == "COMPLETE" for t in trials)
    for t in trials:
        assert t.user_attrs["cache_key"] == key
        counters = t.user_attrs["cache_counters"]
        assert counters["proposals_computed"] == 0 and counters["texts_computed"] == 0


def test_sweep_over_an_empty_cache_says_so_with_the_extract_command(tmp_path, monkeypatch):
    from dataclasses import replace

    from lcrp_core.commands.sweep import _announce_cache

    monkeypatch.chdir(REPO)
    root = make_davis_dataset(tmp_path / "davis").root
    spec = load_sweep_spec("sweeps/refdavis17_nk.yaml", check_root=False).with_root(root)
    spec = replace(spec, cache_dir=str(tmp_path / "cache"))
    with log_lines("lcrp") as lines:
        _announce_cache(spec)
    text = "\n".join(lines)
    assert "holds no features for 2 of 2 videos" in text
    assert (f"lcrp extract --dataset ref-davis17 --root {root} --split valid --backend sam2-clip "
            f"--backend-config sweeps/backends/sam2_large.yaml --cache-dir {tmp_path / 'cache'} "
            f"--devices cuda:0") in text
