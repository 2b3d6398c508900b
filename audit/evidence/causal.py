"""Causal confirmation: does pasting the concept into real images move the model's decisions?

The observational tests (concepts.py) ask whether a concept *looks like* a class to the model; a
shortcut is a concept the model *relies on*, and reliance is measured here in the units a user
acts on: how many percentage points of realistic inputs the concept moves into the class.

Concept cutouts (RGBA images of the concept alone) are alpha-composited onto probe images
(in-distribution pictures of any class), and every concept paste has a control paste of the very
same alpha mask filled with the pixels of a random negative image. The control cancels what any
patch of that shape and place does (occlusion, an edge, a coloured blob), so the difference is
what the concept's own pixels do. It is measured on two probe sets: the user's probes, and their
hard copies (hard.py: downscaled, occluded, blended, zoomed; less confident, as deployment inputs
are), each the same way.

Per (class, concept, probe set), over the probes the model does not already put in the class:
* moves: the share of them (points) the concept paste puts in the class, minus the control
  paste's share, with a 95% interval and a one-sided paired t-test over probes (one value per
  probe: its pastes averaged). This is the ImageNet-W "gap", and what the gate fails on;
* log-odds: how much the concept paste raises the class's log-odds (log p / (1 - p), nats) over
  the control paste; the same beyond the mean rise of the other classes (a paste that covers the
  probe's own object raises every other class alike), with a paired test; and the mean rise of the
  class's probability (points). A confident network may raise a class's log-odds consistently while
  changing no decision: that is "responds" evidence, which may warn but never fail
  (gate/pastes.py), and only where the class's own log-odds and probability rise too.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Callable, Sequence

import numpy as np

from audit.errors import UserError
from audit.evidence import stats
from audit.evidence.hard import hard_images
from audit.model.load import MAX_FORWARD_BATCH, LoadedModel
from audit.result import PROBE_SETS

PASTES_PER_PROBE = 2  # each probe gets this many (concept, control) paste pairs
SHOWN = 3             # pastes kept per check to show a reviewer (the ones that moved the class most)


@dataclass
class Measures:
    """One probe set's measures, arrays indexed [class, concept]; NaN (counted 0) where not measured."""

    counted: np.ndarray       # probes counted
    into: np.ndarray          # % of their pastes the concept paste puts in the class
    into_control: np.ndarray  # the same for the control paste of the same masks
    moves: np.ndarray         # into - into_control: points of predictions the concept moves into the class
    low: np.ndarray           # 95% interval of `moves` (Student t over probes)
    high: np.ndarray
    p: np.ndarray             # one-sided paired t-test that `moves` is above 0
    log_odds: np.ndarray      # mean rise of the class's log-odds (nats), concept minus control paste
    log_odds_beyond: np.ndarray  # the same beyond the mean rise of the other classes (beyond_others)
    log_odds_p: np.ndarray    # one-sided paired t-test that `log_odds_beyond` is above 0
    prob_rise: np.ndarray     # mean rise of the class's probability (points), concept minus control paste

    @classmethod
    def empty(cls, shape: tuple[int, int]) -> "Measures":
        return cls(**{f.name: np.full(shape, np.nan) for f in fields(cls)})

    def put(self, c: int, k: int, values: dict) -> None:
        for name, value in values.items():
            getattr(self, name)[c, k] = value

    def at(self, c: int, k: int) -> dict | None:
        """The (class, concept) measures as plain numbers, None where not measured."""
        if not self.counted[c, k] > 0:
            return None
        out = {f.name: float(getattr(self, f.name)[c, k]) for f in fields(self)}
        out["counted"] = int(out["counted"])
        return out


def log_odds(lp: np.ndarray) -> np.ndarray:
    """log p - log(1 - p) from log p, finite for p up to 1 - 1e-16."""
    return lp - np.log(-np.expm1(np.minimum(lp, -1e-16)))


def beyond_others(concept_lp: np.ndarray, control_lp: np.ndarray, top: np.ndarray) -> np.ndarray:
    """(pastes, classes): each class's log-odds rise (concept minus control paste) minus the mean rise
    of the other classes that are not the paste's probe's own top-1. A paste that only covers the
    probe's own object lowers that class and raises every other one alike: that is about no class."""
    rise = log_odds(concept_lp) - log_odds(control_lp)
    n, K = rise.shape
    if K < 3:
        return rise
    others = np.ones((n, K), bool)
    others[np.arange(n), top] = False
    total = (rise * others).sum(1, keepdims=True)
    return rise - (total - rise * others) / (others.sum(1, keepdims=True) - others)


