"""Tiny benchmark folders in the real on-disk layouts, for tests of anything that reads data.

Each builder writes a few 12×16 videos of 3–4 frames under ``root`` and returns a
:class:`Fixture` with what it wrote (source pixels, label maps, per-expression ground truth),
so a test can compare a reader's output with the truth. Frames are JPEGs (lossy: compare
pixels with a tolerance); label PNGs and RLE masks are exact.

    from tests.fixtures import make_davis_dataset, make_mevis_dataset, make_ytvos_dataset
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as coco_mask

SIZE = (12, 16)


@dataclass
class Fixture:
    """What a builder wrote. ``frames``: video → T×H×W×3 uint8 source pixels (before JPEG);
    ``gt``: video → exp_id → T×H×W bool; ``labels``: video → T×H×W uint8 (Ref-DAVIS17 only);
    ``meta``: the meta_expressions.json document; ``split``: the split written."""

    root: Path
    split: str
    frames: dict[str, np.ndarray]
    meta: dict
    gt: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    labels: dict[str, np.ndarray] = field(default_factory=dict)


def smooth_frames(num_frames: int, seed: int, size: tuple[int, int] = SIZE) -> np.ndarray:
    """T×H×W×3 uint8 gentle gradients (JPEG keeps them within a few grey levels)."""
    h, w = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    out = np.empty((num_frames, h, w, 3), dtype=np.uint8)
    for t in range(num_frames):
        base = rng.integers(60, 190, size=3)
        for c in range(3):
            out[t, :, :, c] = np.clip(base[c] + 2 * xx + yy * (c - 1), 0, 255)
    return out


def box(t: int, y: int, x: int, h: int, w: int, *, size: tuple[int, int] = SIZE) -> np.ndarray:
    """H×W bool rectangle that moves one pixel right per frame t."""
    m = np.zeros(size, dtype=bool)
    m[y:y + h, x + t:x + t + w] = True
    return m


def write_jpegs(folder: Path, names: list[str], frames: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in zip(names, frames):
        Image.fromarray(frame).save(folder / f"{name}.jpg", quality=95)


def write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def frame_names(num_frames: int) -> list[str]:
    return [f"{t:05d}" for t in range(num_frames)]


def _palette_png(path: Path, labels: np.ndarray) -> None:
    img = Image.fromarray(labels, mode="P")
    img.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0] + [224, 224, 192] * 252)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def make_davis_dataset(root: Path, *, referformer_layout: bool = False, converted: bool = False,
                       split: str = "valid") -> Fixture:
    """Ref-DAVIS17: ``bike`` (objects 1 and 2, 4 frames; object 3 enters at frame 2 and has no
    expressions; a void band) and ``swan`` (object 1, 3 frames). Expressions follow
    ReferFormer's converted meta file: per object, annotator 1 first/full, annotator 2
    first/full. ``referformer_layout`` puts the DAVIS folders under ``root/DAVIS``; ``converted``
    writes ReferFormer's converted ``<split>/JPEGImages`` and ``<split>/Annotations`` instead."""
    davis = root / "DAVIS" if referformer_layout else root
    frame_root, anno_root = ((root / split / "JPEGImages", root / split / "Annotations") if converted
                             else (davis / "JPEGImages" / "480p",
                                   davis / "Annotations_unsupervised" / "480p"))
    objects = {
        "bike": {1: lambda t: box(t, 1, 1, 4, 5), 2: lambda t: box(0, 6, 8, 4, 4) if t != 1 else None,
                 3: lambda t: box(0, 9, 1, 2, 3) if t >= 2 else None},
        "swan": {1: lambda t: box(t, 3, 3, 5, 6)},
    }
    num_frames = {"bike": 4, "swan": 3}
    fx = Fixture(root, split, {}, {"videos": {}})
    for v, (name, objs) in enumerate(objects.items()):
        names = frame_names(num_frames[name])
        fx.frames[name] = smooth_frames(len(names), seed=v)
        write_jpegs(frame_root / name, names, fx.frames[name])
        labels = np.zeros((len(names), *SIZE), dtype=np.uint8)
        for t in range(len(names)):
            for obj_id, draw in objs.items():
                m = draw(t)
                if m is not None:
                    labels[t][m] = obj_id
            if name == "bike":
                labels[t, 0, :] = 255  # void band along the top row
            _palette_png(anno_root / name / f"{names[t]}.png", labels[t])
        fx.labels[name] = labels
        exps, gt = {}, {}
        described = [o for o in sorted(objs) if not (name == "bike" and o == 3)]
        for obj_id in described:
            for annotator in (1, 2):
                for kind in ("first", "full"):
                    exp_id = str(len(exps))
                    exps[exp_id] = {"exp": f"{name} object {obj_id} by annotator {annotator} ({kind})",
                                    "obj_id": str(obj_id)}
                    gt[exp_id] = labels == obj_id
        fx.meta["videos"][name] = {"expressions": exps, "frames": names}
        fx.gt[name] = gt
    write_json(root / "meta_expressions" / split / "meta_expressions.json", fx.meta)
    return fx


