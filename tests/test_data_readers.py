"""Dataset readers on tiny folders in the real layouts: exact read-back and one clear error per
kind of bad input."""

from __future__ import annotations

import json
import os
import stat
from contextlib import contextmanager

import cv2
import numpy as np
import pytest
from PIL import Image

from lcrp_core.data import DEFAULT_SPLITS, load_dataset
from lcrp_core.data.io import (
    davis_palette,
    read_grey_png,
    read_json,
    read_label_png,
    read_rgb,
)
from lcrp_core.errors import ConfigError, DataError
from lcrp_core.files import write_json_atomic
from tests.fixtures import (
    make_davis_dataset,
    make_mevis_dataset,
    make_ytvos_dataset,
    write_json,
)


@contextmanager
def raises_data_error(fragment: str, *, path=None):
    """Expect a one-line DataError whose message holds ``fragment`` (and names ``path``)."""
    with pytest.raises(DataError) as info:
        yield info
    msg = str(info.value)
    assert "\n" not in msg
    assert fragment in msg, msg
    if path is not None:
        assert str(path) in msg, msg


def decode_cv2(path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1]


# --- io -----------------------------------------------------------------------------------


def test_davis_palette_is_the_pascal_voc_colour_map():
    pal = davis_palette()
    assert pal.shape == (256, 3) and pal.dtype == np.uint8
    expected = {0: (0, 0, 0), 1: (128, 0, 0), 2: (0, 128, 0), 3: (128, 128, 0), 4: (0, 0, 128),
                5: (128, 0, 128), 6: (0, 128, 128), 7: (128, 128, 128), 8: (64, 0, 0),
                9: (192, 0, 0), 16: (0, 64, 0), 255: (224, 224, 192)}
    for i, rgb in expected.items():
        assert tuple(pal[i]) == rgb, i


def test_read_label_png_reads_palette_indices_grey_values_and_one_bit(tmp_path):
    labels = np.array([[0, 1, 2], [255, 7, 0]], dtype=np.uint8)
    p = Image.fromarray(labels, mode="P")
    p.putpalette([10, 20, 30] * 256)  # colours are irrelevant: the index is the label
    p.save(tmp_path / "p.png")
    Image.fromarray(labels, mode="L").save(tmp_path / "l.png")
    Image.fromarray(labels > 1).convert("1").save(tmp_path / "b.png")
    assert np.array_equal(read_label_png(tmp_path / "p.png"), labels)
    assert np.array_equal(read_label_png(tmp_path / "l.png"), labels)
    # a 1-bit PNG is label 1, as np.array(Image.open(...)) in the DAVIS evaluators reads it
    assert np.array_equal(read_label_png(tmp_path / "b.png"), (labels > 1).astype(np.uint8))
    Image.fromarray(np.zeros((2, 3, 3), np.uint8)).save(tmp_path / "rgb.png")
    with raises_data_error("got mode RGB", path=tmp_path / "rgb.png"):
        read_label_png(tmp_path / "rgb.png")


def test_read_label_png_into_a_stack_frame_checks_the_size(tmp_path):
    labels = np.array([[0, 3, 3], [255, 1, 0]], dtype=np.uint8)
    Image.fromarray(labels, mode="L").save(tmp_path / "l.png")
    Image.fromarray(labels[:, :2], mode="L").save(tmp_path / "narrow.png")
    stack = np.full((3, 2, 3), 9, np.uint8)
    assert read_label_png(tmp_path / "l.png", out=stack[1]) is not None
    assert np.array_equal(stack[1], labels) and (stack[0] == 9).all() and (stack[2] == 9).all()
    with raises_data_error("label map is 2×2, expected 2×3", path=tmp_path / "narrow.png"):
        read_label_png(tmp_path / "narrow.png", out=stack[2])