def measure(concept_lp: np.ndarray, control_lp: np.ndarray, cls: int, keep: np.ndarray, specific: np.ndarray) -> dict:
    """concept_lp, control_lp: (probes x PASTES_PER_PROBE, classes) log-probabilities of the pastes,
    a probe's pastes together; keep: (probes,) the probes counted; specific: beyond_others of the
    pastes. -> Measures' values for class cls."""
    def per_probe(values: np.ndarray) -> np.ndarray:
        return values.reshape(-1, PASTES_PER_PROBE)[keep].mean(1)

    hit = per_probe((concept_lp.argmax(1) == cls).astype(float)) * 100
    hit_control = per_probe((control_lp.argmax(1) == cls).astype(float)) * 100
    moved = hit - hit_control
    rise = per_probe(log_odds(concept_lp[:, cls]) - log_odds(control_lp[:, cls]))
    beyond = per_probe(specific[:, cls])
    # no probe moved either way: the rule of three (95% bound 3 / n) still gives the interval a width
    low, high = stats.mean_interval(moved, min_half=300.0 / len(moved))
    return {"counted": int(keep.sum()), "into": float(hit.mean()), "into_control": float(hit_control.mean()),
            "moves": float(moved.mean()), "low": low, "high": high, "p": stats.paired_p(moved),
            "log_odds": float(rise.mean()), "log_odds_beyond": float(beyond.mean()), "log_odds_p": stats.paired_p(beyond),
            "prob_rise": float(per_probe(np.exp(concept_lp[:, cls]) - np.exp(control_lp[:, cls])).mean() * 100)}


@dataclass
class CausalScores:
    """The insertion test's measures per probe set (PROBE_SETS), arrays indexed [class, concept]."""

    sets: dict[str, Measures]
    pairs: int                          # concept pastes per probe set (each with its control paste)
    examples: np.ndarray | None = None  # (C, K, SHOWN) pastes on the user's probes a reviewer is shown (-1: none)


