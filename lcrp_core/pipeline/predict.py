"""A configuration's masks for a whole dataset, in its benchmark's layout, through the feature cache.

``predict(job, devices)`` runs Locate → Core → Refine → Path (:meth:`EvalContext.predict`, the
same stages a sweep trial scores, over the same cache key) on every expression of every video and
writes them under ``job.out_dir``:

- MeViS and Ref-YouTube-VOS: ``Annotations/<video>/<exp_id>/<frame>.png`` (0/255 greyscale);
- Ref-DAVIS17: ``anno_<a>/<video>/<frame>.png`` for the 4 annotation sets (palette label maps
  built by :func:`lcrp_core.data.labels.davis_label_maps`, as ReferFormer's inference does);
- ``predict.json``: the configuration, where it came from (study/trial, spec or preset), the
  dataset, the backend, the cache key, code and package versions, per-video wall time and, with
  ground truth, the scores.

Videos are spread over devices by the extraction scheduler (:func:`run_on_devices`). Resumable:
each finished video leaves ``.lcrp_predict/<video>.json`` (its wall time and the run's
fingerprint); a rerun skips those videos. A folder holding another configuration's predictions
is refused.

:func:`score_predictions` reads the written PNGs back and scores them (what ``lcrp eval`` does).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from lcrp_core import schema
from lcrp_core.cache.extract import run_on_devices
from lcrp_core.data import load_dataset
from lcrp_core.data.io import read_json
from lcrp_core.data.model import Dataset
from lcrp_core.data.writers import prediction_root, read_predictions, write_predictions
from lcrp_core.errors import DataError
from lcrp_core.files import write_json_atomic
from lcrp_core.hashing import config_hash
from lcrp_core.metrics import Evaluator, Summary
from lcrp_core.pipeline.params import Params

PREDICT_JSON = "predict.json"
PROGRESS_DIR = ".lcrp_predict"


@dataclass(frozen=True)
class PredictJob:
    """What to predict and where (picklable: sent to every worker process)."""

    dataset: str
    root: str
    split: str | None
    backend: str
    backend_config: Mapping[str, Any]
    params: Params
    out_dir: str
    cache_dir: str = "cache"
    random_init: bool = False
    videos: tuple[str, ...] | None = None

    def fingerprint(self) -> str:
        """Hash of everything that changes the masks: params, dataset, backend."""
        return config_hash({"params": self.params.to_short(), "dataset": self.dataset,
                            "root": str(Path(self.root).resolve()), "split": self.split,
                            "videos": self.videos, "backend": self.backend,
                            "backend_config": dict(self.backend_config),
                            "random_init": self.random_init}, digits=16)

    def open(self, device: str):
        from lcrp_core.pipeline.evaluation import EvalContext

        return EvalContext.open(dataset=self.dataset, root=self.root, split=self.split,
                                backend=self.backend, backend_config=self.backend_config,
                                protocol="davis-unsupervised" if self.dataset == "ref-davis17"
                                else "per-expression", cache_dir=self.cache_dir, device=device,
                                random_init=self.random_init, videos=self.videos)

    def run(self, device: str, names, on_frames, on_video) -> dict[str, int]:
        """Predict and write the videos ``names`` on ``device`` (one backend for all of them)."""
        ctx = self.open(device)
        out, fingerprint = Path(self.out_dir), self.fingerprint()
        try:
            for name in names:
                video = ctx.dataset.videos[name]
                start = time.perf_counter()
                masks = ctx.predict(video, self.params)
                write_predictions(prediction_root(out, self.dataset), self.dataset, video, masks)
                write_json_atomic(_marker(out, name), {"fingerprint": fingerprint,
                                                       "seconds": time.perf_counter() - start})
                on_frames(len(video))
                on_video(name)
        finally:
            ctx.close()
        return ctx.counters.as_dict()


@dataclass
class PredictReport:
    dataset: Dataset
    videos_done: int
    videos_skipped: int
    seconds: dict[str, float]
    cache_key: str
    counters: dict[str, int] = field(default_factory=dict)


def _marker(out: Path, video: str) -> Path:
    return out / PROGRESS_DIR / f"{video}.json"


def _finished(out: Path, video: str, fingerprint: str) -> float | None:
    """The wall time of a video finished by this configuration, else None."""
    path = _marker(out, video)
    if not path.is_file():
        return None
    try:
        done = read_json(path)
    except DataError:
        return None
    if not isinstance(done, dict) or done.get("fingerprint") != fingerprint:
        return None
    return float(done.get("seconds", 0.0))


def check_out_dir(out: Path, fingerprint: str) -> None:
    """Refuse an output folder holding predictions of another configuration (or anything that is
    not an ``lcrp predict`` folder)."""
    if not out.exists():
        return
    if not out.is_dir():
        raise DataError("exists and is not a folder", path=out)
    meta = out / PREDICT_JSON
    if meta.is_file():
        previous = read_json(meta)
        if isinstance(previous, dict) and previous.get("fingerprint") == fingerprint:
            return
        raise DataError("holds the predictions of another configuration or dataset (its "
                        f"{PREDICT_JSON} differs); choose another --out or remove it", path=out)
    if any(p for p in out.iterdir() if p.name != PROGRESS_DIR):
        raise DataError(f"folder exists, is not empty and has no {PREDICT_JSON}; choose another "
                        "--out", path=out)


def predict(job: PredictJob, devices: Sequence[str], *, provenance: Mapping[str, Any],
            progress: bool = True) -> PredictReport:
    """Predict every video of ``job`` not finished before; write ``predict.json`` (with
    ``provenance``: where the configuration came from) at the start and when done."""
    from lcrp_core.backends.base import create_backend
    from lcrp_core.cache.features import CacheScope
    from lcrp_core.versions import code_version, package_versions

    out, fingerprint = Path(job.out_dir), job.fingerprint()
    check_out_dir(out, fingerprint)
    ds = load_dataset(job.dataset, job.root, job.split, videos=job.videos)
    backend = create_backend(job.backend, job.backend_config, device="cpu",
                             random_init=job.random_init)  # models load lazily, never here
    cache_key = CacheScope.of(ds, backend).features
    backend.close()
    seconds = {v.name: s for v in ds if (s := _finished(out, v.name, fingerprint)) is not None}
    pending = [v.name for v in ds if v.name not in seconds]
    meta = {
        "fingerprint": fingerprint,
        "complete": False,
        "params": job.params.to_short(),
        "source": dict(provenance),
        "dataset": {"kind": job.dataset, "root": str(job.root), "split": ds.split,
                    "videos": list(job.videos) if job.videos is not None else None},
        "layout": ("anno_<a>/<video>/<frame>.png" if job.dataset == "ref-davis17"
                   else "Annotations/<video>/<exp_id>/<frame>.png"),
        "backend": {"name": job.backend, "config": dict(job.backend_config),
                    "random_init": job.random_init},
        "cache_key": cache_key,
        "code_version": code_version(),
        "package_versions": package_versions(),
        "devices": list(devices),
    }
    write_json_atomic(out / PREDICT_JSON, {**meta, "video_seconds": seconds}, indent=1)
    counters: dict[str, int] = {}

    def merge(c: Mapping[str, int]) -> None:
        for k, v in c.items():
            counters[k] = counters.get(k, 0) + v

    frames = sum(len(ds.videos[n]) for n in pending)
    bar = tqdm(total=frames, unit="frame", desc="predict", disable=not progress)
    try:
        run_on_devices(job, devices, pending, bar, merge)
    finally:
        bar.close()
    for name in pending:
        done = _finished(out, name, fingerprint)
        if done is None:
            raise DataError("a worker finished without writing this video's marker",
                            path=_marker(out, name))
        seconds[name] = done
    seconds = {v.name: seconds[v.name] for v in ds}
    write_json_atomic(out / PREDICT_JSON, {**meta, "complete": True, "video_seconds": seconds},
                      indent=1)
    return PredictReport(ds, len(pending), len(ds) - len(pending), seconds, cache_key, counters)


def score_predictions(out: str | Path, dataset: Dataset, protocol: str) -> Summary:
    """Read the written predictions of every video back and score them with ``protocol``."""
    evaluator = Evaluator(dataset, protocol, cache_bytes=0)
    root = prediction_root(Path(out), dataset.kind)
    scores = []
    for video in dataset:
        preds = read_predictions(root, dataset.kind, video)
        if dataset.kind == "ref-davis17" and protocol == "davis-unsupervised":
            scores.append(evaluator.score_label_maps(video, preds))
        else:
            scores.append(evaluator.score_video(video, preds))
    return evaluator.summarize(scores)


def record_scores(out: str | Path, summary: Summary, check: Mapping[str, Any] | None) -> None:
    """Add the scores (0–100) and the result of the comparison with the trial to predict.json."""
    path = Path(out) / PREDICT_JSON
    meta = read_json(path)
    meta["scores"] = {name: getattr(summary, name) for name in schema.ITEM_SCORES}
    if check is not None:
        meta["trial_check"] = dict(check)
    write_json_atomic(path, meta, indent=1)


def load_meta(pred_dir: str | Path) -> dict[str, Any]:
    """The predict.json of a prediction folder (a DataError naming it when absent or broken)."""
    path = Path(pred_dir) / PREDICT_JSON
    meta = read_json(path)
    if not isinstance(meta, dict) or "dataset" not in meta:
        raise DataError(f"not an `lcrp predict` {PREDICT_JSON}", path=path)
    return meta

