"""Report specs: the checked-in specs load; bad specs fail with one ConfigError naming the
file and the key path, also through the CLI."""

from pathlib import Path

import pytest

from lcrp_core.cli import main
from lcrp_core.errors import ConfigError
from lcrp_core.report.spec import AblationTable, ResourceTable, load_report_spec

REPO = Path(__file__).parent.parent
GOOD = "tables: [{id: t, kind: ablation, panels: [s]}]\n"


@pytest.mark.parametrize("path", [REPO / "reports" / "lcrp_paper.yaml",
                                  REPO / "lcrp_core" / "commands" / "demo_specs" / "reports" / "demo.yaml"],
                         ids=lambda p: p.stem)
def test_checked_in_specs_load(path):
    name = path.stem
    spec = load_report_spec(path)
    assert spec.name == name
    assert [type(t) for t in spec.tables][-1] is ResourceTable


def test_paper_spec_names_the_seed_tables():
    spec = load_report_spec(REPO / "reports" / "lcrp_paper.yaml")
    ablations = [t for t in spec.tables if isinstance(t, AblationTable)]
    assert [[(p.study, p.columns) for p in t.panels] for t in ablations] == [
        [("refdavis17_nk", ("N", "K")), ("refdavis17_hd", ("H", "delta"))],
        [("mevis_nk", ("N", "K")), ("mevis_hd", ("H", "delta"))],
    ]
    resources = spec.tables[-1]
    assert [r.method for r in resources.rows][:2] == ["SOC", "ReferDINO"]
    assert resources.rows[-1].params == {"N": 10, "K": 3, "H": 3, "delta": 0.003}


@pytest.mark.parametrize(("text", "key", "expected"), [
    ("", "", "empty"),
    ("- a\n", "", "expected a mapping"),
    ("tables: [{id: t, kind: ablation, panels: [s]}]\nbogus: 1\n", "bogus", "unknown key"),
    ("tables: [{id: t, kind: grid, panels: [s]}]\n", "tables[0].kind", "'ablation' or 'resources'"),
    ("tables: [{id: t, kind: ablation}]\n", "tables[0].panels", "missing"),
    ("tables: [{id: t, kind: ablation, panels: [{study: s, columns: [N, X]}]}]\n",
     "tables[0].panels[0].columns[1]", "parameter name"),
    ("tables: [{id: t, kind: ablation, panels: [{study: s, colums: [N]}]}]\n",
     "tables[0].panels[0].colums", "unknown key"),
    ("tables: [{id: 'a/b', kind: ablation, panels: [s]}]\n", "tables[0].id", "name of letters"),
    ("tables: [{id: r, kind: resources, rows: [{method: X, params: {N: 10}}]}]\n",
     "tables[0].rows[0].params", "give 'study'"),
    ("tables: [{id: r, kind: resources, rows: [{method: X, study: s, params: {delta: 0.3}}]}]\n",
     "tables[0].rows[0].params.delta", "0.3%"),
    ("tables: [{id: r, kind: resources, rows: [{method: X, fps: [1]}]}]\n",
     "tables[0].rows[0].fps", "as printed"),
    (GOOD + "plots: [{kind: heatmap, study: s, x: N}]\n", "plots[0].y", "missing"),
    (GOOD + "plots: [{kind: lines, study: s, x: N, series: N}]\n", "plots[0].series", "other than"),
    (GOOD + "plots: [{kind: pie, study: s}]\n", "plots[0].kind", "heatmap"),
    (GOOD + "plots: [{kind: history, study: s, id: t}]\n", "plots[0].id", "duplicate id 't'"),
    (GOOD + "options: {std: yes please}\n", "options.std", "true or false"),
    (GOOD + "options: {plot_formats: [png, svg]}\n", "options.plot_formats[1]", "'png', 'pdf'"),
    (GOOD + "name: literature\n", "name", "reserved"),
    (GOOD + "title: 5\n", "title", "expected a non-empty string, got 5"),
    (GOOD + "options: {dpi: high}\n", "options.dpi", "expected an integer from 50 to 1200, got 'high'"),
    ("tables: [{id: t, kind: ablation, panels: s}]\n", "tables[0].panels",
     "expected a non-empty list, got 's'"),
    ("plots: [{kind: history}]\n", "plots[0].study", "missing required key"),
    ("tables: [\n", "", "invalid YAML at line"),
])
def test_bad_specs_name_file_and_key(tmp_path, text, key, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_report_spec(path)
    assert info.value.path == str(path)
    assert (info.value.key or "") == key
    assert expected in str(info.value)


def test_cli_prints_one_line_error_for_a_bad_spec(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("tables: [{id: t, kind: ablation, panels: [{study: s, columns: [Q]}]}]\n")
    assert main(["report", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith(f"lcrp report: error: {path}: tables[0].panels[0].columns[0]: ")
    assert main(["report", str(tmp_path / "nope.yaml")]) == 2
    assert "report spec not found" in capsys.readouterr().err