def _rle(mask: np.ndarray) -> dict:
    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}


def make_mevis_dataset(root: Path, *, split: str = "valid_u", with_masks: bool = True) -> Fixture:
    """MeViS: ``cats`` (3 objects, 4 frames; object 2 absent (null) in frames 0 and 3;
    expressions on one object, on objects 1+2, on objects 2+3 with anno_ids stored as ints)
    and ``road`` (1 object, 3 frames). ``with_masks=False`` writes no mask_dict.json (like
    the ``valid`` split) and no obj_id/anno_id keys."""
    split_dir = root / split
    videos = {
        "cats": {"1": lambda t: box(t, 1, 1, 3, 4), "2": lambda t: box(0, 5, 6, 3, 3) if t in (1, 2) else None,
                 "3": lambda t: box(0, 8, 10, 3, 5)},
        "road": {"4": lambda t: box(t, 2, 2, 6, 6)},
    }
    expressions = {
        "cats": {"0": ("the cat moving right", [0], ["1"]),
                 "1": ("two cats on the left", [0, 1], ["1", "2"]),
                 "2": ("cats that stay still", [1, 2], [2, 3])},
        "road": {"0": ("the car driving away", [0], ["4"])},
    }
    num_frames = {"cats": 4, "road": 3}
    fx = Fixture(root, split, {}, {"videos": {}})
    mask_dict: dict[str, list] = {}
    for v, (name, objs) in enumerate(videos.items()):
        names = frame_names(num_frames[name])
        fx.frames[name] = smooth_frames(len(names), seed=10 + v)
        write_jpegs(split_dir / "JPEGImages" / name, names, fx.frames[name])
        tracks = {}
        for anno_id, draw in objs.items():
            tracks[anno_id] = [draw(t) for t in range(len(names))]
            mask_dict[anno_id] = [None if m is None else _rle(m) for m in tracks[anno_id]]
        exps, gt = {}, {}
        for exp_id, (text, obj_ids, anno_ids) in expressions[name].items():
            exps[exp_id] = {"exp": text}
            if with_masks:
                exps[exp_id].update(obj_id=obj_ids, anno_id=anno_ids)
            union = np.zeros((len(names), *SIZE), dtype=bool)
            for a in anno_ids:
                for t, m in enumerate(tracks[str(a)]):
                    if m is not None:
                        union[t] |= m
            gt[exp_id] = union
        fx.meta["videos"][name] = {"expressions": exps, "frames": names}
        if with_masks:
            fx.gt[name] = gt
    write_json(split_dir / "meta_expressions.json", fx.meta)
    if with_masks:
        write_json(split_dir / "mask_dict.json", mask_dict)
    return fx


def make_ytvos_dataset(root: Path, *, with_test_meta: bool = True) -> Fixture:
    """Ref-YouTube-VOS ``valid``: videos ``a1b2`` (3 frames, 2 expressions) and ``c3d4``
    (4 frames, 1 expression). Like the competition file, the valid meta also lists a test
    video ``t999`` with no frames in valid/JPEGImages; ``with_test_meta`` writes
    meta_expressions/test/meta_expressions.json naming it."""
    videos = {"a1b2": (3, ["a person riding a bike", "the bike"]), "c3d4": (4, ["a white duck"])}
    fx = Fixture(root, "valid", {}, {"videos": {}})
    for v, (name, (n, texts)) in enumerate(videos.items()):
        names = frame_names(n)
        fx.frames[name] = smooth_frames(n, seed=20 + v)
        write_jpegs(root / "valid" / "JPEGImages" / name, names, fx.frames[name])
        fx.meta["videos"][name] = {"expressions": {str(i): {"exp": s} for i, s in enumerate(texts)},
                                   "frames": names}
    test = {"videos": {"t999": {"expressions": {"0": {"exp": "a dog"}}, "frames": frame_names(2)}}}
    write_json(root / "meta_expressions" / "valid" / "meta_expressions.json",
               {"videos": {**fx.meta["videos"], **test["videos"]}})
    if with_test_meta:
        write_json(root / "meta_expressions" / "test" / "meta_expressions.json", test)
    return fx


