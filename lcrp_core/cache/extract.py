"""Fill the feature cache for a dataset: proposals on every frame and every expression's text
feature, one worker process per device, each building the backend (and loading its models) once.

Resumable: a video whose completion marker verifies, with every entry it lists present with a
valid header, is skipped; an interrupted or damaged video is resumed frame by frame (entries
already written are loaded and verified, not recomputed; corrupt ones are recomputed).
Temporary files left by a killed writer are removed at the start.

:func:`run_on_devices` is the per-video scheduler, shared with ``lcrp predict``: it hands video
names to one worker process per device (inline for one device) and draws the progress bar from
their events. A job is any picklable object with ``run(device, names, on_frames, on_video) ->
counters`` that builds what it needs once per worker.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import queue as queue_mod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from lcrp_core.backends.base import create_backend
from lcrp_core.cache.features import CacheScope, VideoFeatures
from lcrp_core.cache.store import CacheStore
from lcrp_core.data import load_dataset
from lcrp_core.devices import pin_device
from lcrp_core.errors import LcrpError

log = logging.getLogger("lcrp.extract")


@dataclass(frozen=True)
class ExtractJob:
    """What to extract (picklable: sent to every worker process)."""

    dataset: str
    root: str
    split: str | None
    backend: str
    backend_config: Mapping[str, Any]
    cache_dir: str
    random_init: bool = False
    videos: tuple[str, ...] | None = None

    def open(self, device: str):
        backend = create_backend(self.backend, self.backend_config, device=device,
                                 random_init=self.random_init)
        ds = load_dataset(self.dataset, self.root, self.split, videos=self.videos)
        store = CacheStore(self.cache_dir)
        return ds, backend, store, CacheScope.of(ds, backend)

    def run(self, device: str, names, on_frames, on_video) -> dict[str, int]:
        """Extract the videos ``names`` on ``device`` (one backend for all of them)."""
        ds, backend, store, scope = self.open(device)
        total: dict[str, int] = {}
        try:
            for name in names:
                feats = VideoFeatures(ds.videos[name], backend, store, scope)
                feats.extract(progress=on_frames)
                for k, v in feats.counters.as_dict().items():
                    total[k] = total.get(k, 0) + v
                on_video(name)
        finally:
            backend.close()
        return total


@dataclass(frozen=True)
class ExtractReport:
    scope: str
    videos_done: int
    videos_skipped: int
    frames: int
    counters: dict[str, int]


def _worker(job, device: str, tasks, events) -> None:
    """Worker process: pin the device, run the job (which builds its backend once) on the video
    names pulled until None."""
    local = pin_device(device)

    def names():
        while (name := tasks.get()) is not None:
            yield name

    try:
        counters = job.run(local, names(), lambda n: events.put(("frames", n)),
                           lambda v: events.put(("video", v)))
        events.put(("done", counters))
    except LcrpError as exc:
        events.put(("error", str(exc)))
    except Exception as exc:  # report, then let the parent fail cleanly
        events.put(("error", f"{type(exc).__name__}: {exc}"))


def extract(job: ExtractJob, devices: Sequence[str], *, progress: bool = True) -> ExtractReport:
    """Extract every video of ``job`` not already complete, spreading videos over ``devices``."""
    ds, backend, store, scope = job.open("cpu")  # index only: models load lazily, never here
    stale = sum(store.remove_stale_tmp(prefix) for prefix in (scope.features, scope.tracks))
    if stale:
        log.info("extract: removed %d temporary file(s) left by a killed writer", stale)
    pending = []
    for v in ds:
        problem = VideoFeatures(v, backend, store, scope).extraction_problem()
        if problem is not None and problem != "not extracted":
            log.warning("extract: %s: %s; repairing it", v.name, problem)
        if problem is not None:
            pending.append(v.name)
    skipped = len(ds) - len(pending)
    if skipped:
        log.info("extract: %d of %d videos already cached, skipped", skipped, len(ds))
    frames = sum(len(ds.videos[n]) for n in pending)
    bar = tqdm(total=frames, unit="frame", desc=f"extract {job.backend}", disable=not progress)
    counters: dict[str, int] = {}

    def merge(c: Mapping[str, int]) -> None:
        for k, v in c.items():
            counters[k] = counters.get(k, 0) + v

    try:
        run_on_devices(job, devices, pending, bar, merge)
    finally:
        bar.close()
    return ExtractReport(scope.features, len(pending), skipped, frames, counters)


def run_on_devices(job, devices: Sequence[str], pending: Sequence[str], bar, merge) -> None:
    """Run ``job`` on the videos ``pending``: inline for one device (or one video), else one
    spawned worker process per device pulling names from a queue. ``bar.update(frames)`` follows
    the workers' progress; ``merge(counters)`` receives each worker's counters. A worker's
    failure stops the run with an LcrpError carrying its message."""
    if len(devices) == 1 or len(pending) <= 1:
        merge(job.run(pin_device(devices[0]), pending, bar.update, lambda v: None))
        return
    ctx = mp.get_context("spawn")
    tasks, events = ctx.Queue(), ctx.Queue()
    for name in pending:
        tasks.put(name)
    for _ in devices:
        tasks.put(None)
    procs = [ctx.Process(target=_worker, args=(job, d, tasks, events), daemon=True) for d in devices]
    for p in procs:
        p.start()
    errors, finished = [], 0
    while finished < len(procs):
        try:
            kind, payload = events.get(timeout=1.0)
        except queue_mod.Empty:
            dead = [p for p in procs if not p.is_alive() and p.exitcode not in (0, None)]
            if dead and events.empty():
                errors.append(f"a worker process died (exit code {dead[0].exitcode})")
                break
            continue
        if kind == "frames":
            bar.update(payload)
        elif kind == "done":
            merge(payload)
            finished += 1
        elif kind == "error":
            errors.append(payload)
            finished += 1
    for p in procs:
        p.join(timeout=10)
        if p.is_alive():
            p.terminate()
    if errors:
        raise LcrpError(f"a worker failed: {errors[0]}")


def cache_summary(root: str | Path) -> list[dict[str, Any]]:
    """Size and entry count per (dataset, backend scope) under the cache root."""
    root = Path(root)
    rows = []
    if not root.is_dir():
        return rows
    for ds_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for scope_dir in sorted(p for p in ds_dir.iterdir() if p.is_dir()):
            files = list(CacheStore(scope_dir).entries())
            videos = sum(1 for p in scope_dir.iterdir() if p.is_dir() and not p.name.startswith("_"))
            rows.append({"dataset": ds_dir.name, "scope": scope_dir.name, "videos": videos,
                         "entries": len(files), "bytes": sum(p.stat().st_size for p in files)})
    return rows
