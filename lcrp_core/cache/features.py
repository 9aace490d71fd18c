"""Memoized access to a video's backend features: the pipeline stages' only source of data.

Cache layout under the cache root (each file a checksummed entry, see store.py)::

    <dataset key>/<backend>-<config hash>-v<versions hash>/<video>/proposals/<t>.lcrp
    <dataset key>/<backend>-<config hash>-v<versions hash>/<video>/complete.lcrp   (extraction marker)
    <dataset key>/<backend>-<config hash>-v<versions hash>/_text/<text hash>.lcrp
    <dataset key>/<backend>-p<propagator hash>-v<versions hash>/<video>/tracks/<t>-<seed hash>.lcrp
    <dataset key>/<backend>-p<propagator hash>-v<versions hash>/<video>/refine/<t>-<mask hash>.lcrp
    <dataset key>/<backend>-p<propagator hash>-v<versions hash>/<video>/{core,path}/<digest>.lcrp
    <dataset key>/<backend>-p<propagator hash>-v<versions hash>/_frames/<frame hash>.lcrp
        (sam2-clip with persist_frame_features: a frame's SAM2 features, keyed by its pixels)

Tracks and refinements are content-addressed by (video, frame, seed-mask hash, propagator
config): every trial that picks the same seed mask shares them, and config keys that only
change proposals do not invalidate them. Core's choices and Path's outputs are keyed by a
digest of what determines them (see pipeline/stages.py).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import numpy as np

from lcrp_core.backends.base import Backend, Proposals
from lcrp_core.cache.store import CacheStore
from lcrp_core.data.model import Dataset, Video
from lcrp_core.hashing import config_hash
from lcrp_core.masks import PackedTrack, mask_hash, pack_masks, unpack_masks
from lcrp_core.versions import package_versions


@dataclass
class Counters:
    """What a run computed versus loaded; a repeated evaluation must compute nothing."""

    proposals_computed: int = 0
    proposals_loaded: int = 0
    texts_computed: int = 0
    texts_loaded: int = 0
    refines_computed: int = 0
    refines_loaded: int = 0
    tracks_requested: int = 0
    tracks_computed: int = 0
    tracks_loaded: int = 0
    propagation_passes: int = 0
    derived_computed: int = 0   # Core choices and Path outputs (no backend call)
    derived_loaded: int = 0
    scores_computed: int = 0  # videos scored (Path + metrics)
    scores_reused: int = 0    # videos whose decisions were scored before: nothing recomputed

    @property
    def computed(self) -> int:
        """Backend calls made (extraction, refinement, propagation); scoring is not counted."""
        return (self.proposals_computed + self.texts_computed + self.refines_computed
                + self.tracks_computed)

    def tally(self, kind: str, *, loaded: bool) -> None:
        """One more value of ``kind`` (proposals, texts, refines, derived) loaded or computed."""
        match kind, loaded:
            case "proposals", True:
                self.proposals_loaded += 1
            case "proposals", False:
                self.proposals_computed += 1
            case "texts", True:
                self.texts_loaded += 1
            case "texts", False:
                self.texts_computed += 1
            case "refines", True:
                self.refines_loaded += 1
            case "refines", False:
                self.refines_computed += 1
            case "derived", True:
                self.derived_loaded += 1
            case "derived", False:
                self.derived_computed += 1
            case _:
                raise ValueError(f"no counters for {kind!r}")

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def __sub__(self, other: Counters) -> Counters:
        return Counters(**{f.name: getattr(self, f.name) - getattr(other, f.name) for f in fields(self)})

    def copy(self) -> Counters:
        return Counters(**self.as_dict())


class Memo:
    """In-memory LRU of decoded cache values, bounded in bytes, shared by every video of a
    worker so that a sweep's next trial reads nothing from disk that it read before.
    Values are numpy arrays or Proposals; tracks are kept bit-packed (8× smaller)."""

    def __init__(self, max_bytes: int = 1 << 30):
        self.max_bytes = max_bytes
        self.nbytes = 0
        self._items: OrderedDict[str, tuple[object, int]] = OrderedDict()

    @staticmethod
    def _size(value) -> int:
        if isinstance(value, Proposals):
            return value.masks.nbytes + value.quality.nbytes + value.features.nbytes
        return sum(v.nbytes for v in value.values()) if isinstance(value, dict) else value.nbytes

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def __getitem__(self, key: str):
        self._items.move_to_end(key)
        return self._items[key][0]

    def __setitem__(self, key: str, value) -> None:
        size = self._size(value)
        if key in self._items:
            self.nbytes -= self._items.pop(key)[1]
        self._items[key] = (value, size)
        self.nbytes += size
        while self.nbytes > self.max_bytes and len(self._items) > 1:
            self.nbytes -= self._items.popitem(last=False)[1][1]

    def clear(self) -> None:
        self._items.clear()
        self.nbytes = 0


def versions_hash() -> str:
    return config_hash(package_versions())[:8]


@dataclass(frozen=True)
class CacheScope:
    """Where one (dataset, backend config) pair keeps its entries."""

    features: str   # proposals, text features, extraction markers
    tracks: str     # memoized propagation and refinement

    @classmethod
    def of(cls, dataset: Dataset, backend: Backend) -> CacheScope:
        v = versions_hash()
        return cls(
            features=f"{dataset.key}/{backend.name}-{backend.config_hash}-v{v}",
            tracks=f"{dataset.key}/{backend.name}-p{config_hash(backend.propagator_config)}-v{v}",
        )


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class VideoFeatures:
    """One video's features through the cache (``store=None``: in-memory memo only).

    Shapes: proposals' masks N×H×W bool; ``refine`` H×W → H×W; ``tracks`` S×H×W → S×T×H×W.
    """

    video: Video
    backend: Backend
    store: CacheStore | None
    scope: CacheScope
    counters: Counters = field(default_factory=Counters)
    memo: Memo = field(default_factory=Memo, repr=False)

    def __post_init__(self) -> None:
        attach = getattr(self.backend, "attach_frame_cache", None)
        if attach is not None and self.store is not None:   # sam2-clip's persisted frame features
            attach(self.store, f"{self.scope.tracks}/_frames")

    @property
    def num_frames(self) -> int:
        return len(self.video)

    def _key(self, scope: str, *parts: str) -> str:
        return "/".join((scope, self.video.name, *parts))

    def _cached(self, key: str, compute, encode, decode, kind: str):
        """The memo, then the store, then ``compute()`` (stored); ``kind``'s loaded or computed
        counter is incremented."""
        if key in self.memo:
            return self.memo[key]
        entry = self.store.get(key) if self.store is not None else None
        if entry is None and self.store is not None:
            with self.store.claim(key):          # another worker may be computing it
                entry = self.store.get(key)
                if entry is None:
                    value = self._compute(key, compute, encode, kind)
        elif entry is None:
            value = self._compute(key, compute, encode, kind)
        if entry is not None:
            value = decode(entry.arrays, entry.meta)
            self.counters.tally(kind, loaded=True)
        self.memo[key] = value
        return value

    def _compute(self, key: str, compute, encode, kind: str):
        value = compute()
        if self.store is not None:
            self.store.put(key, *encode(value))
        self.counters.tally(kind, loaded=False)
        return value

    def proposals(self, t: int) -> Proposals:
        return self._cached(
            self._key(self.scope.features, "proposals", f"{t:05d}"),
            lambda: self.backend.propose(self.video, t),
            lambda p: p.to_payload(), Proposals.from_payload, "proposals")

    def text_feature(self, text: str) -> np.ndarray:
        return self._cached(
            f"{self.scope.features}/_text/{text_hash(text)}",
            lambda: np.asarray(self.backend.encode_text(text), dtype=np.float32),
            lambda f: ({"feature": f}, {"text": text}), lambda a, m: a["feature"], "texts")

    def scores(self, t: int, text: str) -> np.ndarray:
        """(N,) region–text scores s_{t,i} of frame t's proposals."""
        props = self.proposals(t)
        if len(props) == 0:
            return np.zeros(0, dtype=np.float32)
        return np.asarray(self.backend.score(props, self.text_feature(text)), dtype=np.float64)

    def derived(self, kind: str, parts: tuple, compute) -> dict[str, np.ndarray]:
        """Arrays the stages derive from cached features (Core's choice, Path's output), memoized
        (in memory and in the cache) by ``parts``, which must determine them."""
        digest = hashlib.sha256(repr(parts).encode()).hexdigest()[:32]
        return self._cached(self._key(self.scope.tracks, kind, digest), compute,
                            lambda v: (v, {}), lambda a, m: a, "derived")

    def refine(self, t: int, mask: np.ndarray) -> np.ndarray:
        """One refinement round of ``mask`` on frame t (memoized by mask content)."""
        return self._cached(
            self._key(self.scope.tracks, "refine", f"{t:05d}-{mask_hash(mask)}"),
            lambda: np.asarray(self.backend.refine(self.video, t, mask), dtype=bool),
            lambda m: (pack_masks(m), {}), lambda a, m: unpack_masks(a), "refines")

    def packed_tracks(self, t: int, seeds: Sequence[np.ndarray]) -> list[PackedTrack]:
        """Tracks of ``seeds`` (H×W bool) on frame t, kept packed (PackedTrack: one frame
        unpacked at a time); the seeds not cached yet share one backend pass."""
        keys = [self._key(self.scope.tracks, "tracks", f"{t:05d}-{mask_hash(s)}") for s in seeds]
        self.counters.tracks_requested += len(keys)
        found: dict[str, PackedTrack] = {}
        for key in dict.fromkeys(keys):
            if key in self.memo:
                found[key] = PackedTrack.from_payload(self.memo[key])
            elif self.store is not None and (entry := self.store.get(key)) is not None:
                self.memo[key] = entry.arrays
                found[key] = PackedTrack.from_payload(entry.arrays)
                self.counters.tracks_loaded += 1
        todo = [key for key in dict.fromkeys(keys) if key not in found]
        if todo and self.store is not None:
            with self.store.claim(todo):         # another worker may be propagating them
                self._propagate(t, keys, seeds, todo, found)
        elif todo:
            self._propagate(t, keys, seeds, todo, found)
        return [found[k] for k in keys]

    def _propagate(self, t, keys, seeds, todo, found) -> None:
        if self.store is not None:               # written while this worker waited for its claim
            for key in list(todo):
                if (entry := self.store.get(key)) is not None:
                    self.memo[key] = entry.arrays
                    found[key] = PackedTrack.from_payload(entry.arrays)
                    self.counters.tracks_loaded += 1
                    todo.remove(key)
        if todo:
            seed_of = dict(zip(keys, seeds, strict=True))
            tracks = self.backend.propagate_packed(self.video, t,
                                                   np.stack([seed_of[k] for k in todo]))
            self.counters.propagation_passes += 1
            for key, track in zip(todo, tracks, strict=True):
                found[key] = track
                self.memo[key] = payload = track.to_payload()
                if self.store is not None:
                    self.store.put(key, payload, {"frame": t})
                self.counters.tracks_computed += 1

    def tracks(self, t: int, seeds: Sequence[np.ndarray]) -> np.ndarray:
        """Tracks S×T×H×W bool of ``seeds`` on frame t (unpacked ``packed_tracks``)."""
        return np.stack([p.unpack() for p in self.packed_tracks(t, seeds)])

    # -- extraction ----------------------------------------------------------------------------
    def is_extracted(self) -> bool:
        """Whether the video's completion marker verifies (checksum and name) and every entry it
        lists (each frame's proposals, each expression's text feature) exists with a valid
        header; cheap: the entries themselves are not decompressed."""
        return self.store is not None and self.extraction_problem() is None

    def extraction_problem(self) -> str | None:
        """Why the video does not count as extracted (None when it does); see is_extracted."""
        assert self.store is not None
        key = self._key(self.scope.features, "complete")
        if not self.store.exists(key):
            return "not extracted"
        marker = self.store.get(key)  # a corrupt marker is reported, deleted: None
        if marker is None:
            return "its completion marker is corrupt"
        keys = [self._key(self.scope.features, "proposals", f"{t:05d}")
                for t in marker.meta.get("frames", [])]
        keys += [f"{self.scope.features}/_text/{text_hash(e.text)}"
                 for e in self.video.expressions.values()]
        bad = [k for k in keys if not self.store.has_header(k)]
        if bad:
            return f"{len(bad)} cached entr{'y is' if len(bad) == 1 else 'ies are'} missing or corrupt ({bad[0]})"
        return None

    def extract(self, frames: Sequence[int] | None = None, progress=None) -> None:
        """Compute and store proposals on ``frames`` (default: all) and every expression's text
        feature, then write the video's completion marker. ``progress(n)`` is called per frame."""
        frames = range(self.num_frames) if frames is None else frames
        for t in frames:
            self.proposals(t)
            self.memo.clear()  # keep memory flat while extracting long videos
            if progress is not None:
                progress(1)
        for expr in self.video.expressions.values():
            self.text_feature(expr.text)
        if self.store is not None:
            self.store.put(self._key(self.scope.features, "complete"), {},
                           {"frames": list(frames), "expressions": sorted(self.video.expressions)})
