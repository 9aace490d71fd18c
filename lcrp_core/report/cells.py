"""From a study's trials to table rows: one row per swept point, in the study's cell order.

Rules (docs/report-spec.md):
- only COMPLETE trials count;
- a grid/points study lists its cells in ``lcrp_cells``; a trial belongs to the cell named by its
  ``lcrp_cell`` user_attr, or else to the cell whose parameters it carries;
- one trial per (cell, repeat) counts: the lowest-numbered COMPLETE one (a cell run twice, e.g. by
  a parallel GridSampler or a retry, is counted once);
- cells with the same parameters and different repeats form one row: mean and sample standard
  deviation over the repeats;
- a study without cells (TPE) has one row per distinct parameter set, in trial order.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lcrp_core import schema
from lcrp_core.report.fmt import display_value, order_names, param_key, params_match
from lcrp_core.report.study import StudyData

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial


@dataclass(frozen=True)
class Row:
    """One swept point: its parameters (short names, no ``repeat``) and the trials counted."""

    params: Mapping[str, Any]
    trials: tuple[FrozenTrial, ...]
    missing: tuple[str, ...] = ()  # "c003" or "c003/r1" for every (cell, repeat) with no trial

    @property
    def values(self) -> list[float]:
        return [float(t.value) for t in self.trials]

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.trials else None

    @property
    def std(self) -> float | None:
        """Sample standard deviation over repeats; None with fewer than two."""
        return statistics.stdev(self.values) if len(self.trials) > 1 else None

    def attr_stats(self, name: str) -> tuple[float | None, float | None]:
        """(mean, sample std) of a numeric user_attr over the row's trials that recorded it."""
        values = [float(v) for t in self.trials
                  if isinstance(v := t.user_attrs.get(name), (int, float)) and not isinstance(v, bool)]
        if not values:
            return None, None
        return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)

    def per_video(self) -> dict[str, float]:
        """Per-video J&F averaged over the row's trials (``per_video`` user_attr)."""
        sums: dict[str, list[float]] = {}
        for t in self.trials:
            for video, scores in schema.per_video(t.user_attrs).items():
                if (jf := schema.item_score(scores, schema.JF)) is not None:
                    sums.setdefault(video, []).append(jf)
        return {video: statistics.fmean(v) for video, v in sums.items()}

    def items(self) -> dict[str, dict[str, float]]:
        """Per-item J, F, J&F averaged over the row's trials: ``per_expression`` scores where the
        trials stored them (keys ``<video>/<exp>``), else ``per_video`` (keys ``<video>``); an
        item counts only when every trial of the row scored it."""
        per_trial = [schema.items(t.user_attrs) for t in self.trials]
        if not per_trial or not all(isinstance(p, Mapping) and p for p in per_trial):
            return {}
        out = {}
        for key in per_trial[0]:
            scores = [p.get(key) for p in per_trial]
            if all(schema.item_score(s, m) is not None for s in scores for m in schema.ITEM_SCORES):
                out[key] = {m: statistics.fmean(float(s[m]) for s in scores) for m in schema.ITEM_SCORES}
        return out


@dataclass(frozen=True)
class StudyRows:
    """A study's rows plus what was left out, so reports can say so."""

    rows: tuple[Row, ...]
    duplicates: int = 0  # COMPLETE trials not counted because their (cell, repeat) had one
    unmatched: int = 0  # COMPLETE trials that belong to no cell of lcrp_cells
    pending: int = 0  # RUNNING or WAITING trials

    @property
    def missing(self) -> list[str]:
        return [m for row in self.rows for m in row.missing]

    @property
    def complete_rows(self) -> list[Row]:
        return [row for row in self.rows if row.trials]


def trial_params(trial: FrozenTrial) -> dict[str, Any]:
    """Every pipeline parameter of a trial: ``lcrp_params`` overlaid with the trial's params."""
    merged = schema.run_params(trial.user_attrs)
    merged.update(trial.params)
    return merged


def _without_repeat(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k != "repeat"}


