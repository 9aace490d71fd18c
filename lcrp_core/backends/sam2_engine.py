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
from typing import Any

import numpy as np
import psutil
import torch
from sam2 import sam2_video_predictor
from sam2.sam2_image_predictor import SAM2ImagePredictor
from sam2.sam2_video_predictor import SAM2VideoPredictor
from sam2.utils.transforms import SAM2Transforms

from lcrp_core.data.model import Video
from lcrp_core.errors import DataError, WeightsError
from lcrp_core.masks import PackedTrack

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


#: Hiera trunk signature (patch-embedding width, number of blocks) → model_size
HIERA_SIZES: dict[tuple[int, int], str] = {(96, 12): "tiny", (96, 16): "small",
                                           (112, 24): "base_plus", (144, 48): "large"}
#: Keys only SAM2.1 checkpoints hold (object-pointer temporal projection, no-object embedding)
SAM21_KEYS = ("obj_ptr_tpos_proj.weight", "no_obj_embed_spatial")


def inspect_checkpoint(path: Path) -> tuple[str, str]:
    """(release "2.0" | "2.1", model_size) of a SAM2 checkpoint, from its keys and tensor shapes
    alone (memory-mapped, nothing built: well under a second even for the large model).
    WeightsError when the file is not a readable SAM2 checkpoint."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # torch raises many types for a file that is not a checkpoint
        try:  # older torch.save formats cannot be memory-mapped
            blob = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:
            raise WeightsError(f"not a readable SAM2 checkpoint ({type(exc).__name__}: "
                               f"{str(exc).splitlines()[0] if str(exc) else ''})",
                               path=path) from exc
    state = blob.get("model") if isinstance(blob, Mapping) else None
    patch = state.get("image_encoder.trunk.patch_embed.proj.weight") if isinstance(state, Mapping) else None
    if patch is None:
        raise WeightsError("not a SAM2 checkpoint (expected a mapping with a 'model' state dict "
                           "holding image_encoder.trunk.*, as the official sam2/sam2.1 files do)",
                           path=path)
    blocks = {int(k.split(".")[3]) for k in state if k.startswith("image_encoder.trunk.blocks.")}
    signature = (int(patch.shape[0]), max(blocks) + 1 if blocks else 0)
    size = HIERA_SIZES.get(signature)
    if size is None:
        raise WeightsError(f"a SAM2 checkpoint of no known size (Hiera width {signature[0]}, "
                           f"{signature[1]} blocks; known: tiny, small, base_plus, large)", path=path)
    return ("2.1" if all(k in state for k in SAM21_KEYS) else "2.0"), size


def build_sam2(config_name: str, checkpoint: Path | None, *, image_size: int, device: str,
               vos_optimized: bool = False, compile_image_encoder: bool = False) -> SAM2VideoPredictor:
    """The SAM2 video predictor of ``config_name`` (a package-relative Hydra name) at input size
    ``image_size``, built by sam2's public ``build_sam2_video_predictor`` (its post-processing
    settings included) with the weights of ``checkpoint`` or, when None, seeded random weights.

    Hole filling (``fill_hole_area``, 8 in the builder) needs sam2's ``_C`` extension, which the
    PyPI wheel lacks (every frame would warn and skip it): it is set to 0 after building, and
    lcrp_core.masks.remove_small_regions replaces it. A checkpoint that does not load raises
    WeightsError naming the file (callers check its size and release first)."""
    from sam2.build_sam import build_sam2_video_predictor

    overrides = [f"++model.image_size={image_size}"]
    if compile_image_encoder and not vos_optimized:
        overrides.append("++model.compile_image_encoder=true")
    kwargs = dict(ckpt_path=None if checkpoint is None else str(checkpoint), device="cpu",
                  hydra_overrides_extra=overrides, vos_optimized=vos_optimized)
    try:
        if checkpoint is None:
            with seeded():
                model = build_sam2_video_predictor(config_name, **kwargs)
        else:
            model = build_sam2_video_predictor(config_name, **kwargs)
    except RuntimeError as exc:   # from load_state_dict: missing, unexpected or mis-sized keys
        first = " ".join(str(exc).split())[:400] or "see the log above"
        raise WeightsError(f"the checkpoint does not load into {config_name} ({first})",
                           path=checkpoint) from exc
    model.fill_hole_area = 0
    return model.to(device).eval()


def frame_key(frame: np.ndarray) -> str:
    """Content hash of a frame (shape, dtype and pixels): the FeatureStore's key."""
    a = np.ascontiguousarray(frame)
    h = hashlib.sha1(f"{a.shape}{a.dtype}".encode())
    h.update(a.data)
    return h.hexdigest()


