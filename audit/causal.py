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

import numpy as np

from audit import stats
from audit.model import MAX_FORWARD_BATCH, LoadedModel

PASTES_PER_PROBE = 2  # each probe gets this many (concept, control) paste pairs
SHIFT_CAP = 1.0       # one probe moves the shift by at most this many logit spreads


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


def paste(images: np.ndarray, rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    return images * (1.0 - alpha) + rgb * alpha


def log_probs(model: LoadedModel, images: np.ndarray, batch_size: int = MAX_FORWARD_BATCH) -> np.ndarray:
    """Class log-probabilities of images, `batch_size` per forward call."""
    return _log_probs(model, len(images), lambda b: images[b], batch_size)


def _log_probs(model: LoadedModel, count: int, make_batch, batch_size: int) -> np.ndarray:
    """Class log-probabilities of `count` images, each batch built only when it is forwarded
    (make_batch(index array) -> images), so the pasted images never all exist at once."""
    import tensorflow as tf

    out = []
    for i in range(0, count, batch_size):
        logits = model.predict(tf.constant(make_batch(np.arange(i, min(i + batch_size, count))), tf.float32))[1]
        out.append(tf.nn.log_softmax(tf.cast(logits, tf.float64)).numpy())
    return np.concatenate(out)


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
                  clean: np.ndarray | None = None, batch_size: int = MAX_FORWARD_BATCH) -> CausalScores:
    """cutouts[k]: (n, H, W, ch + 1) RGBA-like arrays in [0, 1] for concept k, or None.
    `clean`: the probes' own log-probabilities, when already computed. `batch_size`: images
    per forward call (from the memory budget: model.forward_batch_size)."""
    C, K = len(class_indices), len(cutouts)
    shape = (C, K)
    names = ("flip", "flip_control", "effect", "logp_rise", "shift", "p")
    out = {name: np.full(shape, np.nan) for name in names}
    n = len(probes) * PASTES_PER_PROBE
    probe_idx = np.repeat(np.arange(len(probes)), PASTES_PER_PROBE)
    clean = log_probs(model, probes, batch_size) if clean is None else clean
    spread = logit_spread(clean)
    top = clean.argmax(1)[probe_idx]
    # a paste of a probe already seen as the class cannot flip to it: per class, the pastes that count
    eligible = top[None, :] != np.asarray(class_indices)[:, None]
    for k, cut in enumerate(cutouts):
        if cut is None:
            continue
        rng = np.random.default_rng([seed, 11, k])
        cut_idx = rng.integers(0, len(cut), n)
        fill_idx = rng.integers(0, len(negatives), n)
        with_concept = _log_probs(model, n, lambda b: paste(probes[probe_idx[b]], cut[cut_idx[b], ..., :-1],
                                                            cut[cut_idx[b], ..., -1:]), batch_size)
        with_control = _log_probs(model, n, lambda b: paste(probes[probe_idx[b]], negatives[fill_idx[b]],
                                                            cut[cut_idx[b], ..., -1:]), batch_size)
        rise = with_concept - with_control
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
        out["effect"][:, k] = out["flip"][:, k] - out["flip_control"][:, k]
    return CausalScores(pairs=n, logit_spread=spread, **out)
