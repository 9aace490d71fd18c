"""Report specifications (YAML in reports/): which studies feed which tables and plots.

Every key is described in docs/report-spec.md. ``load_report_spec`` validates the whole file and raises
one ConfigError naming the file and the key path (``tables[1].panels[0].columns``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lcrp_core.errors import ConfigError
from lcrp_core.pipeline.params import SHORT_NAMES
from lcrp_core.report.fmt import format_number, parse_delta
from lcrp_core.yamlfile import read_yaml

TABLE_FORMATS = ("md", "html", "tex")
PLOT_FORMATS = ("png", "pdf")
PLOT_KINDS = ("heatmap", "lines", "spread", "forest", "masks", "history", "importances")
SCORE_COLUMNS = ("JF", "J", "F")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
#: Output names that cannot be used: reports/literature/ holds checked-in reference data.
RESERVED_NAMES = ("literature",)


@dataclass(frozen=True)
class Options:
    """``options:`` — std: show ± sample standard deviation over repeats (seeds); scores: the
    score columns (J&F, J, F); ci: a 95 % bootstrap CI over videos in each score cell; paired:
    Δ J&F against the reference row with its CI and a Holm-corrected paired p-value; alpha: the
    significance level of the marks; seed, n_resamples: of the bootstrap and permutation test."""

    std: bool = False
    table_formats: tuple[str, ...] = TABLE_FORMATS
    plot_formats: tuple[str, ...] = PLOT_FORMATS
    dpi: int = 300
    scores: tuple[str, ...] = ("JF",)
    ci: bool = False
    paired: bool = False
    alpha: float = 0.05
    seed: int = 0
    n_resamples: int = 9999


@dataclass(frozen=True)
class Panel:
    """One table of a side-by-side ablation: a study, the parameter columns to show (None: the
    parameters that vary across the study's rows) and the reference row of Δ (None: the sweep
    spec's base configuration); ``top``: only the k best rows, best first (a TPE study's top-k)."""

    study: str
    columns: tuple[str, ...] | None = None
    reference: Mapping[str, Any] | None = None
    top: int | None = None


@dataclass(frozen=True)
class AblationTable:
    id: str
    title: str
    panels: tuple[Panel, ...]
    note: str = ""


@dataclass(frozen=True)
class ResourceRow:
    """A literature row (values as printed) or a measured row (``study``, optional ``params``
    selecting the configuration; the best row when absent). Literal values override measured."""

    method: str
    learnable_params: str | None = None
    training_memory: str | None = None
    inference_memory: str | None = None
    fps: str | None = None
    study: str | None = None
    params: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class ResourceTable:
    id: str
    title: str
    rows: tuple[ResourceRow, ...]
    note: str = ""


@dataclass(frozen=True)
class Plot:
    """``kind``: heatmap (x, y), lines (x, series), spread (base), forest (base), masks (base,
    top, frames, gif), history, importances."""

    id: str
    kind: str
    study: str
    title: str = ""
    x: str | None = None
    y: str | None = None
    series: str | None = None
    base: Mapping[str, Any] | None = None
    top: int = 2
    frames: int = 4
    gif: bool = False


@dataclass(frozen=True)
class ReportSpec:
    path: Path
    name: str
    title: str
    storage: str | None
    options: Options
    tables: tuple[AblationTable | ResourceTable, ...]
    plots: tuple[Plot, ...]

    @property
    def studies(self) -> list[str]:
        """Every study the report reads, in first-use order."""
        names: list[str] = []
        for table in self.tables:
            names += [p.study for p in table.panels] if isinstance(table, AblationTable) else \
                [r.study for r in table.rows if r.study]
        names += [p.study for p in self.plots]
        return list(dict.fromkeys(names))


def load_report_spec(path: str | Path) -> ReportSpec:
    """Read and validate a report spec (YAML)."""
    path = Path(path)
    data = read_yaml(path, what="report spec")
    return parse_report_spec(data, path=path)


class _Reader:
    """Validation helpers that raise ConfigError(path=spec file, key=key path)."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(message, path=self.path, key=key)

    def mapping(self, value: Any, key: str, *, required: tuple[str, ...] = (),
                optional: tuple[str, ...] = ()) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(key, f"expected a mapping, got {type(value).__name__}")
        unknown = [k for k in value if k not in required + optional]
        if unknown:
            raise self.fail(_join(key, str(unknown[0])),
                            f"unknown key; expected one of {sorted(required + optional)}")
        for k in required:
            if value.get(k) is None:
                raise self.fail(_join(key, k), "required key is missing")
        return value

    def text(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"expected a non-empty string, got {value!r}")
        return value

    def ident(self, value: Any, key: str) -> str:
        value = self.text(value, key)
        if not _ID.match(value):
            raise self.fail(key, f"expected a name of letters, digits, '_', '-', '.', got {value!r}")
        return value

    def printed(self, value: Any, key: str) -> str | None:
        """A literature value as printed ("~110.0 M", 0) or None."""
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self.fail(key, f"expected a value as printed (text or number), got {value!r}")
        return value if isinstance(value, str) else format_number(value)

    def seq(self, value: Any, key: str) -> list[Any]:
        if not isinstance(value, list) or not value:
            raise self.fail(key, f"expected a non-empty list, got {value!r}")
        return value

    def param_name(self, value: Any, key: str) -> str:
        if value not in SHORT_NAMES:
            raise self.fail(key, f"expected a parameter name, one of {list(SHORT_NAMES)}, got {value!r}")
        return value

    def selector(self, value: Any, key: str) -> dict[str, Any]:
        value = self.mapping(value, key, optional=tuple(SHORT_NAMES))
        out = {}
        for name, v in value.items():
            if name == "delta":
                try:
                    out[name] = parse_delta(v)
                except ValueError as exc:
                    raise self.fail(_join(key, name), str(exc)) from None
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                out[name] = v
            else:
                raise self.fail(_join(key, name), f"expected a number, got {v!r}")
        return out

    def choices(self, value: Any, key: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
        items = self.seq(value, key)
        for i, item in enumerate(items):
            if item not in allowed:
                raise self.fail(f"{key}[{i}]", f"expected one of {list(allowed)}, got {item!r}")
        return tuple(dict.fromkeys(items))


def _join(key: str, sub: str) -> str:
    return f"{key}.{sub}" if key else sub


def parse_report_spec(data: Any, *, path: Path) -> ReportSpec:
    """Validate a parsed YAML document (see the module doc)."""
    r = _Reader(path)
    if data is None:
        raise r.fail("", "the report spec is empty; expected at least 'tables' or 'plots'")
    top = r.mapping(data, "", optional=("name", "title", "storage", "options", "tables", "plots"))
    name = r.ident(top.get("name", path.stem), "name")
    if name in RESERVED_NAMES:
        raise r.fail("name", f"{name!r} is reserved (reports/{name}/ holds checked-in data)")
    title = r.text(top["title"], "title") if "title" in top else name
    storage = r.text(top["storage"], "storage") if top.get("storage") is not None else None
    options = _options(r, top.get("options") or {})
    tables = tuple(_table(r, t, f"tables[{i}]") for i, t in enumerate(top.get("tables") or []))
    plots = tuple(_plot(r, p, f"plots[{i}]") for i, p in enumerate(top.get("plots") or []))
    if not tables and not plots:
        raise r.fail("tables", "expected at least one table or plot")
    seen: dict[str, str] = {}
    for key, item in [(f"tables[{i}]", t) for i, t in enumerate(tables)] + \
                     [(f"plots[{i}]", p) for i, p in enumerate(plots)]:
        if item.id in seen:
            raise r.fail(f"{key}.id", f"duplicate id {item.id!r} (also {seen[item.id]})")
        seen[item.id] = key
    return ReportSpec(path=path, name=name, title=title, storage=storage, options=options,
                      tables=tables, plots=plots)


def _options(r: _Reader, value: Any) -> Options:
    value = r.mapping(value, "options", optional=("std", "table_formats", "plot_formats", "dpi",
                                                  "scores", "ci", "paired", "alpha", "seed",
                                                  "n_resamples"))
    flags = {}
    for flag in ("std", "ci", "paired"):
        flags[flag] = value.get(flag, False)
        if not isinstance(flags[flag], bool):
            raise r.fail(f"options.{flag}", f"expected true or false, got {flags[flag]!r}")
    alpha = value.get("alpha", Options.alpha)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 0.5:
        raise r.fail("options.alpha", f"expected a significance level between 0 and 0.5, got {alpha!r}")
    seed = value.get("seed", Options.seed)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise r.fail("options.seed", f"expected a non-negative integer, got {seed!r}")
    n_resamples = value.get("n_resamples", Options.n_resamples)
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or not 99 <= n_resamples <= 10**6:
        raise r.fail("options.n_resamples", f"expected an integer from 99 to 1000000, got {n_resamples!r}")
    dpi = value.get("dpi", Options.dpi)
    if isinstance(dpi, bool) or not isinstance(dpi, int) or not 50 <= dpi <= 1200:
        raise r.fail("options.dpi", f"expected an integer from 50 to 1200, got {dpi!r}")
    scores = r.choices(value.get("scores", list(Options.scores)), "options.scores", SCORE_COLUMNS)
    return Options(
        **flags, scores=scores, alpha=float(alpha), seed=seed, n_resamples=n_resamples,
        table_formats=r.choices(value.get("table_formats", list(TABLE_FORMATS)),
                                "options.table_formats", TABLE_FORMATS),
        plot_formats=r.choices(value.get("plot_formats", list(PLOT_FORMATS)),
                               "options.plot_formats", PLOT_FORMATS),
        dpi=dpi,
    )


def _table(r: _Reader, value: Any, key: str) -> AblationTable | ResourceTable:
    kind = value.get("kind") if isinstance(value, Mapping) else None
    if kind == "ablation":
        value = r.mapping(value, key, required=("id", "kind", "panels"), optional=("title", "note"))
        panels = []
        for i, p in enumerate(r.seq(value["panels"], f"{key}.panels")):
            pkey = f"{key}.panels[{i}]"
            if isinstance(p, str):
                panels.append(Panel(study=r.ident(p, pkey)))
                continue
            p = r.mapping(p, pkey, required=("study",), optional=("columns", "reference", "top"))
            columns = None
            if "columns" in p:
                columns = tuple(r.param_name(c, f"{pkey}.columns[{j}]")
                                for j, c in enumerate(r.seq(p["columns"], f"{pkey}.columns")))
            reference = r.selector(p["reference"], f"{pkey}.reference") if p.get("reference") else None
            top = p.get("top")
            if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 1):
                raise r.fail(f"{pkey}.top", f"expected a positive integer, got {top!r}")
            panels.append(Panel(study=r.ident(p["study"], f"{pkey}.study"), columns=columns,
                                reference=reference, top=top))
        return AblationTable(id=r.ident(value["id"], f"{key}.id"),
                             title=r.text(value.get("title", value["id"]), f"{key}.title"),
                             panels=tuple(panels), note=_note(r, value, key))
    if kind == "resources":
        value = r.mapping(value, key, required=("id", "kind", "rows"), optional=("title", "note"))
        rows = []
        for i, row in enumerate(r.seq(value["rows"], f"{key}.rows")):
            rkey = f"{key}.rows[{i}]"
            row = r.mapping(row, rkey, required=("method",),
                            optional=("learnable_params", "training_memory", "inference_memory",
                                      "fps", "study", "params"))
            if "params" in row and "study" not in row:
                raise r.fail(f"{rkey}.params", "'params' selects a configuration of 'study'; "
                                               "give 'study' too")
            rows.append(ResourceRow(
                method=r.text(row["method"], f"{rkey}.method"),
                **{k: r.printed(row.get(k), f"{rkey}.{k}")
                   for k in ("learnable_params", "training_memory", "inference_memory", "fps")},
                study=r.ident(row["study"], f"{rkey}.study") if row.get("study") is not None else None,
                params=r.selector(row["params"], f"{rkey}.params") if row.get("params") else None,
            ))
        return ResourceTable(id=r.ident(value["id"], f"{key}.id"),
                             title=r.text(value.get("title", value["id"]), f"{key}.title"),
                             rows=tuple(rows), note=_note(r, value, key))
    raise r.fail(f"{key}.kind", f"expected 'ablation' or 'resources', got {kind!r}")


