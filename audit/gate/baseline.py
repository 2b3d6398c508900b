"""Comparing an audit with the last released model's audit (both plain audit.json dicts).

The state is always explicit: `compared`, `missing` (asked for, not found),
`incompatible` (another schema, or no checks in common) or `none` (not asked for).
A requested baseline that cannot be compared never passes silently: by default it
fails the gate (`gate.baseline_missing: fail`).

A finding of the baseline that this audit did not check at all (its concept left out of the bank,
its class out of `visualize.classes`) is not resolved: it is `not_checked`, and fails the gate.
Silencing a check is not fixing it; a concept that now belongs in a class is said so with
`allowed_in`, which keeps the check (level `allowed`) and counts as resolved.
"""

from __future__ import annotations

import json
from pathlib import Path

from audit.config.gate import DEFAULT_TOLERANCE
from audit.result import PASTE_TESTS, SCHEMA_VERSION
from audit.config.yaml_input import short_repr

MAX_BASELINE_BYTES = 512 * 2**20
# the statistic each check is compared on, and how reports name it
STATISTICS = {"moves": "moves (points of probes)",
              "cue_d": "cue d", "vis_effect": "vis effect",
              "min(cue_d, vis_effect)": "min(cue d, vis effect)", "max(cue_d, vis_effect)": "max(cue d, vis effect)"}
TOLERANCE_OF = {"moves": "moves"}


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
    return "compared", data, f"{path}"


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
    if not all(number(c.get("cue_d")) and number(c.get("vis_effect")) and _paste_numbers(c, number)
               for c in data["checks"]):
        return "a check has a non-numeric score"
    return None


def _paste_numbers(check: dict, number) -> bool:
    """A check's paste-test measures, where present, are {probe set: {moves, log_odds, ...}} with numbers."""
    for test in PASTE_TESTS:
        sets = check.get(test)
        if sets is None:
            continue
        if not isinstance(sets, dict) or not all(
                m is None or (isinstance(m, dict) and number(m.get("moves")) and number(m.get("log_odds")))
                for m in sets.values()):
            return False
    return True


def _key(check: dict) -> tuple[str, str]:
    return check["class_name"], check["concept"]


def deciding_statistic(check: dict, evidence: str) -> str:
    """The statistic that decides this check: where a paste test ran, the points of probes it moves
    (a check that only responds, by log-odds, is compared on them too: a log-odds rise may warn, never
    fail, so it cannot fail the gate through the baseline either); else the observational evidence
    `gate.evidence` combines (both = the weaker of the two must pass)."""
    if any(check.get(test) for test in PASTE_TESTS):
        return "moves"
    return {"cue": "cue_d", "visualization": "vis_effect", "both": "min(cue_d, vis_effect)",
            "either": "max(cue_d, vis_effect)"}[evidence]


def statistic_value(check: dict, name: str) -> float | None:
    if name in ("min(cue_d, vis_effect)", "max(cue_d, vis_effect)"):
        cue, vis = check.get("cue_d"), check.get("vis_effect")
        if cue is None or vis is None:
            return None
        return min(cue, vis) if name.startswith("min") else max(cue, vis)
    if name == "moves":  # the largest over both paste tests and both probe sets
        values = [m[name] for test in PASTE_TESTS for m in (check.get(test) or {}).values()
                  if m and m.get(name) is not None]
        return max(values) if values else None
    return check.get(name)


def _reaches_warn(check: dict, name: str, gate: dict) -> bool:
    """Whether the candidate's value is at least the warn effect of its statistic (a rise among
    tiny values is noise, not a regression)."""
    warn = gate["warn"]
    cue = check["cue_d"] >= warn["cue_min_effect"]
    vis = check["vis_effect"] >= warn["vis_min_effect"]
    causal_warn = gate["causal"]["warn"]
    return {"moves": lambda: statistic_value(check, "moves") >= causal_warn["min_moves"],
            "cue_d": lambda: cue, "vis_effect": lambda: vis,
            "min(cue_d, vis_effect)": lambda: cue and vis, "max(cue_d, vis_effect)": lambda: cue or vis}[name]()


def allowed_rise(name: str, before: float, tolerance: dict) -> float:
    """How far a statistic may rise between two honest retrains (docs/evidence.md, "Baseline tolerances")."""
    return max(tolerance[TOLERANCE_OF.get(name, "abs")], tolerance["rel"] * abs(before))


def _change(k: tuple[str, str], name: str, before: float | None, after: float | None, tolerance: dict) -> dict:
    change = {"class_name": k[0], "concept": k[1], "statistic": name, "label": STATISTICS[name],
              "baseline": before, "candidate": after}
    if before is None or after is None:
        return change
    limit = allowed_rise(name, before, tolerance)
    change.update(allowed_rise=limit, within_tolerance=after - before <= limit)
    return change


def _message(change: dict, what: str) -> str:
    text = f"{what} '{change['concept']}' in class '{change['class_name']}'"
    if change.get("allowed_rise") is None:
        return f"{text} (the baseline has no {change['label']} for it)"
    return (f"{text}: {change['label']} {change['baseline']:.2f} -> {change['candidate']:.2f} "
            f"(allowed rise {change['allowed_rise']:.2f})")


