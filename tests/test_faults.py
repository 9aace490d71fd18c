"""Reliability under hostile conditions (issue 15): disk full, killed and frozen workers,
corrupt files, bad data and bad options. Each test reproduces one reported failure on a real
storage (SQLite, journal; PostgreSQL where LCRP_TEST_POSTGRES_URL answers) and checks the fix:
no study lost, no hang, and every failure reported in one line with a non-zero exit code.

Disk full: a small tmpfs where the test can mount one (root), else a per-file size limit
(RLIMIT_FSIZE, with SIGXFSZ ignored) on the subprocess under test."""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml
from optuna.trial import TrialState
from PIL import Image

from lcrp_core.cache.store import CacheStore
from lcrp_core.cli import main
from lcrp_core.data import load_dataset
from lcrp_core.errors import ConfigError, DataError
from lcrp_core.pipeline.stages import sample_frames
from lcrp_core.report.study import load_storages, read_study
from lcrp_core.sweep.queue import open_queue, prepare_study, requeue
from lcrp_core.sweep.spec import load_sweep_spec
from lcrp_core.sweep.storage import JOURNAL_LOCK_GRACE_S, open_storage
from tests.fixtures import HALTING_BACKEND, postgres_or_skip, wait_for_halt
from tests.helpers import synth_spec

POINTS = [{"N": 2, "K": 1}, {"N": 4, "K": 2}, {"N": 8, "K": 3, "H": 1}, {"N": 3, "K": 2, "delta": 0.0}]
LCRP = [sys.executable, "-m", "lcrp_core"]


@pytest.fixture(autouse=True)
def lcrp_logging():
    """`main()` gives the lcrp logger its own stderr handler and stops propagation: undo that
    around each test so that caplog sees the warnings."""
    logger = logging.getLogger("lcrp")
    saved = logger.handlers[:], logger.propagate, logger.level
    logger.handlers[:], logger.propagate = [], True
    yield
    logger.handlers[:], logger.propagate, logger.level = saved[0], saved[1], saved[2]


