"""The gate policy on hand-made statistics."""

import numpy as np
import pytest

from audit.evidence.causal import CausalScores
from audit.evidence.concepts import ConceptScores
from audit.config import GateConfig, GateLevel
from audit.gate.findings import gate_checks
from audit.gate.verdict import decide

FAIL = GateLevel(cue_max_p=0.01, cue_min_effect=1.0, vis_max_p=1.0, vis_min_effect=1.0)
WARN = GateLevel(cue_max_p=0.05, cue_min_effect=0.5, vis_max_p=1.0, vis_min_effect=0.5)


def _gate(evidence="both", **kw):
    """The observational tests below use the observational gate's full range (fail included)."""
    return GateConfig(evidence, FAIL, WARN, observational_can_fail=kw.pop("observational_can_fail", True), **kw)


def _scores(cue_d, cue_p, vis_effect, vis_p=None):
    cue_d = np.array(cue_d, float)
    z = np.zeros_like(cue_d)
    return ConceptScores(
        classes=("x", "y"), concepts=("arm", "sky"), n_examples=(10, 10), n_negatives=20, random_concepts=100,
        separability=np.ones(2), vis_score=z, vis_effect=np.array(vis_effect, float),
        vis_p=np.full_like(z, 0.5) if vis_p is None else np.array(vis_p, float), vis_p_empirical=z + 0.5,
        cue_d=cue_d, cue_logit_rise=z, cue_p=np.array(cue_p, float), cue_p_empirical=z, cue_top1=z,
        negatives_top1=np.zeros(2), seconds=np.zeros(2))


def _gate_checks(*args):
    """The checks, and the verdict they alone lead to (gate/verdict.py)."""
    checks = gate_checks(*args)
    return checks, decide(c.level for c in checks).level


def _levels(checks):
    return {(c.class_name, c.concept): c.level for c in checks}


def test_strong_significant_concept_fails_and_weak_ones_do_not():
    s = _scores(cue_d=[[2.0, 0.7], [0.1, 2.0]], cue_p=[[1e-6, 1e-4], [0.5, 0.2]], vis_effect=[[2, 2], [2, 2]])
    checks, verdict = _gate_checks(s, {"arm": (), "sky": ()}, _gate())
    assert verdict == "fail"
    assert _levels(checks) == {("x", "arm"): "fail", ("x", "sky"): "warn", ("y", "arm"): "pass",
                               ("y", "sky"): "pass"}  # y x sky: large d but not significant


def test_allowed_pairs_are_never_flagged():
    s = _scores(cue_d=[[3.0, 0], [0, 0]], cue_p=[[1e-9, 1], [1, 1]], vis_effect=[[3, 0], [0, 0]])
    checks, verdict = _gate_checks(s, {"arm": ("x",), "sky": ()}, _gate())
    assert verdict == "pass" and _levels(checks)[("x", "arm")] == "allowed"
    assert checks[0].cue_p_adjusted is None


def test_evidence_modes():
    # cue evidence strong, visualization evidence absent
    s = _scores(cue_d=[[3.0, 0], [0, 0]], cue_p=[[1e-9, 1], [1, 1]], vis_effect=[[0.0, 0], [0, 0]])
    allowed = {"arm": (), "sky": ()}
    assert _gate_checks(s, allowed, _gate())[1] == "pass"
    assert _gate_checks(s, allowed, _gate("cue"))[1] == "fail"
    assert _gate_checks(s, allowed, _gate("either"))[1] == "fail"
    assert _gate_checks(s, allowed, _gate("visualization"))[1] == "pass"


def test_p_values_are_holm_adjusted_over_gated_checks():
    # 0.004 alone passes 0.01, but not once multiplied by the 4 gated checks
    s = _scores(cue_d=[[3.0, 0], [0, 0]], cue_p=[[0.004, 0.9], [0.9, 0.9]], vis_effect=[[3, 0], [0, 0]])
    checks, verdict = _gate_checks(s, {"arm": (), "sky": ()}, _gate())
    assert checks[0].cue_p_adjusted == 0.016 and checks[0].level == "warn" and verdict == "warn"


def test_without_a_causal_test_a_check_warns_at_most_by_default():
    s = _scores(cue_d=[[3.0, 0], [0, 0]], cue_p=[[1e-9, 1], [1, 1]], vis_effect=[[3, 0], [0, 0]])
    checks, verdict = _gate_checks(s, {"arm": (), "sky": ()}, GateConfig("both", FAIL, WARN))
    assert verdict == "warn" and checks[0].level == "warn" and checks[0].decided_by == "observational"
    assert "observational evidence only" in checks[0].reason and "observational_can_fail" in checks[0].reason
    assert checks[0].decisive_value == 3.0  # min(cue d, vis effect) under `evidence: both`


