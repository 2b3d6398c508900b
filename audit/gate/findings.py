"""The gate: concept statistics -> per-check levels (the verdict they lead to: verdict.py).

A check whose concept has a causal test (cutouts pasted onto probes, causal.py) is decided by
that test: it measures reliance, which the observational evidence only suggests. The causal
test fails a check when its Holm-adjusted p is small enough and either the flip difference or
the log-probability shift (which sees confident models that never change their top-1) reaches
its threshold. Other checks are decided by `gate.evidence`, and by default reach `warn` at most
(`gate.observational_can_fail`): observational evidence alone raised false fails on clean models.
Every check records which statistic decided it (`decided_by`, `decisive_value`).

A check is one (class, concept) pair. Pairs where the concept is allowed are
reported but never gated. p-values are Holm-adjusted over the gated checks of
each kind of evidence, so a model with many classes does not raise false alarms
by sheer number of tests.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np

from audit.evidence import stats
from audit.evidence.causal import CausalScores
from audit.evidence.concepts import ConceptScores
from audit.config.gate import GateConfig
from audit.evidence.inclass import InClassScores

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
    causal_flip: float | None = None          # None: the concept has no cutouts (no causal test)
    causal_flip_control: float | None = None
    causal_effect: float | None = None
    causal_logp_rise: float | None = None
    causal_p: float | None = None
    causal_p_adjusted: float | None = None
    causal_shift: float | None = None
    inclass_probes: int | None = None   # the class's own labelled probes the in-class test pasted into
    inclass_rise: float | None = None   # None: not tested (flat probes, or too few of the class's own)
    inclass_shift: float | None = None
    inclass_p: float | None = None
    inclass_p_adjusted: float | None = None
    decided_by: str = "observational"  # causal_flip | causal_shift | causal_inclass | observational | allowed
    decisive_value: float | None = None  # the value of that statistic (observational: the gated effect)

    def to_dict(self) -> dict:
        return asdict(self)


def _meets(p_adj: float, effect: float, max_p: float, min_effect: float) -> bool:
    return p_adj <= max_p and effect >= min_effect


def _decide(evidence: str, vis_ok: bool, cue_ok: bool) -> bool:
    return {"visualization": vis_ok, "cue": cue_ok, "both": vis_ok and cue_ok, "either": vis_ok or cue_ok}[evidence]


def _shift_meets(shift: float, p_adj: float, lv) -> bool:
    """A causal or in-class shift reaches a `gate.causal` level (None: that level is flips only)."""
    return lv.min_shift is not None and p_adj <= lv.max_p and shift >= lv.min_shift


def _causal_decision(flip: float, shift: float, p_adj: float, cfg: GateConfig) -> tuple[str, str]:
    """(level, decided_by): a level is met by the flip difference or by the shift, each with p."""
    for level, lv in (("fail", cfg.causal_fail), ("warn", cfg.causal_warn)):
        if p_adj <= lv.max_p and flip >= lv.min_flip:
            return level, "causal_flip"
        if _shift_meets(shift, p_adj, lv):
            return level, "causal_shift"
    warn = cfg.causal_warn  # a pass: name the statistic that came closer to warning
    closer_shift = warn.min_shift is not None and shift / warn.min_shift > flip / max(warn.min_flip, 1e-9)
    return "pass", "causal_shift" if closer_shift else "causal_flip"


def _inclass_level(shift: float, p_adj: float, cfg: GateConfig) -> str:
    """The in-class test is judged on the insertion shift's thresholds: the same units (logit spreads,
    capped at +-1 per probe) and the same calibration (README, "Validity")."""
    for level, lv in (("fail", cfg.causal_fail), ("warn", cfg.causal_warn)):
        if _shift_meets(shift, p_adj, lv):
            return level
    return "pass"


def _inclass_reason(level: str, probes: int, rise: float, shift: float, p_adj: float) -> str:
    txt = (f"pasted into {probes} of the class's own probe images, the concept raises the class's log-odds by "
           f"{rise:+.2f} nats more than the control paste of the same mask (in-class shift {shift:.2f} logit "
           f"spreads); adjusted p {p_adj:.2g}")
    return txt if level != "pass" else f"below the warn thresholds: {txt}"


def _causal_reason(level: str, decided_by: str, flip: float, control: float, shift: float, rise: float,
                   p_adj: float) -> str:
    flips = f"turns {flip:.0%} of them into the class (control paste {control:.0%})"
    raises = (f"raises the class's log-probability by {rise:+.2f} nats over the control paste "
              f"(shift {shift:.2f} logit spreads beyond the other classes)")
    first, second = (raises, flips) if decided_by == "causal_shift" else (flips, raises)
    txt = f"pasting the concept into probe images {first}; it {second}; adjusted p {p_adj:.2g}"
    return txt if level != "pass" else f"below the warn thresholds: {txt}"


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


class _Decision(NamedTuple):
    level: str
    decided_by: str
    value: float | None  # the decisive statistic's value
    reason: str


@dataclass(frozen=True)
class _Adjusted:
    """Holm-adjusted p-values, one family per kind of evidence over the gated checks (NaN elsewhere)."""

    vis: np.ndarray
    cue: np.ndarray
    causal: np.ndarray
    inclass: np.ndarray
    tested: np.ndarray    # gated checks the causal test (other classes' probes) measured
    in_class: np.ndarray  # gated checks the in-class test measured


def _check_finite(scores: ConceptScores) -> None:
    for name in ("vis_effect", "vis_p", "cue_d", "cue_p"):
        if not np.all(np.isfinite(getattr(scores, name))):
            # e.g. a model whose logits overflow: no verdict can be trusted, so the gate fails closed
            raise FloatingPointError(f"concept statistic {name} is not finite (NaN or infinite); "
                                     "check the model's outputs and input range")


def _adjust(scores: ConceptScores, gated: np.ndarray, causal: CausalScores | None,
            inclass: InClassScores | None) -> _Adjusted:
    shape = gated.shape
    vis_adj, cue_adj = np.full(shape, np.nan), np.full(shape, np.nan)
    if gated.any():
        vis_adj[gated] = stats.holm(scores.vis_p[gated])
        cue_adj[gated] = stats.holm(scores.cue_p[gated])
    tested = gated & ~np.isnan(causal.p) if causal is not None else np.zeros(shape, bool)
    in_class = gated & ~np.isnan(inclass.p) if inclass is not None else np.zeros(shape, bool)
    causal_adj, inclass_adj = np.full(shape, np.nan), np.full(shape, np.nan)
    if tested.any() or in_class.any():  # the two causal tests are one family for Holm
        both = stats.holm(np.concatenate([causal.p[tested] if tested.any() else [],
                                          inclass.p[in_class] if in_class.any() else []]))
        causal_adj[tested], inclass_adj[in_class] = both[:tested.sum()], both[tested.sum():]
    return _Adjusted(vis_adj, cue_adj, causal_adj, inclass_adj, tested, in_class)


def _causal_check(c: int, k: int, causal: CausalScores | None, inclass: InClassScores | None, adj: _Adjusted,
                  cfg: GateConfig) -> _Decision:
    """A check with a causal test: decided by the causal test, or by the in-class test when that is
    more severe (or the only one)."""
    level, decided_by, value, reason = "pass", "causal_inclass", None, ""
    if adj.tested[c, k]:
        flip, shift, p_adj = float(causal.effect[c, k]), float(causal.shift[c, k]), float(adj.causal[c, k])
        level, decided_by = _causal_decision(flip, shift, p_adj, cfg)
        value = shift if decided_by == "causal_shift" else flip
        reason = _causal_reason(level, decided_by, float(causal.flip[c, k]), float(causal.flip_control[c, k]),
                                shift, float(causal.logp_rise[c, k]), p_adj)
    if adj.in_class[c, k]:  # decides when it is more severe, or when it is the only test
        i_shift, i_adj = float(inclass.shift[c, k]), float(adj.inclass[c, k])
        i_level = _inclass_level(i_shift, i_adj, cfg)
        i_reason = _inclass_reason(i_level, int(inclass.probes[c, k]), float(inclass.rise[c, k]), i_shift, i_adj)
        if not adj.tested[c, k] or LEVELS.index(i_level) < LEVELS.index(level):
            level, decided_by, value = i_level, "causal_inclass", i_shift
            reason = i_reason + (f" (other classes' probes: {reason})" if reason else "")
        else:
            reason += f"; in-class: {i_reason}"
    return _Decision(level, decided_by, value, reason)


def _observational_check(vis: tuple[float, float], cue: tuple[float, float], cfg: GateConfig) -> _Decision:
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
    return _Decision(level, "observational", _observational_value(cfg.evidence, vis[0], cue[0]), reason)


def gate_checks(scores: ConceptScores, allowed_in: dict[str, tuple[str, ...]],
                cfg: GateConfig, causal: CausalScores | None = None,
                inclass: InClassScores | None = None) -> list[Check]:
    """One check per (class, concept), with its level and what decided it (the verdict they
    lead to is gate/verdict.py's)."""
    _check_finite(scores)
    C, K = len(scores.classes), len(scores.concepts)
    allowed = np.array([[scores.classes[c] in allowed_in[scores.concepts[k]] for k in range(K)]
                        for c in range(C)], dtype=bool)
    adj = _adjust(scores, ~allowed, causal, inclass)
    checks = []
    for c in range(C):
        for k in range(K):
            vis = (float(scores.vis_effect[c, k]), float(adj.vis[c, k]))
            cue = (float(scores.cue_d[c, k]), float(adj.cue[c, k]))
            if allowed[c, k]:
                decision = _Decision("allowed", "allowed", None,
                                     f"`{scores.concepts[k]}` is allowed in `{scores.classes[c]}`")
            elif adj.tested[c, k] or adj.in_class[c, k]:
                decision = _causal_check(c, k, causal, inclass, adj, cfg)
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
                decided_by=decision.decided_by, decisive_value=decision.value,
                **_causal_fields(causal, adj.causal, c, k), **_inclass_fields(inclass, adj.inclass, c, k),
            ))
    return checks


def _inclass_fields(inclass: InClassScores | None, adjusted: np.ndarray, c: int, k: int) -> dict:
    if inclass is None:
        return {}
    fields = {"inclass_probes": int(inclass.probes[c, k])}
    if not np.isnan(inclass.p[c, k]):
        fields.update(inclass_rise=float(inclass.rise[c, k]), inclass_shift=float(inclass.shift[c, k]),
                      inclass_p=float(inclass.p[c, k]),
                      inclass_p_adjusted=None if np.isnan(adjusted[c, k]) else float(adjusted[c, k]))
    return fields


def _causal_fields(causal: CausalScores | None, adjusted: np.ndarray, c: int, k: int) -> dict:
    if causal is None or np.isnan(causal.effect[c, k]):
        return {}

    def num(v):
        return None if np.isnan(v) else float(v)
    return {"causal_flip": num(causal.flip[c, k]), "causal_flip_control": num(causal.flip_control[c, k]),
            "causal_effect": num(causal.effect[c, k]), "causal_logp_rise": num(causal.logp_rise[c, k]),
            "causal_p": num(causal.p[c, k]), "causal_p_adjusted": num(adjusted[c, k]),
            "causal_shift": num(causal.shift[c, k])}
