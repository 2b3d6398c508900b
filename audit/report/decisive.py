"""The statistic that decided a check, as one short phrase: every output shows the same one
(console, HTML, Markdown, JUnit, CSV, the class x concept matrix, `audit diff`)."""

from __future__ import annotations

from audit.result import PASTE_TESTS, moves_text

LABELS = {"causal_moves": "moves predictions", "causal_responds": "responds (log-odds)",
          "inclass_moves": "in-class: moves predictions", "inclass_responds": "in-class: responds (log-odds)",
          "observational": "observational", "allowed": "allowed"}


def _p(v) -> str:
    return "n/a" if v is None else f"{v:.2g}"


def _decisive(check: dict) -> tuple[str, str, dict] | None:
    """(test, probe set, measures) of a paste test's decision, None for other checks."""
    by, on = check.get("decided_by") or "", check.get("decided_on")
    test = by.split("_")[0]
    if test in PASTE_TESTS and on and check.get(test) and check[test].get(on):
        return test, on, check[test][on]
    return None


def decisive_text(check: dict) -> str:
    """e.g. "moves 22.0 ± 5.1% of hard probes (90) into 'dumbbell' (concept paste 25%, control paste 3%),
    adj. p 6e-12; log-odds +1.90 nats" or "responds: log-odds +0.61 nats, adj. p 1e-08; moves 0.2 ± 0.4% ..."."""
    found = _decisive(check)
    if found:
        test, on, m = found
        moves = moves_text(test, on, m, check["class_name"])
        odds = f"log-odds {m['log_odds']:+.2f} nats"
        if check["decided_by"].endswith("_responds"):
            return f"responds: {odds}, adj. p {_p(m['log_odds_p_adjusted'])}; {moves}"
        return f"{moves}, adj. p {_p(m['p_adjusted'])}; {odds}"
    if check.get("decided_by") == "allowed":
        return "allowed"
    return f"cue d {check['cue_d']:.2f}, vis effect {check['vis_effect']:.2f} (observational)"


def decisive_short(check: dict) -> str:
    """For a table cell: the deciding number alone, e.g. "moves +16 pts (hard)", "log-odds +0.61", "d 1.69 / v 1.71"."""
    found = _decisive(check)
    if found:
        test, on, m = found
        where = ("in-class, " if test == "inclass" else "") + on
        if check["decided_by"].endswith("_responds"):
            return f"log-odds {m['log_odds']:+.2f} ({where})"
        return f"moves {m['moves']:+.0f} pts ({where})"
    if check.get("decided_by") == "allowed":
        return "allowed"
    return f"d {check['cue_d']:.2f} / v {check['vis_effect']:.2f}"
