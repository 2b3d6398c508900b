"""`audit diff A B`: what changed between two audits (B = candidate, A = baseline), as Markdown and HTML."""

from __future__ import annotations

from audit.gate.baseline import STATISTICS, compare_results, deciding_statistic, statistic_value
from audit.report.markdown import code, md


def _n(v):
    return "-" if v is None else f"{v:.2f}"


def diff_problem(result: dict) -> str | None:
    """What else a diff reads beyond what `load_baseline` checks: the candidate's gate (evidence
    rule and warn thresholds)."""
    gate = result.get("gate")
    if not isinstance(gate, dict) or gate.get("evidence") not in ("visualization", "cue", "both", "either"):
        return "no gate.evidence rule"
    warn = gate.get("warn") if isinstance(gate, dict) else None
    if not isinstance(warn, dict) or not all(
            isinstance(warn.get(k), (int, float)) and not isinstance(warn.get(k), bool)
            for k in ("cue_min_effect", "vis_min_effect")):
        return "no gate.warn thresholds (cue_min_effect, vis_min_effect)"
    return None


def _started_at(result: dict) -> str:
    provenance = result.get("provenance")
    started = provenance.get("started_at") if isinstance(provenance, dict) else None
    return started if isinstance(started, str) else "unknown"


def diff_record(baseline: dict, candidate: dict) -> dict:
    """Every check side by side on the statistic that decided it, plus the gate's comparison
    (with the tolerance the candidate's audit recorded, or the defaults)."""
    old = {(c["class_name"], c["concept"]): c for c in baseline["checks"]}
    rows = []
    for c in candidate["checks"]:
        b = old.get((c["class_name"], c["concept"]))
        name = deciding_statistic(c, candidate["gate"]["evidence"])
        rows.append({"class_name": c["class_name"], "concept": c["concept"], "statistic": STATISTICS[name],
                     "baseline_level": b["level"] if b else None, "candidate_level": c["level"],
                     "baseline_value": statistic_value(b, name) if b else None,
                     "candidate_value": statistic_value(c, name)})
    side = lambda r: {"model": r["model"]["name"], "sha256": r["model"]["sha256"], "verdict": r["verdict"],  # noqa: E731
                      "started_at": _started_at(r)}
    return {"baseline": side(baseline), "candidate": side(candidate), "rows": rows,
            **compare_results(candidate, baseline)}


def render_markdown(d: dict) -> str:
    lines = [f"# Audit diff: {md(d['baseline']['model'])} -> {md(d['candidate']['model'])}", "",
             f"Verdict {md(d['baseline']['verdict'].upper())} -> **{md(d['candidate']['verdict'].upper())}**; "
             f"{len(d['new_findings'])} new finding(s), {len(d['resolved_findings'])} resolved, "
             f"{len(d['not_checked'])} not checked, "
             f"{len(d['regressions'])} regression(s), {d['checks_compared']} checks compared "
             "(each on the statistic that decided it).", ""]
    for f in d["new_findings"]:
        lines.append(f"- {md(f['message'])}")
    for f in d["resolved_findings"]:
        lines.append(f"- resolved: {code(f['concept'])} in {code(f['class_name'])} (was {md(f['level'])})")
    for r in [*d["regressions"], *d["not_checked"]]:
        lines.append(f"- {md(r['message'])}")
    changed = [r for r in d["rows"] if r["baseline_level"] != r["candidate_level"]]
    if changed:
        lines += ["", "| class | concept | level | statistic | baseline -> candidate |", "|---|---|---|---|---|"]
        for r in changed:
            lines.append(f"| {md(r['class_name'])} | {md(r['concept'])} | {md(r['baseline_level'])} -> "
                         f"{md(r['candidate_level'])} | {md(r['statistic'])} | {_n(r['baseline_value'])} -> "
                         f"{_n(r['candidate_value'])} |")
    return "\n".join(lines) + "\n"


def render_html(d: dict) -> str:
    from audit.report.html import TEMPLATES

    return TEMPLATES.get_template("diff.html.j2").render(d=d)
