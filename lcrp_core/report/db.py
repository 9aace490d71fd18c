"""`lcrp db`: the trial database as terminal tables, flat exports, and reference imports.

Listing, showing and exporting are pure functions of StudyData; ``import_reference`` writes
a study of reference rows (numbers from papers) with the trial schema of docs/trial-schema.md.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lcrp_core import schema
from lcrp_core.errors import ConfigError, DataError
from lcrp_core.pipeline.params import Params
from lcrp_core.report.fmt import (
    DASH,
    format_param,
    format_params,
    format_score,
    label,
    order_names,
    parse_delta,
)
from lcrp_core.report.study import (
    STATES,
    StudyData,
    quiet_optuna,
    read_study,
    storage_exists,
    study_names,
)
from lcrp_core.report.tables import Header, Table, header, to_text
from lcrp_core.sweep.queue import name_objective
from lcrp_core.sweep.storage import normalize_url, open_storage

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

SORT_KEYS = ("number", "jf", "j", "f", "time")
#: the user_attr each ``--sort`` key other than number and jf (the trial's value) sorts by
_SORT_ATTRS = {"j": schema.J, "f": schema.F, "time": schema.WALL_TIME_S}

# ---------------------------------------------------------------- db studies


def _best(study: StudyData) -> FrozenTrial | None:
    complete = [t for t in study.trials if t.state.name == "COMPLETE" and t.value is not None]
    sign = 1 if study.direction == "maximize" else -1
    return max(complete, key=lambda t: sign * t.value) if complete else None


def studies_table(studies: Sequence[StudyData]) -> Table:
    """One line per study: kind, trials by state, best J&F and its parameters, storage."""
    rows = []
    for study in studies:
        counts = study.state_counts()
        best = _best(study)
        rows.append((study.name, study.kind, *(str(counts[s]) for s in STATES),
                     format_score(best.value if best else None),
                     format_params(_shown_params(best)) if best else DASH, study.url))
    headers = tuple(Header.plain(h) for h in ("study", "kind", *(s.lower() for s in STATES),
                                               "best J&F", "best params", "storage"))
    return Table(headers=headers, rows=tuple(rows), align=("l", "l", *"rrrrr", "r", "l", "l"))


def _shown_params(trial: FrozenTrial) -> dict[str, Any]:
    return {k: v for k, v in trial.params.items() if k != "repeat"} or \
        schema.run_params(trial.user_attrs)


# ---------------------------------------------------------------- db trials

def select_trials(study: StudyData, *, sort: str = "number",
                  states: Iterable[str] | None = None) -> list[FrozenTrial]:
    """Trials in the given states (names as in STATES, any case), sorted by ``sort``
    (number ascending; jf, j, f best first; time longest first; unmeasured last)."""
    wanted = {s.upper() for s in states} if states else None
    if wanted and (bad := sorted(wanted - set(STATES))):
        raise ConfigError(f"unknown trial state(s) {bad}; expected some of "
                          f"{[s.lower() for s in STATES]}", key="--state")
    if sort not in SORT_KEYS:
        raise ConfigError(f"expected one of {list(SORT_KEYS)}, got {sort!r}", key="--sort")
    trials = [t for t in study.trials if wanted is None or t.state.name in wanted]
    if sort == "number":
        return sorted(trials, key=lambda t: t.number)

    def score(t: FrozenTrial) -> float | None:
        if sort == "jf":
            return schema.as_number(t.value)
        return schema.number(t.user_attrs, _SORT_ATTRS[sort])

    return sorted(trials, key=lambda t: (score(t) is None, -(score(t) or 0.0), t.number))


def trials_table(study: StudyData, trials: Sequence[FrozenTrial]) -> Table:
    """One line per trial: number, state, cell, parameters, J, F, J&F, wall time, FPS, device."""
    names = order_names({k for t in trials for k in t.params})
    rows = []
    for t in trials:
        attrs = t.user_attrs
        wall = schema.number(attrs, schema.WALL_TIME_S)
        rows.append((
            str(t.number), t.state.name, str(attrs.get(schema.CELL, DASH)),
            *(format_param(n, t.params.get(n)) for n in names),
            format_score(schema.number(attrs, schema.J)), format_score(schema.number(attrs, schema.F)),
            format_score(schema.as_number(t.value)), f"{wall:.1f}" if wall is not None else DASH,
            format_score(schema.number(attrs, schema.FPS)), str(attrs.get(schema.DEVICE) or DASH),
            _one_line(schema.error(attrs) or ""),
        ))
    headers = (*(Header.plain(h) for h in ("#", "state", "cell")), *(header(n) for n in names),
               *(header(n) for n in schema.ITEM_SCORES),
               *(Header.plain(h) for h in ("time s", "fps", "device", "error")))
    align = ("r", "l", "l", *("r",) * len(names), "r", "r", "r", "r", "r", "l", "l")
    return Table(headers=headers, rows=tuple(rows), align=align)


def _one_line(text: Any, width: int = 60) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[:width - 1] + "…"


# ---------------------------------------------------------------- db show

_SCORE_LABELS = {label(k) for k in schema.SCORES}
_SHOWN = {schema.CELL, schema.PARAMS, schema.PER_VIDEO, schema.PER_EXPRESSION,
          schema.PACKAGE_VERSIONS, schema.ERROR, *schema.SCORES, *schema.RESOURCES,
          *schema.PROVENANCE, *schema.MISSES}


def _value(name: str, value: Any) -> str:
    if value is None:
        return DASH
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, float) and name in _SCORE_LABELS:
        return format_score(value, decimals=2)
    if isinstance(value, float) and name != "delta":
        return f"{value:.6g}"
    if isinstance(value, (Mapping, list)):
        return json.dumps(value, sort_keys=True)
    return format_param(name, value)


def _pairs(title: str, items: Iterable[tuple[str, Any]]) -> list[str]:
    items = [(k, v) for k, v in items]
    if not items:
        return []
    width = max(len(k) for k, _ in items)
    return [f"{title}:", *(f"  {k.ljust(width)}  {_value(k, v)}" for k, v in items), ""]


def _scores_table(title: str, scores: Mapping[str, Any]) -> list[str]:
    if not scores:
        return []
    texts = any(isinstance(s, Mapping) and s.get(schema.TEXT) for s in scores.values())
    rows = tuple((str(key), *(format_score(schema.item_score(s, m)) for m in schema.ITEM_SCORES),
                  *((_one_line(s.get(schema.TEXT) or DASH if isinstance(s, Mapping) else DASH),)
                    if texts else ()))
                 for key, s in sorted(scores.items()))
    table = Table(headers=(Header.plain(title), *(header(m) for m in schema.ITEM_SCORES),
                           *((Header.plain("text"),) if texts else ())), rows=rows,
                  align=("l", "r", "r", "r", *(("l",) if texts else ())))
    return [f"{title} ({len(rows)}):", *("  " + line for line in to_text(table).splitlines()), ""]


def trial_text(study: StudyData, number: int) -> str:
    """Everything one trial records: params, scores, per-video and per-expression scores,
    resources, provenance, and any other user_attrs."""
    t = study.trial(number)
    a = t.user_attrs
    head = [f"study {study.name}  trial {t.number}  {t.state.name}"
            + (f"  cell {a[schema.CELL]}" if schema.CELL in a else "")
            + (f"  J&F {format_score(t.value, decimals=2)}" if t.value is not None else ""), ""]
    timing = [("started", t.datetime_start), ("completed", t.datetime_complete),
              ("duration_s", t.duration.total_seconds() if t.duration else None)]
    lines = head + _pairs("Error", [(schema.ERROR, a[schema.ERROR])] if schema.ERROR in a else [])
    lines += _pairs("Params (swept)", ((k, t.params[k]) for k in order_names(t.params)))
    full = schema.run_params(a)
    lines += _pairs("Params (complete run)", ((k, full[k]) for k in order_names(full)))
    lines += _pairs("Scores", ((label(k), a[k]) for k in schema.SCORES if k in a))
    lines += _scores_table("video", schema.per_video(a))
    lines += _scores_table("expression", schema.per_expression(a))
    lines += _pairs("Resources", ((k, a[k]) for k in schema.RESOURCES if k in a))
    lines += _pairs("Failure modes", ((k, a[k]) for k in schema.MISSES if k in a))
    expressions, no_anchor, _ = schema.misses(a)
    if schema.mostly_unanchored(expressions, no_anchor):
        lines += [f"WARNING: {a[schema.NO_ANCHOR_EXPRESSIONS]} of {a[schema.EXPRESSIONS]} "
                  f"expressions had no anchor (no proposal on any of Locate's frames): their masks "
                  f"are empty", ""]
    lines += _pairs("Timing", ((k, str(v) if v is not None and k != "duration_s" else v)
                               for k, v in timing))
    lines += _pairs("Provenance", ((k, a[k]) for k in schema.PROVENANCE if k in a))
    versions = a.get(schema.PACKAGE_VERSIONS)
    if isinstance(versions, Mapping):
        lines += _pairs("Package versions", sorted((str(k), str(v)) for k, v in versions.items()))
    lines += _pairs("Other attributes", sorted((k, v) for k, v in a.items() if k not in _SHOWN))
    return "\n".join(lines).rstrip() + "\n"


# ---------------------------------------------------------------- db export

BASE_COLUMNS = ("study", "number", "state", "value", "datetime_start", "datetime_complete",
                "duration_s")


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping) and value:
        for k, v in value.items():
            _flatten(f"{prefix}.{k}", v, out)
    elif isinstance(value, (Mapping, list, tuple)):
        out[prefix] = json.dumps(value)
    else:
        out[prefix] = value


def export_records(study: StudyData) -> tuple[list[str], list[dict[str, Any]]]:
    """(columns, one flat record per trial): base columns, ``params.<name>``, then
    ``user_attrs.<key>[.<subkey>...]`` (nested mappings flattened with dots; lists as JSON)."""
    records = []
    for t in study.trials:
        rec: dict[str, Any] = {
            "study": study.name, "number": t.number, "state": t.state.name, "value": t.value,
            "datetime_start": t.datetime_start.isoformat() if t.datetime_start else None,
            "datetime_complete": t.datetime_complete.isoformat() if t.datetime_complete else None,
            "duration_s": t.duration.total_seconds() if t.duration else None,
        }
        for name, value in t.params.items():
            rec[f"params.{name}"] = value
        for key, value in t.user_attrs.items():
            _flatten(f"user_attrs.{key}", value, rec)
        records.append(rec)
    keys = {k for r in records for k in r}
    params = [f"params.{n}" for n in order_names({k[7:] for k in keys if k.startswith("params.")})]
    attrs = sorted(k for k in keys if k.startswith("user_attrs."))
    return [*BASE_COLUMNS, *params, *attrs], records


LONG_COLUMNS = ("study", "number", "cell", "video", "item", "expression", "text", *schema.ITEM_SCORES)


def long_records(study: StudyData) -> tuple[list[str], list[dict[str, Any]]]:
    """(columns, one record per (trial, video, expression)) of the COMPLETE trials: ``study,
    number, cell, video, item, expression, text, J, F, JF``, then every pipeline parameter of the
    run (``lcrp_params`` with the trial's params, canonical order, ``repeat`` included).
    Items come from ``per_expression`` (``item`` is its key, ``expression`` the part after the
    video), else from ``per_video`` (``item`` is the video, no expression)."""
    records = []
    for t in study.trials:
        if t.state.name != "COMPLETE":
            continue
        a = t.user_attrs
        params = schema.run_params(a) | dict(t.params)
        per_item = schema.items(a)
        if not isinstance(per_item, Mapping):
            continue
        for key, scores in per_item.items():
            if not isinstance(scores, Mapping):
                continue
            video, _, expression = str(key).partition("/")
            rec = {"study": study.name, "number": t.number, "cell": schema.cell(a),
                   "video": video, "item": str(key), "expression": expression or None,
                   "text": scores.get(schema.TEXT),
                   **{m: schema.item_score(scores, m) for m in schema.ITEM_SCORES}}
            rec.update(params)
            records.append(rec)
    names = order_names({k for r in records for k in r} - set(LONG_COLUMNS))
    return [*LONG_COLUMNS, *names], records


def csv_bytes(columns: Sequence[str], records: Sequence[Mapping[str, Any]]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for rec in records:
        writer.writerow({k: ("" if rec.get(k) is None else rec[k]) for k in columns})
    return buf.getvalue().encode("utf-8")


def parquet_bytes(columns: Sequence[str], records: Sequence[Mapping[str, Any]]) -> bytes:
    """Parquet via pyarrow: numeric columns as int64/float64/bool, anything mixed as text."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError("Parquet export needs pyarrow: pip install pyarrow (or use --format csv)",
                          key="--format") from None
    arrays = {}
    for col in columns:
        values = [rec.get(col) for rec in records]
        present = [v for v in values if v is not None]
        if present and all(isinstance(v, bool) for v in present):
            kind = pa.bool_()
        elif present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
            kind = pa.int64()
        elif present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
            kind = pa.float64()
            values = [float(v) if v is not None else None for v in values]
        else:
            kind = pa.string()
            values = [str(v) if v is not None else None for v in values]
        arrays[col] = pa.array(values, type=kind)
    buf = io.BytesIO()
    pq.write_table(pa.table(arrays), buf)
    return buf.getvalue()


