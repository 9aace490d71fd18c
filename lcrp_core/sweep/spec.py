"""Sweep specifications: one YAML file per study, validated fully before anything runs.

``load_spec(path)`` reads and validates a spec; ``parse_spec(mapping, source=...)`` validates an
already-loaded mapping (the resolved spec a worker reads back from its study). Every error is ONE
:class:`~lcrp_core.errors.ConfigError` naming the file, the key path (``points[2].delta``) and what
was expected. docs/sweep-spec.md lists every key, its type and default.

The resolved spec (:meth:`SweepSpec.to_json`) is itself a valid spec with every default filled
in, so the same parser reads it back. :meth:`SweepSpec.hash` covers only what changes results
(dataset, backend, protocol, base, grid/points/tpe, repeats).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from lcrp_core.data.model import DATASET_KINDS
from lcrp_core.devices import compact_devices, parse_devices
from lcrp_core.errors import ConfigError, LcrpError
from lcrp_core.hashing import config_hash
from lcrp_core.pipeline.delta import parse_delta
from lcrp_core.pipeline.params import PRESETS, SHORT_NAMES, Params
from lcrp_core.sweep.storage import default_storage_url, normalize_url, storage_kind
from lcrp_core.yamlfile import read_yaml

#: Sweep kinds: exactly one of these keys is present in a spec.
KINDS = ("grid", "points", "tpe")
#: Datasets a sweep can score (Ref-YouTube-VOS has no public ground truth).
SWEEP_DATASETS = tuple(k for k in DATASET_KINDS if k != "ref-youtube-vos")
#: The protocol a study is scored with when its spec names none, per dataset kind.
DEFAULT_PROTOCOL = {"ref-davis17": "davis-unsupervised", "mevis": "per-expression"}
PRUNERS = ("none", "wilcoxon")

_TOP_KEYS = ("study", "description", "dataset", "backend", "protocol", "base", *KINDS, "repeats",
             "storage", "devices", "cache_dir", "max_retries", "heartbeat_interval", "grace_period",
             "slurm")
#: Parameters that take integers (N, K, H); the others take numbers.
INT_PARAMS = {short for short, name in SHORT_NAMES.items()
               if next(f for f in fields(Params) if f.name == name).type == "int"}
_STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class DatasetSpec:
    """Which benchmark split a study scores; ``videos`` restricts it to a subset (in that order)."""

    kind: str
    root: str
    split: str
    videos: tuple[str, ...] | None


@dataclass(frozen=True)
class BackendSpec:
    """Backend name, its complete config (defaults filled in) and whether models are random."""

    name: str
    config: dict[str, Any]
    random_init: bool
    config_file: str | None = None   # where ``config`` was read from (for messages only)


@dataclass(frozen=True)
class Range:
    """One TPE search dimension: ``choices``, or ``low``..``high`` with an optional step or log scale."""

    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    choices: tuple[Any, ...] | None = None


@dataclass(frozen=True)
class TpeSpec:
    params: dict[str, Range]
    n_trials: int
    seed: int
    n_startup_trials: int
    pruner: str
    p_threshold: float


@dataclass(frozen=True)
class Cell:
    """One grid/points cell: id (``c000``), the run's complete params, its repeat index, and the
    trial params (the swept names, plus ``repeat`` when the spec has repeats)."""

    cell: str
    params: Params
    repeat: int
    trial_params: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"cell": self.cell, "params": self.params.to_short(), "repeat": self.repeat}


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep spec. ``source`` names where it came from (a file or a study)."""

    study: str
    description: str
    dataset: DatasetSpec
    backend: BackendSpec
    protocol: str
    base_preset: str | None
    base: Params
    kind: str
    grid: dict[str, tuple[Any, ...]] | None
    points: tuple[dict[str, Any], ...] | None
    tpe: TpeSpec | None
    repeats: int
    storage: str
    devices: tuple[str, ...]
    cache_dir: str
    max_retries: int
    heartbeat_interval: int
    grace_period: int
    source: str = ""
    #: the ``slurm:`` block, validated (:class:`lcrp_core.sweep.slurm.SlurmSettings` as JSON)
    slurm: dict[str, Any] | None = None

    def swept_names(self) -> list[str]:
        """Parameter names a grid/points trial carries (in the spec's order)."""
        if self.grid is not None:
            return list(self.grid)
        names: list[str] = []
        for point in self.points or ():
            names += [n for n in point if n not in names]
        return names

    def cells(self) -> list[Cell]:
        """The grid (cartesian, last key fastest) or the points, each × repeats, in spec order."""
        if self.kind == "tpe":
            return []
        if self.grid is not None:
            overrides = [dict(zip(self.grid, combo, strict=True))
                         for combo in itertools.product(*self.grid.values())]
        else:
            overrides = [dict(p) for p in self.points or ()]
        names = self.swept_names()
        out = []
        for over in overrides:
            params = Params.from_mapping(over, base=self.base)
            short = params.to_short()
            for r in range(self.repeats):
                trial_params = {n: short[n] for n in names}
                if self.repeats > 1:
                    trial_params["repeat"] = r
                out.append(Cell(f"c{len(out):03d}", params, r, trial_params))
        return out

    def choices(self) -> dict[str, list[Any]]:
        """name → distinct values over the cells: the categorical distribution of each trial param."""
        out: dict[str, list[Any]] = {}
        for cell in self.cells():
            for name, value in cell.trial_params.items():
                values = out.setdefault(name, [])
                if value not in values:
                    values.append(value)
        return out

    def to_json(self) -> dict[str, Any]:
        """The resolved spec: every key with its default filled in (a valid spec itself)."""
        tpe = None
        if self.tpe is not None:
            tpe = {"params": {n: _range_json(r) for n, r in self.tpe.params.items()},
                   "n_trials": self.tpe.n_trials, "seed": self.tpe.seed,
                   "n_startup_trials": self.tpe.n_startup_trials, "pruner": self.tpe.pruner,
                   "p_threshold": self.tpe.p_threshold}
        out: dict[str, Any] = {
            "study": self.study,
            "description": self.description,
            "dataset": {"kind": self.dataset.kind, "root": self.dataset.root,
                        "split": self.dataset.split,
                        "videos": list(self.dataset.videos) if self.dataset.videos is not None else None},
            "backend": {"name": self.backend.name, "config": dict(self.backend.config),
                        "random_init": self.backend.random_init},
            "protocol": self.protocol,
            "base": {"preset": self.base_preset, **self.base.to_short()},
        }
        if self.grid is not None:
            out["grid"] = {n: list(v) for n, v in self.grid.items()}
        if self.points is not None:
            out["points"] = [dict(p) for p in self.points]
        if tpe is not None:
            out["tpe"] = tpe
        out.update(repeats=self.repeats, storage=self.storage,
                   devices=compact_devices(self.devices).split(","),
                   cache_dir=self.cache_dir, max_retries=self.max_retries,
                   heartbeat_interval=self.heartbeat_interval, grace_period=self.grace_period)
        if self.slurm is not None:
            out["slurm"] = dict(self.slurm)
        return out

    def result_defining(self) -> dict[str, Any]:
        """The parts of the resolved spec that change results (what :meth:`hash` covers); the
        dataset by kind, split and videos, not by the root it lives at (its contents are checked
        by fingerprint, :mod:`lcrp_core.sweep.fingerprint`)."""
        return result_defining(self.to_json())

    def hash(self) -> str:
        """sha256 (16 hex digits) of the canonical JSON of :meth:`result_defining`."""
        return config_hash(self.result_defining(), digits=16)

    def value_ranges(self) -> dict[str, tuple[Any, Any]]:
        """name → (lowest, highest) value over the cells of each trial param (how a
        grid/points trial records its params: an int or float distribution over that range,
        which a study extended with new values stays compatible with)."""
        return {name: (min(values), max(values)) for name, values in self.choices().items()}

    def with_root(self, root: str | Path) -> SweepSpec:
        """The same spec with another dataset root (``--root``)."""
        ds = self.dataset
        return replace(self, dataset=DatasetSpec(ds.kind, str(root), ds.split, ds.videos))

    def with_devices(self, devices: list[str] | tuple[str, ...]) -> SweepSpec:
        """The same spec with other worker slots (``--devices``, ``--workers-per-device``)."""
        return replace(self, devices=tuple(parse_devices(list(devices))))

    def with_storage(self, url: str) -> SweepSpec:
        return replace(self, storage=_storage(url, "storage"))

    def check_root(self) -> None:
        """Refuse a dataset root that is not an existing folder."""
        root = Path(self.dataset.root)
        if not root.is_dir():
            raise ConfigError(f"expected an existing folder with the {self.dataset.kind} dataset, "
                              f"got {self.dataset.root!r} (resolved {root.resolve()}); "
                              f"pass --root DIR or fix the spec", path=self.source, key="dataset.root")


    def check_dataset(self) -> None:
        """Read the dataset's index (split folder, meta files, the listed videos) so that a bad
        split or video name is refused, naming it, before a study is created."""
        from lcrp_core.data import load_dataset

        self.check_root()
        try:
            load_dataset(self.dataset.kind, self.dataset.root, self.dataset.split,
                         videos=self.dataset.videos)
        except LcrpError as exc:
            raise ConfigError(f"the dataset does not match the spec: {exc}", path=self.source,
                              key="dataset") from exc


