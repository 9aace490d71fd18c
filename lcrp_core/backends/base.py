"""The small interfaces the pipeline needs from a backend, and the registry that builds one by name.

A backend answers four questions about a video (shapes in the names' docstrings):

- ``propose(video, t)``: proposals on frame t: binary masks with a quality score q_{t,i} and a
  region feature per mask (a CLIP embedding, or the classical backend's measured descriptor);
- ``encode_text(text)`` and ``score(proposals, text_feature)``: the region–text score s_{t,i};
  ``score`` is a pure function of cached features, so a sweep never re-runs a model for it;
- ``refine(video, t, mask)``: one refinement round of a mask on frame t;
- ``propagate(video, t, seeds)``: each seed mask on frame t propagated forward to the last
  frame and backward to the first, all seeds in one pass (``propagate_packed``: the same tracks
  kept packed, which the pipeline uses).

Backends cache no results: the feature cache (lcrp_core.cache) memoizes every call by content.
They may keep per-video working state (decoded frames, image features) and release it in
``close()``.
"""

from __future__ import annotations

import abc
import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import create_model, model_validator

from lcrp_core.config import Model, Number, fail, validate
from lcrp_core.data.model import Video
from lcrp_core.errors import ConfigError
from lcrp_core.hashing import config_hash
from lcrp_core.masks import PackedTrack, rle_decode, rle_encode
from lcrp_core.yamlfile import read_yaml


