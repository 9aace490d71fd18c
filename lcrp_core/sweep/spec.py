"""Sweep specifications: one YAML file per study, validated fully before anything runs.

``load_sweep_spec(path)`` reads and validates a spec; ``parse_sweep_spec(mapping, source=...)`` validates an
already-loaded mapping (the resolved spec a worker reads back from its study). Every error is ONE
:class:`~lcrp_core.errors.ConfigError` naming the file, the key path (``points[2].delta``) and what
was expected. The spec as written is a pydantic model (:class:`SpecFile`, one per section; see
:mod:`lcrp_core.config`); docs/sweep-spec.md lists every key, its type and default.

The resolved spec (:meth:`SweepSpec.to_json`) is itself a valid spec with every default filled
in, so the same parser reads it back. :meth:`SweepSpec.hash` covers only what changes results
(dataset, backend, protocol, base, grid/points/tpe, repeats).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from lcrp_core.config import (
    Model,
    Number,
    at_least,
    checked,
    expect,
    fail,
    keyed,
    message_of,
    one_of,
    typed,
    validate,
)
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

#: Parameters that take integers (N, K, H); the others take numbers.
INT_PARAMS = {short for short, name in SHORT_NAMES.items()
              if Params.model_fields[name].annotation is int}
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
        try:
            return replace(self, storage=_storage(url))
        except ConfigError as exc:
            raise ConfigError(message_of(exc), key="storage") from None

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


def load_sweep_spec(path: str | Path, *, check_root: bool = True) -> SweepSpec:
    """Read and validate the YAML spec at ``path``.

    ``check_root=False`` skips the dataset-root check (to validate specs on a machine without the
    data, e.g. the shipped paper specs in tests).
    """
    path = Path(path)
    data = read_yaml(path, what="sweep spec")
    return parse_sweep_spec(data, source=str(path), check_root=check_root)


def parse_sweep_spec(data: Any, *, source: str, check_root: bool = True) -> SweepSpec:
    """Validate a spec mapping; errors name ``source`` and the key path."""
    spec = validate(SpecFile, data, source=source).build(source)
    if check_root:
        spec.check_root()
    return spec


def _storage(url: str) -> str:
    """``url`` normalized; an unsupported one is refused (a ConfigError)."""
    url = normalize_url(url)
    storage_kind(url)
    return url


def _value(name: str, value: Any, *key: str | int) -> Any:
    """A parameter value as a cell holds it: float parameters given as integers (``delta: 0``)
    become floats, so cells compare equal; δ follows the one rule of pipeline/delta.py
    (``0.003`` or ``"0.3%"``; a bare ``0.3`` is refused with a hint); an error names ``key``."""
    if name == "delta":
        try:
            return parse_delta(value)
        except ValueError as exc:
            raise fail(key, str(exc)) from None
    if name not in INT_PARAMS and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _known(names: Mapping[str, Any]) -> dict[str, Any]:
    for name in names:
        if name not in SHORT_NAMES:
            raise fail(name, f"unknown parameter; expected one of {list(SHORT_NAMES)}")
    return dict(names)


def _overrides(values: Mapping[str, Any]) -> dict[str, Any]:
    """Parameter overrides by short name, each value as a cell holds it."""
    return {name: _value(name, v, name) for name, v in _known(values).items()}


def _params(base: Params, values: Mapping[str, Any], *key: str | int,
            at_value: bool = False) -> Params:
    """``base`` overridden by ``values``; an error names ``key``.<param> (``key`` itself
    when ``at_value``)."""
    with keyed(*key, at_value=at_value):
        return Params.from_mapping(values, base=base)


Overrides = Annotated[dict[str, Any], AfterValidator(_overrides)]
NonEmpty = expect("a non-empty list of values", bool)


def _base(value: dict[str, Any]) -> tuple[str | None, Params]:
    values = dict(value)
    preset = values.pop("preset", None)
    if preset is not None and not isinstance(preset, str):
        raise fail("preset", "expected a preset name", preset)
    if preset is not None and preset not in PRESETS:
        raise fail("preset", f"expected one of {sorted(PRESETS)}", preset)
    return preset, _params(PRESETS.get(preset, Params()), _overrides(values))


def _dataset_kind(kind: str) -> str:
    if kind not in SWEEP_DATASETS:
        extra = " (it has no public ground truth to score)" if kind in DATASET_KINDS else ""
        raise fail(None, f"expected one of {list(SWEEP_DATASETS)}{extra}", kind)
    return kind


def _devices(value: Any) -> tuple[str, ...]:
    if not isinstance(value, (list, str)):
        raise fail(None, "expected a list of devices", value)
    with keyed(at_value=True):
        return tuple(parse_devices(value))


class DatasetSection(Model):
    kind: Annotated[str, typed(str, "a dataset kind"), AfterValidator(_dataset_kind)]
    root: Annotated[str, typed(str, "a folder path")]
    split: Annotated[str, typed(str, "a split name")] | None = None
    videos: Annotated[list[Annotated[str, typed(str, "a video name")]],
                      typed(list, "a list of video names"),
                      expect("at least one video name (or no key)", bool)] | None = None

    def spec(self) -> DatasetSpec:
        from lcrp_core.data import DEFAULT_SPLITS

        return DatasetSpec(self.kind, self.root, self.split or DEFAULT_SPLITS[self.kind],
                           tuple(self.videos) if self.videos is not None else None)


class BackendSection(Model):
    name: Annotated[str, typed(str, "a backend name")]
    config: Annotated[dict[str, Any], typed(dict, "a mapping of config keys")] | None = None
    config_file: Annotated[str, typed(str, "a YAML file path")] | None = None
    random_init: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> BackendSection:
        if {"config", "config_file"} <= self.model_fields_set:
            raise fail("config_file", "expected either config or config_file, not both")
        return self

    def spec(self) -> BackendSpec:
        """The backend's complete config (its file read, defaults filled in), validated."""
        from lcrp_core.backends.base import backend_class, load_backend_config, resolve_config

        with keyed("name", at_value=True):
            cls = backend_class(self.name)
        if self.config_file is not None:
            where = "config_file"
            try:
                config = load_backend_config(self.config_file)
            except ConfigError as exc:
                raise fail(where, str(exc)) from None
        else:
            where, config = "config", self.config or {}
        with keyed():
            resolved = resolve_config(where, cls.Config, config)
        return BackendSpec(self.name, resolved, self.random_init, self.config_file)


