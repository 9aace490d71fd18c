"""Building the report's tables from studies (pure: study data in, TableBlocks out).

A study the spec names is passed as a ``Loaded`` (its data, or None and the reason it is
missing); every problem — missing study, cells without a complete trial, trials still running,
trials that match no cell, columns that do not tell rows apart — becomes a warning on the table.
A cell run twice is no problem: its first complete run counts (cells.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from lcrp_core import schema
from lcrp_core.pipeline.params import PRESETS, SHORT_NAMES
from lcrp_core.report import significance as sig
from lcrp_core.report.cells import (
    Row,
    StudyRows,
    best_indices,
    best_row,
    select_rows,
    study_rows,
    swept_names,
    trial_params,
)
from lcrp_core.report.fmt import (
    DASH,
    format_param,
    format_params,
    format_score,
    param_key,
    params_match,
)
from lcrp_core.report.spec import AblationTable, Options, ResourceRow, ResourceTable
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


def spec_base(user_attrs: Mapping[str, Any]) -> dict[str, Any] | None:
    """The base parameters a sweep spec names (``lcrp_spec.base``, a preset name allowed)."""
    spec = schema.study_spec(user_attrs)
    base = spec.get("base") if spec is not None else None
    if not isinstance(base, Mapping):
        return None
    params = dict(PRESETS[base["preset"]].to_short()) if base.get("preset") in PRESETS else {}
    params.update({k: v for k, v in base.items() if k in SHORT_NAMES})
    return params or None


def full_params(row: Row) -> dict[str, Any]:
    """Every parameter of a row's runs (the base merged with the swept ones)."""
    return {**trial_params(row.trials[0]), **row.params} if row.trials else dict(row.params)


def reference_row(rows: Sequence[Row], selector: Mapping[str, Any] | None) -> int | None:
    """Index of the complete row at ``selector`` (the best one if several match)."""
    if not selector:
        return None
    matching = [i for i, r in enumerate(rows) if r.trials and params_match(full_params(r), selector)]
    return max(matching, key=lambda i: rows[i].mean) if matching else None


def caption(study: Loaded, items: Mapping[str, Any]) -> str:
    """Dataset, protocol, base configuration and videos/expressions of a study's panel; empty for
    studies without a sweep spec's dataset (reference imports, foreign studies)."""
    assert study.data is not None
    spec = schema.study_spec(study.data.user_attrs)
    dataset = spec.get("dataset") if spec is not None else None
    if not isinstance(dataset, Mapping):
        return ""
    parts = [f"{study.name}: {dataset.get('kind', '?')}"
             + (f" {dataset['split']}" if dataset.get("split") else "")
             + (f" at {dataset['root']}" if dataset.get("root") else "")]
    if spec.get("protocol"):
        parts.append(f"{spec['protocol']} protocol")
    base = spec_base(study.data.user_attrs)
    if base:
        parts.append(f"base {format_params(base)}")
    if items:
        videos = len({sig.video_of(k) for k in items})
        per_item = any("/" in k for k in items)
        parts.append(f"{videos} videos" + (f", {len(items)} expressions" if per_item else ""))
    return ", ".join(parts)


@dataclass(frozen=True)
class PanelStats:
    """Uncertainty of a panel's rows (significance.py), aligned with the rows.

    ``ci[i][metric]``: the row's score and its CI; ``delta[i]``: the row against the reference
    row; ``p_ref[i]`` / ``p_best[i]``: Holm-adjusted p-values against the reference / best row."""

    ci: list[dict[str, sig.Interval] | None]
    delta: list[sig.Paired | None]
    p_ref: list[float | None]
    p_best: list[float | None]
    reference: int | None
    best: int
    videos: int
    items: int
    vs_best: list[sig.Paired | None] = field(default_factory=list)  # rows against the best row
    row_videos: list[int] = field(default_factory=list)  # videos each row has items on (0: none)

    def tied(self, alpha: float) -> frozenset[int]:
        """Rows not significantly different from the best (the † rows)."""
        return frozenset(i for i, p in enumerate(self.p_best) if p is not None and p >= alpha)

    def no_ci(self) -> list[int]:
        """Rows whose scores have no confidence interval (scores on fewer than two videos)."""
        return [i for i, c in enumerate(self.ci) if c and not all(v.defined for v in c.values())]

    def untested(self, against: int | None, paired: Sequence[sig.Paired | None],
                 p: Sequence[float | None]) -> list[int]:
        """Rows compared with row ``against`` that got no test (fewer than two shared videos)."""
        return [i for i, d in enumerate(paired) if i != against and d is not None and p[i] is None]


