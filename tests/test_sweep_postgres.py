"""Sweeps on a real PostgreSQL server (LCRP_TEST_POSTGRES_URL, e.g. from .ci/start-postgres):
exactly once with two workers, resume, and a worker on "another machine" (its own UTS namespace,
so another host name) SIGKILLed mid-trial: only its stale heartbeat can tell, and its cell is
re-queued and done exactly once."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections import Counter

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from lcrp_core.sweep.driver import run_sweep
from lcrp_core.sweep.queue import open_queue, prepare_study
from lcrp_core.sweep.spec import load_sweep_spec
from lcrp_core.sweep.storage import open_storage
from tests.fixtures import HALTING_BACKEND, postgres_or_skip, wait_for_halt
from tests.helpers import synth_spec

pytestmark = pytest.mark.postgres



@pytest.fixture(scope="module")
def pg_url() -> str:
    return postgres_or_skip()


@pytest.fixture
def study(pg_url):
    name = f"pg_{uuid.uuid4().hex[:10]}"
    yield name
    optuna.delete_study(study_name=name, storage=open_storage(pg_url))


def make_spec(tmp_path, bench, url, study, **over):
    raw = synth_spec(bench, study=study, storage=url, cache_dir=str(tmp_path / "cache"), **over)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_sweep_spec(path)


def test_two_workers_exactly_once_and_resume_on_postgresql(tmp_path, bench, pg_url, study):
    spec = make_spec(tmp_path, bench, pg_url, study, devices=["cpu", "cpu"])
    result = run_sweep(spec, progress=False)
    assert result.computed == 3 and result.status.done == 3
    trials = open_queue(study, pg_url).trials()
    assert Counter(t.user_attrs["lcrp_cell"] for t in trials) == {"c000": 1, "c001": 1, "c002": 1}
    assert {t.state for t in trials} == {TrialState.COMPLETE}
    assert run_sweep(spec, progress=False).computed == 0
    assert len(open_queue(study, pg_url).trials()) == 3


def test_a_worker_on_another_host_killed_mid_trial_is_recovered_by_heartbeats(
        tmp_path, bench, pg_url, study):
    if shutil.which("unshare") is None or subprocess.run(
            ["unshare", "--uts", "true"], capture_output=True).returncode != 0:
        pytest.skip("cannot start a process with its own host name (unshare --uts needs root)")
    fifo = tmp_path / "halt.fifo"
    os.mkfifo(fifo)
    spec = make_spec(tmp_path, bench, pg_url, study, heartbeat_interval=1, grace_period=2,
                     backend={"name": HALTING_BACKEND, "config": {"halt_fifo": str(fifo)}})
    queue = prepare_study(spec)
    elsewhere = subprocess.Popen(
        ["unshare", "--uts", "sh", "-c", 'hostname lcrp-elsewhere && exec "$@"', "sh",
         sys.executable, "-m", "lcrp_core", "sweep", "worker", "--study", study, "--storage", pg_url,
         "-q"], start_new_session=True)
    try:
        pid, host = wait_for_halt(fifo)
        assert host == "lcrp-elsewhere"
        (halted,) = [t for t in queue.trials() if t.state == TrialState.RUNNING]
        assert halted.user_attrs["host"] == "lcrp-elsewhere" and halted.user_attrs["pid"] == pid
        number = halted.number
        os.kill(pid, signal.SIGKILL)
        elsewhere.wait()
    finally:
        if elsewhere.poll() is None:
            os.killpg(elsewhere.pid, signal.SIGKILL)
            elsewhere.wait()
    assert queue.reap() == []  # another host: the pid check cannot judge it

    # the driver finishes the other cells, waits for the stale heartbeat, re-runs the lost cell
    result = run_sweep(spec, progress=False)
    assert result.status.done == 3 and result.status.finished
    trials = open_queue(study, pg_url).trials()
    complete = Counter(t.user_attrs["lcrp_cell"] for t in trials if t.state == TrialState.COMPLETE)
    assert complete == {"c000": 1, "c001": 1, "c002": 1}
    (lost,) = [t for t in trials if t.state == TrialState.FAIL]
    assert lost.number == number
    (redo,) = [t for t in trials if t.state == TrialState.COMPLETE
               and t.user_attrs["lcrp_cell"] == lost.user_attrs["lcrp_cell"]]
    assert redo.user_attrs["attempt"] == 1 and redo.user_attrs["host"] != "lcrp-elsewhere"
