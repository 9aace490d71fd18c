"""Frame-level J, F and statistics: hand-computed cases for every rule, and a randomized
comparison with a straightforward per-frame implementation written from the definitions
(tests/helpers.py: the structure of davis2017-evaluation's ``metrics.py``: shifted copies for the
boundary map, a meshgrid disk, one full-frame dilation per side and frame)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lcrp_core.metrics import (
    PreparedGT,
    PreparedPred,
    boundary_radius,
    db_statistics,
    decay_bins,
    disk,
    f_measure,
    jaccard,
    score_pair,
    seg2bmap,
)
from tests.helpers import (
    random_masks,
    ref_disk,
    ref_f,
    ref_jaccard,
    ref_jf_stack,
    ref_seg2bmap,
    ref_statistics,
)

# --- seg2bmap ----------------------------------------------------------------------------


def _grid(rows: list[str]) -> np.ndarray:
    return np.array([[c == "1" for c in r] for r in rows])


def test_seg2bmap_square_inside_the_image():
    seg = _grid(["0000", "0110", "0110", "0000"])
    # a pixel is boundary if it differs from its right, lower or lower-right neighbour
    expected = _grid(["1110", "1010", "1110", "0000"])
    np.testing.assert_array_equal(seg2bmap(seg), expected)
    np.testing.assert_array_equal(ref_seg2bmap(seg), expected)


def test_seg2bmap_image_border_is_not_a_boundary():
    np.testing.assert_array_equal(seg2bmap(np.ones((3, 3), bool)), np.zeros((3, 3), bool))
    # a mask filling the top half: only its lower edge (last row inside the mask) is boundary
    top = np.zeros((4, 5), bool)
    top[:2] = True
    np.testing.assert_array_equal(seg2bmap(top), _grid(["00000", "11111", "00000", "00000"]))


def test_seg2bmap_last_row_column_and_corner_rules():
    # only the bottom-right pixel set: the last row looks right only, the last column looks
    # down only, and the bottom-right pixel is never boundary
    seg = _grid(["000", "000", "001"])
    np.testing.assert_array_equal(seg2bmap(seg), _grid(["000", "011", "010"]))
    # a single pixel in the top-left corner is its own boundary (it differs from its right)
    seg = _grid(["100", "000", "000"])
    np.testing.assert_array_equal(seg2bmap(seg), _grid(["100", "000", "000"]))
    # one-row and one-column images
    np.testing.assert_array_equal(seg2bmap(_grid(["0110"])), _grid(["1010"]))
    np.testing.assert_array_equal(seg2bmap(_grid(["0", "1", "1", "0"])), _grid(["1", "0", "1", "0"]))


def test_seg2bmap_on_a_stack_is_per_frame():
    rng = np.random.default_rng(1)
    stack = random_masks(rng, 5, 9, 13)
    np.testing.assert_array_equal(seg2bmap(stack), np.stack([ref_seg2bmap(m) for m in stack]))


# --- radius and disk -----------------------------------------------------------------------


def test_boundary_radius():
    assert boundary_radius(480, 854) == 8           # DAVIS 480p: ceil(7.84)
    assert boundary_radius(720, 1280) == 12          # ceil(11.75)
    assert boundary_radius(10, 10) == 1              # ceil(0.113)
    assert boundary_radius(100, 100) == 2            # ceil(1.131)
    for h, w in [(12, 16), (480, 854), (1080, 1920), (7, 3)]:
        assert boundary_radius(h, w) == int(np.ceil(0.008 * np.linalg.norm((h, w))))


def test_disk_is_x2_plus_y2_at_most_r2():
    np.testing.assert_array_equal(disk(1), [[0, 1, 0], [1, 1, 1], [0, 1, 0]])
    np.testing.assert_array_equal(disk(2), [[0, 0, 1, 0, 0],
                                            [0, 1, 1, 1, 0],
                                            [1, 1, 1, 1, 1],
                                            [0, 1, 1, 1, 0],
                                            [0, 0, 1, 0, 0]])
    assert disk(8).shape == (17, 17) and disk(8).sum() == 197   # Gauss circle N(8)
    assert disk(8)[0].tolist() == [0] * 8 + [1] + [0] * 8           # (0, ±8) in, (±1, ±8) out
    np.testing.assert_array_equal(disk(8), ref_disk(8.0))


# --- J ---------------------------------------------------------------------------------------


def test_jaccard_rules():
    empty = np.zeros((4, 4), bool)
    a = np.zeros((4, 4), bool)
    a[0, :4] = True                 # 4 pixels
    b = np.zeros((4, 4), bool)
    b[0, 2:] = True
    b[1, :4] = True                 # 6 pixels, 2 shared with a
    assert jaccard(empty, empty) == 1.0
    assert jaccard(empty, b) == 0.0 and jaccard(a, empty) == 0.0
    assert jaccard(a, b) == 2 / 8
    void = np.zeros((4, 4), bool)
    void[0, 0] = True               # a prediction-only pixel leaves the union
    assert jaccard(a, b, void) == 2 / 7
    void[:] = True                  # nothing left: union 0 → 1
    assert jaccard(a, b, void) == 1.0
    stack = jaccard(np.stack([a, empty]), np.stack([b, empty]))
    np.testing.assert_array_equal(stack, [0.25, 1.0])


# --- F ---------------------------------------------------------------------------------------


def _rows(h: int, w: int, spans: list[tuple[int, int, int]]) -> np.ndarray:
    """H×W mask: for each (x0, x1, rows) the columns x0..x1-1 filled from row 0 to rows-1."""
    m = np.zeros((h, w), bool)
    for x0, x1, rows in spans:
        m[:rows, x0:x1] = True
    return m


def test_f_empty_and_one_sided_rules():
    empty = np.zeros((10, 10), bool)
    square = np.zeros((10, 10), bool)
    square[2:6, 2:6] = True
    full = np.ones((10, 10), bool)
    assert f_measure(empty, empty) == 1.0
    assert f_measure(empty, square) == 0.0          # no predicted boundary: P=1, R=0
    assert f_measure(square, empty) == 0.0          # no GT boundary: P=0, R=1
    # a full-frame mask has no boundary at all (the image border is none)
    assert f_measure(full, full) == 1.0
    assert f_measure(full, square) == 0.0


def test_f_hand_computed_with_radius_one():
    # 10×10: r = ceil(0.008·14.1) = 1, the disk is a plus. GT: the top 5 rows; its boundary is
    # row 4 (10 pixels) and the dilated boundary rows 3..5.
    gt = _rows(10, 10, [(0, 10, 5)])
    assert seg2bmap(gt).sum() == 10
    assert f_measure(_rows(10, 10, [(0, 10, 6)]), gt) == 1.0     # one row off: within r
    assert f_measure(_rows(10, 10, [(0, 10, 7)]), gt) == 0.0     # two rows off: P = R = 0
    # a step: columns 0..4 end at row 4, columns 5..9 at row 6. Predicted boundary: row 4
    # cols 0..4, (5, 4), row 6 cols 4..9 = 12 pixels, 6 of them in rows 3..5 → P = 6/12.
    # GT boundary pixels with a predicted boundary pixel in their plus: row 4 cols 0..5 → R = 6/10.
    step = _rows(10, 10, [(0, 5, 5), (5, 10, 7)])
    assert seg2bmap(step).sum() == 12
    assert f_measure(step, gt) == 2 * 0.5 * 0.6 / 1.1
    assert ref_f(step, gt) == f_measure(step, gt)
    # void over row 6 moves the predicted boundary of columns 5..9 up to row 5: P = R = 1
    void = np.zeros((10, 10), bool)
    void[6] = True
    assert f_measure(step, gt, void) == 1.0
    assert ref_f(step, gt, void) == 1.0


def _dot(y: int, x: int) -> np.ndarray:
    m = np.zeros((480, 854), bool)
    m[y, x] = True
    return m


def test_f_uses_the_disk_not_the_square():
    # At 480×854 r = 8. A one-pixel mask at (y, x) has the 2×2 boundary block y-1..y × x-1..x,
    # so two dots offset by (d, d) have boundary pixels no closer than (d-1, d-1).
    gt = _dot(100, 100)
    assert seg2bmap(gt).sum() == 4
    assert f_measure(_dot(106, 106), gt) > 0      # closest pair (5, 5): 7.07 ≤ 8
    assert f_measure(_dot(107, 107), gt) == 0     # closest pair (6, 6): 8.49 > 8 (a square would match)
    assert f_measure(_dot(100, 109), gt) > 0      # closest pair (0, 8): exactly r, inside
    assert f_measure(_dot(100, 110), gt) == 0     # closest pair (0, 9)
    for pred in (_dot(106, 106), _dot(100, 109)):
        assert f_measure(pred, gt) == ref_f(pred, gt)


def test_far_apart_and_partly_overlapping_boundaries():
    gt = np.zeros((3, 60, 90), bool)
    gt[:, 5:12, 5:15] = True
    pred = np.zeros_like(gt)
    pred[0, 40:50, 60:80] = True        # nowhere near the GT band
    pred[1, 8:30, 10:40] = True         # its boundary crosses the GT band's edge
    pred[2] = gt[2]
    np.testing.assert_array_equal(f_measure(pred, gt), ref_jf_stack(pred, gt)[1])
    np.testing.assert_array_equal(jaccard(pred, gt), ref_jf_stack(pred, gt)[0])
    assert f_measure(pred[0], gt[0]) == 0.0 and f_measure(pred[2], gt[2]) == 1.0


def test_boundary_at_the_image_edge_is_dilated_with_zero_padding():
    # GT and prediction hugging the right image edge; the dilation must not wrap or pad with ones
    gt = np.zeros((40, 60), bool)
    gt[10:30, 50:] = True
    pred = np.zeros_like(gt)
    pred[12:32, 52:] = True
    assert f_measure(pred, gt) == ref_f(pred, gt)
    assert jaccard(pred, gt) == ref_jaccard(pred, gt)


# --- statistics ------------------------------------------------------------------------------


def test_decay_bins_hand_computed():
    # N=4: linspace(1,4,5) = 1, 1.75, 2.5, 3.25, 4 → round(+1e-10) 1,2,3,3,4 → −1: 0,1,2,2,3
    assert decay_bins(4) == [(0, 2), (1, 3), (2, 3), (2, 4)]
    # N=7: 1, 2.5, 4, 5.5, 7 → 1,3,4,6,7 → 0,2,3,5,6
    assert decay_bins(7) == [(0, 3), (2, 4), (3, 6), (5, 7)]
    assert decay_bins(1) == [(0, 1)] * 4
    assert decay_bins(300)[-1] == (224, 300)     # the reference's uint8 edges would wrap here


def test_db_statistics_hand_computed():
    s = db_statistics(np.array([1.0, 0.8, 0.4, 0.2]))
    assert s.mean == pytest.approx(0.6, abs=1e-15)
    assert s.recall == 0.5
    assert s.decay == pytest.approx(0.9 - 0.3, abs=1e-15)
    s = db_statistics(np.arange(7) / 10)
    assert s.decay == pytest.approx(0.1 - 0.55, abs=1e-15)
    assert s.recall == 1 / 7                       # 0.5 itself is not > 0.5
    assert db_statistics(np.array([0.7])) == (0.7, 1.0, 0.0)
    with pytest.raises(ValueError):
        db_statistics(np.array([]))


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 13, 64, 101])
def test_db_statistics_matches_reference(n):
    values = np.random.default_rng(n).random(n)
    assert db_statistics(values) == ref_statistics(values)


# --- randomized comparison -------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_random_stacks_match_the_reference_exactly(seed):
    rng = np.random.default_rng(seed)
    h, w = [(24, 40), (37, 23), (60, 90), (130, 130), (9, 200), (64, 64)][seed]
    t = 6
    gt = random_masks(rng, t, h, w)
    pred = gt.copy() if seed == 0 else random_masks(rng, t, h, w)
    if seed >= 2:   # partial overlap: a shifted copy of the GT mixed with the random one
        shifted = np.roll(gt, (int(rng.integers(-3, 4)), int(rng.integers(-3, 4))), axis=(1, 2))
        pred = np.where(rng.random((t, 1, 1)) < 0.5, shifted, pred)
    void = None if seed % 2 else rng.random((t, h, w)) < 0.05
    j_ref, f_ref = ref_jf_stack(pred, gt, void)
    np.testing.assert_array_equal(jaccard(pred, gt, void), j_ref)
    np.testing.assert_array_equal(f_measure(pred, gt, void), f_ref)
    j, f = score_pair(PreparedGT.build(gt, void), PreparedPred.build(pred, void))
    np.testing.assert_array_equal(j, j_ref)
    np.testing.assert_array_equal(f, f_ref)


def test_prepared_gt_is_reused_across_predictions():
    rng = np.random.default_rng(7)
    gt = random_masks(rng, 4, 30, 50)
    prepared = PreparedGT.build(gt)
    for _ in range(3):
        pred = random_masks(rng, 4, 30, 50)
        j, f = score_pair(prepared, PreparedPred.build(pred))
        j_ref, f_ref = ref_jf_stack(pred, gt)
        np.testing.assert_array_equal(j, j_ref)
        np.testing.assert_array_equal(f, f_ref)
    assert prepared.nbytes > 0
    assert prepared.radius == math.ceil(0.008 * math.hypot(30, 50))


def test_shape_mismatch_is_rejected():
    with pytest.raises(ValueError, match="shape"):
        score_pair(PreparedGT.build(np.zeros((2, 5, 5), bool)), PreparedPred.build(np.zeros((2, 5, 6), bool)))
    with pytest.raises(ValueError):
        jaccard(np.zeros((5, 5), bool), np.zeros((5, 6), bool))