def panel_stats(rows: Sequence[Row], *, reference: int | None, options: Options) -> PanelStats | None:
    """CIs, Δ against the reference row and tests against the best row, from the rows' per-item
    scores; None when a complete row has no per-item scores or fewer than two rows are complete."""
    items = [row.items() if row.trials else None for row in rows]
    complete = [i for i, row in enumerate(rows) if row.trials]
    if len(complete) < 2 or any(not items[i] for i in complete):
        return None
    kw = {"seed": options.seed, "n_resamples": options.n_resamples}
    ci: list[dict[str, sig.Interval] | None] = [
        {m: sig.item_ci(it, m, **kw) for m in options.scores} if it and options.ci else None
        for it in items]
    best = max(complete, key=lambda i: rows[i].mean)

    def tests(against: int | None, with_ci: bool = True
              ) -> tuple[list[sig.Paired | None], list[float | None]]:
        out: list[sig.Paired | None] = [None] * len(rows)
        p: list[float | None] = [None] * len(rows)
        if against is None:
            return out, p
        for i in complete:
            if i != against:
                out[i] = sig.paired(items[i], items[against], schema.JF, with_ci=with_ci, **kw)
        tested = [i for i, r in enumerate(out) if r is not None and r.p is not None]
        for i, q in zip(tested, sig.holm([out[i].p for i in tested]), strict=True):
            p[i] = q
        return out, p

    delta, p_ref = tests(reference) if options.paired else ([None] * len(rows), [None] * len(rows))
    vs_best, p_best = tests(best, with_ci=False)  # only the p-values: the † marks
    shared = items[best] or {}
    return PanelStats(ci=ci, delta=delta, p_ref=p_ref, p_best=p_best, reference=reference,
                      best=best, videos=len({sig.video_of(k) for k in shared}), items=len(shared),
                      vs_best=vs_best,
                      row_videos=[len({sig.video_of(k) for k in it}) if it else 0 for it in items])


DELTA_HEADER = Header("Δ vs ref", "&Delta; vs ref", r"$\Delta$ vs ref")
P_HEADER = Header("p (Holm)", "<var>p</var> (Holm)", r"$p$ (Holm)")


def _interval(ci: sig.Interval) -> str:
    """`` [a, b]`` (with its leading space), or nothing where no interval is possible."""
    return f" [{ci.low:.1f}, {ci.high:.1f}]" if ci.defined else ""


def _signed(value: float) -> str:
    text = f"{value:+.1f}"
    return "+0.0" if text == "-0.0" else text


def _score_cell(row: Row, metric: str, stats: PanelStats | None, i: int, *, std: bool,
                dagger: bool) -> str:
    mean, sd = (row.mean, row.std) if metric == schema.JF else row.attr_stats(metric)
    text = format_score(mean, sd if std else None)
    intervals = stats.ci[i] if stats is not None else None
    if mean is not None and intervals is not None:
        text += _interval(intervals[metric])
    return text + ("†" if dagger else "")


def _tested_over(pairs: Sequence[sig.Paired | None], tested: Sequence[int]) -> str:
    """"over 10 videos", or "over the 3–10 videos each pair shares" when pairs share different
    numbers of videos."""
    counts = sorted({pairs[i].videos for i in tested if pairs[i] is not None})
    if len(counts) == 1:
        return f"over {counts[0]} videos"
    return f"over the {counts[0]}–{counts[-1]} videos each pair shares" if counts else ""


def _rows_text(rows: Sequence[Row], which: Sequence[int], names: Sequence[str]) -> str:
    """"row (N=5 K=3)" or "rows (N=5 K=3), (N=10 K=5)"."""
    listed = ", ".join(f"({format_params({n: rows[i].params.get(n) for n in names})})" for i in which)
    return ("row " if len(which) == 1 else "rows ") + listed


