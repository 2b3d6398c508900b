"""`audit diff A B`: what changed between two audits (B = candidate, A = baseline), as Markdown and HTML."""

from __future__ import annotations

from audit.baseline import STATISTICS, compare_results, deciding_statistic, statistic_value


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
                      "started_at": r["provenance"]["started_at"]}
    return {"baseline": side(baseline), "candidate": side(candidate), "rows": rows,
            **compare_results(candidate, baseline)}


def _n(v):
    return "-" if v is None else f"{v:.2f}"


def render_markdown(d: dict) -> str:
    lines = [f"# Audit diff: {d['baseline']['model']} -> {d['candidate']['model']}", "",
             f"Verdict {d['baseline']['verdict'].upper()} -> **{d['candidate']['verdict'].upper()}**; "
             f"{len(d['new_findings'])} new finding(s), {len(d['resolved_findings'])} resolved, "
             f"{len(d['regressions'])} regression(s), {d['checks_compared']} checks compared "
             "(each on the statistic that decided it).", ""]
    for f in d["new_findings"]:
        lines.append(f"- {f['message']}")
    for f in d["resolved_findings"]:
        lines.append(f"- resolved: `{f['concept']}` in `{f['class_name']}` (was {f['level']})")
    for r in d["regressions"]:
        lines.append(f"- {r['message']}")
    changed = [r for r in d["rows"] if r["baseline_level"] != r["candidate_level"]]
    if changed:
        lines += ["", "| class | concept | level | statistic | baseline -> candidate |", "|---|---|---|---|---|"]
        for r in changed:
            lines.append(f"| {r['class_name']} | {r['concept']} | {r['baseline_level']} -> {r['candidate_level']} | "
                         f"{r['statistic']} | {_n(r['baseline_value'])} -> {_n(r['candidate_value'])} |")
    return "\n".join(lines) + "\n"


def render_html(d: dict) -> str:
    from audit.report.html import _ENV

    return _ENV.get_template("diff.html.j2").render(d=d)
