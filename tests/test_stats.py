import numpy as np
import pytest

from audit.evidence import stats


def test_holm_matches_hand_computation():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> monotone 0.06
    assert np.allclose(stats.holm(p), [0.03, 0.06, 0.06, 0.02])
    assert np.all(stats.holm(np.array([0.9, 0.8])) <= 1.0)


def test_predictive_p_is_calibrated_under_the_null():
    rng = np.random.default_rng(0)
    null = rng.standard_normal((500, 1))
    draws = rng.standard_normal((4000, 1))
    p = np.array([stats.predictive_p(d, null)[0] for d in draws])
    assert abs(np.mean(p < 0.05) - 0.05) < 0.015
    assert abs(np.mean(p < 0.5) - 0.5) < 0.03


def test_predictive_p_goes_below_the_rank_resolution():
    null = np.random.default_rng(1).standard_normal((200, 3))
    far = np.array([10.0, 10.0, 10.0])
    assert np.all(stats.predictive_p(far, null) < 1e-6)
    assert np.all(stats.empirical_p(far, null) == pytest.approx(1 / 201))


def test_cohens_d():
    a = np.array([2.0, 3.0, 4.0])
    b = np.array([0.0, 1.0, 2.0])
    assert stats.cohens_d(a, b) == pytest.approx(2.0)


def test_auc():
    assert stats.auc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert stats.auc(np.array([1.0]), np.array([1.0])) == 0.5


def test_null_z_stays_finite_when_the_null_has_no_spread():
    null = np.full((500, 2), 0.3) + np.random.default_rng(0).standard_normal((500, 2)) * 1e-9
    observed = np.array([0.35, 0.3])
    z = stats.null_z(observed, null, floor=0.01)
    assert np.all(np.isfinite(z)) and z[0] == pytest.approx(5.0, rel=1e-3)  # 0.05 over the 0.01 floor
    # the observed value's own sampling error widens the spread the effect is measured against
    assert stats.null_z(observed, null, observed_se=0.05, floor=0.01)[0] == pytest.approx(1.0, rel=1e-3)
