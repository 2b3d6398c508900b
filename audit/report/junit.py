"""junit.xml: one test case per class x concept check; a finding at the fail level is a
<failure>, a warning passes with its reason in system-out, an allowed pair is <skipped>."""

from __future__ import annotations

import re
from pathlib import Path
from xml.etree import ElementTree as ET

from audit.report.decisive import decisive_short, decisive_text
from audit.result import clean

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str) -> str:
    """Text that XML 1.0 can carry: terminal colour codes and control characters removed
    (Keras error messages contain both), undecodable bytes of file names replaced."""
    text = _NOT_XML.sub("", _ANSI.sub("", str(text)))
    return clean(text)


def render(result: dict, folder: Path) -> str:
    checks = result["checks"]
    failures = sum(c["level"] == "fail" for c in checks)
    skipped = sum(c["level"] == "allowed" for c in checks)
    seconds = sum(v for k, v in result.get("timing_seconds", {}).items() if not k.startswith("score concept:"))
    suites = ET.Element("testsuites", name="audit", tests=str(len(checks)), failures=str(failures),
                        errors="0", skipped=str(skipped), time=f"{seconds:.3f}")
    suite = ET.SubElement(suites, "testsuite", name=f"audit.{result['model']['name']}", tests=str(len(checks)),
                          failures=str(failures), errors="0", skipped=str(skipped), time=f"{seconds:.3f}",
                          timestamp=result["provenance"]["started_at"])
    vis_share, concept_seconds = _check_seconds(result)
    for c in checks:
        _check_case(suite, c, vis_share + concept_seconds.get(c["concept"], 0.0))
    _discovered_cases(suites, suite, result.get("discovered") or [])
    _baseline_case(suites, suite, result.get("baseline") or {"state": "none"})
    _properties_and_notes(suite, result)
    return serialize(suites)


def _check_seconds(result: dict) -> tuple[float, dict[str, float]]:
    """A check's duration: its share of its class's visualization plus its share of its concept's
    scoring (both measured; the work itself is batched across checks)."""
    n_classes = max(len(result["visualization"]["classes"]), 1)
    n_concepts = max(len(result["concepts"]["bank"]), 1)
    timing = result.get("timing_seconds", {})
    vis_share = timing.get("visualize", 0.0) / (n_classes * n_concepts)
    concept_seconds = {c["name"]: timing.get(f"score concept: {c['name']}", 0.0) / n_classes
                       for c in result["concepts"]["bank"]}
    return vis_share, concept_seconds


def _check_case(suite: ET.Element, c: dict, duration: float) -> None:
    case = ET.SubElement(suite, "testcase", classname=xml_safe(f"audit.{c['concept']}"),
                         name=xml_safe(f"{c['class_name']} x {c['concept']}"), time=f"{duration:.3f}")
    detail = xml_safe(f"decided by {decisive_text(c)}. {c['reason']}. cue d={c['cue_d']}, "
                      f"cue p_adj={c['cue_p_adjusted']}, vis effect={c['vis_effect']}, "
                      f"vis p_adj={c['vis_p_adjusted']}")
    if c["level"] == "fail":
        ET.SubElement(case, "failure", message=xml_safe(f"concept '{c['concept']}' drives class '{c['class_name']}' "
                      f"where it is not allowed: {decisive_short(c)}"), type="ConceptFinding").text = detail
    elif c["level"] == "allowed":
        ET.SubElement(case, "skipped", message=xml_safe(c["reason"]))
    elif c["level"] == "warn":
        ET.SubElement(case, "system-out").text = "WARNING: " + detail


def _discovered_cases(suites: ET.Element, suite: ET.Element, discovered: list[dict]) -> None:
    """Discovered patterns (discover:) that reached fail or warn: the exit code counts a failing one,
    so the CI's test list must show it too (review-level patterns stay in the report only)."""
    extra = [d for d in discovered if d["level"] in ("fail", "warn")]
    for d in extra:
        case = ET.SubElement(suite, "testcase", classname="audit.discovered",
                             name=xml_safe(f"{d['class_name']} x unnamed pattern {d['pattern']}"), time="0.000")
        detail = xml_safe(d.get("summary", ""))
        if d["level"] == "fail":
            ET.SubElement(case, "failure", message=xml_safe(f"unnamed pattern {d['pattern']} drives class "
                          f"'{d['class_name']}' (discover.fail)"), type="DiscoveredPattern").text = detail
        else:
            ET.SubElement(case, "system-out").text = "WARNING: " + detail
    if extra:
        n_fail = int(suite.get("failures")) + sum(d["level"] == "fail" for d in extra)
        for node in (suites, suite):
            node.set("tests", str(int(node.get("tests")) + len(extra)))
            node.set("failures", str(n_fail))


def _baseline_case(suites: ET.Element, suite: ET.Element, base: dict) -> None:
    if base["state"] == "none":
        return
    case = ET.SubElement(suite, "testcase", classname="audit.baseline", name="no regression against baseline",
                         time="0.000")
    changes = "".join(f"\n{c['message']}" for c in [*base.get("new_findings", []), *base.get("regressions", []),
                                                     *base.get("not_checked", [])])
    if base.get("fails_gate"):
        ET.SubElement(case, "failure", message=xml_safe(f"baseline {base['state']}: {base['reason']}"),
                      type="BaselineRegression").text = xml_safe(base["reason"] + changes)
    elif changes:
        ET.SubElement(case, "system-out").text = xml_safe(base["reason"] + changes)
    elif base["state"] != "compared":
        ET.SubElement(case, "system-out").text = f"WARNING: baseline {base['state']}: {base['reason']}"
    n_fail = int(suite.get("failures")) + bool(base.get("fails_gate"))
    for node in (suites, suite):
        node.set("tests", str(int(suite.get("tests")) + 1))
        node.set("failures", str(n_fail))


def _properties_and_notes(suite: ET.Element, result: dict) -> None:
    evidence = result.get("evidence") or {"mode": "causal"}
    props = ET.Element("properties")  # JUnit wants properties first and system-out last
    ET.SubElement(props, "property", name="evidence", value=evidence["mode"])
    budget = result["visualization"].get("budget") or {}
    ET.SubElement(props, "property", name="visualizations",
                  value="previews" if budget.get("preview_steps") else "full")
    suite.insert(0, props)
    notes = ([f"EVIDENCE: {evidence['statement']}"] if evidence["mode"] != "causal" else []) + \
        ([f"VISUALIZATIONS: {budget['statement']}"] if budget.get("preview_steps") else [])
    if notes:
        ET.SubElement(suite, "system-out").text = xml_safe("\n".join(notes))


def serialize(root: ET.Element) -> str:
    """The XML document; every attribute and text made XML-safe on the way out, so no path,
    model name or message (a control character in a file name) can break well-formedness."""
    for node in root.iter():
        node.attrib.update({k: xml_safe(v) for k, v in node.attrib.items()})
        if node.text is not None:
            node.text = xml_safe(node.text)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