# ---------------------------------------------------------------- db import

REFERENCE_COLUMNS = ("N", "K", "H", "delta", schema.JF)
OPTIONAL_COLUMNS = (schema.J, schema.F)


def read_reference_csv(path: str | Path) -> list[dict[str, Any]]:
    """Rows {N, K, H, delta, JF[, J, F]} of a reference CSV, validated (DataError naming the
    file, line and column). δ is "0.3%" or 0.003; scores are on the 0–100 scale."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError("reference CSV not found", path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the reference CSV ({exc})", path=path) from None
    reader = csv.DictReader(io.StringIO(text))
    fields = [f.strip() for f in reader.fieldnames or []]
    missing = [c for c in REFERENCE_COLUMNS if c not in fields]
    unknown = [c for c in fields if c not in REFERENCE_COLUMNS + OPTIONAL_COLUMNS]
    if missing or unknown:
        raise DataError(f"expected the header {','.join(REFERENCE_COLUMNS)}[,J,F]; "
                        + (f"missing {missing}" if missing else f"unknown column(s) {unknown}"),
                        path=path)
    rows, seen = [], {}
    for line_no, raw in enumerate(reader, start=2):
        raw = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        if not any(raw.values()):
            continue

        def fail(column: str, message: str, line: int = line_no) -> DataError:
            return DataError(message, path=path, key=f"line {line}, column {column}")

        row: dict[str, Any] = {}
        for col in ("N", "K", "H"):
            try:
                row[col] = int(raw[col])
            except ValueError:
                raise fail(col, f"expected an integer, got {raw[col]!r}") from None
        try:
            row["delta"] = parse_delta(raw["delta"])
        except ValueError as exc:
            raise fail("delta", str(exc)) from None
        for col in (schema.JF, *OPTIONAL_COLUMNS):
            text_value = raw.get(col, "")
            if col != schema.JF and not text_value:
                continue
            try:
                value = float(text_value)
            except ValueError:
                raise fail(col, f"expected a score from 0 to 100, got {text_value!r}") from None
            if not (math.isfinite(value) and 0 <= value <= 100):
                raise fail(col, f"expected a score from 0 to 100, got {text_value!r}")
            row[col] = value
        try:
            Params.from_mapping({k: row[k] for k in ("N", "K", "H", "delta")})
        except ConfigError as exc:
            raise fail(exc.key or "?", str(exc).split(": ", 1)[-1]) from None
        key = (row["N"], row["K"], row["H"], row["delta"])
        if key in seen:
            raise fail("N,K,H,delta", f"the same parameters as line {seen[key]}")
        seen[key] = line_no
        rows.append(row)
    if not rows:
        raise DataError("no data rows", path=path)
    for col in (schema.JF, *OPTIONAL_COLUMNS):
        values = [r[col] for r in rows if col in r]
        if values and max(values) <= 1:
            raise DataError(f"every {col} value is at most 1 (largest {max(values):g}): these look "
                            f"like 0–1 scores; write them on the 0–100 scale (e.g. "
                            f"{format_score(100 * max(values))})", path=path, key=f"column {col}")
    return rows


def import_reference(study_name: str, csv_path: str | Path, *, storage: str,
                     source: str | None = None, replace: bool = False) -> int:
    """Store a reference CSV's rows as COMPLETE trials of a new study (lcrp_kind "reference",
    lcrp_cells in row order, user_attrs reference=true and source). Returns the row count.

    An existing study is refused unless ``replace`` and it holds reference rows itself."""
    import optuna
    from optuna.distributions import FloatDistribution, IntDistribution

    from lcrp_core.versions import code_version

    path = Path(csv_path)
    rows = read_reference_csv(path)
    url = normalize_url(storage)
    if storage_exists(url) and study_name in study_names(url):
        existing = read_study(study_name, storage=url)
        if existing.kind != schema.REFERENCE_KIND:
            raise ConfigError(f"study {study_name!r} holds a {existing.kind!r} sweep, not reference "
                              f"rows; import into another study name or storage", key=url)
        if not replace:
            raise ConfigError(f"study {study_name!r} exists; pass --replace to replace its rows",
                              key=url)
    backend = open_storage(url)
    if replace and study_name in [s.study_name for s in backend.get_all_studies()]:
        optuna.delete_study(study_name=study_name, storage=backend)

    source = source or path.name
    names = ("N", "K", "H", "delta")
    dists = {n: (FloatDistribution if n == "delta" else IntDistribution)(
        min(r[n] for r in rows), max(r[n] for r in rows)) for n in names}
    cells = [{"cell": f"c{i:03d}", "params": {n: r[n] for n in names}, "repeat": 0}
             for i, r in enumerate(rows)]
    with quiet_optuna():
        study = optuna.create_study(study_name=study_name, storage=backend, direction="maximize")
    try:
        attrs = schema.study_attrs(
            spec={"reference": {"file": path.name, "source": source, "rows": len(rows)}},
            kind=schema.REFERENCE_KIND, cells=cells, source=source, numeric=False)
        attrs[schema.SPEC_HASH] = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        for key, value in attrs.items():
            study.set_user_attr(key, value)
        name_objective(study)
        for cell, row in zip(cells, rows, strict=True):
            params = Params.from_mapping(cell["params"]).to_short()
            study.add_trial(optuna.trial.create_trial(
                params=dict(cell["params"]), distributions=dists, value=row[schema.JF],
                user_attrs=schema.reference_attrs(cell=cell["cell"], params=params, scores=row,
                                                  source=source, code_version=code_version()),
            ))
    except BaseException:
        optuna.delete_study(study_name=study_name, storage=backend)
        raise
    return len(rows)
