"""`lcrp db studies|trials|show|export|import` through lcrp_core.cli.main on real SQLite and
journal storages, checked against Optuna's own storage API."""

import csv
import io
import json
import re

import optuna
import pandas as pd
import pytest

from lcrp_core.cli import main
from tests.helpers import cells_of, make_study, trial


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def table_lines(out: str) -> list[list[str]]:
    """Rows of a terminal table (after its header and rule), split on runs of 2+ spaces."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if set(line.replace(" ", "")) == {"-"}) + 1
    return [re.split(r"\s{2,}", line.strip()) for line in lines[start:]]


@pytest.fixture
def db(tmp_path):
    """A points study with every trial state, per-video and per-expression scores, resources."""
    url = f"sqlite:///{tmp_path / 'studies' / 'sweep.db'}"
    (tmp_path / "studies").mkdir()
    cells = cells_of([{"N": 5, "K": 3}, {"N": 10, "K": 3}, {"N": 10, "K": 5}, {"N": 7, "K": 3}])
    full = dict(wall_time_s=12.5, frames=40, fps=3.2, peak_rss_mb=900.0, peak_gpu_mb=None,
                device="cpu", host="node1", pid=4242, cache_key="abc123", code_version="0.1.0+gdead",
                package_versions={"optuna": "5.0.0", "torch": "2.5"}, attempt=0,
                per_expression={"bear/0": {"J": 70.0, "F": 72.0, "JF": 71.0}})
    make_study(url, "sweep", [
        trial(cells[0], 71.0, per_video={"bear": 71.0, "dog": 69.0}, **full),
        trial(cells[1], None, state="FAIL", error="CUDA out of memory\nat line 3", attempt=0),
        trial(cells[1], 75.5, per_video={"bear": 76.0}, **{**full, "attempt": 1}),
        trial(cells[2], 73.25, expressions=4, no_anchor_expressions=3, no_proposal_frames=17),
        trial(cells[3], None, state="RUNNING"),
        trial(cells[3], None, state="WAITING"),
    ], cells=cells)
    return tmp_path, url


def test_database_opens_with_optuna_and_lists_the_same_trials(db, capsys):
    _, url = db
    summaries = optuna.get_all_study_summaries(url)
    assert [s.study_name for s in summaries] == ["sweep"]
    code, out, _ = run(capsys, "db", "studies", "--storage", url)
    assert code == 0
    [row] = table_lines(out)
    assert row[:7] == ["sweep", "points", "3", "1", "1", "1", "0"]
    assert row[7:9] == [f"{summaries[0].best_trial.value:.1f}", "N=10 K=3"]

    study = optuna.load_study(study_name="sweep", storage=url)
    code, out, _ = run(capsys, "db", "trials", "sweep", "--storage", url)
    rows = table_lines(out)
    assert [(int(r[0]), r[1]) for r in rows] == [(t.number, t.state.name) for t in study.trials]
    jf = {int(r[0]): r[7] for r in rows}
    assert jf == {t.number: (f"{t.value:.1f}" if t.value is not None else "–") for t in study.trials}
    assert "CUDA out of memory at line 3" in out  # the error, on one line


def test_trials_sort_and_state_filters(db, capsys):
    _, url = db
    code, out, _ = run(capsys, "db", "trials", "sweep", "--storage", url, "--sort", "jf")
    assert [r[0] for r in table_lines(out)][:3] == ["2", "3", "0"]  # 75.5, 73.25, 71.0
    code, out, _ = run(capsys, "db", "trials", "sweep", "--storage", url,
                       "--state", "complete,fail", "--state", "waiting")
    assert sorted(r[1] for r in table_lines(out)) == ["COMPLETE"] * 3 + ["FAIL", "WAITING"]
    assert out.startswith("study sweep (points) in ")
    code, _, err = run(capsys, "db", "trials", "sweep", "--storage", url, "--state", "done")
    assert code == 2 and "--state: unknown trial state(s) ['DONE']" in err


def test_show_prints_everything_a_trial_records(db, capsys):
    _, url = db
    code, out, _ = run(capsys, "db", "show", "sweep", "2", "--storage", url)
    assert code == 0
    assert out.startswith("study sweep  trial 2  COMPLETE  cell c001  J&F 75.50")
    for text in ("Params (swept):", "Params (complete run):", "delta      0.3%", "Scores:",
                 "video (1):", "bear", "expression (1):", "bear/0", "Resources:", "peak_gpu_mb  –",
                 "host         node1", "Provenance:", "cache_key     abc123", "attempt       1",
                 "Package versions:", "torch   2.5", "Timing:"):
        assert text in out, text
    assert "Failure modes:" not in out          # a trial that recorded none
    code, out, _ = run(capsys, "db", "show", "sweep", "1", "--storage", url)
    assert "Error:" in out and "CUDA out of memory" in out
    code, out, _ = run(capsys, "db", "show", "sweep", "3", "--storage", url)
    for text in ("Failure modes:", "no_anchor_expressions  3", "no_proposal_frames     17",
                 "WARNING: 3 of 4 expressions had no anchor"):
        assert text in out, text
    code, _, err = run(capsys, "db", "show", "sweep", "99", "--storage", url)
    assert code == 2 and "no trial 99 in study 'sweep' (trials 0..5)" in err


def test_export_csv_and_parquet_one_flat_row_per_trial(db, capsys):
    tmp, url = db
    code, out, _ = run(capsys, "db", "export", "sweep", "--storage", url, "--out", "-")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["number"] for r in rows] == ["0", "1", "2", "3", "4", "5"]
    assert rows[2]["params.N"] == "10" and rows[2]["value"] == "75.5"
    assert rows[0]["user_attrs.per_video.dog.JF"] == "69.0"
    assert rows[0]["user_attrs.package_versions.torch"] == "2.5"
    assert rows[1]["user_attrs.error"].startswith("CUDA") and rows[1]["value"] == ""
    assert json.loads(rows[0]["user_attrs.lcrp_params.N"]) == 5

    target = tmp / "out" / "sweep.parquet"
    assert run(capsys, "db", "export", "sweep", "--storage", url, "--format", "parquet",
               "--out", str(target))[0] == 0
    frame = pd.read_parquet(target)
    assert len(frame) == 6 and list(frame.columns[:4]) == ["study", "number", "state", "value"]
    assert frame["params.N"].tolist() == [5, 10, 10, 10, 7, 7]
    assert frame["value"].iloc[3] == 73.25 and pd.isna(frame["value"].iloc[1])
    assert frame["user_attrs.per_video.bear.JF"].iloc[2] == 76.0

    code, _, err = run(capsys, "db", "export", "sweep", "--storage", url, "--format", "parquet",
                       "--out", "-")
    assert code == 2 and "only CSV" in err


def test_studies_without_storage_lists_every_storage_under_studies(db, capsys, monkeypatch):
    tmp, _ = db
    monkeypatch.chdir(tmp)
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    journal = JournalStorage(JournalFileBackend(str(tmp / "studies" / "tpe.log")))
    make_study(journal, "demo_tpe", [trial(None, 55.0, params={"N": 4, "K": 2})], kind="tpe")
    code, out, _ = run(capsys, "db", "studies")
    rows = table_lines(out)
    assert [(r[0], r[1], r[-1]) for r in rows] == [("sweep", "points", "sqlite:///studies/sweep.db"),
                                                  ("demo_tpe", "tpe", "journal:studies/tpe.log")]
    # a study found by name under studies/ without --storage
    code, out, _ = run(capsys, "db", "trials", "demo_tpe")
    assert code == 0 and "journal:studies/tpe.log" in out


def test_missing_study_is_one_clear_error_and_creates_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "db", "trials", "nope")
    assert code == 2 and err.strip() == ("lcrp db: error: nope: study not found in "
                                         "sqlite:///studies/nope.db nor in any storage under studies/")
    assert not (tmp_path / "studies").exists()
    code, _, err = run(capsys, "db", "studies", "--storage", "studies/x.db")
    assert code == 2 and "sqlite:///studies/x.db: storage file not found" in err
    code, out, _ = run(capsys, "db", "studies")
    assert code == 0 and out.strip() == "no studies in studies/"


def test_import_reference_rows(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "paper.csv").write_text("N,K,H,delta,JF,J,F\n10,3,3,0.3%,76.7,73.0,80.4\n"
                                        "5,5,3,0.003,75.1,,\n")
    code, out, _ = run(capsys, "db", "import", "ref", "paper.csv", "--source", "LCRP, Table 5")
    assert code == 0 and "imported 2 reference rows into study ref (sqlite:///studies/ref.db)" in out
    study = optuna.load_study(study_name="ref", storage="sqlite:///studies/ref.db")
    assert study.user_attrs["lcrp_kind"] == "reference" and study.metric_names == ["J&F"]
    assert [c["params"] for c in study.user_attrs["lcrp_cells"]] == [
        {"N": 10, "K": 3, "H": 3, "delta": 0.003}, {"N": 5, "K": 5, "H": 3, "delta": 0.003}]
    t0, t1 = study.trials
    assert t0.state == optuna.trial.TrialState.COMPLETE and t0.value == 76.7
    assert t0.params == {"N": 10, "K": 3, "H": 3, "delta": 0.003}
    assert t0.user_attrs["reference"] is True and t0.user_attrs["source"] == "LCRP, Table 5"
    assert (t0.user_attrs["J"], t0.user_attrs["F"], t0.user_attrs["lcrp_cell"]) == (73.0, 80.4, "c000")
    assert "J" not in t1.user_attrs and t1.user_attrs["lcrp_params"]["w_text"] == 0.5

    code, _, err = run(capsys, "db", "import", "ref", "paper.csv")
    assert code == 2 and "pass --replace" in err
    (tmp_path / "one.csv").write_text("N,K,H,delta,JF\n7,3,3,0.3%,75.0\n")
    assert run(capsys, "db", "import", "ref", "one.csv", "--replace")[0] == 0
    study = optuna.load_study(study_name="ref", storage="sqlite:///studies/ref.db")
    assert [t.value for t in study.trials] == [75.0]
    assert study.trials[0].user_attrs["source"] == "one.csv"


def test_import_refuses_to_replace_a_sweep(db, capsys):
    tmp, url = db
    (tmp / "one.csv").write_text("N,K,H,delta,JF\n7,3,3,0.3%,75.0\n")
    code, _, err = run(capsys, "db", "import", "sweep", str(tmp / "one.csv"), "--storage", url, "--replace")
    assert code == 2 and "holds a 'points' sweep, not reference rows" in err
    assert len(optuna.load_study(study_name="sweep", storage=url).trials) == 6


@pytest.mark.parametrize(("text", "expected"), [
    ("N,K,H,JF\n1,1,1,50\n", "missing ['delta']"),
    ("N,K,H,delta,JF,note\n1,1,1,0.1%,50,x\n", "unknown column(s) ['note']"),
    ("N,K,H,delta,JF\n10,3,3,0.3,76.7\n", "line 2, column delta: '0.3' read as a fraction is 30%"),
    ("N,K,H,delta,JF\n10,3,3,0.3%,76.7\n10,x,3,0.3%,76.7\n", "line 3, column K: expected an integer"),
    ("N,K,H,delta,JF\n10,3,3,0.3%,176.7\n", "line 2, column JF: expected a score from 0 to 100"),
    ("N,K,H,delta,JF\n0,3,3,0.3%,76.7\n", "line 2, column N: expected N >= 1"),
    ("N,K,H,delta,JF\n10,3,3,0.3%,76.7\n10,3,3,0.003,70\n", "line 3, column N,K,H,delta: the same "
                                                             "parameters as line 2"),
    ("N,K,H,delta,JF\n", "no data rows"),
])
def test_bad_reference_csv_is_one_error_naming_file_line_and_column(tmp_path, capsys, text, expected):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    url = f"sqlite:///{tmp_path / 'ref.db'}"
    code, _, err = run(capsys, "db", "import", "ref", str(path), "--storage", url)
    assert code == 2
    assert err.startswith(f"lcrp db: error: {path}: ") and expected in err
    assert not (tmp_path / "ref.db").exists()  # nothing written


def test_import_refuses_scores_on_a_0_1_scale(tmp_path, capsys):
    path = tmp_path / "frac.csv"
    path.write_text("N,K,H,delta,JF\n10,3,3,0.3%,0.767\n7,3,3,0.3%,0.75\n")
    url = f"sqlite:///{tmp_path / 'ref.db'}"
    code, _, err = run(capsys, "db", "import", "ref", str(path), "--storage", url)
    assert code == 2 and "column JF: every JF value is at most 1" in err and "76.7" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "ref.db").exists()


def test_export_long_reads_back_in_pandas_with_the_expression_text(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'long.db'}"
    cells = cells_of([{"N": 5, "K": 3}, {"N": 10, "K": 3}])
    exprs = {"bear/0": ("the brown bear walking", 70.0), "bear/1": ("a bear on the left", 60.0),
             "dog/0": ("the dog jumping over the fence", 80.0)}

    def per_expression(shift):
        return {k: {"J": s + shift - 1, "F": s + shift + 1, "JF": s + shift, "text": text}
                for k, (text, s) in exprs.items()}

    make_study(url, "long", [
        trial(cells[0], 70.0, per_expression=per_expression(0.0)),
        trial(cells[1], None, state="FAIL", error="boom"),
        trial(cells[1], 72.0, per_expression=per_expression(2.0)),
    ], cells=cells)
    out = tmp_path / "long.csv"
    code, stdout, _ = run(capsys, "db", "export", "long", "--long", "--storage", url, "--out", str(out))
    assert code == 0 and "wrote 6 rows" in stdout
    df = pd.read_csv(out)
    assert list(df.columns[:10]) == ["study", "number", "cell", "video", "item", "expression", "text",
                                     "J", "F", "JF"]
    assert {"N", "K", "H", "delta", "w_text"} <= set(df.columns)
    assert len(df) == 6 and sorted(df["number"].unique()) == [0, 2]  # the failed trial has no rows
    row = df[(df.number == 2) & (df.item == "dog/0")].iloc[0]
    assert row.text == "the dog jumping over the fence" and row.video == "dog" and row.expression == 0
    assert (row.J, row.F, row.JF, row.N, row.K, row.delta) == (81.0, 83.0, 82.0, 10, 3, 0.003)
    # the analysis a pandas user does: mean J&F per configuration equals each trial's value
    assert df.groupby("N")["JF"].mean().round(6).to_dict() == {5: 70.0, 10: 72.0}
    code, _, _ = run(capsys, "db", "export", "long", "--long", "--format", "parquet", "--storage", url,
                     "--out", str(tmp_path / "long.parquet"))
    assert code == 0
    assert pd.read_parquet(tmp_path / "long.parquet").equals(pd.read_csv(out).astype(
        pd.read_parquet(tmp_path / "long.parquet").dtypes.to_dict()))
    code, stdout, _ = run(capsys, "db", "show", "long", "2", "--storage", url)
    assert "the dog jumping over the fence" in stdout
