"""scores.csv: one row per class x concept check, every statistic, for spreadsheets and pandas.

Class names come from the model provider's classes file: a text cell that a spreadsheet would read
as a formula (it begins with =, +, -, @, a tab or a carriage return) is written with a leading
apostrophe, as OWASP advises, so that opening the file never runs it."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from audit.result import PASTE_TESTS, PROBE_SETS

# a paste test's measures, per test and probe set, as `<test>_<set>_<measure>` columns
PASTE_MEASURES = ("counted", "into", "into_control", "moves", "low", "high", "p_adjusted", "log_odds",
                  "log_odds_beyond", "log_odds_p_adjusted", "prob_rise")
PASTE_COLUMNS = tuple(f"{test}_{probe_set}_{m}" for test in PASTE_TESTS for probe_set in PROBE_SETS
                      for m in PASTE_MEASURES)
COLUMNS = ("class_name", "concept", "level", "decided_by", "decided_on", "decisive_value", "cue_d", "cue_logit_rise",
           "cue_p", "cue_p_adjusted", "cue_p_empirical", "cue_top1", "vis_score", "vis_effect", "vis_p",
           "vis_p_adjusted", "vis_p_empirical", *PASTE_COLUMNS, "reason")


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
        row = dict(check)
        for test in PASTE_TESTS:
            for probe_set, m in (check.get(test) or {}).items():
                row.update({f"{test}_{probe_set}_{k}": v for k, v in (m or {}).items()})
        writer.writerow({k: cell(row.get(k)) for k in COLUMNS})
    return buf.getvalue()
