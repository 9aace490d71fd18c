"""`lcrp demo` end to end on a reduced synthetic benchmark, and its resumption."""

import optuna
import pytest

from lcrp_core.cli import main
from lcrp_core.commands.demo import DEMO_SPECS

SMALL = ["--videos", "2", "--frames", "8", "--size", "64x96"]
#: the seed's point lists: (N, K) then (H, δ), Ref-DAVIS17 and MeViS
CELLS = {"demo_davis_nk": 5, "demo_davis_hd": 5, "demo_mevis_nk": 4, "demo_mevis_hd": 4}


def study_trials(name):
    study = optuna.load_study(study_name=name, storage=f"sqlite:///studies/{name}.db")
    return study.get_trials(deepcopy=False)


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_demo_runs_end_to_end_and_a_second_run_recomputes_nothing(workspace, capsys):
    assert main(["-q", "demo", *SMALL]) == 0
    out = capsys.readouterr().out
    # the two ablation tables, side by side, and the report's path
    assert "Synthetic benchmark, the Ref-DAVIS17 ablation points" in out
    assert "Synthetic benchmark, the MeViS ablation points" in out
    headers = [line.split()[:3] for line in out.splitlines()]
    assert headers.count(["N", "K", "J&F"]) == 2 and headers.count(["H", "δ", "J&F"]) == 2
    assert "0.3%" in out and "* " in out and "Δ vs ref" in out and "p (Holm)" in out
    assert "reports/demo/index.html" in out

    # real Optuna studies, every cell exactly once, complete
    for name in DEMO_SPECS:
        trials = study_trials(name)
        assert len(trials) == CELLS[name]
        assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
        assert len({t.user_attrs["lcrp_cell"] for t in trials}) == CELLS[name]
        assert all(0 <= t.value <= 100 and t.user_attrs["per_video"] for t in trials)

    # the Ref-DAVIS17 tables come from the Ref-DAVIS17 layout and protocol, the MeViS ones from MeViS's
    for name in DEMO_SPECS:
        spec = optuna.load_study(study_name=name, storage=f"sqlite:///studies/{name}.db").user_attrs["lcrp_spec"]
        kind = "ref-davis17" if "davis" in name else "mevis"
        assert (spec["dataset"]["kind"], spec["dataset"]["root"], spec["protocol"]) == (
            kind, f"data/synth/{kind}", "davis-unsupervised" if kind == "ref-davis17" else "per-expression")
    assert (workspace / "data" / "synth" / "ref-davis17" / "valid" / "Annotations").is_dir()
    assert (workspace / "data" / "synth" / "mevis" / "valid_u" / "mask_dict.json").is_file()

    index = (workspace / "reports" / "demo" / "index.html").read_text()
    for name in ("demo_davis_ablation", "demo_mevis_ablation", "demo_resources"):
        assert (workspace / "reports" / "demo" / f"{name}.html").is_file()
        assert name in index
    pngs = sorted((workspace / "reports" / "demo").glob("*.png"))
    assert pngs and all(p.stat().st_size > 0 for p in pngs)
    # nothing outside the working directory, everything where the README says
    assert sorted(p.name for p in workspace.iterdir()) == ["cache", "data", "reports", "studies"]

    before = {p: p.stat().st_mtime_ns for p in (workspace / "cache").rglob("*.lcrp")}
    trials_before = {name: len(study_trials(name)) for name in DEMO_SPECS}
    assert main(["-q", "demo", *SMALL]) == 0
    assert {p: p.stat().st_mtime_ns for p in (workspace / "cache").rglob("*.lcrp")} == before
    assert {name: len(study_trials(name)) for name in DEMO_SPECS} == trials_before
    assert "Synthetic benchmark, the Ref-DAVIS17 ablation points" in capsys.readouterr().out


def test_demo_refuses_a_foreign_data_folder(workspace, capsys):
    (workspace / "data" / "synth").mkdir(parents=True)
    (workspace / "data" / "synth" / "notes.txt").write_text("mine")
    assert main(["-q", "demo", *SMALL]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "data/synth" in err[0]
    assert not (workspace / "studies").exists()
