"""The real backend, ``sam2-clip``: SAM2 (sam2 1.1, the sam2.1 hiera configs) for proposals,
refinement and propagation, open_clip for region–text scores.

- ``propose``: SAM2AutomaticMaskGenerator; quality q = predicted_iou × stability_score; region
  features = open_clip embeddings of a masked crop and of the frame blurred outside the mask,
  averaged and L2-normalised (see clip_engine).
- ``encode_text`` / ``score``: the expression's open_clip embedding; cosine similarity.
- ``refine``: SAM2ImagePredictor prompted with the mask's box, low-res logits made from the mask
  and interior points (``mask_prompts``), ``multimask_output=False``.
- ``propagate``: SAM2VideoPredictor on the video's in-memory frames, every seed its own
  ``obj_id``, forward t → T−1 and backward t → 0, with every frame's backbone features cached.

One SAM2 model serves the three; a frame is encoded once (features kept in an LRU keyed by the
frame's content, shared by proposals, refinement and propagation; with
``persist_frame_features``, ``attach_frame_cache`` lets the feature cache persist them). Models
are built on first use.

Weights never download: the SAM2 checkpoint is a local file (config key ``sam2_checkpoint`` or
env ``LCRP_SAM2_CHECKPOINT``); the CLIP weights are an open_clip tag found in the local Hugging
Face cache, or a file (``clip_pretrained`` or env ``LCRP_CLIP_PRETRAINED``). Missing or
mismatched weights raise one WeightsError saying which file and how to get it.
``random_init=True`` builds the same architectures with seeded random weights (tests, timings).

sam2's ``_C`` extension is missing from the PyPI wheel, so its hole filling is off and
``min_region_area`` (lcrp_core.masks.remove_small_regions) cleans every refined and propagated mask.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar

import cv2
import numpy as np

from lcrp_core.backends.base import Backend, BackendConfig, Proposals
from lcrp_core.backends.clip_engine import l2_normalize
from lcrp_core.config import Number, at_least, expect
from lcrp_core.data.model import Video
from lcrp_core.errors import ConfigError, DataError, WeightsError
from lcrp_core.hashing import config_hash
from lcrp_core.masks import bbox_xyxy, remove_small_regions, stack_or_empty

log = logging.getLogger("lcrp.backends.sam2_clip")

#: model_size → (sam2's package-relative Hydra config, the official checkpoint's file name)
SAM2_MODELS: dict[str, tuple[str, str]] = {
    "tiny": ("configs/sam2.1/sam2.1_hiera_t.yaml", "sam2.1_hiera_tiny.pt"),
    "small": ("configs/sam2.1/sam2.1_hiera_s.yaml", "sam2.1_hiera_small.pt"),
    "base_plus": ("configs/sam2.1/sam2.1_hiera_b+.yaml", "sam2.1_hiera_base_plus.pt"),
    "large": ("configs/sam2.1/sam2.1_hiera_l.yaml", "sam2.1_hiera_large.pt"),
}
#: SAM2.0 checkpoints (``sam2_hiera_*.pt``, July 2024) run with their own configs
SAM20_CONFIGS: dict[str, str] = {
    "tiny": "configs/sam2/sam2_hiera_t.yaml", "small": "configs/sam2/sam2_hiera_s.yaml",
    "base_plus": "configs/sam2/sam2_hiera_b+.yaml", "large": "configs/sam2/sam2_hiera_l.yaml",
}
SAM2_DOWNLOAD_URL = "https://dl.fbaipublicfiles.com/segment_anything_2/092824/"
ENV_SAM2_CHECKPOINT = "LCRP_SAM2_CHECKPOINT"
ENV_CLIP_PRETRAINED = "LCRP_CLIP_PRETRAINED"
DEFAULT_CLIP_PRETRAINED = "openai"
#: the value of both weight keys when ``random_init`` (so cache keys never mix random and real)
RANDOM_WEIGHTS = "<random-init>"
DTYPES = ("fp32", "bf16")
#: scale of sam2's binary-mask-to-logits mapping (mask·20 − 10, SAM2Base._use_mask_as_output)
MASK_LOGIT = 10.0


def mask_prompts(mask: np.ndarray, *, lowres: int,
                 num_points: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SAM prompts from a non-empty H×W bool mask → (box, logits, points).

    - box (4,) float32 ``x0, y0, x1, y1``: the mask's extent in continuous pixel coordinates
      (pixel i spans [i, i+1), so x1 is the exclusive end of bbox_xyxy);
    - logits 1×L×L float32 (L = ``lowres``, the prompt encoder's mask size, 256 for a 1024 input):
      ``20·p − 10`` with p the fraction of each low-res cell the mask covers (the frame squashed
      to L×L as SAM2 squashes it), sam2's own scale for a binary mask (±10);
    - points P×2 float32 (x, y) at pixel centres, P ≤ ``num_points``: greedy maxima of the
      Euclidean distance transform, each clearing the disk of its own radius, so the points lie
      deep inside the mask and apart from each other.
    """
    h, w = mask.shape
    box = bbox_xyxy(mask)
    if box is None:
        raise ValueError("mask_prompts needs a non-empty mask")
    cover = cv2.resize(mask.astype(np.float32), (lowres, lowres), interpolation=cv2.INTER_AREA)
    logits = (2.0 * MASK_LOGIT * cover - MASK_LOGIT)[None].astype(np.float32)
    dist = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    yy, xx = np.ogrid[:h, :w]
    points = []
    for _ in range(num_points):
        idx = int(np.argmax(dist))
        radius = float(dist.flat[idx])
        if radius <= 0:
            break
        y, x = divmod(idx, w)
        points.append((x + 0.5, y + 0.5))
        dist[(yy - y) ** 2 + (xx - x) ** 2 <= radius * radius] = 0
    return (np.asarray(box, dtype=np.float32), logits,
            np.asarray(points, dtype=np.float32).reshape(-1, 2))


