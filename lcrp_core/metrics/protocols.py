"""The benchmark protocols' array-level step: the DAVIS unsupervised matching of predicted to
ground-truth objects.

- ``per-expression`` (MeViS ``tools/eval_mevis.py``): the ground truth of an expression is the
  union of its objects; J and F are means over all frames; dataset J, F are means over
  expressions.
- ``davis-unsupervised`` (Ref-DAVIS17 as ReferFormer reports it): for each of the 4 annotation
  sets, the set's per-expression masks become one label map per frame
  (:func:`lcrp_core.data.labels.label_maps`, ReferFormer's rule), which davis2017-evaluation's
  unsupervised protocol scores over all frames (:func:`match_unsupervised`); the 4 results are
  averaged.
- ``davis-semi`` (davis2017-evaluation's semi-supervised task, vos-benchmark): predictions per
  object id; the first and last frames are left out; dataset means over objects.

Void (label 255): davis2017-evaluation passes the void mask to J and F in its unsupervised
task (void pixels are left out of both) and passes none in its semi-supervised task (void
counts as background there); :data:`DEFAULT_VOID` holds these defaults.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lcrp_core.errors import DataError
from lcrp_core.metrics.measures import PreparedGT, PreparedPred, score_pair

#: Protocol names, as the sweep specs and ``lcrp eval --protocol`` spell them.
PROTOCOLS = ("per-expression", "davis-unsupervised", "davis-semi")

#: How void pixels (label 255) are scored by default, as davis2017-evaluation does per task:
#: "exclude" leaves them out of J and F, "background" counts them as background.
DEFAULT_VOID = {"davis-unsupervised": "exclude", "davis-semi": "background"}
#: The void readings a DAVIS protocol accepts.
VOID_MODES = ("exclude", "background")

#: davis2017-evaluation refuses label maps with more objects than this (``max_n_proposals``).
MAX_PROPOSALS = 20


def match_unsupervised(gts: Sequence[PreparedGT], labels: np.ndarray, *,
                       void: np.ndarray | None = None,
                       name: str = "") -> list[tuple[int, np.ndarray, np.ndarray]]:
    """DAVIS unsupervised scoring of T×H×W label maps against prepared GT objects.

    The proposals are ``labels == k`` for k = 1..max label, padded with empty proposals up to
    the number of GT objects; every proposal is scored against every object, and the Hungarian
    method assigns proposals to objects maximising (mean J + mean F) / 2. Returns, for each
    assigned pair in proposal order, (GT object index, per-frame J (T,), per-frame F (T,)).
    ``void`` (T×H×W) is cut from the proposals (the GT side was prepared with it).
    """
    if not gts:
        return []
    max_label = int(labels.max(initial=0))
    if max_label > MAX_PROPOSALS:
        raise DataError(f"the predicted label maps hold label {max_label}; the DAVIS protocol "
                        f"allows at most {MAX_PROPOSALS} objects (labels 1..{MAX_PROPOSALS})", key=name)
    rows = max(max_label, len(gts))
    j = np.zeros((rows, len(gts), labels.shape[0]))
    f = np.zeros_like(j)
    for k in range(rows):
        pred = PreparedPred.from_labels(labels, k + 1, void)
        for i, gt in enumerate(gts):
            j[k, i], f[k, i] = score_pair(gt, pred)
    objective = (np.mean(j, axis=2) + np.mean(f, axis=2)) / 2
    from scipy.optimize import linear_sum_assignment  # imported here: ~0.3 s of start-up

    row_ind, col_ind = linear_sum_assignment(-objective)
    return [(int(c), j[r, c], f[r, c]) for r, c in zip(row_ind, col_ind, strict=True)]
