"""The synthetic benchmark: deterministic bytes, the MeViS layout read back by the MeViS reader,
sentences that name real attributes of their referents, refusal to overwrite, and the CLI."""

import json
import re

import numpy as np
import pytest

from lcrp_core.cli import main
from lcrp_core.data import load_dataset, synth
from lcrp_core.errors import ConfigError, DataError
from lcrp_core.masks import rle_decode

SMALL = {"videos": 3, "seed": 5, "frames": (6, 9), "size": (64, 80)}


def _tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return synth.generate(tmp_path_factory.mktemp("synth") / "bench", **SMALL)


def test_same_parameters_give_byte_identical_trees(bench, tmp_path):
    again = synth.generate(tmp_path / "again", **SMALL)
    assert _tree(again) == _tree(bench)
    other = synth.generate(tmp_path / "other", **{**SMALL, "seed": 6})
    assert _tree(other) != _tree(bench)


def test_layout_is_mevis_and_reads_back_with_the_mevis_reader(bench):
    split = bench / "valid_u"
    meta = json.loads((split / "meta_expressions.json").read_text())
    mask_dict = json.loads((split / "mask_dict.json").read_text())
    assert set(meta) == {"videos"} and len(meta["videos"]) == SMALL["videos"]
    ds = load_dataset("mevis", bench)
    assert list(ds.videos) == sorted(meta["videos"])
    for name, video in ds.videos.items():
        entry = meta["videos"][name]
        frames = entry["frames"]
        assert 6 <= len(frames) <= 9 and frames == [f"{t:05d}" for t in range(len(frames))]
        assert sorted(p.name for p in (split / "JPEGImages" / name).iterdir()) == [f + ".jpg" for f in frames]
        assert video.size == (64, 80) and video.frame(0).shape == (64, 80, 3)
        assert 3 <= len(video.expressions) <= 5
        for exp_id, expr in video.expressions.items():
            raw = entry["expressions"][exp_id]
            assert expr.text == raw["exp"] and len(raw["obj_id"]) == len(raw["anno_id"]) >= 1
            per_frame = [[rle_decode(r) if r is not None else np.zeros((64, 80), bool)
                          for r in mask_dict[str(a)]] for a in raw["anno_id"]]
            assert all(len(p) == len(frames) for p in per_frame)
            union = np.any(np.array(per_frame), axis=0)
            gt = video.gt_mask(exp_id)
            assert gt.shape == (len(frames), 64, 80) and np.array_equal(gt, union)
            assert gt.any()


def test_masks_are_the_rendered_visible_masks_and_absent_objects_are_null(tmp_path):
    params = {"videos": 2, "seed": 7, "frames": 30, "size": (64, 80)}
    root = synth.generate(tmp_path / "long", **params)
    mask_dict = json.loads((root / "valid_u" / "mask_dict.json").read_text())
    meta = json.loads((root / "valid_u" / "meta_expressions.json").read_text())["videos"]
    anno, nulls = 0, 0  # anno ids number every object, video after video
    for i in range(params["videos"]):
        scene = synth.make_video(params["seed"], i, frames=(30, 30), size=params["size"])
        for e in meta[scene.name]["expressions"].values():
            assert e["anno_id"] == [anno + o for o in e["obj_id"]]
        for t, (rgb, visible) in enumerate(synth.render(scene)):
            assert rgb.dtype == np.uint8 and rgb.shape == (64, 80, 3)
            # visible masks never overlap: depth order decides who is seen
            assert visible.sum(axis=0).max() <= 1
            for obj in scene.objects:
                rle = mask_dict[str(anno + obj.obj_id)][t]
                if rle is None:
                    nulls += 1
                    assert not visible[obj.obj_id].any()
                else:
                    assert np.array_equal(rle_decode(rle), visible[obj.obj_id])
        anno += len(scene.objects)
    assert len(mask_dict) == anno
    assert nulls > 0  # objects enter, leave or hide behind others


#: words of the generator's grammar → the attribute they name
_COLOURS = set(synth.PALETTE)
_SHAPES = {**{s: s for s in synth.SHAPES}, **{s + "s": s for s in synth.SHAPES}}
_MOTION = {"left": "left", "right": "right", "up": "up", "upwards": "up", "down": "down",
           "downwards": "down"}


def _hue(rgb: np.ndarray) -> float:
    import cv2

    lab = cv2.cvtColor(np.asarray(rgb, np.uint8).reshape(1, -1, 3), cv2.COLOR_RGB2LAB)[0].astype(float)
    return float(np.degrees(np.arctan2(lab[:, 2].mean() - 128, lab[:, 1].mean() - 128)))


