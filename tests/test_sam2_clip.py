"""The sam2-clip backend: real sam2 1.1 and open_clip code with seeded random weights on a tiny
in-memory video (4 frames of 64×96), tiny config (sam2.1_hiera_t at input 256), ViT-B-32 at 64².

Pure helpers (prompts from a mask, region views, cosine scores, config and weight checks) are
tested on hand-computed cases without torch; the model tests are marked ``models``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import time

import cv2
import numpy as np
import pytest

from lcrp_core.backends.base import Proposals, create_backend
from lcrp_core.backends.clip_engine import fit, l2_normalize, region_views
from lcrp_core.backends.sam2_clip import (
    ENV_CLIP_PRETRAINED,
    ENV_SAM2_CHECKPOINT,
    RANDOM_WEIGHTS,
    SAM2_DOWNLOAD_URL,
    Sam2ClipBackend,
    cosine_scores,
    mask_prompts,
)
from lcrp_core.data.model import Video
from lcrp_core.errors import ConfigError, DataError, WeightsError
from lcrp_core.masks import iou

MISSING = [m for m in ("torch", "torchvision", "sam2", "open_clip") if
           importlib.util.find_spec(m) is None]
MODELS = [pytest.mark.models,
          pytest.mark.skipif(bool(MISSING), reason=f"needs the [models] extra: {MISSING} missing")]

T, H, W = 4, 64, 96
#: bytes of one frame's SAM2 features at input 256 (32·64² + 64·32² + 256·16² floats)
FRAME_BYTES = 4 * (32 * 64 * 64 + 64 * 32 * 32 + 256 * 16 * 16)
TINY = {"image_size": 256, "points_per_side": 4, "pred_iou_thresh": 0.0,
        "stability_score_thresh": 0.0, "clip_image_size": 64}


def make_video(num_frames: int = T, *, seed: int = 0) -> Video:
    """A red box moving right over a noisy blue background, frames held in memory (``seed``:
    the noise, so another seed gives frames whose features are not in any store)."""
    rng = np.random.default_rng(seed)
    frames = []
    for t in range(num_frames):
        f = np.full((H, W, 3), (40, 80, 120), dtype=np.int16)
        f[20:40, 20 + 5 * t:50 + 5 * t] = (220, 40, 40)
        frames.append(np.clip(f + rng.integers(0, 15, f.shape), 0, 255).astype(np.uint8))
    return Video("clip", [f"{t:05d}" for t in range(num_frames)], {},
                 frame_loader=lambda t: frames[t])


def box_mask(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros((H, W), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


# -- pure helpers ------------------------------------------------------------------------------

def test_mask_prompts_hand_computed():
    m = np.zeros((8, 8), dtype=bool)
    m[2:6, 1:7] = True                       # rows 2..5, columns 1..6
    box, logits, points = mask_prompts(m, lowres=4, num_points=3)
    assert box.tolist() == [1, 2, 7, 6]      # continuous extent: exclusive ends
    # 2×2 cells: rows 0-1 empty; rows 2-3 × cols 0-1 half covered (0), cols 2-5 full (+10)
    assert logits.shape == (1, 4, 4) and logits.dtype == np.float32
    assert logits[0].tolist() == [[-10, -10, -10, -10], [0, 10, 10, 0], [0, 10, 10, 0],
                                  [-10, -10, -10, -10]]
    # distance transform: 2 on rows 3-4 × cols 2-5; the first maximum (3, 2) clears its radius-2
    # disk, the next (3, 5) likewise; the first untouched pixel left is (5, 1) with distance 1
    assert points.tolist() == [[2.5, 3.5], [5.5, 3.5], [1.5, 5.5]]
    # same size: the logits are the mask at ±10 exactly
    _, same, _ = mask_prompts(m, lowres=8, num_points=0)
    assert np.array_equal(same[0], np.where(m, 10.0, -10.0))
    one = np.zeros((8, 8), dtype=bool)
    one[4, 4] = True
    assert mask_prompts(one, lowres=8, num_points=5)[2].tolist() == [[4.5, 4.5]]
    with pytest.raises(ValueError):
        mask_prompts(np.zeros((8, 8), dtype=bool), lowres=4, num_points=1)


def test_cosine_scores_hand_computed():
    feats = np.array([[3, 4], [1, 0], [0, -2]], dtype=np.float32)
    assert np.allclose(cosine_scores(feats, np.array([0, 2.0])), [0.8, 0.0, -1.0])
    assert cosine_scores(np.zeros((0, 2), np.float32), np.array([1.0, 0])).shape == (0,)
    with pytest.raises(DataError, match="text feature of size 3"):
        cosine_scores(feats, np.ones(3))
    assert np.allclose(l2_normalize(np.array([[3.0, 4.0], [0, 0]])), [[0.6, 0.8], [0, 0]])


def test_fit_pads_to_the_aspect_then_resizes():
    tall = np.arange(8, dtype=np.uint8).reshape(4, 2)
    out = fit(tall, (4, 4), 9)
    assert out.tolist() == [[9, 0, 1, 9], [9, 2, 3, 9], [9, 4, 5, 9], [9, 6, 7, 9]]
    wide = np.ones((2, 6), dtype=np.float32)
    out = fit(wide, (3, 3), 0.0)             # padded to 6×6 (2 rows above, 2 below), shrunk ×2
    assert out.shape == (3, 3) and out[1].tolist() == [1, 1, 1] and out[0].sum() == 0


def test_region_views_hand_computed():
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (8, 8, 3)).astype(np.uint8)
    mean = (10, 20, 30)
    holed = np.ones((8, 8), dtype=bool)
    holed[5, 6] = False                      # box = whole frame: no padding, no resizing
    small = np.zeros((8, 8), dtype=bool)
    small[1:3, 2:4] = True                   # a 2×2 box, enlarged ×4
    views = region_views(frame, np.stack([holed, small, np.zeros((8, 8), bool)]), size=(8, 8),
                         mean_rgb=mean, blur_sigma=2.0)
    assert views.shape == (6, 8, 8, 3) and views.dtype == np.uint8
    crop, crop_small, crop_empty, blur, blur_small, _ = views
    expected = frame.copy()
    expected[5, 6] = mean
    assert np.array_equal(crop, expected)                         # outside the mask: mean colour
    assert np.array_equal(crop_empty, np.broadcast_to(np.array(mean, np.uint8), (8, 8, 3)))
    enlarged = cv2.resize(np.ascontiguousarray(frame[1:3, 2:4]), (8, 8),
                          interpolation=cv2.INTER_CUBIC)
    assert np.array_equal(crop_small, enlarged)
    blurred = cv2.GaussianBlur(frame.astype(np.float32), (0, 0), 2.0)
    assert np.array_equal(blur[holed], frame[holed])              # inside the mask: untouched
    assert np.array_equal(blur[5, 6], np.clip(blurred[5, 6] + 0.5, 0, 255).astype(np.uint8))
    assert np.array_equal(blur_small[small], frame[small])
    assert np.array_equal(blur_small[~small], np.clip(blurred[~small] + 0.5, 0, 255)
                          .astype(np.uint8))
    assert region_views(frame, np.zeros((0, 8, 8), bool), size=(8, 8), mean_rgb=mean,
                        blur_sigma=2.0).shape == (0, 8, 8, 3)


def test_config_is_validated():
    with pytest.raises(ConfigError, match="unknown backend config key"):
        Sam2ClipBackend({"nope": 1})
    with pytest.raises(ConfigError, match="sam2-clip.model_size.*one of"):
        Sam2ClipBackend({"model_size": "huge"})
    with pytest.raises(ConfigError, match="sam2-clip.image_size"):
        Sam2ClipBackend({"image_size": 100})
    with pytest.raises(ConfigError, match="sam2-clip.dtype"):
        Sam2ClipBackend({"dtype": "fp16"})
    with pytest.raises(ConfigError, match="sam2-clip.pred_iou_thresh"):
        Sam2ClipBackend({"pred_iou_thresh": 1.5})
    with pytest.raises(ConfigError, match="sam2-clip.clip_image_size"):
        Sam2ClipBackend({"clip_image_size": "big"})
    assert set(Sam2ClipBackend.proposal_only_keys) < set(Sam2ClipBackend.defaults)


def test_weights_from_env_and_portable_cache_keys(tmp_path, monkeypatch):
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "sam2.1_hiera_tiny.pt").write_bytes(b"x" * 10)
    monkeypatch.setenv(ENV_SAM2_CHECKPOINT, str(tmp_path / "a" / "sam2.1_hiera_tiny.pt"))
    monkeypatch.setenv(ENV_CLIP_PRETRAINED, "laion2b_s34b_b79k")
    a = create_backend("sam2-clip")
    assert a.config["sam2_checkpoint"] == str(tmp_path / "a" / "sam2.1_hiera_tiny.pt")
    assert a.config["clip_pretrained"] == "laion2b_s34b_b79k"
    b = Sam2ClipBackend({"sam2_checkpoint": str(tmp_path / "b" / "sam2.1_hiera_tiny.pt")})
    # the same weights file in another folder: same cache keys (name and size, not the path)
    assert a.propagator_config == b.propagator_config
    assert a.propagator_config["sam2_checkpoint"] == "sam2.1_hiera_tiny.pt:10"
    assert a.config_hash == b.config_hash
    assert b.config["sam2_checkpoint"].endswith("/b/sam2.1_hiera_tiny.pt")
    # CLIP keys do not touch the propagation key; random weights never share keys with real ones
    c = Sam2ClipBackend({"sam2_checkpoint": str(tmp_path / "b" / "sam2.1_hiera_tiny.pt"),
                         "clip_model": "ViT-B-16", "clip_blur_sigma": 3.0})
    assert c.propagator_config == b.propagator_config and c.config_hash != b.config_hash
    r = Sam2ClipBackend(random_init=True)
    assert r.config["sam2_checkpoint"] == r.config["clip_pretrained"] == RANDOM_WEIGHTS
    assert r.propagator_config != b.propagator_config
    monkeypatch.delenv(ENV_CLIP_PRETRAINED)
    assert Sam2ClipBackend().config["clip_pretrained"] == "openai"


def test_missing_sam2_checkpoint_is_one_fast_error(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_SAM2_CHECKPOINT, raising=False)
    missing = tmp_path / "nowhere" / "sam2.1_hiera_small.pt"
    backend = Sam2ClipBackend({"model_size": "small", "sam2_checkpoint": str(missing)})
    start = time.perf_counter()
    with pytest.raises(WeightsError) as info:
        backend.check_weights()
    assert time.perf_counter() - start < 1.0
    msg = str(info.value)
    assert str(missing) in msg and "not found" in msg and "sam2_checkpoint" in msg
    assert f"{SAM2_DOWNLOAD_URL}sam2.1_hiera_small.pt" in msg and ENV_SAM2_CHECKPOINT in msg
    monkeypatch.setenv(ENV_SAM2_CHECKPOINT, str(missing))
    with pytest.raises(WeightsError, match=f"given by the env var {ENV_SAM2_CHECKPOINT}"):
        Sam2ClipBackend().check_weights()
    monkeypatch.delenv(ENV_SAM2_CHECKPOINT)
    with pytest.raises(WeightsError, match="no SAM2 checkpoint given.*sam2.1_hiera_tiny.pt"):
        Sam2ClipBackend().check_weights()


# -- with models (seeded random weights) ---------------------------------------------------------

@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One intra-op thread: on two shared cores, torch's default two threads stall (10× slower)
    whenever another process is busy."""
    if MISSING:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def backend():
    b = Sam2ClipBackend(TINY, random_init=True)
    yield b
    b.close()


