"""The whole pipeline with the classical backend on a small synthetic benchmark: J&F is neither
trivial nor saturated, every parameter matters, and a repeated evaluation computes nothing."""

import numpy as np
import pytest

from lcrp_core.cli import main
from lcrp_core.data.synth import generate
from lcrp_core.pipeline import EvalContext, Params, evaluate

#: the seed's ablation values (Ref-DAVIS17 and MeViS), each swept around the base N=10, K=3, H=3, δ=0.3 %
SEED_VALUES = {"N": [5, 7, 10], "K": [3, 5, 10], "H": [1, 2, 3], "delta": [0.001, 0.002, 0.003]}
BASE = Params(num_frames=10, top_k=3, refine_rounds=3, min_region_frac=0.003)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("synth") / "bench", split="valid", videos=4, seed=3, frames=24,
                    size=(120, 160))


@pytest.fixture(scope="module")
def ctx(synth, tmp_path_factory):
    ctx = EvalContext.open(dataset="mevis", root=synth, split="valid", backend="classical",
                           protocol="per-expression", cache_dir=tmp_path_factory.mktemp("cache"))
    yield ctx
    ctx.close()


def test_jf_is_neither_trivial_nor_saturated_and_repeats_compute_nothing(ctx, synth):
    first = ctx.evaluate(BASE)
    assert 30 < first.JF < 95, first.JF
    assert first.JF == pytest.approx((first.J + first.F) / 2)
    assert first.counters.proposals_computed > 0 and first.counters.tracks_computed > 0
    assert set(first.per_video) == set(ctx.dataset.videos)
    assert len(first.per_expression) == ctx.dataset.num_expressions

    again = ctx.evaluate(BASE)
    assert again.counters.computed == 0, again.counters
    assert again.counters.propagation_passes == 0 and again.counters.proposals_computed == 0
    assert again.JF == first.JF and again.per_expression == first.per_expression

    # a new context over the same cache (another worker, another day) also computes nothing
    fresh = EvalContext.open(dataset="mevis", root=synth, split="valid", backend="classical",
                             protocol="per-expression", cache_dir=ctx.store.root)
    cold_again = fresh.evaluate(BASE)
    assert cold_again.counters.computed == 0, cold_again.counters
    assert cold_again.counters.derived_loaded > 0, "Core choices and Path outputs come from the cache"
    assert cold_again.JF == first.JF

    # the one-shot form gives the same scores
    one_shot = evaluate(ctx.dataset, ctx.backend, BASE, "per-expression", cache_dir=ctx.store.root)
    assert one_shot.JF == first.JF and one_shot.counters.computed == 0


@pytest.mark.parametrize("name", ["N", "K", "H", "delta"])
def test_each_parameter_changes_jf_across_the_seed_values(ctx, name):
    """A change a table shows (J&F printed with one decimal), made by segmentations that differ
    (some expression's J&F moves by a point or more), not by rounding noise."""
    results = {v: ctx.evaluate(Params.from_mapping({name: v}, base=BASE)) for v in SEED_VALUES[name]}
    shown = {v: f"{r.JF:.1f}" for v, r in results.items()}
    assert len(set(shown.values())) > 1, f"{name} does not change J&F as a table prints it: {shown}"
    per_expr = [r.per_expression for r in results.values()]
    moves = {key: max(p[key]["JF"] for p in per_expr) - min(p[key]["JF"] for p in per_expr)
             for key in per_expr[0]}
    assert max(moves.values()) >= 1.0, f"{name} moves no expression's J&F by a point: {moves}"
    for r in results.values():  # the dataset score is the mean over the expressions it scored
        assert r.JF == pytest.approx(np.mean([e["JF"] for e in r.per_expression.values()]))


def test_configurations_that_share_seeds_share_tracks(ctx):
    ctx.evaluate(BASE)
    before = ctx.counters.copy()
    # H and δ do not change which candidates Core propagates: its tracks are all reused, and
    # only Path's tracks of anchors refined differently are new
    ctx.evaluate(Params.from_mapping({"H": 2, "delta": 0.002}, base=BASE))
    spent = ctx.counters - before
    assert spent.proposals_computed == 0
    n_expr = ctx.dataset.num_expressions
    assert 0 < spent.tracks_requested <= n_expr * (BASE.top_k + 1)
    assert spent.tracks_computed <= n_expr, "at most one new (Path) track per expression"


def test_lcrp_run_segments_a_synthetic_video_from_a_sentence(synth, tmp_path):
    ds_video = next(p for p in sorted((synth / "valid" / "JPEGImages").iterdir()))
    out = tmp_path / "out"
    rc = main(["-q", "run", "--video", str(ds_video), "--text", "the red circle", "--out", str(out),
               "--N", "5", "--K", "2", "--cache-dir", str(tmp_path / "cache")])
    assert rc == 0
    frames = sorted(ds_video.iterdir())
    masks = sorted((out / "masks").iterdir())
    assert [p.stem for p in masks] == [p.stem for p in frames]
    assert (out / "overlay.gif").stat().st_size > 0 and (out / "run.json").is_file()
    from PIL import Image
    gif = Image.open(out / "overlay.gif")
    assert gif.n_frames == len(frames)
    assert set(np.unique(np.asarray(Image.open(masks[0])))) <= {0, 255}


@pytest.mark.parametrize("argv,needle", [
    (["--text", "   "], "sentence is empty"),
    (["--text", "a ball", "--K", "0"], "K: expected K >= 1"),
    (["--text", "a ball", "--delta", "2"], "delta: expected 0 <= delta < 1"),
])
def test_lcrp_run_rejects_bad_input_with_one_line(synth, tmp_path, capsys, argv, needle):
    video = next(p for p in sorted((synth / "valid" / "JPEGImages").iterdir()))
    rc = main(["run", "--video", str(video), "--out", str(tmp_path / "o"), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and needle in err[0], err
    assert not (tmp_path / "o").exists(), "nothing half-written"


def test_lcrp_run_rejects_an_unreadable_video(tmp_path, capsys):
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(b"definitely not a video")
    rc = main(["run", "--video", str(bad), "--text", "the dog", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and str(bad) in err[0], err


def test_lcrp_run_reads_a_video_file_and_writes_an_mp4_overlay(synth, tmp_path):
    import cv2

    from lcrp_core.data.io import read_rgb
    frames = [read_rgb(p) for p in sorted(next((synth / "valid" / "JPEGImages").iterdir()).iterdir())]
    clip = tmp_path / "clip.mp4"
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10, (w, h))
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    out = tmp_path / "out"
    assert main(["-q", "run", "--video", str(clip), "--text", "the blue square", "--out", str(out),
                 "--preset", "findtrack", "--overlay", "overlay.mp4",
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    assert len(list((out / "masks").iterdir())) == len(frames)
    cap = cv2.VideoCapture(str(out / "overlay.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == len(frames)
    cap.release()
