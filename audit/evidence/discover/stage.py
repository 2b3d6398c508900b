"""The discovery stage, shared by `audit run` (with a `discover:` section) and `audit discover`:
probes in class sub-folders -> per audited class, patterns with their evidence."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audit.config.visualize import VisualizeConfig
from audit.evidence.discover.maximize import visualize_patterns
from audit.evidence.discover.run import Discovery, assign_levels, discover_class, insertion_test, removal_test
from audit.config.discover import DiscoverConfig
from audit.errors import UserError
from audit.model.load import LoadedModel, forward_batch_size, gradient_batch_size
from audit.inputs.probes import ProbeSet, load_probes


@dataclass
class DiscoveryRun:
    patterns: list[Discovery]         # every audited class's patterns, class by class
    pictures: np.ndarray | None       # (P, restarts, H, W, ch) the visualization of each pattern
    probes: ProbeSet
    negatives: np.ndarray | None      # what control pastes are filled with (None: other classes' probes)
    seed: int
    skipped: dict[str, str]           # class name -> why it has no patterns
    probes_path: Path


def load_class_probes(model: LoadedModel, folder: Path, key: str, limit: int, seed: int) -> ProbeSet:
    probes = load_probes(folder, model.input_shape[:2], model.input_shape[2], model.classes, limit, seed, key)
    if probes.labels is None:
        raise UserError(f"{key}: discovery needs probes in one sub-folder per class (each class's own images "
                        f"show what drives it); {folder} is a flat folder. Give a folder with a sub-folder per "
                        "class, e.g. a sample of your validation set")
    return probes


def run_discovery(model: LoadedModel, probes: ProbeSet, probes_path: Path, class_indices, cfg: DiscoverConfig,
                  visualize: VisualizeConfig, negatives: np.ndarray | None, progress: bool = False,
                  log=lambda msg: None) -> DiscoveryRun:
    """`negatives`: unrelated images for the control pastes (default: the other classes' probes)."""
    grad_batch = max(1, gradient_batch_size(model, visualize.memory_budget_mb))
    batch = forward_batch_size(model, visualize.memory_budget_mb)
    seed = visualize.seed
    patterns, skipped = [], {}
    for idx in class_indices:
        own = probes.labels == idx
        name = model.classes[idx]
        if own.sum() < cfg.min_probes:
            skipped[name] = f"{int(own.sum())} probe images of its own (discover.min_probes: {cfg.min_probes})"
            continue
        try:
            patterns += discover_class(model, probes.images[own], int(idx), cfg, grad_batch)
        except ValueError as exc:  # no spatial feature map, or nothing drives the class
            skipped[name] = str(exc)
    removal_test(model, patterns, probes.images, probes.labels, negatives, seed, batch)
    insertion_test(model, patterns, probes.images, probes.labels, negatives, seed, batch)
    assign_levels(patterns, cfg)
    pictures = None
    if cfg.visualize and patterns:
        pictures = visualize_patterns(model, [d.gradient for d in patterns], [d.component for d in patterns],
                                      visualize, cfg.restarts, progress).images
    log(f"  discovered {len(patterns)} patterns in {len(class_indices) - len(skipped)} classes "
        f"({sum(d.level != 'review' for d in patterns)} above review)")
    return DiscoveryRun(patterns, pictures, probes, negatives, seed, skipped, probes_path)


def discovery_for_audit(model: LoadedModel, cfg, negatives: np.ndarray, class_indices, loaded: ProbeSet | None,
                        progress: bool, log) -> DiscoveryRun:
    """`audit run`'s stage: cfg is the audit Config; `loaded` the concepts.probes already read."""
    d = cfg.discover
    folder = d.probes or cfg.concepts.probes
    if d.probes is None and loaded is not None and loaded.labels is not None:
        probes = loaded
    else:
        key = "discover.probes" if d.probes else "concepts.probes"
        probes = load_class_probes(model, folder, key, cfg.concepts.max_examples, cfg.visualize.seed)
    return run_discovery(model, probes, folder, class_indices, d, cfg.visualize, negatives, progress, log)
