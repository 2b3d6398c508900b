"""Concept scoring: is a human concept present in what the model thinks a class is?

Two kinds of evidence, each tested against the same kind of null, "random concepts":
random subsets of the negative images, as large as the concept's example set,
contrasted with the remaining negatives (many of them, not one).

* Visualization evidence. In the model's activation space at the concept layer
  (spatially averaged, standardized by the negatives), the concept direction is
  mean(concept) - mean(negatives). A class's visualizations are scored by their
  cosine with that direction, minus the same for the other classes'
  visualizations (so a direction that every visualization leans on does not count).
  The effect divides by the null's SD combined with the score's own standard error over
  restarts, floored at 0.01 cosine: finite when the null's spread is tiny.
* Cue evidence. Do the concept's example images, with no object of the class in
  them, raise the class's logit (centered over classes) above the negatives?
  Measured as Cohen's d.

Both give an effect (standard deviations) and a one-sided p-value from the null.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from audit.evidence import stats
from audit.inputs.bank import ConceptSet
from audit.model.load import MAX_FORWARD_BATCH, LoadedModel
from audit.visualize.optimize import Visualizations

# The visualization score is a difference of cosines: below a hundredth of the cosine scale a
# spread is not resolvable, so the effect's denominator never goes under it (when every class's
# visualizations look alike, random directions all score ~0 and the effect would explode).
VIS_SD_FLOOR = 0.01

@dataclass
class ConceptScores:
    """Every array is indexed [visualized class, concept]."""

    classes: tuple[str, ...]
    concepts: tuple[str, ...]
    n_examples: tuple[int, ...]
    n_negatives: int
    random_concepts: int
    separability: np.ndarray      # (K,) held-out AUC of the concept direction, concept vs negatives
    seconds: np.ndarray           # (K,) time spent scoring each concept
    vis_score: np.ndarray         # contrast of cosines (class vs other classes)
    vis_effect: np.ndarray        # (score - null mean) / sqrt(null var + score's restart se^2), sd >= 0.01
    vis_p: np.ndarray             # one-sided p, normal fit to the null
    vis_p_empirical: np.ndarray   # rank p against the null draws
    cue_d: np.ndarray             # Cohen's d of the centered class logit, examples vs negatives
    cue_logit_rise: np.ndarray    # mean rise of the centered class logit (logit units)
    cue_p: np.ndarray
    cue_p_empirical: np.ndarray
    cue_top1: np.ndarray          # share of concept examples classified as the class
    negatives_top1: np.ndarray    # (C,) share of negatives classified as the class


def embed(model: LoadedModel, images: np.ndarray, batch_size: int = MAX_FORWARD_BATCH) -> tuple[np.ndarray, np.ndarray]:
    """Spatially averaged concept-layer activations (N, D) and logits (N, K), `batch_size` images per call."""
    import tensorflow as tf

    feats, logits = [], []
    for i in range(0, len(images), batch_size):
        f, lg = model.predict(tf.constant(images[i:i + batch_size], tf.float32))
        f = f.numpy()
        feats.append(f.reshape(len(f), -1, f.shape[-1]).mean(axis=1) if f.ndim > 2 else f)
        logits.append(lg.numpy())
    return np.concatenate(feats).astype(np.float64), np.concatenate(logits).astype(np.float64)


def _random_subsets(rng: np.random.Generator, n: int, m: int, draws: int) -> np.ndarray:
    """(draws, n) 0/1 matrix, each row choosing m of n items."""
    chosen = np.argsort(rng.random((draws, n)), axis=1)[:, :m]
    select = np.zeros((draws, n))
    np.put_along_axis(select, chosen, 1.0, axis=1)
    return select


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _vis_contrast(vis_cos: np.ndarray) -> np.ndarray:
    """(..., C, R) cosines -> (..., C): class mean minus the mean of the other classes."""
    per_class = vis_cos.mean(axis=-1)
    C = per_class.shape[-1]
    if C == 1:
        return per_class
    others = (per_class.sum(axis=-1, keepdims=True) - per_class) / (C - 1)
    return per_class - others


def _vis_contrast_se(vis_cos: np.ndarray) -> np.ndarray:
    """(C, R) cosines -> (C,) standard error of _vis_contrast from the restarts' own spread:
    another set of restarts would give another score, which a null of random directions
    applied to these very images does not see."""
    C, R = vis_cos.shape
    if R < 2:
        return np.zeros(C)
    var_mean = vis_cos.var(axis=1, ddof=1) / R  # variance of each class's mean cosine
    if C == 1:
        return np.sqrt(var_mean)
    others = (var_mean.sum() - var_mean) / (C - 1) ** 2
    return np.sqrt(var_mean + others)


def _cue_d_from_subsets(x: np.ndarray, select: np.ndarray) -> np.ndarray:
    """Cohen's d of chosen vs unchosen rows of x (n, C), for each selection row: (J, C)."""
    m = select.sum(axis=1, keepdims=True)
    rest = 1.0 - select
    n_rest = rest.sum(axis=1, keepdims=True)
    mean_a, mean_b = select @ x / m, rest @ x / n_rest
    var_a = (select @ x**2 - m * mean_a**2) / (m - 1)
    var_b = (rest @ x**2 - n_rest * mean_b**2) / (n_rest - 1)
    pooled = np.sqrt(((m - 1) * var_a + (n_rest - 1) * var_b) / (m + n_rest - 2))
    return (mean_a - mean_b) / np.maximum(pooled, 1e-12)