class Span(Model):
    """A number range of a TPE dimension (:class:`IntSpan` for N, K, H)."""

    low: Number
    high: Number
    step: Annotated[Number, expect("a positive step", lambda v: v > 0)] | None = None
    log: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> Span:
        if self.low > self.high:
            raise fail("high", f"expected high >= low ({self.low})", self.high)
        if self.step is not None and self.log:
            raise fail("step", "expected either step or log: true, not both")
        if self.log and self.low <= 0:
            raise fail("low", "expected low > 0 on a log scale", self.low)
        return self


class IntSpan(Span):
    low: int
    high: int
    step: Annotated[int, expect("a positive step", lambda v: v > 0)] | None = None


class Choices(Model):
    choices: Annotated[list[Any], NonEmpty]


def _range(name: str, value: Any) -> Range:
    """One TPE dimension of parameter ``name``: choices, or low..high (a step or a log scale)."""
    if isinstance(value, Mapping) and "choices" in value:
        with keyed():
            choices = validate(Choices, value, source=None).choices
        return Range(choices=tuple(_value(name, v, "choices", i) for i, v in enumerate(choices)))
    if name == "delta" and isinstance(value, Mapping):
        value = {**value, **{k: _value(name, value[k], k) for k in ("low", "high") if k in value}}
    is_int = name in INT_PARAMS
    with keyed():
        r = validate(IntSpan if is_int else Span, value, source=None)
    kind = int if is_int else float
    return Range(low=kind(r.low), high=kind(r.high), step=None if r.step is None else kind(r.step),
                 log=r.log)


def _ranges(value: dict[str, Any]) -> dict[str, Range]:
    out = {}
    for name, r in _known(value).items():
        with keyed(name):
            out[name] = _range(name, r)
    return out


class TpeSection(Model):
    params: Annotated[dict[str, Any], expect("at least one parameter range", bool),
                      AfterValidator(_ranges)]
    n_trials: Annotated[int, at_least(1)]
    seed: Annotated[int, at_least(0)] = 0
    n_startup_trials: Annotated[int, at_least(0)] = 10
    pruner: Annotated[str, typed(str, "none or wilcoxon"), one_of(PRUNERS)] = "none"
    p_threshold: Annotated[Number, expect("a number in [0, 1]", lambda v: 0 <= v <= 1)] = 0.1


