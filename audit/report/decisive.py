"""The statistic that decided a check, as one short phrase: every output shows the same one
(console, HTML, Markdown, JUnit, CSV, the class x concept matrix, `audit diff`)."""

from __future__ import annotations

LABELS = {"causal_flip": "causal flip", "causal_shift": "causal shift", "causal_inclass": "in-class shift",
          "observational": "observational",
          "allowed": "allowed"}


def _p(v) -> str:
    return "n/a" if v is None else f"{v:.2g}"


def decisive_text(check: dict) -> str:
    """e.g. "causal flip 22% (control 6%), adj. p 6e-12" or "causal shift 0.45 (+0.61 nats), adj. p 1e-08"."""
    by = check.get("decided_by", "observational")
    if by == "causal_flip":
        return (f"causal flip {check['causal_flip']:.0%} (control {check['causal_flip_control']:.0%}), "
                f"adj. p {_p(check['causal_p_adjusted'])}")
    if by == "causal_shift":
        return (f"causal shift {check['causal_shift']:.2f} ({check['causal_logp_rise']:+.2f} nats), "
                f"adj. p {_p(check['causal_p_adjusted'])}")
    if by == "causal_inclass":
        return (f"in-class shift {check['inclass_shift']:.2f} ({check['inclass_rise']:+.2f} nats on "
                f"{check['inclass_probes']} own probes), adj. p {_p(check['inclass_p_adjusted'])}")
    if by == "allowed":
        return "allowed"
    return f"cue d {check['cue_d']:.2f}, vis effect {check['vis_effect']:.2f} (observational)"


def decisive_short(check: dict) -> str:
    """For a table cell: the deciding number alone, e.g. "flip 16 pts", "shift 0.45", "d 1.69 / v 1.71"."""
    by = check.get("decided_by", "observational")
    if by == "causal_flip":
        return f"flip {check['causal_effect'] * 100:+.0f} pts"
    if by == "causal_shift":
        return f"shift {check['causal_shift']:.2f}"
    if by == "causal_inclass":
        return f"in-class {check['inclass_shift']:.2f}"
    if by == "allowed":
        return "allowed"
    return f"d {check['cue_d']:.2f} / v {check['vis_effect']:.2f}"
