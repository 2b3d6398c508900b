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


def _measures(moves, p, log_odds=None, lo_p=None, counted=80):
    """A probe set's Measures from [class, concept] arrays of moves (points) and p."""
    from audit.evidence.causal import Measures

    moves, p = np.array(moves, float), np.array(p, float)
    log_odds = np.zeros_like(moves) if log_odds is None else np.array(log_odds, float)
    lo_p = np.ones_like(moves) if lo_p is None else np.array(lo_p, float)
    return Measures(counted=np.full_like(moves, counted), into=np.maximum(moves, 0) + 2, into_control=np.full_like(moves, 2),
                    moves=moves, low=moves - 4, high=moves + 4, p=p, log_odds=log_odds, log_odds_beyond=log_odds,
                    log_odds_p=lo_p, prob_rise=log_odds / 10)


def _causal(probes, hard):
    return CausalScores(sets={"probes": probes, "hard": hard}, pairs=160)


NOTHING = [[0.0, 0.0], [0.0, 0.0]]
NULL_P = [[1.0, 1.0], [1.0, 1.0]]


def test_moved_decisions_fail_or_warn_on_the_probes_or_their_hard_copies():
    s = _scores(cue_d=[[0.0, 0.0], [0.0, 0.0]], cue_p=[[0.5] * 2] * 2, vis_effect=[[0, 0], [0, 0]])
    # x x arm moves 31 points of the hard probes only; y x arm 8 points of the probes; y x sky 1 point
    causal = _causal(_measures([[1.0, 0.0], [8.0, 1.0]], [[0.2, 1], [1e-6, 1e-9]]),
                     _measures([[31.0, 0.0], [2.0, 0.5]], [[1e-12, 1], [0.2, 0.3]]))
    checks, verdict = _gate_checks(s, {"arm": (), "sky": ()}, GateConfig("both", FAIL, WARN), causal)
    by = {(c.class_name, c.concept): c for c in checks}
    x_arm, y_arm, y_sky = by[("x", "arm")], by[("y", "arm")], by[("y", "sky")]
    assert (x_arm.level, x_arm.decided_by, x_arm.decided_on, x_arm.decisive_value) == \
        ("fail", "causal_moves", "hard", 31.0)
    assert "moves 31.0 ± 4.0% of hard probes (80) into 'x'" in x_arm.reason and "probes +1.0 points" in x_arm.reason
    assert (y_arm.level, y_arm.decided_on) == ("warn", "probes")
    assert y_sky.level == "pass" and y_sky.decided_by == "causal_moves"  # significant, but 1 point moves nothing
    assert x_arm.causal["hard"]["moves"] == 31.0 and x_arm.causal["hard"]["p_adjusted"] <= 1e-11
    assert verdict == "fail"


def test_a_model_that_responds_without_moving_decisions_warns_and_never_fails():
    # a confident real network: no prediction changes, but the class's log-odds rise consistently
    s = _scores(cue_d=[[0.0, 0.0], [0.0, 0.0]], cue_p=[[0.5] * 2] * 2, vis_effect=[[0, 0], [0, 0]])
    causal = _causal(_measures(NOTHING, NULL_P, log_odds=[[0.6, 0.05], [3.0, 0.4]],
                               lo_p=[[1e-12, 1e-3], [1e-12, 1e-9]]),
                     _measures(NOTHING, NULL_P))
    checks, verdict = _gate_checks(s, {"arm": (), "sky": ()}, GateConfig("both", FAIL, WARN), causal)
    by = {(c.class_name, c.concept): c for c in checks}
    assert by[("x", "arm")].level == "warn" and by[("x", "arm")].decided_by == "causal_responds"
    assert by[("x", "arm")].decisive_value == 0.6 and "responds without moving decisions" in by[("x", "arm")].reason
    assert by[("y", "arm")].level == "warn"  # 3 nats, yet no decision moved: it may not fail
    assert by[("x", "sky")].level == "pass" and by[("y", "sky")].level == "pass"  # below 0.5 nats
    assert verdict == "warn"


def test_the_log_odds_warning_can_be_turned_off():
    from audit.config import CausalLevel

    s = _scores(cue_d=[[0.0, 0.0], [0.0, 0.0]], cue_p=[[0.5] * 2] * 2, vis_effect=[[0, 0], [0, 0]])
    causal = _causal(_measures(NOTHING, NULL_P, log_odds=[[0.6, 0], [0, 0]], lo_p=[[1e-12, 1], [1, 1]]),
                     _measures(NOTHING, NULL_P))
    moves_only = GateConfig("both", FAIL, WARN, causal_warn=CausalLevel(0.05, 5.0, None))
    checks, verdict = _gate_checks(s, {"arm": (), "sky": ()}, moves_only, causal)
    assert checks[0].level == "pass" and verdict == "pass"


def test_the_in_class_test_decides_when_it_is_the_more_severe_and_shares_holm_with_insertion():
    from audit.evidence.inclass import InClassScores

    s = _scores(cue_d=[[0.0, 0.0], [0.0, 0.0]], cue_p=[[0.5] * 2] * 2, vis_effect=[[0, 0], [0, 0]])
    # x x arm: other classes' probes barely move (1 point), the class's own images need the arm (40 points)
    causal = _causal(_measures([[1.0, 0.0], [20.0, 0.0]], [[1e-9, 1], [1e-9, 1]]), _measures(NOTHING, NULL_P))
    inclass = InClassScores(sets={"probes": _measures([[40.0, 0.0], [0.5, 6.0]], [[1e-9, 1.0], [0.2, 0.004]], counted=15),
                                  "hard": _measures(NOTHING, NULL_P, counted=15)}, own=np.arange(30))
    checks, verdict = _gate_checks(s, {"arm": (), "sky": ()}, GateConfig("both", FAIL, WARN), causal, inclass)
    by = {(c.class_name, c.concept): c for c in checks}
    x_arm = by[("x", "arm")]
    assert (x_arm.level, x_arm.decided_by, x_arm.decisive_value) == ("fail", "inclass_moves", 40.0)
    assert "of the class's own probes (15) into 'x'" in x_arm.reason and "probes +1.0 points" in x_arm.reason
    # y x arm: insertion decides (fail); the in-class numbers are still recorded
    assert by[("y", "arm")].decided_by == "causal_moves" and by[("y", "arm")].inclass["probes"]["moves"] == 0.5
    # one family of 16 paste tests (2 tests x 2 probe sets x 4 checks) for Holm: p 0.004 ranks 4th of 16
    assert by[("y", "sky")].inclass["probes"]["p_adjusted"] == pytest.approx(0.004 * 13)
    assert by[("y", "sky")].level == "pass" and verdict == "fail"  # 6 points, but adjusted p 0.052 > 0.05
