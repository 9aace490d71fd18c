"""CIs and paired tests of ablation rows, checked against independent computations on hand-made
per-video / per-expression scores: a BCa bootstrap written out here with numpy (Efron &
Tibshirani, ch. 14: bias correction from the bootstrap distribution, acceleration from the
jackknife over videos), and the exact sign-flip distribution enumerated with itertools."""

import itertools
import math
from statistics import NormalDist

import numpy as np
import pytest

from lcrp_core.cli import main
from lcrp_core.report import significance as sig
from tests.helpers import cells_of, make_study, trial

VIDEOS = ("bear", "camel", "dog", "goat", "horse", "kite", "lion", "mbike", "paint", "swan")
#: per-video J&F of the base configuration (hand-made, spread like real videos)
BASE = dict(zip(VIDEOS, (71.0, 64.5, 80.25, 58.0, 76.0, 69.5, 62.0, 83.5, 73.0, 67.25), strict=True))
#: a clearly better row: higher on every video
BETTER = (5.0, 4.0, 6.5, 3.0, 5.5, 4.5, 2.5, 6.0, 3.5, 5.0)
#: a row within noise of the base
NOISE = (0.5, -0.5, 0.25, -0.25, 0.5, -0.5, 0.75, -0.75, 0.0, 0.25)


def independent_bca(groups, *, n=40000, seed=1, level=0.95):
    """BCa interval of the mean over all items, resampling the groups (videos) whole."""
    rng = np.random.default_rng(seed)
    flat = np.concatenate(groups)
    theta = flat.mean()
    k = len(groups)
    boots = np.empty(n)
    for b in range(n):
        pick = rng.integers(0, k, k)
        boots[b] = np.concatenate([groups[i] for i in pick]).mean()
    jack = np.array([np.concatenate([g for j, g in enumerate(groups) if j != i]).mean()
                     for i in range(k)])
    d = jack.mean() - jack
    a = (d ** 3).sum() / (6 * ((d ** 2).sum()) ** 1.5)
    z0 = NormalDist().inv_cdf((boots < theta).mean())
    out = []
    for q in ((1 - level) / 2, (1 + level) / 2):
        z = NormalDist().inv_cdf(q)
        out.append(np.quantile(boots, NormalDist().cdf(z0 + (z0 + z) / (1 - a * (z0 + z)))))
    return theta, out[0], out[1]


def exact_sign_flip_p(diffs):
    """P(|Σ s_i d_i| >= |Σ d_i|) over all 2^n sign vectors."""
    observed = abs(sum(diffs))
    hits = sum(abs(sum(s * d for s, d in zip(signs, diffs, strict=True))) >= observed - 1e-9
               for signs in itertools.product((1, -1), repeat=len(diffs)))
    return hits / 2 ** len(diffs)


def as_items(per_video):
    return {v: {"J": s - 1, "F": s + 1, "JF": s} for v, s in per_video.items()}


def test_ci_of_per_video_scores_matches_an_independent_bca():
    ci = sig.item_ci(as_items(BASE), "JF")
    theta, low, high = independent_bca([np.array([s]) for s in BASE.values()])
    assert ci.value == pytest.approx(theta)
    assert ci.low == pytest.approx(low, abs=0.2) and ci.high == pytest.approx(high, abs=0.2)
    assert ci.low < theta < ci.high
    assert sig.item_ci(as_items(BASE), "J").value == pytest.approx(theta - 1)


def test_expressions_are_resampled_with_their_video():
    # videos with 1–3 expressions: the statistic is the mean over expressions
    scores = {"bear": [70.0, 74.0], "camel": [60.0], "dog": [82.0, 79.0, 85.0], "goat": [55.0, 61.0],
              "horse": [77.0], "kite": [66.0, 72.0, 69.0]}
    items = {f"{v}/{i}": {"J": s, "F": s, "JF": s} for v, ss in scores.items() for i, s in enumerate(ss)}
    ci = sig.item_ci(items, "JF")
    theta, low, high = independent_bca([np.array(ss) for ss in scores.values()])
    assert ci.value == pytest.approx(theta)
    assert ci.low == pytest.approx(low, abs=0.2) and ci.high == pytest.approx(high, abs=0.2)
    # resampling expressions one by one would ignore the clustering and give another interval
    flat = sig.item_ci({k.replace("/", "_"): v for k, v in items.items()}, "JF")
    assert flat.value == pytest.approx(ci.value) and (flat.low, flat.high) != (ci.low, ci.high)


