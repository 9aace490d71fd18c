"""From trials to table rows: cell order, COMPLETE only, one trial per (cell, repeat), repeats
as mean ± sample std, trials matched by lcrp_cell or by parameters; formatting helpers."""

import math

import pytest

from lcrp_core.report.cells import best_indices, study_rows, swept_names
from lcrp_core.report.fmt import format_delta, format_param, format_score, parse_delta
from lcrp_core.report.study import MissingStudy, find_study, read_study
from lcrp_core.report.tables import latex_escape
from tests.helpers import cells_of, make_study, trial


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'studies.db'}"


def test_rows_follow_cell_order_count_complete_once_and_average_repeats(url):
    cells = cells_of([{"N": 10, "K": 5}, {"N": 5, "K": 3}, {"N": 7, "K": 3}], repeats=2)
    # c000/c001: (10,5) r0/r1; c002/c003: (5,3) r0/r1; c004/c005: (7,3) r0/r1
    trials = [
        trial(cells[2], None, state="FAIL", with_repeat=True, error="boom"),   # ignored
        trial(cells[2], 70.0, with_repeat=True),
        trial(cells[3], 71.0, with_repeat=True),
        trial(cells[0], 74.0, with_repeat=True),
        trial(cells[1], 75.0, with_repeat=True),
        trial(cells[0], 99.0, with_repeat=True),   # a second run of c000: not counted
        trial(cells[4], 60.0, with_repeat=True),
        trial(cells[5], None, state="RUNNING", with_repeat=True),
    ]
    make_study(url, "s", trials, cells=cells)
    rows = study_rows(read_study("s", storage=url))

    assert [(r.params["N"], r.params["K"]) for r in rows.rows] == [(10, 5), (5, 3), (7, 3)]
    assert [r.values for r in rows.rows] == [[74.0, 75.0], [70.0, 71.0], [60.0]]
    assert rows.rows[0].mean == pytest.approx(74.5)
    assert rows.rows[0].std == pytest.approx(math.sqrt(0.5))  # sample std of 74, 75
    assert rows.rows[2].std is None
    assert rows.missing == ["c005"]
    assert (rows.duplicates, rows.unmatched, rows.pending) == (1, 0, 1)
    assert swept_names(rows.rows) == ["N", "K"]
    assert best_indices(rows.rows) == {0}


def test_trials_without_lcrp_cell_are_matched_by_parameters(url):
    cells = cells_of([{"N": 5, "K": 3}, {"N": 10, "K": 3}])
    t0, t1 = trial(cells[1], 76.0), trial(cells[0], 75.0)
    for t in (t0, t1):
        del t["user_attrs"]["lcrp_cell"]
    stray = trial(None, 50.0, params={"N": 3, "K": 3})
    make_study(url, "s", [t0, t1, stray], cells=cells)
    rows = study_rows(read_study("s", storage=url))
    assert [r.values for r in rows.rows] == [[75.0], [76.0]]
    assert rows.unmatched == 1


def test_study_without_cells_has_one_row_per_parameter_set_in_trial_order(url):
    trials = [trial(None, 60.0, params={"N": 4, "K": 2}), trial(None, 62.0, params={"N": 8, "K": 2}),
              trial(None, 64.0, params={"N": 4, "K": 2})]
    make_study(url, "tpe", trials, kind="tpe")
    rows = study_rows(read_study("tpe", storage=url)).rows
    assert [(r.params, r.values) for r in rows] == [({"N": 4, "K": 2}, [60.0, 64.0]),
                                                   ({"N": 8, "K": 2}, [62.0])]


def test_best_rows_are_the_best_as_printed_ties_included(url):
    cells = cells_of([{"H": 1}, {"H": 2}, {"H": 3}])
    make_study(url, "s", [trial(cells[0], 76.71, swept=("H",)), trial(cells[1], 76.69, swept=("H",)),
                          trial(cells[2], 76.5, swept=("H",))], cells=cells)
    rows = study_rows(read_study("s", storage=url)).rows
    assert best_indices(rows) == {0, 1}  # both print as 76.7


def test_find_study_searches_default_then_studies_dir_and_never_creates_files(tmp_path):
    studies = tmp_path / "studies"
    studies.mkdir()
    shared = f"sqlite:///{studies / 'literature.db'}"
    make_study(shared, "refdavis17_nk", [])
    assert find_study("refdavis17_nk", studies_dir=studies) == shared
    with pytest.raises(MissingStudy, match="nope"):
        find_study("nope", studies_dir=studies)
    with pytest.raises(MissingStudy, match="no study 'nope'"):
        find_study("nope", storage=shared)
    assert sorted(p.name for p in studies.iterdir()) == ["literature.db"]  # no nope.db created


def test_formatting_and_parsing():
    assert [format_delta(x) for x in (0.001, 0.002, 0.003, 0.0015, 0.0)] == \
        ["0.1%", "0.2%", "0.3%", "0.15%", "0%"]
    assert format_param("N", 10) == "10" and format_param("lam", 0.5) == "0.5"
    assert format_param("K", 10.0) == "10"
    assert format_score(76.66) == "76.7" and format_score(None) == "–"
    assert format_score(74.5, math.sqrt(0.5)) == "74.5 ± 0.7"
    assert parse_delta("0.3%") == 0.003 and parse_delta(" 0.25 % ") == 0.0025
    assert parse_delta("0.003") == 0.003 and parse_delta(0.001) == 0.001 and parse_delta("30%") == 0.3
    for bad in ("0.3", 0.3, "abc", "-1%", "100%", True):
        with pytest.raises(ValueError):
            parse_delta(bad)
    assert latex_escape("~15 G, 0.3%, 76.7 ± 0.2, –, a_b & c") == \
        r"$\sim$15 G, 0.3\%, 76.7 $\pm$ 0.2, --, a\_b \& c"