RESULT_KEYS = ("dataset", "backend", "protocol", "base", *KINDS, "repeats")


def result_defining(resolved: Mapping[str, Any]) -> dict[str, Any]:
    """The result-defining parts of a resolved spec (JSON), without ``dataset.root``."""
    out = {k: resolved[k] for k in RESULT_KEYS if k in resolved}
    if isinstance(out.get("dataset"), Mapping):
        out["dataset"] = {k: v for k, v in out["dataset"].items() if k != "root"}
    return out


def study_identity(resolved: Mapping[str, Any]) -> dict[str, Any]:
    """What a study may never change: the result-defining parts but its cells (grid values and
    points may be added), with the kind of sweep."""
    out = result_defining(resolved)
    out["kind"] = next((k for k in KINDS if k in resolved), None)
    for key in ("grid", "points"):
        out.pop(key, None)
    return out


def _range_json(r: Range) -> dict[str, Any]:
    if r.choices is not None:
        return {"choices": list(r.choices)}
    out: dict[str, Any] = {"low": r.low, "high": r.high}
    if r.step is not None:
        out["step"] = r.step
    if r.log:
        out["log"] = True
    return out


def load_spec(path: str | Path, *, check_root: bool = True) -> SweepSpec:
    """Read and validate the YAML spec at ``path``.

    ``check_root=False`` skips the dataset-root check (to validate specs on a machine without the
    data, e.g. the shipped paper specs in tests).
    """
    path = Path(path)
    data = read_yaml(path, what="sweep spec")
    return parse_spec(data, source=str(path), check_root=check_root)


