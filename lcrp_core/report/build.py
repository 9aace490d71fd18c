"""`lcrp report SPEC`: every table and plot of a report spec, plus index.html and index.md.

Studies are read once (the I/O edge), everything is rendered in memory (``render_report`` is
pure), then each file is written atomically into ``reports/<name>/``. Missing or incomplete
studies are named in the tables' warnings, in index.html and index.md, and logged as warnings.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lcrp_core import schema
from lcrp_core.report.blocks import Loaded, full_params, spec_base, study_warnings, table_block
from lcrp_core.report.cells import Row, best_row, swept_names
from lcrp_core.report.fmt import format_params, params_match
from lcrp_core.report.output import write_files
from lcrp_core.report.qualitative import Strip
from lcrp_core.report.spec import Options, Plot, ReportSpec, load_report_spec
from lcrp_core.report.study import MissingStudy, read_study
from lcrp_core.report.tables import TableBlock, block_text, to_html, to_latex, to_markdown
from lcrp_core.sweep.storage import STUDIES_DIR

log = logging.getLogger("lcrp.report")


@dataclass(frozen=True)
class ReportResult:
    out_dir: Path
    files: tuple[Path, ...]
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class RenderedPlot:
    plot: Plot
    title: str
    files: Mapping[str, bytes]  # {"png": ..., "pdf": ...}; empty when the plot could not be made
    warnings: tuple[str, ...]


def load_studies(names: Sequence[str], *, storage: str | None,
                 studies_dir: Path = STUDIES_DIR) -> dict[str, Loaded]:
    """Each named study, or a Loaded without data that says why it is missing."""
    out = {}
    for name in names:
        try:
            out[name] = Loaded(name, read_study(name, storage=storage, studies_dir=studies_dir))
        except MissingStudy as exc:  # "NAME: study not found in ..." → "not found in ..."
            out[name] = Loaded(name, None, problem=str(exc).removeprefix(f"{name}: study "))
    return out


def default_title(plot: Plot) -> str:
    """What the figure shows (the study is named in its caption, not in the title)."""
    from lcrp_core.report.fmt import label

    return {
        "heatmap": f"J&F over {label(plot.x or '')} and {label(plot.y or '')}",
        "lines": f"J&F against {label(plot.x or '')}, one line per {label(plot.series or '')}",
        "spread": "Per-video J&F: best and base configurations",
        "forest": "Δ J&F against the reference row",
        "masks": "Largest differences: best row vs reference row",
        "history": "TPE optimisation history",
        "importances": "Parameter importances",
    }[plot.kind]


def render_plot(plot: Plot, study: Loaded, *, formats: Sequence[str], dpi: int,
                options: Options | None = None, strip: Strip | str | None = None) -> RenderedPlot:
    """One plot's files, or none and a warning saying why (pure apart from matplotlib)."""
    from lcrp_core.report import plots

    options = options or Options()
    title = plot.title or default_title(plot)
    warnings = study_warnings(study)
    rows = study.rows.complete_rows if study.rows is not None else []

    def skip(reason: str) -> RenderedPlot:
        return RenderedPlot(plot, title, {}, tuple(dict.fromkeys(
            [*warnings, f"plot '{plot.id}' not drawn: {reason}."])))

    if study.data is None:
        return skip(f"study '{plot.study}' is missing")
    if not rows:
        return skip(f"study '{plot.study}' has no complete trial")
    with plots.paper_style():
        if plot.kind == "heatmap":
            fig = plots.heatmap_figure(rows, x=plot.x, y=plot.y, title=title)
        elif plot.kind == "lines":
            fig = plots.lines_figure(rows, x=plot.x, series=plot.series, title=title,
                                     intervals=_row_intervals(rows, (plot.series, plot.x), options))
        elif plot.kind == "forest":
            forest, reason = _forest(plot, study, options)
            if forest is None:
                return skip(reason)
            labels, intervals, significant, reference = forest
            fig = plots.forest_figure(labels, intervals, significant, reference=reference, title=title)
        elif plot.kind == "spread":
            groups, reason = _spread_groups(plot, study, rows)
            if not groups:
                return skip(reason)
            if reason:
                warnings.append(f"plot '{plot.id}': {reason}.")
            fig = plots.spread_figure(groups, title=title)
        elif plot.kind == "masks":
            from lcrp_core.report.qualitative import strip_figure, strip_gif

            if not isinstance(strip, Strip):
                return skip(strip or "no predictions loaded")
            warnings += [f"plot '{plot.id}': {w}." for w in strip.warnings]
            fig = strip_figure(strip, title=title)
            extra = {"gif": strip_gif(strip)} if plot.gif else {}
            files = {fmt: plots.figure_bytes(fig, fmt, dpi=min(dpi, 200)) for fmt in formats}
            return RenderedPlot(plot, title, {**files, **extra}, tuple(dict.fromkeys(warnings)))
        elif plot.kind == "history":
            fig = plots.history_figure(study.data.trials, direction=study.data.direction, title=title)
        else:
            try:
                importances = plots.param_importances(study.data.trials, direction=study.data.direction,
                                                      name=plot.study)
            except ValueError as exc:
                return skip(str(exc))
            fig = plots.importances_figure(importances, title=title)
        files = {fmt: plots.figure_bytes(fig, fmt, dpi=dpi) for fmt in formats}
    return RenderedPlot(plot, title, files, tuple(dict.fromkeys(warnings)))


