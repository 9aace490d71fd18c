"""Prediction writers and submission zips: benchmark layouts, exact round trips, atomic output."""

from __future__ import annotations

import io
import os
import zipfile

import numpy as np
import pytest
from PIL import Image

from lcrp_core.data import load_dataset
from lcrp_core.data.io import davis_palette, read_label_png, write_binary_png, write_label_png
from lcrp_core.data.writers import (
    davis_label_maps,
    write_predictions,
    write_submission_zip,
)
from lcrp_core.errors import ConfigError, DataError
from tests.fixtures import make_davis_dataset, make_mevis_dataset, make_ytvos_dataset


def files_under(folder) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_binary_png_is_greyscale_0_255(tmp_path):
    mask = np.zeros((5, 7), dtype=bool)
    mask[1:3, 2:6] = True
    write_binary_png(tmp_path / "a" / "m.png", mask)
    img = Image.open(tmp_path / "a" / "m.png")
    assert img.mode == "L"
    assert np.array_equal(np.asarray(img), np.where(mask, 255, 0))
    assert os.listdir(tmp_path / "a") == ["m.png"]  # no temporary file left
    with pytest.raises(DataError, match="a mask must be H×W, got shape"):
        write_binary_png(tmp_path / "b.png", np.zeros((2, 5, 7), bool))


def test_label_png_uses_the_davis_palette_and_round_trips(tmp_path):
    labels = np.array([[0, 1, 2, 3], [255, 4, 0, 1]], dtype=np.int64)
    write_label_png(tmp_path / "l.png", labels)
    img = Image.open(tmp_path / "l.png")
    assert img.mode == "P"
    assert img.getpalette() == davis_palette().reshape(-1).tolist()
    assert np.array_equal(np.asarray(img), labels)
    assert np.array_equal(read_label_png(tmp_path / "l.png"), labels)
    assert tuple(np.asarray(img.convert("RGB"))[0, 1]) == (128, 0, 0)
    with pytest.raises(DataError, match="integers 0..255"):
        write_label_png(tmp_path / "x.png", labels + 1)
    with pytest.raises(DataError, match="integers 0..255"):
        write_label_png(tmp_path / "x.png", labels.astype(float))
    assert not (tmp_path / "x.png").exists()


def test_mevis_predictions_layout_and_round_trip(tmp_path):
    fx = make_mevis_dataset(tmp_path / "data")
    ds = load_dataset("mevis", tmp_path / "data")
    out = tmp_path / "pred"
    for video in ds:
        write_predictions(out, "mevis", video, {e: video.gt_mask(e) for e in video.expressions})
    expected = sorted(f"{v.name}/{e}/{f}.png" for v in ds for e in v.expressions for f in v.frame_names)
    assert files_under(out) == expected
    for video in ds:
        for exp_id in video.expressions:
            back = np.stack([read_label_png(out / video.name / exp_id / f"{f}.png") > 0
                             for f in video.frame_names])
            assert np.array_equal(back, fx.gt[video.name][exp_id])


def test_davis_label_maps_smallest_object_of_a_set_keeps_overlaps(tmp_path):
    make_davis_dataset(tmp_path)
    bike = load_dataset("ref-davis17", tmp_path).videos["bike"]
    t, h, w = len(bike), 12, 16
    masks = {e: np.zeros((t, h, w), bool) for e in bike.expressions}
    masks["4"][:, 2:6, 2:6] = True  # set 0, object 2 ...
    masks["0"][:, 0:4, 0:4] = True  # ... overlapped by set 0's object 1 on rows/cols 2..3
    masks["5"][1, 5, 5] = True  # set 1, object 2
    maps = davis_label_maps(bike, masks)
    assert sorted(maps) == [0, 1, 2, 3]
    want = np.zeros((h, w), np.uint8)
    want[2:6, 2:6] = 2
    want[0:4, 0:4] = 1
    assert all(np.array_equal(maps[0][i], want) for i in range(t))
    assert maps[1].sum() == 2 and maps[1][1, 5, 5] == 2
    assert not maps[2].any() and not maps[3].any()


def test_davis_predictions_rebuild_the_ground_truth_label_maps(tmp_path):
    fx = make_davis_dataset(tmp_path / "data")
    ds = load_dataset("ref-davis17", tmp_path / "data")
    out = tmp_path / "pred"
    for video in ds:
        write_predictions(out, "ref-davis17", video, {e: video.gt_mask(e) for e in video.expressions})
    assert files_under(out) == sorted(f"anno_{a}/{v.name}/{f}.png" for a in range(4) for v in ds
                                      for f in v.frame_names)
    for video in ds:
        # every set describes every object once: its label map is the annotation without
        # void and without the object no expression refers to (bike's object 3)
        want = np.where(np.isin(fx.labels[video.name], (255, 3)), 0, fx.labels[video.name])
        for a in range(4):
            folder = out / f"anno_{a}" / video.name
            back = np.stack([read_label_png(folder / f"{f}.png") for f in video.frame_names])
            assert np.array_equal(back, want), (video.name, a)
            assert Image.open(folder / "00000.png").mode == "P"


