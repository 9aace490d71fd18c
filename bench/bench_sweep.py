"""What the sweep driver adds to the evaluations it runs: the same 8-cell points study on the
synthetic benchmark (classical backend, features already cached) evaluated in-process in a loop
by a fresh EvalContext (what one worker does, without the driver), then with `run_sweep` and one worker (SQLite), and with two workers (SQLite and a journal
file). Reports the wall time of each, the driver's overhead per trial (process start, queue
pops, trial records) and the two-worker speedup. Writes bench/results/sweep.json.

Run: python -m bench sweep
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from bench import write_result
from lcrp_core.data.synth import generate
from lcrp_core.pipeline import EvalContext
from lcrp_core.sweep.driver import run_sweep
from lcrp_core.sweep.queue import load_sweep
from lcrp_core.sweep.spec import parse_spec

POINTS = [{"N": n, "K": k} for n in (3, 5, 7, 10) for k in (1, 3)]


def _spec(root: Path, cache: Path, url: str, study: str):
    return parse_spec({"study": study, "dataset": {"kind": "mevis", "root": str(root), "split": "valid"},
                       "backend": {"name": "classical"}, "base": {"preset": "lcrp-mevis"},
                       "points": POINTS, "storage": url, "cache_dir": str(cache)}, source="bench")


def _bookkeeping_s(url: str, study: str) -> float:
    """Mean time a trial spends in the queue's records rather than in its evaluation:
    (complete − start) − wall_time_s over the study's trials."""
    trials = load_sweep(study, url).trials()
    gaps = [(t.datetime_complete - t.datetime_start).total_seconds() - t.user_attrs["wall_time_s"]
            for t in trials]
    return sum(gaps) / len(gaps)


def main() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = generate(tmp / "synth", split="valid", videos=6, seed=0, frames=24, size=(120, 160))
        cache = tmp / "cache"
        spec = _spec(root, cache, f"sqlite:///{tmp}/warm.db", "warm")
        for _pass in ("fill the cache", "timed"):  # then a fresh context over the filled cache
            t0 = time.perf_counter()
            ctx = EvalContext.open(dataset="mevis", root=root, split="valid", backend="classical",
                                   protocol="per-expression", cache_dir=cache)
            for cell in spec.cells():
                ctx.evaluate(cell.params)
            ctx.close()
            t_loop = time.perf_counter() - t0

        runs = {}
        for name, url, workers in (("1 worker, sqlite", f"sqlite:///{tmp}/a.db", 1),
                                   ("2 workers, sqlite", f"sqlite:///{tmp}/b.db", 2),
                                   ("2 workers, journal", f"journal:{tmp}/c.log", 2)):
            study = f"bench{len(runs)}"
            t0 = time.perf_counter()
            result = run_sweep(_spec(root, cache, url, study), workers=workers, progress=False)
            wall = time.perf_counter() - t0
            assert result.computed == len(POINTS) and result.status.done == len(POINTS)
            runs[name] = {"wall_s": wall, "overhead_per_trial_s": (wall - t_loop) / len(POINTS),
                          "bookkeeping_per_trial_s": _bookkeeping_s(url, study)}

    one = runs["1 worker, sqlite"]["wall_s"]
    result = {"trials": len(POINTS), "cpus": os.cpu_count(), "in_process_loop_s": t_loop,
              "runs": runs, "speedup_2_workers_sqlite": one / runs["2 workers, sqlite"]["wall_s"],
              "speedup_2_workers_journal": one / runs["2 workers, journal"]["wall_s"]}
    print(f"sweep: {len(POINTS)} cells on the synthetic benchmark, features cached "
          f"({os.cpu_count()} CPUs)")
    print(f"  {'in-process loop':<24}{t_loop:8.2f} s   (a fresh EvalContext, no driver)")
    for name, r in runs.items():
        print(f"  {name:<24}{r['wall_s']:8.2f} s   overhead {r['overhead_per_trial_s'] * 1000:6.0f} ms/trial"
              f"   records {r['bookkeeping_per_trial_s'] * 1000:5.0f} ms/trial"
              + (f"   speedup {one / r['wall_s']:.2f}x" if name.startswith("2") else ""))
    write_result("sweep", result)
    return result


if __name__ == "__main__":
    main()
