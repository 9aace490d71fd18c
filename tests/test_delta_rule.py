"""δ is read by one rule everywhere — sweep specs (base, grid, points, TPE ranges), report
selectors and reference imports: a number is a fraction, a string with % a percent, and a bare
number >= 0.05 is refused with a message suggesting the percent. And trials store each
expression's sentence with its scores."""

import pytest

from lcrp_core.errors import ConfigError
from lcrp_core.pipeline import EvalContext, Params
from lcrp_core.pipeline.delta import parse_delta
from lcrp_core.report.spec import parse_report_spec
from lcrp_core.sweep.spec import parse_sweep_spec
from tests.fixtures import make_mevis_dataset

SWEEP = {"study": "s", "dataset": {"kind": "mevis", "root": "/nowhere", "split": "valid_u"},
         "backend": {"name": "classical"}}


@pytest.mark.parametrize(("value", "frac"), [(0.003, 0.003), ("0.003", 0.003), ("0.3%", 0.003),
                                             (0, 0.0), ("30%", 0.3), (0.0499, 0.0499)])
def test_parse_delta(value, frac):
    assert parse_delta(value) == pytest.approx(frac)


@pytest.mark.parametrize("value", [0.3, "0.3", 0.05, 1])
def test_a_bare_number_of_5_percent_or_more_is_refused_with_the_percent_form(value):
    with pytest.raises(ValueError, match=f"write '{value}%' for a percent"):
        parse_delta(value)


@pytest.mark.parametrize(("section", "where"), [
    ({"grid": {"delta": [0.001, 0.3]}}, "grid.delta[1]"),
    ({"points": [{"H": 2, "delta": 0.3}]}, "points[0].delta"),
    ({"base": {"delta": 0.3}, "points": [{"N": 5}]}, "base.delta"),
    ({"tpe": {"params": {"delta": {"low": 0.001, "high": 0.3}}, "n_trials": 3}}, "tpe.params.delta.high"),
])
def test_sweep_specs_refuse_a_bare_percent(section, where):
    with pytest.raises(ConfigError) as err:
        parse_sweep_spec({**SWEEP, **section}, source="s.yaml", check_root=False)
    assert str(err.value).startswith(f"s.yaml: {where}: 0.3 read as a fraction is 30%")
    assert "write '0.3%'" in str(err.value)


def test_sweep_specs_accept_fractions_and_percent_strings_alike():
    a = parse_sweep_spec({**SWEEP, "grid": {"delta": ["0.1%", 0.002]}}, source="a", check_root=False)
    b = parse_sweep_spec({**SWEEP, "grid": {"delta": [0.001, "0.2%"]}}, source="b", check_root=False)
    assert a.grid == b.grid == {"delta": (0.001, 0.002)}
    t = parse_sweep_spec({**SWEEP, "tpe": {"params": {"delta": {"low": "0.05%", "high": "0.5%", "log": True}},
                                     "n_trials": 3}}, source="t", check_root=False)
    assert (t.tpe.params["delta"].low, t.tpe.params["delta"].high) == (0.0005, 0.005)


def test_report_selectors_follow_the_same_rule(tmp_path):
    spec = {"tables": [{"id": "t", "kind": "ablation",
                        "panels": [{"study": "s", "reference": {"delta": "0.3%"}}]}]}
    assert parse_report_spec(spec, path=tmp_path / "r.yaml").tables[0].panels[0].reference == {"delta": 0.003}
    spec["tables"][0]["panels"][0]["reference"] = {"delta": 0.3}
    with pytest.raises(ConfigError, match=r"tables\[0\]\.panels\[0\]\.reference\.delta: 0.3 read as"):
        parse_report_spec(spec, path=tmp_path / "r.yaml")


def test_trials_store_each_expression_text_with_its_scores(tmp_path):
    fx = make_mevis_dataset(tmp_path / "mevis")
    ctx = EvalContext.open(dataset="mevis", root=fx.root, split="valid_u", backend="classical",
                           cache_dir=None)
    try:
        attrs = ctx.evaluate(Params(num_frames=2, top_k=1, refine_rounds=0)).to_attrs()
    finally:
        ctx.close()
    per_expression = attrs["per_expression"]
    assert per_expression["cats/1"]["text"] == "two cats on the left"
    assert per_expression["road/0"]["text"] == "the car driving away"
    assert set(per_expression["cats/0"]) == {"J", "F", "JF", "text"}