def _note(r: _Reader, value: Mapping[str, Any], key: str) -> str:
    return r.text(value["note"], f"{key}.note").strip() if value.get("note") is not None else ""


_PLOT_KEYS = {
    "heatmap": (("x", "y"), ()),
    "lines": (("x", "series"), ()),
    "spread": ((), ("base",)),
    "forest": ((), ("base",)),
    "masks": ((), ("base", "top", "frames", "gif")),
    "history": ((), ()),
    "importances": ((), ()),
}


def _plot(r: _Reader, value: Any, key: str) -> Plot:
    kind = value.get("kind") if isinstance(value, Mapping) else None
    if kind not in _PLOT_KEYS:
        if not isinstance(value, Mapping):
            r.mapping(value, key)
        raise r.fail(f"{key}.kind", f"expected one of {list(PLOT_KINDS)}, got {kind!r}")
    required, optional = _PLOT_KEYS[kind]
    value = r.mapping(value, key, required=("kind", "study", *required),
                      optional=("id", "title", *optional))
    study = r.ident(value["study"], f"{key}.study")
    axes = {a: r.param_name(value[a], f"{key}.{a}") for a in required}
    if len(set(axes.values())) < len(axes):
        raise r.fail(f"{key}.{required[-1]}", f"expected a parameter other than {axes[required[0]]!r}")
    default_id = "_".join([kind, study, *axes.values()])
    extra: dict[str, Any] = {}
    for name, low, high in (("top", 1, 20), ("frames", 1, 12)):
        if name in value:
            n = value[name]
            if isinstance(n, bool) or not isinstance(n, int) or not low <= n <= high:
                raise r.fail(f"{key}.{name}", f"expected an integer from {low} to {high}, got {n!r}")
            extra[name] = n
    if "gif" in value:
        if not isinstance(value["gif"], bool):
            raise r.fail(f"{key}.gif", f"expected true or false, got {value['gif']!r}")
        extra["gif"] = value["gif"]
    return Plot(
        id=r.ident(value.get("id", default_id), f"{key}.id"),
        kind=kind, study=study,
        title=r.text(value["title"], f"{key}.title") if "title" in value else "",
        base=r.selector(value["base"], f"{key}.base") if value.get("base") else None,
        **axes, **extra,
    )