def _not_checked(old: dict, new: dict, flagged: set) -> list[dict]:
    """The baseline's findings that have no check in the candidate, each with why, as far as can be told."""
    classes, concepts = {k[0] for k in new}, {k[1] for k in new}
    out = []
    for k in old:
        if k not in flagged or k in new:
            continue
        why = ("its concept is not in this audit's concepts.bank" if k[1] not in concepts else
               "its class is not audited (visualize.classes)" if k[0] not in classes else "this audit has no such check")
        level = old[k]["level"]
        out.append({"class_name": k[0], "concept": k[1], "level": level, "reason": why,
                    "message": f"not checked: {level} '{k[1]}' in class '{k[0]}' in the baseline, but {why}; a "
                               "check left out is not resolved (list the concept in allowed_in if it now belongs)"})
    return out


def compare(candidate: dict, baseline: dict, tolerance: dict | None = None) -> dict:
    """New findings, resolved findings, and regressions: checks whose deciding statistic rose
    beyond tolerance to at least its warn effect without becoming a new finding.

    Each check is compared on the statistic that decided it in the candidate (see
    `deciding_statistic`). A new finding fails the gate at the fail level, or at the warn level
    when its statistic rose beyond tolerance (a warning that appears within retrain noise is
    reported, not gated). A baseline finding without a check in the candidate is not resolved but
    `not_checked` (see _not_checked), which fails the gate too."""
    tolerance = {**DEFAULT_TOLERANCE, **(tolerance or {})}
    gate = candidate["gate"]
    old = {_key(c): c for c in baseline["checks"]}
    new = {_key(c): c for c in candidate["checks"]}
    common = [k for k in new if k in old]
    old_flagged = {_key(f) for f in baseline["findings"]}
    regressions, new_findings, not_comparable = [], [], []
    for k in new:
        name = deciding_statistic(new[k], gate["evidence"])
        before = statistic_value(old[k], name) if k in old else None
        change = _change(k, name, before, statistic_value(new[k], name), tolerance)
        if k in old and new[k]["level"] != "allowed" and before is None:
            not_comparable.append(change)
        if new[k]["level"] in ("fail", "warn") and k not in old_flagged:
            change["level"] = new[k]["level"]
            fails = new[k]["level"] == "fail" or not change.get("within_tolerance", False)
            change["fails_gate"] = fails
            change["message"] = _message(change, f"new {change['level']}" + ("" if fails else
                                                                             " (within retrain tolerance)"))
            new_findings.append(change)
        elif (k in old and new[k]["level"] != "allowed" and change.get("within_tolerance") is False
                and _reaches_warn(new[k], name, gate)):
            regressions.append({**{x: change[x] for x in change if x not in ("fails_gate", "message", "level")},
                                "level": new[k]["level"], "message": _message(change, "regression:")})
    return {
        "new_findings": new_findings,
        "resolved_findings": [{"class_name": k[0], "concept": k[1], "level": old[k]["level"]}
                              for k in old if k in old_flagged and k in new and new[k]["level"] not in ("fail", "warn")],
        "not_checked": _not_checked(old, new, old_flagged),
        "regressions": regressions,
        "not_comparable": not_comparable,
        "checks_compared": len(common),
        "checks_only_in_candidate": len([k for k in new if k not in old]),
        "checks_only_in_baseline": len([k for k in old if k not in new]),
    }


def compare_results(candidate: dict, baseline: dict) -> dict:
    """`compare` with the tolerance the candidate's audit recorded (or the defaults)."""
    recorded = (candidate.get("baseline") or {}).get("tolerance")
    return compare(candidate, baseline, recorded if isinstance(recorded, dict) and "moves" in recorded else None)


def baseline_section(candidate: dict, path: Path | None, tolerance: dict, on_missing: str) -> dict:
    """The `baseline` block of audit.json, with `fails_gate` telling whether it fails the release."""
    state, data, reason = load_baseline(path)
    section = {"state": state, "path": str(path) if path else None, "reason": reason,
               "tolerance": dict(tolerance)}
    if state == "compared":
        diff = compare(candidate, data, tolerance)
        if diff["checks_compared"] == 0:
            state, reason = "incompatible", f"{path} has no class x concept check in common with this audit"
            section.update(state=state, reason=reason)
        else:
            failing_new = [f for f in diff["new_findings"] if f["fails_gate"]]
            section.update(diff, model_sha256=data["model"]["sha256"], model_name=data["model"]["name"],
                           verdict=data["verdict"])
            failing = [c["message"] for c in [*failing_new, *diff["regressions"], *diff["not_checked"]]]
            section["fails_gate"] = bool(failing)
            section["reason"] = (failing[0] + (f"; and {len(failing) - 1} more" if len(failing) > 1 else "")
                                 + f" (against {path})" if failing else
                                 f"no new finding, regression or unchecked finding against {path}")
            return section
    section["fails_gate"] = state in ("missing", "incompatible") and on_missing == "fail"
    return section
