"""The audit result as plain data: `audit.json`, the single truth every output is rendered from."""

from __future__ import annotations

import json
import math
from typing import Any

SCHEMA_VERSION = 1
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
    "causal_flip": "Share of probe images (not already this class) that the model calls this class once a "
                   "concept cutout is pasted in, next to the same for a control paste (the same cutout shape "
                   "filled with a random negative image); their difference (or the shift) decides checks that have cutouts.",
    "causal_shift": "How much the concept paste raises the class's log-probability over the control paste, beyond "
                    "what it raises the other classes, in units of the model's own logit spread (per probe capped "
                    "at +-1, so in [-1, 1]); it sees confident models whose top-1 never flips. Calibrated: no check "
                    "of a clean validity model reaches 0.35.",
    "causal_p_adjusted": "Chance of a shift at least this large if the concept's pixels did nothing (one-sided "
                         "paired t-test over the probes), Holm-corrected over the causal checks.",
    "inclass_shift": "In-class test (probes in class sub-folders only): the concept pasted into the class's own "
                     "probe images that the model puts in the class, against the control paste of the same mask, "
                     "raises the class's log-odds by this "
                     "many logit spreads (per probe capped at +-1, so in [-1, 1]). It sees reliance the other classes' "
                     "probes miss: a class that needs the cue although the cue alone does not make an image that class. "
                     "Where the concept already sits at the pasted place (a frame, a corner mark), the control paste "
                     "removes it.",
    "decided_by": "Which statistic decided the check: causal_flip or causal_shift (the causal test, when the "
                  "concept has cutouts and the config has probes), causal_inclass (the in-class test, with probes in "
                  "class sub-folders, when it is the more severe), observational (cue d and visualization "
                  "effect; without a causal test a check warns at most unless gate.observational_can_fail), "
                  "or allowed.",
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


def sort_findings(checks: list[dict]) -> list[dict]:
    flagged = [c for c in checks if c["level"] in ("fail", "warn")]
    # causal findings before observational ones, then by the statistic that decided them
    return sorted(flagged, key=lambda c: (LEVEL_ORDER[c["level"]], c.get("decided_by") == "observational",
                                          -(c.get("decisive_value") or 0.0), c["class_name"], c["concept"]))


def summarize(checks: list[dict]) -> dict:
    out = {"checks": len(checks)}
    for level in LEVEL_ORDER:
        out[level] = sum(c["level"] == level for c in checks)
    return out


def dumps(result: dict) -> str:
    return json.dumps(clean(result), indent=1, sort_keys=False, ensure_ascii=False) + "\n"

