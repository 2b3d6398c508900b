"""The audit result as plain data: `audit.json`, the single truth every output is rendered from."""

from __future__ import annotations

import json
import math
from typing import Any

SCHEMA_VERSION = 2  # 2: paste tests in decision units (moves, log-odds) replace flip and shift
LEVEL_ORDER = {"fail": 0, "warn": 1, "pass": 2, "allowed": 3}

# One sentence per number shown to a reviewer; renderers print these beside the values.
MEANINGS = {
    "cue_d": "Cohen's d: how many standard deviations the concept's example images, with no object of the "
             "class in them, raise the class logit (centered over classes) above the negative images.",
    "cue_p_adjusted": "Chance of a rise at least this large from a random concept (a random subset of the "
                      "negatives), Holm-corrected for every class x concept checked.",
    "cue_top1": "Share of the concept's example images that the model classifies as this class.",
    "vis_effect": "How many standard deviations the class's visualizations lean toward the concept direction "
                  "(relative to the other classes) beyond what random concept directions give (the SD also "
                  "counts the restarts' own spread, and is at least 0.01 cosine, so the effect stays finite).",
    "vis_p_adjusted": "Chance of a lean at least this large along a random concept direction, Holm-corrected.",
    "separability": "Held-out AUC of the concept direction at the concept layer: 1.0 = the layer tells the "
                    "concept from the negatives perfectly, 0.5 = not at all (then its scores mean little).",
    "moves": "Points of probe images (not already this class) that a concept paste puts in the class, minus the "
             "points a control paste of the same mask (filled with a random negative image) puts there, with a 95% "
             "interval: how many decisions the concept itself moves. Measured on the probes and on their hard "
             "copies (downscaled, occluded, blended, zoomed: less confident, as deployment inputs are). It decides "
             "the checks that have cutouts and probes: fail at 12 points, warn at 5 by default (gate.causal).",
    "log_odds": "How much the concept paste raises the class's log-odds (log p / (1 - p), nats) over the control "
                "paste, and the class's probability rise in points: the model responds to the concept. Without "
                "moved decisions it may warn (0.5 nats, on its own and beyond the other classes' rise, by default), never fail.",
    "p_adjusted": "Chance of a result at least this large if the concept's pixels did nothing (one-sided paired "
                  "t-test over the probes), Holm-corrected over every paste test's checks and probe sets.",
    "inclass": "In-class test (probes in class sub-folders only): the same pastes into the class's own probe "
               "images; moves = points of them the concept paste puts in the class minus the control paste's "
               "(the class's accuracy with the concept against with the control). It sees reliance the other "
               "classes' probes miss: a class that needs the cue although the cue alone does not make an image "
               "that class. Where the concept already sits at the pasted place (a frame, a corner mark), the "
               "control paste removes it.",
    "decided_by": "Which statistic decided the check: causal_moves or causal_responds (the insertion test on "
                  "other classes' probes, when the concept has cutouts and the config has probes), inclass_moves or "
                  "inclass_responds (the in-class test, with probes in class sub-folders), observational (cue d and "
                  "visualization effect; without a paste test a check warns at most unless "
                  "gate.observational_can_fail), or allowed; decided_on: the probe set (probes or hard).",
    "target_probability": "Mean softmax probability of the class on its own visualizations "
                          "(how well the optimization converged).",
    "raw_images": "The seed's raw mode (pixels climbed directly, no transforms, no penalty), shown for "
                  "comparison only: on small networks it shows the cues most plainly, on large ones it "
                  "finds high-frequency patterns only the model reads. Evidence uses the other images.",
    "preview": "A short visualization (one image, visualize.preview_steps steps), given to every class when the "
               "full treatment of all classes would exceed visualize.budget; the concept-in-visualization "
               "statistic compares these previews across all classes. Classes a test implicates get the full "
               "treatment.",
}


def clean(value: Any) -> Any:
    """JSON-safe and stable: NaN/inf -> None, floats rounded to 6 significant digits, text that
    UTF-8 cannot carry (a file name's undecodable bytes) with those characters replaced."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            try:  # bytes of a file name that are not UTF-8 (Python keeps them as surrogates): U+FFFD
                return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            except UnicodeEncodeError:
                return value.encode("utf-8", "replace").decode("utf-8")
        return value
    if isinstance(value, float):
        return None if not math.isfinite(value) else float(f"{value:.6g}")
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy scalar
        return clean(value.item())
    return value


# audit.json's paste tests (a check's `causal` and `inclass`) and the probe sets each measures on.
PASTE_TESTS = ("causal", "inclass")  # the insertion test (other classes' probes) and the in-class test
PROBE_SETS = ("probes", "hard")      # the user's probes and their hard copies (evidence/hard.py)

# Where a paste test measured: (test, probe set) -> the images, in words.
WHERE = {("causal", "probes"): "probes", ("causal", "hard"): "hard probes",
         ("inclass", "probes"): "the class's own probes", ("inclass", "hard"): "hard copies of the class's own probes"}


def moves_text(test: str, probe_set: str, m: dict, class_name: str) -> str:
    """A paste test's decision in its units, e.g. "moves 31.0 ± 6.2% of hard probes (456) into
    'carton' (concept paste 33%, control paste 2%)"."""
    half = (m["high"] - m["low"]) / 2
    return (f"moves {m['moves']:.1f} ± {half:.1f}% of {WHERE[test, probe_set]} ({m['counted']}) into {class_name!r} "
            f"(concept paste {m['into']:.0f}%, control paste {m['into_control']:.0f}%)")


def decision_kind(check: dict) -> int:
    """0: moved decisions (or not), 1: responds (log-odds only), 2: observational or allowed."""
    by = check.get("decided_by") or "observational"
    return 0 if by.endswith("_moves") else 1 if by.endswith("_responds") else 2


def sort_findings(checks: list[dict]) -> list[dict]:
    flagged = [c for c in checks if c["level"] in ("fail", "warn")]
    # moved decisions before log-odds responses before observational findings, then by the deciding value
    return sorted(flagged, key=lambda c: (LEVEL_ORDER[c["level"]], decision_kind(c),
                                          -(c.get("decisive_value") or 0.0), c["class_name"], c["concept"]))


def summarize(checks: list[dict]) -> dict:
    out = {"checks": len(checks)}
    for level in LEVEL_ORDER:
        out[level] = sum(c["level"] == level for c in checks)
    return out


def dumps(result: dict) -> str:
    return json.dumps(clean(result), indent=1, sort_keys=False, ensure_ascii=False) + "\n"

