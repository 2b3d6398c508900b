"""Causal confirmation: does pasting the concept into real images change the prediction?

The observational tests (concepts.py) ask whether a concept *looks like* a class to the
model; a shortcut is a concept the model *relies on*. This test intervenes: concept cutouts
(RGBA images of the concept alone) are alpha-composited onto probe images (in-distribution
pictures of any class), and the class's probability is compared with a control paste of the
very same alpha masks filled with the pixels of a random negative image. The control cancels
what any patch of that shape and place does (occlusion, an edge, a coloured blob), so the
difference is what the concept's own pixels do.

Per (class, concept), over the probes not already predicted as the class:
* flip: share of them the concept paste turns into the class, minus the control paste's share;
* shift: how much the concept paste raises the class's log-probability over the control paste,
  beyond what it raises the other (non-top) classes, in units of the model's own logit spread
  (the SD of a probe's non-top class log-probabilities), each probe's value capped at +-1.
  Confident real networks rarely change their top-1 for a pasted watermark, yet the class's
  probability rises consistently; the shift sees that, on the model's own scale, so a
  6-class toy network with logits spread over 10 nats and a 1000-class ImageNet network
  spread over ~1.3 nats are judged alike. It is bounded in [-1, 1];
* p: one-sided paired t-test on the per-probe shifts (the pastes of one probe are averaged).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from audit.errors import UserError
from audit.evidence import stats
from audit.model.load import MAX_FORWARD_BATCH, LoadedModel

PASTES_PER_PROBE = 2  # each probe gets this many (concept, control) paste pairs
SHIFT_CAP = 1.0       # one probe moves the shift by at most this many logit spreads
SHOWN = 3             # pastes kept per check to show a reviewer (the ones that moved the class most)


@dataclass
class CausalScores:
    """Arrays indexed [visualized class, concept]; NaN where a concept has no cutouts."""

    flip: np.ndarray          # share of probes turned into the class by the concept paste
    flip_control: np.ndarray  # the same for the mask-matched control paste
    effect: np.ndarray        # flip - flip_control
    logp_rise: np.ndarray     # mean rise of the class log-probability (nats), concept minus control paste
    shift: np.ndarray         # the class's rise beyond the other classes', in logit spreads, in [-1, 1]
    p: np.ndarray             # one-sided paired t-test on the per-probe shift
    pairs: int
    logit_spread: float       # median over probes of the SD of the non-top class log-probabilities
    examples: np.ndarray | None = None  # (C, K, SHOWN) paste indices a reviewer is shown (-1: none)


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


def paste_log_probs(model: LoadedModel, cut: np.ndarray, probes: np.ndarray, negatives: np.ndarray, seed: int,
                     k: int, control: str, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Log-probabilities of concept k's concept pastes and control pastes, each batch pasted only
    when it is forwarded, so the pasted images never all exist at once (memory_budget_mb)."""
    n = len(probes) * PASTES_PER_PROBE
    concept, controls = [], []
    for lo in range(0, n, batch_size):
        concept_imgs, control_imgs, _ = pastes(cut, probes, negatives, seed, k, control,
                                               np.arange(lo, min(lo + batch_size, n)))
        concept.append(log_probs(model, concept_imgs, batch_size))
        controls.append(log_probs(model, control_imgs, batch_size))
    return np.concatenate(concept), np.concatenate(controls)


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


def logit_spread(lp: np.ndarray) -> float:
    """The model's own scale: median over images of the SD of the log-probabilities of the
    classes other than the image's top-1 (log-softmax shifts cancel in an SD)."""
    top = lp.argmax(1)
    rest = np.ones_like(lp, bool)
    rest[np.arange(len(top)), top] = False
    others = lp[rest].reshape(len(top), -1)
    return float(max(np.median(others.std(axis=1)), 1e-6)) if others.shape[1] > 1 else 1.0


def class_shifts(rise: np.ndarray, top: np.ndarray, spread: float) -> np.ndarray:
    """rise (n, K) concept-minus-control log-probabilities, top (n,) the probe's own top-1 class
    -> (n, K): each class's rise minus the mean rise of the other classes that are not the
    probe's top-1, in logit spreads, capped at +-SHIFT_CAP. A paste that only lowers the probe's
    own class raises every other class's log-probability alike: that is not about any one class."""
    n, K = rise.shape
    if K < 3:  # no other non-top class to compare with
        return np.clip(rise / spread, -SHIFT_CAP, SHIFT_CAP)
    nontop = np.ones((n, K), bool)
    nontop[np.arange(n), top] = False
    total = (rise * nontop).sum(1, keepdims=True)
    count = nontop.sum(1, keepdims=True)
    others = (total - rise * nontop) / (count - nontop)
    return np.clip((rise - others) / spread, -SHIFT_CAP, SHIFT_CAP)