def test_read_grey_png_reads_as_opencv_greyscale(tmp_path):
    """MeViS's eval_mevis.py reads predictions with cv2.imread(..., IMREAD_GRAYSCALE)."""
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[0, 0], rgb[0, 1], rgb[0, 2], rgb[1, 0] = (1, 0, 0), (0, 1, 0), (0, 2, 0), (200, 30, 10)
    Image.fromarray(rgb, "RGB").save(tmp_path / "rgb.png")
    grey = read_grey_png(tmp_path / "rgb.png")
    assert grey.dtype == np.uint8 and grey.shape == (2, 3)
    assert np.array_equal(grey, cv2.imread(str(tmp_path / "rgb.png"), cv2.IMREAD_GRAYSCALE))
    assert list(grey[0] != 0) == [False, False, True] and grey[1, 0] != 0
    Image.fromarray(np.array([[True, False]])).save(tmp_path / "bit.png")
    assert read_grey_png(tmp_path / "bit.png").tolist() == [[255, 0]]
    p = Image.fromarray(np.array([[0, 1]], np.uint8), mode="P")
    p.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    p.save(tmp_path / "p.png")
    assert read_grey_png(tmp_path / "p.png").tolist() == [[0, 255]]
    with raises_data_error("file not found", path=tmp_path / "gone.png"):
        read_grey_png(tmp_path / "gone.png")
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with raises_data_error("cannot decode image", path=tmp_path / "junk.png"):
        read_grey_png(tmp_path / "junk.png")


