"""The pastes a reviewer is shown, computed with the evidence they illustrate: for the first
causal findings, a few probes before and after the concept paste and its control paste, with the
class's probability on each; for discovered patterns, the same for their region, and the probes
that use the pattern most with it highlighted. The report only writes these images."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audit.evidence.causal import CausalScores, log_probs, pastes
from audit.evidence.discover import regions
from audit.evidence.discover.run import Discovery, fill_source
from audit.evidence.discover.stage import DiscoveryRun
from audit.evidence.inclass import InClassScores
from audit.images import PasteExamples, PatternImages
from audit.inputs.bank import InputBank
from audit.model.loaded import LoadedModel
from audit.result import sort_findings

FINDINGS_WITH_PASTES = 10  # findings whose card shows probe images before/after the paste


@dataclass(frozen=True)
class FindingExamples:
    class_name: str
    concept: str
    class_index: int
    own: bool              # the in-class test decided the check: the class's own probes are shown
    pastes: PasteExamples


def paste_examples(model: LoadedModel, before: np.ndarray, pasted: np.ndarray, control: np.ndarray,
                   class_index: int, batch_size: int) -> PasteExamples:
    """The class's probability on each probe, with the paste and with its control paste (one
    forward pass over the three sets)."""
    p = np.exp(log_probs(model, np.concatenate([before, pasted, control]), batch_size)[:, class_index])
    n = len(before)
    return PasteExamples(before, pasted, control, p[:n], p[n:2 * n], p[2 * n:])


def finding_examples(model: LoadedModel, checks: list[dict], inputs: InputBank, cutouts: list,
                     causal: CausalScores, inclass: InClassScores | None, class_indices, seed: int, control: str,
                     batch_size: int) -> list[FindingExamples]:
    """For the first causal findings (worst first): the probes, the concept pastes that moved them
    to the class most and the control paste of the same probes. A check the in-class test decided
    shows the class's own probes."""
    names = [model.classes[i] for i in class_indices]
    concepts = [c.name for c in inputs.concepts]
    probes = inputs.probes.images
    flagged = [ch for ch in checks if ch["level"] in ("fail", "warn") and ch["decided_on"] is not None]
    shown = []
    for ch in sort_findings(flagged)[:FINDINGS_WITH_PASTES]:
        c, k = names.index(ch["class_name"]), concepts.index(ch["concept"])
        own = ch["decided_by"].startswith("inclass") and inclass is not None
        source = probes[inclass.own] if own else probes
        which = (inclass if own else causal).examples[c, k]
        which = which[which >= 0]
        if not len(which):
            continue
        concept_imgs, control_imgs, probe_idx = pastes(cutouts[k], source, inputs.negatives, seed, k, control, which)
        examples = paste_examples(model, source[probe_idx], concept_imgs, control_imgs, int(class_indices[c]),
                                  batch_size)
        shown.append(FindingExamples(ch["class_name"], ch["concept"], int(class_indices[c]), own, examples))
    return shown


def _insertion_examples(model: LoadedModel, run: DiscoveryRun, d: Discovery, batch: int) -> PasteExamples | None:
    """The pastes that moved other classes' probes most toward the class, beside their control."""
    if not d.shown_pastes:
        return None
    others = run.probes.labels != d.class_index
    probes = run.probes.images[others]
    source = fill_source(run.probes.images, run.probes.labels, run.negatives, d.class_index)
    which = np.array(d.shown_pastes)
    with_pattern, with_control, probe_idx = pastes(d.cutouts, probes, source, run.seed + d.pattern, 0, "mask", which)
    return paste_examples(model, probes[probe_idx], with_pattern, with_control, d.class_index, batch)


def pattern_images(model: LoadedModel, run: DiscoveryRun, batch: int) -> list[PatternImages]:
    """Per discovered pattern, in the run's order: the images its card shows."""
    shown = []
    for p, d in enumerate(run.patterns):
        highlights = [regions.highlight(img, alpha) for img, alpha in zip(d.example_images, d.example_alphas)]
        shown.append(PatternImages(d.class_index, d.pattern, d.example_images, np.array(highlights),
                                   d.example_weights, d.cutouts, None if run.pictures is None else run.pictures[p],
                                   _insertion_examples(model, run, d, batch)))
    return shown
