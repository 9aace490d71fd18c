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

from lcrp_core.data.synth import generate
from lcrp_core.sweep.driver import run_sweep
from lcrp_core.sweep.queue import load_sweep
from lcrp_core.sweep.spec import load_spec
from lcrp_core.sweep.status import study_status
from tests.fixtures import HALTING_BACKEND, wait_for_halt
from tests.test_sweep_spec import synth_spec

POINTS = [{"N": 2, "K": 1}, {"N": 4, "K": 2}, {"N": 8, "K": 3, "H": 1}, {"N": 3, "K": 2, "delta": 0.0}]


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("synth") / "bench", videos=2, seed=5, frames=8,
                    size=(64, 96))


def write(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


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

    queue = load_sweep("s", url)
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
    result = run_sweep(load_spec(path), progress=False)
    assert result.status.done == 4 and not result.status.failed
    trials = load_sweep("s", url).trials()
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert Counter(t.user_attrs["lcrp_cell"] for t in complete) == {f"c{i:03d}": 1 for i in range(4)}
    assert all(t.user_attrs["attempt"] == 0 for t in complete)
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