def _causal(flip, shift, p):
    flip, shift, p = (np.array(v, float) for v in (flip, shift, p))
    zero = np.zeros_like(flip)
    return CausalScores(flip=flip, flip_control=zero, effect=flip, logp_rise=shift * 1.3, shift=shift, p=p,
                        pairs=200, logit_spread=1.3)


def test_a_confident_model_that_never_flips_is_caught_by_the_shift():
    # a real network: no top-1 changes, but the class log-probability rises consistently (p tiny)
    s = _scores(cue_d=[[0.0, 0.0], [0.0, 0.0]], cue_p=[[0.5] * 2] * 2, vis_effect=[[0, 0], [0, 0]])
    causal = _causal(flip=[[0.0, 0.0], [0.0, 0.0]], shift=[[0.45, 0.02], [0.6, 0.3]],
                     p=[[1e-9, 0.3], [1e-10, 1e-9]])
    checks, verdict = _gate_checks(s, {"arm": (), "sky": ()}, GateConfig("both", FAIL, WARN), causal)
    by = {(c.class_name, c.concept): c for c in checks}
    assert by[("x", "arm")].level == "warn" and by[("x", "arm")].decided_by == "causal_shift"
    assert by[("y", "arm")].level == "fail" and by[("y", "arm")].decisive_value == 0.6
    assert by[("x", "sky")].level == "pass"  # a control concept: shift ~0
    assert by[("y", "sky")].level == "pass"  # significant but small: below 0.35 logit spreads
    assert "nats over the control paste" in by[("x", "arm")].reason and verdict == "fail"


def test_flips_still_decide_and_only_flips_when_the_shift_is_turned_off():
    from audit.config import CausalLevel

    s = _scores(cue_d=[[0.0, 0.0], [0.0, 0.0]], cue_p=[[0.5] * 2] * 2, vis_effect=[[0, 0], [0, 0]])
    causal = _causal(flip=[[0.2, 0.0], [0.0, 0.0]], shift=[[0.1, 0.0], [0.6, 0.0]], p=[[1e-9, 1], [1e-9, 1]])
    checks, _ = _gate_checks(s, {"arm": (), "sky": ()}, GateConfig("both", FAIL, WARN), causal)
    assert (checks[0].level, checks[0].decided_by, checks[0].decisive_value) == ("fail", "causal_flip", 0.2)
    flips_only = GateConfig("both", FAIL, WARN, causal_fail=CausalLevel(0.01, 0.15, None),
                            causal_warn=CausalLevel(0.05, 0.05, None))
    checks, _ = _gate_checks(s, {"arm": (), "sky": ()}, flips_only, causal)
    assert checks[0].level == "fail" and checks[2].level == "pass"  # y x arm: shift only, no longer counted


def test_the_in_class_test_decides_when_it_is_the_more_severe_and_shares_holm_with_insertion():
    from audit.evidence.inclass import InClassScores

    s = _scores(cue_d=[[0.0, 0.0], [0.0, 0.0]], cue_p=[[0.5] * 2] * 2, vis_effect=[[0, 0], [0, 0]])
    # x x arm: other classes' probes barely move (shift 0.1), the class's own images need the arm (0.7)
    causal = _causal(flip=[[0.0, 0.0], [0.0, 0.0]], shift=[[0.1, 0.0], [0.6, 0.0]], p=[[1e-9, 1], [1e-9, 1]])
    inclass = InClassScores(probes=np.full((2, 2), 15), rise=np.array([[3.0, 0.0], [0.2, 0.0]]),
                            shift=np.array([[0.7, 0.0], [0.05, 0.4]]), p=np.array([[1e-9, 1.0], [0.2, 0.004]]))
    checks, verdict = _gate_checks(s, {"arm": (), "sky": ()}, GateConfig("both", FAIL, WARN), causal, inclass)
    by = {(c.class_name, c.concept): c for c in checks}
    x_arm = by[("x", "arm")]
    assert (x_arm.level, x_arm.decided_by, x_arm.decisive_value) == ("fail", "causal_inclass", 0.7)
    assert "15 of the class's own probe images" in x_arm.reason and "other classes' probes" in x_arm.reason
    # y x arm: insertion decides (fail); the in-class numbers are still recorded
    assert by[("y", "arm")].decided_by == "causal_shift" and by[("y", "arm")].inclass_shift == 0.05
    # y x sky: one family of 8 causal tests for Holm, so its p 0.004 is adjusted to 0.004 x 5 = 0.02
    assert by[("y", "sky")].inclass_p_adjusted == pytest.approx(0.02)
    assert by[("y", "sky")].level == "warn" and verdict == "fail"
