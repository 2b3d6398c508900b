"""The in-class test: does a class rely on the concept inside its own images?

The insertion test (causal.py) pastes the concept onto probes the model does *not* see as the
class and asks whether the concept alone moves them into it. A model can also need a cue for its
class without the cue alone being enough (the cue counts only next to the object). With probes in
class sub-folders the labels say which images are the class's own, so the same pastes (the
concept's cutouts against the control paste of the same masks filled with a negative image) go
into them, on the user's probes and on their hard copies (hard.py), and are measured in the same
units by the same function (causal.measure): the points of the class's own probes the concept
paste puts in the class minus the control paste's (its accuracy with the concept against with the
control), and the class's log-odds rise.

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

from audit.evidence.causal import (PASTES_PER_PROBE, SHOWN, Measures, beyond_others, concept_label,
                                   measure, paste_log_probs, shown_pastes)
from audit.model.load import MAX_FORWARD_BATCH, LoadedModel
from audit.result import PROBE_SETS

MIN_PROBES = 5  # a class needs this many probes of its own for an in-class test


@dataclass
class InClassScores:
    """The in-class measures per probe set (result.PROBE_SETS), arrays indexed [audited class, concept]."""

    sets: dict[str, Measures]
    own: np.ndarray                     # indices of the probes pasted into (the audited classes' own)
    examples: np.ndarray | None = None  # (C, K, SHOWN) paste indices among `own`'s pastes to show (-1: none)


def inclass_scores(model: LoadedModel, cutouts: list[np.ndarray | None], probes: np.ndarray, labels: np.ndarray,
                   negatives: np.ndarray, class_indices: np.ndarray, seed: int, control: str = "mask",
                   batch_size: int = MAX_FORWARD_BATCH, concepts: Sequence[str] = ()) -> InClassScores:
    """cutouts[k]: concept k's RGBA cutouts or None. labels: each probe's model class index.
    `concepts`: their names, for the error a non-finite logit stops the run with."""
    C, K = len(class_indices), len(cutouts)
    sets = {name: Measures.empty((C, K)) for name in PROBE_SETS}
    shown = np.full((C, K, SHOWN), -1, int)
    own = np.flatnonzero(np.isin(labels, class_indices))
    own_class, images = labels[own], probes[own]
    for probe_set in PROBE_SETS:
        for k, cut in enumerate(cutouts):
            if cut is None or not len(own):
                continue
            what = (f"pastes of {concept_label(concepts, k)} into the classes' own {probe_set} "
                    "(in-class test)")
            with_concept, with_control = paste_log_probs(model, cut, images, probe_set, negatives, seed, k, control,
                                                         batch_size, what)
            specific = beyond_others(with_concept, with_control, np.repeat(own_class, PASTES_PER_PROBE))
            for c, cls in enumerate(class_indices):
                mine = own_class == cls
                if mine.sum() < MIN_PROBES:
                    continue
                sets[probe_set].put(c, k, measure(with_concept, with_control, int(cls), mine, specific))
                if probe_set == "probes":
                    shown[c, k] = shown_pastes(with_concept, with_control, int(cls), np.repeat(mine, PASTES_PER_PROBE))
    return InClassScores(sets, own, shown)
