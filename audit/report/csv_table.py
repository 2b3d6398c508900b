"""scores.csv: one row per class x concept check, every statistic, for spreadsheets and pandas."""

from __future__ import annotations

import csv
import io
from pathlib import Path

COLUMNS = ("class_name", "concept", "level", "decided_by", "decisive_value", "cue_d", "cue_logit_rise", "cue_p", "cue_p_adjusted",
           "cue_p_empirical", "cue_top1", "vis_score", "vis_effect", "vis_p", "vis_p_adjusted",
           "vis_p_empirical", "causal_flip", "causal_flip_control", "causal_effect", "causal_logp_rise", "causal_shift", "causal_p",
           "causal_p_adjusted", "inclass_probes", "inclass_rise", "inclass_shift", "inclass_p", "inclass_p_adjusted",
           "reason")


def render(result: dict, folder: Path) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for check in result["checks"]:
        writer.writerow({k: "" if check.get(k) is None else check[k] for k in COLUMNS})
    return buf.getvalue()