def write_spec(tmp_path: Path, bench: Path, cache: Path, url: str, name: str = "s.yaml",
               **over) -> Path:
    raw = synth_spec(bench, study="s", storage=url, cache_dir=str(cache), **({"points": POINTS} | over))
    raw = {k: v for k, v in raw.items() if v is not None}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    return subprocess.run([*LCRP, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env, stdin=subprocess.DEVNULL, **kw)


def one_line_error(stderr: str) -> str:
    """The error line of a failed command; no traceback anywhere."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if ": error: " in line]
    assert errors, stderr
    return errors[-1]


def cli_error(capsys, *argv: str) -> str:
    """Run `lcrp argv` in-process; it must fail with exit code 2 and one error line."""
    capsys.readouterr()
    assert main(list(argv)) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and len(lines) == 1, err
    return lines[0]


def cells_done(url: str) -> Counter:
    queue = open_queue("s", url)
    return Counter(t.user_attrs["lcrp_cell"] for t in queue.trials(TrialState.COMPLETE))


# --- a small disk ----------------------------------------------------------------------------------

class SmallDisk:
    """A folder that fills up: a tmpfs where one can be mounted, else a per-file size limit on
    the subprocesses started with ``preexec``."""

    def __init__(self, path: Path):
        self.path, self.limit, self.filler = path, None, path / "filler"
        path.mkdir()
        self.tmpfs = os.geteuid() == 0 and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(path)],
            capture_output=True).returncode == 0

    def leave(self, free: int, grows: Path | None = None) -> None:
        """Leave about ``free`` bytes for ``grows`` (the file that will run out of space; with
        a size limit, None limits every file to ``free`` bytes)."""
        if self.tmpfs:
            st = os.statvfs(self.path)
            size = st.f_bavail * st.f_frsize - free
            with open(self.filler, "wb") as fh:
                fh.write(b"\0" * max(size, 0))
        else:
            self.limit = (grows.stat().st_size if grows is not None else 0) + free

    def grow(self) -> None:
        self.filler.unlink(missing_ok=True)
        self.limit = None

    def preexec(self) -> None:
        if self.limit is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write fails with EFBIG instead
            resource.setrlimit(resource.RLIMIT_FSIZE, (self.limit, self.limit))

    def close(self) -> None:
        if self.tmpfs:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True)


@pytest.fixture
def disk(tmp_path):
    d = SmallDisk(tmp_path / "disk")
    yield d
    d.close()


# --- 1. data loss and hangs ------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_disk_full_during_a_sweep_loses_nothing_and_a_rerun_completes_every_cell_once(
        tmp_path, bench, cache, disk, kind):
    store = disk.path / ("s.log" if kind == "journal" else "s.db")
    url = f"journal:{store}" if kind == "journal" else f"sqlite:///{store}"
    spec_path = write_spec(tmp_path, bench, cache, url)
    prepare_study(load_sweep_spec(spec_path))
    disk.leave(8192 if kind == "journal" else 4096, store)

    full = run_cli("sweep", "run", str(spec_path), "--no-progress", cwd=tmp_path,
                   preexec_fn=disk.preexec)
    assert full.returncode == 2, full.stderr
    line = one_line_error(full.stderr)
    assert str(store) in line and "exceeding max length" not in full.stderr
    assert any(why in line for why in ("No space left", "File too large", "disk is full")), line

    if kind == "journal":  # no cut-off line: every record parses; finished trials are readable
        data = store.read_bytes()
        assert data.endswith(b"\n")
        for record in data.splitlines():
            json.loads(record)
    before = {t.number: t.value for t in open_queue("s", url).trials(TrialState.COMPLETE)}
    if kind == "journal":
        assert 1 <= len(before) < len(POINTS), "the disk must fill up in the middle of the sweep"
    status = run_cli("sweep", "status", "s", "--storage", url, cwd=tmp_path)
    assert status.returncode == 0, status.stderr

    disk.grow()
    again = run_cli("sweep", "run", str(spec_path), "--no-progress", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert cells_done(url) == Counter({f"c{i:03d}": 1 for i in range(len(POINTS))})
    after = {t.number: t.value for t in open_queue("s", url).trials(TrialState.COMPLETE)}
    assert before.items() <= after.items()
    assert optuna.load_study(study_name="s", storage=open_storage(url)).best_value is not None


def test_a_journal_with_a_cut_off_last_line_is_repaired_before_the_next_append(tmp_path, caplog):
    url = f"journal:{tmp_path / 'x.log'}"
    optuna.create_study(study_name="a", storage=open_storage(url))
    good = (tmp_path / "x.log").read_bytes()
    with open(tmp_path / "x.log", "ab") as fh:  # what a failed write left before the fix
        fh.write(b'{"op_code":5,"worker_id":"w","study_id":0,"user_att')
    with caplog.at_level(logging.WARNING, logger="lcrp"):
        optuna.create_study(study_name="b", storage=open_storage(url))
    assert f"byte offset {len(good)}" in caplog.text and "x.log" in caplog.text
    assert sorted(optuna.get_all_study_names(open_storage(url))) == ["a", "b"]


def test_a_corrupt_journal_is_one_line_naming_the_file_and_the_byte_offset(tmp_path, capsys):
    path = tmp_path / "x.log"
    optuna.create_study(study_name="s", storage=open_storage(f"journal:{path}"))
    good = path.read_bytes()
    path.write_bytes(good + b'{"op_code":5,"stu' + b'{"op_code":0}\n' + b'{"op_code":0}\n')
    for argv in (("db", "trials", "s", "--storage", f"journal:{path}"),
                 ("sweep", "status", "s", "--storage", f"journal:{path}")):
        line = cli_error(capsys, *argv)
        assert str(path) in line and f"byte offset {len(good)}" in line, line


def test_a_relative_journal_path_and_a_stale_lock_do_not_hang(tmp_path, caplog, monkeypatch):
    """A SIGKILLed append left Optuna's symlink lock with a relative target: the storage opens by
    absolute path, and the stale lock is broken with one warning naming it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "studies").mkdir()
    storage = open_storage("journal:studies/x.log")
    assert Path(storage._backend._file_path).is_absolute()
    lock = tmp_path / "studies" / "x.log.lock"
    os.symlink("studies/x.log", lock)  # dangling from its own folder, as Optuna left it
    old = time.time() - JOURNAL_LOCK_GRACE_S - 5
    os.utime(lock, (old, old), follow_symlinks=False)
    start = time.process_time()
    with caplog.at_level(logging.WARNING, logger="lcrp"):
        optuna.create_study(study_name="s", storage=storage)
    assert time.process_time() - start < 5
    assert str(lock) in caplog.text and "stale" in caplog.text
    assert not os.path.lexists(lock)
    assert optuna.get_all_study_names(open_storage("journal:studies/x.log")) == ["s"]