def test_identical_rows_have_zero_delta_and_p_one():
    result = sig.paired(as_items(BASE), as_items(BASE))
    assert result.delta == sig.Interval(0.0, 0.0, 0.0)
    assert result.p == 1.0 and result.videos == len(VIDEOS)
    assert sig.item_ci(as_items({v: 70.0 for v in VIDEOS})) == sig.Interval(70.0, 70.0, 70.0)


@pytest.mark.parametrize("diffs", [BETTER, NOISE, (2.0, -1.0, 3.0, 0.5, -0.5, 1.5, 1.0, 2.5, -2.0, 0.0)])
def test_paired_difference_matches_exact_sign_flip_and_bca(diffs):
    better = {v: BASE[v] + d for v, d in zip(VIDEOS, diffs, strict=True)}
    result = sig.paired(as_items(better), as_items(BASE))
    assert result.p == pytest.approx(exact_sign_flip_p(diffs))
    theta, low, high = independent_bca([np.array([d]) for d in diffs])
    assert result.delta.value == pytest.approx(theta)
    assert result.delta.low == pytest.approx(low, abs=0.2)
    assert result.delta.high == pytest.approx(high, abs=0.2)


def test_holm_correction():
    # step-down: sorted p·(m−rank), made monotone, capped at 1 — values worked by hand
    assert sig.holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert sig.holm([0.2, 0.6]) == pytest.approx([0.4, 0.6])
    assert sig.holm([]) == []


def test_format_p():
    assert [sig.format_p(p) for p in (0.0004, 0.03125, 0.25, 1.0)] == ["<0.001", "0.031", "0.25", "1"]


SPEC = """
name: trust
options: {scores: [JF, J, F], ci: true, paired: true, plot_formats: [png]}
tables:
  - {id: same, kind: ablation, title: Same, panels: [{study: same, columns: [N, K]}]}
  - {id: one_better, kind: ablation, title: One better, panels: [{study: better, columns: [N, K]}]}
"""


@pytest.fixture(scope="module")
def trust_report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trust")
    url = f"sqlite:///{tmp / 's.db'}"
    cells = cells_of([{"N": 5, "K": 3}, {"N": 10, "K": 3}, {"N": 10, "K": 5}])  # base is N=10 K=3
    mean = sum(BASE.values()) / len(BASE)
    make_study(url, "same", [trial(c, mean, per_video=BASE) for c in cells], cells=cells)
    better = {v: BASE[v] + d for v, d in zip(VIDEOS, BETTER, strict=True)}
    noise = {v: BASE[v] + d for v, d in zip(VIDEOS, NOISE, strict=True)}
    values = [sum(s.values()) / len(s) for s in (noise, BASE, better)]
    make_study(url, "better", [trial(c, v, per_video=s) for c, v, s in
                               zip(cells, values, (noise, BASE, better), strict=True)], cells=cells)
    spec = tmp / "trust.yaml"
    spec.write_text(SPEC)
    assert main(["report", str(spec), "--storage", url, "--out", str(tmp / "out"), "-q"]) == 0
    return tmp / "out"


def _rows(md):
    return [[c.strip().strip("*") for c in line.strip("|").split("|")]
            for line in md.splitlines() if line.startswith("| ") and not line.startswith("| N ")]


def test_report_identical_rows_are_all_within_noise(trust_report):
    out = trust_report
    md = (out / "same.md").read_text()
    assert "| N | K | J&F | J | F | Δ vs ref | p (Holm) |" in md
    theta, low, high = independent_bca([np.array([s]) for s in BASE.values()])
    rows = _rows(md)
    assert [r[-2:] for r in rows] == [["+0.0 [0.0, 0.0]", "1"], ["ref", "–"], ["+0.0 [0.0, 0.0]", "1"]]
    for r in rows:
        lo, hi = (float(x) for x in r[2].split("[")[1].rstrip("]†").split(","))
        assert r[2].startswith(f"{theta:.1f} [")
        assert lo == pytest.approx(low, abs=0.2) and hi == pytest.approx(high, abs=0.2)
    assert sum(r[2].endswith("†") for r in rows) == 2  # the best (first on a tie) is bold, not †
    assert "within noise" in md


