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

from lcrp_core.report.blocks import Loaded, full_params, spec_base, study_warnings, table_block
from lcrp_core.report.cells import Row, best_row, swept_names
from lcrp_core.report.fmt import format_params, params_match
from lcrp_core.report.output import write_files
from lcrp_core.report.spec import Plot, ReportSpec, load_spec
from lcrp_core.report.study import MissingStudy, load_study
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
            out[name] = Loaded(name, load_study(name, storage=storage, studies_dir=studies_dir))
        except MissingStudy as exc:  # "NAME: study not found in ..." → "not found in ..."
            out[name] = Loaded(name, None, problem=str(exc).removeprefix(f"{name}: study "))
    return out


def render_plot(plot: Plot, study: Loaded, *, formats: Sequence[str], dpi: int) -> RenderedPlot:
    """One plot's files, or none and a warning saying why (pure apart from matplotlib)."""
    from lcrp_core.report import plots

    default_titles = {"spread": "per-video J&F", "history": "optimisation history",
                      "importances": "parameter importances"}
    title = plot.title or (f"{plot.study}: {default_titles[plot.kind]}"
                           if plot.kind in default_titles else plot.study)
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
            fig = plots.lines_figure(rows, x=plot.x, series=plot.series, title=title)
        elif plot.kind == "spread":
            groups, reason = _spread_groups(plot, study, rows)
            if not groups:
                return skip(reason)
            if reason:
                warnings.append(f"plot '{plot.id}': {reason}.")
            fig = plots.spread_figure(groups, title=title)
        else:
            try:
                fig = plots.optuna_figure(plot.kind, study.data.trials, direction=study.data.direction,
                                          name=plot.study, title=title)
            except ValueError as exc:
                return skip(str(exc))
        files = {fmt: plots.figure_bytes(fig, fmt, dpi=dpi) for fmt in formats}
    return RenderedPlot(plot, title, files, tuple(dict.fromkeys(warnings)))


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


def render_report(spec: ReportSpec, studies: Mapping[str, Loaded]) -> tuple[dict[str, bytes | str], list[str]]:
    """({file name: content}, warnings) for the whole report."""
    files: dict[str, bytes | str] = {}
    blocks = [table_block(t, studies, std=spec.options.std, options=spec.options) for t in spec.tables]
    renderers = {"md": to_markdown, "html": to_html, "tex": to_latex}
    for block in blocks:
        for fmt in spec.options.table_formats:
            files[f"{block.id}.{fmt}"] = renderers[fmt](block)
        files[f"{block.id}.txt"] = block_text(block)
    rendered = [render_plot(p, studies[p.study], formats=spec.options.plot_formats,
                            dpi=spec.options.dpi) for p in spec.plots]
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
    spec = load_spec(spec_path)
    studies = load_studies(spec.studies, storage=storage or spec.storage, studies_dir=studies_dir)
    files, warnings = render_report(spec, studies)
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
_PLOT_NAMES = {"png": "PNG", "pdf": "PDF"}


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
        out.append(f"## {p.title}\n")
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
        out.append(f"<figcaption>{esc(p.title)}{' — ' + links if links else ''}</figcaption>")
        out += [f'<p class="lcrp-warning"><strong>Warning:</strong> {esc(w)}</p>' for w in p.warnings]
        out.append("</figure>")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"
