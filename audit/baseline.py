"""Comparing an audit with the last released model's audit (both plain audit.json dicts).

The state is always explicit: `compared`, `missing` (asked for, not found),
`incompatible` (another schema, or no checks in common) or `none` (not asked for).
A requested baseline that cannot be compared never passes silently: by default it
fails the gate (`gate.baseline_missing: fail`).
"""

from __future__ import annotations

import json
from pathlib import Path

from audit.result import SCHEMA_VERSION
from audit.yaml_input import short_repr

METRICS = (("cue_d", "cue_min_effect"), ("vis_effect", "vis_min_effect"))
MAX_BASELINE_BYTES = 512 * 2**20


def load_baseline(path: Path | None) -> tuple[str, dict | None, str]:
    """(state, result or None, reason)."""
    if path is None:
        return "none", None, "no baseline given"
    path = Path(path)
    if not path.is_file():
        return "missing", None, f"{path} does not exist"
    if path.stat().st_size > MAX_BASELINE_BYTES:
        return "incompatible", None, f"{path} is {path.stat().st_size / 2**20:.0f} MB, not an audit.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return "incompatible", None, f"{path} is not readable JSON ({' '.join(str(exc).split())[:200]})"
    except RecursionError:  # a hostile file nested thousands of levels deep
        return "incompatible", None, f"{path} is not readable JSON (nested too deeply)"
    if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
        found = data.get("schema_version") if isinstance(data, dict) else None
        return "incompatible", None, f"{path} has schema_version {short_repr(found)}, this tool writes {SCHEMA_VERSION}"
    problem = _structure_problem(data)
    if problem:
        return "incompatible", None, f"{path} is not an audit result ({problem})"
    return "compared", data, f"compared with {path}"


def _structure_problem(data: dict) -> str | None:
    """What keeps `data` from being compared, or None. Checks exactly what compare() reads."""
    def number(v):
        return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))

    model = data.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("name"), str) or not isinstance(model.get("sha256"), str):
        return "no model name and sha256"
    if not isinstance(data.get("verdict"), str):
        return "no verdict"
    for key in ("checks", "findings"):
        items = data.get(key)
        if not isinstance(items, list) or not all(
                isinstance(c, dict) and isinstance(c.get("class_name"), str) and isinstance(c.get("concept"), str)
                and isinstance(c.get("level"), str) for c in items):
            return f"`{key}` is not a list of class x concept checks"
    if not all(number(c.get("cue_d")) and number(c.get("vis_effect")) for c in data["checks"]):
        return "a check has a non-numeric score"
    return None


def _key(check: dict) -> tuple[str, str]:
    return check["class_name"], check["concept"]


def compare(candidate: dict, baseline: dict, abs_tol: float, rel_tol: float, warn_level: dict) -> dict:
    """New findings, resolved findings, and scores that rose beyond tolerance.

    A rise counts only where the new value reaches the warn threshold of its evidence,
    so noise among tiny values does not fail a release."""
    old = {_key(c): c for c in baseline["checks"]}
    new = {_key(c): c for c in candidate["checks"]}
    common = [k for k in new if k in old]
    old_flagged = {_key(f) for f in baseline["findings"]}
    new_flagged = {_key(f) for f in candidate["findings"]}
    regressions = []
    for k in common:
        if new[k]["level"] == "allowed":
            continue
        for metric, threshold in METRICS:
            before, after = old[k].get(metric), new[k].get(metric)
            if before is None or after is None:
                continue
            if after - before > max(abs_tol, rel_tol * abs(before)) and after >= warn_level[threshold]:
                regressions.append({"class_name": k[0], "concept": k[1], "metric": metric,
                                    "baseline": before, "candidate": after})
    return {
        "new_findings": [{"class_name": k[0], "concept": k[1], "level": new[k]["level"]}
                         for k in new if k in new_flagged and k not in old_flagged],
        "resolved_findings": [{"class_name": k[0], "concept": k[1], "level": old[k]["level"]}
                              for k in old if k in old_flagged and k not in new_flagged],
        "regressions": regressions,
        "checks_compared": len(common),
        "checks_only_in_candidate": len([k for k in new if k not in old]),
        "checks_only_in_baseline": len([k for k in old if k not in new]),
    }


def baseline_section(candidate: dict, path: Path | None, abs_tol: float, rel_tol: float,
                     on_missing: str) -> dict:
    """The `baseline` block of audit.json, with `fails_gate` telling whether it fails the release."""
    state, data, reason = load_baseline(path)
    section = {"state": state, "path": str(path) if path else None, "reason": reason,
               "tolerance": {"abs": abs_tol, "rel": rel_tol}}
    if state == "compared":
        diff = compare(candidate, data, abs_tol, rel_tol, candidate["gate"]["warn"])
        if diff["checks_compared"] == 0:
            state, reason = "incompatible", f"{path} has no class x concept check in common with this audit"
            section.update(state=state, reason=reason)
        else:
            section.update(diff, model_sha256=data["model"]["sha256"], model_name=data["model"]["name"],
                           verdict=data["verdict"])
            section["fails_gate"] = bool(diff["new_findings"] or diff["regressions"])
            return section
    section["fails_gate"] = state in ("missing", "incompatible") and on_missing == "fail"
    return section
