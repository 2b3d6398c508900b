"""summary.md: the verdict and the findings, small enough for a CI step summary."""

from __future__ import annotations

from pathlib import Path

ICON = {"pass": "PASS", "warn": "WARN", "fail": "FAIL"}
MAX_ROWS = 50


def _num(v, fmt="{:.2f}"):
    return "n/a" if v is None else fmt.format(v)


def render(result: dict, folder: Path) -> str:
    s = result["summary"]
    lines = [
        f"# {result['title']}: {ICON[result['verdict']]}",
        "",
        f"Model `{result['model']['name']}` (sha256 `{result['model']['sha256'][:12]}`), "
        f"{s['checks']} class x concept checks: **{s['fail']} fail**, {s['warn']} warn, {s['pass']} pass, "
        f"{s['allowed']} allowed.",
        "",
    ]
    if result.get("verdict_reasons"):
        lines += [f"Verdict: {'; '.join(result['verdict_reasons'])}.", ""]
    base = result.get("baseline") or {"state": "none"}
    if base["state"] == "compared":
        lines += [f"Baseline `{base['model_name']}` ({base['verdict']}): {len(base['new_findings'])} new finding(s), "
                  f"{len(base['resolved_findings'])} resolved, {len(base['regressions'])} regression(s) of the "
                  f"statistic that decides each check.", ""]
        for c in [*base["new_findings"], *base["regressions"]][:MAX_ROWS]:
            lines.append(f"- {c['message']}")
        lines.append("")
    elif base["state"] != "none":
        lines += [f"**Baseline {base['state']}**: {base['reason']}.", ""]
    findings = result["findings"]
    if findings:
        lines += ["| level | class | concept | cue d | cue p (adj.) | concept images -> class | vis effect | "
                  "causal flip (control) |",
                  "|---|---|---|---|---|---|---|---|"]
        for f in findings[:MAX_ROWS]:
            causal = "–" if f.get("causal_flip") is None else \
                f"{f['causal_flip']:.0%} ({f['causal_flip_control']:.0%})"
            lines.append(f"| {f['level']} | {f['class_name']} | {f['concept']} | {_num(f['cue_d'])} | "
                         f"{_num(f['cue_p_adjusted'], '{:.2g}')} | {_num(f['cue_top1'], '{:.0%}')} | "
                         f"{_num(f['vis_effect'])} | {causal} |")
        if len(findings) > MAX_ROWS:
            lines.append(f"\n{len(findings) - MAX_ROWS} more findings in audit.json.")
    else:
        lines.append("No concept was found in a class where it is not allowed.")
    m = result["meanings"]
    lines += ["", f"- *cue d*: {m['cue_d']}", f"- *cue p (adj.)*: {m['cue_p_adjusted']}",
              f"- *vis effect*: {m['vis_effect']}", "",
              "Full report: `index.html` in the report folder (self-contained; open it in a browser)."]
    return "\n".join(lines) + "\n"
