"""The SAM2 side of the ``sam2-clip`` backend (imports torch and sam2; loaded on first use).

One SAM2 model serves proposals (SAM2AutomaticMaskGenerator), refinement (SAM2ImagePredictor)
and propagation (SAM2VideoPredictor). Backbone features are computed once per frame *content*
and kept in a :class:`FeatureStore` (an LRU keyed by a hash of the frame's pixels) that all three
share:

- the image predictor's ``set_image`` derives its ``_features`` from the stored features exactly
  as the stock ``set_image`` does after its encoder pass (bit-identical predictions);
- propagation replaces the inference state's one-frame ``cached_features`` with a view of the
  store, so every frame is encoded once per video instead of once per pass.

Shapes: frames H×W×3 uint8 RGB; masks H×W bool; seeds S×H×W bool; tracks S×T×H×W bool.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from pathlib import Path
from unittest import mock

import numpy as np
import torch
from sam2 import sam2_video_predictor
from sam2.sam2_image_predictor import SAM2ImagePredictor
from sam2.sam2_video_predictor import SAM2VideoPredictor
from sam2.utils.transforms import SAM2Transforms

from lcrp_core.data.model import Video
from lcrp_core.errors import DataError, WeightsError

#: What the stock ``build_sam2_video_predictor`` sets on top of the YAML config, except
#: ``fill_hole_area`` (8 there): hole filling needs sam2's ``_C`` extension, which the PyPI wheel
#: lacks (every frame would warn and skip it); lcrp_core.masks.remove_small_regions replaces it.
_VIDEO_OVERRIDES = (
    "++model._target_=sam2.sam2_video_predictor.SAM2VideoPredictor",
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_via_stability=true",
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_delta=0.05",
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_thresh=0.98",
    "++model.binarize_mask_from_pts_for_mem_enc=true",
    "++model.fill_hole_area=0",
)

#: Seed of the random weights built with ``random_init`` (the same config gives the same model).
RANDOM_SEED = 0


@contextlib.contextmanager
def compute_mode(device: str, dtype: str, *, tf32: bool = False) -> Iterator[None]:
    """SAM2's compute mode: inference mode, bf16 autocast on ``device`` when ``dtype == "bf16"``,
    and on CUDA TF32 matmuls and convolutions when ``tf32`` (as SAM2's README runs it); the
    process's TF32 flags are restored after, so CLIP (run outside) stays in full fp32."""
    kind = torch.device(device).type
    with torch.inference_mode(), torch.autocast(kind, dtype=torch.bfloat16,
                                                enabled=dtype == "bf16"), _tf32(kind == "cuda" and tf32):
        yield


@contextlib.contextmanager
def fp32_mode(device: str) -> Iterator[None]:
    """CLIP's compute mode: inference mode in full fp32 (no autocast, no TF32): candidate cosine
    gaps are often below 0.01, and bf16 reorders them."""
    with torch.inference_mode(), torch.autocast(torch.device(device).type, enabled=False), \
            _tf32(False):
        yield


@contextlib.contextmanager
def _tf32(enabled: bool) -> Iterator[None]:
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


@contextlib.contextmanager
def seeded(seed: int = RANDOM_SEED) -> Iterator[None]:
    """Torch's CPU RNG seeded inside (random weights are the same for the same config); the
    caller's RNG state is restored after."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def build_sam2(config_name: str, checkpoint: Path | None, *, image_size: int, device: str,
               size_name: str, checkpoint_hint: str) -> SAM2VideoPredictor:
    """The SAM2 video predictor of ``config_name`` (a package-relative Hydra name) at input size
    ``image_size``, with the weights of ``checkpoint`` or, when None, seeded random weights.

    A checkpoint that is unreadable or does not match the config raises WeightsError naming the
    file and ``checkpoint_hint`` (how to get the right one)."""
    import sam2  # noqa: F401  (initialises Hydra's config module)
    from hydra import compose
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg = compose(config_name=config_name,
                  overrides=[*_VIDEO_OVERRIDES, f"++model.image_size={image_size}"])
    OmegaConf.resolve(cfg)
    if checkpoint is None:
        with seeded():
            model = instantiate(cfg.model, _recursive_=True)
    else:
        model = instantiate(cfg.model, _recursive_=True)
        _load_checkpoint(model, checkpoint, size_name=size_name, hint=checkpoint_hint)
    return model.to(device).eval()


def _load_checkpoint(model: torch.nn.Module, path: Path, *, size_name: str, hint: str) -> None:
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a file that is not a checkpoint
        raise WeightsError(f"not a readable SAM2 checkpoint ({type(exc).__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else ''}); {hint}",
                           path=path) from exc
    if not isinstance(blob, Mapping) or not isinstance(blob.get("model"), Mapping):
        raise WeightsError(f"not a SAM2 checkpoint (expected a mapping with a 'model' state "
                           f"dict); {hint}", path=path)
    state, own = blob["model"], model.state_dict()
    problems = {
        "Missing key(s)": [k for k in own if k not in state],
        "Unexpected key(s)": [k for k in state if k not in own],
        "Size mismatch": [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
                          if k in state and tuple(state[k].shape) != tuple(v.shape)],
    }
    if any(problems.values()):
        found = "; ".join(f"{what} ({len(keys)}): {', '.join(keys[:3])}"
                          + (", ..." if len(keys) > 3 else "")
                          for what, keys in problems.items() if keys)
        raise WeightsError(f"does not match model_size={size_name} ({found}); {hint}", path=path)
    model.load_state_dict(state)


def frame_key(frame: np.ndarray) -> str:
    """Content hash of a frame (shape, dtype and pixels): the FeatureStore's key."""
    a = np.ascontiguousarray(frame)
    h = hashlib.sha1(f"{a.shape}{a.dtype}".encode())
    h.update(a.data)
    return h.hexdigest()


class FeatureStore:
    """SAM2 backbone features per frame, keyed by frame content, least recently used dropped
    beyond ``capacity`` frames.

    A frame's features are the model's ``backbone_fpn`` after ``forward_image`` (three levels:
    1×C0×S/4×S/4, 1×C1×S/8×S/8, 1×256×S/16×S/16 for input size S; ~16 MB per frame in fp32);
    the position encodings depend only on the shapes and are computed once and shared.
    """

    def __init__(self, model: SAM2VideoPredictor, *, capacity: int):
        self.model = model
        self.capacity = capacity
        self.transforms = SAM2Transforms(resolution=model.image_size, mask_threshold=0.0)
        self.encoded = 0  # encoder passes run (frames whose features were not in the store)
        self._lru: OrderedDict[str, list[torch.Tensor]] = OrderedDict()
        self._pos: list[torch.Tensor] | None = None

    def clear(self) -> None:
        self._lru.clear()

    def image_tensor(self, frame: np.ndarray) -> torch.Tensor:
        """3×S×S float32: the frame resized and normalised as SAM2ImagePredictor does."""
        return self.transforms(frame)

    def fpn(self, frame: np.ndarray, key: str | None = None) -> list[torch.Tensor]:
        """The frame's backbone features (computed on a miss); ``key`` = frame_key(frame)."""
        key = key or frame_key(frame)
        feats = self._lru.get(key)
        if feats is None:
            image = self.image_tensor(frame)[None].to(self.model.device)
            feats = list(self.model.forward_image(image)["backbone_fpn"])
            self.encoded += 1
            self.put(key, feats)
        else:
            self._lru.move_to_end(key)
        return feats

    def cached(self, key: str) -> list[torch.Tensor] | None:
        """Features under ``key`` if present (no computation)."""
        feats = self._lru.get(key)
        if feats is not None:
            self._lru.move_to_end(key)
        return feats

    def put(self, key: str, feats: list[torch.Tensor]) -> None:
        self._lru[key] = feats
        self._lru.move_to_end(key)
        while len(self._lru) > self.capacity:
            self._lru.popitem(last=False)

    def backbone_out(self, feats: list[torch.Tensor]) -> dict[str, list[torch.Tensor]]:
        """The ``backbone_out`` mapping sam2 expects (``backbone_fpn`` and ``vision_pos_enc``)."""
        if self._pos is None:
            # as the FPN neck computes them: from each level's shape, cast to its dtype
            encode = self.model.image_encoder.neck.position_encoding
            self._pos = [encode(f).to(f.dtype) for f in feats]
        return {"backbone_fpn": list(feats), "vision_pos_enc": list(self._pos)}

    # -- export / import (the feature cache's on-disk store) ------------------------------------
    def expected_shapes(self) -> list[tuple[int, ...]]:
        s = self.model.image_size
        decoder = self.model.sam_mask_decoder
        channels = ([decoder.conv_s0.out_channels, decoder.conv_s1.out_channels]
                    if self.model.use_high_res_features_in_sam else [self.model.hidden_dim] * 2)
        return [(1, channels[0], s // 4, s // 4), (1, channels[1], s // 8, s // 8),
                (1, self.model.hidden_dim, s // 16, s // 16)]

    @staticmethod
    def export(feats: list[torch.Tensor]) -> dict[str, np.ndarray]:
        """``{"fpn0", "fpn1", "fpn2"}`` arrays; bfloat16 tensors are kept bit-exact as uint16."""
        out = {}
        for i, f in enumerate(feats):
            f = f.detach().cpu()
            out[f"fpn{i}"] = (f.view(torch.int16).numpy().view(np.uint16)
                              if f.dtype == torch.bfloat16 else f.numpy())
        return out

    def restore(self, arrays: Mapping[str, np.ndarray]) -> list[torch.Tensor]:
        """Tensors on the model's device from ``export``'s arrays (shapes checked)."""
        expected = self.expected_shapes()
        names = [f"fpn{i}" for i in range(len(expected))]
        if sorted(arrays) != names:
            raise DataError(f"expected arrays {names}, got {sorted(arrays)}", key="image_features")
        feats = []
        for name, shape in zip(names, expected):
            a = np.asarray(arrays[name])
            if a.shape != shape:
                raise DataError(f"{name} has shape {a.shape}, expected {shape} "
                                f"(image_size={self.model.image_size})", key="image_features")
            t = (torch.from_numpy(a.view(np.int16).copy()).view(torch.bfloat16)
                 if a.dtype == np.uint16 else torch.from_numpy(np.array(a)))
            feats.append(t.to(self.model.device))
        return feats


class StoreImagePredictor(SAM2ImagePredictor):
    """SAM2ImagePredictor whose ``set_image`` takes the frame's features from a FeatureStore.

    After the store returns the backbone features, ``_features`` and ``_orig_hw`` are set exactly
    as the stock ``set_image`` sets them after its own encoder pass, so predictions are
    bit-identical and each frame is encoded at most once (for proposals, every refinement round
    and propagation alike). Works at any model input size (the stock class assumes 1024).
    """

    def __init__(self, model: SAM2VideoPredictor, store: FeatureStore):
        super().__init__(model)
        s = model.image_size
        self._bb_feat_sizes = [(s // 4, s // 4), (s // 8, s // 8), (s // 16, s // 16)]
        self.store = store

    @torch.no_grad()
    def set_image(self, image: np.ndarray) -> None:
        """``image``: H×W×3 uint8 RGB."""
        self.reset_predictor()
        backbone_out = self.store.backbone_out(self.store.fpn(image))
        self._orig_hw = [tuple(image.shape[:2])]
        _, vision_feats, _, _ = self.model._prepare_backbone_features(backbone_out)
        if self.model.directly_add_no_mem_embed:
            vision_feats[-1] = vision_feats[-1] + self.model.no_mem_embed
        feats = [feat.permute(1, 2, 0).view(1, -1, *size)
                 for feat, size in zip(vision_feats[::-1], self._bb_feat_sizes[::-1])][::-1]
        self._features = {"image_embed": feats[-1], "high_res_feats": feats[:-1]}
        self._is_image_set = True


class VideoFrames:
    """The inference state's ``images``: frame t as a 3×S×S float32 tensor, built on access from
    the video's in-memory frames (no JPEG round trip; nothing held)."""

    def __init__(self, video: Video, store: FeatureStore):
        self.video = video
        self.store = store

    def __len__(self) -> int:
        return len(self.video)

    def __getitem__(self, t: int) -> torch.Tensor:
        return self.store.image_tensor(self.video.frame(t))


class AllFrameFeatures:
    """Stands in for the inference state's ``cached_features`` dict, which the stock predictor
    uses only through ``get(frame_idx)`` and replaces by a one-frame dict on every miss.

    ``get`` never misses: it returns frame t's features from the FeatureStore (encoding the frame
    once), so no pass re-encodes a frame. The image slot of the stock ``(image, backbone_out)``
    pair is never read by sam2 (both callers discard it): a zero-stride 1×3×S×S placeholder.
    """

    def __init__(self, video: Video, store: FeatureStore):
        self.video = video
        self.store = store
        s = store.model.image_size
        self._image = torch.zeros(1, 3, 1, 1, device=store.model.device).expand(1, 3, s, s)
        self._keys: dict[int, str] = {}

    def get(self, frame_idx: int, default: object = None) -> tuple[torch.Tensor, dict]:
        key = self._keys.get(frame_idx)
        feats = self.store.cached(key) if key is not None else None
        if feats is None:
            frame = self.video.frame(frame_idx)
            key = self._keys[frame_idx] = frame_key(frame)
            feats = self.store.fpn(frame, key)
        return self._image, self.store.backbone_out(feats)


def new_inference_state(model: SAM2VideoPredictor, video: Video, store: FeatureStore, *,
                        all_frame_cache: bool) -> dict:
    """The inference state ``SAM2VideoPredictor.init_state`` builds (same keys), for the video's
    in-memory frames; ``all_frame_cache=False`` keeps the stock one-frame feature cache."""
    device = model.device
    height, width = video.size
    return {
        "images": VideoFrames(video, store),
        "num_frames": len(video),
        "offload_video_to_cpu": False,
        "offload_state_to_cpu": False,
        "video_height": height,
        "video_width": width,
        "device": device,
        "storage_device": device,
        "point_inputs_per_obj": {},
        "mask_inputs_per_obj": {},
        "cached_features": AllFrameFeatures(video, store) if all_frame_cache else {},
        "constants": {},
        "obj_id_to_idx": OrderedDict(),
        "obj_idx_to_id": OrderedDict(),
        "obj_ids": [],
        "output_dict_per_obj": {},
        "temp_output_dict_per_obj": {},
        "frames_tracked_per_obj": {},
    }


def track(model: SAM2VideoPredictor, state: dict, t: int, seeds: np.ndarray) -> np.ndarray:
    """Seeds S×H×W bool on frame t → tracks S×T×H×W bool (mask logits > 0 at video size).

    Each seed is its own ``obj_id``; one forward pass t → T−1 and one backward pass t → 0
    (``reverse=True``) propagate all of them."""
    for obj_id, seed in enumerate(seeds):
        model.add_new_mask(state, frame_idx=t, obj_id=obj_id, mask=torch.from_numpy(seed))
    out = np.zeros((len(seeds), state["num_frames"], *seeds.shape[1:]), dtype=bool)
    # sam2 draws its own "propagate in video" bar on every pass; extraction and sweeps draw theirs
    with mock.patch.object(sam2_video_predictor, "tqdm", lambda frames, **_: frames):
        for reverse in (False, True):
            for f, _, logits in model.propagate_in_video(state, start_frame_idx=t, reverse=reverse):
                out[:, f] = (logits[:, 0] > 0.0).cpu().numpy()
    return out
