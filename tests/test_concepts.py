"""Concept statistics: the vectorized null matches the plain formula; the demo's ground truth shows."""

import numpy as np
import pytest

from audit import stats
from audit.concepts import _cue_d_from_subsets, _random_subsets, _vis_contrast


def test_random_subsets_choose_m_of_n_and_differ():
    s = _random_subsets(np.random.default_rng(0), n=30, m=7, draws=50)
    assert s.shape == (50, 30) and np.all(s.sum(1) == 7)
    assert len({tuple(row) for row in s}) > 45


def test_vectorized_null_d_equals_cohens_d_on_each_subset():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 3))
    s = _random_subsets(rng, 40, 12, 5)
    fast = _cue_d_from_subsets(x, s)
    for j in range(5):
        chosen = s[j].astype(bool)
        assert fast[j] == pytest.approx(stats.cohens_d(x[chosen], x[~chosen]), rel=1e-9)


def test_vis_contrast_is_class_mean_minus_other_classes():
    cos = np.array([[1.0, 1.0], [0.0, 0.0], [0.5, 0.5]])  # 3 classes x 2 restarts
    assert np.allclose(_vis_contrast(cos), [1.0 - 0.25, 0.0 - 0.75, 0.5 - 0.5])
