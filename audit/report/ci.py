"""CI integration: GitHub Actions annotations and step summary, and the crash report that
makes an internal error visible to JUnit-reading CI instead of a silently missing file."""

from __future__ import annotations

import os
import traceback
from pathlib import Path
from xml.etree import ElementTree as ET

from audit.report.folder import staged_folder
from audit.report.junit import serialize, xml_safe

MAX_ANNOTATIONS = 10
STEP_SUMMARY_LIMIT = 1024 * 1024  # GitHub rejects step summaries over 1 MiB


def _escape(text: str) -> str:
    """A workflow command's message (GitHub's escaping rules for data)."""
    return str(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    """A workflow command's property value (`title=...`): also `:` and `,`, which would end it
    (ImageNet has a class "tench, Tinca tinca")."""
    return _escape(text).replace(":", "%3A").replace(",", "%2C")


def _baseline_title(change: dict) -> str:
    values = "" if change.get("allowed_rise") is None else \
        f" {change['label']} {change['baseline']:.2f} -> {change['candidate']:.2f}"
    what = ("not checked" if "reason" in change else "regression" if "fails_gate" not in change else
            f"new {change['level']}")
    return f"audit baseline {what} '{change['concept']}' in '{change['class_name']}'{values}"


def github_annotations(result: dict) -> list[str]:
    """`::error`/`::warning` workflow commands, worst first, at most MAX_ANNOTATIONS."""
    lines = []
    base = result.get("baseline") or {}
    if base.get("fails_gate") and base["state"] == "compared":
        seen = set()
        for change in [*base["new_findings"], *base["regressions"], *base.get("not_checked", [])]:
            key = (change["class_name"], change["concept"])
            if not change.get("fails_gate", True) or key in seen:
                continue  # a new warning within retrain tolerance does not fail the gate
            seen.add(key)
            lines.append(f"::error title={_escape_property(_baseline_title(change))}::"
                         f"{_escape(change['message'] + ' against ' + str(base['path']))}")
    elif base.get("fails_gate"):
        title = _escape_property(f"audit: baseline {base['state']}")
        lines.append(f"::error title={title}::{_escape(base['reason'])}")
    evidence = result.get("evidence") or {"mode": "causal"}
    if evidence["mode"] != "causal":  # said first: it qualifies every finding below
        title = _escape_property("audit: observational evidence")
        lines.insert(0, f"::warning title={title}::{_escape(evidence['statement'])}")
    for f in result["findings"]:  # already sorted worst first
        kind = "error" if f["level"] == "fail" else "warning"
        title = _escape_property(f"audit: '{f['concept']}' in class '{f['class_name']}'")
        lines.append(f"::{kind} title={title}::{_escape(f['reason'])}")
    return lines[:MAX_ANNOTATIONS]


def append_step_summary(markdown: str, path: str | None = None) -> bool:
    """Append to $GITHUB_STEP_SUMMARY when set; truncated to stay under GitHub's 1 MiB limit."""
    path = path or os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return False
    encoded = markdown.encode("utf-8")
    if len(encoded) > STEP_SUMMARY_LIMIT - 1024:
        cut = encoded[: STEP_SUMMARY_LIMIT - 1024].decode("utf-8", errors="ignore")
        markdown = cut[: cut.rfind("\n") + 1] + "\n(truncated: see summary.md in the report artifact)\n"
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(markdown + "\n")
    return True


def write_crash_report(out: Path, exc: BaseException) -> None:
    """Replace the report folder with an error report: junit.xml with an <error>, the traceback,
    and a summary. A stale report from an earlier run must not pass for this one."""
    text = xml_safe("".join(traceback.format_exception(exc)))
    message = xml_safe(f"{type(exc).__name__}: {exc}")
    suites = ET.Element("testsuites", name="audit", tests="1", failures="0", errors="1")
    suite = ET.SubElement(suites, "testsuite", name="audit", tests="1", failures="0", errors="1")
    case = ET.SubElement(suite, "testcase", classname="audit", name="audit run", time="0.000")
    ET.SubElement(case, "error", message=message, type=type(exc).__name__).text = text
    summary = (f"# audit: ERROR\n\nThe audit crashed ({message.splitlines()[0]}); the gate fails (exit 3).\n"
               "The traceback is in `crash.txt` in the report folder.\n")
    with staged_folder(out) as staging:
        (staging / "junit.xml").write_text(serialize(suites), encoding="utf-8")
        (staging / "crash.txt").write_text(text, encoding="utf-8")
        (staging / "summary.md").write_text(summary, encoding="utf-8")
    append_step_summary(summary)