def _row_intervals(rows: Sequence[Row], names: Sequence[Any], options: Options
                   ) -> dict[tuple[Any, ...], tuple[float, float]] | None:
    """{values of ``names``: J&F 95 % CI} of the best row at each point, when every row has
    per-item scores (bootstrap over videos, significance.py); else None."""
    from lcrp_core.report import significance as sig
    from lcrp_core.report.plots import best_by

    values, _ = best_by(rows, names)
    out = {}
    for row in rows:
        key = tuple(row.params.get(n) for n in names)
        if key in values and row.mean == values[key] and key not in out:
            items = row.items()
            if not items:
                return None
            ci = sig.item_ci(items, schema.JF, seed=options.seed, n_resamples=options.n_resamples)
            if not ci.defined:  # one video: no interval, so no bar
                continue
            shift = row.mean - ci.value  # centre the interval on the printed mean over repeats
            out[key] = (ci.low + shift, ci.high + shift)
    return out or None


def _forest(plot: Plot, study: Loaded, options: Options):
    """(labels, Δ intervals, significant, reference label) for a forest plot, or None and why."""
    from lcrp_core.report.blocks import panel_stats, reference_row

    assert study.data is not None and study.rows is not None
    rows = study.rows.rows
    selector = plot.base or spec_base(study.data.user_attrs)
    ref = reference_row(rows, selector)
    if ref is None:
        return None, ("no reference row: no complete trial at " + format_params(selector)
                      if selector else "no reference row (plot key 'base') nor a base in the study's spec")
    stats = panel_stats(rows, reference=ref, options=options.model_copy(update={"paired": True}))
    if stats is None:
        return None, "no per-video scores in every complete row"
    names = swept_names(rows)
    shown = [i for i, d in enumerate(stats.delta) if d is not None]
    labels = [format_params({n: rows[i].params.get(n) for n in names}) for i in shown]
    intervals = [(stats.delta[i].delta.value, stats.delta[i].delta.low, stats.delta[i].delta.high)
                 for i in shown]
    significant = [stats.p_ref[i] is not None and stats.p_ref[i] < options.alpha for i in shown]
    reference = format_params({n: rows[ref].params.get(n) for n in names})
    return (labels, intervals, significant, reference), ""


def _spread_groups(plot: Plot, study: Loaded, rows: Sequence[Row]
                   ) -> tuple[list[tuple[str, dict[str, float]]], str]:
    """[(label, per-video J&F)] for the best and the base rows, and a reason for what is absent."""
    assert study.data is not None
    best = best_row(rows)
    base_params = plot.base or spec_base(study.data.user_attrs)
    base = None
    if base_params:
        base = best_row([r for r in rows if params_match(full_params(r), base_params)])
    swept = swept_names(study.rows.rows) if study.rows is not None else []
    groups = []
    for name, row in (("best", best), ("base", base)):
        if row is None or (name == "base" and row is best):
            continue
        per_video = row.per_video()
        if per_video:
            tag = "best = base" if name == "best" and row is base else name
            shown = {k: row.params[k] for k in swept if k in row.params}
            groups.append((f"{tag}\n{format_params(shown)}", per_video))
    if not groups:
        return [], "no per_video scores in the study's trials"
    if base is None:
        return groups, ("no base configuration given (plot key 'base') nor in the study's spec"
                        if not base_params else
                        f"no complete trial at the base configuration {format_params(base_params)}")
    return groups, ""


