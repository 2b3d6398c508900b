"""The audit result as plain data: `audit.json`, the single truth every output is rendered from."""

from __future__ import annotations

import json
import math
from typing import Any

SCHEMA_VERSION = 1
LEVEL_ORDER = {"fail": 0, "warn": 1, "pass": 2, "allowed": 3}
EXIT_CODES = {"pass": 0, "warn": 0, "fail": 1}

# One sentence per number shown to a reviewer; renderers print these beside the values.
MEANINGS = {
    "cue_d": "Cohen's d: how many standard deviations the concept's example images, with no object of the "
             "class in them, raise the class logit (centered over classes) above the negative images.",
    "cue_p_adjusted": "Chance of a rise at least this large from a random concept (a random subset of the "
                      "negatives), Holm-corrected for every class x concept checked.",
    "cue_top1": "Share of the concept's example images that the model classifies as this class.",
    "vis_effect": "How many standard deviations the class's visualizations lean toward the concept direction "
                  "(relative to the other classes) beyond what random concept directions give.",
    "vis_p_adjusted": "Chance of a lean at least this large along a random concept direction, Holm-corrected.",
    "separability": "Held-out AUC of the concept direction at the concept layer: 1.0 = the layer tells the "
                    "concept from the negatives perfectly, 0.5 = not at all (then its scores mean little).",
    "causal_flip": "Share of probe images (not already this class) that the model calls this class once a "
                   "concept cutout is pasted in, next to the same for a control paste (the same cutout shape "
                   "filled with a random negative image); their difference decides checks that have cutouts.",
    "causal_p_adjusted": "Chance of the log-probability rise (concept paste minus control paste) if the concept's "
                         "pixels did nothing, one-sided paired t-test, Holm-corrected over the causal checks.",
    "target_probability": "Mean softmax probability of the class on its own visualizations "
                          "(how well the optimization converged).",
    "raw_images": "The seed's raw mode (pixels climbed directly, no transforms, no penalty), shown for "
                  "comparison only: on small networks it shows the cues most plainly, on large ones it "
                  "finds high-frequency patterns only the model reads. Evidence uses the other images.",
}


def clean(value: Any) -> Any:
    """JSON-safe and stable: NaN/inf -> None, floats rounded to 6 significant digits."""
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
    return sorted(flagged, key=lambda c: (LEVEL_ORDER[c["level"]], -(c["cue_d"] or 0.0), c["class_name"],
                                          c["concept"]))


def summarize(checks: list[dict]) -> dict:
    out = {"checks": len(checks)}
    for level in LEVEL_ORDER:
        out[level] = sum(c["level"] == level for c in checks)
    return out


def dumps(result: dict) -> str:
    return json.dumps(clean(result), indent=1, sort_keys=False, ensure_ascii=False) + "\n"

