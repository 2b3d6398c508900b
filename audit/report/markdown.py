"""summary.md: the verdict and the findings, small enough for a CI step summary."""

from __future__ import annotations

import re
from pathlib import Path

from audit.report.decisive import decisive_text

ICON = {"pass": "PASS", "warn": "WARN", "fail": "FAIL"}
MAX_ROWS = 50
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|#~!])")


def md(value) -> str:
    """Text from audit.json (class, concept, model names, reasons) as inert Markdown on one
    line: no raw HTML (`<`, `&` as entities), no table break (`|`), no emphasis or link syntax."""
    text = " ".join(str(value).split())
    text = "".join(ch for ch in text if ch.isprintable())
    # `<` starts raw HTML and `&` an entity; `>` alone is inert mid-line (and "->" stays readable)
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text.replace("&", "&amp;").replace("<", "&lt;"))


def code(value) -> str:
    """A name as an inline code span (shown literally, HTML included), safe in a table cell."""
    text = "".join(ch for ch in " ".join(str(value).split()) if ch.isprintable()).replace("`", "'")
    return f"`{text.replace('|', chr(92) + '|')}`"


def _num(v, fmt="{:.2f}"):
    return "n/a" if v is None else fmt.format(v)


def render(result: dict, folder: Path) -> str:
    s = result["summary"]
    lines = [
        f"# {md(result['title'])}: {ICON[result['verdict']]}",
        "",
        f"Model {md(result['model']['name'])} (sha256 {code(result['model']['sha256'][:12])}), "
        f"{s['checks']} class x concept checks: **{s['fail']} fail**, {s['warn']} warn, {s['pass']} pass, "
        f"{s['allowed']} allowed.",
        "",
    ]
    if result.get("verdict_reasons"):
        lines += [f"Verdict: {md('; '.join(result['verdict_reasons']))}.", ""]
    lines += _notes(result) + _baseline(result.get("baseline") or {"state": "none"})
    findings = result["findings"]
    lines += _findings_table(findings) + _meanings(result["meanings"], findings)
    return "\n".join(lines) + "\n"


def _notes(result: dict) -> list[str]:
    """What the verdict rests on, discovered patterns, the visualization budget and the probes."""
    lines = []
    evidence = result.get("evidence") or {"mode": "causal"}
    if evidence["mode"] != "causal":
        lines += [f"**Evidence:** {md(evidence['statement'])}", ""]
    discovered = result.get("discovered") or []
    if discovered:
        levels = {lv: sum(d["level"] == lv for d in discovered) for lv in ("fail", "warn", "review")}
        worst = ", ".join(f"{md(d['class_name'])} #{d['pattern']} ({d['level']})" for d in discovered[:5])
        lines += [f"**Unnamed patterns (discover):** {len(discovered)} found: {levels['fail']} fail, "
                  f"{levels['warn']} warn, {levels['review']} to review; worst first: {worst}. See the HTML report.",
                  ""]
    budget = result["visualization"].get("budget") or {}
    if budget.get("preview_steps"):
        lines += [f"**Visualizations:** {md(budget['statement'])}", ""]
    probes = result["concepts"].get("probes")
    if probes and probes.get("accuracy") is not None:
        worst = sorted(probes["classes"], key=lambda c: c["accuracy"])[:3]
        lines += [f"Probes: {probes['count']} labelled images, top-1 accuracy {probes['accuracy']:.1%} (lowest: " +
                  ", ".join(f"{md(c['name'])} {c['accuracy']:.0%}" for c in worst) + ").", ""]
        if probes.get("sanity"):
            lines += [f"**Probes:** {probes['sanity']}.", ""]
    return lines


def _baseline(base: dict) -> list[str]:
    if base["state"] == "compared":
        lines = [f"Baseline {md(base['model_name'])} ({md(base['verdict'])}): {len(base['new_findings'])} new "
                 f"finding(s), {len(base['resolved_findings'])} resolved, {len(base.get('not_checked', []))} not "
                 f"checked, {len(base['regressions'])} regression(s) of the statistic that decides each check.", ""]
        for c in [*base["new_findings"], *base["regressions"], *base.get("not_checked", [])][:MAX_ROWS]:
            lines.append(f"- {md(c['message'])}")
        return lines + [""]
    if base["state"] != "none":
        return [f"**Baseline {base['state']}**: {md(base['reason'])}.", ""]
    return []


def _findings_table(findings: list[dict]) -> list[str]:
    if not findings:
        return ["No concept was found in a class where it is not allowed."]
    lines = ["| level | class | concept | decided by | cue d | cue p (adj.) | concept images -> class | "
             "vis effect |",
             "|---|---|---|---|---|---|---|---|"]
    for f in findings[:MAX_ROWS]:
        lines.append(f"| {f['level']} | {md(f['class_name'])} | {md(f['concept'])} | **{md(decisive_text(f))}** | "
                     f"{_num(f['cue_d'])} | {_num(f['cue_p_adjusted'], '{:.2g}')} | "
                     f"{_num(f['cue_top1'], '{:.0%}')} | {_num(f['vis_effect'])} |")
    if len(findings) > MAX_ROWS:
        lines.append(f"\n{len(findings) - MAX_ROWS} more findings in audit.json.")
    return lines


def _meanings(m: dict, findings: list[dict]) -> list[str]:
    """What the numbers shown mean (from audit.json's `meanings`)."""
    lines = ["", f"- *decided by*: {m['decided_by']}"]
    if any(f.get("causal") or f.get("inclass") for f in findings):
        lines += [f"- *moves*: {m['moves']}", f"- *log-odds*: {m['log_odds']}", f"- *adj. p*: {m['p_adjusted']}"]
    if any(f.get("inclass") for f in findings):
        lines += [f"- *in-class*: {m['inclass']}"]
    return lines + [f"- *cue d*: {m['cue_d']}", f"- *cue p (adj.)*: {m['cue_p_adjusted']}",
                    f"- *vis effect*: {m['vis_effect']}", "",
                    "Full report: `index.html` in the report folder (self-contained; open it in a browser)."]