def load_strips(spec: ReportSpec, studies: Mapping[str, Loaded]) -> dict[str, Strip | str]:
    """{masks plot id: its Strip, or why there is none}: the predictions of the best and the
    reference rows on their most different items, read from the cache (the I/O edge)."""
    from lcrp_core.errors import LcrpError
    from lcrp_core.report.blocks import reference_row
    from lcrp_core.report.qualitative import load_strip

    out: dict[str, Strip | str] = {}
    for plot in spec.plots:
        if plot.kind != "masks":
            continue
        study = studies[plot.study]
        if study.data is None or study.rows is None or not study.rows.complete_rows:
            out[plot.id] = f"study '{plot.study}' has no complete trial"
            continue
        rows = study.rows.rows
        best = best_row(rows)
        selector = plot.base or spec_base(study.data.user_attrs)
        ref = reference_row(rows, selector)
        if best is None or ref is None:
            out[plot.id] = "no complete row at the reference configuration " + (
                format_params(selector) if selector else "(plot key 'base')")
        elif rows[ref] is best:
            out[plot.id] = "the best row is the reference row: nothing to compare"
        else:
            try:
                out[plot.id] = load_strip(study, best, rows[ref], top=plot.top, frames=plot.frames,
                                          names=swept_names(rows))
            except LcrpError as exc:
                out[plot.id] = str(exc)
    return out


def render_report(spec: ReportSpec, studies: Mapping[str, Loaded],
                  strips: Mapping[str, Strip | str] | None = None
                  ) -> tuple[dict[str, bytes | str], list[str]]:
    """({file name: content}, warnings) for the whole report; ``strips`` are the masks plots'
    predictions (load_strips)."""
    files: dict[str, bytes | str] = {}
    blocks = [table_block(t, studies, std=spec.options.std, options=spec.options) for t in spec.tables]
    renderers = {"md": to_markdown, "html": to_html, "tex": to_latex}
    for block in blocks:
        for fmt in spec.options.table_formats:
            files[f"{block.id}.{fmt}"] = renderers[fmt](block)
        files[f"{block.id}.txt"] = block_text(block)
    rendered = [render_plot(p, studies[p.study], formats=spec.options.plot_formats,
                            dpi=spec.options.dpi, options=spec.options,
                            strip=(strips or {}).get(p.id)) for p in spec.plots]
    for r in rendered:
        files.update({f"{r.plot.id}.{fmt}": data for fmt, data in r.files.items()})
    warnings = list(dict.fromkeys(w for item in [*blocks, *rendered] for w in item.warnings))
    files["index.md"] = index_markdown(spec, blocks, rendered, warnings)
    files["index.html"] = index_html(spec, blocks, rendered, warnings)
    return files, warnings


def build_report(spec_path: str | Path, *, out_dir: str | Path | None = None,
                 storage: str | None = None, studies_dir: Path = STUDIES_DIR) -> ReportResult:
    """Render the report spec at ``spec_path`` into ``out_dir`` (default: reports/<name>/ beside
    the spec). ``storage`` overrides the spec's storage for every study."""
    spec = load_report_spec(spec_path)
    studies = load_studies(spec.studies, storage=storage or spec.storage, studies_dir=studies_dir)
    files, warnings = render_report(spec, studies, load_strips(spec, studies))
    target = Path(out_dir) if out_dir is not None else spec.path.parent / spec.name
    written = write_files(target, files)
    for study in studies.values():
        if study.rows is not None and study.rows.duplicates:
            log.info("report %s: study %s: %d repeated run(s) of a cell not counted (the first "
                     "complete run of each cell is)", spec.name, study.name, study.rows.duplicates)
    for w in warnings:
        log.warning("report %s: %s", spec.name, w)
    return ReportResult(out_dir=target, files=tuple(written), warnings=tuple(warnings))


