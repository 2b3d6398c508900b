"""The gate: concept statistics -> per-check levels (the verdict they lead to: verdict.py).

A check whose concept has a paste test (causal.py, inclass.py) is decided by it, in the units a
user acts on: the points of probes the concept moves into the class beyond the mask-matched
control paste, on the user's probes or on their hard copies. That fails or warns at
`gate.causal`'s thresholds with a Holm-adjusted p. The class's log-odds rise ("responds") may warn,
never fail: a confident network can respond to a cue while changing no decision. Other checks are
decided by `gate.evidence`, and by default reach `warn` at most (`gate.observational_can_fail`):
observational evidence alone raised false fails on clean models. Every check records which
statistic decided it (`decided_by`, `decided_on`, `decisive_value`) and says it in its `reason`.

A check is one (class, concept) pair. Pairs where the concept is allowed are reported but never
gated. p-values are Holm-adjusted over the gated checks of each kind of evidence (the paste tests'
moves, over both tests and both probe sets, are one family; their log-odds another), so a model
with many classes does not raise false alarms by sheer number of tests.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from audit.evidence import stats
from audit.evidence.causal import CausalScores
from audit.evidence.concepts import ConceptScores
from audit.config.gate import GateConfig
from audit.evidence.inclass import InClassScores
from audit.gate.pastes import Decision, paste_decision, paste_measures

LEVELS = ("fail", "warn", "pass", "allowed")  # most severe first


@dataclass
class Check:
    class_name: str
    concept: str
    level: str
    reason: str
    vis_score: float
    vis_effect: float
    vis_p: float
    vis_p_adjusted: float | None
    vis_p_empirical: float
    cue_d: float
    cue_logit_rise: float
    cue_p: float
    cue_p_adjusted: float | None
    cue_p_empirical: float
    cue_top1: float
    causal: dict | None = None    # per probe set (probes, hard): causal.Measures.at + adjusted p; None: no test
    inclass: dict | None = None   # the same for the class's own probes (in-class test); None: not tested
    decided_by: str = "observational"  # causal_moves | causal_responds | inclass_moves | inclass_responds
                                       # | observational | allowed
    decided_on: str | None = None      # the probe set of a paste test's decision: probes | hard
    decisive_value: float | None = None  # moves (points), log-odds (nats), or the gated observational effect

    def to_dict(self) -> dict:
        return asdict(self)


def _meets(p_adj: float, effect: float, max_p: float, min_effect: float) -> bool:
    return p_adj <= max_p and effect >= min_effect


def _decide(evidence: str, vis_ok: bool, cue_ok: bool) -> bool:
    return {"visualization": vis_ok, "cue": cue_ok, "both": vis_ok and cue_ok, "either": vis_ok or cue_ok}[evidence]


def _observational_value(evidence: str, vis_effect: float, cue_d: float) -> float:
    """The effect the observational gate compared with its thresholds."""
    return {"visualization": vis_effect, "cue": cue_d, "both": min(vis_effect, cue_d),
            "either": max(vis_effect, cue_d)}[evidence]


def _reason(level: str, evidence: str, vis: tuple, cue: tuple) -> str:
    vis_txt = f"visualizations lean toward the concept (effect {vis[0]:.2f}, adjusted p {vis[1]:.2g})"
    cue_txt = f"the concept alone raises the class logit (d {cue[0]:.2f}, adjusted p {cue[1]:.2g})"
    if level == "pass":
        return "below the warn thresholds"
    parts = {"visualization": [vis_txt], "cue": [cue_txt], "both": [vis_txt, cue_txt],
             "either": [vis_txt, cue_txt]}[evidence]
    return "; ".join(parts)


def _check_finite(scores: ConceptScores) -> None:
    for name in ("vis_effect", "vis_p", "cue_d", "cue_p"):
        if not np.all(np.isfinite(getattr(scores, name))):
            # e.g. a model whose logits overflow: no verdict can be trusted, so the gate fails closed
            raise FloatingPointError(f"concept statistic {name} is not finite (NaN or infinite); "
                                     "check the model's outputs and input range")


def _adjust(p: np.ndarray, gated: np.ndarray) -> np.ndarray:
    """Holm over the gated checks (NaN elsewhere)."""
    out = np.full(gated.shape, np.nan)
    if gated.any():
        out[gated] = stats.holm(p[gated])
    return out


def _observational_check(vis: tuple[float, float], cue: tuple[float, float], cfg: GateConfig) -> Decision:
    """A check without a causal test: decided by `gate.evidence`, and warns at most unless
    `gate.observational_can_fail`."""
    level = "pass"
    for name, lv in (("fail", cfg.fail), ("warn", cfg.warn)):
        vis_ok = _meets(vis[1], vis[0], lv.vis_max_p, lv.vis_min_effect)
        cue_ok = _meets(cue[1], cue[0], lv.cue_max_p, lv.cue_min_effect)
        if _decide(cfg.evidence, vis_ok, cue_ok):
            level = name
            break
    reason = _reason(level, cfg.evidence, vis, cue)
    if level == "fail" and not cfg.observational_can_fail:
        level = "warn"
        reason += ("; observational evidence only (no causal test for this concept), so it warns "
                   "instead of failing (gate.observational_can_fail)")
    return Decision(level, "observational", _observational_value(cfg.evidence, vis[0], cue[0]), reason)


def gate_checks(scores: ConceptScores, allowed_in: dict[str, tuple[str, ...]],
                cfg: GateConfig, causal: CausalScores | None = None,
                inclass: InClassScores | None = None) -> list[Check]:
    """One check per (class, concept), with its level and what decided it (the verdict they
    lead to is gate/verdict.py's)."""
    _check_finite(scores)
    C, K = len(scores.classes), len(scores.concepts)
    allowed = np.array([[scores.classes[c] in allowed_in[scores.concepts[k]] for k in range(K)]
                        for c in range(C)], dtype=bool)
    vis_adj, cue_adj = _adjust(scores.vis_p, ~allowed), _adjust(scores.cue_p, ~allowed)
    measured = paste_measures(causal, inclass, ~allowed)
    checks = []
    for c in range(C):
        for k in range(K):
            vis = (float(scores.vis_effect[c, k]), float(vis_adj[c, k]))
            cue = (float(scores.cue_d[c, k]), float(cue_adj[c, k]))
            tests = measured.get((c, k), {})
            if allowed[c, k]:
                decision = Decision("allowed", "allowed", None,
                                     f"`{scores.concepts[k]}` is allowed in `{scores.classes[c]}`")
            elif tests:
                decision = paste_decision(tests, scores.classes[c], cfg)
            else:
                decision = _observational_check(vis, cue, cfg)
            checks.append(Check(
                class_name=scores.classes[c], concept=scores.concepts[k], level=decision.level,
                reason=decision.reason, vis_score=float(scores.vis_score[c, k]), vis_effect=vis[0],
                vis_p=float(scores.vis_p[c, k]), vis_p_adjusted=None if allowed[c, k] else vis[1],
                vis_p_empirical=float(scores.vis_p_empirical[c, k]),
                cue_d=cue[0], cue_logit_rise=float(scores.cue_logit_rise[c, k]), cue_p=float(scores.cue_p[c, k]),
                cue_p_adjusted=None if allowed[c, k] else cue[1],
                cue_p_empirical=float(scores.cue_p_empirical[c, k]), cue_top1=float(scores.cue_top1[c, k]),
                causal=tests.get("causal"), inclass=tests.get("inclass"),
                decided_by=decision.decided_by, decided_on=decision.decided_on, decisive_value=decision.value,
            ))
    return checks