def parse_spec(data: Any, *, source: str, check_root: bool = True) -> SweepSpec:
    """Validate a spec mapping; errors name ``source`` and the key path."""
    try:
        spec = _Parser(source).spec(data)
    except LcrpError as exc:
        if isinstance(exc, ConfigError) and exc.path == source:
            raise
        raise ConfigError(_message(exc), path=source, key=exc.key) from exc
    if check_root:
        spec.check_root()
    return spec


def _message(exc: LcrpError) -> str:
    """The message of ``exc`` without its ``path: key:`` prefix."""
    text = str(exc)
    for part in (exc.path, exc.key):
        if part:
            text = text.removeprefix(f"{part}: ")
    return text


def _coerce(values: Mapping[str, Any]) -> dict[str, Any]:
    """Float parameters given as integers (``delta: 0``) become floats, so cells compare equal;
    δ follows the one rule of pipeline/delta.py (``0.003`` or ``"0.3%"``; a bare ``0.3`` is
    refused with a hint). Raises ConfigError(key="delta")."""
    out = {}
    for n, v in values.items():
        if n == "delta":
            try:
                v = parse_delta(v)
            except ValueError as exc:
                raise ConfigError(str(exc), key="delta") from None
        elif n not in INT_PARAMS and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        out[n] = v
    return out


def _storage(url: str, key: str, source: str = "") -> str:
    try:
        url = normalize_url(url)
        storage_kind(url)
    except ConfigError as exc:
        raise ConfigError(_message(exc), path=source or None, key=key) from exc
    return url


