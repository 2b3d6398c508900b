"""Small, tested statistics: effect sizes, null-distribution p-values, Holm correction."""

from __future__ import annotations

import numpy as np
from scipy import stats as sps


def cohens_d(a: np.ndarray, b: np.ndarray, axis: int = 0) -> np.ndarray:
    """Standardized mean difference (a - b) / pooled SD, along `axis`."""
    na, nb = a.shape[axis], b.shape[axis]
    va, vb = a.var(axis=axis, ddof=1), b.var(axis=axis, ddof=1)
    pooled = np.sqrt(((na - 1) * va + (nb - 1) * vb) / (na + nb - 2))
    return (a.mean(axis=axis) - b.mean(axis=axis)) / np.maximum(pooled, 1e-12)


def null_z(observed: np.ndarray, null: np.ndarray, observed_se: np.ndarray | float = 0.0,
           floor: float = 1e-12) -> np.ndarray:
    """How many standard deviations `observed` sits above the null mean. `null` has the draws
    on axis 0 and the same trailing shape as `observed`. `observed_se`, the observed value's own
    sampling error (which a null built around fixed data does not see), adds to the null's
    variance; `floor` is the smallest SD the score's scale can resolve."""
    sd = np.sqrt(null.var(axis=0, ddof=1) + np.square(observed_se))
    return (observed - null.mean(axis=0)) / np.maximum(sd, floor)


def predictive_p(observed: np.ndarray, null: np.ndarray, observed_se: np.ndarray | float = 0.0,
                 floor: float = 1e-12) -> np.ndarray:
    """One-sided p-value of a new draw at least as large as `observed`, from a normal fit
    to the J null draws (Student-t predictive distribution with J-1 degrees of freedom).
    Unlike the empirical rank p-value, it can go below 1/(J+1), which Holm needs when a
    model has many classes."""
    j = null.shape[0]
    t = null_z(observed, null, observed_se, floor) / np.sqrt(1.0 + 1.0 / j)
    return sps.t.sf(t, df=j - 1)


def empirical_p(observed: np.ndarray, null: np.ndarray) -> np.ndarray:
    """Rank p-value (1 + #null >= observed) / (J + 1); reported as a check on the normal fit."""
    return (1.0 + (null >= observed[None]).sum(axis=0)) / (null.shape[0] + 1.0)


def holm(p: np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (family-wise error control), any shape."""
    flat = np.asarray(p, float).ravel()
    m = flat.size
    order = np.argsort(flat, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * flat[order]))
    out = np.empty_like(flat)
    out[order] = adjusted
    return out.reshape(np.shape(p))


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    u = sps.mannwhitneyu(positive, negative, alternative="two-sided").statistic
    return float(u / (len(positive) * len(negative)))


def paired_p(differences: np.ndarray) -> float:
    """One-sided p-value that the mean of paired differences is above 0 (Student's t)."""
    d = np.asarray(differences, float)
    sd = d.std(ddof=1) if d.size > 1 else 0.0
    if sd < 1e-12:  # no spread: the sign of the mean decides
        return 0.0 if d.mean() > 1e-12 else 1.0
    return float(sps.t.sf(d.mean() / (sd / np.sqrt(d.size)), df=d.size - 1))


def mean_interval(values: np.ndarray, level: float = 0.95, min_half: float = 0.0) -> tuple[float, float]:
    """Two-sided Student-t interval of the mean of `values`, at least `min_half` either side (the
    t interval of identical values has no width, though the sample cannot rule out a small effect)."""
    v = np.asarray(values, float)
    mean = float(v.mean())
    half = float(sps.t.ppf(0.5 + level / 2, df=v.size - 1) * v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else 0.0
    half = max(half, min_half)
    return mean - half, mean + half