@pytest.fixture(scope="module")
def video():
    return make_video()


@pytest.fixture(scope="module")
def sam_model():
    """A second tiny SAM2 (same seeded weights) for engine-level checks."""
    from lcrp_core.backends import sam2_engine

    return sam2_engine.build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", None, image_size=256,
                                  device="cpu")


def count_encodes(model, monkeypatch) -> list[int]:
    """Counts the model's encoder passes (``forward_image`` calls) from now on."""
    calls = [0]
    original = model.forward_image

    def counted(image):
        calls[0] += 1
        return original(image)

    monkeypatch.setattr(model, "forward_image", counted)
    return calls


def with_frame_cache(config: dict, video: Video, cache) -> Sam2ClipBackend:
    """A random-weights backend persisting its frame features in ``cache`` as production does
    (``persist_frame_features``, attached by VideoFeatures under the track scope ``t``)."""
    from lcrp_core.cache.features import CacheScope, VideoFeatures

    backend = Sam2ClipBackend({**config, "persist_frame_features": True}, random_init=True)
    VideoFeatures(video, backend, cache, CacheScope("f", "t"))
    return backend


class TestWithModels:
    pytestmark = MODELS

    def test_proposals(self, backend, video):
        props = backend.propose(video, 1)
        n = len(props)
        assert n >= 1
        assert props.masks.shape == (n, H, W) and props.masks.dtype == bool
        assert props.quality.dtype == np.float32 and props.quality.shape == (n,)
        assert ((props.quality >= 0) & (props.quality <= 1)).all()
        assert props.features.shape == (n, 512) and props.features.dtype == np.float32
        assert np.allclose(np.linalg.norm(props.features, axis=1), 1.0, atol=1e-5)
        again = backend.propose(video, 1)
        assert np.array_equal(again.masks, props.masks)
        assert np.array_equal(again.features, props.features)
        # a cache round trip keeps everything
        back = Proposals.from_payload(*props.to_payload())
        assert np.array_equal(back.masks, props.masks)

    def test_region_features_batched_like_one_by_one(self, backend, video):
        frame = video.frame(2)
        masks = np.stack([box_mask(20, 40, 30, 60), box_mask(0, 10, 0, 96),
                          box_mask(50, 64, 70, 96)])
        feats = backend.region_features(frame, masks)
        assert feats.shape == (3, 512)
        assert np.allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-5)
        singles = np.concatenate([backend.region_features(frame, m[None]) for m in masks])
        assert np.allclose(feats, singles, atol=1e-5)
        assert not np.allclose(feats[0], feats[1], atol=1e-3)     # different regions differ
        assert backend.region_features(frame, masks[:0]).shape == (0, 512)

    def test_text_features_and_scores(self, backend, video):
        red = backend.encode_text("the red box moving right")
        blue = backend.encode_text("the blue background")
        assert red.shape == (512,) and red.dtype == np.float32
        assert np.isclose(np.linalg.norm(red), 1.0, atol=1e-5)
        assert not np.allclose(red, blue)
        assert np.array_equal(backend.encode_text("the red box moving right"), red)
        props = backend.propose(video, 1)
        scores = backend.score(props, red)
        assert scores.shape == (len(props),)
        assert np.allclose(scores, props.features @ red, atol=1e-5)

    def test_refine(self, backend, video):
        seed = box_mask(20, 40, 25, 55)
        before = backend.encoder_passes
        out = backend.refine(video, 3, seed)
        assert out.shape == (H, W) and out.dtype == bool
        assert backend.encoder_passes == before + 1                # frame 3 encoded once...
        assert np.array_equal(backend.refine(video, 3, seed), out)  # ...and reused
        assert backend.encoder_passes == before + 1
        assert not backend.refine(video, 3, np.zeros((H, W), bool)).any()
        with pytest.raises(DataError, match="do not match the video's frames"):
            backend.refine(video, 3, np.ones((H, W + 1), bool))

    def test_store_predictor_is_bit_identical_to_stock(self, sam_model):
        from sam2.sam2_image_predictor import SAM2ImagePredictor

        from lcrp_core.backends import sam2_engine

        frame = make_video().frame(0)
        store = sam2_engine.FeatureStore(sam_model, max_bytes=4 * FRAME_BYTES)
        ours = sam2_engine.StoreImagePredictor(sam_model, store)
        stock = SAM2ImagePredictor(sam_model)
        stock._bb_feat_sizes = ours._bb_feat_sizes   # the stock class assumes a 1024 input
        prompts = {"box": np.array([20, 15, 60, 45], np.float32),
                   "point_coords": np.array([[40.5, 30.5]], np.float32),
                   "point_labels": np.array([1]), "multimask_output": False,
                   "return_logits": True}
        with sam2_engine.compute_mode("cpu", "fp32"):
            stock.set_image(frame)
            expected = stock.predict(**prompts)
            ours.set_image(frame)
            got = ours.predict(**prompts)
            assert all(np.array_equal(a, b) for a, b in zip(expected, got))
            # saved, dropped, restored: the same logits, no encoder pass
            saved = sam2_engine.FeatureStore.export(store.fpn(frame))
            store.clear()
            store.put(sam2_engine.frame_key(frame), store.restore(saved))
            encoded = store.encoded
            ours.set_image(frame)
            again = ours.predict(**prompts)
            assert store.encoded == encoded
            assert all(np.array_equal(a, b) for a, b in zip(expected, again))

    def test_saved_image_features_give_bit_identical_refinement(self, video, tmp_path):
        from lcrp_core.backends import sam2_engine
        from lcrp_core.cache.store import CacheStore

        cache = CacheStore(tmp_path)
        seed = box_mask(22, 38, 30, 60)
        first = with_frame_cache(TINY, video, cache)
        refined = first.refine(video, 2, seed)
        key = f"t/_frames/{sam2_engine.frame_key(video.frame(2))}"
        feats = cache.get(key).arrays                     # what production persisted
        assert sorted(feats) == ["fpn0", "fpn1", "fpn2"]
        assert feats["fpn0"].shape == (1, 32, 64, 64) and feats["fpn2"].shape == (1, 256, 16, 16)
        fresh = with_frame_cache(TINY, video, cache)      # another process, same config
        assert np.array_equal(fresh.refine(video, 2, seed), refined)
        assert fresh.encoder_passes == 0 and fresh.frames_loaded == 1
        cache.put(key, {**feats, "fpn2": feats["fpn2"][:, :, :8]})
        with pytest.raises(DataError, match="fpn2 has shape"):
            with_frame_cache(TINY, video, cache).refine(video, 2, seed)

    def test_persisted_frame_features_are_never_re_encoded(self, tmp_path):
        from lcrp_core.cache.features import CacheScope, VideoFeatures
        from lcrp_core.cache.store import CacheStore

        video, seeds = make_video(seed=8), box_mask(20, 40, 30, 60)[None]
        cache, scope = CacheStore(tmp_path), CacheScope("f", "t")
        first = Sam2ClipBackend({**TINY, "persist_frame_features": True}, random_init=True)
        VideoFeatures(video, first, cache, scope)             # attaches the frame cache
        tracks = first.propagate(video, 1, seeds)
        assert first.encoder_passes == T and len(list(cache.entries("t/_frames"))) == T
        fresh = Sam2ClipBackend({**TINY, "persist_frame_features": True}, random_init=True)
        VideoFeatures(video, fresh, cache, scope)
        assert np.array_equal(fresh.propagate(video, 1, seeds), tracks)
        assert fresh.encoder_passes == 0 and fresh.frames_loaded == T
        assert fresh.config_hash == Sam2ClipBackend(TINY, random_init=True).config_hash

    def test_propagation_covers_every_frame_forward_and_backward(self, backend, video):
        seeds = np.stack([box_mask(20, 40, 30, 60), box_mask(45, 60, 5, 30)])
        tracks = backend.propagate(video, 1, seeds)
        assert tracks.shape == (2, T, H, W) and tracks.dtype == bool
        assert iou(tracks[0, 1], seeds[0]) > 0.9 and iou(tracks[1, 1], seeds[1]) > 0.9
        assert backend.propagate(video, 0, seeds[:0]).shape == (0, T, H, W)
        with pytest.raises(DataError, match="out of range"):
            backend.propagate(video, T, seeds)

    def test_passes_run_both_ways_from_the_seed_frame(self, sam_model, video):
        from lcrp_core.backends import sam2_engine

        store = sam2_engine.FeatureStore(sam_model, max_bytes=8 * FRAME_BYTES)
        with sam2_engine.compute_mode("cpu", "fp32"):
            state = sam2_engine.new_inference_state(sam_model, video, store, all_frame_cache=True)
            sam2_engine.track(sam_model, state, 2, box_mask(20, 40, 30, 60)[None])
        tracked = state["frames_tracked_per_obj"][0]
        assert sorted(tracked) == list(range(T))
        assert [tracked[f]["reverse"] for f in (0, 1, 3)] == [True, True, False]

    def test_tracking_draws_no_sam2_bar_and_leaves_sam2_as_it_was(self, sam_model, video, capfd):
        import torch
        from sam2 import sam2_video_predictor as vp

        from lcrp_core.backends import sam2_engine

        bar = vp.tqdm
        store = sam2_engine.FeatureStore(sam_model, max_bytes=8 * FRAME_BYTES)

        def fails(mask):
            raise RuntimeError("clean failed")

        with sam2_engine.compute_mode("cpu", "fp32"):
            state = sam2_engine.new_inference_state(sam_model, video, store, all_frame_cache=True)
            sam2_engine.track(sam_model, state, 2, box_mask(20, 40, 30, 60)[None])
            assert vp.tqdm is bar
            state = sam2_engine.new_inference_state(sam_model, video, store, all_frame_cache=True)
            with pytest.raises(RuntimeError, match="clean failed"):
                sam2_engine.track(sam_model, state, 2, box_mask(20, 40, 30, 60)[None], clean=fails)
        assert vp.tqdm is bar
        assert "propagate in video" not in capfd.readouterr().err
        with sam2_engine.compute_mode("cpu", "fp32"):   # the stock call still draws it
            state = sam2_engine.new_inference_state(sam_model, video, store, all_frame_cache=True)
            sam_model.add_new_mask(state, frame_idx=0, obj_id=0,
                                   mask=torch.from_numpy(box_mask(20, 40, 30, 60)))
            list(sam_model.propagate_in_video(state, start_frame_idx=0))
        assert "propagate in video" in capfd.readouterr().err

    def test_several_seeds_one_pass(self, backend):
        video = make_video(seed=5)               # frames no store holds yet
        seeds = np.stack([box_mask(20, 40, 30, 60), box_mask(45, 60, 5, 30),
                          box_mask(0, 15, 60, 90)])
        before = backend.encoder_passes
        together = backend.propagate(video, 2, seeds)
        assert backend.encoder_passes - before == T    # each frame once, for all three seeds
        alone = [backend.propagate(video, 2, s[None])[0] for s in seeds]
        assert backend.encoder_passes - before == T    # later calls re-encode nothing
        for s in range(3):
            assert np.array_equal(together[s], alone[s])

    def test_all_frame_cache_gives_the_stock_tracks(self, backend, video):
        seeds = np.stack([box_mask(20, 40, 30, 60), box_mask(45, 60, 5, 30)])
        cached = backend.propagate(video, 1, seeds)
        stock = backend.propagate(video, 1, seeds, all_frame_cache=False)
        assert np.array_equal(cached, stock)

    def test_stock_cache_reencodes_every_pass_ours_once(self, sam_model, monkeypatch):
        from lcrp_core.backends import sam2_engine

        video = make_video(seed=6)
        seeds = np.stack([box_mask(20, 40, 30, 60), box_mask(45, 60, 5, 30)])
        store = sam2_engine.FeatureStore(sam_model, max_bytes=8 * FRAME_BYTES)
        calls = count_encodes(sam_model, monkeypatch)
        runs = {}
        with sam2_engine.compute_mode("cpu", "fp32"):
            for name, all_frames in (("stock", False), ("first", True), ("second", True),
                                     ("stock again", False)):
                before = calls[0]
                state = sam2_engine.new_inference_state(sam_model, video, store,
                                                        all_frame_cache=all_frames)
                tracks = sam2_engine.track(sam_model, state, 1, seeds)
                runs[name] = (np.stack([p.unpack() for p in tracks]), calls[0] - before)
        # stock: every frame once per call (seed frame: when the masks are added), every call
        assert runs["stock"][1] == runs["stock again"][1] == T
        assert runs["first"][1] == T and runs["second"][1] == 0
        for name in ("first", "second", "stock again"):
            assert np.array_equal(runs[name][0], runs["stock"][0])

    def test_the_sam2_internals_we_rely_on_are_still_there(self, sam_model):
        """Every private sam2 name the engine uses (no public route exists for them): a sam2
        release that renames one fails here, not deep inside a sweep."""
        import inspect

        from sam2 import sam2_video_predictor as vp
        from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator
        from sam2.sam2_image_predictor import SAM2ImagePredictor

        assert callable(sam_model._prepare_backbone_features)            # StoreImagePredictor
        assert callable(sam_model.image_encoder.neck.position_encoding)  # FeatureStore
        assert sam_model.fill_hole_area == 0                             # set after the builder
        predictor = SAM2ImagePredictor(sam_model)
        for name in ("_features", "_orig_hw", "_is_image_set", "_is_batch", "_bb_feat_sizes"):
            assert hasattr(predictor, name), name
        assert hasattr(vp, "tqdm")                          # swapped while track() runs
        params = inspect.signature(SAM2AutomaticMaskGenerator.__init__).parameters
        assert {"points_per_side", "points_per_batch", "pred_iou_thresh",
                "stability_score_thresh", "output_mode"} <= set(params)
        source = inspect.getsource(vp.SAM2VideoPredictor._get_image_feature)
        assert 'inference_state["cached_features"].get(' in source          # AllFrameFeatures
        gen = inspect.getsource(SAM2AutomaticMaskGenerator)
        assert "self.predictor.set_image(" in gen                       # generator.predictor

    def test_inference_state_has_the_stock_keys(self, sam_model, tmp_path):
        from lcrp_core.backends import sam2_engine

        video = make_video(2)
        for t in range(2):
            cv2.imwrite(str(tmp_path / f"{t:05d}.jpg"), video.frame(t)[..., ::-1])
        store = sam2_engine.FeatureStore(sam_model, max_bytes=2 * FRAME_BYTES)
        ours = sam2_engine.new_inference_state(sam_model, video, store, all_frame_cache=False)
        stock = sam_model.init_state(str(tmp_path))
        assert set(ours) == set(stock)
        assert {k: stock[k] for k in ("num_frames", "video_height", "video_width")} == \
               {k: ours[k] for k in ("num_frames", "video_height", "video_width")}

    def test_bf16_and_a_single_loud_warning(self, video, tmp_path):
        import torch

        records: list[logging.LogRecord] = []
        handler = logging.Handler()
        handler.emit = records.append
        logger = logging.getLogger("lcrp.backends.sam2_clip")
        logger.addHandler(handler)
        try:
            b = Sam2ClipBackend({**TINY, "dtype": "bf16"}, random_init=True)
            out = b.refine(video, 1, box_mask(20, 40, 30, 60))
            b.encode_text("a box")
            b.propose(video, 0)
        finally:
            logger.removeHandler(handler)
        assert out.shape == (H, W)
        warnings = [r for r in records if "RANDOM WEIGHTS" in r.getMessage()]
        assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
        from lcrp_core.backends import sam2_engine
        from lcrp_core.cache.store import CacheStore

        cache = CacheStore(tmp_path)
        persisted = with_frame_cache({**TINY, "dtype": "bf16"}, video, cache)
        assert np.array_equal(persisted.refine(video, 1, box_mask(20, 40, 30, 60)), out)
        key = sam2_engine.frame_key(video.frame(1))
        entry = cache.get(f"t/_frames/{key}")
        feats = entry.arrays
        assert feats["fpn0"].dtype == np.uint16          # bfloat16 bits, kept exactly
        store = persisted._sam.store
        assert all(torch.equal(a.view(torch.int16) if a.dtype == torch.bfloat16 else a,
                               b.view(torch.int16) if b.dtype == torch.bfloat16 else b)
                   and a.stride() == b.stride()
                   for a, b in zip(store.restore(feats, entry.meta["layout"]), store.cached(key),
                                   strict=True))

    def test_bf16_frame_features_loaded_from_the_cache_refine_bit_identically(self, video, tmp_path):
        from lcrp_core.backends import sam2_engine
        from lcrp_core.cache.store import CacheStore

        cache = CacheStore(tmp_path)
        seed = box_mask(20, 40, 30, 60)
        first = with_frame_cache({**TINY, "dtype": "bf16"}, video, cache)
        computed = first.refine(video, 1, seed)
        fresh = with_frame_cache({**TINY, "dtype": "bf16"}, video, cache)
        loaded = fresh.refine(video, 1, seed)
        assert fresh.encoder_passes == 0 and fresh.frames_loaded == 1
        assert fresh._sam.store.probed == 0              # the entry's layout record sufficed
        assert np.array_equal(loaded, computed)
        key = sam2_engine.frame_key(video.frame(1))
        for a, b in zip(fresh._sam.store.cached(key), first._sam.store.cached(key), strict=True):
            assert (a.dtype, a.shape, a.stride(), a.device) == (b.dtype, b.shape, b.stride(),
                                                                b.device)
        # the encoder leaves some levels channels-last: the layout is really reproduced
        assert any(not a.is_contiguous() for a in first._sam.store.cached(key))

    def test_frame_features_cached_without_a_layout_still_load_bit_identically(self, video,
                                                                               tmp_path):
        """Entries written before the layout was recorded (arrays only, no metadata) load,
        with the layout the encoder gives each level (learned once from a blank image)."""
        from lcrp_core.backends import sam2_engine
        from lcrp_core.cache.store import CacheStore

        cache = CacheStore(tmp_path)
        seed = box_mask(20, 40, 30, 60)
        first = with_frame_cache({**TINY, "dtype": "bf16"}, video, cache)
        computed = first.refine(video, 1, seed)
        key = f"t/_frames/{sam2_engine.frame_key(video.frame(1))}"
        assert "layout" in cache.get(key).meta
        cache.put(key, cache.get(key).arrays)             # as the code before the fix wrote it
        assert cache.get(key).meta == {}
        old = with_frame_cache({**TINY, "dtype": "bf16"}, video, cache)
        assert np.array_equal(old.refine(video, 1, seed), computed)
        store, frame = old._sam.store, key.rsplit("/", 1)[1]
        assert old.encoder_passes == 0 and old.frames_loaded == 1 and store.probed == 1
        assert [f.stride() for f in store.cached(frame)] == \
               [f.stride() for f in first._sam.store.cached(frame)]
        # a layout recorded on another device type is not trusted; a malformed one fails
        arrays = cache.get(key).arrays
        layout = sam2_engine.FeatureStore.layout(first._sam.store.cached(frame))
        with sam2_engine.compute_mode("cpu", "bf16"):
            elsewhere = sam2_engine.FeatureStore(store.model, max_bytes=4 * FRAME_BYTES)
            restored = elsewhere.restore(arrays, {**layout, "device": "cuda"})
            assert elsewhere.probed == 1
            assert [list(f.stride()) for f in restored] == layout["strides"]
            bad = {**layout, "strides": [layout["strides"][0], [1, 1, 1, 1], layout["strides"][2]]}
            with pytest.raises(DataError, match="not a dense layout"):
                sam2_engine.FeatureStore(store.model, max_bytes=FRAME_BYTES).restore(arrays, bad)


