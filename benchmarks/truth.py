"""Ground truth in decision units, computed the same way on every benchmark (issue #22).

For a cue and a class: the exact cue is drawn onto held-out images, plain and made hard (the
audit's own hard copies, audit/evidence/hard.py), and the truth is the share of the images the
model does not put in the class that the cue moves into it, in points, on the set where it moves
more; beside it the class's mean log-odds change (nats). A pair *relies* when the cue moves at
least 25 points, is *clean* below 2 points, and sits in the band between otherwise.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from audit.evidence.causal import log_odds
from audit.evidence.hard import hard_images

RELYING, CLEAN = 25.0, 2.0  # points


def kind(points: float) -> str:
    return "relying" if points >= RELYING else "clean" if points < CLEAN else "band"


def exact_cue_truth(log_probs: Callable[[np.ndarray], np.ndarray], images: np.ndarray,
                    add_cue: Callable[[np.ndarray], np.ndarray], classes: list[int], seed: int) -> dict[int, dict]:
    """log_probs: images -> (n, classes) log-probabilities; add_cue: images -> the same with the exact
    cue drawn on. -> per class: moves and log-odds on the plain and hard images, and `points`."""
    out = {c: {} for c in classes}
    for probe_set in ("plain", "hard"):
        x = images if probe_set == "plain" else hard_images(images, np.arange(len(images)), seed)
        clean, cued = log_probs(x), log_probs(add_cue(x))
        for c in classes:
            keep = clean.argmax(1) != c
            out[c][f"moves_{probe_set}"] = float(100 * (cued.argmax(1)[keep] == c).mean()) if keep.any() else 0.0
            out[c][f"log_odds_{probe_set}"] = float((log_odds(cued[keep, c]) - log_odds(clean[keep, c])).mean()) \
                if keep.any() else 0.0
    for c in classes:
        out[c]["points"] = max(out[c]["moves_plain"], out[c]["moves_hard"])
        out[c]["kind"] = kind(out[c]["points"])
    return out