# --- a backend that stops mid-trial (for the sweep's kill, interrupt and scancel tests) ---------

from lcrp_core.backends.classical import ClassicalBackend, ClassicalConfig  # noqa: E402

#: The backend name a sweep spec gives to use :class:`HaltingBackend`.
HALTING_BACKEND = "tests.fixtures:HaltingBackend"


class HaltingBackend(ClassicalBackend):
    """The classical backend, except that the first worker (over all processes sharing the
    ``halt_fifo`` path) to propose on a frame writes ``"<pid> <host>\\n"`` to that FIFO and then
    waits for a signal: a test then kills, interrupts or cancels a worker that is mid-trial.
    Give each test its own FIFO (its config is part of the cache scope, so the first trial
    proposes on a cold cache)."""

    class Config(ClassicalConfig):
        halt_fifo: str = ""

    name = "halting-classical"

    def propose(self, video, t):
        fifo = self.config["halt_fifo"]
        if fifo:
            import os
            import signal
            import socket

            try:
                os.close(os.open(fifo + ".claimed", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                return super().propose(video, t)
            with open(fifo, "w") as fh:
                fh.write(f"{os.getpid()} {socket.gethostname()}\n")
            while True:
                signal.pause()
        return super().propose(video, t)


def wait_for_halt(fifo: Path, timeout: float = 300) -> tuple[int, str]:
    """(pid, host) of the worker halted by :class:`HaltingBackend` on ``fifo`` (a FIFO the
    caller made with ``os.mkfifo``); ``timeout`` is a safety net, not a wait."""
    import os
    import select

    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
        assert ready, "no worker reached the halt point"
        data = b""
        while not data.endswith(b"\n"):
            select.select([fd], [], [], timeout)
            data += os.read(fd, 100)
    finally:
        os.close(fd)
    pid, host = data.decode().split()
    return int(pid), host


# --- services for the multi-machine tests --------------------------------------------------------

CI_DIR = Path(__file__).resolve().parent.parent / ".ci"


def _env_file_value(name: str, key: str) -> str | None:
    path = CI_DIR / name
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.startswith(f"{key}="):
                return line.split("=", 1)[1].strip()
    return None


def slurm_or_skip() -> str:
    """SLURM_CONF of a cluster that answers (from the environment or .ci/slurm.env, written by
    .ci/start-slurm; set in os.environ for sbatch and the jobs), or skip the test saying why."""
    import os
    import shutil
    import subprocess

    import pytest

    conf = os.environ.get("SLURM_CONF") or _env_file_value("slurm.env", "SLURM_CONF")
    if shutil.which("sbatch") is None:
        pytest.skip("no SLURM here (sbatch not found): run .ci/start-slurm to start a one-node cluster")
    if conf:
        os.environ["SLURM_CONF"] = conf
    try:
        states = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True,
                                timeout=30)
    except subprocess.TimeoutExpired:
        pytest.skip("sinfo did not answer within 30 s: is slurmctld running? (.ci/start-slurm)")
    if states.returncode != 0 or not {"idle", "mixed", "allocated"} & set(states.stdout.split()):
        pytest.skip(f"no SLURM node is up (sinfo: {(states.stdout + states.stderr).strip()!r}); "
                    f"run .ci/start-slurm")
    return conf or ""


def postgres_or_skip() -> str:
    """LCRP_TEST_POSTGRES_URL (or .ci/postgres.env's) of a server that answers, or skip."""
    import os

    import optuna
    import pytest

    from lcrp_core.sweep.storage import open_storage

    url = os.environ.get("LCRP_TEST_POSTGRES_URL") or _env_file_value("postgres.env",
                                                                      "LCRP_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("LCRP_TEST_POSTGRES_URL is not set: run .ci/start-postgres to start a server")
    try:
        optuna.get_all_study_names(open_storage(url))
    except Exception as exc:  # no server answering: say so in the skip reason
        pytest.skip(f"no PostgreSQL server at {url}: {type(exc).__name__}: {exc}")
    return url