def cosine_scores(features: np.ndarray, text_feature: np.ndarray) -> np.ndarray:
    """(N,) float32 cosine similarities of N×D region features with a (D,) text feature."""
    feats = np.asarray(features, dtype=np.float32)
    text = np.asarray(text_feature, dtype=np.float32).reshape(-1)
    if feats.ndim != 2 or (len(feats) and feats.shape[1] != text.shape[0]):
        raise DataError(f"region features of shape {feats.shape} cannot be scored against a text "
                        f"feature of size {text.shape[0]} (features from another CLIP model?)",
                        key="sam2-clip.score")
    if not len(feats):
        return np.zeros(0, dtype=np.float32)
    return (l2_normalize(feats) @ l2_normalize(text)).astype(np.float32)


def _engine():
    """The torch-side modules, or a ConfigError when the [models] extra is missing."""
    try:
        from lcrp_core.backends import clip_engine, sam2_engine
    except ImportError as exc:
        raise ConfigError(f"the sam2-clip backend needs torch, sam2 and open_clip_torch "
                          f"(pip install 'lcrp-sweeps[models]'): {exc}", key="backend") from exc
    return sam2_engine, clip_engine


@dataclass
class _Sam2:
    model: Any        # SAM2VideoPredictor (also the image predictor's and generator's model)
    store: Any        # sam2_engine.FeatureStore
    predictor: Any    # sam2_engine.StoreImagePredictor
    generator: Any    # SAM2AutomaticMaskGenerator using ``predictor``


@dataclass(frozen=True)
class ClipSource:
    """What ``open_clip.create_model`` gets, always local so that it never asks the Hugging Face
    hub for anything (it has no offline switch of its own): ``model`` (a model name, or a
    ``local-dir:`` folder carrying its own config: an ``hf-hub:`` source becomes its folder in the
    local hub cache), ``pretrained`` (a local weights file: a tag becomes the cached file
    open_clip would download; None with a schema), ``quick_gelu`` to force, ``norm`` (mean/std of
    the weights' family or tag), and ``local``: the local file or folder the weights come from
    (for messages and logs)."""

    model: str
    pretrained: str | None
    quick_gelu: bool
    norm: Mapping[str, tuple[float, ...]] | None
    local: str


_PATH = "null or a non-empty string (a path, or for clip_pretrained an open_clip tag)"
_MB = Annotated[Number, expect("null or a number of MB >= 0", lambda v: v >= 0)] | None
_FRACTION = Annotated[Number, expect("a number in [0, 1]", lambda v: 0 <= v <= 1)]


