"""The Python API for notebooks: a sweep study, its best configuration, and a re-run, in three lines.

    import lcrp_core
    s = lcrp_core.open_study("demo_davis_nk")         # studies/demo_davis_nk.db, or storage=URL
    ctx = s.eval_context(videos=["synth_000"])        # the study's dataset, backend and cache
    ctx.evaluate(s.best_params).per_video             # {video: {"J": .., "F": .., "JF": ..}}

``s.trials`` is a pandas DataFrame (one row per trial, the columns of ``lcrp db export``);
``s.best_params`` is the configuration ``lcrp report`` marks best. A runnable example:
docs/examples/notebook_api.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from lcrp_core import schema
from lcrp_core.errors import ConfigError
from lcrp_core.pipeline.params import Params
from lcrp_core.report.cells import Row, best_row, study_rows, trial_params
from lcrp_core.report.study import StudyData, read_study
from lcrp_core.sweep.spec import KINDS, SweepSpec, parse_sweep_spec
from lcrp_core.sweep.storage import STUDIES_DIR

if TYPE_CHECKING:
    import pandas as pd
    from optuna.trial import FrozenTrial

    from lcrp_core.pipeline.evaluation import EvalContext


@dataclass(frozen=True)
class Study:
    """One study as stored (read once, when opened): its sweep spec, trials and best row."""

    data: StudyData
    spec: SweepSpec | None  # None for a study not written by `lcrp sweep` (e.g. `lcrp db import`)

    @property
    def name(self) -> str:
        return self.data.name

    @property
    def url(self) -> str:
        """The storage URL the study was found in."""
        return self.data.url

    @property
    def kind(self) -> str:
        """``grid``, ``points``, ``tpe``, ``reference``, or ``unknown``."""
        return self.data.kind

    @property
    def trials(self) -> pd.DataFrame:
        """One row per trial (every state), indexed by trial number: the columns of ``lcrp db
        export`` (``value``, ``params.N``, ``user_attrs.JF``, ``user_attrs.per_video.<video>.JF``,
        ...; see docs/trial-schema.md)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("Study.trials needs pandas: pip install pandas") from None
        from lcrp_core.report.db import export_records

        columns, records = export_records(self.data)
        return pd.DataFrame.from_records(records, columns=columns).set_index("number")

    @cached_property
    def _best(self) -> Row:
        row = best_row(study_rows(self.data).rows)
        if row is None:
            raise ConfigError("the study has no COMPLETE trial yet", path=self.url, key=self.name)
        return row

    @property
    def best_value(self) -> float:
        """J&F (0–100) of the best row: the mean over its repeats."""
        return float(self._best.mean)

    @property
    def best_trial(self) -> FrozenTrial:
        """The best row's first trial (its ``user_attrs`` hold per-video scores, resources, ...)."""
        return self._best.trials[0]

    @property
    def best_params(self) -> Params:
        """The complete parameters of the row ``lcrp report`` marks best (highest mean J&F,
        the first in the study's order on a tie)."""
        values = {k: v for k, v in trial_params(self.best_trial).items() if k != "repeat"}
        return Params.from_mapping(values, base=self.spec.base if self.spec else None)

    def eval_context(self, *, videos: Sequence[str] | None = None, root: str | Path | None = None,
                     cache_dir: str | Path | None = None, device: str = "cpu") -> EvalContext:
        """An EvalContext on the study's dataset, backend and protocol (models load lazily), so
        ``ctx.evaluate(params)`` scores any configuration as a trial of this study would.

        ``videos`` restricts it to those videos (default: the study's); ``root`` and
        ``cache_dir`` replace the spec's paths (relative ones are read from the working
        directory); ``device``: ``cpu`` or ``cuda:N``. Close it with ``ctx.close()``.
        """
        if self.spec is None:
            raise ConfigError(f"study {self.name!r} is a {self.kind!r} study, not a sweep: only "
                              f"studies run by `lcrp sweep` can be re-evaluated", path=self.url)
        from lcrp_core.pipeline.evaluation import EvalContext

        return EvalContext.from_spec(self.spec, videos=videos, root=root, cache_dir=cache_dir,
                                     device=device)


def open_study(name: str, storage: str | None = None, *,
               studies_dir: str | Path = STUDIES_DIR) -> Study:
    """Study ``name`` from ``storage`` (a URL or a .db/.log path), else from its default
    ``studies/<name>.db``, else from the one storage under ``studies_dir`` that holds it
    (as ``lcrp db`` finds studies). Raises :class:`~lcrp_core.report.study.MissingStudy`."""
    data = read_study(name, storage=storage, studies_dir=Path(studies_dir))
    spec = None
    if data.kind in KINDS:  # a sweep's study (not reference rows, not a foreign study)
        spec = parse_sweep_spec(data.user_attrs.get(schema.SPEC), source=f"study {name} in {data.url}",
                          check_root=False)
    return Study(data, spec)