def paste(images: np.ndarray, rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    return images * (1.0 - alpha) + rgb * alpha


def log_probs(model: LoadedModel, images: np.ndarray, batch_size: int = MAX_FORWARD_BATCH) -> np.ndarray:
    """Class log-probabilities of images, `batch_size` per forward call."""
    import tensorflow as tf

    out = []
    for i in range(0, len(images), batch_size):
        logits = model.predict(tf.constant(images[i:i + batch_size], tf.float32))[1]
        out.append(tf.nn.log_softmax(tf.cast(logits, tf.float64)).numpy())
    return np.concatenate(out)


def require_finite(lp: np.ndarray, what: str) -> np.ndarray:
    """The log-probabilities, when every image's are finite. A NaN statistic is how a check says it
    was not measured, so a model's NaN (or infinite) logits must stop the run, never read as "not
    tested": the gate fails closed, naming how many images gave them."""
    bad = int((~np.isfinite(lp).all(axis=1)).sum())
    if bad:
        raise UserError(f"model.path: the model gives non-finite logits (NaN or infinity) on {bad} of {len(lp)} "
                        f"{what}, so the causal test cannot be read; fix the model so that every image gets finite "
                        "logits")
    return lp


def concept_label(concepts: Sequence[str], k: int) -> str:
    return f"concept {concepts[k]!r}" if k < len(concepts) else f"concept #{k + 1}"


Source = Callable[[np.ndarray], np.ndarray]  # probe indices -> those probes' images (plain or hard copies)


def probe_source(probes: np.ndarray, probe_set: str, seed: int) -> Source:
    """The images of a probe set (PROBE_SETS), built per batch of indices."""
    if probe_set == "hard":
        return lambda which: hard_images(probes, which, seed)
    return lambda which: probes[which]


def source_log_probs(model: LoadedModel, source: Source, n: int, batch_size: int, what: str) -> np.ndarray:
    """Log-probabilities of a probe set's n images, built and forwarded one batch at a time."""
    out = [log_probs(model, source(np.arange(lo, min(lo + batch_size, n))), batch_size)
           for lo in range(0, n, batch_size)]
    return require_finite(np.concatenate(out), what)


def paste_log_probs(model: LoadedModel, cut: np.ndarray, probes: np.ndarray, probe_set: str, negatives: np.ndarray,
                    seed: int, k: int, control: str, batch_size: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Log-probabilities of concept k's concept pastes and control pastes on the probes or their hard
    copies, each batch built and pasted only when it is forwarded, so the pasted images never all
    exist at once (memory_budget_mb)."""
    n = len(probes) * PASTES_PER_PROBE
    concept, controls = [], []
    for lo in range(0, n, batch_size):
        concept_imgs, control_imgs, _ = pastes(cut, probes, negatives, seed, k, control,
                                               np.arange(lo, min(lo + batch_size, n)), probe_set)
        concept.append(log_probs(model, concept_imgs, batch_size))
        controls.append(log_probs(model, control_imgs, batch_size))
    return require_finite(np.concatenate(concept), what), require_finite(np.concatenate(controls), what)


def footprint(alpha: np.ndarray) -> np.ndarray:
    """(n, H, W, 1) alpha masks -> blobs at the same place with the same total opacity but not the
    concept's shape: each mask blurred over about a third of its own size, rescaled to its mass.
    A control filled into the concept's exact mask reproduces a concept defined by its shape
    (a grid, thin text strokes); this one does not."""
    from scipy.ndimage import gaussian_filter

    out = np.empty_like(alpha)
    for i, a in enumerate(alpha[..., 0]):
        mass = float(a.sum())
        sigma = max(1.0, np.sqrt(max(float((a > 0.5).sum()), 1.0)) / 3)
        blob = gaussian_filter(a, sigma, mode="constant")
        blob *= mass / max(float(blob.sum()), 1e-12)
        out[i, ..., 0] = np.clip(blob, 0.0, 1.0)
    return out


def causal_scores(model: LoadedModel, cutouts: list[np.ndarray | None], probes: np.ndarray,
                  negatives: np.ndarray, class_indices: np.ndarray, seed: int,
                  clean: np.ndarray | None = None, control: str = "mask",
                  batch_size: int = MAX_FORWARD_BATCH, concepts: Sequence[str] = ()) -> CausalScores:
    """cutouts[k]: (n, H, W, ch + 1) RGBA-like arrays in [0, 1] for concept k, or None.
    `clean`: the probes' own log-probabilities, when already computed. `control`: "mask" fills the
    cutout's own alpha with a negative image, "footprint" a blob of the same place and opacity.
    `batch_size`: images per forward call (from the memory budget: model.forward_batch_size).
    `concepts`: their names, for the error a non-finite logit stops the run with (require_finite)."""
    C, K, n = len(class_indices), len(cutouts), len(probes)
    sets = {name: Measures.empty((C, K)) for name in PROBE_SETS}
    shown = np.full((C, K, SHOWN), -1, int)
    for probe_set in PROBE_SETS:
        source = probe_source(probes, probe_set, seed)
        own = clean if probe_set == "probes" and clean is not None else None
        top = (require_finite(own, "probe images") if own is not None else
               source_log_probs(model, source, n, batch_size, f"{probe_set} images")).argmax(1)
        for k, cut in enumerate(cutouts):
            if cut is None:
                continue
            what = f"pastes of {concept_label(concepts, k)} on the {probe_set} (concept and control pastes)"
            with_concept, with_control = paste_log_probs(model, cut, probes, probe_set, negatives, seed, k, control,
                                                         batch_size, what)
            specific = beyond_others(with_concept, with_control, np.repeat(top, PASTES_PER_PROBE))
            for c, cls in enumerate(class_indices):
                keep = top != cls  # a probe already seen as the class cannot be moved into it
                if keep.any():
                    sets[probe_set].put(c, k, measure(with_concept, with_control, int(cls), keep, specific))
                if probe_set == "probes":
                    shown[c, k] = shown_pastes(with_concept, with_control, int(cls), np.repeat(keep, PASTES_PER_PROBE))
    return CausalScores(sets, n * PASTES_PER_PROBE, shown)


def shown_pastes(with_concept: np.ndarray, with_control: np.ndarray, cls: int, keep: np.ndarray) -> np.ndarray:
    """The pastes a reviewer is shown: those the concept moved into the class (and whose control did
    not) first, then by how much the concept paste raised the class's log-odds over the control."""
    moved = (with_concept.argmax(1) == cls) & (with_control.argmax(1) != cls)
    rise = log_odds(with_concept[:, cls]) - log_odds(with_control[:, cls])
    best = [i for i in np.lexsort((-rise, ~moved)) if keep[i]][:SHOWN]
    return np.array(best + [-1] * (SHOWN - len(best)), int)


def pastes(cut: np.ndarray, probes: np.ndarray, negatives: np.ndarray, seed: int, k: int, control: str = "mask",
           which: np.ndarray | None = None, probe_set: str = "probes") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The concept pastes and control pastes of concept k on the probes or their hard copies
    (`probe_set`), all of them or the paste indices `which`, and the probe each paste was made on:
    the same draws for the same seed, every time, in either probe set."""
    n_probes, source = len(probes), probe_source(probes, probe_set, seed)
    n = n_probes * PASTES_PER_PROBE
    rng = np.random.default_rng([seed, 11, k])
    cut_idx = rng.integers(0, len(cut), n)
    fill_idx = rng.integers(0, len(negatives), n)
    probe_idx = np.repeat(np.arange(n_probes), PASTES_PER_PROBE)
    if which is not None:
        cut_idx, fill_idx, probe_idx = cut_idx[which], fill_idx[which], probe_idx[which]
    rgb, alpha = cut[cut_idx, ..., :-1], cut[cut_idx, ..., -1:]
    control_alpha = alpha if control == "mask" else footprint(alpha)  # per mask: only the drawn ones
    unique, at = np.unique(probe_idx, return_inverse=True)  # a probe's pastes share one (hard) image
    images = source(unique)[at]
    return paste(images, rgb, alpha), paste(images, negatives[fill_idx], control_alpha), probe_idx
