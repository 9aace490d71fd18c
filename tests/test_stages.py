"""Each LCRP stage on crafted features: a tiny backend whose answers are written out by hand,
behind the real VideoFeatures memo."""

import numpy as np
import pytest

from lcrp_core.backends.base import Backend, Proposals
from lcrp_core.cache.features import CacheScope, VideoFeatures
from lcrp_core.data.model import Expression, Video
from lcrp_core.errors import ConfigError
from lcrp_core.pipeline.params import Params, preset
from lcrp_core.pipeline.stages import (
    Candidate,
    core,
    locate,
    path,
    refine,
    run,
    sample_frames,
    support_scores,
    temporal_iou,
)

H, W = 12, 16


def box(y0, x0, y1, x1):
    m = np.zeros((H, W), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


class Crafted(Backend):
    """Proposals and scores given per frame; refine adds a speck and a hole; propagation
    shifts the seed one column per frame away from the seed frame (so forward ≠ backward)."""

    name = "crafted"
    defaults = {}

    def __init__(self, props: dict[int, tuple[list, list, list]]):
        super().__init__({})
        self.props = props
        self.proposed: list[int] = []
        self.refined = 0

    def propose(self, video, t):
        self.proposed.append(t)
        masks, quality, s = self.props.get(t, ([], [], []))
        return Proposals(np.array(masks, dtype=bool).reshape(-1, H, W),
                         np.array(quality, dtype=np.float32), np.array(s, dtype=np.float32).reshape(-1, 1))

    def encode_text(self, text):
        return np.ones(1, dtype=np.float32)

    def score(self, proposals, text_feature):
        return proposals.features[:, 0] * text_feature[0]

    def refine(self, video, t, mask):
        self.refined += 1
        out = mask.copy()
        out[0, 0] = True            # a 1-px speck
        ys, xs = np.nonzero(mask)
        out[int(ys.mean()), int(xs.mean())] = False  # a 1-px hole in the middle
        return out

    def propagate(self, video, t, seeds):
        return np.stack([np.stack([np.roll(s, f - t, axis=1) for f in range(len(video))]) for s in seeds])


def features(props, T=8):
    video = Video("v", [f"{i:05d}" for i in range(T)], {"0": Expression("0", "thing", (1,))},
                  frame_loader=lambda t: np.zeros((H, W, 3), dtype=np.uint8))
    backend = Crafted(props)
    return VideoFeatures(video, backend, None, CacheScope("f", "t")), backend


def test_locate_samples_exactly_round_linspace():
    assert sample_frames(50, 10).tolist() == np.round(np.linspace(0, 49, 10)).astype(int).tolist()
    assert sample_frames(50, 10).tolist() == [0, 5, 11, 16, 22, 27, 33, 38, 44, 49]
    assert sample_frames(7, 1).tolist() == [0]
    assert sample_frames(3, 10).tolist() == [0, 1, 2]
    feats, backend = features({}, T=50)
    locate(feats, "thing", Params(num_frames=10))
    assert sorted(set(backend.proposed)) == [0, 5, 11, 16, 22, 27, 33, 38, 44, 49]


def test_locate_score_is_weighted_zscore_plus_quality():
    a, b, c = box(0, 0, 4, 4), box(4, 4, 8, 8), box(8, 8, 12, 12)
    feats, _ = features({0: ([a, b, c], [0.9, 0.5, 0.1], [1.0, 2.0, 3.0])}, T=1)
    cands = locate(feats, "thing", Params(num_frames=1, w_text=0.5, w_quality=0.5))
    z = np.array([-1, 0, 1]) * np.sqrt(3 / 2)  # (s - mean) / std with std = sqrt(2/3)
    expected = 0.5 * z + 0.5 * np.array([0.9, 0.5, 0.1])
    assert [c.index for c in cands] == list(np.argsort(-expected))
    assert [c.score for c in cands] == pytest.approx(sorted(expected, reverse=True))


def test_core_k1_takes_the_top_score():
    feats, _ = features({})
    cands = [Candidate(0, 0, 2.0, box(0, 0, 4, 4)), Candidate(3, 1, 1.0, box(4, 4, 8, 8))]
    anchor = core(feats, cands, Params(top_k=1))
    assert anchor.candidate is cands[0] and anchor.support == 0.0


def test_core_prefers_a_supported_candidate_over_an_isolated_higher_score():
    feats, _ = features({})
    isolated = Candidate(0, 0, 1.0, box(0, 0, 3, 3))
    b = Candidate(2, 1, 0.8, box(6, 4, 10, 8))
    c = Candidate(2, 2, 0.7, box(6, 4, 10, 8))   # same object seen again: identical track
    anchor = core(feats, [isolated, b, c], Params(top_k=3, support_weight=1.0))
    assert anchor.candidate is b
    # support of b: softmax-weighted mean of tIoU with the others (0 with the isolated one, 1 with c)
    w = np.exp([1.0, 0.7])
    assert anchor.support == pytest.approx(w[1] / w.sum())
    # λ = 0 falls back to the raw score
    assert core(feats, [isolated, b, c], Params(top_k=3, support_weight=0.0)).candidate is isolated


def test_support_and_temporal_iou_by_hand():
    a = np.zeros((2, 2, 2), dtype=bool)
    b = a.copy()
    a[0, 0, 0] = b[0, 0, 0] = b[0, 0, 1] = True   # frame 0: IoU 1/2; frame 1: both empty → 1
    assert temporal_iou(a, b) == 0.75
    s = support_scores(np.array([0.0, 0.0, 0.0]), np.stack([a, b, b]))
    assert s == pytest.approx([0.75, (0.75 + 1) / 2, (0.75 + 1) / 2])


def test_refine_h0_is_identity_and_delta_removes_exactly_what_is_under_the_area():
    feats, backend = features({})
    mask = box(3, 3, 9, 11)
    assert refine(feats, 0, mask, Params(refine_rounds=0, min_region_frac=0.5)) is mask
    assert backend.refined == 0
    # δ·H·W = 0.01 * 192 = 1.92 px: the 1-px speck and the 1-px hole go; the mask comes back
    out = refine(feats, 0, mask, Params(refine_rounds=3, min_region_frac=0.01))
    assert (out == mask).all()
    assert backend.refined == 1, "a round that changes nothing (IoU > 0.98) stops refinement"
    # δ = 0 keeps both artefacts
    out = refine(feats, 0, mask, Params(refine_rounds=1, min_region_frac=0.0))
    assert out[0, 0] and out.sum() == mask.sum()


def test_path_covers_every_frame_forward_and_backward_and_filters():
    feats, _ = features({}, T=6)
    mask = box(4, 6, 8, 10)
    out = path(feats, 2, mask, Params(min_region_frac=0.0))
    assert out.shape == (6, H, W)
    for f in range(6):
        assert (out[f] == np.roll(mask, f - 2, axis=1)).all()
    speck = mask.copy()
    speck[0, 0] = True
    out = path(feats, 2, speck, Params(min_region_frac=0.01))
    assert not out[:, 0, :].any() and out.sum() == 6 * mask.sum()


def test_run_chains_the_stages_and_memoizes_tracks():
    a, b = box(0, 0, 4, 4), box(6, 6, 10, 10)
    feats, backend = features({t: ([a, b], [0.5, 0.5], [0.0, 1.0]) for t in range(8)})
    masks, trace = run(feats, "thing", Params(num_frames=3, top_k=2, refine_rounds=0,
                                               min_region_frac=0.0), (H, W))
    assert trace.proposal == 1 and trace.frame == 0
    assert masks.shape == (8, H, W) and (masks[0] == b).all()
    passes = feats.counters.propagation_passes
    run(feats, "thing", Params(num_frames=3, top_k=2, refine_rounds=0, min_region_frac=0.0), (H, W))
    assert feats.counters.propagation_passes == passes, "a repeated run propagates nothing"
    empty, trace = run(features({})[0], "thing", Params(), (H, W))
    assert not empty.any() and trace.frame is None


@pytest.mark.parametrize("bad,key", [({"N": 0}, "N"), ({"K": 0}, "K"), ({"H": -1}, "H"),
                                      ({"delta": 1.0}, "delta"), ({"delta": -0.1}, "delta"),
                                      ({"w_text": -1}, "w_text"), ({"N": 2.5}, "N"),
                                      ({"lam": -1}, "lam"), ({"Q": 1}, "params")])
def test_params_are_validated_once_with_clear_errors(bad, key):
    with pytest.raises(ConfigError) as err:
        Params.from_mapping(bad)
    assert str(err.value).startswith(f"{key}:")


def test_presets_findtrack_takes_the_top_candidate_and_lcrp_cross_checks_and_refines():
    """FindTrack's rule (K=1, H=0, δ=0): the top-scored Locate candidate, propagated as it is.
    The LCRP presets let Core prefer a candidate the others support, then refine it."""
    isolated, obj, other = box(0, 0, 3, 3), box(6, 4, 10, 8), box(9, 12, 12, 16)
    # frame 0 only: the isolated mask scores highest; the object is proposed twice (support 1)
    props = {0: ([isolated, obj, obj, other], [0.5] * 4, [1.0, 0.9, 0.9, 0.0])}
    for name, chosen, refined in (("findtrack", 0, False), ("lcrp-ref-davis17", 1, True),
                                  ("lcrp-mevis", 1, True)):
        feats, backend = features(props)
        masks, trace = run(feats, "thing", preset(name), (H, W))
        assert locate(feats, "thing", preset(name))[0].index == 0, "the isolated mask scores highest"
        assert (trace.frame, trace.proposal) == (0, chosen), name
        assert (backend.refined > 0) == refined, name
        if not refined:
            assert all((masks[f] == np.roll(isolated, f, axis=1)).all() for f in range(8))
    with pytest.raises(ConfigError, match=r"^preset: unknown preset 'nope'; expected one of \["):
        preset("nope")
