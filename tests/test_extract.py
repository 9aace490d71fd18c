"""`lcrp extract` and `lcrp cache`: the classical backend on a synthetic benchmark, resumability,
worker processes, corrupt entries, and sam2-clip with random weights on a tiny video."""

import pytest

from lcrp_core.cache.features import CacheScope
from lcrp_core.cache.store import CacheStore
from lcrp_core.cli import main
from lcrp_core.data import load_dataset
from lcrp_core.data.synth import generate


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("synth") / "bench", videos=2, seed=1, frames=6, split="valid",
                    size=(64, 96))


def extract(synth, cache, *extra):
    return main(["-q", "extract", "--dataset", "mevis", "--root", str(synth), "--split", "valid",
                 "--backend", "classical", "--cache-dir", str(cache), *extra])


def proposal_entries(cache):
    return sorted(p for p in cache.rglob("*.lcrp") if "/proposals/" in str(p))


def test_extract_fills_the_cache_and_resumes(synth, tmp_path, capsys):
    cache = tmp_path / "cache"
    assert extract(synth, cache) == 0
    ds = load_dataset("mevis", synth, "valid")
    entries = proposal_entries(cache)
    assert len(entries) == sum(len(v) for v in ds)
    text = [p for p in cache.rglob("*.lcrp") if "/_text/" in str(p)]
    assert len(text) == len({e.text for v in ds for e in v.expressions.values()})
    stamps = {p: p.stat().st_mtime_ns for p in entries}

    # a second run skips every video
    assert extract(synth, cache) == 0
    assert {p: p.stat().st_mtime_ns for p in proposal_entries(cache)} == stamps

    # an interrupted video (marker gone, one frame missing) resumes: only that frame is recomputed
    from lcrp_core.backends.base import create_backend
    scope = CacheScope.of(ds, create_backend("classical"))
    video = next(iter(ds))
    CacheStore(cache).path(f"{scope.features}/{video.name}/complete").unlink()
    missing = CacheStore(cache).path(f"{scope.features}/{video.name}/proposals/00003")
    missing.unlink()
    assert extract(synth, cache) == 0
    assert missing.is_file()
    assert all(p.stat().st_mtime_ns == stamps[p] for p in stamps if p != missing)

    assert main(["cache", "info", "--cache-dir", str(cache)]) == 0
    out = capsys.readouterr().out
    assert "classical-" in out and ds.key in out


def test_corrupt_entry_is_found_by_verify_and_recomputed_by_extract(synth, tmp_path, capsys):
    cache = tmp_path / "cache"
    assert extract(synth, cache) == 0
    victim = proposal_entries(cache)[2]
    victim.write_bytes(victim.read_bytes()[:-10])
    assert main(["cache", "verify", "--cache-dir", str(cache)]) == 1
    out = capsys.readouterr().out
    assert str(victim) in out and "1 failed" in out
    # the marker says the video is complete, but a load of the bad entry recomputes it
    ds = load_dataset("mevis", synth, "valid")
    from lcrp_core.pipeline import EvalContext, Params
    ctx = EvalContext.open(dataset="mevis", root=synth, split="valid", cache_dir=cache)
    res = ctx.evaluate(Params(num_frames=len(next(iter(ds)))))
    assert res.counters.proposals_computed == 1
    assert main(["cache", "verify", "--cache-dir", str(cache)]) == 0
    assert main(["cache", "clear", "--cache-dir", str(cache), "--yes"]) == 0
    assert not proposal_entries(cache)


def test_two_worker_processes_fill_the_same_cache(synth, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    assert extract(synth, one) == 0
    assert extract(synth, two, "--devices", "cpu,cpu") == 0
    a, b = proposal_entries(one), proposal_entries(two)
    assert [p.relative_to(one) for p in a] == [p.relative_to(two) for p in b]
    assert all(x.read_bytes() == y.read_bytes() for x, y in zip(a, b)), "workers compute the same entries"


def test_extract_errors_are_one_line(tmp_path, capsys):
    rc = main(["extract", "--dataset", "mevis", "--root", str(tmp_path / "nope"), "--cache-dir",
               str(tmp_path / "c")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and str(tmp_path / "nope") in err[0]
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("no_such_knob: 3\n")
    rc = main(["extract", "--dataset", "mevis", "--root", str(tmp_path), "--backend", "classical",
               "--backend-config", str(cfg)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "no_such_knob" in err[0], err


@pytest.mark.models
def test_extract_with_sam2_clip_random_init_on_a_tiny_video(tmp_path, caplog):
    pytest.importorskip("sam2", reason="the [models] extra (sam2, open_clip) is not installed")
    pytest.importorskip("open_clip", reason="the [models] extra (sam2, open_clip) is not installed")
    root = generate(tmp_path / "tiny", split="valid", videos=1, seed=2, frames=3, size=(64, 96))
    cfg = tmp_path / "sam2.yaml"
    cfg.write_text("image_size: 256\npoints_per_side: 4\npred_iou_thresh: 0.0\n"
                   "stability_score_thresh: 0.0\nclip_image_size: 64\n")
    cache = tmp_path / "cache"
    argv = ["extract", "--dataset", "mevis", "--root", str(root), "--split", "valid",
            "--backend", "sam2-clip", "--backend-config", str(cfg), "--random-init",
            "--cache-dir", str(cache)]
    assert main(argv) == 0
    assert "random" in caplog.text.lower(), "random weights are announced loudly"
    entries = proposal_entries(cache)
    assert len(entries) == 3 and all("sam2-clip-" in str(p) for p in entries)
    stamps = [p.stat().st_mtime_ns for p in entries]
    assert main(argv) == 0
    assert [p.stat().st_mtime_ns for p in entries] == stamps, "a second run is skipped"
