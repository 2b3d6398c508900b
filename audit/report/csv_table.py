"""scores.csv: one row per class x concept check, every statistic, for spreadsheets and pandas.

Class names come from the model provider's classes file: a text cell that a spreadsheet would read
as a formula (it begins with =, +, -, @, a tab or a carriage return) is written with a leading
apostrophe, as OWASP advises, so that opening the file never runs it."""

from __future__ import annotations

import csv
import io
from pathlib import Path

COLUMNS = ("class_name", "concept", "level", "decided_by", "decisive_value", "cue_d", "cue_logit_rise", "cue_p", "cue_p_adjusted",
           "cue_p_empirical", "cue_top1", "vis_score", "vis_effect", "vis_p", "vis_p_adjusted",
           "vis_p_empirical", "causal_flip", "causal_flip_control", "causal_effect", "causal_logp_rise", "causal_shift", "causal_p",
           "causal_p_adjusted", "inclass_probes", "inclass_rise", "inclass_shift", "inclass_p", "inclass_p_adjusted",
           "reason")


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value) -> object:
    """A value as a CSV cell: empty for None, text that cannot start a formula, numbers as they are."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def render(result: dict, folder: Path) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for check in result["checks"]:
        writer.writerow({k: cell(check.get(k)) for k in COLUMNS})
    return buf.getvalue()
