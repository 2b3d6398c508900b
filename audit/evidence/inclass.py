"""The in-class test: does a class rely on the concept inside its own images?

The insertion test (causal.py) pastes the concept onto probes the model does *not* see as the
class and asks whether the concept alone pulls them in. A model can also need a cue for its class
without the cue alone being enough (the cue counts only next to the object). With probes in class
sub-folders the labels say which images are the class's own, so the same pastes (the concept's
cutouts against the control paste of the same masks filled with a negative image) go into those
of them the model puts in the class (an image it does not see as the class is the insertion
test's business: on the validity benchmark's cue-driven models, which see few clean images as
their class, pasting into all of them flagged 19 of 600 checks on classes no cue was planted on;
into the correctly predicted ones 3 of 500, all on one class whose planted cue is a texture):

* per probe, the class's log-odds (log p / (1 - p): unlike the log-probability it does not
  saturate on images the model is already sure of) with the concept paste minus with the control
  paste, in the model's own logit spreads (causal.logit_spread), capped at +-1 and averaged over
  the probe's pastes, so in [-1, 1];
* one-sided paired t-test over those probes; Holm over this test and the insertion test
  together (findings.py).

Where the concept already sits at the pasted place (a frame, a corner watermark) the control paste
removes it, so the test also sees what removing it costs. A removal test proper (find the concept
in the class's own images, fill it in, compare with a fill elsewhere or with the concept restored
there) was built three times and rejected: every way of finding the concept also found parts of
the object on the demo, so "removing the concept" removed the object, and restoring the concept
where the object was completed it (docs/limits.md; benchmarks/removal). Here both arms of the
comparison paste at the same place, so whatever the paste covers is covered in both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from audit.evidence import stats
from audit.evidence.causal import (PASTES_PER_PROBE, SHIFT_CAP, SHOWN, concept_label, log_probs, logit_spread,
                                   paste_log_probs, require_finite)
from audit.model.load import MAX_FORWARD_BATCH, LoadedModel

MIN_PROBES = 5  # a class needs this many probes of its own for an in-class test


@dataclass
class InClassScores:
    """Arrays indexed [audited class, concept]; NaN where not tested."""

    probes: np.ndarray  # the class's own probes pasted into: those the model puts in the class
    rise: np.ndarray    # mean rise of the class's log-odds (nats), concept paste minus control paste
    shift: np.ndarray   # the same per probe in logit spreads, capped at +-1, averaged: in [-1, 1]
    p: np.ndarray       # one-sided paired t-test on the per-probe shifts
    own: np.ndarray | None = None       # indices of the probes pasted into (the audited classes' own)
    examples: np.ndarray | None = None  # (C, K, SHOWN) paste indices among `own`'s pastes to show (-1: none)


def log_odds(lp: np.ndarray) -> np.ndarray:
    """log p - log(1 - p) from log p, finite for p up to 1 - 1e-16."""
    return lp - np.log(-np.expm1(np.minimum(lp, -1e-16)))


def inclass_scores(model: LoadedModel, cutouts: list[np.ndarray | None], probes: np.ndarray, labels: np.ndarray,
                   negatives: np.ndarray, class_indices: np.ndarray, seed: int, clean: np.ndarray | None = None,
                   control: str = "mask", batch_size: int = MAX_FORWARD_BATCH,
                   concepts: Sequence[str] = ()) -> InClassScores:
    """cutouts[k]: concept k's RGBA cutouts or None. labels: each probe's model class index.
    `clean`: the probes' log-probabilities when already computed (they say which probes the
    model puts in their class, and set the logit spread, the same scale as the insertion test's).
    `concepts`: their names, for the error a non-finite logit stops the run with."""
    C, K = len(class_indices), len(cutouts)
    out = {name: np.full((C, K), np.nan) for name in ("rise", "shift", "p")}
    counts = np.zeros((C, K), int)
    shown = np.full((C, K, SHOWN), -1, int)
    clean = require_finite(log_probs(model, probes, batch_size) if clean is None else clean, "probe images")
    own = np.flatnonzero(np.isin(labels, class_indices) & (clean.argmax(1) == labels))
    if not len(own):
        return InClassScores(probes=counts, **out)
    spread = logit_spread(clean)
    images, own_class = probes[own], labels[own]
    per_paste = np.repeat(own_class, PASTES_PER_PROBE)
    rows = np.arange(len(per_paste))
    for k, cut in enumerate(cutouts):
        if cut is None:
            continue
        with_concept, with_control = paste_log_probs(model, cut, images, negatives, seed, k, control, batch_size)
        what = f"pastes of {concept_label(concepts, k)} into the classes' own probe images (in-class test)"
        with_concept, with_control = require_finite(with_concept, what), require_finite(with_control, what)
        rise = log_odds(with_concept[rows, per_paste]) - log_odds(with_control[rows, per_paste])
        per_probe = np.clip(rise / spread, -SHIFT_CAP, SHIFT_CAP).reshape(len(own), PASTES_PER_PROBE).mean(1)
        paste_rise, rise = rise, rise.reshape(len(own), PASTES_PER_PROBE).mean(1)
        for c, cls in enumerate(class_indices):
            mine = own_class == cls
            counts[c, k] = int(mine.sum())
            if mine.sum() >= MIN_PROBES:
                out["rise"][c, k] = float(rise[mine].mean())
                out["shift"][c, k] = float(per_probe[mine].mean())
                out["p"][c, k] = stats.paired_p(per_probe[mine])
                # shown to a reviewer: the class's own pastes the concept raised most over their control
                candidates = np.flatnonzero(per_paste == cls)
                best = candidates[np.argsort(-paste_rise[candidates], kind="stable")][:SHOWN]
                shown[c, k, :len(best)] = best
    return InClassScores(probes=counts, own=own, examples=shown, **out)