def test_a_worker_whose_trial_was_taken_drops_its_result_and_goes_on(tmp_path, bench, cache,
                                                                     monkeypatch, caplog):
    """A resumed (SIGCONT) worker finds its trial failed by a stale heartbeat and re-queued:
    it drops that result with one line and runs the remaining cells."""
    from lcrp_core.sweep import worker as worker_mod

    url = f"sqlite:///{tmp_path / 's.db'}"
    queue = prepare_study(load_sweep_spec(write_spec(tmp_path, bench, cache, url)))
    real_pop, taken = worker_mod.SweepQueue.pop, []

    def pop_then_lose(self, *, device):
        trial_id = real_pop(self, device=device)
        if trial_id is not None and not taken:  # what the stale-heartbeat callback does
            taken.append(trial_id)
            self.storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
            requeue(self.spec, self.study, self.storage.get_trial(trial_id), counts=True)
        return trial_id

    monkeypatch.setattr(worker_mod.SweepQueue, "pop", pop_then_lose)
    with caplog.at_level(logging.WARNING, logger="lcrp"):
        report = worker_mod.run_worker(queue, device="cpu")
    assert report.failed == 1 and report.completed == len(POINTS)
    assert "was failed by another process" in caplog.text and "dropped" in caplog.text
    assert cells_done(url) == Counter({f"c{i:03d}": 1 for i in range(len(POINTS))})


def _concurrent_prepare(spec_path: str, barrier) -> str:
    barrier.wait()
    try:
        prepare_study(load_sweep_spec(spec_path))
    except Exception as exc:  # reported to the parent, which fails the test
        return f"{type(exc).__name__}: {exc}"
    return "ok"


def _race(spec_path: Path, n: int = 3) -> list[str]:
    ctx = mp.get_context("fork")
    barrier = ctx.Manager().Barrier(n)
    with ctx.Pool(n) as pool:
        return pool.starmap(_concurrent_prepare, [(str(spec_path), barrier)] * n)


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_sweeps_started_together_on_a_new_storage_all_succeed(tmp_path, bench, cache, kind):
    url = (f"sqlite:///{tmp_path / 'new' / 's.db'}" if kind == "sqlite"
           else f"journal:{tmp_path / 'new' / 's.log'}")
    assert _race(write_spec(tmp_path, bench, cache, url)) == ["ok"] * 3
    queue = open_queue("s", url)
    assert Counter(t.user_attrs["lcrp_cell"] for t in queue.trials()) == \
        Counter({f"c{i:03d}": 1 for i in range(len(POINTS))})


# --- PostgreSQL -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pg_url() -> str:
    return postgres_or_skip()


