"""Report specifications (YAML in reports/): which studies feed which tables and plots.

Every key is described in docs/report-spec.md. The spec as written is a pydantic model
(:class:`ReportFile`, one per section; see :mod:`lcrp_core.config`): ``load_report_spec``
validates the whole file and raises one ConfigError naming the file and the key path
(``tables[1].panels[0].columns``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, model_validator

from lcrp_core.config import Model, Number, expect, fail, keyed, one_of, typed, validate
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


def _ident(value: str) -> str:
    if not value.strip():
        raise fail(None, "expected a non-empty string", value)
    if not _ID.match(value):
        raise fail(None, "expected a name of letters, digits, '_', '-', '.'", value)
    return value


def _printed(value: Any) -> str | None:
    """A literature value as printed ("~110.0 M", 0) or None."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise fail(None, "expected a value as printed (text or number)", value)
    return format_number(value)


def _selector(value: dict[str, Any]) -> dict[str, Any] | None:
    """Parameter values selecting a configuration (δ by the one rule of pipeline/delta.py)."""
    out = {}
    for name, v in value.items():
        if name not in SHORT_NAMES:
            raise fail(name, f"unknown key; expected one of {sorted(SHORT_NAMES)}")
        if name == "delta":
            try:
                v = parse_delta(v)
            except ValueError as exc:
                raise fail(name, str(exc)) from None
        elif isinstance(v, bool) or not isinstance(v, (int, float)):
            raise fail(name, "expected a number", v)
        out[name] = v
    return out or None


def _items(allowed: tuple[str, ...], what: str) -> AfterValidator:
    """A non-empty list of ``allowed`` values, as a tuple without repeats."""
    def check(items: Any) -> tuple[str, ...]:
        if not isinstance(items, (list, tuple)) or not items:
            raise fail(None, "expected a non-empty list", items)
        for i, item in enumerate(items):
            if item not in allowed:
                raise fail(i, f"expected {what}one of {list(allowed)}", item)
        return tuple(dict.fromkeys(items))
    return AfterValidator(check)


def _between(low: int, high: int) -> Any:
    """An integer from ``low`` to ``high``; any other value is "expected an integer from .."."""
    what = f"an integer from {low} to {high}"
    return Annotated[int, typed(int, what), expect(what, lambda v: low <= v <= high)]


Ident = Annotated[str, typed(str, "a non-empty string"), AfterValidator(_ident)]
Text = Annotated[str, typed(str, "a non-empty string"), expect("a non-empty string", str.strip)]
Note = Annotated[Text, AfterValidator(str.strip)]
Printed = Annotated[Any, AfterValidator(_printed)]
Selector = Annotated[dict[str, Any], AfterValidator(_selector)]
ParamName = Annotated[str, expect(f"a parameter name, one of {list(SHORT_NAMES)}",
                                  lambda v: v in SHORT_NAMES)]
def _non_empty(item: Any) -> Any:
    """A non-empty list of ``item`` values, as a tuple."""
    return Annotated[list[item], typed(list, "a non-empty list"), expect("a non-empty list", bool),
                     AfterValidator(tuple)]


class Options(Model):
    """``options:`` — std: show ± sample standard deviation over repeats (seeds); scores: the
    score columns (J&F, J, F); ci: a 95 % bootstrap CI over videos in each score cell; paired:
    Δ J&F against the reference row with its CI and a Holm-corrected paired p-value; alpha: the
    significance level of the marks; seed, n_resamples: of the bootstrap and permutation test."""

    std: bool = False
    table_formats: Annotated[Any, _items(TABLE_FORMATS, "")] = TABLE_FORMATS
    plot_formats: Annotated[Any, _items(PLOT_FORMATS, "")] = PLOT_FORMATS
    dpi: _between(50, 1200) = 300
    scores: Annotated[Any, _items(SCORE_COLUMNS, "")] = ("JF",)
    ci: bool = False
    paired: bool = False
    alpha: Annotated[Number, typed((int, float), "a significance level between 0 and 0.5"),
                     expect("a significance level between 0 and 0.5", lambda v: 0 < v < 0.5),
                     AfterValidator(float)] = 0.05
    seed: Annotated[int, expect("a non-negative integer", lambda v: v >= 0)] = 0
    n_resamples: _between(99, 10**6) = 9999


