"""`lcrp data check`: a summary of a sound layout, and a seeded list of layout faults reported
one line each (every fault, not only the first)."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from lcrp_core.cli import main
from lcrp_core.data.synth import generate
from tests.fixtures import make_davis_dataset, make_mevis_dataset


def run_check(capsys, *argv) -> tuple[int, list[str]]:
    code = main(["data", "check", *argv])
    return code, capsys.readouterr().out.strip().splitlines()


def test_sound_layouts_are_summarised(tmp_path, capsys):
    make_davis_dataset(tmp_path / "davis", converted=True)
    code, out = run_check(capsys, "--dataset", "ref-davis17", "--root", str(tmp_path / "davis"))
    assert code == 0
    assert out == [f"ref-davis17 valid at {tmp_path / 'davis'}: 2 videos, 7 frames, 12 expressions, "
                   "3 objects", "frame sizes (H×W: videos): 12×16: 2"]
    root = generate(tmp_path / "synth", videos=2, seed=0, frames=4, size=(64, 96))
    code, out = run_check(capsys, "--dataset", "mevis", "--root", str(root))   # valid_u by default
    assert code == 0 and out[0].startswith(f"mevis valid_u at {root}: 2 videos, 8 frames")
    assert out[1] == "frame sizes (H×W: videos): 64×96: 2"


def test_ref_davis17_faults_are_listed_one_line_each(tmp_path, capsys):
    root = tmp_path / "davis"
    make_davis_dataset(root)
    meta_path = root / "meta_expressions" / "valid" / "meta_expressions.json"
    meta = json.loads(meta_path.read_text())
    meta["videos"]["swan"]["expressions"]["1"]["obj_id"] = "one"
    meta["videos"]["ghost"] = {"frames": ["00000"], "expressions": {}}
    meta_path.write_text(json.dumps(meta))
    (root / "JPEGImages/480p/bike/00001.jpg").unlink()
    (root / "Annotations_unsupervised/480p/swan/00002.png").unlink()
    Image.fromarray(np.zeros((8, 8), np.uint8), mode="L").save(root / "Annotations_unsupervised/480p/bike/00003.png")
    code, out = run_check(capsys, "--dataset", "ref-davis17", "--root", str(root))
    assert code == 1
    expected = [
        f"{meta_path}: videos.swan.expressions.1.obj_id: expected an integer object id, got 'one'",
        f"{root / 'JPEGImages/480p/bike/00001.jpg'}: frame file not found",
        f"{root / 'Annotations_unsupervised/480p/bike/00003.png'}: annotation is 8×8, its frame is 12×16",
        f"{root / 'Annotations_unsupervised/480p/swan/00002.png'}: annotation file not found",
        f"{root / 'JPEGImages/480p/ghost'}: frame folder not found",
        f"{root / 'Annotations_unsupervised/480p/ghost'}: annotation folder not found",
    ]
    assert sorted(out[:-1]) == sorted(expected)
    assert out[-1] == f"data check: 6 problem(s) in ref-davis17 valid at {root}"


def test_mevis_faults_are_listed_one_line_each(tmp_path, capsys):
    root = tmp_path / "mevis"
    make_mevis_dataset(root)
    split = root / "valid_u"
    meta = json.loads((split / "meta_expressions.json").read_text())
    meta["videos"]["road"]["expressions"]["0"]["anno_id"] = ["4", "99"]
    meta["videos"]["lost"] = {"expressions": {}}
    (split / "meta_expressions.json").write_text(json.dumps(meta))
    masks = json.loads((split / "mask_dict.json").read_text())
    masks["4"] = masks["4"][:2]
    masks["1"][0]["counts"] = "zz"
    (split / "mask_dict.json").write_text(json.dumps(masks))
    (split / "JPEGImages/cats/00002.jpg").write_bytes(b"not a jpeg")
    code, out = run_check(capsys, "--dataset", "mevis", "--root", str(root))
    assert code == 1
    expected = [
        f"{split / 'meta_expressions.json'}: videos.lost.frames: missing key",
        f"{split / 'JPEGImages/cats/00002.jpg'}: cannot read image header",
        f"{split / 'mask_dict.json'}: 1[0]: invalid COCO RLE: counts has characters outside '0'..'o'",
        f"{split / 'meta_expressions.json'}: videos.road.expressions.0.anno_id: anno_id 99 is not in",
        f"{split / 'mask_dict.json'}: 4: expected a list of one entry per frame (3), got 2 entries",
    ]
    assert len(out) == len(expected) + 1
    for fragment in expected:
        assert sum(line.startswith(fragment) for line in out) == 1, fragment
    # a wrong split is one line naming the missing file
    code, out = run_check(capsys, "--dataset", "mevis", "--root", str(root), "--split", "valid")
    assert code == 1 and out[0] == f"{root / 'valid' / 'meta_expressions.json'}: file not found"