def _stats_notes(stats: PanelStats, rows: Sequence[Row], options: Options, study: str,
                 tied: frozenset[int], names: Sequence[str]) -> list[str]:
    paired = options.paired and stats.reference is not None
    tested_ref = [i for i, p in enumerate(stats.p_ref) if p is not None]
    tested_best = [i for i, p in enumerate(stats.p_best) if p is not None]
    with_ci = [c for c in stats.ci if c]
    no_ci = stats.no_ci() if options.ci else []
    if not tested_ref and not tested_best and len(no_ci) == len(with_ci):
        # nothing to resample: say so once instead of printing degenerate intervals and p = 1
        what = "no confidence interval or test" if options.ci else "no test"
        shown = "the scores and Δ are" if paired else "the scores are"
        if stats.videos <= 1:
            return [f"{study}: one video: {what} is possible (both need at least two videos); "
                    f"{shown} shown without them and no row is marked †."]
        return [f"{study}: the rows share fewer than two videos: {what} is possible (both need "
                f"at least two videos); {shown} shown without them and no row is marked †."]

    counts = sorted({n for n in stats.row_videos if n >= sig.MIN_VIDEOS})
    if len(counts) > 1 or (counts and counts[0] != stats.videos):  # rows scored on different videos
        unit = (f"{counts[0]}–{counts[-1]} videos of each row" if len(counts) > 1
                else f"{counts[0]} videos") + (", expressions resampled with their video"
                                               if stats.items > stats.videos else "")
    else:
        unit = (f"{stats.videos} videos, their {stats.items} expressions resampled with their video"
                if stats.items > stats.videos else f"{stats.videos} videos")
    notes = []
    if options.ci and len(no_ci) < len(with_ci):
        notes.append(f"{study}: [a, b] is the 95% confidence interval from a bootstrap over the "
                     f"{unit} (BCa, {options.n_resamples} resamples, seed {options.seed})"
                     + ("; ± is the standard deviation over repeats (seeds), reported apart from "
                        "the spread over videos." if options.std and any(len(r.trials) > 1 for r in rows)
                        else "."))
    if no_ci:
        notes.append(f"{study}: {_rows_text(rows, no_ci, names)} "
                     f"{'has' if len(no_ci) == 1 else 'have'} scores on one video only: no "
                     f"confidence interval is possible (it needs at least two videos).")
    if paired and tested_ref:
        test = f"paired permutation test {_tested_over(stats.delta, tested_ref)}, Holm-corrected"
        notes.append(f"{study}: Δ is the paired difference in J&F from the reference row "
                     f"({format_params({n: rows[stats.reference].params.get(n) for n in names})}) with its 95% CI; p is a "
                     f"two-sided {test} over the {len(tested_ref)} rows.")
    untested_ref = stats.untested(stats.reference, stats.delta, stats.p_ref) if paired else []
    if untested_ref:
        notes.append(f"{study}: {_rows_text(rows, untested_ref, names)} "
                     f"{'shares' if len(untested_ref) == 1 else 'share'} fewer than two videos with "
                     f"the reference row: Δ is shown without a confidence interval or p-value (no "
                     f"test is possible on one video).")
    untested_best = stats.untested(stats.best, stats.vs_best, stats.p_best)
    test = f"paired permutation test {_tested_over(stats.vs_best, tested_best)}, Holm-corrected"
    others = len(tested_best)
    some = "tested " if untested_best else ""   # rows without a test are named below
    if others and len(tied) == others:
        notes.append(f"{study}: no {some}row differs significantly from the best one (bold) at "
                     f"α = {options.alpha:g} ({test}): the differences in this table are within "
                     f"noise (all other {some}rows †).")
    elif tied:
        notes.append(f"{study}: † marks rows not significantly different from the best one (bold) "
                     f"at α = {options.alpha:g} ({test}).")
    elif others:
        notes.append(f"{study}: every other {some}row is significantly worse than the best one (bold) at α = {options.alpha:g} ({test}).")
    if untested_best:
        notes.append(f"{study}: {_rows_text(rows, untested_best, names)} "
                     f"{'shares' if len(untested_best) == 1 else 'share'} fewer than two videos with "
                     f"the best row: no test against it is possible, so no † mark.")
    return notes


