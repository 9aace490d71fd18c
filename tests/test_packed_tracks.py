"""Packed tracks (one bit per pixel, each frame packed on its own) and Core's frame-by-frame
support on them: the same numbers as on bool arrays, memory that does not grow with K×T."""

from __future__ import annotations

import tracemalloc

import numpy as np

from lcrp_core.masks import PackedTrack, pack_masks, packed_pair_counts, unpack_masks
from lcrp_core.pipeline.params import Params
from lcrp_core.pipeline.stages import Candidate, core, support_scores


def test_round_trips_and_old_payloads():
    rng = np.random.default_rng(0)
    masks = rng.random((4, 13, 21)) > 0.6             # 273 px: frames not byte-aligned
    track = PackedTrack.from_masks(masks)
    assert track.bits.shape == (4, 35) and len(track) == 4
    assert np.array_equal(track.unpack(), masks)
    assert all(np.array_equal(track.frame(t), masks[t]) for t in range(4))
    assert np.array_equal(unpack_masks(track.to_payload()), masks)
    old = pack_masks(masks)                            # entries written before packed tracks
    assert np.array_equal(PackedTrack.from_payload(old).unpack(), masks)
    built = PackedTrack.empty(4, (13, 21))
    for t, m in enumerate(masks):
        built.set_frame(t, m)
    assert np.array_equal(built.bits, track.bits)
    flipped = track.map_frames(lambda m: ~m)
    assert np.array_equal(flipped.unpack(), ~masks)


def test_packed_pair_counts_hand_checked():
    a = np.zeros((2, 3), bool)
    a[0, :2] = True                                    # 2 px
    b = np.zeros((2, 2, 3), bool)
    b[0, 0, 1:] = True                                 # overlaps 1, union 3
    b[1, 1, :] = True                                  # overlaps 0, union 5
    pa, pb = PackedTrack.from_masks(a[None]), PackedTrack.from_masks(b)
    inter, union = packed_pair_counts(pa.bits[0], pb.bits)
    assert inter.tolist() == [1, 0] and union.tolist() == [3, 5]


def test_support_on_packed_tracks_equals_bool_tracks():
    rng = np.random.default_rng(1)
    tracks = rng.random((4, 6, 9, 11)) > 0.5
    tracks[1, 2] = False
    tracks[2, 2] = False                               # a frame empty in two tracks
    scores = np.array([0.3, 0.1, -0.2, 0.5])
    expected = np.zeros(4)
    for i in range(4):
        w = np.exp(scores - scores.max())
        tiou = []
        for j in range(4):
            inter = (tracks[i] & tracks[j]).sum(axis=(1, 2))
            union = (tracks[i] | tracks[j]).sum(axis=(1, 2))
            tiou.append(np.mean(np.where(union == 0, 1.0, inter / np.maximum(union, 1))))
        others = [j for j in range(4) if j != i]
        expected[i] = sum(w[j] * tiou[j] for j in others) / sum(w[j] for j in others)
    packed = [PackedTrack.from_masks(t) for t in tracks]
    assert np.allclose(support_scores(scores, packed), expected)
    assert np.allclose(support_scores(scores, tracks), expected)


class _Feats:
    def __init__(self, tracks, num_frames):
        self.by_seed, self.num_frames = tracks, num_frames

    def packed_tracks(self, t, seeds):
        return [self.by_seed[id(s)] for s in seeds]

    def derived(self, kind, parts, compute):
        return compute()


def test_core_memory_grows_with_one_frame_not_k_times_t():
    k, size = 10, (120, 160)
    peaks = {}
    for num_frames in (10, 60):
        tracks = []
        for i in range(k):
            track = PackedTrack.empty(num_frames, size)
            for t in range(num_frames):
                m = np.zeros(size, bool)
                m[10 + i:60 + i, 20 + t:80 + t] = True
                track.set_frame(t, m)
            tracks.append(track)
        cands = [Candidate(0, i, 1.0 - 0.1 * i, tracks[i].frame(0)) for i in range(k)]
        feats = _Feats({id(c.mask): tr for c, tr in zip(cands, tracks)}, num_frames)
        tracemalloc.start()
        anchor = core(feats, cands, Params(top_k=k))
        peaks[num_frames] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert anchor is not None
    frame_bytes = k * size[0] * size[1]                # K bool frames
    assert peaks[60] < 2 * frame_bytes                  # far below K×T×H×W = 60 × that
    assert peaks[60] < 1.5 * peaks[10] + 65536          # does not grow with T