def test_report_one_clearly_better_row(trust_report):
    out = trust_report
    md = (out / "one_better.md").read_text()
    rows = _rows(md)
    noise, best = rows[0], rows[2]
    # against the base (reference): exact sign-flip p-values, Holm over the two other rows
    holm = sig.holm([exact_sign_flip_p(NOISE), exact_sign_flip_p(BETTER)])
    assert best[-1] == sig.format_p(holm[1]) == "0.004"  # 2/1024, times 2
    assert noise[-1] == sig.format_p(holm[0]) and holm[0] > 0.5
    theta, low, high = independent_bca([np.array([d]) for d in BETTER])
    delta, interval = best[-2].split(" ", 1)
    assert float(delta) == pytest.approx(theta, abs=0.05)
    lo, hi = (float(x) for x in interval.strip("[]").split(","))
    assert lo == pytest.approx(low, abs=0.2) and hi == pytest.approx(high, abs=0.2)
    # against the best: both other rows are lower on every video, so significantly worse
    assert not any(r[2].endswith("†") for r in rows)
    assert "every other row is significantly worse than the best one" in md
    assert "**" + best[2] + "**" in md  # bold
    assert math.isclose(float(best[2].split()[0]),
                        sum(BASE[v] + d for v, d in zip(VIDEOS, BETTER, strict=True)) / 10, abs_tol=0.05)