def score_concepts(model: LoadedModel, vis: Visualizations, bank: list[ConceptSet],
                   negatives: np.ndarray, random_concepts: int, seed: int,
                   batch_size: int = MAX_FORWARD_BATCH) -> ConceptScores:
    """`batch_size`: images per forward call (from the memory budget: model.forward_batch_size)."""
    C, R = vis.images.shape[:2]
    vis_feats, _ = embed(model, vis.images.reshape((C * R,) + vis.images.shape[2:]), batch_size)
    neg_feats, neg_logits = embed(model, negatives, batch_size)
    mu, sd = neg_feats.mean(0), neg_feats.std(0) + 1e-6
    z_neg = (neg_feats - mu) / sd
    z_vis = _unit((vis_feats - mu) / sd).reshape(C, R, -1)
    centered_neg = neg_logits - neg_logits.mean(1, keepdims=True)
    cls = vis.class_indices

    shape = (C, len(bank))
    out = {k: np.zeros(shape) for k in ("vis_score", "vis_effect", "vis_p", "vis_p_empirical", "cue_d",
                                        "cue_logit_rise", "cue_p", "cue_p_empirical", "cue_top1")}
    separability = np.zeros(len(bank))
    seconds = np.zeros(len(bank))
    for k, concept in enumerate(bank):
        started = time.perf_counter()
        rng = np.random.default_rng([seed, 7, k])
        feats, logits = embed(model, concept.images, batch_size)
        z_con = (feats - mu) / sd
        centered = logits - logits.mean(1, keepdims=True)
        m = min(len(concept.images), len(negatives) // 2)
        subsets = _random_subsets(rng, len(negatives), m, random_concepts)

        direction = _unit(z_con.mean(0) - z_neg.mean(0))
        null_dirs = _unit(subsets @ z_neg / m - (1 - subsets) @ z_neg / (len(negatives) - m))
        cosines = np.einsum("crd,d->cr", z_vis, direction)
        observed = _vis_contrast(cosines)
        null = _vis_contrast(np.einsum("crd,jd->jcr", z_vis, null_dirs))
        se = _vis_contrast_se(cosines)
        out["vis_score"][:, k] = observed
        out["vis_effect"][:, k] = stats.null_z(observed, null, se, VIS_SD_FLOOR)
        out["vis_p"][:, k] = stats.predictive_p(observed, null, se, VIS_SD_FLOOR)
        out["vis_p_empirical"][:, k] = stats.empirical_p(observed, null)

        d = stats.cohens_d(centered[:, cls], centered_neg[:, cls])
        null_d = _cue_d_from_subsets(centered_neg[:, cls], subsets)
        out["cue_d"][:, k] = d
        out["cue_logit_rise"][:, k] = centered[:, cls].mean(0) - centered_neg[:, cls].mean(0)
        out["cue_p"][:, k] = stats.predictive_p(d, null_d)
        out["cue_p_empirical"][:, k] = stats.empirical_p(d, null_d)
        out["cue_top1"][:, k] = (logits.argmax(1)[:, None] == cls[None]).mean(0)

        # can the layer tell the concept from negatives at all? direction from one half, AUC on the other
        half_c, half_n = len(z_con) // 2, len(z_neg) // 2
        perm_c, perm_n = rng.permutation(len(z_con)), rng.permutation(len(z_neg))
        w = z_con[perm_c[:half_c]].mean(0) - z_neg[perm_n[:half_n]].mean(0)
        separability[k] = stats.auc(z_con[perm_c[half_c:]] @ w, z_neg[perm_n[half_n:]] @ w)
        seconds[k] = time.perf_counter() - started

    return ConceptScores(
        classes=tuple(model.classes[i] for i in cls), concepts=tuple(c.name for c in bank),
        n_examples=tuple(len(c.images) for c in bank), n_negatives=len(negatives),
        random_concepts=random_concepts, separability=separability, seconds=seconds,
        negatives_top1=(neg_logits.argmax(1)[:, None] == cls[None]).mean(0), **out,
    )
