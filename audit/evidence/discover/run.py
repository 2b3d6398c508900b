"""Discovery, one class at a time: contributions -> patterns -> regions and cutouts -> the
insertion test -> levels. Plain arrays in, plain `Discovery` values out; writing files and
audit.json entries is write.py's job."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from audit.evidence import localize, stats
from audit.evidence.causal import CausalScores, causal_scores, log_probs, paste, require_finite
from audit.evidence.discover import regions
from audit.evidence.discover.contributions import class_contributions, mean_gradient
from audit.evidence.discover.maximize import pattern_scorer
from audit.evidence.discover.patterns import decompose
from audit.config.discover import DiscoverConfig
from audit.config.gate import CausalLevel
from audit.model.load import LoadedModel
from audit.result import PROBE_SETS


@dataclass
class Discovery:
    """One pattern of one class, with its evidence."""

    class_index: int
    pattern: int                  # 1 = the pattern carrying the largest share of the class's evidence
    share: float                  # its share of the class's positive contributions on its probes
    example_images: np.ndarray    # (e, H, W, ch) the probes of the class that use it most
    example_alphas: np.ndarray    # (e, H, W) where it sits in them
    example_weights: np.ndarray   # (e,) its contribution to the logit there (logit units)
    cutouts: np.ndarray           # (m, H, W, ch + 1) RGBA: the region cut out of the top probes
    kept: float                   # share of its (correctly predicted) source probes still in the class without it
    gradient: np.ndarray = field(repr=False)   # (h, w, D) mean d logit / d feature, for its visualization
    component: np.ndarray = field(repr=False)  # (D,)
    causal: dict | None = None    # per probe set (result.PROBE_SETS): causal.Measures.at + p adjusted; pastes
    shown_pastes: list[int] = field(default_factory=list)  # paste indices a reviewer is shown
    level: str = "review"


def discover_class(model: LoadedModel, images: np.ndarray, class_index: int, cfg: DiscoverConfig,
                   grad_batch: int) -> list[Discovery]:
    """The patterns of one class on its own probe images (n, H, W, ch)."""
    contributions = class_contributions(model, images, class_index, grad_batch)
    found = decompose(contributions, cfg.patterns)
    gradient = mean_gradient(model, images, class_index, grad_batch)
    size = images.shape[1:3]
    out = []
    for j in range(found.weights.shape[1]):
        order = np.argsort(-found.weights[:, j], kind="stable")
        top = order[:max(cfg.examples, cfg.cutout_images)]
        sharp = pixel_gradients(model, gradient, found.components[j], images[top], grad_batch)
        alpha = regions.alphas(found.maps[top, j], size, sharp)
        shown = top[:cfg.examples]
        out.append(Discovery(
            class_index=int(class_index), pattern=j + 1, share=float(found.share[j]),
            example_images=images[shown], example_alphas=alpha[:len(shown)],
            example_weights=found.weights[shown, j], cutouts=regions.cutouts(images[top[:cfg.cutout_images]],
                                                                            alpha[:cfg.cutout_images]),
            kept=float("nan"), gradient=gradient, component=found.components[j]))
    return out


def pixel_gradients(model: LoadedModel, gradient: np.ndarray, component: np.ndarray, images: np.ndarray,
                    batch: int) -> np.ndarray:
    """(n, H, W): |d pattern score / d pixel|, summed over colour channels, of each image."""
    scores = pattern_scorer([gradient], [component])
    return localize.pixel_gradients(lambda x: scores(model.forward(x)[0])[:, 0], images, batch)


def pattern_scores(model: LoadedModel, patterns: list[Discovery], images: np.ndarray, batch: int) -> np.ndarray:
    """(n, P): each pattern's score (its part of its class's logit) on each image, forward only."""
    import tensorflow as tf

    scores = pattern_scorer([d.gradient for d in patterns], [d.component for d in patterns])
    return np.concatenate([scores(model.forward(tf.constant(images[i:i + batch], tf.float32))[0]).numpy()
                           for i in range(0, len(images), batch)])


def fill_source(probes: np.ndarray, labels: np.ndarray, negatives: np.ndarray | None, class_index: int) -> np.ndarray:
    """What a control paste for this class is filled with: the unrelated images, or without them
    the probes of the other classes (never the class's own images)."""
    return probes[labels != class_index] if negatives is None else negatives


def removal_test(model: LoadedModel, patterns: list[Discovery], probes: np.ndarray, labels: np.ndarray,
                 negatives: np.ndarray | None, seed: int, batch: int) -> None:
    """Set each pattern's `kept`: among the probes it was cut out of that the model puts in the
    class, the share still put there once the region is filled with an unrelated image (the
    insertion test's control paste, applied to the class's own image). The class's object
    carries the class: without it the prediction goes. A cue that merely comes with the object
    can go while the prediction stays. Non-finite logits stop the run (require_finite): argmax
    reads a row with a NaN as the class of its first NaN, so a NaN would count as kept or not, silently."""
    for d in patterns:
        if not len(d.cutouts):
            continue
        images, alpha = d.cutouts[..., :-1], d.cutouts[..., -1:]
        fill = fill_source(probes, labels, negatives, d.class_index)
        rng = np.random.default_rng([seed, 17, d.class_index, d.pattern])
        filled = paste(images, fill[rng.integers(0, len(fill), len(images))], alpha)
        source = f"images discovered pattern {d.pattern} of {model.classes[d.class_index]!r} was cut out of"
        removed = f"{source}, its region filled with an unrelated image (removal test)"
        before = require_finite(log_probs(model, images, batch), source).argmax(1) == d.class_index
        after = require_finite(log_probs(model, filled, batch), removed).argmax(1) == d.class_index
        d.kept = float(after[before].mean()) if before.any() else float("nan")


def insertion_test(model: LoadedModel, patterns: list[Discovery], probes: np.ndarray, labels: np.ndarray,
                   fill: np.ndarray | None, seed: int, batch: int, clean: np.ndarray | None = None) -> None:
    """Paste each pattern's cutouts onto the probes of the *other* classes against a control paste
    of the same alpha filled with an unrelated image (causal.py): does the region alone pull them
    into the class? Sets each pattern's `causal` (p_adjusted: Holm over every pattern)."""
    for d in patterns:
        if not len(d.cutouts):
            continue
        others = labels != d.class_index
        source = fill_source(probes, labels, fill, d.class_index)
        scores: CausalScores = causal_scores(
            model, [d.cutouts], probes[others], source, np.array([d.class_index]), seed + d.pattern,
            clean=None if clean is None else clean[others], control="mask", batch_size=batch,
            concepts=(f"discovered pattern {d.pattern} of {model.classes[d.class_index]}",))
        d.causal = {name: m.at(0, 0) for name, m in scores.sets.items()}
        d.causal["pastes"] = scores.pairs
        d.shown_pastes = [int(i) for i in scores.examples[0, 0] if i >= 0]
    # Holm over every pattern and both probe sets, one family per statistic
    tested = [m for d in patterns if d.causal is not None for m in (d.causal[s] for s in PROBE_SETS) if m]
    for key in ("p", "log_odds_p"):
        for m, p in zip(tested, stats.holm(np.array([m[key] for m in tested]))):
            m[key + "_adjusted"] = float(p)


def _meets(c: dict, level: CausalLevel) -> bool:
    return any(level.reached(m, m["p_adjusted"], m["log_odds_p_adjusted"]) for m in (c[s] for s in PROBE_SETS) if m)


def assign_levels(patterns: list[Discovery], cfg: DiscoverConfig) -> None:
    """review: a pattern for a person to look at (the default for every pattern). warn, only when
    `discover.warn` is configured: its region alone pulls other classes' images into the class
    (insertion test at those thresholds) *and* the class keeps its own images without it (kept >=
    min_kept), meant as an extra cue that comes with the class rather than the object that makes
    it; on the validity benchmark this rule also flags half of the clean models' patterns (docs/evidence.md).
    fail: only when `discover.fail` is configured, likewise."""
    for d in patterns:
        c = d.causal
        if c is None or not any(c[s] for s in PROBE_SETS):
            d.level = "review"
            continue
        kept = bool(d.kept >= cfg.min_kept)
        if cfg.fail is not None and kept and _meets(c, cfg.fail):
            d.level = "fail"
        elif cfg.warn is not None and kept and _meets(c, cfg.warn):
            d.level = "warn"
        else:
            d.level = "review"
