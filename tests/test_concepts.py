"""Concept statistics: the vectorized null matches the plain formula; the demo's ground truth shows."""

import numpy as np
import pytest

from audit.evidence import stats
from audit.evidence.concepts import _cue_d_from_subsets, _random_subsets, _vis_contrast


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


def test_embedding_in_smaller_batches_gives_the_same_features():
    # forward-only stages size their batches from the memory budget: the numbers must not depend on it
    from audit.evidence.concepts import embed
    from audit.config import ModelConfig
    from audit.images import load_folder
    from audit.model.load import forward_batch_size, load_model
    from conftest import ASSETS

    classes = ("dumbbell", "barbell", "kettlebell", "ball", "racket", "bottle")
    model = load_model(ModelConfig(ASSETS / "models" / "demo_shortcut.keras", classes, None, (0.0, 1.0), None, False))
    images = load_folder(ASSETS / "concepts" / "arm", (64, 64), 3, "arm")
    f64, l64 = embed(model, images, 64)
    f5, l5 = embed(model, images, 5)
    assert np.allclose(f64, f5, atol=1e-5) and np.allclose(l64, l5, atol=1e-5)
    # a smaller budget means smaller batches, never fewer than one image
    assert forward_batch_size(model, 1) < forward_batch_size(model, 2048) <= 64
    assert forward_batch_size(model, 1) >= 1