def _hue_distance(a: float, b: float) -> float:
    return abs((a - b + 180) % 360 - 180)


def test_sentences_name_real_attributes_of_their_referents_uniquely():
    kinds, multi = set(), 0
    for i in range(12):
        scene = synth.make_video(11, i, frames=(20, 30), size=(120, 160))
        objects = {o.obj_id: o for o in scene.objects}
        assert 4 <= len(objects) <= 6 and 3 <= len(scene.expressions) <= 5
        assert len({e.text for e in scene.expressions}) == len(scene.expressions)
        for e in scene.expressions:
            kinds.add(e.kind)
            words = re.findall(r"[a-z]+", e.text)
            refs = [objects[o] for o in e.obj_ids]
            colours = [w for w in words if w in _COLOURS]
            shapes = [_SHAPES[w] for w in words if w in _SHAPES]
            assert colours or shapes, e.text
            for c in colours:
                assert all(r.colour == c for r in refs), e.text
            for s in shapes:
                assert all(r.shape == s for r in refs), e.text
            if len(refs) > 1:
                multi += 1
                assert {"two", "three", "four", "five", "both"} & set(words), e.text
                # the group is every object of that colour (and shape)
                same = [o.obj_id for o in objects.values() if o.colour == colours[0]
                        and (not shapes or o.shape == shapes[0])]
                assert sorted(same) == sorted(e.obj_ids), e.text
                continue
            (ref,) = refs
            if {"still", "not"} & set(words):
                assert ref.motion == "still", e.text
            elif {"moving", "going", "heading"} & set(words):
                assert ref.motion == _MOTION[words[-1]], e.text
            if "small" in words:
                assert ref.size == "small", e.text
            if {"big", "large"} & set(words):
                assert ref.size == "large", e.text
            twins = [o for o in objects.values() if o is not ref
                     and (o.colour, o.shape) == (ref.colour, ref.shape)]
            if e.kind in ("superlative", "position"):  # relative to same-looking objects
                assert twins, e.text
            if e.kind == "superlative":
                bigger = bool({"biggest", "largest"} & set(words))
                assert all((ref.radius > o.radius) == bigger for o in twins), e.text
            if e.kind == "position":
                word = next(w for w in ("left", "right", "top", "bottom") if w in words)
                axis, sign = {"left": (0, -1), "right": (0, 1), "top": (1, -1), "bottom": (1, 1)}[word]
                for t in range(scene.num_frames):
                    for o in twins:
                        a, b = ref.centre(t), o.centre(t)
                        if all(0 <= p[0] <= 160 and 0 <= p[1] <= 120 for p in (a, b)):
                            assert sign * (a[axis] - b[axis]) > 0, (e.text, t)
            # matching on the attributes the sentence states finds only the referent
            stated = {"colour": colours[0] if colours else None, "shape": shapes[0] if shapes else None}
            if e.kind in ("colour_shape", "colour", "shape"):
                matches = [o for o in objects.values()
                           if all(v is None or getattr(o, k) == v for k, v in stated.items())]
                assert matches == [ref], e.text
    assert multi >= 2
    assert {"motion", "group"} <= kinds and len(kinds) >= 6, kinds


def test_named_colours_are_what_the_pixels_show(bench):
    """The mean hue of an object's ground-truth pixels in the JPEGs is nearest its own colour."""
    ds = load_dataset("mevis", bench)
    hues = {name: _hue(np.array(rgb)) for name, rgb in synth.PALETTE.items()}
    checked = 0
    for video in ds:
        frames = video.frames()
        for exp_id, expr in video.expressions.items():
            words = re.findall(r"[a-z]+", expr.text)
            colours = [w for w in words if w in _COLOURS]
            if not colours:
                continue
            gt = video.gt_mask(exp_id)
            pixels = frames[gt]
            if len(pixels) < 30:
                continue
            measured = _hue(pixels)
            nearest = min(hues, key=lambda c: _hue_distance(hues[c], measured))
            assert nearest == colours[0], (expr.text, measured)
            checked += 1
    assert checked >= 3