class _Parser:
    """Walks a spec mapping; every failure is a ConfigError naming the source and the key path."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, where: str, what: str, got: Any = ...) -> ConfigError:
        return ConfigError(what if got is ... else f"{what}, got {got!r}", path=self.source,
                           key=where or None)

    def mapping(self, value: Any, where: str, allowed: tuple[str, ...],
                required: tuple[str, ...] = (), *, noun: str = "key") -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(where, "expected a mapping", value)
        for key in value:
            if key not in allowed:
                raise self.fail(_join(where, key), f"unknown {noun}; expected one of {list(allowed)}")
        for key in required:
            if key not in value:
                raise self.fail(_join(where, key), "missing required key")
        return dict(value)

    def typed(self, value: Any, where: str, kind: type | tuple[type, ...], what: str) -> Any:
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise self.fail(where, f"expected {what}", value)
        return value

    def integer(self, value: Any, where: str, *, minimum: int) -> int:
        self.typed(value, where, int, "an integer")
        if value < minimum:
            raise self.fail(where, f"expected an integer >= {minimum}", value)
        return value

    def number(self, value: Any, where: str) -> float:
        return self.typed(value, where, (int, float), "a number")

    def params(self, where: str, values: Mapping[str, Any], base: Params, *,
               at_value: bool = False) -> Params:
        """``base`` overridden by ``values`` (short names), validated by Params. Errors name
        ``where.<param>``, or ``where`` itself when it already is the value's path (``at_value``)."""
        try:
            return Params.from_mapping(_coerce(values), base=base)
        except ConfigError as exc:
            key = _join(where, exc.key) if exc.key in SHORT_NAMES and not at_value else where
            raise ConfigError(_message(exc), path=self.source, key=key) from exc

    # sections

    def spec(self, data: Any) -> SweepSpec:
        spec = self.mapping(data, "", _TOP_KEYS, required=("study", "dataset", "backend"))
        study = self.typed(spec["study"], "study", str, "a study name")
        if not _STUDY_NAME.match(study):
            raise self.fail("study", "expected a name of letters, digits, '_', '.', '-'", study)
        description = self.typed(spec.get("description", ""), "description", str, "a string")
        dataset = self.dataset(spec["dataset"])
        backend = self.backend(spec["backend"])
        from lcrp_core.pipeline.evaluation import PIPELINE_PROTOCOLS

        protocol = self.typed(spec.get("protocol", DEFAULT_PROTOCOL[dataset.kind]), "protocol", str,
                              "a protocol name")
        if protocol not in PIPELINE_PROTOCOLS:
            raise self.fail("protocol", f"expected one of {list(PIPELINE_PROTOCOLS)}", protocol)
        base_preset, base = self.base(spec.get("base", {}))

        present = [k for k in KINDS if k in spec]
        if len(present) != 1:
            raise self.fail(present[1] if present else "", f"expected exactly one of {list(KINDS)}, "
                            f"got {present or 'none'}")
        kind = present[0]
        grid = self.grid(spec["grid"], base) if kind == "grid" else None
        points = self.points(spec["points"], base) if kind == "points" else None
        tpe = self.tpe(spec["tpe"], base) if kind == "tpe" else None

        repeats = self.integer(spec.get("repeats", 1), "repeats", minimum=1)
        if tpe is not None and repeats != 1:
            raise self.fail("repeats", "expected 1 for a tpe study (repeats apply to grid and points)",
                            repeats)
        storage = _storage(self.typed(spec.get("storage", default_storage_url(study)), "storage",
                                      str, "a storage URL"), "storage", self.source)
        devices_raw = self.typed(spec.get("devices", ["cpu"]), "devices", (list, str),
                                 "a list of devices")
        try:
            devices = tuple(parse_devices(devices_raw))
        except ConfigError as exc:
            raise self.fail("devices", _message(exc)) from exc
        cache_dir = self.typed(spec.get("cache_dir", "cache"), "cache_dir", str, "a folder path")
        max_retries = self.integer(spec.get("max_retries", 2), "max_retries", minimum=0)
        heartbeat = self.integer(spec.get("heartbeat_interval", 30), "heartbeat_interval", minimum=1)
        grace = self.integer(spec.get("grace_period", 4 * heartbeat), "grace_period", minimum=1)
        if grace <= heartbeat:
            raise self.fail("grace_period", f"expected more than heartbeat_interval ({heartbeat} s)",
                            grace)
        slurm = None
        if spec.get("slurm") is not None:
            from lcrp_core.sweep.slurm import parse_slurm

            slurm = parse_slurm(spec["slurm"], source=self.source).to_json()
        return SweepSpec(study, description, dataset, backend, protocol, base_preset, base, kind,
                         grid, points, tpe, repeats, storage, devices, cache_dir, max_retries,
                         heartbeat, grace, self.source, slurm)

    def dataset(self, value: Any) -> DatasetSpec:
        ds = self.mapping(value, "dataset", ("kind", "root", "split", "videos"),
                          required=("kind", "root"))
        kind = self.typed(ds["kind"], "dataset.kind", str, "a dataset kind")
        if kind not in SWEEP_DATASETS:
            extra = " (it has no public ground truth to score)" if kind in DATASET_KINDS else ""
            raise self.fail("dataset.kind", f"expected one of {list(SWEEP_DATASETS)}{extra}", kind)
        from lcrp_core.data import DEFAULT_SPLITS

        root = self.typed(ds["root"], "dataset.root", str, "a folder path")
        split = self.typed(ds.get("split", DEFAULT_SPLITS[kind]), "dataset.split", str, "a split name")
        videos = ds.get("videos")
        if videos is not None:
            self.typed(videos, "dataset.videos", list, "a list of video names")
            if not videos:
                raise self.fail("dataset.videos", "expected at least one video name (or no key)")
            videos = tuple(self.typed(v, f"dataset.videos[{i}]", str, "a video name")
                           for i, v in enumerate(videos))
        return DatasetSpec(kind, root, split, videos)

    def backend(self, value: Any) -> BackendSpec:
        from lcrp_core.backends.base import backend_class, load_backend_config, resolve_config

        be = self.mapping(value, "backend", ("name", "config", "config_file", "random_init"),
                          required=("name",))
        name = self.typed(be["name"], "backend.name", str, "a backend name")
        if "config" in be and "config_file" in be:
            raise self.fail("backend.config_file", "expected either config or config_file, not both")
        if "config_file" in be:
            where = "backend.config_file"
            config = load_backend_config(self.typed(be["config_file"], where, str, "a YAML file path"))
        else:
            where = "backend.config"
            config = self.typed(be.get("config") or {}, where, Mapping, "a mapping of config keys")
        random_init = self.typed(be.get("random_init", False), "backend.random_init", bool,
                                 "true or false")
        try:
            cls = backend_class(name)
        except ConfigError as exc:
            raise self.fail("backend.name", _message(exc)) from exc
        return BackendSpec(name, resolve_config(where, cls.defaults, dict(config)), random_init,
                           be.get("config_file"))

    def base(self, value: Any) -> tuple[str | None, Params]:
        raw = self.mapping({"preset": value} if isinstance(value, str) else value, "base",
                           ("preset", *SHORT_NAMES))
        preset = raw.pop("preset", None)
        start = Params()
        if preset is not None:
            self.typed(preset, "base.preset", str, "a preset name")
            if preset not in PRESETS:
                raise self.fail("base.preset", f"expected one of {sorted(PRESETS)}", preset)
            start = PRESETS[preset]
        return preset, self.params("base", raw, start)

    def grid(self, value: Any, base: Params) -> dict[str, tuple[Any, ...]]:
        raw = self.mapping(value, "grid", tuple(SHORT_NAMES), noun="parameter")
        if not raw:
            raise self.fail("grid", "expected at least one parameter with a list of values")
        grid = {}
        for name, values in raw.items():
            self.typed(values, f"grid.{name}", list, "a non-empty list of values")
            if not values:
                raise self.fail(f"grid.{name}", "expected a non-empty list of values")
            seen: dict[Params, int] = {}
            for i, v in enumerate(values):
                got = self.params(f"grid.{name}[{i}]", {name: v}, base, at_value=True)
                if got in seen:
                    raise self.fail(f"grid.{name}[{i}]", f"duplicate value (same as "
                                    f"grid.{name}[{seen[got]}]): each cell must be run once", v)
                seen[got] = i
            grid[name] = tuple(_coerce({name: v})[name] for v in values)
        for combo in itertools.product(*grid.values()):
            self.params("grid", dict(zip(grid, combo, strict=True)), base)
        return grid

    def points(self, value: Any, base: Params) -> tuple[dict[str, Any], ...]:
        raw = self.typed(value, "points", list, "a non-empty list of parameter overrides")
        if not raw:
            raise self.fail("points", "expected a non-empty list of parameter overrides")
        out = []
        seen: dict[Params, int] = {}
        for i, point in enumerate(raw):
            point = self.mapping(point, f"points[{i}]", tuple(SHORT_NAMES), noun="parameter")
            got = self.params(f"points[{i}]", point, base)
            if got in seen:
                raise self.fail(f"points[{i}]", f"duplicate point (the same parameters as "
                                f"points[{seen[got]}] over the base): each cell must be run once",
                                point)
            seen[got] = i
            out.append(_coerce(point))
        return tuple(out)

    def tpe(self, value: Any, base: Params) -> TpeSpec:
        t = self.mapping(value, "tpe", ("params", "n_trials", "seed", "n_startup_trials", "pruner",
                                        "p_threshold"), required=("params", "n_trials"))
        raw = self.mapping(t["params"], "tpe.params", tuple(SHORT_NAMES), noun="parameter")
        if not raw:
            raise self.fail("tpe.params", "expected at least one parameter range")
        ranges = {name: self.range(r, f"tpe.params.{name}", name, base) for name, r in raw.items()}
        n_trials = self.integer(t["n_trials"], "tpe.n_trials", minimum=1)
        seed = self.integer(t.get("seed", 0), "tpe.seed", minimum=0)
        n_startup = self.integer(t.get("n_startup_trials", 10), "tpe.n_startup_trials", minimum=0)
        pruner = self.typed(t.get("pruner", "none"), "tpe.pruner", str, "none or wilcoxon")
        if pruner not in PRUNERS:
            raise self.fail("tpe.pruner", f"expected one of {list(PRUNERS)}", pruner)
        p = self.number(t.get("p_threshold", 0.1), "tpe.p_threshold")
        if not 0 <= p <= 1:
            raise self.fail("tpe.p_threshold", "expected a number in [0, 1]", p)
        return TpeSpec(ranges, n_trials, seed, n_startup, pruner, float(p))

    def range(self, value: Any, where: str, name: str, base: Params) -> Range:
        if isinstance(value, Mapping) and "choices" in value:
            r = self.mapping(value, where, ("choices",))
            choices = self.typed(r["choices"], f"{where}.choices", list, "a non-empty list of values")
            if not choices:
                raise self.fail(f"{where}.choices", "expected a non-empty list of values")
            for i, v in enumerate(choices):
                self.params(f"{where}.choices[{i}]", {name: v}, base, at_value=True)
            return Range(choices=tuple(_coerce({name: v})[name] for v in choices))
        r = self.mapping(value, where, ("low", "high", "step", "log", "choices"),
                         required=("low", "high"))
        is_int = name in INT_PARAMS
        kind, what = ((int, "an integer") if is_int else ((int, float), "a number"))
        if name == "delta":  # a fraction or a percent string, the one rule of pipeline/delta.py
            r.update({k: self.params(f"{where}.{k}", {name: r[k]}, base, at_value=True).min_region_frac
                      for k in ("low", "high")})
        low = self.typed(r["low"], f"{where}.low", kind, what)
        high = self.typed(r["high"], f"{where}.high", kind, what)
        self.params(f"{where}.low", {name: low}, base, at_value=True)
        self.params(f"{where}.high", {name: high}, base, at_value=True)
        if low > high:
            raise self.fail(f"{where}.high", f"expected high >= low ({low})", high)
        log = self.typed(r.get("log", False), f"{where}.log", bool, "true or false")
        step = r.get("step")
        if step is not None:
            self.typed(step, f"{where}.step", kind, what)
            if step <= 0:
                raise self.fail(f"{where}.step", "expected a positive step", step)
            if log:
                raise self.fail(f"{where}.step", "expected either step or log: true, not both")
        if log and low <= 0:
            raise self.fail(f"{where}.low", "expected low > 0 on a log scale", low)
        if not is_int:
            low, high = float(low), float(high)
            step = float(step) if step is not None else None
        return Range(low=low, high=high, step=step, log=log)


def _join(where: str, key: Any) -> str:
    return f"{where}.{key}" if where else str(key)
