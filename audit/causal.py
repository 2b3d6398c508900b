"""Causal confirmation: does pasting the concept into real images change the prediction?

The observational tests (concepts.py) ask whether a concept *looks like* a class to the
model; a shortcut is a concept the model *relies on*. This test intervenes: concept cutouts
(RGBA images of the concept alone) are alpha-composited onto probe images (in-distribution
pictures of any class), and the class's probability is compared with a control paste of the
very same alpha masks filled with the pixels of a random negative image. The control cancels
what any patch of that shape and place does (occlusion, an edge, a coloured blob), so the
difference is what the concept's own pixels do.

Per (class, concept): the flip rate (share of probes not already predicted as the class that
the concept paste turns into it) minus the control paste's flip rate, and a one-sided paired
t-test on the rise of the class's log-probability (concept paste minus control paste, averaged
per probe). The flip rate counts only probes not already predicted as the class (they cannot
flip to it); the log-probability test uses every probe (a paste can still raise the class there).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audit import stats
from audit.model import MAX_FORWARD_BATCH, LoadedModel

PASTES_PER_PROBE = 2  # each probe gets this many (concept, control) paste pairs


@dataclass
class CausalScores:
    """Arrays indexed [visualized class, concept]; NaN where a concept has no cutouts."""

    flip: np.ndarray          # share of probes turned into the class by the concept paste
    flip_control: np.ndarray  # the same for the mask-matched control paste
    effect: np.ndarray        # flip - flip_control
    logp_rise: np.ndarray     # mean rise of the class log-probability, concept minus control paste
    p: np.ndarray             # one-sided paired t-test on that rise
    pairs: int


def paste(images: np.ndarray, rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    return images * (1.0 - alpha) + rgb * alpha


def _log_probs(model: LoadedModel, count: int, make_batch, batch_size: int) -> np.ndarray:
    """Class log-probabilities of `count` images, each batch built only when it is forwarded
    (make_batch(index array) -> images), so the pasted images never all exist at once."""
    import tensorflow as tf

    out = []
    for i in range(0, count, batch_size):
        logits = model.predict(tf.constant(make_batch(np.arange(i, min(i + batch_size, count))), tf.float32))[1]
        out.append(tf.nn.log_softmax(tf.cast(logits, tf.float64)).numpy())
    return np.concatenate(out)


def causal_scores(model: LoadedModel, cutouts: list[np.ndarray | None], probes: np.ndarray,
                  negatives: np.ndarray, class_indices: np.ndarray, seed: int,
                  batch_size: int = MAX_FORWARD_BATCH) -> CausalScores:
    """cutouts[k]: (n, H, W, ch + 1) RGBA-like arrays in [0, 1] for concept k, or None.
    `batch_size`: images per forward call (from the memory budget: model.forward_batch_size)."""
    C, K = len(class_indices), len(cutouts)
    shape = (C, K)
    out = {name: np.full(shape, np.nan) for name in ("flip", "flip_control", "effect", "logp_rise", "p")}
    n = len(probes) * PASTES_PER_PROBE
    probe_idx = np.repeat(np.arange(len(probes)), PASTES_PER_PROBE)
    # a paste of a probe already seen as the class cannot flip to it: per class, the pastes that count
    eligible = (_log_probs(model, len(probes), lambda b: probes[b], batch_size).argmax(1)[probe_idx][None, :]
                != np.asarray(class_indices)[:, None])
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
        for c, cls in enumerate(class_indices):
            if not eligible[c].any():
                continue
            out["flip"][c, k] = float((with_concept.argmax(1)[eligible[c]] == cls).mean())
            out["flip_control"][c, k] = float((with_control.argmax(1)[eligible[c]] == cls).mean())
            rise = with_concept[:, cls] - with_control[:, cls]
            out["logp_rise"][c, k] = float(rise.mean())
            # the pastes of one probe share it: test per-probe means, one value per probe
            out["p"][c, k] = stats.paired_p(rise.reshape(len(probes), PASTES_PER_PROBE).mean(1))
        out["effect"][:, k] = out["flip"][:, k] - out["flip_control"][:, k]
    return CausalScores(pairs=n, **out)