# -- weights that do not match ---------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory, sam_model):
    """A tiny sam2.1 checkpoint file (random weights in fp16, to keep it small)."""
    import torch

    path = tmp_path_factory.mktemp("ckpt") / "sam2.1_hiera_tiny.pt"
    torch.save({"model": {k: v.half() for k, v in sam_model.state_dict().items()}}, path)
    return path


class TestWeightErrors:
    pytestmark = MODELS

    def test_checkpoint_of_another_size_fails_fast_naming_its_size(self, tiny_checkpoint,
                                                                    monkeypatch):
        from lcrp_core.backends import sam2_engine

        sam2_engine.inspect_checkpoint(tiny_checkpoint)          # timing below excludes imports
        built = []
        monkeypatch.setattr(sam2_engine, "build_sam2", lambda *a, **k: built.append(a))
        # clip_pretrained: any existing file passes the quick check; refinement never loads CLIP
        b = Sam2ClipBackend({"model_size": "small", "image_size": 256,
                             "sam2_checkpoint": str(tiny_checkpoint),
                             "clip_pretrained": "openai"})
        start = time.perf_counter()
        with pytest.raises(WeightsError) as info:
            b.refine(make_video(1), 0, box_mask(20, 40, 30, 60))
        assert time.perf_counter() - start < 1.0 and not built
        msg = str(info.value)
        assert str(tiny_checkpoint) in msg and "is a SAM2.1 model_size: tiny checkpoint" in msg
        assert "set model_size: tiny" in msg and "download" not in msg

    def test_checkpoint_with_foreign_keys_or_not_a_checkpoint(self, tiny_checkpoint, tmp_path):
        import torch

        blob = torch.load(tiny_checkpoint, weights_only=True)
        blob["model"]["extra.weight"] = torch.zeros(1)
        extra = tmp_path / "extra.pt"
        torch.save(blob, extra)
        b = Sam2ClipBackend({"image_size": 256, "sam2_checkpoint": str(extra),
                             "clip_pretrained": "openai"})
        b._clip_weights = lambda: None          # CLIP is not what this test is about
        with pytest.raises(WeightsError, match=r"does not load into .*Unexpected key.*extra.weight"):
            b.refine(make_video(1), 0, box_mask(20, 40, 30, 60))
        text = tmp_path / "notes.pt"
        text.write_text("not a checkpoint")
        b = Sam2ClipBackend({"sam2_checkpoint": str(text), "clip_pretrained": str(text)})
        with pytest.raises(WeightsError, match="not a readable SAM2 checkpoint"):
            b.propagate(make_video(1), 0, box_mask(20, 40, 30, 60)[None])
        other = tmp_path / "other.pt"
        torch.save({"model": {"w": torch.zeros(2)}}, other)
        with pytest.raises(WeightsError, match="not a SAM2 checkpoint"):
            Sam2ClipBackend({"sam2_checkpoint": str(other)}).check_weights()

    def test_sam2_0_checkpoints_run_with_their_own_configs(self, tmp_path, video):
        import torch

        from lcrp_core.backends import sam2_engine

        old = sam2_engine.build_sam2("configs/sam2/sam2_hiera_t.yaml", None, image_size=256,
                                     device="cpu")
        path = tmp_path / "sam2_hiera_tiny.pt"
        torch.save({"model": {k: v.half() for k, v in old.state_dict().items()}}, path)
        assert sam2_engine.inspect_checkpoint(path) == ("2.0", "tiny")
        b = Sam2ClipBackend({"image_size": 256, "sam2_checkpoint": str(path),
                             "clip_pretrained": "openai"})
        b._clip_weights = lambda: None
        b.check_weights()
        assert b._sam2_config() == "configs/sam2/sam2_hiera_t.yaml"
        assert b.refine(video, 1, box_mask(20, 40, 30, 60)).shape == (H, W)

    def test_clip_tag_missing_from_the_local_cache(self, tmp_path, monkeypatch, tiny_checkpoint):
        import open_clip  # noqa: F401  (timing below excludes the import)
        from huggingface_hub import constants
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub"))
        b = Sam2ClipBackend({"sam2_checkpoint": str(tiny_checkpoint), "clip_model": "ViT-B-32",
                             "clip_pretrained": "openai"})
        start = time.perf_counter()
        with pytest.raises(WeightsError) as info:
            b.encode_text("a dog")
        assert time.perf_counter() - start < 1.0
        msg = str(info.value)
        assert "ViT-B-32/openai" in msg and "empty-hub" in msg
        assert "hf download timm/vit_base_patch32_clip_224.openai" in msg
        assert ENV_CLIP_PRETRAINED in msg and "sam2-clip.clip_pretrained" in msg
        with pytest.raises(WeightsError, match="neither an open_clip tag of ViT-B-32.*openai"):
            Sam2ClipBackend({"sam2_checkpoint": str(tiny_checkpoint),
                             "clip_pretrained": "no-such-tag"}).check_weights()
        with pytest.raises(WeightsError, match="CLIP weights file not found"):
            Sam2ClipBackend({"sam2_checkpoint": str(tiny_checkpoint),
                             "clip_pretrained": str(tmp_path / "clip.pt")}).check_weights()
        with pytest.raises(ConfigError, match="unknown open_clip model"):
            Sam2ClipBackend({"sam2_checkpoint": str(tiny_checkpoint),
                             "clip_model": "ViT-Q-99"}).check_weights()


