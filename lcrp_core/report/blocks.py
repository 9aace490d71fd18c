"""Building the report's tables from studies (pure: study data in, TableBlocks out).

A study the spec names is passed as a ``Loaded`` (its data, or None and the reason it is
missing); every problem — missing study, cells without a complete trial, trials still running,
trials that match no cell, columns that do not tell rows apart — becomes a warning on the table.
A cell run twice is no problem: its first complete run counts (cells.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

from lcrp_core.report.cells import (
    Row,
    StudyRows,
    best_indices,
    best_row,
    select_rows,
    study_rows,
    swept_names,
)
from lcrp_core.report.fmt import DASH, format_param, format_params, format_score, param_key
from lcrp_core.report.spec import AblationTable, ResourceRow, ResourceTable
from lcrp_core.report.study import StudyData
from lcrp_core.report.tables import Header, Table, TableBlock, header


@dataclass(frozen=True)
class Loaded:
    """A study the report asked for: its data, or None and why it is missing."""

    name: str
    data: StudyData | None
    problem: str = ""

    @cached_property
    def rows(self) -> StudyRows | None:
        return study_rows(self.data) if self.data is not None else None


def study_warnings(study: Loaded) -> list[str]:
    """What a reader must know about a study's completeness (empty when all is well)."""
    if study.data is None:
        return [f"study '{study.name}' is missing ({study.problem}); its rows are not shown."]
    rows = study.rows
    assert rows is not None
    out = []
    done = len(rows.complete_rows)
    if not done:
        out.append(f"study '{study.name}' has no complete trial yet.")
    elif rows.missing:
        listed = ", ".join(rows.missing[:8]) + (", …" if len(rows.missing) > 8 else "")
        total = sum(len(r.trials) for r in rows.rows) + len(rows.missing)
        out.append(f"study '{study.name}' is incomplete: {len(rows.missing)} of {total} cells have "
                   f"no complete trial ({listed}); they are shown as {DASH}.")
    if rows.pending:
        out.append(f"study '{study.name}' still has {rows.pending} running or waiting trial(s).")
    if rows.unmatched:
        out.append(f"study '{study.name}': {rows.unmatched} complete trial(s) match no cell of the "
                   f"study's spec and are not shown.")
    return out


def ablation_panel(study: Loaded, *, columns: Sequence[str] | None, std: bool) -> tuple[Table, list[str]]:
    """(N, K, J&F)-style table: one row per swept point in cell order, best rows in bold."""
    if study.rows is None:
        names = list(columns or ())
        return (Table(headers=tuple(header(n) for n in [*names, "JF"]),
                      rows=((DASH,) * (len(names) + 1),)), [])
    rows = study.rows.rows
    names = list(columns) if columns else swept_names(rows)
    warnings = []
    shown = {param_key({n: r.params.get(n) for n in names}) for r in rows}
    if len(shown) < len(rows):
        hidden = [n for n in swept_names(rows) if n not in names]
        warnings.append(f"study '{study.name}': rows differ in parameters not shown "
                        f"({', '.join(hidden) or 'repeat'}).")
    cells = tuple((*(format_param(n, r.params.get(n)) for n in names),
                   format_score(r.mean, r.std if std else None)) for r in rows)
    return (Table(headers=tuple(header(n) for n in [*names, "JF"]), rows=cells,
                  bold=best_indices(rows)), warnings)


def ablation_block(spec: AblationTable, studies: Mapping[str, Loaded], *, std: bool) -> TableBlock:
    panels, warnings = [], []
    for panel in spec.panels:
        study = studies[panel.study]
        table, extra = ablation_panel(study, columns=panel.columns, std=std)
        panels.append(table)
        warnings += study_warnings(study) + extra
    return TableBlock(id=spec.id, title=spec.title, panels=tuple(panels), footnote=spec.note,
                      warnings=tuple(dict.fromkeys(warnings)))


RESOURCE_HEADERS = tuple(Header.plain(h) for h in (
    "Method", "Learnable params", "Training GPU memory", "Inference GPU memory", "FPS"))


def _gib(stats: tuple[float | None, float | None], *, std: bool) -> str:
    mean, sd = stats
    if mean is None:
        return DASH
    return f"{format_score(mean / 1024, sd / 1024 if std and sd is not None else None)} G"


def resource_row(spec: ResourceRow, study: Loaded | None, *, std: bool) -> tuple[tuple[str, ...], list[str]]:
    """One row of the resource table; a measured row reads ``peak_gpu_mb`` and ``fps`` from the
    selected configuration's trials (mean over repeats). A training-free method has 0 learnable
    parameters and no training memory."""
    measured = {"learnable_params": "0", "training_memory": "0",
                "inference_memory": DASH, "fps": DASH}
    warnings = []
    if study is not None and study.rows is not None:
        rows = study.rows.complete_rows
        if spec.params:
            rows = select_rows(rows, spec.params)
        row: Row | None = best_row(rows)
        if row is None:
            what = f" with {format_params(spec.params)}" if spec.params else ""
            warnings.append(f"study '{study.name}' has no complete trial{what} for the resource "
                            f"row {spec.method!r}.")
        else:
            measured["inference_memory"] = _gib(row.attr_stats("peak_gpu_mb"), std=std)
            fps, fps_sd = row.attr_stats("fps")
            measured["fps"] = format_score(fps, fps_sd if std else None)
    values = [getattr(spec, k) if getattr(spec, k) is not None else measured[k] if spec.study else DASH
              for k in ("learnable_params", "training_memory", "inference_memory", "fps")]
    return (spec.method, *values), warnings


def resource_block(spec: ResourceTable, studies: Mapping[str, Loaded], *, std: bool) -> TableBlock:
    """Method, learnable parameters, training and inference peak GPU memory, FPS."""
    rows, warnings = [], []
    for row_spec in spec.rows:
        study = studies[row_spec.study] if row_spec.study else None
        row, extra = resource_row(row_spec, study, std=std)
        rows.append(row)
        warnings += (study_warnings(study) if study else []) + extra
    table = Table(headers=RESOURCE_HEADERS, rows=tuple(rows), align=("l", "c", "c", "c", "c"))
    return TableBlock(id=spec.id, title=spec.title, panels=(table,), footnote=spec.note,
                      warnings=tuple(dict.fromkeys(warnings)))


def table_block(spec: AblationTable | ResourceTable, studies: Mapping[str, Loaded], *,
                std: bool) -> TableBlock:
    if isinstance(spec, AblationTable):
        return ablation_block(spec, studies, std=std)
    return resource_block(spec, studies, std=std)
