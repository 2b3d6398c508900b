"""The image folders an audit reads (negatives, concept examples, cutouts, probes), loaded once at
the model's input size and checked once: every later stage trusts the `InputBank` it is given."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audit.config.concepts import MIN_EXAMPLES
from audit.config.load import Config
from audit.errors import UserError
from audit.images import load_folder
from audit.inputs.folders import MIN_NEGATIVES, check_folders
from audit.inputs.probes import ProbeSet, load_probes

MIN_DISTINCT_NEGATIVES = 10  # fewer distinct images give the null no spread
MIN_NEGATIVE_SPREAD = 0.01   # mean per-pixel SD (pixels in [0, 1]) below which the negatives barely differ


@dataclass
class ConceptSet:
    name: str
    images: np.ndarray  # (N, H, W, ch) in [0, 1]
    allowed_in: tuple[str, ...]


@dataclass(frozen=True)
class InputBank:
    negatives: np.ndarray               # (N, H, W, ch) unrelated images: the null every effect is measured against
    concepts: list[ConceptSet]          # in the config's order
    cutouts: list[np.ndarray | None]    # per concept: its hand-made RGBA cutouts (None: none given)
    probes: ProbeSet | None             # concepts.probes (None: not given)

    def allowed_in(self) -> dict[str, tuple[str, ...]]:
        return {c.name: c.allowed_in for c in self.concepts}


def check_variety(negatives: np.ndarray, folder: Path) -> None:
    """Negatives are the null every effect is measured against: copies of one image (or images
    that barely differ) give it no spread, and effects then explode to meaningless values."""
    distinct = len(np.unique((negatives * 255.0 + 0.5).astype(np.uint8).reshape(len(negatives), -1), axis=0))
    spread = float(negatives.std(axis=0).mean())
    if distinct < MIN_DISTINCT_NEGATIVES or spread < MIN_NEGATIVE_SPREAD:
        raise UserError(f"concepts.negatives: the images in {folder} are (almost) all the same ({distinct} distinct, "
                        f"pixel spread {spread:.4f}); give at least {MIN_DISTINCT_NEGATIVES} varied, unrelated images")


def load_inputs(cfg: Config, input_shape: tuple[int, ...], classes: tuple[str, ...]) -> InputBank:
    """Every folder of `cfg.concepts`, read at the model's input size (H, W, ch) and checked."""
    check_folders(cfg)  # what `audit validate` checks, before any image is decoded
    c = cfg.concepts
    size, ch = input_shape[:2], input_shape[2]
    negatives = load_folder(c.negatives, size, ch, "concepts.negatives", c.max_examples)
    if len(negatives) < MIN_NEGATIVES:
        raise UserError(f"concepts.negatives: only {len(negatives)} images in {c.negatives}; "
                        f"give at least {MIN_NEGATIVES} (50+ recommended) unrelated images")
    check_variety(negatives, c.negatives)
    concepts = [ConceptSet(b.name, load_folder(b.examples, size, ch, f"concepts.bank.{b.name}.examples",
                                               c.max_examples), b.allowed_in) for b in c.bank]
    for concept in concepts:
        if len(concept.images) < MIN_EXAMPLES:
            raise UserError(f"concepts.bank.{concept.name}.examples: only {len(concept.images)} images; give at "
                            f"least {MIN_EXAMPLES} (20+ recommended)")
    cutouts = [None if b.cutouts is None else
               load_folder(b.cutouts, size, ch, f"concepts.bank.{b.name}.cutouts", c.max_examples, alpha=True)
               for b in c.bank]
    probes = None if c.probes is None else load_probes(c.probes, size, ch, classes, c.max_examples,
                                                       cfg.visualize.seed)
    return InputBank(negatives, concepts, cutouts, probes)