# -- long videos: a feature store bounded below the video's length ------------------------------

@pytest.mark.models
@pytest.mark.skipif(bool(MISSING), reason=f"needs the [models] extra: {MISSING} missing")
def test_300_frames_with_a_store_smaller_than_the_video_encode_each_frame_once_per_pass(
        monkeypatch):
    """A 300-frame video, a store bounded at 40 frames' bytes: propagation from the middle runs
    (forward then backward) encoding every frame at most once per pass — the seed frame once per
    direction — and the store never holds more than its bound. (The stock one-frame cache also
    encodes each frame once per pass; the old 128-frame LRU did too — the bound is what is new:
    bytes, host offload on a GPU, and persisted features for the passes after this one.)"""
    from lcrp_core.backends import sam2_engine

    frames_n, size, bound = 300, (24, 32), 40
    model = sam2_engine.build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", None, image_size=128,
                                   device="cpu")
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (frames_n, *size, 3), dtype=np.uint8)
    video = Video("long", [f"{t:05d}" for t in range(frames_n)], {},
                  frame_loader=lambda t: frames[t])
    frame_bytes = 4 * (32 * 32 * 32 + 64 * 16 * 16 + 256 * 8 * 8)     # at input 128
    store = sam2_engine.FeatureStore(model, max_bytes=bound * frame_bytes)
    # the image encoder (most of the time on a CPU) is replaced by a cheap function of the
    # pixels with its output shapes; memory attention, decoding and the store are sam2's own
    import torch

    shapes = store.expected_shapes()
    monkeypatch.setattr(model, "forward_image", lambda image: {"backbone_fpn": [
        torch.nn.functional.adaptive_avg_pool2d(image, s[-2:]).mean(1, keepdim=True).expand(s)
        .contiguous() for s in shapes]})
    encoded: list[str] = []
    original = store.fpn

    def fpn(frame, key=None):
        before = store.encoded
        feats = original(frame, key)
        if store.encoded > before:
            encoded.append(sam2_engine.frame_key(frame))
        assert len(store) <= bound
        return feats

    monkeypatch.setattr(store, "fpn", fpn)
    seed = np.zeros(size, dtype=bool)
    seed[8:16, 10:20] = True
    with sam2_engine.compute_mode("cpu", "fp32"):
        state = sam2_engine.new_inference_state(model, video, store, all_frame_cache=True)
        (track,) = sam2_engine.track(model, state, frames_n // 2, seed[None])
    assert len(track) == frames_n
    counts = {k: encoded.count(k) for k in set(encoded)}
    seed_key = sam2_engine.frame_key(frames[frames_n // 2])
    assert len(counts) == frames_n                       # every frame encoded...
    assert max(n for k, n in counts.items() if k != seed_key) == 1   # ...once per pass
    assert counts[seed_key] <= 2                          # the seed frame: once per direction
    assert len(encoded) <= frames_n + 1


# -- CLIP weights from a file: the family sets QuickGELU and mean/std ---------------------------

@pytest.mark.models
@pytest.mark.skipif(bool(MISSING), reason=f"needs the [models] extra: {MISSING} missing")
def test_clip_weights_file_needs_its_family(tmp_path, tiny_checkpoint_file):
    import zipfile

    import open_clip
    import torch

    weights = tmp_path / "vit-b-32.pt"
    torch.save(open_clip.create_model("ViT-B-32", pretrained=None).state_dict(), weights)
    base = {"image_size": 256, "sam2_checkpoint": str(tiny_checkpoint_file),
            "clip_model": "ViT-B-32", "clip_pretrained": str(weights), "clip_image_size": 64}
    with pytest.raises(WeightsError, match=r"needs clip_pretrained_family.*openai.*got None"):
        Sam2ClipBackend(base).check_weights()
    with pytest.raises(WeightsError, match="got 'laion-ish'"):
        Sam2ClipBackend({**base, "clip_pretrained_family": "laion-ish"}).check_weights()
    openai = Sam2ClipBackend({**base, "clip_pretrained_family": "openai"})
    clip = openai._clip_encoder()
    act = clip.model.visual.transformer.resblocks[0].mlp.gelu
    assert type(act).__name__ == "QuickGELU"                        # OpenAI weights: QuickGELU
    assert np.allclose(clip.mean, open_clip.OPENAI_DATASET_MEAN)
    laion = Sam2ClipBackend({**base, "clip_pretrained_family": "laion2b_s34b_b79k"})
    assert laion._clip_weights().quick_gelu is False
    # mean/std follow the family (LAION's ViT-L-14 weights use 0.5/0.5), read without a build
    big = Sam2ClipBackend({**base, "clip_model": "ViT-L-14",
                           "clip_pretrained_family": "laion2b_s32b_b82k"})
    assert big._clip_weights().norm == {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}
    # OpenAI's TorchScript archive: refused with the conversion recipe
    jit = tmp_path / "ViT-L-14.pt"
    with zipfile.ZipFile(jit, "w") as z:
        z.writestr("ViT-L-14/code/__torch__.py", "")
        z.writestr("ViT-L-14/constants.pkl", b"")
    with pytest.raises(WeightsError, match=r"TorchScript.*torch.jit.load.*clip_pretrained_family: "
                                           r"openai.*hf download timm/vit_large_patch14_clip_224"):
        Sam2ClipBackend({**base, "clip_model": "ViT-L-14",
                         "clip_pretrained": str(jit)}).check_weights()
    with pytest.raises(WeightsError, match="hf download laion/nope"):
        Sam2ClipBackend({**base, "clip_pretrained": "hf-hub:laion/nope"}).check_weights()
    with pytest.raises(WeightsError, match="open_clip_config.json"):
        Sam2ClipBackend({**base, "clip_pretrained": f"local-dir:{tmp_path}"}).check_weights()


def fake_hub_repo(hub, repo: str, files: dict) -> None:
    """A Hugging Face hub cache entry for ``repo`` holding ``files`` (name → bytes or a path to
    link), as ``hf download`` leaves it."""
    entry = hub / f"models--{repo.replace('/', '--')}"
    snapshot = entry / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    for name, content in files.items():
        if isinstance(content, bytes):
            (snapshot / name).write_bytes(content)
        else:
            (snapshot / name).symlink_to(content)
    (entry / "refs").mkdir()
    (entry / "refs" / "main").write_text("0" * 40)


@pytest.mark.models
@pytest.mark.skipif(bool(MISSING), reason=f"needs the [models] extra: {MISSING} missing")
def test_clip_tags_and_hub_sources_load_from_the_local_cache_without_a_process_setting(
        tmp_path, monkeypatch, tiny_checkpoint_file):
    """open_clip is given local files only: it never calls the hub (its download function
    raises here), and nothing process-wide (environment, huggingface_hub's constants) changes."""
    import json

    import open_clip
    import open_clip.pretrained
    import torch
    from huggingface_hub import constants

    weights = tmp_path / "open_clip_pytorch_model.bin"
    torch.save(open_clip.create_model("ViT-B-32", pretrained=None).state_dict(), weights)
    hub = tmp_path / "hub"
    fake_hub_repo(hub, "timm/vit_base_patch32_clip_224.openai",
                  {"open_clip_pytorch_model.bin": weights})
    config = {"model_cfg": open_clip.get_model_config("ViT-B-32"),
              "preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}}
    fake_hub_repo(hub, "lab/clip-b32", {"open_clip_config.json": json.dumps(config).encode(),
                                        "open_clip_pytorch_model.bin": weights})
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub))

    def no_network(*args, **kwargs):
        raise AssertionError(f"open_clip asked the hub for {args} {kwargs}")

    monkeypatch.setattr(open_clip.pretrained, "hf_hub_download", no_network)
    env, offline = dict(os.environ), constants.HF_HUB_OFFLINE
    base = {"image_size": 256, "sam2_checkpoint": str(tiny_checkpoint_file),
            "clip_model": "ViT-B-32", "clip_image_size": 64}
    tag = Sam2ClipBackend({**base, "clip_pretrained": "openai"})._clip_encoder()
    act = tag.model.visual.transformer.resblocks[0].mlp.gelu
    assert type(act).__name__ == "QuickGELU"                        # the tag's settings hold
    assert np.allclose(tag.mean, open_clip.OPENAI_DATASET_MEAN)
    source = Sam2ClipBackend({**base, "clip_pretrained": "hf-hub:lab/clip-b32"})._clip_encoder()
    assert np.allclose(source.mean, 0.5) and source.encode_text("a dog").shape == (512,)
    saved = torch.load(weights)["token_embedding.weight"]           # loaded, not re-initialised
    assert all(torch.equal(e.model.token_embedding.weight.cpu(), saved) for e in (tag, source))
    assert dict(os.environ) == env and constants.HF_HUB_OFFLINE == offline


@pytest.fixture(scope="module")
def tiny_checkpoint_file(tmp_path_factory, sam_model):
    import torch

    path = tmp_path_factory.mktemp("ckpt-file") / "sam2.1_hiera_tiny.pt"
    torch.save({"model": {k: v.half() for k, v in sam_model.state_dict().items()}}, path)
    return path
