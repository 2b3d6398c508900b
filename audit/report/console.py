"""What a terminal shows of a run: the lines `audit run` / `audit demo` print from audit.json and
`audit discover` from discovery.json (the CLI prints them one by one, each bounded to one line).
Like ci.py's annotations, they read only the record (and where its report folder is)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from audit.report.decisive import decisive_text


def summary_lines(result: dict, quiet: bool, report_dir: Path, history: Path | None = None,
                  history_error: str | None = None) -> Iterator[str]:
    """The verdict with its counts; unless `quiet`, the first findings and what qualifies the verdict
    (evidence mode, probe sanity, a visualization budget, the baseline); last, where the report is
    (and the run history, or why it was not updated)."""
    s = result["summary"]
    yield (f"{result['verdict'].upper()}: {s['fail']} fail, {s['warn']} warn, {s['pass']} pass, "
           f"{s['allowed']} allowed" +
           (f" ({'; '.join(result['verdict_reasons'])})" if result["verdict_reasons"] else ""))
    if not quiet:
        yield from _details(result)
    history_note = (f"  (history: {history})" if history else
                    f"  (history not updated: {history_error})" if history_error else "")
    yield f"report: {report_dir / 'index.html'}{history_note}"


def _details(result: dict) -> Iterator[str]:
    for f in result["findings"][:10]:
        yield f"  {f['level']}: concept '{f['concept']}' in class '{f['class_name']}' ({decisive_text(f)})"
    evidence = result.get("evidence") or {"mode": "causal"}
    if evidence["mode"] != "causal":
        yield f"evidence: {evidence['statement']}"
    sanity = ((result.get("concepts") or {}).get("probes") or {}).get("sanity")
    if sanity:  # a model near chance on its own labelled probes: said on the console, not only in the report
        yield f"probes: {sanity}"
    budget = result["visualization"].get("budget") or {}
    if budget.get("preview_steps"):  # some classes were only previewed: said, not hidden
        yield f"visualizations: {budget['statement']}"
    yield from _baseline_lines(result["baseline"])


def _baseline_lines(base: dict) -> Iterator[str]:
    if base["state"] == "compared":
        yield (f"baseline: {base['path']} (model {base['model_name']}, verdict {base['verdict']}): "
               f"{len(base['new_findings'])} new finding(s), {len(base['regressions'])} regression(s), "
               f"{len(base.get('not_checked', []))} not checked, {base['checks_compared']} checks compared")
        for change in [*base["new_findings"], *base["regressions"], *base.get("not_checked", [])]:
            yield f"  {change['message']}"
    elif base["state"] != "none":
        yield f"baseline {base['state']}: {base['reason']}"


def discovery_lines(result: dict, quiet: bool) -> Iterator[str]:
    """How many patterns were found and how many rose above `review`; unless `quiet`, the first ones."""
    found = result["discovered"]
    above = [e for e in found if e["level"] != "review"]
    yield f"discovered {len(found)} pattern(s), {len(above)} above review"
    if not quiet:
        for e in found[:10]:
            yield f"  {e['level']}: class '{e['class_name']}' pattern {e['pattern']}: {e['summary']}"