def test_prediction_writers_reject_incomplete_or_misshapen_masks(tmp_path):
    make_davis_dataset(tmp_path / "data")
    bike = load_dataset("ref-davis17", tmp_path / "data").videos["bike"]
    masks = {e: np.zeros((4, 12, 16), bool) for e in bike.expressions}
    del masks["6"]
    with pytest.raises(DataError, match=r"bike: no predicted masks for expression\(s\) \['6'\]"):
        write_predictions(tmp_path / "pred", "ref-davis17", bike, masks)
    masks["6"] = np.zeros((3, 12, 16), bool)
    with pytest.raises(DataError, match=r"bike/6: expected masks of shape 4×12×16 \(T×H×W\), got \(3, 12, 16\)"):
        write_predictions(tmp_path / "pred", "ref-davis17", bike, masks)
    assert not (tmp_path / "pred").exists()
    with pytest.raises(DataError, match="expression '9' is not one of this video's"):
        write_predictions(tmp_path / "pred", "mevis", bike, {"9": masks["0"]})
    with pytest.raises(ConfigError, match="unknown dataset kind 'davis'"):
        write_predictions(tmp_path / "pred", "davis", bike, masks)


@pytest.mark.parametrize("kind,builder,prefix", [("ref-youtube-vos", make_ytvos_dataset, "Annotations/"),
                                                 ("mevis", make_mevis_dataset, "")])
def test_submission_zip_layout_and_contents(tmp_path, kind, builder, prefix):
    builder(tmp_path / "data")
    ds = load_dataset(kind, tmp_path / "data")
    pred = tmp_path / "pred"
    rng = np.random.default_rng(0)
    written = {}
    for video in ds:
        masks = {e: rng.random((len(video), 12, 16)) < 0.3 for e in video.expressions}
        write_predictions(pred, kind, video, masks)
        written.update({f"{prefix}{video.name}/{e}/{f}.png": m[t] for e, m in masks.items()
                        for t, f in enumerate(video.frame_names)})
    (pred / "notes.txt").write_text("not part of the submission")
    zip_path = tmp_path / "out" / "submission.zip"
    assert write_submission_zip(pred, zip_path, ds) == len(written)
    with zipfile.ZipFile(zip_path) as zf:
        assert sorted(zf.namelist()) == sorted(written)
        for name, mask in written.items():
            img = Image.open(io.BytesIO(zf.read(name)))
            assert img.mode == "L" and np.array_equal(np.asarray(img) > 0, mask)
    assert os.listdir(zip_path.parent) == ["submission.zip"]


def test_submission_zip_with_a_missing_png_writes_nothing(tmp_path):
    make_ytvos_dataset(tmp_path / "data")
    ds = load_dataset("ref-youtube-vos", tmp_path / "data")
    pred = tmp_path / "pred"
    for video in ds:
        write_predictions(pred, "ref-youtube-vos", video,
                          {e: np.ones((len(video), 12, 16), bool) for e in video.expressions})
    zip_path = tmp_path / "submission.zip"
    zip_path.write_bytes(b"previous submission")
    (pred / "c3d4" / "0" / "00002.png").unlink()
    with pytest.raises(DataError, match="prediction file not found") as info:
        write_submission_zip(pred, zip_path, ds)
    assert str(pred / "c3d4" / "0" / "00002.png") in str(info.value)
    assert zip_path.read_bytes() == b"previous submission"
    assert sorted(os.listdir(tmp_path)) == ["data", "pred", "submission.zip"]


def test_ref_davis17_has_no_submission_zip(tmp_path):
    make_davis_dataset(tmp_path / "data")
    ds = load_dataset("ref-davis17", tmp_path / "data")
    with pytest.raises(ConfigError, match="ref-davis17 has no submission server"):
        write_submission_zip(tmp_path / "pred", tmp_path / "s.zip", ds)


def test_label_maps_rank_objects_by_obj_id_as_text():
    from lcrp_core.data.labels import label_maps, referformer_order

    assert referformer_order([2, 10, 1]) == [1, 10, 2]
    masks = [(o, np.zeros((1, 1, 4), bool)) for o in (2, 10, 1)]
    for k, (_, m) in enumerate(masks):
        m[0, 0, k] = True
    masks[0][1][0, 0, 3] = masks[1][1][0, 0, 3] = True     # objects 2 and 10 overlap on pixel 3
    # label = rank in text order (1 → 1, 10 → 2, 2 → 3); "10" < "2" keeps the overlap
    assert label_maps(masks, (1, 1, 4)).tolist() == [[[3, 2, 1, 2]]]
    with pytest.raises(ValueError, match="shape"):
        label_maps([(1, np.zeros((1, 2, 2), bool))], (1, 1, 4))


def test_davis_label_maps_errors_name_the_expression(tmp_path):
    from lcrp_core.data.labels import davis_label_maps

    make_davis_dataset(tmp_path)
    bike = load_dataset("ref-davis17", tmp_path).videos["bike"]
    masks = {e: np.zeros((len(bike), 12, 16), bool) for e in bike.expressions}
    with pytest.raises(DataError, match=r"bike: no predicted masks for expression\(s\) \['0'\]"):
        davis_label_maps(bike, {e: m for e, m in masks.items() if e != "0"})
    masks["3"] = np.zeros((len(bike), 12, 15), bool)
    with pytest.raises(DataError, match=r"bike/3: expected masks of shape 4×12×16"):
        davis_label_maps(bike, masks)
