"""A study's life beyond one run: interrupts (Ctrl-C to the whole process group, SIGTERM to the
driver alone), resuming from another dataset root, and extending a finished study with new
cells. Real worker processes, the classical pipeline on a tiny synthetic benchmark."""

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

from lcrp_core.sweep.driver import run_sweep
from lcrp_core.sweep.queue import open_queue
from lcrp_core.sweep.spec import load_sweep_spec
from lcrp_core.sweep.status import study_status
from tests.fixtures import HALTING_BACKEND, wait_for_halt
from tests.helpers import synth_spec

POINTS = [{"N": 2, "K": 1}, {"N": 4, "K": 2}, {"N": 8, "K": 3, "H": 1}, {"N": 3, "K": 2, "delta": 0.0}]


def write(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_a_stop_signal_is_deferred_outside_interruptible_blocks_and_a_second_ctrl_c_is_not():
    from lcrp_core.sweep.signals import Stop

    stop = Stop()
    with stop.installed():
        os.kill(os.getpid(), signal.SIGTERM)  # e.g. during a storage write: only recorded
        assert stop.requested and stop.name == "SIGTERM"
        with pytest.raises(KeyboardInterrupt), stop.interruptible():  # raised on entering
            pytest.fail("not reached")
        os.kill(os.getpid(), signal.SIGTERM)  # a later SIGTERM changes nothing
        with pytest.raises(KeyboardInterrupt):  # a second Ctrl-C raises wherever it lands
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored

    stop, reached = Stop(), []
    with stop.installed(), pytest.raises(KeyboardInterrupt), stop.interruptible():
        with stop.deferred():  # a pruner's report inside an evaluation
            os.kill(os.getpid(), signal.SIGINT)
            reached.append("the write finished")
        pytest.fail("not reached")
    assert reached == ["the write finished"] and stop.name == "SIGINT"


@pytest.mark.parametrize("how", ["SIGINT to the process group", "SIGTERM to the driver"])
def test_an_interrupt_requeues_running_cells_without_a_retry_and_leaves_nothing_running(
        tmp_path, bench, how):
    url = f"journal:{tmp_path}/s.log"
    fifo = tmp_path / "halt.fifo"
    os.mkfifo(fifo)
    path = write(tmp_path, synth_spec(bench, storage=url, cache_dir=str(tmp_path / "cache"),
                                      points=POINTS, max_retries=0,
                                      backend={"name": HALTING_BACKEND,
                                               "config": {"halt_fifo": str(fifo)}}))
    run = subprocess.Popen([sys.executable, "-m", "lcrp_core", "sweep", "run", str(path),
                            "--workers", "2", "--no-progress"], start_new_session=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        pid, _ = wait_for_halt(fifo)  # one worker is mid-trial; the other is somewhere
        if how.startswith("SIGINT"):
            os.killpg(run.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        else:
            os.kill(run.pid, signal.SIGTERM)  # a scheduler stopping the driver only
        out, err = run.communicate(timeout=300)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    assert run.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err

    queue = open_queue("s", url)
    trials = queue.trials()
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert failed and all(t.user_attrs["error"] == "interrupted" for t in failed)
    assert pid in {t.user_attrs["pid"] for t in failed}  # the halted worker's trial
    for t in failed:  # re-queued with the same attempt: no retry used
        (again,) = [w for w in trials if w.state == TrialState.WAITING
                    and w.user_attrs["lcrp_cell"] == t.user_attrs["lcrp_cell"]]
        assert again.user_attrs["attempt"] == t.user_attrs["attempt"] == 0
    assert study_status(queue).failed == {}

    # the same command again finishes the study: every cell complete once, on its first attempt
    result = run_sweep(load_sweep_spec(path), progress=False)
    assert result.status.done == 4 and not result.status.failed
    trials = open_queue("s", url).trials()
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert Counter(t.user_attrs["lcrp_cell"] for t in complete) == {f"c{i:03d}": 1 for i in range(4)}
    assert all(t.user_attrs["attempt"] == 0 for t in complete)
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]


def test_a_study_created_with_a_relative_root_resumes_from_any_copy_of_the_same_data(
        tmp_path, bench, monkeypatch, capsys):
    import json
    import shutil

    from lcrp_core.cli import main
    from lcrp_core.errors import ConfigError

    monkeypatch.chdir(bench.parent)
    url = f"sqlite:///{tmp_path}/s.db"
    raw = synth_spec(bench.name, storage=url, cache_dir=str(tmp_path / "cache"), points=POINTS[:2])
    path = write(tmp_path, raw)
    assert run_sweep(load_sweep_spec(path), progress=False).computed == 2

    # the absolute path, and a copy elsewhere (another mount, a node's scratch): nothing to do
    for root in (str(bench.resolve()), str(shutil.copytree(bench, tmp_path / "copy"))):
        assert main(["sweep", "run", str(path), "--root", root, "--no-progress"]) == 0
        assert "0 trial(s) computed by this run" in capsys.readouterr().out

    # other contents are refused, saying what differs; nothing is written
    meta = tmp_path / "copy" / "valid" / "meta_expressions.json"
    doc = json.loads(meta.read_text())
    video = sorted(doc["videos"])[0]
    exp = sorted(doc["videos"][video]["expressions"])[0]
    doc["videos"][video]["expressions"][exp]["exp"] = "another sentence"
    meta.write_text(json.dumps(doc))
    from lcrp_core.sweep.fingerprint import _fingerprint

    _fingerprint.cache_clear()
    with pytest.raises(ConfigError, match=f"is not the one study 's' .* was run on \\(videos whose "
                                          f"frames or expressions differ: {video}\\)"):
        run_sweep(load_sweep_spec(path).with_root(tmp_path / "copy"), progress=False)
    assert len(open_queue("s", url).trials()) == 2


def test_adding_a_point_to_a_finished_study_runs_only_that_point(tmp_path, bench):
    url = f"journal:{tmp_path}/s.log"
    raw = synth_spec(bench, storage=url, cache_dir=str(tmp_path / "cache"),
                     points=[POINTS[0], POINTS[1]])
    assert run_sweep(load_sweep_spec(write(tmp_path, raw)), progress=False).computed == 2
    before = {t.number: (t.user_attrs["lcrp_cell"], t.value) for t in open_queue("s", url).trials()}

    # a new point, written between the old ones, with a value of N the study has not seen
    raw["points"] = [POINTS[0], {"N": 6, "K": 2}, POINTS[1]]
    result = run_sweep(load_sweep_spec(write(tmp_path, raw)), progress=False)
    assert result.computed == 1 and result.status.done == 3 and result.status.total == 3
    queue = open_queue("s", url)
    trials = queue.trials()
    assert {t.number: (t.user_attrs["lcrp_cell"], t.value) for t in trials[:2]} == before
    (new,) = trials[2:]
    assert new.user_attrs["lcrp_cell"] == "c002" and new.params == {"N": 6, "K": 2}
    assert new.state == TrialState.COMPLETE
    assert [c["cell"] for c in queue.study.user_attrs["lcrp_cells"]] == ["c000", "c001", "c002"]
    assert queue.spec.points[2] == {"N": 6, "K": 2}
    # the same spec again: nothing to do
    assert run_sweep(load_sweep_spec(write(tmp_path, raw)), progress=False).computed == 0
