"""`lcrp demo` end to end on a reduced synthetic benchmark, its resumption, and from a wheel."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

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


def test_demo_runs_from_an_installed_wheel(tmp_path):
    """The wheel carries the demo's specs: installed into a bare folder and run from a folder
    outside the checkout (no sweeps/, no reports/ in reach), the demo renders its report."""
    pytest.importorskip("setuptools")  # pip wheel --no-build-isolation builds with this env's
    checkout = Path(__file__).resolve().parent.parent
    # build from a copy of what the wheel is made of, so the checkout gets no build/ or egg-info
    src = tmp_path / "src"
    shutil.copytree(checkout / "lcrp_core", src / "lcrp_core",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy2(checkout / name, src / name)
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"),
                    str(src)], check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("lcrp_sweeps-*.whl")
    site = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True,
                   capture_output=True)
    assert not (site / "sweeps").exists() and not (site / "reports").exists()

    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run([sys.executable, "-c", "import lcrp_core; print(lcrp_core.__file__)"],
                           cwd=work, env=env, capture_output=True, text=True, check=True)
    assert Path(where.stdout.strip()).is_relative_to(site)
    # the smallest demo whose paired tests have two videos to pair
    out = subprocess.run([sys.executable, "-m", "lcrp_core", "-q", "demo", "--videos", "2",
                          "--frames", "4", "--size", "64x64", "--devices", "cpu"],
                         cwd=work, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Synthetic benchmark, the Ref-DAVIS17 ablation points" in out.stdout
    assert "report: reports/demo/index.html" in out.stdout
    index = (work / "reports" / "demo" / "index.html").read_text()
    assert "demo_davis_ablation" in index and "demo_mevis_ablation" in index
    assert sorted(p.name for p in work.iterdir()) == ["cache", "data", "reports", "studies"]


def test_demo_over_one_video_renders_points_and_the_davis_mask_strip(workspace, capsys):
    # one video: no CI or test is possible, and the tables say so instead of crashing
    assert main(["demo", "--videos", "1", "--frames", "6", "--size", "64x64", "--devices", "cpu"]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert out.count("one video: no confidence interval or test is possible") == len(DEMO_SPECS)
    assert "[" not in out.split("Synthetic benchmark, the MeViS ablation points")[1].split("  demo_")[0]
    # the Ref-DAVIS17 strip maps its anno<a>/obj<o> items to expressions: drawn, no warning
    assert "not drawn" not in captured.err and "not an expression" not in captured.err
    assert (workspace / "reports" / "demo" / "masks_demo_davis_nk.png").stat().st_size > 0
