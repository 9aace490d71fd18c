"""`lcrp sweep submit` on a real one-node SLURM cluster (.ci/start-slurm) against a real
PostgreSQL server (.ci/start-postgres): two worker jobs (one job array, through submitit)
complete a points sweep exactly once per cell although one job is `scancel`ed mid-trial."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections import Counter
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from lcrp_core.cli import main
from lcrp_core.data.synth import generate
from lcrp_core.errors import ConfigError
from lcrp_core.sweep.slurm import SlurmSettings, check_storage_for_jobs, parse_slurm, parse_time
from lcrp_core.sweep.spec import load_sweep_spec
from lcrp_core.sweep.storage import open_storage
from tests.fixtures import HALTING_BACKEND, postgres_or_skip, slurm_or_skip, wait_for_halt
from tests.helpers import synth_spec

POINTS = [{"N": 2, "K": 1}, {"N": 4, "K": 2}, {"N": 8, "K": 3, "H": 1}, {"N": 3, "K": 2}]


def test_slurm_settings_from_the_spec_and_their_errors(tmp_path):
    assert parse_time("4:00:00") == 240 and parse_time("90") == 90 and parse_time("1-00:30") == 1470
    assert parse_time("10:30") == 11
    for bad in ("soon", "0", "1:2:3:4"):
        with pytest.raises(ConfigError, match="slurm.time"):
            parse_time(bad)
    s = parse_slurm({"jobs": 3, "gpus_per_job": 2, "workers_per_device": 4, "time": "2:00:00",
                     "partition": "gpu", "additional": {"qos": "high"}})
    assert s.slots() == ["cuda:0", "cuda:1"] * 4
    params = s.executor_parameters("x")
    assert params["time"] == 120 and params["gpus_per_node"] == 2 and params["partition"] == "gpu"
    assert params["signal_delay_s"] == 90 and parse_slurm({"time": 2}).executor_parameters("x")[
        "signal_delay_s"] == 30
    assert params["cpus_per_task"] == 8 and params["additional_parameters"] == {"qos": "high"}
    assert SlurmSettings().slots() == ["cpu"]
    with pytest.raises(ConfigError, match="slurm.gpus: unknown key"):
        parse_slurm({"gpus": 2})
    with pytest.raises(ConfigError, match="slurm.jobs: expected an integer >= 1, got 0"):
        parse_slurm({"jobs": 0})
    raw = synth_spec(tmp_path, slurm={"jobs": 2, "time": 30})
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(raw))
    spec = load_sweep_spec(path, check_root=False)
    assert spec.slurm["jobs"] == 2 and spec.to_json()["slurm"]["time"] == "30"
    assert spec.hash() == load_sweep_spec(path, check_root=False).hash()  # not result-defining
    with pytest.raises(ConfigError, match="several nodes.*postgresql://"):
        check_storage_for_jobs("journal:x.log", 2)
    check_storage_for_jobs("sqlite:///x.db", 1)


def test_submit_refuses_a_file_storage_for_several_jobs(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(synth_spec(tmp_path, storage=f"sqlite:///{tmp_path}/s.db")))
    assert main(["sweep", "submit", str(path), "--jobs", "2"]) == 2
    err = capsys.readouterr().err
    assert "flock, which does not hold across nodes" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s.db").exists()  # refused before anything was written


@pytest.mark.slurm
@pytest.mark.postgres
def test_two_jobs_complete_every_cell_once_with_one_job_scancelled_mid_trial(tmp_path, capsys):
    slurm_or_skip()
    url = postgres_or_skip()
    study = f"slurm_{uuid.uuid4().hex[:10]}"
    bench = generate(tmp_path / "bench", split="valid", videos=2, seed=5, frames=8, size=(64, 96))
    fifo = tmp_path / "halt.fifo"
    os.mkfifo(fifo)
    raw = synth_spec(bench, study=study, storage=url, cache_dir=str(tmp_path / "cache"),
                     points=POINTS, heartbeat_interval=1, grace_period=3,
                     backend={"name": HALTING_BACKEND, "config": {"halt_fifo": str(fifo)}},
                     slurm={"jobs": 2, "time": "10"})
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    try:
        assert main(["sweep", "submit", str(path), "--log-dir", str(tmp_path / "slurm")]) == 0
        out = capsys.readouterr().out
        job_ids = out.split(":", 1)[1].split("\n", 1)[0].split()
        assert len(job_ids) == 2 and len({j.split("_")[0] for j in job_ids}) == 1  # one array

        pid, _host = wait_for_halt(fifo)  # a worker of one job is mid-trial
        storage = open_storage(url)
        (halted,) = [t for t in optuna.load_study(study_name=study, storage=storage).trials
                     if t.state == TrialState.RUNNING and t.user_attrs.get("pid") == pid]
        job = halted.user_attrs["slurm_job"]
        assert job in job_ids

        assert main(["sweep", "status", study, "--storage", url]) == 0
        assert f"job {job}" in capsys.readouterr().out

        subprocess.run(["scancel", job], check=True, timeout=60)
        array = job.split("_")[0]
        # returns once every job of the array has ended (SLURM's own wait, no polling here)
        subprocess.run(["srun", f"--dependency=afterany:{array}", "--time=1", "true"], check=True,
                       timeout=600, capture_output=True)

        trials = optuna.load_study(study_name=study, storage=storage).trials
        complete = Counter(t.user_attrs["lcrp_cell"] for t in trials if t.state == TrialState.COMPLETE)
        assert complete == {f"c{i:03d}": 1 for i in range(4)}, _logs(tmp_path)
        assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
        (failed,) = [t for t in trials if t.state == TrialState.FAIL]
        assert failed.number == halted.number
        # the job's own stop fails it at once; a job killed outright is caught by heartbeats
        assert failed.user_attrs.get("error", "lost (no heartbeat)") in ("interrupted",
                                                                         "lost (no heartbeat)")
        redo = [t for t in trials if t.state == TrialState.COMPLETE
                and t.user_attrs["lcrp_cell"] == failed.user_attrs["lcrp_cell"]]
        assert redo[0].user_attrs["slurm_job"] != job
        assert {t.user_attrs["slurm_job"] for t in trials if t.state == TrialState.COMPLETE} <= set(job_ids)
    finally:
        subprocess.run(["scancel", "--name", f"lcrp-{study}"], timeout=60)
        try:
            optuna.delete_study(study_name=study, storage=open_storage(url))
        except KeyError:
            pass


def _logs(tmp_path: Path) -> str:
    return "\n".join(f"--- {p}\n{p.read_text()[-3000:]}" for p in sorted((tmp_path / "slurm").rglob("*.err")))


@pytest.mark.slurm
def test_submit_says_in_one_line_when_sbatch_refuses(tmp_path, capsys):
    slurm_or_skip()
    bench = generate(tmp_path / "bench", split="valid", videos=1, seed=2, frames=2, size=(64, 96))
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(synth_spec(bench, storage=f"sqlite:///{tmp_path}/s.db")))
    assert main(["sweep", "submit", str(path), "--partition", "no-such-partition",
                 "--log-dir", str(tmp_path / "slurm")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lcrp sweep: error: slurm: sbatch refused the jobs: ")
    assert "partition" in err.lower() and len(err.splitlines()) == 1


@pytest.mark.slurm
def test_extract_submit_shards_videos_over_jobs_and_resumes(tmp_path, capsys):
    slurm_or_skip()
    from lcrp_core.cache.extract import ExtractJob, extract

    bench = generate(tmp_path / "bench", split="valid", videos=3, seed=2, frames=4, size=(64, 96))
    cache = tmp_path / "cache"
    args = ["extract", "--dataset", "mevis", "--root", str(bench), "--split", "valid",
            "--cache-dir", str(cache), "--submit", "--jobs", "2", "--time", "5",
            "--log-dir", str(tmp_path / "slurm")]
    assert main(args) == 0
    job_ids = capsys.readouterr().out.split(":", 1)[1].split("\n", 1)[0].split()
    assert len(job_ids) == 2
    subprocess.run(["srun", f"--dependency=afterany:{job_ids[0].split('_')[0]}", "--time=1", "true"],
                   check=True, timeout=600, capture_output=True)
    # every video was extracted by one of the jobs: here nothing is left to do
    report = extract(ExtractJob(dataset="mevis", root=str(bench), split="valid", backend="classical",
                                backend_config={}, cache_dir=str(cache)), ["cpu"], progress=False)
    assert (report.videos_done, report.videos_skipped) == (0, 3), _logs(tmp_path)
    assert main(args) == 0
    assert "nothing submitted" in capsys.readouterr().out
