"""Cost of reports and `lcrp db` on a sweep-sized study: a 100-cell × 3-repeat points study in
SQLite (300 COMPLETE trials, plus failures), each trial carrying per-video (50 videos) and
per-expression (400 expressions) scores and the full provenance attrs, as the sweep driver
writes them.

Timed: reading the study the way lcrp does (one ``get_all_trials(deepcopy=False)``) against
Optuna's ``load_study(...).trials`` (deep copies) and ``trials_dataframe()``; aggregating rows;
rendering the ablation table in three formats (rows not significantly different from the best
marked, as always with per-item scores), and with J, F, CIs, Δ and Holm-corrected p-values
(``options.ci``/``paired``, 100 rows × 3 scores bootstrapped over 50 videos, 2 × 99 permutation
tests); the flat and the long CSV exports; `lcrp db trials` end to end.
Target: lcrp's read ≥ 1.5× faster than ``load_study().trials``, the whole table path < 2 s.
Writes bench/results/report.json.

Run: python -m bench report
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from bench import write_result

CELLS, REPEATS, VIDEOS, EXPRESSIONS = 100, 3, 50, 400


def _build(url: str) -> None:
    import optuna
    from optuna.distributions import IntDistribution
    from optuna.trial import TrialState, create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rng = np.random.default_rng(0)
    points = [{"N": int(n), "K": int(k)} for n in range(3, 23) for k in range(1, 6)][:CELLS]
    base = {"H": 3, "delta": 0.003, "w_text": 0.5, "w_quality": 0.5, "lam": 1.0}
    cells = [{"cell": f"c{i * REPEATS + r:03d}", "params": {**p, **base}, "repeat": r}
             for i, p in enumerate(points) for r in range(REPEATS)]
    study = optuna.create_study(study_name="big", storage=url, direction="maximize")
    study.set_user_attr("lcrp_kind", "points")
    study.set_user_attr("lcrp_cells", cells)
    dists = {"N": IntDistribution(3, 22), "K": IntDistribution(1, 5), "repeat": IntDistribution(0, REPEATS - 1)}
    trials = []
    for c in cells:
        value = float(60 + c["params"]["N"] / 2 + rng.normal(0, 1))
        per_video = {f"v{v:03d}": {"J": value - 1, "F": value + 1, "JF": value} for v in range(VIDEOS)}
        per_expr = {f"v{e % VIDEOS:03d}/{e}": {"J": value - 1, "F": value + 1, "JF": value}
                    for e in range(EXPRESSIONS)}
        attrs = {"lcrp_cell": c["cell"], "lcrp_params": c["params"], "J": value - 1, "F": value + 1,
                 "JF": value, "per_video": per_video, "per_expression": per_expr, "wall_time_s": 80.0,
                 "frames": 4000, "fps": 50.0, "peak_rss_mb": 3000.0, "peak_gpu_mb": 15000.0,
                 "device": "cuda:0", "host": "node1", "pid": 1, "cache_key": "k", "code_version": "v",
                 "package_versions": {"optuna": "5.0.0"}, "attempt": 0}
        params = {"N": c["params"]["N"], "K": c["params"]["K"], "repeat": c["repeat"]}
        trials.append(create_trial(value=value, params=params, distributions=dists, user_attrs=attrs))
        if rng.random() < 0.05:
            trials.append(create_trial(state=TrialState.FAIL, params=params, distributions=dists,
                                       user_attrs={"lcrp_cell": c["cell"], "error": "OOM"}))
    study.add_trials(trials)


def _time(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    import contextlib
    import io

    import optuna

    from lcrp_core.cli import main as lcrp
    from lcrp_core.report.blocks import Loaded, ablation_panel
    from lcrp_core.report.cells import study_rows
    from lcrp_core.report.db import csv_bytes, export_records, long_records
    from lcrp_core.report.spec import Options
    from lcrp_core.report.study import read_study
    from lcrp_core.report.tables import TableBlock, to_html, to_latex, to_markdown

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'big.db'}"
        t = time.perf_counter()
        _build(url)
        build_s = time.perf_counter() - t
        read_study("big", storage=url)  # warm imports and the SQLAlchemy engine

        study = read_study("big", storage=url)
        rows = {
            "lcrp read (get_all_trials, no copy)": _time(lambda: read_study("big", storage=url)),
            "optuna load_study().trials": _time(lambda: optuna.load_study(study_name="big", storage=url).trials),
            "optuna trials_dataframe()": _time(
                lambda: optuna.load_study(study_name="big", storage=url).trials_dataframe(), 1),
            "aggregate rows": _time(lambda: study_rows(study)),
        }

        def render(options: Options | None = None) -> None:
            loaded = Loaded("big", read_study("big", storage=url))
            table, _, notes = ablation_panel(loaded, columns=("N", "K"), std=True, options=options)
            block = TableBlock(id="big", title="Big", panels=(table,), notes=tuple(notes))
            for fn in (to_markdown, to_html, to_latex):
                fn(block)

        rows["read + aggregate + 3 formats"] = _time(render)
        stats = Options(std=True, scores=("JF", "J", "F"), ci=True, paired=True)
        rows["... with J, F, CIs, Δ and Holm p"] = _time(lambda: render(stats), 1)
        rows["CSV export (flatten + write)"] = _time(lambda: csv_bytes(*export_records(study)), 1)
        rows["long CSV export (trial × expression)"] = _time(lambda: csv_bytes(*long_records(study)), 1)

        def db_trials() -> None:
            with contextlib.redirect_stdout(io.StringIO()):
                lcrp(["db", "trials", "big", "--storage", url, "--sort", "jf", "-q"])

        rows["lcrp db trials --sort jf"] = _time(db_trials)

    ratio = rows["optuna load_study().trials"] / rows["lcrp read (get_all_trials, no copy)"]
    width = max(len(k) for k in rows)
    print(f"study: {CELLS} cells × {REPEATS} repeats, {VIDEOS} videos, {EXPRESSIONS} expressions "
          f"per trial (built in {build_s:.1f} s)")
    for name, seconds in rows.items():
        print(f"  {name:<{width}}  {seconds * 1000:8.1f} ms")
    stats_ratio = rows["... with J, F, CIs, Δ and Holm p"] / rows["read + aggregate + 3 formats"]
    print(f"  table with statistics vs plain: {stats_ratio:.1f}× the time")
    print(f"  lcrp read vs optuna load_study().trials: {ratio:.1f}× faster "
          f"(target ≥ 1.5×); table path {rows['read + aggregate + 3 formats']:.2f} s (target < 2 s)")
    write_result("report", {"cells": CELLS, "repeats": REPEATS, "videos": VIDEOS,
                            "expressions": EXPRESSIONS, "seconds": rows,
                            "read_speedup_vs_optuna": ratio, "stats_vs_plain_table": stats_ratio})


if __name__ == "__main__":
    main()