class Panel(Model):
    """One table of a side-by-side ablation: a study, the parameter columns to show (None: the
    parameters that vary across the study's rows) and the reference row of Δ (None: the sweep
    spec's base configuration); ``top``: only the k best rows, best first (a TPE study's top-k).
    A panel written as a string is its study."""

    study: Ident
    columns: Annotated[Any, _items(tuple(SHORT_NAMES), "a parameter name, ")] | None = None
    reference: Selector | None = None
    top: Annotated[int, expect("a positive integer", lambda v: v >= 1)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _study_only(cls, data: Any) -> Any:
        return {"study": data} if isinstance(data, str) else data


class _Table(Model):
    """A table's id, title (its id when absent) and note."""

    id: Ident
    kind: str
    title: Text
    note: Note = ""

    @model_validator(mode="before")
    @classmethod
    def _title(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "title" not in data and "id" in data:
            return {**data, "title": data["id"]}
        return data


class AblationTable(_Table):
    kind: Annotated[str, one_of(("ablation",))] = "ablation"
    panels: _non_empty(Panel)


class ResourceRow(Model):
    """A literature row (values as printed) or a measured row (``study``, optional ``params``
    selecting the configuration; the best row when absent). Literal values override measured."""

    method: Text
    learnable_params: Printed = None
    training_memory: Printed = None
    inference_memory: Printed = None
    fps: Printed = None
    study: Ident | None = None
    params: Selector | None = None

    @model_validator(mode="after")
    def _params_of_a_study(self) -> ResourceRow:
        if "params" in self.model_fields_set and self.study is None:
            raise fail("params", "'params' selects a configuration of 'study'; give 'study' too")
        return self


class ResourceTable(_Table):
    kind: Annotated[str, one_of(("resources",))] = "resources"
    rows: _non_empty(ResourceRow)


def _table(value: Any) -> AblationTable | ResourceTable:
    kind = value.get("kind") if isinstance(value, Mapping) else None
    model = {"ablation": AblationTable, "resources": ResourceTable}.get(kind)
    if model is None:
        raise fail("kind", "expected 'ablation' or 'resources'", kind)
    with keyed():
        return validate(model, value, source=None)


#: plot kind → (the parameter axes it needs, the optional keys it takes)
_PLOT_KEYS = {
    "heatmap": (("x", "y"), ()),
    "lines": (("x", "series"), ()),
    "spread": ((), ("base",)),
    "forest": ((), ("base",)),
    "masks": ((), ("base", "top", "frames", "gif")),
    "history": ((), ()),
    "importances": ((), ()),
}


class Plot(Model):
    """``kind``: heatmap (x, y), lines (x, series), spread (base), forest (base), masks (base,
    top, frames, gif), history, importances. ``id`` defaults to kind_study[_axes]."""

    kind: Annotated[str, one_of(PLOT_KINDS)]
    study: Ident
    id: Ident                   # (after study: a missing study is named, not the id made of it)
    title: Text = ""
    x: ParamName | None = None
    y: ParamName | None = None
    series: ParamName | None = None
    base: Selector | None = None
    top: _between(1, 20) = 2
    frames: _between(1, 12) = 4
    gif: bool = False

    @model_validator(mode="before")
    @classmethod
    def _axes_and_default_id(cls, data: Any) -> Any:
        if not isinstance(data, Mapping) or data.get("kind") not in _PLOT_KEYS:
            return data
        axes = _PLOT_KEYS[data["kind"]][0]
        for axis in axes:
            if axis not in data:
                raise fail(axis, "missing required key")
        parts = [data["kind"], data.get("study"), *(data[a] for a in axes)]
        if "id" not in data and all(isinstance(p, str) for p in parts):
            return {**data, "id": "_".join(parts)}
        return data

    @model_validator(mode="after")
    def _keys_of_its_kind(self) -> Plot:
        axes, optional = _PLOT_KEYS[self.kind]
        allowed = {"kind", "id", "study", "title", *axes, *optional}
        for key in self.model_fields_set - allowed:
            raise fail(key, f"unknown key; expected one of {sorted(allowed)}")
        if len(axes) == 2 and getattr(self, axes[0]) == getattr(self, axes[1]):
            raise fail(axes[1], f"expected a parameter other than {getattr(self, axes[0])!r}")
        return self


class ReportFile(Model):
    """A report spec as written (docs/report-spec.md)."""

    name: Ident
    title: Text | None = None
    storage: Text | None = None
    options: Options | None = None
    tables: Annotated[list[Annotated[Any, AfterValidator(_table)]], AfterValidator(tuple)
                      ] | None = None
    plots: Annotated[list[Plot], AfterValidator(tuple)] | None = None

    @model_validator(mode="after")
    def _cross_checks(self) -> ReportFile:
        if self.name in RESERVED_NAMES:
            raise fail("name", f"{self.name!r} is reserved (reports/{self.name}/ holds checked-in "
                               f"data)")
        if not self.tables and not self.plots:
            raise fail("tables", "expected at least one table or plot")
        seen: dict[str, str] = {}
        for key, item in [(f"tables[{i}]", t) for i, t in enumerate(self.tables or ())] + \
                         [(f"plots[{i}]", p) for i, p in enumerate(self.plots or ())]:
            if item.id in seen:
                raise fail(f"{key}.id", f"duplicate id {item.id!r} (also {seen[item.id]})")
            seen[item.id] = key
        return self


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


def parse_report_spec(data: Any, *, path: Path) -> ReportSpec:
    """Validate a parsed YAML document (see the module doc)."""
    if data is None:
        raise ConfigError("the report spec is empty; expected at least 'tables' or 'plots'",
                          path=path)
    if isinstance(data, Mapping) and "name" not in data:
        data = {"name": path.stem, **data}
    f = validate(ReportFile, data, source=str(path))
    return ReportSpec(path=path, name=f.name, title=f.title or f.name, storage=f.storage,
                      options=f.options or Options(), tables=f.tables or (), plots=f.plots or ())
