"""Checks with a paste test (evidence/causal.py, evidence/inclass.py), decided in decision units.

One definition of reliance: the concept moves predictions into the class. A check fails or warns
when, on the user's probes or on their hard copies, by the insertion test or the in-class test,
the concept paste puts at least `min_moves` points more probes in the class than the control paste
of the same masks, at `max_p` after Holm. A log-odds rise alone ("responds", with the class's own
probability rising) may warn at `gate.causal.warn.min_log_odds`, never fail.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from audit.config.gate import CausalLevel, GateConfig
from audit.evidence import stats
from audit.evidence.causal import CausalScores
from audit.evidence.inclass import InClassScores
from audit.result import PASTE_TESTS, PROBE_SETS, WHERE, moves_text



class Decision(NamedTuple):
    """A check's level and what decided it (findings.py makes the other kinds: observational, allowed)."""

    level: str
    decided_by: str               # causal_moves | causal_responds | inclass_moves | inclass_responds | ...
    value: float | None           # moves (points), log-odds (nats), or the gated observational effect
    reason: str
    decided_on: str | None = None  # a paste test's probe set: probes | hard


def paste_measures(causal: CausalScores | None, inclass: InClassScores | None,
                   gated: np.ndarray) -> dict[tuple[int, int], dict[str, dict[str, dict]]]:
    """Per (class, concept) a paste test measured: {test: {probe set: measures}}, each with its
    Holm-adjusted `p_adjusted` and `log_odds_p_adjusted` (over the gated checks; None elsewhere)."""
    found: dict = {}
    for test, scores in zip(PASTE_TESTS, (causal, inclass)):
        for probe_set, measures in ({} if scores is None else scores.sets).items():
            for c, k in zip(*np.nonzero(np.isfinite(measures.moves))):
                found.setdefault((int(c), int(k)), {}).setdefault(test, {})[probe_set] = measures.at(c, k)
    for (c, k), tests in found.items():
        for m in (m for sets in tests.values() for m in sets.values()):
            m["p_adjusted"] = m["log_odds_p_adjusted"] = None
    family = [m for (c, k), tests in found.items() if gated[c, k] for sets in tests.values() for m in sets.values()]
    for key in ("p", "log_odds_p"):
        for m, p in zip(family, stats.holm(np.array([m[key] for m in family])) if family else []):
            m[key + "_adjusted"] = float(p)
    return found


def _candidates(tests: dict) -> list[tuple[str, str, dict]]:
    return [(test, s, tests[test][s]) for test in PASTE_TESTS if test in tests for s in PROBE_SETS if s in tests[test]]


def _reached(level: CausalLevel, found: list[tuple[str, str, dict]], how: str) -> tuple | None:
    hits = [(t, s, m) for t, s, m in found if level.reached(m, m["p_adjusted"], m["log_odds_p_adjusted"]) == how]
    key = "moves" if how == "moves" else "log_odds"
    return max(hits, key=lambda h: h[2][key]) if hits else None


def paste_decision(tests: dict, class_name: str, cfg: GateConfig) -> Decision:
    """The level of a gated check from its paste tests' measures (paste_measures)."""
    found = _candidates(tests)
    for level, lv in (("fail", cfg.causal_fail), ("warn", cfg.causal_warn)):
        for how in ("moves", "responds"):
            hit = _reached(lv, found, how)
            if hit:
                test, probe_set, m = hit
                value = m["moves"] if how == "moves" else m["log_odds"]
                return Decision(level, f"{test}_{how}", value, _reason(how, test, probe_set, m, class_name, found),
                                probe_set)
    test, probe_set, m = max(found, key=lambda h: h[2]["moves"])  # a pass: the largest move, for the record
    return Decision("pass", f"{test}_moves", m["moves"],
                    "below the warn thresholds: " + _reason("moves", test, probe_set, m, class_name, found), probe_set)


def _reason(how: str, test: str, probe_set: str, m: dict, class_name: str, found: list) -> str:
    p = m["p_adjusted"] if how == "moves" else m["log_odds_p_adjusted"]
    head = moves_text(test, probe_set, m, class_name)
    odds = (f"log-odds {m['log_odds']:+.2f} nats ({m['log_odds_beyond']:+.2f} beyond the other classes; probability "
            f"{m['prob_rise']:+.2f} points)")
    if how == "responds":
        head = (f"responds without moving decisions: the class's {odds} over the control paste on "
                f"{WHERE[test, probe_set]}, adjusted p {p:.2g}; the concept {head}")
    else:
        head = f"the concept {head}, adjusted p {p:.2g}; {odds}"
    others = [f"{WHERE[t, s]} {o['moves']:+.1f} points" for t, s, o in found if (t, s) != (test, probe_set)]
    return head + (f"; on {', '.join(others)}" if others else "")