def ablation_panel(study: Loaded, *, columns: Sequence[str] | None, std: bool,
                   options: Options | None = None, reference: Mapping[str, Any] | None = None,
                   top: int | None = None) -> tuple[Table, list[str], list[str]]:
    """(N, K, J&F)-style table: one row per swept point in cell order, best rows in bold; with
    per-item scores, rows not significantly different from the best marked †, and the score
    columns, CIs and Δ the options ask for; ``top``: the k best rows only, best first. A study
    without cells (TPE) prints its continuous values to two significant digits (δ "0.052%").
    Returns (table, warnings, notes)."""
    options = options or Options(std=std)
    scores = list(options.scores)
    extra = [DELTA_HEADER, P_HEADER] if options.paired else []
    if study.rows is None:
        names = list(columns or ())
        return (Table(headers=(*(header(n) for n in [*names, *scores]), *extra),
                      rows=((DASH,) * (len(names) + len(scores) + len(extra)),)), [], [])
    assert study.data is not None
    rows = study.rows.rows
    if top is not None:
        rows = tuple(sorted(study.rows.complete_rows, key=lambda r: -r.mean)[:top])
    digits = None if study.data.cells else 2
    names = list(columns) if columns else swept_names(study.rows.rows)
    warnings: list[str] = []
    notes: list[str] = []
    ref_params = reference or spec_base(study.data.user_attrs)
    ref = reference_row(rows, ref_params)
    stats = panel_stats(rows, reference=ref, options=options)
    if stats is None and (options.ci or options.paired) and len(study.rows.complete_rows) > 1:
        warnings.append(f"study '{study.name}': no per-video scores in every complete row; "
                        f"no confidence intervals or paired tests.")
    if options.paired and ref is None and stats is not None:
        what = format_params(ref_params) if ref_params else "none given (panel key 'reference')"
        warnings.append(f"study '{study.name}': no complete row at the reference configuration "
                        f"({what}); Δ is not shown.")
    tied = stats.tied(options.alpha) if stats is not None else frozenset()
    if stats is not None:
        notes = _stats_notes(stats, rows, options, study.name, tied, names)
    shown = {param_key({n: r.params.get(n) for n in names}) for r in rows}
    if len(shown) < len(rows):
        hidden = [n for n in swept_names(rows) if n not in names]
        warnings.append(f"study '{study.name}': rows differ in parameters not shown "
                        f"({', '.join(hidden) or 'repeat'}).")
    cells = []
    for i, r in enumerate(rows):
        cell = [format_param(n, r.params.get(n), digits=digits) for n in names]
        cell += [_score_cell(r, m, stats, i, std=std, dagger=m == schema.JF and i in tied) for m in scores]
        if options.paired:
            d = stats.delta[i] if stats is not None else None
            p = stats.p_ref[i] if stats is not None else None
            if stats is not None and i == stats.reference:
                cell += ["ref", DASH]
            else:
                cell += [f"{_signed(d.delta.value)}{_interval(d.delta)}" if d else DASH,
                         sig.format_p(p) if p is not None else DASH]
        cells.append(tuple(cell))
    best_items = rows[stats.best].items() if stats is not None else {}
    return (Table(headers=(*(header(n) for n in [*names, *scores]), *extra), rows=tuple(cells),
                  bold=best_indices(rows), caption=caption(study, best_items)), warnings, notes)


def ablation_block(spec: AblationTable, studies: Mapping[str, Loaded], *, std: bool,
                   options: Options | None = None) -> TableBlock:
    panels, warnings, notes = [], [], []
    for panel in spec.panels:
        study = studies[panel.study]
        table, extra, more = ablation_panel(study, columns=panel.columns, std=std, options=options,
                                            reference=panel.reference, top=panel.top)
        panels.append(table)
        warnings += study_warnings(study) + extra
        notes += more
    return TableBlock(id=spec.id, title=spec.title, panels=tuple(panels), footnote=spec.note,
                      warnings=tuple(dict.fromkeys(warnings)), notes=tuple(notes))


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
            measured["inference_memory"] = _gib(row.attr_stats(schema.PEAK_GPU_MB), std=std)
            fps, fps_sd = row.attr_stats(schema.FPS)
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
                std: bool, options: Options | None = None) -> TableBlock:
    if isinstance(spec, AblationTable):
        return ablation_block(spec, studies, std=std, options=options)
    return resource_block(spec, studies, std=std)
