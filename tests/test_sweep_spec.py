"""Sweep specs: the shipped paper and demo specs, every class of spec error (one ConfigError naming
the file, the key path and what was expected; nothing written), resolution and hashing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from lcrp_core.cli import main
from lcrp_core.errors import ConfigError
from lcrp_core.pipeline.params import PRESETS
from lcrp_core.sweep.spec import load_sweep_spec, parse_sweep_spec
from tests.helpers import synth_spec

REPO = Path(__file__).resolve().parent.parent
SWEEPS = REPO / "sweeps"
#: the demo's specs ship inside the package (lcrp_core/commands/demo.py)
DEMO_SWEEPS = REPO / "lcrp_core" / "commands" / "demo_specs" / "sweeps"
SHIPPED = sorted([*SWEEPS.glob("*.yaml"), *DEMO_SWEEPS.glob("*.yaml")])

#: The seed's four ablations (seeds/000_…): (swept values in table order, base N, K, H, δ).
SEED_TABLES = {
    "refdavis17_nk": ([(5, 5), (7, 3), (5, 3), (10, 3), (10, 5)], ("N", "K"), (10, 3, 3, 0.003)),
    "refdavis17_hd": ([(1, 0.001), (2, 0.003), (3, 0.003), (2, 0.002), (3, 0.002)], ("H", "delta"),
                      (10, 3, 3, 0.003)),
    "mevis_nk": ([(5, 5), (10, 10), (10, 3), (10, 5)], ("N", "K"), (10, 5, 3, 0.003)),
    "mevis_hd": ([(3, 0.001), (3, 0.003), (2, 0.003), (2, 0.002)], ("H", "delta"), (10, 5, 3, 0.003)),
}
DEMO_OF = {"demo_davis_nk": "refdavis17_nk", "demo_davis_hd": "refdavis17_hd",
           "demo_mevis_nk": "mevis_nk", "demo_mevis_hd": "mevis_hd"}


def write_spec(path: Path, spec: dict) -> Path:
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


# --- the shipped specs ---------------------------------------------------------------------------

@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_specs_validate(path):
    spec = load_sweep_spec(path, check_root=False)
    assert spec.study == path.stem
    assert spec.cells() or spec.tpe is not None


#: study → (spec hash, sha256[:16] of the resolved spec's canonical JSON), computed before the
#: validators moved to pydantic: a study's identity must never change under a refactoring.
PINNED = {
    "demo_davis_hd": ("9992a4013fcfdea1", "fe5b98ef4817b54a"),
    "demo_davis_nk": ("fdd69373010963ad", "718f00deca9e252e"),
    "demo_mevis_hd": ("a5c3d22f1b4ed61a", "d5fb888d43bdf08e"),
    "demo_mevis_nk": ("6513a552591bc727", "d9413ced33fa945e"),
    "demo_tpe": ("a041c1d508c70814", "0e828821f06a42fa"),
    "mevis_hd": ("37ab0dfd5adce7dc", "9688b6094f56183a"),
    "mevis_nk": ("ff49bda78c85c001", "b2690838dcf3f729"),
    "refdavis17_hd": ("2a95313292bc3be0", "c01364cb4af8a5a2"),
    "refdavis17_nk": ("f7ac59d43878e3b8", "2ee54c655d89dd74"),
}


def test_every_shipped_spec_is_pinned():
    assert sorted(PINNED) == sorted(p.stem for p in SHIPPED)


@pytest.mark.parametrize("study", sorted(PINNED))
def test_spec_hash_and_resolved_spec_are_pinned(study):
    (path,) = [p for p in SHIPPED if p.stem == study]
    spec = load_sweep_spec(path, check_root=False)
    resolved = spec.to_json()
    canonical = json.dumps(resolved, sort_keys=True).encode()
    assert (spec.hash(), hashlib.sha256(canonical).hexdigest()[:16]) == PINNED[study]
    again = parse_sweep_spec(resolved, source=f"study {study}", check_root=False)
    assert again.to_json() == resolved and again.hash() == spec.hash()
    assert again.cells() == spec.cells()


@pytest.mark.parametrize("study", sorted(SEED_TABLES))
def test_paper_specs_hold_exactly_the_seeds_points_and_bases(study):
    rows, names, (n, k, h, d) = SEED_TABLES[study]
    for name in (study, *[demo for demo, src in DEMO_OF.items() if src == study]):
        spec = load_sweep_spec((SWEEPS if name == study else DEMO_SWEEPS) / f"{name}.yaml", check_root=False)
        cells = spec.cells()
        assert [tuple(c.trial_params[x] for x in names) for c in cells] == rows
        assert [c.cell for c in cells] == [f"c{i:03d}" for i in range(len(rows))]
        fixed = {"N": n, "K": k, "H": h, "delta": d}
        for cell, row in zip(cells, rows, strict=True):
            expect = {**fixed, **dict(zip(names, row, strict=True))}
            assert {x: cell.params.to_short()[x] for x in expect} == expect
        if name == study:
            assert spec.backend.name == "sam2-clip"
            assert spec.dataset.kind == ("ref-davis17" if study.startswith("refdavis") else "mevis")
            assert spec.protocol == ("davis-unsupervised" if spec.dataset.kind == "ref-davis17"
                                     else "per-expression")
            assert spec.dataset.root == f"data/{spec.dataset.kind}"
            if spec.dataset.kind == "mevis":
                assert spec.dataset.split == "valid_u"
        elif study.startswith("refdavis"):  # the demo's copy runs on the Ref-DAVIS17 layout
            assert (spec.backend.name, spec.dataset.kind, spec.dataset.root, spec.dataset.split,
                    spec.protocol) == ("classical", "ref-davis17", "data/synth/ref-davis17", "valid",
                                       "davis-unsupervised")
        else:
            assert (spec.backend.name, spec.dataset.kind, spec.dataset.root, spec.dataset.split,
                    spec.protocol) == ("classical", "mevis", "data/synth/mevis", "valid_u",
                                       "per-expression")


def test_demo_tpe_spec():
    spec = load_sweep_spec(DEMO_SWEEPS / "demo_tpe.yaml", check_root=False)
    assert spec.kind == "tpe" and set(spec.tpe.params) == {"N", "K", "H", "delta"}
    assert 10 <= spec.tpe.n_trials <= 16 and spec.tpe.pruner == "wilcoxon"
    assert spec.tpe.params["delta"].log


def test_check_command_validates_without_the_data(capsys):
    specs = [str(p) for p in SHIPPED]
    assert main(["sweep", "check", "--no-root-check", *specs]) == 0
    out = capsys.readouterr().out
    assert out.count(": ok (") == len(specs)
    # without --no-root-check the missing data/ folders are refused
    assert main(["sweep", "check", str(SWEEPS / "mevis_nk.yaml")]) == 2
    assert "dataset.root" in capsys.readouterr().err


# --- resolution ----------------------------------------------------------------------------------

def test_defaults_are_filled_in_and_the_resolved_spec_reads_back(tmp_path):
    from lcrp_core.backends.base import backend_class

    spec = parse_sweep_spec(synth_spec(tmp_path), source="t.yaml")
    resolved = spec.to_json()
    assert resolved["storage"] == "sqlite:///studies/s.db"
    assert resolved["devices"] == ["cpu"] and resolved["cache_dir"] == "cache"
    assert resolved["max_retries"] == 2 and resolved["repeats"] == 1
    assert resolved["protocol"] == "per-expression"
    assert resolved["base"] == {"preset": "lcrp-mevis", **PRESETS["lcrp-mevis"].to_short()}
    assert resolved["backend"] == {"name": "classical", "random_init": False,
                                   "config": backend_class("classical").defaults}
    again = parse_sweep_spec(resolved, source="study s")
    assert again.to_json() == resolved and again.hash() == spec.hash()


def test_grid_is_the_cartesian_product_with_repeats(tmp_path):
    raw = _without(synth_spec(tmp_path, grid={"N": [2, 4], "delta": [0, 0.002]}, repeats=2), "points")
    spec = parse_sweep_spec(raw, source="t.yaml")
    cells = spec.cells()
    assert [(c.trial_params["N"], c.trial_params["delta"], c.repeat) for c in cells] == [
        (2, 0.0, 0), (2, 0.0, 1), (2, 0.002, 0), (2, 0.002, 1),
        (4, 0.0, 0), (4, 0.0, 1), (4, 0.002, 0), (4, 0.002, 1)]
    assert all(c.trial_params["repeat"] == c.repeat for c in cells)
    assert isinstance(cells[0].params.min_region_frac, float)  # `0` in YAML is the float 0.0
    assert spec.choices() == {"N": [2, 4], "delta": [0.0, 0.002], "repeat": [0, 1]}


def test_hash_covers_results_not_where_they_run(tmp_path):
    a = parse_sweep_spec(synth_spec(tmp_path), source="a")
    b = parse_sweep_spec(synth_spec(tmp_path, devices=["cpu", "cpu"], storage="journal:x.log",
                              max_retries=5, cache_dir="elsewhere"), source="b")
    assert a.hash() == b.hash()
    c = parse_sweep_spec(synth_spec(tmp_path, points=[{"N": 2, "K": 1}, {"N": 3, "K": 2}]), source="c")
    d = parse_sweep_spec(synth_spec(tmp_path, base={"preset": "lcrp-mevis", "H": 2}), source="d")
    assert len({a.hash(), c.hash(), d.hash()}) == 3


# --- errors: one ConfigError naming the file, the key path and what was expected ---------------

def _without(spec: dict, *keys: str) -> dict:
    return {k: v for k, v in spec.items() if k not in keys}


ERRORS = {
    "unknown top-level key": (lambda s: s | {"studdy": "x"}, "studdy", "unknown key"),
    "unknown nested key": (lambda s: s | {"dataset": s["dataset"] | {"rooot": "x"}},
                           "dataset.rooot", "unknown key"),
    "missing study": (lambda s: _without(s, "study"), "study", "missing required key"),
    "study name": (lambda s: s | {"study": "a b/c"}, "study", "expected a name"),
    "repeats type": (lambda s: s | {"repeats": "two"}, "repeats", "expected an integer"),
    "repeats range": (lambda s: s | {"repeats": 0}, "repeats", "expected an integer >= 1"),
    "bool is not an int": (lambda s: s | {"max_retries": True}, "max_retries", "expected an integer"),
    "delta out of range": (lambda s: s | {"points": [{"N": 2}, {"N": 3}, {"delta": 1.5}]},
                           "points[2].delta", "1.5 read as a fraction is 150% of the frame; write '1.5%'"),
    "K below 1": (lambda s: s | {"points": [{"K": 0}]}, "points[0].K", "K >= 1"),
    "N not an integer": (lambda s: s | {"points": [{"N": 2.5}]}, "points[0].N", "an integer"),
    "unknown parameter": (lambda s: s | {"points": [{"N": 2}, {"Q": 1}]}, "points[1].Q",
                          "unknown parameter"),
    "point not a mapping": (lambda s: s | {"points": [[2, 1]]}, "points[0]", "expected a mapping"),
    "empty points": (lambda s: s | {"points": []}, "points", "non-empty"),
    "grid and points": (lambda s: s | {"grid": {"N": [2, 3]}}, "points",
                        "expected exactly one of ['grid', 'points', 'tpe']"),
    "no sweep": (lambda s: _without(s, "points"), "", "expected exactly one of"),
    "grid value": (lambda s: _without(s, "points") | {"grid": {"N": [2, -1]}}, "grid.N[1]", "N >= 1"),
    "grid combination": (lambda s: _without(s, "points") | {"grid": {"w_text": [0], "w_quality": [0]}},
                         "grid.w_text", "w_text + w_quality > 0"),
    "tpe low > high": (lambda s: _without(s, "points") | {"tpe": {
        "params": {"N": {"low": 8, "high": 3}}, "n_trials": 4}}, "tpe.params.N.high", "high >= low"),
    "tpe log at 0": (lambda s: _without(s, "points") | {"tpe": {
        "params": {"delta": {"low": 0, "high": 0.01, "log": True}}, "n_trials": 4}},
        "tpe.params.delta.low", "low > 0 on a log scale"),
    "tpe int range": (lambda s: _without(s, "points") | {"tpe": {
        "params": {"K": {"low": 1.5, "high": 3}}, "n_trials": 4}}, "tpe.params.K.low", "an integer"),
    "tpe range out of bounds": (lambda s: _without(s, "points") | {"tpe": {
        "params": {"delta": {"low": 0.001, "high": 1.2}}, "n_trials": 4}},
        "tpe.params.delta.high", "1.2 read as a fraction is 120% of the frame; write '1.2%'"),
    "tpe pruner": (lambda s: _without(s, "points") | {"tpe": {
        "params": {"N": {"low": 2, "high": 3}}, "n_trials": 4, "pruner": "median"}},
        "tpe.pruner", "expected one of ['none', 'wilcoxon']"),
    "tpe repeats": (lambda s: _without(s, "points") | {"repeats": 2, "tpe": {
        "params": {"N": {"low": 2, "high": 3}}, "n_trials": 4}}, "repeats", "expected 1 for a tpe"),
    "unknown preset": (lambda s: s | {"base": {"preset": "lcrp-best"}}, "base.preset",
                       "expected one of"),
    "base out of range": (lambda s: s | {"base": {"preset": "lcrp-mevis", "H": -1}}, "base.H",
                          "H >= 0"),
    "unknown dataset kind": (lambda s: s | {"dataset": s["dataset"] | {"kind": "davis"}},
                             "dataset.kind", "expected one of"),
    "dataset without ground truth": (lambda s: s | {"dataset": s["dataset"] | {
        "kind": "ref-youtube-vos"}}, "dataset.kind", "no public ground truth"),
    "unknown protocol": (lambda s: s | {"protocol": "davis-semi"}, "protocol", "expected one of"),
    "unknown backend": (lambda s: s | {"backend": {"name": "sam3"}}, "backend.name",
                        "unknown backend"),
    "backend config key": (lambda s: s | {"backend": {"name": "classical", "config": {"nope": 1}}},
                           "backend.config", "unknown backend config key"),
    "config and config_file": (lambda s: s | {"backend": {"name": "classical", "config": {},
                                                          "config_file": "x.yaml"}},
                               "backend.config_file", "either config or config_file"),
    "devices": (lambda s: s | {"devices": ["gpu0"]}, "devices", "cpu or cuda"),
    "storage URL": (lambda s: s | {"storage": "mysql://x"}, "storage", "unsupported storage scheme 'mysql'"),
    "grace period": (lambda s: s | {"heartbeat_interval": 10, "grace_period": 5}, "grace_period",
                     "more than heartbeat_interval"),
    # a wrong type is named in the field's own words, not pydantic's
    "root type": (lambda s: s | {"dataset": s["dataset"] | {"root": 5}}, "dataset.root",
                  "expected a folder path, got 5"),
    "video name type": (lambda s: s | {"dataset": s["dataset"] | {"videos": ["a", 5]}},
                        "dataset.videos[1]", "expected a video name, got 5"),
    "points type": (lambda s: s | {"points": {"N": 2}}, "points",
                    "expected a non-empty list of parameter overrides, got {'N': 2}"),
    "pruner type": (lambda s: _without(s, "points") | {"tpe": {
        "params": {"N": {"low": 2, "high": 3}}, "n_trials": 4, "pruner": 5}}, "tpe.pruner",
        "expected none or wilcoxon, got 5"),
    "slurm jobs bool": (lambda s: s | {"slurm": {"jobs": True}}, "slurm.jobs",
                        "expected an integer >= 1, got True"),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_spec_errors_name_file_key_and_expectation(tmp_path, case):
    edit, key, expected = ERRORS[case]
    path = write_spec(tmp_path / "bad.yaml", edit(synth_spec(tmp_path)))
    with pytest.raises(ConfigError) as err:
        load_sweep_spec(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: "), msg
    assert err.value.key == (key or None), msg
    if key:
        assert f": {key}: " in msg, msg
    assert expected in msg, msg


def test_missing_dataset_root(tmp_path):
    path = write_spec(tmp_path / "s.yaml", synth_spec(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match=r"s\.yaml: dataset\.root: expected an existing folder"):
        load_sweep_spec(path)
    assert load_sweep_spec(path, check_root=False).dataset.root == str(tmp_path / "nowhere")


def test_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="absent.yaml: sweep spec not found"):
        load_sweep_spec(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("study: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: invalid YAML at line 2, column 1"):
        load_sweep_spec(bad)
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: expected a mapping"):
        load_sweep_spec(bad)


def test_backend_config_file_is_read_into_the_resolved_spec(tmp_path):
    from lcrp_core.backends.base import backend_class

    key, value = next(iter(backend_class("classical").defaults.items()))
    cfg = tmp_path / "backend.yaml"
    cfg.write_text(yaml.safe_dump({key: value}))
    spec = parse_sweep_spec(synth_spec(tmp_path, backend={"name": "classical", "config_file": str(cfg)}),
                      source="t.yaml")
    assert spec.to_json()["backend"]["config"][key] == value
    assert "config_file" not in spec.to_json()["backend"]


def test_bad_spec_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    path = write_spec(tmp_path / "bad.yaml", synth_spec("data", points=[{"N": 2}, {"delta": 3}]))
    assert main(["sweep", "run", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0, err  # one line
    assert "points[1].delta" in err and "bad.yaml" in err
    assert not (tmp_path / "studies").exists()