class Sam2ClipConfig(BackendConfig):
    """The sam2-clip backend's config keys, their checks and defaults."""

    #: tiny | small | base_plus | large (sam2.1 or sam2.0 hiera)
    model_size: Annotated[str, expect(f"one of {sorted(SAM2_MODELS)}",
                                     lambda v: v in SAM2_MODELS)] = "tiny"
    #: path; None: $LCRP_SAM2_CHECKPOINT
    sam2_checkpoint: Annotated[str, expect(_PATH, bool)] | None = None
    #: SAM2 input size (frames are squashed to it)
    image_size: Annotated[int, expect("an integer multiple of 32, at least 128",
                                     lambda v: v >= 128 and v % 32 == 0)] = 1024
    #: SAM2's: fp32 | bf16 (autocast); CLIP is always fp32
    dtype: Annotated[str, expect(f"one of {list(DTYPES)}", lambda v: v in DTYPES)] = "fp32"
    #: SAM2 matmuls/convolutions in TF32 on CUDA
    tf32: bool = True
    #: px: smaller components/holes removed from outputs
    min_region_area: Annotated[int, at_least(0)] = 8
    #: interior points added to a refinement prompt
    refine_points: Annotated[int, at_least(0)] = 3
    #: generator grid
    points_per_side: Annotated[int, at_least(1)] = 32
    #: generator batch; None: 64 on a GPU, 16 on the CPU
    points_per_batch: Annotated[int, expect("null or an integer >= 1", lambda v: v >= 1)] | None = None
    pred_iou_thresh: _FRACTION = 0.8
    stability_score_thresh: _FRACTION = 0.95
    clip_model: Annotated[str, expect("an open_clip model name", bool)] = "ViT-B-32"
    #: tag, file, hf-hub:org/repo or local-dir:/path; None: $LCRP_CLIP_PRETRAINED or "openai"
    clip_pretrained: Annotated[str, expect(_PATH, bool)] | None = None
    #: for a weights file: the open_clip tag it was released as (openai, laion2b_s32b_b82k, ...):
    #: QuickGELU, mean/std
    clip_pretrained_family: Annotated[str, expect(
        "null or an open_clip tag (openai, laion2b_s32b_b82k, ...)", bool)] | None = None
    #: None: the model's own input size
    clip_image_size: Annotated[int, expect("null or an integer >= 16", lambda v: v >= 16)] | None = None
    #: px of the CLIP input: blur outside the mask
    clip_blur_sigma: Annotated[Number, expect("a number >= 0", lambda v: v >= 0)] = 8.0
    # run-time settings (they do not change results, so they are not part of cache keys)
    #: SAM2 frame features held on the device; None: 40 % of its free memory when the models
    #: are built
    feature_store_mb: _MB = None
    #: on a GPU, host memory frames move to when the device store is full; None: 25 % of
    #: available host memory
    feature_host_mb: _MB = None
    #: keep SAM2 frame features in the feature cache too
    persist_frame_features: bool = False
    #: SAM2 tracking state in host memory (24 GB cards)
    offload_state_to_cpu: bool = False
    #: sam2's SAM2VideoPredictorVOS (torch.compile, GPU)
    vos_optimized: bool = False
    #: torch.compile SAM2's image encoder
    compile_image_encoder: bool = False


