"""The typed values `audit run`'s stages hand on (flows/run.py makes them in order, flows/record.py
builds audit.json from them). Plain data: arrays, scores and paths."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from audit.config.load import Config
from audit.evidence.causal import CausalScores
from audit.evidence.concepts import ConceptScores
from audit.evidence.discover.stage import DiscoveryRun
from audit.evidence.examples import FindingExamples
from audit.evidence.inclass import InClassScores
from audit.images import PatternImages
from audit.inputs.bank import InputBank
from audit.model.loaded import LoadedModel
from audit.visualize.budget import BudgetPlan
from audit.visualize.optimize import Visualizations
from audit.visualize.recipe import Recipe


@dataclass(frozen=True)
class Probed:
    batch: int                  # images per forward call, from the memory budget
    clean: np.ndarray | None    # the probes' own log-probabilities (None: no probes)
    report: dict | None         # accuracy and how concentrated the predictions are (audit.json)


@dataclass(frozen=True)
class ClassImages:
    """Every audited class's visualizations: the full treatment, or over the budget a preview
    first (and the full treatment for the classes chosen after the gate)."""

    names: list[str]                     # the audited classes
    recipe: Recipe
    plan: BudgetPlan
    raw_count: int                       # raw-mode images per class (0: none)
    preview: Visualizations | None
    vis: Visualizations | None
    raw: Visualizations | None
    wanted: list[str] = field(default_factory=list)      # classes a test implicated, worst first
    implicated: list[str] = field(default_factory=list)  # of those, the ones that got the full treatment
    sampled: list[str] = field(default_factory=list)     # sampled classes that got it

    @property
    def scored(self) -> Visualizations:
        """What every class is scored on: the same kind of images for all of them."""
        return self.preview or self.vis

    def shown(self) -> list[tuple[int, str, list[tuple[str, Visualizations, int]]]]:
        """Per audited class, in the model's order: (class index, treatment, the passes its card
        shows as (kind, visualizations, position of the class in them))."""
        full = {} if self.vis is None else {int(idx): c for c, idx in enumerate(self.vis.class_indices)}
        out = []
        for idx in self.scored.class_indices:
            idx = int(idx)
            if idx in full:
                raw = [] if self.raw is None else [("raw", self.raw, full[idx])]
                out.append((idx, "full", [("r", self.vis, full[idx]), *raw]))
            else:
                out.append((idx, "preview", [("preview", self.preview, list(self.preview.class_indices).index(idx))]))
        return out


@dataclass(frozen=True)
class Cutouts:
    images: list[np.ndarray | None]  # per concept: RGBA cutouts (None: no causal test)
    source: list[str | None]         # per concept: "hand", "auto" or None
    notes: dict[str, str]            # concept -> why no cutouts were found automatically


@dataclass(frozen=True)
class CausalTests:
    causal: CausalScores | None      # pastes on every probe (None: no probes or no cutouts)
    inclass: InClassScores | None    # pastes on each class's own probes (None: flat probes)


@dataclass(frozen=True)
class Evidence:
    """Everything measured, up to the gate's checks."""

    cfg: Config
    model: LoadedModel
    inputs: InputBank
    probed: Probed
    images: ClassImages
    scores: ConceptScores
    cutouts: Cutouts
    tests: CausalTests
    discovery: DiscoveryRun | None
    checks: list[dict]


@dataclass(frozen=True)
class Shown:
    """The pastes and pattern images a reviewer is shown (evidence/examples.py)."""

    findings: list[FindingExamples]
    patterns: list[PatternImages]


@dataclass(frozen=True)
class Written:
    """Paths (relative to the report folder) of the image files written."""

    classes: dict[tuple[str, int], list[str]]  # (pass kind, class index) -> its images
    examples: dict[str, list[str]]             # concept (and "_negatives") -> example thumbnails
    cutouts: dict[str, list[str]]              # concept -> cutout thumbnails
    causal: list[list[dict]]                   # per shown finding, its pastes
    patterns: list[dict]                       # per discovered pattern, its images
    gallery: list[dict]                        # the layer gallery's entries