# ---------------------------------------------------------------- index pages

def _links(stem: str, formats: Sequence[str], names: Mapping[str, str]) -> list[tuple[str, str]]:
    return [(names[f], f"{stem}.{f}") for f in formats]


_TABLE_NAMES = {"md": "Markdown", "html": "HTML", "tex": "LaTeX"}
_PLOT_NAMES = {"png": "PNG", "pdf": "PDF", "gif": "GIF"}


def index_markdown(spec: ReportSpec, blocks: Sequence[TableBlock], plots: Sequence[RenderedPlot],
                   warnings: Sequence[str]) -> str:
    out = [f"# {spec.title}\n"]
    if warnings:
        out.append("> **Warning:** this report is incomplete.\n>\n"
                   + "\n".join(f"> - {w}" for w in warnings) + "\n")
    for block in blocks:
        links = " · ".join(f"[{n}]({f})" for n, f in _links(block.id, spec.options.table_formats,
                                                             _TABLE_NAMES))
        out.append(to_markdown(block, level=2) + f"\nFiles: {links}\n")
    for p in plots:
        out.append(f"## {p.title}\n\nStudy `{p.plot.study}`.\n")
        if "png" in p.files:
            out.append(f"![{p.title}]({p.plot.id}.png)\n")
        if p.files:
            out.append("Files: " + " · ".join(f"[{n}]({f})" for n, f in
                                              _links(p.plot.id, list(p.files), _PLOT_NAMES)) + "\n")
        out += [f"> **Warning:** {w}\n" for w in p.warnings]
    return "\n".join(out)


_CSS = """body { font-family: system-ui, sans-serif; max-width: 64em; margin: 2em auto; padding: 0 1em; }
.lcrp-warning, .lcrp-warnings { background: #fff3cd; border-left: 4px solid #d39e00; padding: .4em .8em; }
.lcrp-note { color: #444; }
figure { display: inline-block; margin: 0 1.5em 1.5em 0; vertical-align: top; }
figure img { width: 30em; max-width: 100%; }
td, th { text-align: center; }"""


def index_html(spec: ReportSpec, blocks: Sequence[TableBlock], plots: Sequence[RenderedPlot],
               warnings: Sequence[str]) -> str:
    def esc(text: str) -> str:
        return html.escape(text, quote=False)

    def attr(text: str) -> str:
        return html.escape(text, quote=True)

    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f"<title>{esc(spec.title)}</title>", f"<style>\n{_CSS}\n</style>", "</head>", "<body>",
           f"<h1>{esc(spec.title)}</h1>",
           f"<p>Generated by <code>lcrp report {esc(spec.path.name)}</code>.</p>"]
    if warnings:
        out += ['<div class="lcrp-warnings"><strong>Warning: this report is incomplete.</strong>', "<ul>"]
        out += [f"<li>{esc(w)}</li>" for w in warnings]
        out += ["</ul>", "</div>"]
    if blocks:
        out.append("<h2>Tables</h2>")
    for block in blocks:
        links = " · ".join(f'<a href="{attr(f)}">{n}</a>'
                           for n, f in _links(block.id, spec.options.table_formats, _TABLE_NAMES))
        out += [f'<section id="{attr(block.id)}">', f"<h3>{esc(block.title)}</h3>",
                to_html(block).rstrip("\n"), f"<p>Files: {links}</p>", "</section>"]
    if plots:
        out.append("<h2>Plots</h2>")
    for p in plots:
        links = " · ".join(f'<a href="{attr(f)}">{n}</a>'
                           for n, f in _links(p.plot.id, list(p.files), _PLOT_NAMES))
        out.append(f'<figure id="{attr(p.plot.id)}">')
        if "png" in p.files:
            out.append(f'<img src="{attr(p.plot.id)}.png" alt="{attr(p.title)}">')
        out.append(f"<figcaption>{esc(p.title)} (study {esc(p.plot.study)})"
                   f"{' — ' + links if links else ''}</figcaption>")
        out += [f'<p class="lcrp-warning"><strong>Warning:</strong> {esc(w)}</p>' for w in p.warnings]
        out.append("</figure>")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"