@dataclass(frozen=True)
class Proposals:
    """Proposals on one frame: ``masks`` N×H×W bool, ``quality`` (N,) float32 (q_{t,i}),
    ``features`` (N, D) float32 region features that ``Backend.score`` compares to a text feature."""

    masks: np.ndarray
    quality: np.ndarray
    features: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.masks)
        if self.masks.ndim != 3 or self.quality.shape != (n,) or self.features.ndim != 2 \
                or len(self.features) != n:
            raise ValueError(f"inconsistent proposals: masks {self.masks.shape}, "
                             f"quality {self.quality.shape}, features {self.features.shape}")

    def __len__(self) -> int:
        return len(self.masks)

    def to_payload(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """(arrays, json meta) for the feature cache; masks are stored as COCO RLE."""
        meta = {"size": list(self.masks.shape[1:]), "rles": [rle_encode(m) for m in self.masks]}
        return {"quality": self.quality, "features": self.features}, meta

    @classmethod
    def from_payload(cls, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> Proposals:
        h, w = meta["size"]
        masks = (np.stack([rle_decode(r) for r in meta["rles"]]) if meta["rles"]
                 else np.zeros((0, h, w), dtype=bool))
        return cls(masks=masks, quality=np.asarray(arrays["quality"], dtype=np.float32),
                   features=np.asarray(arrays["features"], dtype=np.float32))


class Backend(abc.ABC):
    """Base class of the backends. Subclasses set ``name`` and ``Config`` (a
    :class:`BackendConfig`: every config key with its type, checks and default); unknown config
    keys are refused with the list of known ones."""

    name: ClassVar[str]
    Config: ClassVar[type[BackendConfig]]
    #: every config key with its default (from ``Config``)
    defaults: ClassVar[Mapping[str, Any]]
    #: config keys that propagation does not depend on (left out of the track-cache key)
    proposal_only_keys: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "Config" in vars(cls):
            cls.defaults = cls.Config().model_dump()
        elif "defaults" in vars(cls):  # a backend of one's own may give plain defaults
            cls.Config = config_model(f"{cls.__name__}Config", cls.defaults)

    def __init__(self, config: Mapping[str, Any] | None = None, *, device: str = "cpu",
                 random_init: bool = False):
        self.config = resolve_config(self.name, self.Config, config or {})
        self.device = device
        self.random_init = random_init

    # -- identities used by cache keys -------------------------------------------------------
    @property
    def config_hash(self) -> str:
        return config_hash(self.config)

    @property
    def propagator_config(self) -> dict[str, Any]:
        """The config that refinement and propagation depend on (track and refine cache keys)."""
        return {k: v for k, v in self.config.items() if k not in self.proposal_only_keys}

    # -- the four questions ------------------------------------------------------------------
    @abc.abstractmethod
    def propose(self, video: Video, t: int) -> Proposals:
        """Proposals on frame t."""

    @abc.abstractmethod
    def encode_text(self, text: str) -> np.ndarray:
        """(D',) float32 feature of an expression, compared by ``score`` with region features."""

    @abc.abstractmethod
    def score(self, proposals: Proposals, text_feature: np.ndarray) -> np.ndarray:
        """(N,) float region–text scores s_{t,i}; a pure function of its arguments."""

    @abc.abstractmethod
    def refine(self, video: Video, t: int, mask: np.ndarray) -> np.ndarray:
        """One refinement round of ``mask`` (H×W bool) on frame t → H×W bool."""

    @abc.abstractmethod
    def propagate(self, video: Video, t: int, seeds: np.ndarray) -> np.ndarray:
        """Seeds S×H×W bool on frame t → tracks S×T×H×W bool covering every frame
        (seed frame included, forward to T−1 and backward to 0)."""

    def propagate_packed(self, video: Video, t: int, seeds: np.ndarray) -> list[PackedTrack]:
        """``propagate``'s tracks kept packed (one PackedTrack per seed). Backends that produce
        frames one at a time override it so that host memory holds one frame unpacked, not
        S×T×H×W bools; ``propagate`` is then the unpacked view of it."""
        return [PackedTrack.from_masks(track) for track in self.propagate(video, t, seeds)]

    def close(self) -> None:
        """Release models and per-video state (default: nothing to release)."""


class BackendConfig(Model):
    """A backend's config: every key with its default (one subclass per backend, its ``Config``)."""

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        unknown = sorted(set(data) - set(cls.model_fields)) if isinstance(data, Mapping) else []
        if unknown:
            raise fail(None, f"unknown backend config key(s) {unknown}; expected some of "
                             f"{sorted(cls.model_fields)}")
        return data


def config_model(name: str, defaults: Mapping[str, Any]) -> type[BackendConfig]:
    """A BackendConfig with these defaults, each key typed by its default's type (a number by
    ``Number``; a None default takes any value)."""
    def kind(value: Any) -> Any:
        if value is None:
            return Any
        return Number if type(value) in (int, float) else type(value)

    return create_model(name, __base__=BackendConfig,
                        **{k: (kind(v), v) for k, v in defaults.items()})


def resolve_config(where: str, model: type[BackendConfig], config: Mapping[str, Any]) -> dict:
    """``model``'s defaults overridden by ``config``, validated; errors name ``where.<key>``."""
    return validate(model, config, source=None, at=where).model_dump()


#: Backend name → "module:Class", imported on first use (keeps torch out of the light install).
BACKENDS: dict[str, str] = {
    "classical": "lcrp_core.backends.classical:ClassicalBackend",
    "sam2-clip": "lcrp_core.backends.sam2_clip:Sam2ClipBackend",
}


def backend_class(name: str) -> type[Backend]:
    """The class of backend ``name``: a name of :data:`BACKENDS`, or ``package.module:Class`` for
    a backend of one's own (a :class:`Backend` subclass importable where the workers run)."""
    if name not in BACKENDS and ":" not in name:
        raise ConfigError(f"unknown backend {name!r}; expected one of {sorted(BACKENDS)} or "
                          f"package.module:Class", key="backend")
    module, cls = BACKENDS.get(name, name).split(":", 1)
    try:
        found = getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot import backend {name!r}: {exc}", key="backend") from exc
    if not (isinstance(found, type) and issubclass(found, Backend)):
        raise ConfigError(f"backend {name!r} is not a Backend subclass", key="backend")
    return found


def create_backend(name: str, config: Mapping[str, Any] | None = None, *, device: str = "cpu",
                   random_init: bool = False) -> Backend:
    """Build backend ``name`` with ``config`` (a mapping, e.g. read by load_backend_config)."""
    return backend_class(name)(config, device=device, random_init=random_init)


def load_backend_config(path: str | Path | None) -> dict[str, Any]:
    """A backend config mapping from a YAML file (None → empty mapping)."""
    if path is None:
        return {}
    path = Path(path)
    data = read_yaml(path, what="backend config")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping of backend config keys", path=path)
    return data