def device_memory_bytes(device: str) -> int:
    """Free memory of ``device`` now: CUDA's free bytes, else the host's available bytes."""
    if torch.device(device).type == "cuda":
        return int(torch.cuda.mem_get_info(torch.device(device))[0])
    return host_memory_bytes()


def host_memory_bytes() -> int:
    """Available host memory (psutil's ``virtual_memory().available``; MemAvailable on Linux)."""
    return int(psutil.virtual_memory().available)


def _nbytes(feats: list[torch.Tensor]) -> int:
    return sum(f.numel() * f.element_size() for f in feats)


class FeatureStore:
    """SAM2 backbone features per frame, keyed by frame content, in two tiers bounded in bytes:
    ``max_bytes`` on the model's device and, on a GPU, ``host_bytes`` of host memory that the
    least recently used frames move to when the device tier is full (moved back on use, not
    re-encoded); beyond both, the least recently used frames are dropped. On the CPU the device
    tier is host memory and ``host_bytes`` is ignored.

    ``loader(key)`` / ``saver(key, feats)`` (see :meth:`attach`) let a persistent cache serve a
    miss before the encoder runs and keep what it computes.

    A frame's features are the model's ``backbone_fpn`` after ``forward_image`` (three levels:
    1×C0×S/4×S/4, 1×C1×S/8×S/8, 1×256×S/16×S/16 for input size S; ~16 MB per frame in fp32 at
    S = 1024); the position encodings depend only on the shapes and are computed once and shared.
    Counters: ``encoded`` (encoder passes), ``loaded`` (frames served by the loader),
    ``offloaded`` / ``restored`` (frames moved to the host tier and back), ``probed`` (encoder
    passes on a blank image run only to learn the features' memory layout, see :meth:`restore`).

    Memory layout is part of the features: the encoder leaves some levels channels-last (on the
    CPU at the time of writing fpn1 and fpn2) and under bf16 the decoder's reductions depend on
    it, so restored features must have the strides computed ones have, not just their values.
    """

    def __init__(self, model: SAM2VideoPredictor, *, max_bytes: int, host_bytes: int = 0):
        self.model = model
        self.max_bytes = max_bytes
        on_gpu = torch.device(model.device).type != "cpu"
        self.host_bytes = host_bytes if on_gpu else 0
        self.transforms = SAM2Transforms(resolution=model.image_size, mask_threshold=0.0)
        self.encoded = self.loaded = self.offloaded = self.restored = self.probed = 0
        self._lru: OrderedDict[str, list[torch.Tensor]] = OrderedDict()
        self._host: OrderedDict[str, list[torch.Tensor]] = OrderedDict()
        self._bytes = self._host_used = 0
        self._pos: list[torch.Tensor] | None = None
        self._loader = self._saver = None
        #: each level's strides as this store's encoder last produced them (None: not seen yet)
        self._strides: list[tuple[int, ...]] | None = None

    def attach(self, loader, saver) -> None:
        """``loader(key) -> list[Tensor] | None`` and ``saver(key, feats)``: a persistent tier."""
        self._loader, self._saver = loader, saver

    def clear(self) -> None:
        self._lru.clear()
        self._host.clear()
        self._bytes = self._host_used = 0

    def __len__(self) -> int:
        return len(self._lru) + len(self._host)

    def image_tensor(self, frame: np.ndarray) -> torch.Tensor:
        """3×S×S float32: the frame resized and normalised as SAM2ImagePredictor does."""
        return self.transforms(frame)

    def fpn(self, frame: np.ndarray, key: str | None = None) -> list[torch.Tensor]:
        """The frame's backbone features (computed on a miss); ``key`` = frame_key(frame)."""
        key = key or frame_key(frame)
        feats = self.cached(key)
        if feats is None and self._loader is not None:
            feats = self._loader(key)
            if feats is not None:
                self.loaded += 1
                self.put(key, feats)
        if feats is None:
            image = self.image_tensor(frame)[None].to(self.model.device)
            feats = list(self.model.forward_image(image)["backbone_fpn"])
            self.encoded += 1
            self._strides = [f.stride() for f in feats]
            self.put(key, feats)
            if self._saver is not None:
                self._saver(key, feats)
        return feats

    def cached(self, key: str) -> list[torch.Tensor] | None:
        """Features under ``key`` if held in either tier (no computation), on the device."""
        feats = self._lru.get(key)
        if feats is not None:
            self._lru.move_to_end(key)
            return feats
        feats = self._host.pop(key, None)
        if feats is None:
            return None
        self._host_used -= _nbytes(feats)
        feats = [f.to(self.model.device, non_blocking=True) for f in feats]
        self.restored += 1
        self.put(key, feats)
        return feats

    def put(self, key: str, feats: list[torch.Tensor]) -> None:
        if key in self._lru:
            self._bytes -= _nbytes(self._lru.pop(key))
        self._lru[key] = feats
        self._bytes += _nbytes(feats)
        while self._bytes > self.max_bytes and len(self._lru) > 1:
            old_key, old = self._lru.popitem(last=False)
            size = _nbytes(old)
            self._bytes -= size
            if self.host_bytes >= size:
                self._host[old_key] = [f.to("cpu") for f in old]
                self._host_used += size
                self.offloaded += 1
                while self._host_used > self.host_bytes:
                    self._host_used -= _nbytes(self._host.popitem(last=False)[1])

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
        """``{"fpn0", "fpn1", "fpn2"}`` arrays; bfloat16 tensors are kept bit-exact as uint16.
        The arrays are stored in C order: keep :meth:`layout` with them (entry metadata)."""
        out = {}
        for i, f in enumerate(feats):
            f = f.detach().cpu()
            out[f"fpn{i}"] = (f.view(torch.int16).numpy().view(np.uint16)
                              if f.dtype == torch.bfloat16 else f.numpy())
        return out

    @staticmethod
    def layout(feats: list[torch.Tensor]) -> dict[str, Any]:
        """JSON metadata recording how ``feats`` lie in memory: ``{"device": device type,
        "strides": each level's strides}``, for :meth:`restore`."""
        return {"device": feats[0].device.type, "strides": [list(f.stride()) for f in feats]}

    def live_strides(self) -> list[tuple[int, ...]]:
        """Each level's strides as this store's encoder produces them in the current compute
        mode: from its last encoder pass, or else learned once from a pass on a blank image
        (counted in ``probed``, not ``encoded``)."""
        if self._strides is None:
            s = self.model.image_size
            with torch.no_grad():
                image = torch.zeros(1, 3, s, s, device=self.model.device)
                self._strides = [f.stride() for f in self.model.forward_image(image)["backbone_fpn"]]
            self.probed += 1
        return self._strides

    def restore(self, arrays: Mapping[str, np.ndarray],
                layout: Mapping[str, Any] | None = None) -> list[torch.Tensor]:
        """Tensors on the model's device from ``export``'s arrays (shapes checked), each with the
        dtype, shape and strides (memory format) the encoder gives it, so they compute exactly as
        freshly encoded features do.

        The strides are those of this store's last encoder pass when it ran one, else those in
        ``layout`` (:meth:`layout`'s metadata) when it was recorded on this device type, else
        (entries written without it, or on another device type) learned by :meth:`live_strides`.
        """
        expected = self.expected_shapes()
        names = [f"fpn{i}" for i in range(len(expected))]
        if sorted(arrays) != names:
            raise DataError(f"expected arrays {names}, got {sorted(arrays)}", key="image_features")
        for name, shape in zip(names, expected):
            a = np.asarray(arrays[name])
            if a.shape != shape:
                raise DataError(f"{name} has shape {a.shape}, expected {shape} "
                                f"(image_size={self.model.image_size})", key="image_features")
        device = torch.device(self.model.device)
        strides = self._strides
        if strides is None and layout is not None and layout.get("device") == device.type:
            strides = _recorded_strides(layout.get("strides"), expected)
        if strides is None:
            strides = self.live_strides()
        feats = []
        for name, shape, stride in zip(names, expected, strides):
            a = np.asarray(arrays[name])
            t = (torch.from_numpy(a.view(np.int16).copy()).view(torch.bfloat16)
                 if a.dtype == np.uint16 else torch.from_numpy(np.array(a)))
            out = torch.empty_strided(shape, stride, dtype=t.dtype, device=device)
            feats.append(out.copy_(t))
        return feats


