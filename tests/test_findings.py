"""The gate policy on hand-made statistics."""

import numpy as np

from audit.concepts import ConceptScores
from audit.config import GateConfig, GateLevel
from audit.findings import gate_checks

FAIL = GateLevel(cue_max_p=0.01, cue_min_effect=1.0, vis_max_p=1.0, vis_min_effect=1.0)
WARN = GateLevel(cue_max_p=0.05, cue_min_effect=0.5, vis_max_p=1.0, vis_min_effect=0.5)


def _scores(cue_d, cue_p, vis_effect, vis_p=None):
    cue_d = np.array(cue_d, float)
    z = np.zeros_like(cue_d)
    return ConceptScores(
        classes=("x", "y"), concepts=("arm", "sky"), n_examples=(10, 10), n_negatives=20, random_concepts=100,
        separability=np.ones(2), vis_score=z, vis_effect=np.array(vis_effect, float),
        vis_p=np.full_like(z, 0.5) if vis_p is None else np.array(vis_p, float), vis_p_empirical=z + 0.5,
        cue_d=cue_d, cue_logit_rise=z, cue_p=np.array(cue_p, float), cue_p_empirical=z, cue_top1=z,
        negatives_top1=np.zeros(2), seconds=np.zeros(2))


def _levels(checks):
    return {(c.class_name, c.concept): c.level for c in checks}


def test_strong_significant_concept_fails_and_weak_ones_do_not():
    s = _scores(cue_d=[[2.0, 0.7], [0.1, 2.0]], cue_p=[[1e-6, 1e-4], [0.5, 0.2]], vis_effect=[[2, 2], [2, 2]])
    checks, verdict = gate_checks(s, {"arm": (), "sky": ()}, GateConfig("both", FAIL, WARN))
    assert verdict == "fail"
    assert _levels(checks) == {("x", "arm"): "fail", ("x", "sky"): "warn", ("y", "arm"): "pass",
                               ("y", "sky"): "pass"}  # y x sky: large d but not significant


def test_allowed_pairs_are_never_flagged():
    s = _scores(cue_d=[[3.0, 0], [0, 0]], cue_p=[[1e-9, 1], [1, 1]], vis_effect=[[3, 0], [0, 0]])
    checks, verdict = gate_checks(s, {"arm": ("x",), "sky": ()}, GateConfig("both", FAIL, WARN))
    assert verdict == "pass" and _levels(checks)[("x", "arm")] == "allowed"
    assert checks[0].cue_p_adjusted is None


def test_evidence_modes():
    # cue evidence strong, visualization evidence absent
    s = _scores(cue_d=[[3.0, 0], [0, 0]], cue_p=[[1e-9, 1], [1, 1]], vis_effect=[[0.0, 0], [0, 0]])
    allowed = {"arm": (), "sky": ()}
    assert gate_checks(s, allowed, GateConfig("both", FAIL, WARN))[1] == "pass"
    assert gate_checks(s, allowed, GateConfig("cue", FAIL, WARN))[1] == "fail"
    assert gate_checks(s, allowed, GateConfig("either", FAIL, WARN))[1] == "fail"
    assert gate_checks(s, allowed, GateConfig("visualization", FAIL, WARN))[1] == "pass"


def test_p_values_are_holm_adjusted_over_gated_checks():
    # 0.004 alone passes 0.01, but not once multiplied by the 4 gated checks
    s = _scores(cue_d=[[3.0, 0], [0, 0]], cue_p=[[0.004, 0.9], [0.9, 0.9]], vis_effect=[[3, 0], [0, 0]])
    checks, verdict = gate_checks(s, {"arm": (), "sky": ()}, GateConfig("both", FAIL, WARN))
    assert checks[0].cue_p_adjusted == 0.016 and checks[0].level == "warn" and verdict == "warn"