@pytest.fixture
def fresh_pg_database(pg_url):
    """A new, empty database on the test server (the schema race needs one)."""
    import sqlalchemy

    from lcrp_core.sweep.storage import sqlalchemy_url

    name = f"lcrp_faults_{uuid.uuid4().hex[:8]}"
    engine = sqlalchemy.create_engine(sqlalchemy_url(pg_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    yield pg_url.rsplit("/", 1)[0] + "/" + name
    with engine.connect() as conn:
        conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.mark.postgres
def test_sweeps_started_together_on_a_new_postgres_database_all_succeed(tmp_path, bench, cache,
                                                                        fresh_pg_database):
    assert _race(write_spec(tmp_path, bench, cache, fresh_pg_database)) == ["ok"] * 3
    assert len(open_queue("s", fresh_pg_database).trials()) == len(POINTS)


@pytest.mark.postgres
def test_a_frozen_worker_on_postgres_does_not_stall_the_run(tmp_path, bench, cache, fresh_pg_database):
    """SIGSTOP the only worker mid-trial: the driver reaps its stale heartbeat while it waits,
    kills the frozen worker, and the cell runs again; every cell completes exactly once."""
    url = fresh_pg_database
    fifo = tmp_path / "halt"
    os.mkfifo(fifo)
    spec_path = write_spec(tmp_path, bench, cache, url, heartbeat_interval=1, grace_period=3,
                           backend={"name": HALTING_BACKEND, "config": {"halt_fifo": str(fifo)}})
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.Popen([*LCRP, "sweep", "run", str(spec_path), "--no-progress"], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        pid, _host = wait_for_halt(fifo)
        os.kill(pid, signal.SIGSTOP)
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopped beating" in err and "Traceback" not in err
    assert cells_done(url) == Counter({f"c{i:03d}": 1 for i in range(len(POINTS))})


@pytest.mark.postgres
def test_an_unreachable_postgres_url_is_one_line(capsys, tmp_path, bench, cache):
    url = "postgresql://nobody:secret@127.0.0.1:9/nowhere"
    line = cli_error(capsys, "db", "studies", "--storage", url)
    assert "127.0.0.1:9/nowhere" in line and "secret" not in line
    spec_path = write_spec(tmp_path, bench, cache, url)
    line = cli_error(capsys, "sweep", "run", str(spec_path), "--no-progress")
    assert "127.0.0.1:9/nowhere" in line and "secret" not in line


# --- 2. bad data scored silently -------------------------------------------------------------------

def _copy_bench(bench: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(bench, tmp_path / "bench"))


def test_a_frame_of_another_size_is_refused_naming_the_file(tmp_path, bench):
    root = _copy_bench(bench, tmp_path)
    video = sorted((root / "valid" / "JPEGImages").iterdir())[0]
    frame = sorted(video.iterdir())[3]
    Image.new("RGB", (50, 40)).save(frame)
    ds = load_dataset("mevis", root, "valid")
    with pytest.raises(DataError, match="frame is 40×50, the video's first frame") as exc:
        ds.videos[video.name].frames()
    assert str(frame) in str(exc.value)


def test_an_empty_sentence_is_refused_at_read_time_naming_the_file(tmp_path, bench):
    root = _copy_bench(bench, tmp_path)
    meta_path = root / "valid" / "meta_expressions.json"
    meta = json.loads(meta_path.read_text())
    video = next(iter(meta["videos"]))
    exp_id = next(iter(meta["videos"][video]["expressions"]))
    meta["videos"][video]["expressions"][exp_id]["exp"] = "  "
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(DataError, match="empty referring expression") as exc:
        load_dataset("mevis", root, "valid")
    assert str(meta_path) in str(exc.value) and f"videos.{video}.expressions.{exp_id}.exp" in str(exc.value)


def test_a_cache_entry_copied_over_another_is_corrupt(tmp_path, caplog):
    store = CacheStore(tmp_path)
    store.put("scope/v/proposals/00000", {"a": np.zeros(3)}, {"frame": 0})
    store.put("scope/v/proposals/00001", {"a": np.ones(3)}, {"frame": 1})
    shutil.copy(store.path("scope/v/proposals/00000"), store.path("scope/v/proposals/00001"))
    assert [p for p, problem in store.verify() if problem] == [store.path("scope/v/proposals/00001")]
    with caplog.at_level(logging.WARNING, logger="lcrp"):
        assert store.get("scope/v/proposals/00001") is None
    assert "names entry 'scope/v/proposals/00000'" in caplog.text
    assert store.get("scope/v/proposals/00000").meta == {"frame": 0}


def test_extract_verifies_what_it_skips_and_removes_stale_temporary_files(tmp_path, bench, capsys):
    cache_dir = tmp_path / "cache"
    args = ["extract", "--dataset", "mevis", "--root", str(bench), "--split", "valid",
            "--cache-dir", str(cache_dir), "-q"]
    assert main(args) == 0
    store = CacheStore(cache_dir)
    markers = sorted(cache_dir.rglob("complete.lcrp"))
    markers[0].write_bytes(b"")  # a zero-length completion marker
    proposals = sorted(markers[1].parent.glob("proposals/*.lcrp"))
    proposals[2].write_bytes(proposals[2].read_bytes()[:40])  # a truncated entry
    tmp = proposals[0].parent / ".00000.lcrp.abc.tmp"
    tmp.write_bytes(b"half")
    old = time.time() - 3600
    os.utime(tmp, (old, old))
    assert main(["cache", "verify", "--cache-dir", str(cache_dir)]) == 1
    assert main(args) == 0
    assert not tmp.exists()
    capsys.readouterr()
    assert main(["cache", "verify", "--cache-dir", str(cache_dir)]) == 0
    assert all(problem is None for _, problem in store.verify())


# --- 3. every failure is one line ------------------------------------------------------------------

@pytest.mark.parametrize("content", [b"", b"garbage, not a database" * 10, b"SQLite format 3\0" + b"\1" * 2000],
                         ids=["zero-length", "garbage", "truncated"])
def test_a_broken_db_file_is_one_line_and_is_never_written(tmp_path, capsys, content):
    path = tmp_path / "x.db"
    path.write_bytes(content)
    for argv in (("db", "studies", "--storage", str(path)), ("db", "trials", "s", "--storage", str(path)),
                 ("sweep", "status", "s", "--storage", str(path))):
        assert str(path) in cli_error(capsys, *argv)
    assert path.read_bytes() == content


def test_a_corrupt_db_under_studies_is_skipped_with_a_warning(tmp_path, monkeypatch, capsys, caplog):
    monkeypatch.chdir(tmp_path)
    optuna.create_study(study_name="good", storage=open_storage("studies/all.db"))
    (tmp_path / "studies" / "bad.db").write_bytes(b"not a database at all")
    with caplog.at_level(logging.WARNING, logger="lcrp"):
        assert read_study("good").name == "good"  # as `lcrp report` finds a study
    assert "bad.db" in caplog.text
    assert main(["db", "studies"]) == 0
    out, err = capsys.readouterr()
    assert "good" in out and "bad.db" in err and "skipped" in err
    assert [s.name for s in load_storages(["sqlite:///studies/all.db", "sqlite:///studies/bad.db"],
                                          skip_unreadable=True)] == ["good"]


def _fill_and_run(disk: SmallDisk, tmp_path: Path, *argv: str) -> str:
    disk.leave(4096 if disk.tmpfs else 512)
    res = run_cli(*argv, cwd=tmp_path, preexec_fn=disk.preexec)
    assert res.returncode == 2, res.stderr
    return one_line_error(res.stderr)


def test_disk_full_in_synth_extract_and_export_is_one_line_naming_the_file(tmp_path, bench, disk):
    line = _fill_and_run(disk, tmp_path, "data", "synth", "--out", str(disk.path / "b"),
                         "--videos", "2", "--frames", "4", "--size", "64x96")
    assert str(disk.path) in line
    disk.grow()
    line = _fill_and_run(disk, tmp_path, "extract", "--dataset", "mevis", "--root", str(bench),
                         "--split", "valid", "--cache-dir", str(disk.path / "cache"))
    assert str(disk.path / "cache") in line
    assert any(why in line for why in ("No space left", "File too large")), line
    disk.grow()  # report output and exports share one atomic writer
    study = optuna.create_study(study_name="e", storage=open_storage(str(tmp_path / "e.db")))
    study.enqueue_trial({"N": 2}, user_attrs={"pad": "x" * 20000})
    study.optimize(lambda t: t.suggest_int("N", 1, 3), n_trials=1)
    line = _fill_and_run(disk, tmp_path, "db", "export", "e", "--storage", str(tmp_path / "e.db"),
                         "--out", str(disk.path / "e.csv"))
    assert str(disk.path / "e.csv") in line and not (disk.path / "e.csv").exists()


def test_a_journal_storage_pickles_like_optunas_own(tmp_path):
    import pickle

    storage = open_storage(f"journal:{tmp_path / 'x.log'}")
    optuna.create_study(study_name="s", storage=storage)
    assert [s.study_name for s in pickle.loads(pickle.dumps(storage)).get_all_studies()] == ["s"]


def test_bad_options_of_lcrp_run_write_nothing(tmp_path, bench, capsys):
    frames = sorted((bench / "valid" / "JPEGImages").iterdir())[0]
    out = tmp_path / "out"
    for option, value in (("--fps", "0"), ("--fps", "nan"), ("--overlay", "x.avi"), ("--N", "0"),
                          ("--H", "100000")):
        line = cli_error(capsys, "run", "--video", str(frames), "--text", "the red square",
                         "--out", str(out), option, value)
        assert option.lstrip("-") in line
    assert not out.exists()


def test_cache_clear_without_a_terminal_asks_for_yes(tmp_path, capsys, monkeypatch):
    (tmp_path / "c" / "x").mkdir(parents=True)
    monkeypatch.setattr(sys, "stdin", open(os.devnull))
    assert "--yes" in cli_error(capsys, "cache", "clear", "--cache-dir", str(tmp_path / "c"))
    assert (tmp_path / "c" / "x").is_dir()


def test_huge_parameters_are_clamped_or_refused(tmp_path, bench, cache, capsys):
    assert sample_frames(8, 10**12).tolist() == sample_frames(8, 8).tolist() == list(range(8))
    spec_path = write_spec(tmp_path, bench, cache, "x.db", points=[{"N": 10**12, "K": 10**6}])
    assert load_sweep_spec(spec_path).cells()[0].params.num_frames == 10**12
    line = cli_error(capsys, "sweep", "check", str(write_spec(tmp_path, bench, cache, "x.db",
                                                                 points=[{"H": 10**6}])))
    assert "points[0].H" in line and "H <= 20" in line


# --- 4. validation before anything is written ------------------------------------------------------

def test_a_wrong_split_or_video_creates_no_study(tmp_path, bench, cache, capsys):
    url = f"sqlite:///{tmp_path / 's.db'}"
    raw = synth_spec(bench, study="s", storage=url, cache_dir=str(cache), points=POINTS)
    for dataset, expect in (({"split": "test"}, "split folder not found (found: valid)"),
                            ({"videos": ["nope"]}, "['nope'] not in this file")):
        path = tmp_path / "bad.yaml"
        path.write_text(yaml.safe_dump(raw | {"dataset": raw["dataset"] | dataset}))
        assert expect in cli_error(capsys, "sweep", "check", str(path))
        assert expect in cli_error(capsys, "sweep", "run", str(path), "--no-progress")
        assert not (tmp_path / "s.db").exists()
    good = write_spec(tmp_path, bench, cache, url)
    assert len(prepare_study(load_sweep_spec(good)).trials()) == len(POINTS)


def test_duplicate_cells_are_refused(tmp_path, bench, cache):
    with pytest.raises(ConfigError, match=r"points\[2\].*duplicate point .*points\[0\]"):
        load_sweep_spec(write_spec(tmp_path, bench, cache, "x.db",
                             points=[{"N": 2}, {"N": 3}, {"N": 2, "K": 5}]))  # K=5 is the base's
    with pytest.raises(ConfigError, match=r"grid.N\[1\].*duplicate value"):
        load_sweep_spec(write_spec(tmp_path, bench, cache, "x.db", points=None, grid={"N": [2, 2]}))


def test_sweep_delete_removes_a_study_after_confirmation(tmp_path, bench, cache, capsys, monkeypatch):
    url = f"sqlite:///{tmp_path / 's.db'}"
    prepare_study(load_sweep_spec(write_spec(tmp_path, bench, cache, url)))
    monkeypatch.setattr(sys, "stdin", open(os.devnull))
    assert "--yes" in cli_error(capsys, "sweep", "delete", "s", "--storage", url)
    assert optuna.get_all_study_names(open_storage(url)) == ["s"]
    assert main(["sweep", "delete", "s", "--storage", url, "--yes"]) == 0
    assert "deleted study s (4 trials)" in capsys.readouterr().out
    assert optuna.get_all_study_names(open_storage(url)) == []
    assert "no study 's'" in cli_error(capsys, "sweep", "delete", "s", "--storage", url, "--yes")


# --- 5. the TypeError from __array__ ---------------------------------------------------------------

def test_rle_decoding_never_goes_through_an_array_without_copy(recwarn):
    """pycocotools.decode hands numpy an object whose __array__ takes no ``copy=``: numpy 2 falls
    back with a DeprecationWarning, and that fallback surfaced as ``TypeError: __array__() got an
    unexpected keyword argument 'copy'`` on an interrupt. The masks are decoded in numpy now, and
    agree with pycocotools bit for bit."""
    import warnings

    from pycocotools import mask as coco_mask

    from lcrp_core.masks import rle_decode, rle_encode

    rng = np.random.default_rng(0)
    masks = [rng.random((h, w)) < p for h, w, p in ((1, 1, 0.5), (7, 13, 0.3), (64, 96, 0.7), (5, 4, 0.0))]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        decoded = [rle_decode(rle_encode(m)) for m in masks]
        listed = rle_decode({"size": [2, 3], "counts": [1, 2, 3]})
    for m, d in zip(masks, decoded, strict=True):
        assert d.dtype == bool and (d == m).all()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert (coco_mask.decode({"size": list(m.shape),
                                      "counts": rle_encode(m)["counts"].encode()}) == m).all()
    assert listed.T.ravel().tolist() == [False, True, True, False, False, False]
