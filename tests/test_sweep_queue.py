"""The study as a work queue on real SQLite and journal storages: what a study records, resume and
refusal of a changed spec, exactly-once pops across processes, the reaper (a real SIGKILLed
process), retries, and status."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import optuna
import pytest
from optuna.trial import TrialState

from lcrp_core.errors import ConfigError
from lcrp_core.sweep.queue import ProcessId, open_queue, prepare_study
from lcrp_core.sweep.spec import parse_sweep_spec
from lcrp_core.sweep.status import format_status, study_status
from tests.fixtures import make_mevis_dataset
from tests.helpers import synth_spec

STORAGES = {"sqlite": "sqlite:///{}/s.db", "journal": "journal:{}/s.log"}


@pytest.fixture(params=sorted(STORAGES))
def url(request, tmp_path):
    return STORAGES[request.param].format(tmp_path)


def make_spec(tmp_path, url, **over):
    """A points spec (or a grid one when ``grid=`` is given) on a tiny MeViS-layout dataset."""
    if not (tmp_path / "data").exists():
        make_mevis_dataset(tmp_path / "data", split="valid")
    raw = synth_spec(tmp_path / "data", storage=url, **over)
    if "grid" in over:
        del raw["points"]
    return parse_sweep_spec(raw, source="s.yaml")


def popper(url: str, *, hold: bool = False) -> subprocess.Popen:
    """A real process that pops trials (one and holds it until killed, or all of them), printing
    each trial id."""
    code = ("import sys\n"
            "from lcrp_core.sweep.queue import open_queue\n"
            "q = open_queue('s', sys.argv[1])\n"
            "while (t := q.pop(device='cpu')) is not None:\n"
            "    print(t, flush=True)\n"
            "    if sys.argv[2] == 'hold':\n"
            "        sys.stdin.read()\n")
    return subprocess.Popen([sys.executable, "-c", code, url, "hold" if hold else "all"],
                            stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True)


def test_a_new_study_records_the_spec_and_enqueues_every_cell_once(tmp_path, url):
    spec = make_spec(tmp_path, url, repeats=2)
    queue = prepare_study(spec)
    attrs = queue.study.user_attrs
    assert attrs["lcrp_spec"] == spec.to_json()
    assert attrs["lcrp_spec_hash"] == spec.hash() and len(spec.hash()) == 16
    assert attrs["lcrp_kind"] == "points"
    assert attrs["lcrp_cells"] == [
        {"cell": f"c{i:03d}", "params": {**spec.base.to_short(), "N": n, "K": k}, "repeat": r}
        for i, ((n, k), r) in enumerate((p, r) for p in [(2, 1), (3, 2), (4, 3)] for r in (0, 1))]
    assert queue.study.direction == optuna.study.StudyDirection.MAXIMIZE
    trials = queue.trials()
    assert [t.state for t in trials] == [TrialState.WAITING] * 6
    assert [(t.user_attrs["lcrp_cell"], t.user_attrs["attempt"]) for t in trials] == [
        (f"c{i:03d}", 0) for i in range(6)]

    # resuming enqueues nothing new; another process reads the same spec back from the study
    again = prepare_study(make_spec(tmp_path, url, repeats=2))
    assert len(again.trials()) == 6
    assert open_queue("s", url).spec.hash() == spec.hash()


def test_a_changed_spec_is_refused_with_what_differs(tmp_path, url):
    prepare_study(make_spec(tmp_path, url))
    changed = make_spec(tmp_path, url, points=[{"N": 2, "K": 1}, {"N": 3, "K": 5}, {"N": 4, "K": 3}])
    with pytest.raises(ConfigError) as err:
        prepare_study(changed)
    msg = str(err.value)
    assert msg.startswith("s.yaml: points: the spec drops cell(s) c001 (N=3 K=2) of study 's'"), msg
    changed = make_spec(tmp_path, url, base={"preset": "lcrp-mevis", "H": 1})
    with pytest.raises(ConfigError) as err:
        prepare_study(changed)
    msg = str(err.value)
    assert msg.startswith("s.yaml: study: ") and "base.H: 3 → 1" in msg, msg
    queue = open_queue("s", url)
    assert len(queue.trials()) == 3 and queue.study.user_attrs["lcrp_spec"]["points"][1]["K"] == 2
    # not an lcrp study
    optuna.create_study(study_name="other", storage=queue.storage).enqueue_trial({"x": 1})
    with pytest.raises(ConfigError, match="is not an lcrp sweep study"):
        open_queue("other", url)
    with pytest.raises(ConfigError, match="no study 'nope'"):
        open_queue("nope", url)


def test_pops_are_exactly_once_across_processes(tmp_path, url):
    queue = prepare_study(make_spec(tmp_path, url, grid={"N": [1, 2, 3, 4], "K": [1, 2, 3]}))
    procs = [popper(url) for _ in range(3)]
    popped = [int(line) for p in procs for line in p.communicate()[0].split()]
    assert all(p.returncode == 0 for p in procs)
    assert sorted(popped) == sorted(queue.trial_id(t) for t in queue.trials())  # each exactly once
    assert len(popped) == 12
    assert {t.state for t in queue.trials()} == {TrialState.RUNNING}
    owners = {t.user_attrs["pid"] for t in queue.trials()}
    assert owners <= {p.pid for p in procs}
    assert all(t.user_attrs["host"] == ProcessId.current().host and t.user_attrs["device"] == "cpu"
               for t in queue.trials())


def test_reaper_fails_a_killed_workers_trial_and_requeues_its_cell(tmp_path, url):
    queue = prepare_study(make_spec(tmp_path, url))
    proc = popper(url, hold=True)
    trial_id = int(proc.stdout.readline())  # the process holds this trial RUNNING now
    assert queue.reap() == []  # its worker is alive: nothing to reap
    running = queue.storage.get_trial(trial_id)
    assert running.state == TrialState.RUNNING and running.user_attrs["pid"] == proc.pid
    status = study_status(queue)
    assert [(r.unit, r.pid, r.device, r.alive) for r in status.running] == [("c000", proc.pid, "cpu", True)]

    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert queue.reap() == [running.number]
    dead = queue.storage.get_trial(trial_id)
    assert dead.state == TrialState.FAIL
    assert dead.user_attrs["error"].startswith(f"lost: worker pid {proc.pid} on ")
    retry = [t for t in queue.trials(TrialState.WAITING) if t.user_attrs["lcrp_cell"] == "c000"]
    assert [t.user_attrs["attempt"] for t in retry] == [1]
    assert queue.reap() == []  # reaped once only
    status = study_status(queue)
    assert (status.waiting, status.running, status.failed) == (3, [], {})


def test_a_trial_popped_by_a_worker_that_died_before_recording_itself_is_reaped(tmp_path, url):
    queue = prepare_study(make_spec(tmp_path, url))
    first = queue.trials()[0]
    # the WAITING → RUNNING half of a pop, without the owner the pop records under the same lock
    assert queue.storage.set_trial_state_values(queue.trial_id(first), TrialState.RUNNING)
    assert queue.reap() == [first.number]
    assert queue.storage.get_trial(queue.trial_id(first)).user_attrs["error"].startswith(
        "lost: its worker ended before recording itself")
    assert [t.user_attrs["attempt"] for t in queue.trials(TrialState.WAITING)
            if t.user_attrs["lcrp_cell"] == "c000"] == [1]


def test_a_zombie_or_reused_pid_is_not_alive():
    me = ProcessId.current()
    assert me.alive()
    assert not ProcessId(me.host, me.pid, "0").alive()  # same pid, another start time: reused
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    os.waitid(os.P_PID, zombie.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped yet: a zombie
    assert not ProcessId(me.host, zombie.pid, None).alive()
    zombie.wait()


def test_retries_then_given_up_then_a_rerun_retries(tmp_path, url):
    spec = make_spec(tmp_path, url, max_retries=1)
    queue = prepare_study(spec)

    def pop_cell() -> tuple[int, str, int]:
        trial_id = queue.pop(device="cpu")
        attrs = queue.storage.get_trial(trial_id).user_attrs
        return trial_id, attrs["lcrp_cell"], attrs["attempt"]

    trial_id, cell, attempt = pop_cell()
    assert (cell, attempt) == ("c000", 0)
    assert queue.fail(trial_id, "RuntimeError: boom\n  with a second line", counts=True)
    for expect in ("c001", "c002"):  # the retry went to the back of the queue
        other, cell, _ = pop_cell()
        assert cell == expect
        queue.storage.set_trial_state_values(other, TrialState.COMPLETE, [50.0])
    trial_id, cell, attempt = pop_cell()
    assert (cell, attempt) == ("c000", 1)
    assert queue.fail(trial_id, "RuntimeError: boom\n  with a second line", counts=True)
    assert queue.pop(device="cpu") is None  # max_retries=1: given up
    status = study_status(queue)
    assert status.failed == {"c000": "RuntimeError: boom with a second line"}
    assert (status.done, status.waiting, status.running) == (2, 0, [])
    assert "failed c000: RuntimeError: boom" in format_status(status)
    assert not queue.fail(trial_id, "again", counts=True)  # already finished: nothing happens

    # an interrupted trial is re-queued without using a retry
    queue = prepare_study(spec)  # a rerun gives the failed cell a fresh budget
    trial_id = queue.pop(device="cpu")
    assert queue.storage.get_trial(trial_id).user_attrs["attempt"] == 0
    queue.fail(trial_id, "interrupted", counts=False)
    assert [t.user_attrs["attempt"] for t in queue.trials(TrialState.WAITING)] == [0]


def test_status_eta_and_running_rows(tmp_path, url, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5")  # as a worker pinned to cuda:5 has it
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "77")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")
    queue = prepare_study(make_spec(tmp_path, url))
    first = queue.pop(device="cpu")
    queue.storage.set_trial_user_attr(first, "wall_time_s", 4.0)
    queue.storage.set_trial_state_values(first, TrialState.COMPLETE, [61.5])
    queue.pop(device="cuda:1")
    status = study_status(queue)
    assert (status.total, status.done, status.waiting, len(status.running)) == (3, 1, 1, 1)
    assert status.mean_wall_s == 4.0 and status.eta_s == 8.0  # (1 waiting + 1 running) × 4 s / 1
    assert status.best_value == 61.5
    text = format_status(status)
    assert "1/3 done, 1 running, 1 waiting, 0 failed" in text
    assert f"pid {os.getpid()} job 77_1 gpu 5 cuda:1" in text and "ETA 8s" in text


def test_status_rounds_params_lists_tied_best_configurations_and_counts_requeued_cells(tmp_path, url):
    queue = prepare_study(make_spec(tmp_path, url, points=[{"N": 2, "delta": 0.0043},
                                                          {"N": 3, "delta": 0.001},
                                                          {"N": 4, "delta": 0.002}]))
    from lcrp_core.sweep.worker import suggest

    def finish(value):
        trial_id = queue.pop(device="cpu")
        frozen = queue.storage.get_trial(trial_id)
        suggest(optuna.Trial(queue.study, trial_id), queue.spec, frozen.user_attrs["lcrp_cell"])
        queue.storage.set_trial_state_values(trial_id, TrialState.COMPLETE, [value])

    first = queue.pop(device="cpu")
    queue.fail(first, "interrupted", counts=False)   # re-queued, no retry used
    second = queue.pop(device="cpu")
    queue.fail(second, "RuntimeError: boom", counts=True)  # re-queued as a retry
    finish(70.0)
    finish(70.0)
    finish(65.0)
    status = study_status(queue)
    assert (status.done, status.requeued, status.interrupted, status.failed) == (3, 2, 1, {})
    assert len(status.best_tied) == 2
    text = format_status(status)
    assert "2 trial(s) failed and re-queued: 1 interrupted (no retry used), 1 retried or lost" in text
    assert "best J&F 70.0, 2 configurations tied:" in text
    # pops take the re-queued cells last: c002 and c000 tie at 70, c001 scores 65
    assert "    N=4 delta=0.2%\n    N=2 delta=0.43%" in text and "N=3" not in text


def test_a_worker_report_counts_each_end_state_and_refuses_an_unknown_one():
    from lcrp_core.sweep.worker import WorkerReport

    report = WorkerReport()
    for state in ("completed", "completed", "pruned", "failed", "interrupted"):
        report.count(state)
    assert (report.completed, report.pruned, report.failed, report.interrupted) == (2, 1, 1, 1)
    with pytest.raises(ValueError, match="unknown trial state 'stopped_by'"):
        report.count("stopped_by")
