"""The open_clip side of the ``sam2-clip`` backend: region and text embeddings.

A proposal's region feature follows the visual prompts that work best for training-free
referring segmentation (FGVP, NeurIPS'23; Global-Local CLIP): two views of the region,

- the masked crop: the mask's box cut out, pixels outside the mask replaced by the model's mean
  colour (a neutral background: zero after normalisation);
- the blurred frame: the whole frame, Gaussian-blurred outside the mask (soft mask edges),

each padded to the model's aspect with the mean colour and resized; their two embeddings are
averaged and L2-normalised. The text feature is the expression's embedding, L2-normalised.

Shapes: frame H×W×3 uint8 RGB; masks N×H×W bool; views 2N×h×w×3 uint8; features (N, D) float32.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from lcrp_core.masks import bbox_xyxy

#: Images per encoder batch.
BATCH = 32


def fit(image: np.ndarray, size: tuple[int, int], fill: Sequence[float] | float) -> np.ndarray:
    """``image`` (h×w or h×w×C) padded symmetrically with ``fill`` to the aspect of ``size``
    (out_h, out_w) and resized to it (area averaging when shrinking, cubic when enlarging)."""
    out_h, out_w = size
    h, w = image.shape[:2]
    if h * out_w > w * out_h:   # too tall: pad the width
        pad_w, pad_h = round(h * out_w / out_h) - w, 0
    else:
        pad_w, pad_h = 0, round(w * out_h / out_w) - h
    value = list(fill) if isinstance(fill, Sequence) else fill
    padded = cv2.copyMakeBorder(image, pad_h // 2, pad_h - pad_h // 2, pad_w // 2,
                                pad_w - pad_w // 2, cv2.BORDER_CONSTANT, value=value)
    shrink = padded.shape[0] >= out_h
    return cv2.resize(padded, (out_w, out_h),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def region_views(frame: np.ndarray, masks: np.ndarray, *, size: tuple[int, int],
                 mean_rgb: Sequence[int], blur_sigma: float) -> np.ndarray:
    """The two views of every mask: 2N×h×w×3 uint8, the N masked crops then the N blurred frames.

    ``size`` = (h, w) of the CLIP input; ``mean_rgb`` the neutral background colour (0–255);
    ``blur_sigma`` the Gaussian's sigma in pixels of the CLIP input. Empty masks give a plain
    mean-colour crop."""
    fill = np.asarray(mean_rgb, dtype=np.uint8)
    whole = fit(frame, size, [int(c) for c in fill]).astype(np.float32)
    blurred = cv2.GaussianBlur(whole, (0, 0), blur_sigma) if blur_sigma > 0 else whole
    crops, blurs = [], []
    for mask in masks:
        box = bbox_xyxy(mask)
        if box is None:
            crops.append(np.broadcast_to(fill, (*size, 3)).copy())
        else:
            x0, y0, x1, y1 = box
            crop = np.where(mask[y0:y1, x0:x1, None], frame[y0:y1, x0:x1], fill)
            crops.append(fit(np.ascontiguousarray(crop), size, [int(c) for c in fill]))
        alpha = fit(mask.astype(np.float32), size, 0.0)[..., None]
        blurs.append(np.clip(alpha * whole + (1.0 - alpha) * blurred + 0.5, 0, 255)
                     .astype(np.uint8))
    if not crops:
        return np.zeros((0, *size, 3), dtype=np.uint8)
    return np.stack(crops + blurs)


class ClipEncoder:
    """An open_clip model with its tokenizer and preprocessing constants, on ``device``.

    ``model``: built by open_clip (eval mode); ``model_name``: for the tokenizer (a built-in name
    or a ``local-dir:`` folder, whose tokenizer files are local)."""

    def __init__(self, model, model_name: str, *, device: str):
        import open_clip

        self.model = model
        self.device = device
        model_cfg = open_clip.get_model_config(model_name)   # None for local-dir:
        # a built-in model whose config names a Hugging Face tokenizer reads it from the local
        # hub cache only (open_clip passes the keyword on to AutoTokenizer.from_pretrained)
        local_only = bool(model_cfg and model_cfg.get("text_cfg", {}).get("hf_tokenizer_name"))
        self.tokenizer = open_clip.get_tokenizer(
            model_name, **({"local_files_only": True} if local_only else {}))
        cfg = open_clip.get_model_preprocess_cfg(model)
        size = cfg["size"]
        self.size: tuple[int, int] = (size, size) if isinstance(size, int) else tuple(size)
        self.mean = np.asarray(cfg["mean"], dtype=np.float32)
        self.std = np.asarray(cfg["std"], dtype=np.float32)
        self.dim = (int(model_cfg["embed_dim"]) if model_cfg else
                    len(self.encode_text("a photo")))

    @property
    def mean_rgb(self) -> tuple[int, int, int]:
        """The model's mean colour in 0–255 RGB: the neutral background of masked crops."""
        return tuple(int(round(float(c) * 255)) for c in self.mean)

    def encode_images(self, images: np.ndarray) -> np.ndarray:
        """N×h×w×3 uint8 RGB (already at the model's input size) → (N, D) float32, L2-normalised.
        Call under torch inference mode (and autocast if wanted)."""
        import torch

        out = [np.zeros((0, self.dim), dtype=np.float32)]
        mean = torch.from_numpy(self.mean).view(1, 3, 1, 1)
        std = torch.from_numpy(self.std).view(1, 3, 1, 1)
        for i in range(0, len(images), BATCH):
            x = torch.from_numpy(np.ascontiguousarray(images[i:i + BATCH])).permute(0, 3, 1, 2)
            x = ((x.float() / 255.0 - mean) / std).to(self.device)
            out.append(l2_normalize(self.model.encode_image(x).float().cpu().numpy()))
        return np.concatenate(out).astype(np.float32)

    def encode_text(self, text: str) -> np.ndarray:
        """(D,) float32, L2-normalised. Call under torch inference mode."""
        import torch

        with torch.inference_mode():
            return self._encode_text(text)

    def _encode_text(self, text: str) -> np.ndarray:
        tokens = self.tokenizer([text]).to(self.device)
        return l2_normalize(self.model.encode_text(tokens).float().cpu().numpy())[0]

    def region_features(self, frame: np.ndarray, masks: np.ndarray, *,
                        blur_sigma: float) -> np.ndarray:
        """(N, D) float32: the mean of each mask's two view embeddings, L2-normalised."""
        views = region_views(frame, masks, size=self.size, mean_rgb=self.mean_rgb,
                             blur_sigma=blur_sigma)
        emb = self.encode_images(views)
        n = len(masks)
        return l2_normalize(emb[:n] + emb[n:]) if n else emb


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows (last axis) scaled to unit L2 norm; zero rows stay zero."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), eps)
