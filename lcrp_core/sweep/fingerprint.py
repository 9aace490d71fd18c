"""A dataset's identity for a study: what it contains, not the path it lives at.

The fingerprint hashes, per video, its frame names and its expressions (id, sentence, referred
objects and annotation ids) as the benchmark reader reads them from the expression file and the
frame folders; the digest over all videos identifies the split. The same data at another path (a
relative and an absolute root, another mount, a node's local scratch copy) has the same
fingerprint; a study resumed with a root whose contents differ is refused with what differs.
Computed once per (root, split, videos) in a process.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any


@functools.cache
def _fingerprint(kind: str, root: str, split: str, videos: tuple[str, ...] | None) -> str:
    from lcrp_core.data import load_dataset

    ds = load_dataset(kind, root, split, videos=videos)
    per_video = {}
    for video in ds:
        doc = {"frames": list(video.frame_names),
               "expressions": {e.exp_id: [e.text, list(e.obj_ids), list(e.anno_ids), e.anno_set]
                               for e in video.expressions.values()}}
        per_video[video.name] = _digest(doc)
    return json.dumps({"digest": _digest(per_video), "videos": per_video}, sort_keys=True)


def dataset_fingerprint(kind: str, root: str | Path, split: str,
                        videos: tuple[str, ...] | None = None) -> dict[str, Any]:
    """``{"digest": …, "videos": {name: digest}}`` of a dataset split's contents."""
    return json.loads(_fingerprint(kind, str(Path(root).resolve()), split, videos))


def fingerprint_diff(old: Mapping[str, Any], new: Mapping[str, Any], *, limit: int = 5) -> str:
    """What differs between two fingerprints, in a few words."""
    a, b = old.get("videos", {}), new.get("videos", {})
    parts = []
    for label, names in (("videos missing here", sorted(set(a) - set(b))),
                         ("videos not in the study", sorted(set(b) - set(a))),
                         ("videos whose frames or expressions differ",
                          sorted(n for n in set(a) & set(b) if a[n] != b[n]))):
        if names:
            shown = ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")
            parts.append(f"{label}: {shown}")
    return "; ".join(parts) or "the contents differ"


def _digest(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