def study_rows(study: StudyData) -> StudyRows:
    """The rows of ``study`` (see the module doc)."""
    complete = [t for t in study.trials if t.state.name == "COMPLETE" and t.value is not None]
    pending = sum(t.state.name in ("RUNNING", "WAITING") for t in study.trials)
    if not study.cells:
        return StudyRows(rows=_rows_by_params(complete), pending=pending)

    # (cell id, repeat) slots in spec order, grouped into rows by their parameters.
    slots: dict[tuple[str, int], tuple[Any, ...]] = {}
    row_params: dict[tuple[Any, ...], dict[str, Any]] = {}
    for cell in study.cells:
        params = _without_repeat(cell["params"])
        key = param_key(params)
        row_params.setdefault(key, params)
        slots[(str(cell.get("cell")), int(cell.get("repeat", 0) or 0))] = key
    slots_of_cell: dict[str, list[tuple[str, int]]] = {}
    for slot in slots:
        slots_of_cell.setdefault(slot[0], []).append(slot)

    taken: dict[tuple[str, int], FrozenTrial] = {}
    duplicates = unmatched = 0
    for trial in complete:
        slot = _slot_of(trial, slots, slots_of_cell)
        if slot is None:
            unmatched += 1
        elif slot in taken:
            duplicates += 1
        else:
            taken[slot] = trial

    rows = []
    for key, params in row_params.items():
        mine = [s for s, k in slots.items() if k == key]
        rows.append(Row(
            params=params,
            trials=tuple(sorted((taken[s] for s in mine if s in taken), key=lambda t: t.number)),
            missing=tuple(_slot_label(s, slots_of_cell) for s in mine if s not in taken),
        ))
    return StudyRows(rows=tuple(rows), duplicates=duplicates, unmatched=unmatched, pending=pending)


def _slot_of(trial: FrozenTrial, slots: Mapping[tuple[str, int], Any],
             slots_of_cell: Mapping[str, list[tuple[str, int]]]) -> tuple[str, int] | None:
    repeat = int(trial.params.get("repeat", 0) or 0)
    cell = schema.cell(trial.user_attrs)
    if cell is not None:
        if (str(cell), repeat) in slots:
            return (str(cell), repeat)
        candidates = slots_of_cell.get(str(cell), [])
        return candidates[0] if len(candidates) == 1 else None
    params = trial_params(trial)
    for slot, key in slots.items():
        if slot[1] == repeat and params_match(params, dict(key)):
            return slot
    return None


def _slot_label(slot: tuple[str, int], slots_of_cell: Mapping[str, list[tuple[str, int]]]) -> str:
    return slot[0] if len(slots_of_cell[slot[0]]) == 1 else f"{slot[0]}/r{slot[1]}"


def _rows_by_params(trials: Sequence[FrozenTrial]) -> tuple[Row, ...]:
    groups: dict[tuple[Any, ...], list[FrozenTrial]] = {}
    params_of: dict[tuple[Any, ...], dict[str, Any]] = {}
    for trial in trials:
        params = _without_repeat(trial.params)
        key = param_key(params)
        params_of.setdefault(key, params)
        groups.setdefault(key, []).append(trial)
    return tuple(Row(params=params_of[k], trials=tuple(v)) for k, v in groups.items())


def swept_names(rows: Sequence[Row]) -> list[str]:
    """Parameters whose value differs between rows, in canonical order; if none differ, all."""
    names = order_names({k for row in rows for k in row.params})
    varying = [n for n in names if len({param_key({n: row.params.get(n)}) for row in rows}) > 1]
    return varying or names


def best_indices(rows: Sequence[Row], *, decimals: int = 1) -> frozenset[int]:
    """Rows whose mean, as printed, equals the best printed mean (ties are all best)."""
    shown = {i: display_value(row.mean, decimals=decimals)
             for i, row in enumerate(rows) if row.mean is not None}
    if not shown:
        return frozenset()
    top = max(shown.values())
    return frozenset(i for i, v in shown.items() if v == top)


def select_rows(rows: Sequence[Row], selector: Mapping[str, Any]) -> list[Row]:
    """Rows whose parameters include every item of ``selector``."""
    return [row for row in rows if params_match(row.params, selector)]


def best_row(rows: Sequence[Row]) -> Row | None:
    """The complete row with the highest mean J&F (first in order on a tie)."""
    scored = [row for row in rows if row.mean is not None]
    return max(scored, key=lambda r: r.mean) if scored else None