def test_unreadable_images_name_the_file(tmp_path):
    (tmp_path / "junk.jpg").write_bytes(b"not a jpeg at all")
    with raises_data_error("cannot decode image", path=tmp_path / "junk.jpg"):
        read_rgb(tmp_path / "junk.jpg")
    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(tmp_path / "ok.jpg")
    data = (tmp_path / "ok.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with raises_data_error("cannot decode image", path=tmp_path / "cut.jpg"):
        read_rgb(tmp_path / "cut.jpg")
    with raises_data_error("file not found", path=tmp_path / "gone.png"):
        read_label_png(tmp_path / "gone.png")


def test_read_json_errors_and_atomic_json_writes(tmp_path):
    path = tmp_path / "sub" / "a.json"
    write_json_atomic(path, {"x": [1, 2], "é": None})
    assert read_json(path) == {"x": [1, 2], "é": None}
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600
    with pytest.raises(TypeError):
        write_json_atomic(path, {"x": object()})
    assert read_json(path) == {"x": [1, 2], "é": None}  # the failed write left the file alone
    assert os.listdir(path.parent) == ["a.json"]  # and no temporary file
    (tmp_path / "bad.json").write_text('{"videos": {,}}')
    with raises_data_error("invalid JSON at line 1 column 13", path=tmp_path / "bad.json"):
        read_json(tmp_path / "bad.json")
    with raises_data_error("file not found", path=tmp_path / "none.json"):
        read_json(tmp_path / "none.json")


# --- Ref-DAVIS17 ----------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["davis", "referformer", "converted"])
def test_ref_davis17_reads_back_exactly(tmp_path, layout):
    fx = make_davis_dataset(tmp_path, referformer_layout=layout == "referformer",
                            converted=layout == "converted")
    ds = load_dataset("ref-davis17", tmp_path)
    frame_root = {"davis": tmp_path / "JPEGImages/480p", "referformer": tmp_path / "DAVIS/JPEGImages/480p",
                  "converted": tmp_path / "valid/JPEGImages"}[layout]
    assert (ds.kind, ds.split, list(ds.videos)) == ("ref-davis17", "valid", ["bike", "swan"])
    assert ds.num_expressions == 12
    for video in ds:
        meta = fx.meta["videos"][video.name]
        assert list(video.frame_names) == meta["frames"] and video.has_gt
        frames = video.frames()
        for t, name in enumerate(video.frame_names):
            assert np.array_equal(frames[t], decode_cv2(frame_root / video.name / f"{name}.jpg"))
        assert np.abs(frames.astype(int) - fx.frames[video.name]).max() <= 3
        assert video.size == (12, 16)
        for i, (exp_id, expr) in enumerate(video.expressions.items()):
            assert expr.exp_id == exp_id == str(i)
            assert expr.text == meta["expressions"][exp_id]["exp"]
            assert expr.obj_ids == (int(meta["expressions"][exp_id]["obj_id"]),)
            assert expr.anno_set == i % 4  # ReferFormer: expression 4·o + a is object o of set a
            assert np.array_equal(video.gt_mask(exp_id), fx.gt[video.name][exp_id])
        sets = {a: sorted(e.obj_ids[0] for e in video.expressions.values() if e.anno_set == a)
                for a in range(4)}
        assert sets == {a: sorted({e.obj_ids[0] for e in video.expressions.values()}) for a in range(4)}


def test_ref_davis17_objects_follow_davis2017_evaluation(tmp_path):
    fx = make_davis_dataset(tmp_path)
    bike = load_dataset("ref-davis17", tmp_path).videos["bike"]
    labels = fx.labels["bike"]
    objs = bike.gt_objects()
    # objects 1..max(first frame): object 3 enters at frame 2 and is not a ground-truth object
    assert objs.obj_ids == (1, 2)
    assert objs.masks.shape == (2, 4, 12, 16) and objs.masks.dtype == bool
    assert np.array_equal(objs.masks[0], labels == 1) and np.array_equal(objs.masks[1], labels == 2)
    assert not objs.masks[1, 1].any()  # object 2 is absent from frame 1
    assert np.array_equal(objs.void, labels == 255) and objs.void[:, 0].all()


def test_ref_davis17_restricts_and_orders_videos(tmp_path):
    make_davis_dataset(tmp_path)
    ds = load_dataset("ref-davis17", tmp_path, videos=["swan", "bike"])
    assert list(ds.videos) == ["swan", "bike"]
    with raises_data_error("video(s) ['nope'] not in this file",
                           path=tmp_path / "meta_expressions/valid/meta_expressions.json"):
        load_dataset("ref-davis17", tmp_path, videos=["bike", "nope"])


def test_ref_davis17_missing_files_are_named(tmp_path):
    with raises_data_error("dataset root folder not found", path=tmp_path / "none"):
        load_dataset("ref-davis17", tmp_path / "none")
    make_davis_dataset(tmp_path)
    with raises_data_error("split folder not found (found: valid)", path=tmp_path / "meta_expressions/train"):
        load_dataset("ref-davis17", tmp_path, "train")
    anno = tmp_path / "Annotations_unsupervised/480p/bike/00002.png"
    anno.unlink()
    with raises_data_error("annotation file not found", path=anno):
        load_dataset("ref-davis17", tmp_path)
    jpg = tmp_path / "JPEGImages/480p/swan/00001.jpg"
    jpg.unlink()
    with raises_data_error("frame file not found", path=jpg):
        load_dataset("ref-davis17", tmp_path, videos=["swan"])
    (tmp_path / "JPEGImages/480p/swan").rename(tmp_path / "elsewhere")
    with raises_data_error("frame folder not found", path=tmp_path / "JPEGImages/480p/swan"):
        load_dataset("ref-davis17", tmp_path, videos=["swan"])
    (tmp_path / "JPEGImages").rename(tmp_path / "Frames")
    with raises_data_error("DAVIS 2017's JPEGImages/480p under the root", path=tmp_path / "JPEGImages/480p"):
        load_dataset("ref-davis17", tmp_path)


def test_ref_davis17_corrupt_images_fail_when_read_naming_the_file(tmp_path):
    make_davis_dataset(tmp_path)
    jpg = tmp_path / "JPEGImages/480p/bike/00001.jpg"
    jpg.write_bytes(b"\xff\xd8garbage")
    png = tmp_path / "Annotations_unsupervised/480p/bike/00003.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    bike = load_dataset("ref-davis17", tmp_path).videos["bike"]  # lazy: nothing decoded yet
    assert bike.frame(0).shape == (12, 16, 3)
    with raises_data_error("cannot decode image", path=jpg):
        bike.frame(1)
    with raises_data_error("cannot decode image", path=png):
        bike.gt_mask("0")


def test_ref_davis17_label_map_of_the_wrong_size(tmp_path):
    make_davis_dataset(tmp_path)
    png = tmp_path / "Annotations_unsupervised/480p/swan/00002.png"
    Image.fromarray(np.zeros((10, 16), np.uint8), mode="P").save(png)
    swan = load_dataset("ref-davis17", tmp_path).videos["swan"]
    with raises_data_error("annotation is 10×16, its frame 00000.jpg is 12×16", path=png):
        swan.gt_objects()


def _edit(meta: dict, change) -> dict:
    meta = json.loads(json.dumps(meta))
    change(meta)
    return meta


DAVIS_META_ERRORS = [
    (lambda m: m.pop("videos"), "videos: missing key"),
    (lambda m: m.update(videos=[]), "videos: expected an object, got list"),
    (lambda m: m["videos"]["bike"].pop("frames"), "videos.bike.frames: missing key"),
    (lambda m: m["videos"]["bike"].update(frames="00000"), "videos.bike.frames: expected a list"),
    (lambda m: m["videos"]["bike"]["frames"].__setitem__(1, 1), "videos.bike.frames[1]: expected a string"),
    (lambda m: m["videos"]["bike"]["frames"].__setitem__(1, "00000"), "frame '00000' is listed twice"),
    (lambda m: m["videos"]["bike"]["expressions"]["2"].update(exp=["x"]),
     "videos.bike.expressions.2.exp: expected a string"),
    (lambda m: m["videos"]["bike"]["expressions"]["5"].pop("obj_id"),
     "videos.bike.expressions.5.obj_id: missing key"),
    (lambda m: m["videos"]["bike"]["expressions"]["5"].update(obj_id="two"),
     "videos.bike.expressions.5.obj_id: expected an integer object id, got 'two'"),
    (lambda m: m["videos"]["bike"]["expressions"]["5"].update(obj_id="255"),
     "videos.bike.expressions.5.obj_id: object ids are 1..254, got 255"),
    (lambda m: m["videos"]["bike"]["expressions"].pop("7"),
     "videos.bike.expressions: expected 4 expressions per object (2 annotators × 2 expression types), got 7"),
    (lambda m: m["videos"]["bike"]["expressions"]["4"].update(obj_id="1"),
     "videos.bike.expressions.4.obj_id: object 1 appears twice in annotation set 0"),
    (lambda m: m["videos"]["bike"]["expressions"].update({"../x": m["videos"]["bike"]["expressions"].pop("7")}),
     "videos.bike.expressions.../x: '../x' cannot be used as a file or folder name"),
]


@pytest.mark.parametrize("change,message", DAVIS_META_ERRORS)
def test_ref_davis17_malformed_meta_names_the_key(tmp_path, change, message):
    fx = make_davis_dataset(tmp_path)
    path = tmp_path / "meta_expressions/valid/meta_expressions.json"
    write_json(path, _edit(fx.meta, change))
    with raises_data_error(message, path=path):
        load_dataset("ref-davis17", tmp_path)


# --- MeViS ----------------------------------------------------------------------------------


def test_mevis_reads_back_exactly_with_multi_object_expressions(tmp_path):
    fx = make_mevis_dataset(tmp_path)
    ds = load_dataset("mevis", tmp_path)
    assert (ds.kind, ds.split, list(ds.videos)) == ("mevis", "valid_u", ["cats", "road"])
    cats = ds.videos["cats"]
    assert [(e.obj_ids, e.anno_ids) for e in cats.expressions.values()] == [
        ((0,), ("1",)), ((0, 1), ("1", "2")), ((1, 2), ("2", "3"))]  # int anno_ids read as str
    for video in ds:
        assert video.has_gt and list(video.frame_names) == fx.meta["videos"][video.name]["frames"]
        for t, name in enumerate(video.frame_names):
            jpg = tmp_path / "valid_u/JPEGImages" / video.name / f"{name}.jpg"
            assert np.array_equal(video.frame(t), decode_cv2(jpg))
        for exp_id in video.expressions:
            gt = video.gt_mask(exp_id)
            assert gt.dtype == bool and gt.shape == (len(video), 12, 16)
            assert np.array_equal(gt, fx.gt[video.name][exp_id]), (video.name, exp_id)
    # object 2 is null in frames 0 and 3: the union there is object 1 alone / object 3 alone
    one_two, two_three = cats.gt_mask("1"), cats.gt_mask("2")
    assert [int(m.sum()) for m in one_two] == [12, 12 + 9, 12 + 9, 12]
    assert [int(m.sum()) for m in two_three] == [15, 9 + 15, 9 + 15, 15]


def test_mevis_split_without_mask_dict_has_no_ground_truth(tmp_path):
    make_mevis_dataset(tmp_path, split="valid", with_masks=False)
    ds = load_dataset("mevis", tmp_path, "valid")
    video = ds.videos["cats"]
    assert not video.has_gt and video.expressions["1"].anno_ids == ()
    with raises_data_error("no public ground truth"):
        video.gt_mask("1")


def _mevis_error_cases():
    def meta(change):
        return "valid_u/meta_expressions.json", change

    def masks(change):
        return "valid_u/mask_dict.json", change

    return [
        (*meta(lambda m: m["videos"]["cats"]["expressions"]["1"]["anno_id"].append("77")),
         "anno_id 77 is not in", "valid_u/meta_expressions.json"),
        (*meta(lambda m: m["videos"]["cats"]["expressions"]["1"].pop("anno_id")),
         "videos.cats.expressions.1.anno_id: missing key", None),
        (*meta(lambda m: m["videos"]["cats"]["expressions"]["1"].update(anno_id="1")),
         "videos.cats.expressions.1.anno_id: expected a list", None),
        (*meta(lambda m: m["videos"]["cats"]["expressions"]["1"].update(obj_id=[0, None])),
         "videos.cats.expressions.1.obj_id[1]: expected an integer or a string", None),
        (*masks(lambda d: d["2"].pop()), "2: expected one entry per frame (4), got 3", None),
        (*masks(lambda d: d.update({"3": {"0": None}})), "3: expected a list, got dict", None),
        (*masks(lambda d: d["1"].__setitem__(2, [1, 2])), "1[2]: expected an object, got list", None),
        (*masks(lambda d: d["1"][2].pop("counts")), "1[2].counts: missing key", None),
        (*masks(lambda d: d["1"][2].update(counts=5)), "1[2].counts: expected a string or a list", None),
        (*masks(lambda d: d["1"][2].update(size=[12])), "1[2].size: expected [H, W]", None),
    ]


@pytest.mark.parametrize("file,change,message,named", _mevis_error_cases())
def test_mevis_malformed_files_name_the_key(tmp_path, file, change, message, named):
    make_mevis_dataset(tmp_path)
    path = tmp_path / file
    write_json(path, _edit(json.loads(path.read_text()), change))
    with raises_data_error(message, path=tmp_path / (named or file)):
        load_dataset("mevis", tmp_path)


@pytest.mark.parametrize("counts,problem", [
    ("!!", "counts has characters outside '0'..'o'"),
    ("92203", "its runs do not cover the 12×16 mask"),  # a valid 4×5 RLE
    ("0P", "counts ends inside a number"),
    ("é", "counts must be ASCII"),
    ([100, 91], "its runs do not cover the 12×16 mask"),
    ([192, -1, 1], "its runs do not cover the 12×16 mask"),
])
def test_mevis_bad_rle_fails_when_decoded(tmp_path, counts, problem):
    make_mevis_dataset(tmp_path)
    path = tmp_path / "valid_u/mask_dict.json"
    d = json.loads(path.read_text())
    d["1"][1]["counts"] = counts
    d["4"][0]["size"] = [12, 15]
    write_json(path, d)
    ds = load_dataset("mevis", tmp_path)
    with raises_data_error(f"1[1]: invalid COCO RLE: {problem}", path=path):
        ds.videos["cats"].gt_mask("0")
    with raises_data_error("4[0].size: RLE size [12, 15] differs from the frame's [H, W] [12, 16]",
                           path=path):
        ds.videos["road"].gt_mask("0")
    assert ds.videos["cats"].gt_mask("2").any()  # other expressions still decode


def test_mevis_uncompressed_rle_counts_are_accepted(tmp_path):
    fx = make_mevis_dataset(tmp_path)
    path = tmp_path / "valid_u/mask_dict.json"
    d = json.loads(path.read_text())
    obj4 = fx.gt["road"]["0"]
    d["4"] = [{"size": [12, 16], "counts": _runs(m)} for m in obj4]
    write_json(path, d)
    assert np.array_equal(load_dataset("mevis", tmp_path).videos["road"].gt_mask("0"), obj4)


def _runs(mask: np.ndarray) -> list[int]:
    """Uncompressed COCO RLE counts: alternating 0/1 run lengths in column-major order,
    starting with zeros."""
    flat = mask.T.reshape(-1).astype(int)
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.r_[0, change, flat.size]
    runs = np.diff(bounds).tolist()
    return ([0] + runs) if flat[0] else runs


def test_mevis_missing_split_lists_the_splits_found(tmp_path):
    make_mevis_dataset(tmp_path)
    with raises_data_error("split folder not found (found: valid_u)", path=tmp_path / "valid"):
        load_dataset("mevis", tmp_path, "valid")
    (tmp_path / "valid_u/mask_dict.json").write_text("{")
    with raises_data_error("invalid JSON", path=tmp_path / "valid_u/mask_dict.json"):
        load_dataset("mevis", tmp_path)


# --- Ref-YouTube-VOS ------------------------------------------------------------------------


def test_ref_youtube_vos_drops_test_videos_and_has_no_ground_truth(tmp_path):
    fx = make_ytvos_dataset(tmp_path)
    ds = load_dataset("ref-youtube-vos", tmp_path)
    assert (ds.kind, ds.split, list(ds.videos)) == ("ref-youtube-vos", "valid", ["a1b2", "c3d4"])
    for video in ds:
        assert not video.has_gt
        assert [e.text for e in video.expressions.values()] == [
            e["exp"] for e in fx.meta["videos"][video.name]["expressions"].values()]
        assert all(e.obj_ids == () for e in video.expressions.values())
        frames = video.frames()
        assert frames.shape == (len(fx.frames[video.name]), 12, 16, 3)
        assert np.abs(frames.astype(int) - fx.frames[video.name]).max() <= 3
    with raises_data_error("no public ground truth"):
        ds.videos["a1b2"].gt_mask("0")


def test_ref_youtube_vos_without_the_test_meta_says_what_to_add(tmp_path):
    make_ytvos_dataset(tmp_path, with_test_meta=False)
    with raises_data_error("put meta_expressions/test/meta_expressions.json beside it",
                           path=tmp_path / "valid/JPEGImages/t999"):
        load_dataset("ref-youtube-vos", tmp_path)
    assert list(load_dataset("ref-youtube-vos", tmp_path, videos=["c3d4"]).videos) == ["c3d4"]


# --- load_dataset ---------------------------------------------------------------------------


def test_load_dataset_defaults_and_unknown_kind(tmp_path):
    assert DEFAULT_SPLITS == {"ref-davis17": "valid", "mevis": "valid_u", "ref-youtube-vos": "valid"}
    make_mevis_dataset(tmp_path / "m")
    assert load_dataset("mevis", tmp_path / "m").split == "valid_u"
    with pytest.raises(ConfigError, match="unknown dataset kind 'davis'; expected one of"):
        load_dataset("davis", tmp_path)


@pytest.mark.parametrize("builder,kind", [(make_davis_dataset, "ref-davis17"),
                                          (make_mevis_dataset, "mevis"),
                                          (make_ytvos_dataset, "ref-youtube-vos")])
def test_loading_decodes_no_frame(tmp_path, builder, kind):
    builder(tmp_path)
    jpgs = list(tmp_path.rglob("*.jpg"))
    for jpg in jpgs:
        jpg.write_bytes(b"")  # any decode would fail
    ds = load_dataset(kind, tmp_path)
    assert len(ds) == 2 and len(jpgs) >= 7
    video = next(iter(ds))
    with raises_data_error("cannot decode image"):
        video.frame(0)


def test_annotation_folder_is_the_datasets_ground_truth_without_frames(tmp_path):
    """A bare DAVIS annotation folder gives the Evaluator the same ground truth as the dataset
    it belongs to (object ids, label maps, void), with no frames and no expressions."""
    from lcrp_core.data.davis import read_annotation_folder
    from lcrp_core.metrics import Evaluator

    make_davis_dataset(tmp_path)
    ds = load_dataset("ref-davis17", tmp_path)
    folder = read_annotation_folder(tmp_path / "Annotations_unsupervised" / "480p")
    assert list(folder.videos) == sorted(ds.videos) and len(folder) == len(ds)
    for name, video in folder.videos.items():
        ours, theirs = video.gt_objects(), ds.videos[name].gt_objects()
        assert ours.obj_ids == theirs.obj_ids
        np.testing.assert_array_equal(ours.labels, theirs.labels)
        assert list(video.frame_names) == list(ds.videos[name].frame_names)
        assert video.expressions == {}
        with pytest.raises(DataError, match="no expressions"):
            video.gt_mask("0")
    # davis-semi scores of the ground truth itself are perfect from either source
    for truth in (folder, ds):
        ev = Evaluator(truth, "davis-semi")
        labels = truth.videos["bike"].gt_objects().labels
        assert ev.summarize([ev.score_object_labels("bike", labels)]).JF == 100.0
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no video folders with PNG annotations"):
        read_annotation_folder(tmp_path / "empty")