def test_repeats_report_seed_spread_and_video_ci_separately(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    cells = cells_of([{"N": 5, "K": 3}, {"N": 10, "K": 3}], repeats=2)
    shifts = (-0.5, 0.5, 1.0, 1.4)  # per repeat: the seeds move every video together
    trials = []
    for cell, shift in zip(cells, shifts, strict=True):
        per_video = {v: s + shift for v, s in BASE.items()}
        trials.append(trial(cell, sum(per_video.values()) / len(per_video), per_video=per_video,
                            with_repeat=True))
    make_study(url, "rep", trials, cells=cells)
    spec = tmp_path / "rep.yaml"
    spec.write_text("options: {std: true, ci: true}\n"
                    "tables: [{id: rep, kind: ablation, panels: [{study: rep, columns: [N, K]}]}]\n")
    assert main(["report", str(spec), "--storage", url, "--out", str(tmp_path / "o"), "-q"]) == 0
    md = (tmp_path / "o" / "rep.md").read_text()
    mean = sum(BASE.values()) / len(BASE)
    theta, low, high = independent_bca([np.array([s]) for s in BASE.values()])
    first = _rows(md)[0][2]  # N=5: repeats at −0.5 and +0.5: mean, sd over seeds 0.7, CI over videos
    assert first.startswith(f"{mean:.1f} ± 0.7 [")
    lo, hi = (float(x) for x in first.split("[")[1].rstrip("]†").split(","))
    assert lo == pytest.approx(low, abs=0.2) and hi == pytest.approx(high, abs=0.2)
    assert "standard deviation over repeats (seeds)" in md


def test_one_video_has_no_interval_and_no_test():
    one = {"bear": {"J": 70.0, "F": 74.0, "JF": 72.0}}
    ci = sig.item_ci(one, "JF")
    assert ci.value == 72.0 and not ci.defined and (ci.low, ci.high) == (None, None)
    result = sig.paired({"bear": {"J": 75.0, "F": 79.0, "JF": 77.0}}, one)
    assert result.delta.value == pytest.approx(5.0) and not result.delta.defined
    assert result.p is None and result.videos == 1
    # several expressions of one video are still one cluster: no interval, no test
    exprs = {f"bear/{i}": {"J": s, "F": s, "JF": s} for i, s in enumerate((60.0, 70.0, 80.0))}
    assert not sig.item_ci(exprs).defined
    assert sig.paired({k: {"JF": v["JF"] + 1} for k, v in exprs.items()}, exprs).p is None
    # two videos are enough for both
    assert sig.paired(as_items({"a": 70.0, "b": 60.0}), as_items({"a": 68.0, "b": 59.0})).p == 0.5


def _report(tmp_path, studies, tables):
    url = f"sqlite:///{tmp_path / 's.db'}"
    for name, trials, cells in studies:
        make_study(url, name, trials, cells=cells)
    spec = tmp_path / "r.yaml"
    spec.write_text("options: {scores: [JF, J, F], ci: true, paired: true, plot_formats: [png]}\n"
                    "tables:\n" + "".join(
                        f"  - {{id: {t}, kind: ablation, title: {t}, panels: [{{study: {t}, columns: [N, K]}}]}}\n"
                        for t in tables)
                    + "plots:\n" + "".join(f"  - {{kind: forest, study: {t}}}\n" for t in tables))
    assert main(["report", str(spec), "--storage", url, "--out", str(tmp_path / "out"), "-q"]) == 0
    return tmp_path / "out"


def test_report_over_one_video_shows_points_and_says_why(tmp_path):
    cells = cells_of([{"N": 5, "K": 3}, {"N": 10, "K": 3}, {"N": 10, "K": 5}])  # base is N=10 K=3
    scores = (71.0, 64.5, 64.5)
    out = _report(tmp_path, [("one", [trial(c, s, per_video={"bear": s}) for c, s in
                                      zip(cells, scores, strict=True)], cells)], ["one"])
    md = (out / "one.md").read_text()
    rows = _rows(md)
    assert [r[2:] for r in rows] == [["71.0", "70.0", "72.0", "+6.5", "–"],
                                     ["64.5", "63.5", "65.5", "ref", "–"],
                                     ["64.5", "63.5", "65.5", "+0.0", "–"]]
    assert "one: one video: no confidence interval or test is possible" in md
    assert "within noise" not in md and not any("†" in c or "[" in c for r in rows for c in r)
    assert "Warning" not in md and (out / "forest_one.png").is_file()
    for ext in ("html", "tex"):
        assert "one video: no confidence interval or test is possible" in (out / f"one.{ext}").read_text()


def test_rows_sharing_one_video_get_no_test_and_the_note_names_them(tmp_path):
    # N=5 K=3 was scored on one video only (shared with the others): no CI, no Δ test, no †
    cells = cells_of([{"N": 5, "K": 3}, {"N": 10, "K": 3}, {"N": 10, "K": 5}])
    noise = {v: BASE[v] + d for v, d in zip(VIDEOS, NOISE, strict=True)}
    mean = sum(BASE.values()) / len(BASE)
    trials = [trial(cells[0], 50.0, per_video={"bear": 50.0}), trial(cells[1], mean, per_video=BASE),
              trial(cells[2], sum(noise.values()) / 10, per_video=noise)]
    lone_best = [trial(cells[0], 90.0, per_video={"bear": 90.0}), *trials[1:]]
    out = _report(tmp_path, [("mixed", trials, cells), ("lone", lone_best, cells)], ["mixed", "lone"])
    md = (out / "mixed.md").read_text()
    lone, ref, other = _rows(md)
    assert lone[2:] == ["50.0", "49.0", "51.0", f"{50.0 - BASE['bear']:+.1f}", "–"]
    assert ref[2].split(" [")[0].rstrip("†") == f"{mean:.1f}" and ref[-2:] == ["ref", "–"]
    assert "[" in other[2] and other[-1] == sig.format_p(exact_sign_flip_p(NOISE))  # Holm over 1 row
    assert "row (N=5 K=3) has scores on one video only: no confidence interval" in md
    assert "row (N=5 K=3) shares fewer than two videos with the reference row" in md
    assert "row (N=5 K=3) shares fewer than two videos with the best row" in md
    assert "over the 1 rows" in md and not lone[2].endswith("†")
    assert (out / "forest_mixed.png").is_file()
    # the best row has one video: nothing can be tested against it, and the note says so
    md = (out / "lone.md").read_text()
    assert "bootstrap over the 10 videos" in md and "over 10 videos, Holm-corrected over the 1 rows" in md
    assert "rows (N=10 K=3), (N=10 K=5) share fewer than two videos with the best row" in md
    assert "within noise" not in md and "significantly worse" not in md
    assert not any(c.endswith("†") for r in _rows(md) for c in r)