def _recorded_strides(strides: Any, shapes: list[tuple[int, ...]]) -> list[tuple[int, ...]]:
    """``strides`` (from :meth:`FeatureStore.layout`) checked: one dense, non-overlapping layout
    per level of ``shapes`` (anything else would copy into overlapping or out-of-range memory)."""
    ok = isinstance(strides, list) and len(strides) == len(shapes)
    out = []
    for shape, stride in zip(shapes, strides if ok else []):
        ok = (isinstance(stride, list) and len(stride) == len(shape)
              and all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in stride))
        if not ok:
            break
        step = 1      # dense: ordered by stride, each non-trivial dim steps over the faster ones
        for size, st in sorted(zip(shape, stride), key=lambda d: d[1]):
            if size > 1:
                ok = ok and st == step
                step *= size
        if not ok:
            break
        out.append(tuple(stride))
    if not ok:
        raise DataError(f"its layout metadata {strides!r} is not a dense layout of shapes "
                        f"{shapes}", key="image_features")
    return out


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
                        all_frame_cache: bool, offload_state_to_cpu: bool = False) -> dict:
    """The inference state ``SAM2VideoPredictor.init_state`` builds (same keys), for the video's
    in-memory frames; ``all_frame_cache=False`` keeps the stock one-frame feature cache;
    ``offload_state_to_cpu`` keeps the tracking state (memory features, masks) in host memory,
    as ``init_state(offload_state_to_cpu=True)`` does."""
    device = model.device
    height, width = video.size
    return {
        "images": VideoFrames(video, store),
        "num_frames": len(video),
        "offload_video_to_cpu": False,
        "offload_state_to_cpu": offload_state_to_cpu,
        "video_height": height,
        "video_width": width,
        "device": device,
        "storage_device": torch.device("cpu") if offload_state_to_cpu else device,
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


def _bar_free(iterable, **_):
    return iterable


@contextlib.contextmanager
def _no_sam2_bar() -> Iterator[None]:
    """Without sam2's "propagate in video" bar, which it draws on every pass (two per track,
    thousands per extraction, under the extraction's and sweep's own bars).

    No supported switch exists: sam2 1.1's ``propagate_in_video`` takes no progress argument and
    calls its module's ``tqdm(processing_order, ...)``; tqdm reads ``TQDM_DISABLE`` (and every
    ``TQDM_*`` default) once, when tqdm is imported, so setting it around the call does nothing,
    and setting it for the process would silence our own bars and change a process setting; the
    per-frame step below ``propagate_in_video`` is private (``_run_single_frame_inference``), and
    copying the loop would tie us to far more of sam2 than one name. So the bar is dropped the
    narrowest way: sam2's module-level ``tqdm`` is a pass-through only while the passes run and is
    restored afterwards, also on an error (tests check sam2 still has that name). Tracking runs on
    one thread per process (extraction and sweeps use processes), so no other caller sees it."""
    bar = sam2_video_predictor.tqdm
    sam2_video_predictor.tqdm = _bar_free
    try:
        yield
    finally:
        sam2_video_predictor.tqdm = bar


def track(model: SAM2VideoPredictor, state: dict, t: int, seeds: np.ndarray,
          clean=None) -> list[PackedTrack]:
    """Seeds S×H×W bool on frame t → S PackedTracks (mask logits > 0 at video size), each frame
    passed through ``clean`` (H×W → H×W bool) if given and packed as it arrives: host memory
    holds one S×H×W frame, not S×T×H×W.

    Each seed is its own ``obj_id``; one forward pass t → T−1 and one backward pass t → 0
    (``reverse=True``) propagate all of them."""
    for obj_id, seed in enumerate(seeds):
        model.add_new_mask(state, frame_idx=t, obj_id=obj_id, mask=torch.from_numpy(seed))
    out = [PackedTrack.empty(state["num_frames"], seeds.shape[1:]) for _ in seeds]
    with _no_sam2_bar():
        for reverse in (False, True):
            for f, _, logits in model.propagate_in_video(state, start_frame_idx=t, reverse=reverse):
                masks = (logits[:, 0] > 0.0).cpu().numpy()
                for s, mask in enumerate(masks):
                    out[s].set_frame(f, clean(mask) if clean is not None else mask)
    return out