def causal_scores(model: LoadedModel, cutouts: list[np.ndarray | None], probes: np.ndarray,
                  negatives: np.ndarray, class_indices: np.ndarray, seed: int,
                  clean: np.ndarray | None = None, control: str = "mask",
                  batch_size: int = MAX_FORWARD_BATCH, concepts: Sequence[str] = ()) -> CausalScores:
    """cutouts[k]: (n, H, W, ch + 1) RGBA-like arrays in [0, 1] for concept k, or None.
    `clean`: the probes' own log-probabilities, when already computed. `control`: "mask" fills the
    cutout's own alpha with a negative image, "footprint" a blob of the same place and opacity.
    `batch_size`: images per forward call (from the memory budget: model.forward_batch_size).
    `concepts`: their names, for the error a non-finite logit stops the run with (require_finite)."""
    C, K = len(class_indices), len(cutouts)
    shape = (C, K)
    names = ("flip", "flip_control", "effect", "logp_rise", "shift", "p")
    out = {name: np.full(shape, np.nan) for name in names}
    n = len(probes) * PASTES_PER_PROBE
    probe_idx = np.repeat(np.arange(len(probes)), PASTES_PER_PROBE)
    clean = require_finite(log_probs(model, probes, batch_size) if clean is None else clean, "probe images")
    spread = logit_spread(clean)
    top = clean.argmax(1)[probe_idx]
    # a paste of a probe already seen as the class cannot flip to it: per class, the pastes that count
    eligible = top[None, :] != np.asarray(class_indices)[:, None]
    shown = np.full((C, K, SHOWN), -1, int)
    for k, cut in enumerate(cutouts):
        if cut is None:
            continue
        with_concept, with_control = paste_log_probs(model, cut, probes, negatives, seed, k, control, batch_size)
        what = f"pastes of {concept_label(concepts, k)} on the probe images (concept and control pastes)"
        rise = require_finite(with_concept, what) - require_finite(with_control, what)
        shifts = class_shifts(rise, top, spread)
        for c, cls in enumerate(class_indices):
            keep = eligible[c]
            if not keep.any():
                continue
            out["flip"][c, k] = float((with_concept.argmax(1)[keep] == cls).mean())
            out["flip_control"][c, k] = float((with_control.argmax(1)[keep] == cls).mean())
            out["logp_rise"][c, k] = float(rise[keep, cls].mean())
            # the pastes of one probe share it: one value per probe (its pastes averaged)
            per_probe = shifts[:, cls].reshape(len(probes), PASTES_PER_PROBE).mean(1)
            kept = keep.reshape(len(probes), PASTES_PER_PROBE)[:, 0]
            out["shift"][c, k] = float(per_probe[kept].mean())
            out["p"][c, k] = stats.paired_p(per_probe[kept])
            # shown to a reviewer: pastes that flipped to the class (and whose control did not) first,
            # then by how much the concept paste raised the class over the control paste
            flipped = (with_concept.argmax(1) == cls) & (with_control.argmax(1) != cls)
            order = np.lexsort((-rise[:, cls], ~flipped))
            best = [i for i in order if keep[i]][:SHOWN]
            shown[c, k, :len(best)] = best
        out["effect"][:, k] = out["flip"][:, k] - out["flip_control"][:, k]
    return CausalScores(pairs=n, logit_spread=spread, examples=shown, **out)


def pastes(cut: np.ndarray, probes: np.ndarray, negatives: np.ndarray, seed: int, k: int, control: str = "mask",
           which: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The concept pastes and control pastes of concept k (all of them, or the indices `which`),
    and the probe each paste was made on: the same draws for the same seed, every time."""
    n = len(probes) * PASTES_PER_PROBE
    rng = np.random.default_rng([seed, 11, k])
    cut_idx = rng.integers(0, len(cut), n)
    fill_idx = rng.integers(0, len(negatives), n)
    probe_idx = np.repeat(np.arange(len(probes)), PASTES_PER_PROBE)
    if which is not None:
        cut_idx, fill_idx, probe_idx = cut_idx[which], fill_idx[which], probe_idx[which]
    rgb, alpha = cut[cut_idx, ..., :-1], cut[cut_idx, ..., -1:]
    control_alpha = alpha if control == "mask" else footprint(alpha)  # per mask: only the drawn ones
    return (paste(probes[probe_idx], rgb, alpha), paste(probes[probe_idx], negatives[fill_idx], control_alpha),
            probe_idx)
