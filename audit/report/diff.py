"""`audit diff A B`: what changed between two audits (B = candidate, A = baseline), as Markdown and HTML."""

from __future__ import annotations

from audit.baseline import compare
from audit.report.decisive import decisive_text
from audit.report.markdown import code, md


def diff_problem(result: dict) -> str | None:
    """What else a diff reads beyond what `load_baseline` checks: the candidate's warn thresholds."""
    gate = result.get("gate")
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


def diff_record(baseline: dict, candidate: dict, abs_tol: float = 0.5, rel_tol: float = 0.5) -> dict:
    old = {(c["class_name"], c["concept"]): c for c in baseline["checks"]}
    rows = []
    for c in candidate["checks"]:
        b = old.get((c["class_name"], c["concept"]))
        rows.append({"class_name": c["class_name"], "concept": c["concept"],
                     "baseline_level": b["level"] if b else None, "candidate_level": c["level"],
                     "baseline_cue_d": b["cue_d"] if b else None, "candidate_cue_d": c["cue_d"],
                     "baseline_vis_effect": b["vis_effect"] if b else None, "candidate_vis_effect": c["vis_effect"],
                     # the statistic that decided each side's level (what a reader compares)
                     "baseline_decided_by": decisive_text(b) if b else None,
                     "candidate_decided_by": decisive_text(c)})
    side = lambda r: {"model": r["model"]["name"], "sha256": r["model"]["sha256"], "verdict": r["verdict"],  # noqa: E731
                      "started_at": _started_at(r)}
    return {"baseline": side(baseline), "candidate": side(candidate), "rows": rows,
            **compare(candidate, baseline, abs_tol, rel_tol, candidate["gate"]["warn"])}


def render_markdown(d: dict) -> str:
    lines = [f"# Audit diff: {md(d['baseline']['model'])} -> {md(d['candidate']['model'])}", "",
             f"Verdict {md(d['baseline']['verdict'].upper())} -> **{md(d['candidate']['verdict'].upper())}**; "
             f"{len(d['new_findings'])} new finding(s), {len(d['resolved_findings'])} resolved, "
             f"{len(d['regressions'])} score regression(s), {d['checks_compared']} checks compared.", ""]
    for f in d["new_findings"]:
        lines.append(f"- NEW {md(f['level'])}: {code(f['concept'])} in {code(f['class_name'])}")
    for f in d["resolved_findings"]:
        lines.append(f"- resolved: {code(f['concept'])} in {code(f['class_name'])} (was {md(f['level'])})")
    for r in d["regressions"]:
        lines.append(f"- regression: {r['metric']} of {code(r['class_name'])} x {code(r['concept'])} "
                     f"{r['baseline']:.2f} -> {r['candidate']:.2f}")
    changed = [r for r in d["rows"] if r["baseline_level"] != r["candidate_level"]]
    if changed:
        lines += ["", "| class | concept | level | decided by (baseline -> candidate) |", "|---|---|---|---|"]
        for r in changed:
            lines.append(f"| {md(r['class_name'])} | {md(r['concept'])} | {md(r['baseline_level'])} -> "
                         f"{md(r['candidate_level'])} | "
                         f"{md(r['baseline_decided_by'] or '-')} -> **{md(r['candidate_decided_by'])}** |")
    return "\n".join(lines) + "\n"


def render_html(d: dict) -> str:
    from audit.report.html import _ENV

    return _ENV.get_template("diff.html.j2").render(d=d)
