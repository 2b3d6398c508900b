"""Split what drives one class into a few patterns: a non-negative factorization of the
per-channel contributions (contributions.py) over the class's own probe images.

Each image's positive contribution per channel (summed over positions), a (n, D) matrix A, is
factored as A ~ W H with W (n, k) and H (k, D) non-negative: H[j] is a group of channels that
push the logit up together, W[:, j] how much each image uses it. Non-negative parts add up to
the positive evidence, so a part present in some images (a cue pasted on most of a class's
pictures) separates from the part present in all (the object), unlike a principal component,
which mixes signs. Spurious ImageNet (Neuhaus et al. 2023) uses PCA of the same contributions.
The factorization is deterministic: SVD-based start, fixed iterations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ITERATIONS = 300
EPS = 1e-9


@dataclass
class Patterns:
    weights: np.ndarray     # (n, k) how much each image uses each pattern (its contribution, logit units)
    components: np.ndarray  # (k, D) channel groups, each scaled to sum 1
    maps: np.ndarray        # (n, k, h, w) where in each image each pattern pushes the logit (logit units)
    share: np.ndarray       # (k,) share of the class's positive evidence each pattern carries


def nmf(a: np.ndarray, k: int, iterations: int = ITERATIONS) -> tuple[np.ndarray, np.ndarray]:
    """a (n, D) >= 0 -> (W (n, k), H (k, D)) by multiplicative updates (Lee & Seung, Frobenius
    loss) from an NNDSVD start (Boutsidis & Gallopoulos 2008), which makes it deterministic."""
    u, s, vt = np.linalg.svd(a, full_matrices=False)
    k = min(k, len(s))
    w, h = np.zeros((a.shape[0], k)), np.zeros((k, a.shape[1]))
    for j in range(k):
        x, y = u[:, j], vt[j]
        xp, xn, yp, yn = np.maximum(x, 0), np.maximum(-x, 0), np.maximum(y, 0), np.maximum(-y, 0)
        pos, neg = np.linalg.norm(xp) * np.linalg.norm(yp), np.linalg.norm(xn) * np.linalg.norm(yn)
        xs, ys, m = (xp, yp, pos) if pos >= neg else (xn, yn, neg)
        scale = np.sqrt(s[j] * m)
        w[:, j] = scale * xs / max(np.linalg.norm(xs), EPS)
        h[j] = scale * ys / max(np.linalg.norm(ys), EPS)
    fill = a.mean() / 100  # zeros never move under multiplicative updates
    w, h = np.maximum(w, fill), np.maximum(h, fill)
    for _ in range(iterations):
        h *= (w.T @ a) / (w.T @ w @ h + EPS)
        w *= (a @ h.T) / (w @ (h @ h.T) + EPS)
    return w, h


def decompose(contributions: np.ndarray, k: int) -> Patterns:
    """contributions (n, h, w, D) of one class on its probes -> k patterns, largest share first."""
    positive = np.maximum(contributions.astype(np.float64), 0.0)
    a = positive.sum((1, 2))
    if not np.isfinite(a).all() or a.max() <= 0:
        raise ValueError("nothing pushes this class's logit up on its probe images")
    w, h = nmf(a, k)
    norm = h.sum(1, keepdims=True) + EPS
    h, w = h / norm, w * norm.T   # components sum to 1: W is then in logit units
    # each channel's contribution in each image is split between the patterns by their share of it
    parts = w[:, :, None] * h[None]                                  # (n, k, D)
    responsibility = parts / (parts.sum(1, keepdims=True) + EPS)
    maps = np.einsum("nyxd,nkd->nkyx", positive, responsibility)
    share = w.sum(0) / max(w.sum(), EPS)
    order = np.argsort(-share, kind="stable")
    return Patterns(weights=w[:, order], components=h[order], maps=maps[:, order], share=share[order])