class Sam2ClipBackend(Backend):
    """SAM2 + open_clip. SAM2 frame features (~16 MB each at image_size 1024 in fp32) are held
    in a FeatureStore bounded in bytes (``feature_store_mb``, ``feature_host_mb``)."""

    name: ClassVar[str] = "sam2-clip"
    Config: ClassVar[type[BackendConfig]] = Sam2ClipConfig
    proposal_only_keys: ClassVar[tuple[str, ...]] = (
        "points_per_side", "pred_iou_thresh", "stability_score_thresh",
        "clip_model", "clip_pretrained", "clip_pretrained_family", "clip_image_size",
        "clip_blur_sigma",
    )
    #: keys that change speed or memory, never results: left out of every cache key
    runtime_keys: ClassVar[tuple[str, ...]] = (
        "points_per_batch", "feature_store_mb", "feature_host_mb", "persist_frame_features",
        "offload_state_to_cpu", "vos_optimized", "compile_image_encoder",
    )

    def __init__(self, config: Mapping[str, Any] | None = None, *, device: str = "cpu",
                 random_init: bool = False):
        super().__init__(config, device=device, random_init=random_init)
        self._source = {"sam2_checkpoint": "the config key sam2_checkpoint",
                        "clip_pretrained": "the config key clip_pretrained"}
        if random_init:
            self.config["sam2_checkpoint"] = self.config["clip_pretrained"] = RANDOM_WEIGHTS
        else:
            for key, env in (("sam2_checkpoint", ENV_SAM2_CHECKPOINT),
                             ("clip_pretrained", ENV_CLIP_PRETRAINED)):
                if self.config[key] is None and os.environ.get(env):
                    self.config[key] = os.environ[env]
                    self._source[key] = f"the env var {env}"
            if self.config["clip_pretrained"] is None:
                self.config["clip_pretrained"] = DEFAULT_CLIP_PRETRAINED
                self._source["clip_pretrained"] = "the default tag"
        self._release = "2.1"     # of the checkpoint, once check_weights has read it
        self._frame_cache = None  # (CacheStore, key prefix) for persist_frame_features
        self._checked = False
        self._warned = False
        self._sam: _Sam2 | None = None
        self._clip = None

    # -- identities: weight files by name and size, so cache keys do not depend on paths --------
    def _identity(self) -> dict[str, Any]:
        out = {k: v for k, v in self.config.items() if k not in self.runtime_keys}
        for key in ("sam2_checkpoint", "clip_pretrained"):
            path = Path(out[key]).expanduser() if isinstance(out[key], str) else None
            if path is not None and out[key] != RANDOM_WEIGHTS and path.is_file():
                out[key] = f"{path.name}:{path.stat().st_size}"
        return out

    @property
    def config_hash(self) -> str:
        return config_hash(self._identity())

    @property
    def propagator_config(self) -> dict[str, Any]:
        return {k: v for k, v in self._identity().items() if k not in self.proposal_only_keys}

    # -- weights ---------------------------------------------------------------------------------
    def check_weights(self) -> None:
        """Check, without building a model, that the SAM2 checkpoint is a readable file of the
        configured ``model_size`` (its keys and shapes are read, memory-mapped: well under a
        second) and that the CLIP weights are a local file of a known family or in the local
        Hugging Face cache; raise WeightsError saying which file and what to do otherwise."""
        if self.random_init or self._checked:
            return
        path = self._sam2_checkpoint()
        sam2_engine, _ = _engine()
        release, size = sam2_engine.inspect_checkpoint(path)
        if size != self.config["model_size"]:
            raise WeightsError(f"is a SAM{release} model_size: {size} checkpoint, but the backend "
                               f"config says model_size: {self.config['model_size']}; set "
                               f"model_size: {size} (or point sam2_checkpoint at a "
                               f"{self.config['model_size']} checkpoint)", path=path)
        self._release = release
        self._clip_weights()
        self._checked = True

    def _sam2_hint(self) -> str:
        size = self.config["model_size"]
        return (f"use the model_size={size} checkpoint: download "
                f"{SAM2_DOWNLOAD_URL}{SAM2_MODELS[size][1]} and set the backend config key "
                f"sam2_checkpoint or the env var {ENV_SAM2_CHECKPOINT} to its path")

    def _sam2_checkpoint(self) -> Path:
        value = self.config["sam2_checkpoint"]
        if value is None:
            raise WeightsError(f"no SAM2 checkpoint given; {self._sam2_hint()}",
                               key=f"{self.name}.sam2_checkpoint")
        path = Path(value).expanduser()
        if not path.is_file():
            raise WeightsError(f"SAM2 checkpoint not found (given by "
                               f"{self._source['sam2_checkpoint']}); {self._sam2_hint()}",
                               path=path)
        return path

    def _sam2_config(self) -> str:
        size = self.config["model_size"]
        return SAM20_CONFIGS[size] if self._release == "2.0" else SAM2_MODELS[size][0]

    def _clip_weights(self) -> ClipSource:
        """Where open_clip takes the CLIP weights from, and the settings they need."""
        name, value = self.config["clip_model"], self.config["clip_pretrained"]
        key = f"{self.name}.clip_pretrained"
        open_clip = _open_clip()
        if value.startswith(("hf-hub:", "local-dir:")):
            folder = _schema_source(value, key=key)
            return ClipSource(f"local-dir:{folder}", None, False, None, folder)
        model_cfg = open_clip.get_model_config(name)
        if model_cfg is None:
            raise ConfigError(f"unknown open_clip model {name!r} (e.g. ViT-B-32, ViT-B-16, "
                              f"ViT-L-14; see open_clip.list_models())",
                              key=f"{self.name}.clip_model")
        tags = open_clip.list_pretrained_tags_by_model(name)
        tag_cfg = open_clip.get_pretrained_cfg(name, value)
        if tag_cfg:
            local = _cached_clip_file(name, value, tag_cfg, key=key)
            # OpenAI weights were trained with QuickGELU, which plain model configs lack
            quick_gelu = bool(tag_cfg.get("quick_gelu")) and not model_cfg.get("quick_gelu")
            # loaded as a file, the tag's mean/std are not applied by open_clip: pass them
            norm = {k: tuple(tag_cfg[k]) for k in ("mean", "std") if k in tag_cfg}
            return ClipSource(name, local, quick_gelu, norm or None, local)
        path = Path(value).expanduser()
        if not path.is_file():
            if os.sep in value or path.suffix in (".pt", ".pth", ".bin", ".safetensors"):
                raise WeightsError(f"CLIP weights file not found (given by "
                                   f"{self._source['clip_pretrained']})", path=path)
            raise WeightsError(f"{value!r} (from {self._source['clip_pretrained']}) is neither an "
                               f"open_clip tag of {name} (known: {', '.join(tags)}), a file, "
                               f"hf-hub:ORG/REPO nor local-dir:PATH", key=key)
        if _is_torchscript(path):
            raise WeightsError(
                f"is OpenAI's TorchScript archive, which open_clip does not load from a file; "
                f"convert it once to a state dict: python -c \"import torch; sd = "
                f"torch.jit.load('{path}', map_location='cpu').state_dict(); "
                f"[sd.pop(k, None) for k in ('input_resolution', 'context_length', 'vocab_size')]; "
                f"torch.save(sd, '{path.with_name(path.stem + '-state-dict.pt')}')\" and set "
                f"clip_pretrained to the new file with clip_pretrained_family: openai "
                f"(or use clip_pretrained: openai with the weights in the Hugging Face cache: "
                f"hf download {_hub_repo(name, 'openai') or 'ORG/REPO'})", path=path)
        family = self.config["clip_pretrained_family"]
        family_cfg = open_clip.get_pretrained_cfg(name, family) if family else None
        if not family_cfg:
            raise WeightsError(
                f"a CLIP weights file needs clip_pretrained_family: the open_clip tag of {name} "
                f"it was released as (one of {', '.join(tags)}), which sets QuickGELU and the "
                f"mean/std; got {family!r}", key=f"{self.name}.clip_pretrained_family")
        quick_gelu = bool(family_cfg.get("quick_gelu")) and not model_cfg.get("quick_gelu")
        norm = {k: tuple(family_cfg[k]) for k in ("mean", "std") if k in family_cfg}
        return ClipSource(name, str(path), quick_gelu, norm or None, str(path))

    def _warn_random(self) -> None:
        if self.random_init and not self._warned:
            self._warned = True
            log.warning("sam2-clip: RANDOM WEIGHTS (random_init=True): every mask, score and "
                        "track is meaningless; use this for tests and speed measurements only")

    # -- models (built once, on first use) -------------------------------------------------------
    def _sam2(self) -> _Sam2:
        if self._sam is None:
            self.check_weights()
            sam2_engine, _ = _engine()
            from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator

            self._warn_random()
            cfg = self.config
            log.info("sam2-clip: SAM%s %s (input %d) with weights %s", self._release,
                     cfg["model_size"], cfg["image_size"], cfg["sam2_checkpoint"])
            model = sam2_engine.build_sam2(
                self._sam2_config(), None if self.random_init else self._sam2_checkpoint(),
                image_size=cfg["image_size"], device=self.device,
                vos_optimized=cfg["vos_optimized"],
                compile_image_encoder=cfg["compile_image_encoder"])
            store = sam2_engine.FeatureStore(model, max_bytes=self._store_bytes(),
                                             host_bytes=self._host_bytes())
            self._attach(store)
            predictor = sam2_engine.StoreImagePredictor(model, store)
            generator = SAM2AutomaticMaskGenerator(
                model, points_per_side=cfg["points_per_side"],
                points_per_batch=self.points_per_batch, pred_iou_thresh=cfg["pred_iou_thresh"],
                stability_score_thresh=cfg["stability_score_thresh"], output_mode="binary_mask")
            generator.predictor = predictor  # same settings as its own (no _C post-processing)
            self._sam = _Sam2(model, store, predictor, generator)
        return self._sam

    def _clip_encoder(self):
        if self._clip is None:
            self.check_weights()
            sam2_engine, clip_engine = _engine()
            open_clip = _open_clip()
            self._warn_random()
            cfg = self.config
            source = (ClipSource(cfg["clip_model"], None, False, None, RANDOM_WEIGHTS)
                      if self.random_init else self._clip_weights())
            log.info("sam2-clip: open_clip %s with weights %s", source.model, source.local)
            extra: dict[str, Any] = {}
            if cfg["clip_image_size"]:
                extra["force_image_size"] = cfg["clip_image_size"]
            if source.norm:
                extra["force_preprocess_cfg"] = dict(source.norm)
            try:
                with sam2_engine.seeded():
                    model = open_clip.create_model(
                        source.model, pretrained=source.pretrained, device=self.device,
                        force_quick_gelu=source.quick_gelu,
                        require_pretrained=not self.random_init, **extra)
            except Exception as exc:  # open_clip raises RuntimeError, KeyError, pickle errors...
                raise WeightsError(f"cannot load {source.local!r} into open_clip model "
                                   f"{source.model} ({type(exc).__name__}: "
                                   f"{str(exc).splitlines()[0][:300] if str(exc) else ''}); a "
                                   f"weights file needs the clip_model it was trained as",
                                   key=f"{self.name}.clip_pretrained") from exc
            self._clip = clip_engine.ClipEncoder(model.eval(), source.model, device=self.device)
        return self._clip

    @property
    def points_per_batch(self) -> int:
        """The generator's batch: the config's, else 64 on a GPU and 16 on the CPU."""
        value = self.config["points_per_batch"]
        return value if value is not None else (16 if self.device == "cpu" else 64)

    def _store_bytes(self) -> int:
        sam2_engine, _ = _engine()
        mb = self.config["feature_store_mb"]
        return int(mb * 2**20) if mb is not None else int(0.4 * sam2_engine.device_memory_bytes(self.device))

    def _host_bytes(self) -> int:
        sam2_engine, _ = _engine()
        mb = self.config["feature_host_mb"]
        return int(mb * 2**20) if mb is not None else int(0.25 * sam2_engine.host_memory_bytes())

    def load(self) -> None:
        """Build both models now (otherwise each is built on first use); a worker calls this
        once at start to fail fast and keep model loading out of its first item's timing."""
        self._sam2()
        self._clip_encoder()

    def _compute(self):
        """SAM2's compute mode (the config's dtype; TF32 on CUDA when ``tf32``)."""
        sam2_engine, _ = _engine()
        return sam2_engine.compute_mode(self.device, self.config["dtype"], tf32=self.config["tf32"])

    def _clip_compute(self):
        """CLIP's compute mode: always full fp32."""
        sam2_engine, _ = _engine()
        return sam2_engine.fp32_mode(self.device)

    # -- the four questions ----------------------------------------------------------------------
    def propose(self, video: Video, t: int) -> Proposals:
        """Proposals on frame t: masks N×H×W bool, q = predicted_iou × stability_score (N,),
        region features (N, D) L2-normalised."""
        self.load()
        sam = self._sam2()
        frame = video.frame(t)
        with self._compute():
            records = sam.generator.generate(frame)
        masks = stack_or_empty([r["segmentation"] for r in records], frame.shape[:2])
        quality = np.clip(np.asarray([r["predicted_iou"] * r["stability_score"]
                                      for r in records], dtype=np.float32), 0.0, 1.0)
        return Proposals(masks=masks, quality=quality.reshape(-1),
                         features=self.region_features(frame, masks))

    def region_features(self, frame: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """(N, D) float32 region features of N×H×W bool ``masks`` on an H×W×3 uint8 frame."""
        clip = self._clip_encoder()
        masks = np.asarray(masks, dtype=bool).reshape(-1, *frame.shape[:2])
        with self._clip_compute():
            return clip.region_features(frame, masks, blur_sigma=self.config["clip_blur_sigma"])

    def encode_text(self, text: str) -> np.ndarray:
        """(D,) float32 open_clip text embedding, L2-normalised."""
        clip = self._clip_encoder()
        with self._clip_compute():
            return clip.encode_text(text)

    def score(self, proposals: Proposals, text_feature: np.ndarray) -> np.ndarray:
        """(N,) cosine similarity of each region feature with the text feature."""
        return cosine_scores(proposals.features, text_feature)

    def refine(self, video: Video, t: int, mask: np.ndarray) -> np.ndarray:
        """One SAM2 round on frame t prompted by the mask's box, low-res logits and interior
        points (``mask_prompts``), single-mask output, then the ``min_region_area`` filter.
        An empty mask is returned unchanged."""
        mask = _checked_masks(video, t, np.asarray(mask)[None], what="mask")[0]
        if not mask.any():
            return mask.copy()
        sam = self._sam2()
        lowres = sam.model.sam_prompt_encoder.mask_input_size[0]
        box, logits, points = mask_prompts(mask, lowres=lowres,
                                           num_points=self.config["refine_points"])
        with self._compute():
            sam.predictor.set_image(video.frame(t))
            out, _, _ = sam.predictor.predict(
                point_coords=points if len(points) else None,
                point_labels=np.ones(len(points), dtype=np.int32) if len(points) else None,
                box=box, mask_input=logits, multimask_output=False)
        return remove_small_regions(out[0] > 0.5, self.config["min_region_area"])

    def propagate(self, video: Video, t: int, seeds: np.ndarray, *,
                  all_frame_cache: bool = True) -> np.ndarray:
        """Seeds S×H×W bool on frame t → tracks S×T×H×W bool (forward to T−1, backward to 0,
        all seeds in one pass), each mask cleaned by ``min_region_area``: the unpacked
        ``propagate_packed``.

        ``all_frame_cache=False`` runs the stock predictor's one-frame feature cache, which
        re-encodes every frame on every pass (the reference for tests and the benchmark)."""
        tracks = self.propagate_packed(video, t, seeds, all_frame_cache=all_frame_cache)
        if not tracks:
            return np.zeros((0, len(video), *video.size), dtype=bool)
        return np.stack([track.unpack() for track in tracks])

    def propagate_packed(self, video: Video, t: int, seeds: np.ndarray, *,
                         all_frame_cache: bool = True) -> list:
        """``propagate``'s tracks as PackedTracks, each frame cleaned and packed as SAM2 returns
        it (host memory holds one S×H×W frame). The tracking state stays on the device unless
        ``offload_state_to_cpu``."""
        seeds = _checked_masks(video, t, np.asarray(seeds), what="seeds")
        if not len(seeds):
            return []
        sam2_engine, _ = _engine()
        sam = self._sam2()
        area = self.config["min_region_area"]
        with self._compute():
            state = sam2_engine.new_inference_state(
                sam.model, video, sam.store, all_frame_cache=all_frame_cache,
                offload_state_to_cpu=self.config["offload_state_to_cpu"])
            return sam2_engine.track(sam.model, state, t, seeds,
                                     clean=(lambda m: remove_small_regions(m, area)) if area > 0 else None)

    # -- SAM2 image features (for the feature cache's on-disk store) ----------------------------
    def attach_frame_cache(self, cache, prefix: str) -> None:
        """With ``persist_frame_features``, keep every frame's SAM2 features in ``cache`` (a
        CacheStore) under ``prefix/<frame hash>``: a frame computed once, by any worker, is
        never re-encoded. VideoFeatures calls this with its propagator scope."""
        self._frame_cache = (cache, prefix)
        if self._sam is not None:
            self._attach(self._sam.store)

    def _attach(self, store) -> None:
        if self._frame_cache is None or not self.config["persist_frame_features"]:
            return
        cache, prefix = self._frame_cache

        def load(key: str):
            entry = cache.get(f"{prefix}/{key}")
            # entries written before the layout was recorded have no "layout" (restore learns it)
            return None if entry is None else store.restore(entry.arrays, entry.meta.get("layout"))

        def save(key: str, feats) -> None:
            cache.put(f"{prefix}/{key}", store.export(feats), {"layout": store.layout(feats)})

        store.attach(load, save)

    def drop_features(self) -> None:
        """Forget every frame's SAM2 features held in memory (the next pass re-encodes)."""
        if self._sam is not None:
            self._sam.store.clear()

    @property
    def encoder_passes(self) -> int:
        """SAM2 image-encoder passes run by this instance (frames not found in memory or in the
        persisted frame features)."""
        return self._sam.store.encoded if self._sam is not None else 0

    @property
    def frames_loaded(self) -> int:
        """Frames whose SAM2 features came from the persisted frame features."""
        return self._sam.store.loaded if self._sam is not None else 0

    def close(self) -> None:
        self._sam = None
        self._clip = None


def _open_clip():
    try:
        import open_clip
    except ImportError as exc:
        raise ConfigError(f"the sam2-clip backend needs open_clip_torch "
                          f"(pip install 'lcrp-sweeps[models]'): {exc}", key="backend") from exc
    return open_clip


def _cached_clip_file(name: str, tag: str, tag_cfg: Mapping[str, Any], *, key: str) -> str:
    """The local file open_clip will load for ``tag`` (as open_clip resolves it: the Hugging Face
    hub entry if the tag has one, else its URL's file under ~/.cache/clip), or WeightsError."""
    hub, url = tag_cfg.get("hf_hub", ""), tag_cfg.get("url", "")
    if hub:
        from huggingface_hub import constants, try_to_load_from_cache

        repo, filename = os.path.split(hub)
        filename = filename or "open_clip_pytorch_model.bin"
        stem, ext = os.path.splitext(filename)
        names = list(_unique([*(["open_clip_model.safetensors"]
                                if filename == "open_clip_pytorch_model.bin" else []),
                              *([stem + ".safetensors"] if ext in (".bin", ".pth") else []),
                              filename]))
        for candidate in names:
            found = try_to_load_from_cache(repo, candidate)
            if isinstance(found, str):
                return found
        where = f"the local Hugging Face cache ({constants.HF_HUB_CACHE})"
        fetch = f"`hf download {repo} {filename}`"
    else:
        path = Path("~/.cache/clip").expanduser() / os.path.basename(url)
        if path.is_file():
            return str(path)
        where = str(path.parent)
        fetch = f"download {url} into {path.parent}"
    raise WeightsError(
        f"open_clip weights {name}/{tag} are not in {where}; on a machine with internet run "
        f"{fetch} (or `python -c \"import open_clip; open_clip.create_model('{name}', "
        f"pretrained='{tag}')\"`) and copy the cache here (HF_HOME / HF_HUB_CACHE point at it), "
        f"or set clip_pretrained or the env var {ENV_CLIP_PRETRAINED} to a local weights file",
        key=key)


def _hub_repo(name: str, tag: str) -> str | None:
    """The Hugging Face repo open_clip fetches ``name``/``tag`` from (None if it has none)."""
    cfg = _open_clip().get_pretrained_cfg(name, tag) or {}
    hub = cfg.get("hf_hub", "")
    return hub.rstrip("/") or None


def _schema_source(value: str, *, key: str) -> str:
    """The local folder of an ``hf-hub:ORG/REPO`` (in the local Hugging Face cache) or
    ``local-dir:PATH`` CLIP source, which must hold ``open_clip_config.json`` (its model config,
    QuickGELU and mean/std included); WeightsError otherwise."""
    schema, _, ident = value.partition(":")
    if schema == "local-dir":
        folder = Path(ident).expanduser()
        if not (folder / "open_clip_config.json").is_file():
            raise WeightsError(f"local-dir: needs a folder holding open_clip_config.json and the "
                               f"weights (open_clip_model.safetensors or "
                               f"open_clip_pytorch_model.bin), as `hf download ORG/REPO "
                               f"--local-dir {folder}` writes", path=folder)
        return str(folder)
    from huggingface_hub import constants, try_to_load_from_cache

    found = try_to_load_from_cache(ident, "open_clip_config.json")
    if not isinstance(found, str):
        raise WeightsError(f"{value} is not in the local Hugging Face cache "
                           f"({constants.HF_HUB_CACHE}); on a machine with internet run "
                           f"`hf download {ident}` and copy the cache here (HF_HOME / "
                           f"HF_HUB_CACHE point at it)", key=key)
    return str(Path(found).parent)


def _is_torchscript(path: Path) -> bool:
    """Whether ``path`` is a TorchScript archive (a zip holding code/ and constants.pkl), as
    OpenAI's original CLIP files (e.g. ViT-L-14.pt) are."""
    import zipfile

    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
    return any(n.endswith("/constants.pkl") for n in names) and any("/code/" in n for n in names)


def _unique(items: list[str]) -> Iterator[str]:
    seen: set[str] = set()
    for item in items:
        if item not in seen:
            seen.add(item)
            yield item


def _checked_masks(video: Video, t: int, masks: np.ndarray, *, what: str) -> np.ndarray:
    """``masks`` as S×H×W bool for frame t of ``video``, or DataError."""
    if not 0 <= t < len(video):
        raise DataError(f"frame {t} out of range 0..{len(video) - 1}", key=video.name)
    if masks.ndim != 3 or masks.shape[1:] != tuple(video.size):
        raise DataError(f"{what} of shape {masks.shape[1:] if masks.ndim == 3 else masks.shape} "
                        f"do not match the video's frames {tuple(video.size)}", key=video.name)
    return masks.astype(bool, copy=False)
