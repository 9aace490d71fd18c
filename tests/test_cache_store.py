import logging

import numpy as np
import pytest

from lcrp_core.cache.store import CacheStore, CorruptEntry, decode_entry, encode_entry
from lcrp_core.masks import remove_small_regions


def test_round_trip_arrays_and_meta(tmp_path):
    store = CacheStore(tmp_path)
    arrays = {"a": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.array([True, False])}
    store.put("ds/backend/video/proposals/00001", arrays, {"rles": [{"size": [2, 2]}], "k": 1})
    entry = store.get("ds/backend/video/proposals/00001")
    assert entry is not None
    np.testing.assert_array_equal(entry.arrays["a"], arrays["a"])
    np.testing.assert_array_equal(entry.arrays["b"], arrays["b"])
    assert entry.meta == {"rles": [{"size": [2, 2]}], "k": 1}
    assert store.get("ds/backend/video/proposals/00002") is None
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["00001.lcrp"], \
        "no temporary file is left behind"


@pytest.mark.parametrize("damage", ["flip", "truncate", "header", "empty"])
def test_corrupt_entry_is_reported_discarded_and_never_used(tmp_path, caplog, damage):
    store = CacheStore(tmp_path)
    store.put("k/entry", {"x": np.ones(100)}, {"m": 1})
    path = store.path("k/entry")
    blob = bytearray(path.read_bytes())
    if damage == "flip":
        blob[-20] ^= 0xFF
    elif damage == "truncate":
        blob = blob[: len(blob) // 2]
    elif damage == "header":
        blob[:5] = b"XXXXX"
    else:
        blob = bytearray()
    path.write_bytes(bytes(blob))
    assert [problem is not None for _, problem in store.verify()] == [True]
    with caplog.at_level(logging.WARNING, logger="lcrp.cache"):
        assert store.get("k/entry") is None
    assert len(caplog.records) == 1 and str(path) in caplog.records[0].getMessage()
    assert not path.exists(), "a corrupt entry is deleted so it is recomputed"


def test_decode_rejects_a_valid_checksum_over_garbage():
    body = b"not an npz archive"
    import hashlib

    from lcrp_core.cache.store import MAGIC
    blob = MAGIC + hashlib.sha256(body).hexdigest().encode() + b"\n" + body
    with pytest.raises(CorruptEntry):
        decode_entry(blob)
    assert decode_entry(encode_entry({}, {"a": 1})).meta == {"a": 1}


def test_small_region_filter_drops_components_and_fills_holes_strictly_under_the_area():
    mask = np.zeros((20, 20), dtype=bool)
    mask[2:12, 2:12] = True          # 100 px object
    mask[5:7, 5:8] = False           # a 6-px hole inside it
    mask[15:17, 15:18] = True        # a 6-px speck
    mask[0, 19] = True               # a 1-px speck at the border
    out = remove_small_regions(mask, 6)  # nothing strictly smaller than 6 except the 1-px speck
    assert out[15:17, 15:18].all() and not out[5:7, 5:8].any() and not out[0, 19]
    out = remove_small_regions(mask, 7)
    assert not out[15:17, 15:18].any() and out[5:7, 5:8].all()
    assert out.sum() == 100
    # background touching the image border is never a hole
    edge = np.ones((10, 10), dtype=bool)
    edge[:, 0] = False               # a 10-px background strip along the border
    assert (remove_small_regions(edge, 50) == edge).all()
    assert (remove_small_regions(mask, 0) == mask).all()


def _reference_filter(mask, min_area):
    """The δ filter on the full frame with scipy's labelling (8-connected objects, 4-connected holes)."""
    from scipy import ndimage

    out = mask.copy()
    labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
    for i in range(1, n + 1):
        if (labels == i).sum() < min_area:
            out[labels == i] = False
    labels, n = ndimage.label(~out)
    border = set(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]).tolist())
    for i in range(1, n + 1):
        if i not in border and (labels == i).sum() < min_area:
            out[labels == i] = True
    return out


@pytest.mark.parametrize("seed", range(25))
def test_small_region_filter_matches_a_full_frame_reference(seed):
    rng = np.random.default_rng(seed)
    from scipy import ndimage

    noise = rng.random((40, 50)) < rng.uniform(0.3, 0.7)
    mask = ndimage.uniform_filter(noise.astype(float), size=3) > 0.5
    if seed % 5 == 0:
        mask[:, :20] = False  # objects away from the border, too
    for min_area in (2, 7, 30):
        assert (remove_small_regions(mask, min_area) == _reference_filter(mask, min_area)).all()


def test_round_trip_keeps_every_shape_and_dtype():
    arrays = {"scalar": np.array(3), "f": np.array(0.25), "empty": np.zeros((0, 4, 5), bool),
              "fortran": np.asfortranarray(np.arange(6, dtype=np.int16).reshape(2, 3)),
              "u8": np.arange(5, dtype=np.uint8)}
    out = decode_entry(encode_entry(arrays, {"k": [1, 2]}))
    for name, a in arrays.items():
        assert out.arrays[name].shape == a.shape and out.arrays[name].dtype == a.dtype
        np.testing.assert_array_equal(out.arrays[name], a)
    assert out.meta == {"k": [1, 2]}


def test_claims_make_a_second_worker_wait_then_load(tmp_path):
    """Two workers missing the same entry: the first computes it under its claim, the second
    waits on the claim and then finds it written (computed once)."""
    import threading

    store = CacheStore(tmp_path)
    holding, waiting = threading.Event(), threading.Event()
    computed, results = [], {}

    def first():
        with store.claim(["k/a", "k/b"]):
            holding.set()
            assert waiting.wait(10)
            computed.append("first")
            store.put("k/a", {"x": np.arange(3)})

    def second():
        import fcntl

        import lcrp_core.cache.store as store_mod

        assert holding.wait(10)

        class SignallingFcntl:                  # says when the second worker is about to block
            def __getattr__(self, name):
                return getattr(fcntl, name)

            def flock(self, fd, op):
                waiting.set()
                return fcntl.flock(fd, op)

        store_mod.fcntl = SignallingFcntl()
        try:
            with store.claim("k/a"):
                entry = store.get("k/a")
                if entry is None:
                    computed.append("second")
                results["second"] = entry
        finally:
            store_mod.fcntl = fcntl

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(20)
    assert computed == ["first"]
    assert np.array_equal(results["second"].arrays["x"], np.arange(3))
    assert not list(store.entries("_locks"))           # lock files are not entries


def test_counters_tally_each_kind_in_its_own_fields():
    from lcrp_core.cache.features import Counters

    c = Counters()
    for kind in ("proposals", "texts", "refines", "derived"):
        c.tally(kind, loaded=True)
        c.tally(kind, loaded=False)
        c.tally(kind, loaded=False)
    assert {k: v for k, v in c.as_dict().items() if v} == {
        f"{kind}_{what}": n for kind in ("proposals", "texts", "refines", "derived")
        for what, n in (("loaded", 1), ("computed", 2))}
    assert c.computed == 6                       # derived values are no backend call
    with pytest.raises(ValueError, match="no counters for 'tracks'"):
        c.tally("tracks", loaded=True)