def _grid(value: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    out = {}
    for name, values in _known(value).items():
        if not isinstance(values, list) or not values:
            raise fail(name, "expected a non-empty list of values", values)
        out[name] = tuple(_value(name, v, name, i) for i, v in enumerate(values))
    return out


def _slurm(value: Any) -> dict[str, Any] | None:
    from lcrp_core.sweep.slurm import SlurmSettings

    with keyed():
        return None if value is None else validate(SlurmSettings, value, source=None).to_json()


def _protocol(name: str) -> str:
    from lcrp_core.pipeline.evaluation import PIPELINE_PROTOCOLS

    if name not in PIPELINE_PROTOCOLS:
        raise fail(None, f"expected one of {list(PIPELINE_PROTOCOLS)}", name)
    return name


class SpecFile(Model):
    """A sweep spec as written (docs/sweep-spec.md); :meth:`build` resolves it."""

    study: Annotated[str, typed(str, "a study name"),
                     expect("a name of letters, digits, '_', '.', '-'", _STUDY_NAME.match)]
    description: str = ""
    dataset: Annotated[DatasetSection, AfterValidator(DatasetSection.spec)]  # → DatasetSpec
    backend: Annotated[BackendSection, AfterValidator(BackendSection.spec)]  # → BackendSpec
    protocol: Annotated[str, typed(str, "a protocol name"), AfterValidator(_protocol)] | None = None
    base: Annotated[dict[str, Any], BeforeValidator(
        lambda v: {"preset": v} if isinstance(v, str) else v), AfterValidator(_base)] = Field(
        {}, validate_default=True)
    grid: Annotated[dict[str, Any], expect("at least one parameter with a list of values", bool),
                    AfterValidator(_grid)] | None = None
    points: Annotated[list[Overrides], typed(list, "a non-empty list of parameter overrides"),
                      expect("a non-empty list of parameter overrides", bool)] | None = None
    tpe: TpeSection | None = None
    repeats: Annotated[int, at_least(1)] = 1
    storage: Annotated[str, typed(str, "a storage URL"), checked(_storage)] | None = None
    devices: Annotated[Any, AfterValidator(_devices)] = Field(["cpu"], validate_default=True)
    cache_dir: Annotated[str, typed(str, "a folder path")] = "cache"
    max_retries: Annotated[int, at_least(0)] = 2
    heartbeat_interval: Annotated[int, at_least(1)] = 30
    grace_period: Annotated[int, at_least(1)] | None = None
    slurm: Annotated[Any, AfterValidator(_slurm)] = None

    @model_validator(mode="after")
    def _cross_checks(self) -> SpecFile:
        present = [k for k in KINDS if getattr(self, k) is not None]
        if len(present) != 1:
            raise fail(present[1] if present else None,
                       f"expected exactly one of {list(KINDS)}, got {present or 'none'}")
        if self.tpe is not None and self.repeats != 1:
            raise fail("repeats", "expected 1 for a tpe study (repeats apply to grid and points)",
                       self.repeats)
        if self.grace_period is not None and self.grace_period <= self.heartbeat_interval:
            raise fail("grace_period", f"expected more than heartbeat_interval "
                       f"({self.heartbeat_interval} s)", self.grace_period)
        base = self.base[1]
        if self.grid is not None:
            self._check_grid(base)
        seen: dict[Params, int] = {}
        for i, point in enumerate(self.points or ()):
            got = _params(base, point, f"points[{i}]")
            if got in seen:
                raise fail(f"points[{i}]", f"duplicate point (the same parameters as "
                           f"points[{seen[got]}] over the base): each cell must be run once", point)
            seen[got] = i
        for name, r in (self.tpe.params if self.tpe else {}).items():
            for key, v in ({f"choices[{i}]": v for i, v in enumerate(r.choices)}
                           if r.choices is not None else {"low": r.low, "high": r.high}).items():
                _params(base, {name: v}, f"tpe.params.{name}.{key}", at_value=True)
        return self

    def _check_grid(self, base: Params) -> None:
        for name, values in self.grid.items():
            seen: dict[Params, int] = {}
            for i, v in enumerate(values):
                got = _params(base, {name: v}, f"grid.{name}[{i}]", at_value=True)
                if got in seen:
                    raise fail(f"grid.{name}[{i}]", f"duplicate value (same as grid.{name}"
                               f"[{seen[got]}]): each cell must be run once", v)
                seen[got] = i
        for combo in itertools.product(*self.grid.values()):
            _params(base, dict(zip(self.grid, combo, strict=True)), "grid")

    def build(self, source: str) -> SweepSpec:
        """The SweepSpec, every default filled in (errors name ``source``)."""
        dataset, backend = self.dataset, self.backend
        kind = next(k for k in KINDS if getattr(self, k) is not None)
        tpe = None
        if self.tpe is not None:
            t = self.tpe
            tpe = TpeSpec(t.params, t.n_trials, t.seed, t.n_startup_trials, t.pruner,
                          float(t.p_threshold))
        return SweepSpec(
            self.study, self.description, dataset, backend,
            self.protocol or DEFAULT_PROTOCOL[dataset.kind], self.base[0], self.base[1], kind,
            self.grid, tuple(self.points) if self.points is not None else None, tpe,
            self.repeats, self.storage or _storage(default_storage_url(self.study)),
            self.devices, self.cache_dir, self.max_retries, self.heartbeat_interval,
            self.grace_period or 4 * self.heartbeat_interval, source, self.slurm)
