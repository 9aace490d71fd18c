"""Sweeps end to end: real worker processes, the real classical pipeline on a tiny synthetic
benchmark, real SQLite and journal storages. Exactly once with two workers, what every trial
records, resume, a worker SIGKILLed mid-trial, joining with `lcrp sweep worker`, TPE."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml
from optuna.trial import TrialState

from lcrp_core import schema
from lcrp_core.cli import main
from lcrp_core.sweep.driver import run_sweep
from lcrp_core.sweep.queue import open_queue, prepare_study
from lcrp_core.sweep.spec import load_sweep_spec, parse_sweep_spec
from lcrp_core.versions import code_version
from tests.fixtures import HALTING_BACKEND, wait_for_halt
from tests.helpers import synth_spec

POINTS = [{"N": 2, "K": 1}, {"N": 4, "K": 2}, {"N": 8, "K": 3, "H": 1}, {"N": 3, "K": 2, "delta": 0.0}]


def spec_for(tmp_path: Path, bench: Path, cache: Path, url: str, **over):
    raw = synth_spec(bench, study="s", storage=url, cache_dir=str(cache), points=POINTS, **over)
    if "tpe" in over:
        del raw["points"]
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_sweep_spec(path)


def trials_by_cell(queue) -> dict[str, list]:
    out: dict[str, list] = {}
    for t in queue.trials():
        out.setdefault(t.user_attrs["lcrp_cell"], []).append(t)
    return out


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_two_workers_run_every_cell_exactly_once_then_resume_computes_nothing(tmp_path, bench,
                                                                             cache, kind):
    url = f"sqlite:///{tmp_path}/s.db" if kind == "sqlite" else f"journal:{tmp_path}/s.log"
    spec = spec_for(tmp_path, bench, cache, url, devices=["cpu", "cpu"])
    result = run_sweep(spec, progress=False)
    assert result.computed == 4 and result.status.done == 4 and result.status.finished

    queue = open_queue("s", url)
    cells = trials_by_cell(queue)
    assert {c: len(ts) for c, ts in cells.items()} == {f"c{i:03d}": 1 for i in range(4)}
    assert all(t.state == TrialState.COMPLETE for ts in cells.values() for t in ts)

    # every trial records what docs/trial-schema.md lists
    videos = sorted(p.name for p in (bench / "valid" / "JPEGImages").iterdir())
    for cell, point in zip(spec.cells(), POINTS, strict=True):
        (t,) = cells[cell.cell]
        a = t.user_attrs
        assert t.params == cell.trial_params == {n: cell.params.to_short()[n] for n in ("N", "K", "H", "delta")}
        assert {k: a["lcrp_params"][k] for k in point} == point
        assert a["lcrp_params"] == cell.params.to_short()
        assert t.value == a["JF"] == pytest.approx((a["J"] + a["F"]) / 2)
        assert 0 <= a["J"] <= 100 and 0 <= a["F"] <= 100
        for key in ("J_recall", "J_decay", "F_recall", "F_decay"):
            assert isinstance(a[key], float)
        assert sorted(a["per_video"]) == videos
        assert all(set(v) == {"J", "F", "JF"} for v in a["per_video"].values())
        assert a["per_expression"] and all("/" in k for k in a["per_expression"])
        assert a["frames"] > 0 and a["fps"] == pytest.approx(a["frames"] / a["wall_time_s"])
        assert a["peak_rss_mb"] > 10 and a["peak_gpu_mb"] is None
        assert a["device"] == "cpu" and a["host"] == os.uname().nodename and a["pid"] != os.getpid()
        assert a["cache_key"] and a["code_version"] == code_version()
        assert {"optuna", "numpy"} <= set(a["package_versions"]) and a["attempt"] == 0
        assert set(a) <= set(schema.TRIAL_KEYS), set(a) - set(schema.TRIAL_KEYS)
    assert set(queue.study.user_attrs) <= set(schema.STUDY_KEYS)
    assert queue.study.user_attrs[schema.SCHEMA_VERSION_ATTR] == schema.SCHEMA_VERSION
    assert len({t.value for ts in cells.values() for t in ts}) > 1  # the points differ

    # resume: the same command computes nothing and adds no trial
    again = run_sweep(spec, progress=False)
    assert again.computed == 0 and again.status.done == 4
    assert len(open_queue("s", url).trials()) == 4


def test_a_worker_killed_mid_trial_loses_no_cell_and_duplicates_none(tmp_path, bench, cache):
    url = f"journal:{tmp_path}/s.log"
    spec_path = tmp_path / "s.yaml"
    fifo = tmp_path / "halt.fifo"
    os.mkfifo(fifo)
    spec_for(tmp_path, bench, cache, url, max_retries=1,
             backend={"name": HALTING_BACKEND, "config": {"halt_fifo": str(fifo)}})
    run = subprocess.Popen([sys.executable, "-m", "lcrp_core", "sweep", "run", str(spec_path),
                            "--workers", "2", "--no-progress"], start_new_session=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        pid, _host = wait_for_halt(fifo)
        queue = open_queue("s", url)
        (halted,) = [t for t in queue.trials() if t.user_attrs.get("pid") == pid
                     and t.state == TrialState.RUNNING]
        number = halted.number
        os.kill(pid, signal.SIGKILL)
        out, err = run.communicate(timeout=300)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    assert run.returncode == 0, err
    assert "4/4 done" in out

    queue = open_queue("s", url)
    cells = trials_by_cell(queue)
    complete = Counter(c for c, ts in cells.items() for t in ts if t.state == TrialState.COMPLETE)
    assert complete == {f"c{i:03d}": 1 for i in range(4)}
    failed = [t for t in queue.trials() if t.state == TrialState.FAIL]
    assert [t.number for t in failed] == [number]
    assert failed[0].user_attrs["error"].startswith(f"lost: worker pid {pid} on ")
    cell = failed[0].user_attrs["lcrp_cell"]
    (redo,) = [t for t in cells[cell] if t.state == TrialState.COMPLETE]
    assert redo.user_attrs["attempt"] == 1 and redo.user_attrs["pid"] != pid
    assert len(queue.trials()) == 5


def test_lcrp_sweep_worker_joins_a_study_and_status_reports_it(tmp_path, bench, cache, capsys):
    url = f"sqlite:///{tmp_path}/s.db"
    prepare_study(spec_for(tmp_path, bench, cache, url))
    assert main(["sweep", "status", "s", "--storage", url]) == 0
    assert "0/4 done, 0 running, 4 waiting, 0 failed" in capsys.readouterr().out

    assert main(["sweep", "worker", "--study", "s", "--storage", url]) == 0
    queue = open_queue("s", url)
    assert sorted(t.user_attrs["lcrp_cell"] for t in queue.trials()) == [f"c{i:03d}" for i in range(4)]
    assert all(t.state == TrialState.COMPLETE for t in queue.trials())
    assert {t.user_attrs["pid"] for t in queue.trials()} == {os.getpid()}

    assert main(["sweep", "status", "s", "--storage", url]) == 0
    out = capsys.readouterr().out
    assert "4/4 done, 0 running, 0 waiting, 0 failed" in out and "best J&F" in out
    assert main(["sweep", "status", "nope", "--storage", url]) == 2


def test_tpe_runs_n_trials_in_total_across_workers(tmp_path, bench, cache):
    url = f"journal:{tmp_path}/s.log"
    tpe = {"params": {"N": {"low": 2, "high": 8}, "K": {"low": 1, "high": 3},
                      "delta": {"low": 0.0005, "high": 0.005, "log": True},
                      "H": {"choices": [0, 1]}},
           "n_trials": 5, "seed": 3, "n_startup_trials": 2, "pruner": "wilcoxon"}
    spec = spec_for(tmp_path, bench, cache, url, tpe=tpe)
    result = run_sweep(spec, workers=2, progress=False)
    assert result.computed == 5 and result.status.done + result.status.pruned == 5

    queue = open_queue("s", url)
    trials = queue.trials()
    assert sorted(t.user_attrs["lcrp_slot"] for t in trials) == [f"t{i:03d}" for i in range(5)]
    assert {t.state for t in trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
    for t in trials:
        assert 2 <= t.params["N"] <= 8 and 1 <= t.params["K"] <= 3 and t.params["H"] in (0, 1)
        assert 0.0005 <= t.params["delta"] <= 0.005
        assert t.user_attrs["lcrp_params"]["w_text"] == spec.base.w_text
        assert sorted(t.intermediate_values) == [0, 1][:len(t.intermediate_values)]
        assert t.intermediate_values  # per-video J&F reported for the pruner
        if t.state == TrialState.COMPLETE:
            assert sorted(t.intermediate_values.values()) == sorted(
                v["JF"] for v in t.user_attrs["per_video"].values())
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 5  # no duplicated draws
    assert run_sweep(spec, progress=False).computed == 0


def test_run_with_a_root_override_and_devices_from_the_cli(tmp_path, bench, cache, capsys):
    raw = synth_spec("data/not-here", study="s", storage=f"sqlite:///{tmp_path}/s.db",
                     cache_dir=str(cache), points=POINTS[:1])
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["sweep", "run", str(path), "--root", str(bench), "--devices", "cpu",
                 "--workers-per-device", "2", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "1/1 done" in out and "1 trial(s) computed by this run" in out
    stored = open_queue("s", f"sqlite:///{tmp_path}/s.db").spec
    assert stored.dataset.root == str(bench)
    assert stored.devices == ("cpu", "cpu") and stored.to_json()["devices"] == ["cpux2"]
    assert parse_sweep_spec(raw | {"dataset": raw["dataset"] | {"root": str(bench)}},
                      source="x").hash() == stored.hash()