def test_refuses_a_non_empty_different_folder_and_keeps_the_same_one(bench, tmp_path):
    before = {p: p.stat().st_mtime_ns for p in bench.rglob("*")}
    assert synth.generate(bench, **SMALL) == bench  # same parameters: nothing rewritten
    assert {p: p.stat().st_mtime_ns for p in bench.rglob("*")} == before
    with pytest.raises(DataError, match="not empty"):
        synth.generate(bench, **{**SMALL, "seed": 9})
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(DataError, match="not empty"):
        synth.generate(other, videos=1, seed=0, frames=4, size=(64, 64))
    assert [p.name for p in other.iterdir()] == ["keep.txt"]
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(DataError, match="not a folder"):
        synth.generate(afile, videos=1, seed=0, frames=4, size=(64, 64))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (synth.generate(empty, videos=1, seed=0, frames=4, size=(64, 64)) / "synth.json").is_file()


def test_a_failure_leaves_nothing_behind(tmp_path, monkeypatch):
    def broken(video):
        yield np.zeros((64, 64, 3), np.uint8), np.zeros((len(video.objects), 64, 64), bool)
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(synth, "render", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        synth.generate(tmp_path / "out", videos=2, seed=0, frames=4, size=(64, 64))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kwargs, key", [
    ({"videos": 0}, "videos"), ({"seed": -1}, "seed"), ({"frames": "9-3"}, "frames"),
    ({"frames": "x"}, "frames"), ({"frames": 1}, "frames"), ({"size": "12x5"}, "size"),
    ({"size": "big"}, "size"), ({"split": "../up"}, "split"),
])
def test_bad_parameters_are_refused_with_the_key(tmp_path, kwargs, key):
    with pytest.raises(ConfigError, match=key):
        synth.generate(tmp_path / "out", **{"videos": 1, "seed": 0, **kwargs})
    assert not (tmp_path / "out").exists()


def test_parse_frames_and_size():
    assert synth.parse_frames("30-60") == (30, 60)
    assert synth.parse_frames(8) == (8, 8)
    assert synth.parse_frames((4, 5)) == (4, 5)
    assert synth.parse_size("240x320") == (240, 320)
    assert synth.parse_size((96, 128)) == (96, 128)


def test_cli_writes_the_benchmark_and_reports_errors_in_one_line(tmp_path, capsys):
    out = tmp_path / "cli"
    rc = main(["-q", "data", "synth", "--out", str(out), "--videos", "2", "--seed", "4",
               "--frames", "5", "--size", "64x96", "--split", "valid_u"])
    assert rc == 0
    assert _tree(out) == _tree(synth.generate(tmp_path / "api", videos=2, seed=4, frames=5,
                                              size=(64, 96), split="valid_u"))
    ds = load_dataset("mevis", out)  # valid_u is the MeViS reader's default split
    assert len(ds) == 2 and all(len(v) == 5 for v in ds)
    rc = main(["data", "synth", "--out", str(out), "--videos", "3"])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("lcrp data: error:") and str(out) in err[-1]


def test_ref_davis17_layout_reads_back_with_the_ref_davis17_reader(tmp_path, capsys):
    params = {"videos": 3, "seed": 5, "frames": (6, 9), "size": (64, 80)}
    root = synth.generate(tmp_path / "davis", layout="ref-davis17", **params)
    assert sorted(p.name for p in root.iterdir()) == ["meta_expressions", "synth.json", "valid"]
    assert sorted(p.name for p in (root / "valid").iterdir()) == ["Annotations", "JPEGImages"]
    ds = load_dataset("ref-davis17", root)  # valid: the Ref-DAVIS17 reader's default split
    assert list(ds.videos) == [f"synth_{i:03d}" for i in range(3)]
    for i, video in enumerate(ds):
        scene = synth.make_video(5, i, frames=(6, 9), size=(64, 80))
        visible = np.array([vis for _, vis in synth.render(scene)])          # T×O×H×W
        annotated = synth.davis_expressions(scene, [bool(m.any()) for m in visible[0]])
        assert 1 <= len(annotated) <= 2 and len(video.expressions) == 4 * len(annotated)
        objects = video.gt_objects()
        assert objects.obj_ids == tuple(range(1, len(annotated) + 1))   # all in the first frame
        for label, (obj, texts) in enumerate(annotated, start=1):
            assert np.array_equal(objects.masks[label - 1], visible[:, obj])
            exps = [e for e in video.expressions.values() if e.obj_ids == (label,)]
            assert [e.text for e in exps] == texts and [e.anno_set for e in exps] == [0, 1, 2, 3]
    # the CLI writes the same files
    assert main(["-q", "data", "synth", "--out", str(tmp_path / "cli"), "--layout", "ref-davis17",
                 "--videos", "3", "--seed", "5", "--frames", "6-9", "--size", "64x80"]) == 0
    assert _tree(tmp_path / "cli") == _tree(root)
