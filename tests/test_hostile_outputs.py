"""Hostile corpus: what the outputs carry. Names with newlines, pipes, commas, HTML and control
characters stay data in every output; work after the report (history, CI summary) and odd
baselines never change the exit code, which always equals audit.json's."""

import json
import os
import re
import shutil
import subprocess
import sys
from xml.etree import ElementTree as ET

import pytest

from audit.report.ci import github_annotations
from conftest import ROOT, run_cli
from hostile_helpers import DEMO_MODEL, assert_one_line, no_staging_left, tiny_config, write_yaml

HOSTILE_CLASSES = ["dumb\nbell::warning title=x::injected", "=HYPERLINK(\"http://x\")|bell", "<img src=x onerror=alert(1)>",
                   "tench, Tinca tinca", "50% : ok", "bottle"]


@pytest.fixture(scope="module")
def hostile_names_run(tmp_path_factory):
    """One tiny run whose model file, classes and baseline path hold control characters,
    newlines, pipes, commas, percent signs and HTML; beside it, someone else's history.json."""
    tmp = tmp_path_factory.mktemp("names")
    model = tmp / "demo\x01|<b>\udcff.keras"
    shutil.copy(DEMO_MODEL, model)
    (tmp / "history.json").write_text('{"runs": "kept by another tool"}')
    (tmp / "index.html").write_text("<html>the site's own page</html>")
    summary = tmp / "step-summary.md"
    cfg = write_yaml(tmp, tiny_config(tmp, model, classes=HOSTILE_CLASSES))
    proc = run_cli("run", cfg, "--baseline", tmp / "base\x07line.json", "--history", tmp,
                   env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)})
    return proc, tmp


@pytest.mark.slow
def test_the_run_itself_is_not_disturbed(hostile_names_run):
    proc, tmp = hostile_names_run
    result = json.loads((tmp / "out" / "audit.json").read_text(encoding="utf-8"))
    assert proc.returncode == result["exit_code"] == 1, proc.stderr[-3000:]
    assert result["baseline"]["state"] == "missing"
    assert [(f["class_name"], f["concept"]) for f in result["findings"]][0] == (HOSTILE_CLASSES[0], "arm")
    assert "\ufffd" in result["model"]["name"]  # the undecodable byte, replaced, not a crash
    no_staging_left(tmp)


@pytest.mark.slow
def test_junit_is_well_formed_with_control_characters_in_names_and_paths(hostile_names_run):
    _, tmp = hostile_names_run
    root = ET.parse(tmp / "out" / "junit.xml").getroot()  # raised on the model name's \x01 before
    baseline = [c for c in root.iter("testcase") if c.get("classname") == "audit.baseline"]
    assert baseline[0].find("failure").get("message").startswith("baseline missing")


@pytest.mark.slow
def test_annotations_cannot_inject_workflow_commands(hostile_names_run):
    proc, tmp = hostile_names_run
    result = json.loads((tmp / "out" / "audit.json").read_text(encoding="utf-8"))
    findings = result["findings"]
    observational = result["evidence"]["mode"] != "causal"  # its own annotation comes first
    commands = [line for line in proc.stdout.splitlines() if line.lstrip().startswith("::")]
    assert len(commands) == min(10, 1 + observational + len(findings)) and all(re.match(r"::(error|warning) title=[^:,]*::", line) for line in commands), \
        commands
    assert any("dumb%0Abell%3A%3Awarning title=x%3A%3Ainjected" in line for line in commands)


@pytest.mark.slow
def test_summary_md_keeps_its_table_and_passes_no_html(hostile_names_run):
    _, tmp = hostile_names_run
    text = (tmp / "out" / "summary.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("|")]
    cells = {len(re.findall(r"(?<!\\)\|", row)) for row in rows}
    assert len(rows) >= 3 and cells == {9}, rows  # 8 columns on every row, none split by a name
    assert "<" not in text and "demo\\|&lt;b>\ufffd.keras" in text  # the model name, inert
    assert (tmp / "step-summary.md").read_text(encoding="utf-8") == text + "\n"
    assert "\x01" not in text and "\x07" not in text


@pytest.mark.slow
def test_someone_elses_history_json_is_never_overwritten(hostile_names_run):
    _, tmp = hostile_names_run
    assert (tmp / "history.json").read_text() == '{"runs": "kept by another tool"}'
    assert (tmp / "index.html").read_text() == "<html>the site's own page</html>"
    runs = json.loads((tmp / "audit-history.json").read_text())["runs"]
    assert len(runs) == 1 and runs[0]["report"] == "out/index.html"
    assert 'href="out/index.html"' in (tmp / "audit-history.html").read_text()


@pytest.mark.slow
def test_scores_csv_never_starts_a_cell_with_a_formula(hostile_names_run):
    """A class name from the provider's classes file that a spreadsheet would evaluate
    (=HYPERLINK(...), +cmd|...) is written as text; numbers, negative ones too, stay numbers."""
    import csv

    _, tmp = hostile_names_run
    with open(tmp / "out" / "scores.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    names = {row["class_name"] for row in rows}
    assert "'=HYPERLINK(\"http://x\")|bell" in names
    texts = [v for row in rows for k, v in row.items() if k not in ("class_name",) and v]
    assert not [v for v in texts + list(names) if v[:1] in "=+@\t\r"]
    assert not [v for v in texts if v.startswith("-") and not _is_number(v)]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_annotation_properties_follow_githubs_escaping():
    finding = {"level": "warn", "concept": "arm", "class_name": "tench, Tinca tinca: 50%\r\n::error::x",
               "reason": "100% sure\n::error::injected"}
    line, = github_annotations({"findings": [finding], "baseline": None})
    assert "\n" not in line and "\r" not in line
    assert line == ("::warning title=audit%3A 'arm' in class 'tench%2C Tinca tinca%3A 50%25%0D%0A%3A%3Aerror%3A%3Ax'"
                    "::100%25 sure%0A::error::injected")


def test_the_history_page_links_only_to_relative_files(tmp_path):
    from audit.report import history

    entry = {"title": "t", "model": "m", "model_sha256": "a" * 64, "started_at": "2026", "verdict": "pass",
             "findings": 0, "fail": 0, "warn": 0, "baseline": "none"}
    links = ["javascript:alert(1)", "JaVaScRiPt:alert(2)", " javascript:alert(3)", "java\tscript:alert(4)",
             "//evil.example/x", "https://evil.example/y", "/etc/passwd", "data:text/html,<script>", "old/index.html"]
    (tmp_path / "history.json").write_text(json.dumps({"tool": history.SIGNATURE, "runs": [
        {**entry, "report": link} for link in links] + [{**entry, "model_sha256": 5, "report": "x/index.html"}]}))
    page = history.record_run({"title": "new", "model": {"name": "m", "sha256": "b" * 64}, "verdict": "fail",
                               "findings": [], "summary": {"fail": 0, "warn": 0}, "baseline": None,
                               "provenance": {"started_at": "2026"}}, tmp_path / "new")
    hrefs = re.findall(r'href="([^"]*)"', page.read_text())
    assert hrefs == ["new/index.html", "old/index.html"]
    kept = [r["report"] for r in json.loads((tmp_path / "history.json").read_text())["runs"]]
    assert kept == ["new/index.html", "old/index.html"]  # hand-edited bad entries are dropped


@pytest.mark.slow
def test_faults_after_the_report_never_change_the_exit_code(tmp_path):
    """A non-string field in history.json, an unwritable $GITHUB_STEP_SUMMARY and a closed
    stdout used to turn exit 1 into exit 3 after the report was written."""
    from audit.report.history import SIGNATURE

    (tmp_path / "history.json").write_text(json.dumps({"tool": SIGNATURE, "runs": [{
        "title": 5, "model": None, "model_sha256": 7, "started_at": [], "verdict": "pwned", "findings": "x",
        "fail": {}, "warn": 0, "baseline": 1, "report": "javascript:alert(1)"}]}))
    (tmp_path / "summary-dir").mkdir()
    cfg = write_yaml(tmp_path, tiny_config(tmp_path))
    proc = subprocess.Popen([sys.executable, "-m", "audit", "run", str(cfg), "--no-progress", "--history",
                             str(tmp_path)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "GITHUB_ACTIONS": "true",
                                 "GITHUB_STEP_SUMMARY": str(tmp_path / "summary-dir")})
    proc.stdout.close()  # a reader that went away (`audit run ... | head -0`)
    stderr = proc.stderr.read()
    proc.wait(timeout=600)
    result = json.loads((tmp_path / "out" / "audit.json").read_text())
    assert proc.returncode == result["exit_code"] == 1, stderr[-3000:]
    assert "Traceback" not in stderr and "internal error" not in stderr
    warnings = [line for line in stderr.splitlines() if line.startswith("audit: warning:")]
    assert any("GITHUB_STEP_SUMMARY" in w for w in warnings), stderr[-2000:]
    # the hand-edited entry is dropped, never rendered; this run is recorded
    assert [r["title"] for r in json.loads((tmp_path / "history.json").read_text())["runs"]] == ["Audit of c"]
    assert "javascript:" not in (tmp_path / "index.html").read_text()
    assert not (tmp_path / "out" / "crash.txt").exists()


@pytest.mark.slow
def test_a_deeply_nested_baseline_is_incompatible_not_a_crash(tmp_path):
    """Its RecursionError used to replace a finished audit with a crash report (exit 3)."""
    baseline = tmp_path / "baseline.json"
    baseline.write_text("[" * 200_000 + "]" * 200_000)
    proc = run_cli("run", write_yaml(tmp_path, tiny_config(tmp_path)), "--baseline", baseline, "--quiet",
                   "--no-history")
    result = json.loads((tmp_path / "out" / "audit.json").read_text())
    assert proc.returncode == result["exit_code"] == 1, proc.stderr[-3000:]
    assert result["baseline"]["state"] == "incompatible" and "nested too deeply" in result["baseline"]["reason"]
    assert not (tmp_path / "out" / "crash.txt").exists() and "Traceback" not in proc.stderr


def _audit(**changes):
    result = {"schema_version": 2, "model": {"name": "m.keras", "sha256": "a" * 64}, "verdict": "pass",
              "findings": [], "checks": [{"class_name": "a", "concept": "b", "level": "pass", "cue_d": 0.1,
                                          "vis_effect": 0.2}],
              "gate": {"evidence": "cue", "warn": {"cue_min_effect": 0.5, "vis_min_effect": 0.5}},
              "provenance": {"started_at": "2026-11-24T00:00:00+00:00"}}
    for key, value in changes.items():
        if value is None:
            result.pop(key)
        else:
            result[key] = value
    return json.dumps(result)


@pytest.mark.parametrize("candidate, words", [
    (_audit(gate=None), "no gate.evidence rule"),
    (_audit(gate={"evidence": "cue", "warn": {"cue_min_effect": "high"}}), "no gate.warn thresholds"),
    ("[" * 200_000 + "]" * 200_000, "nested too deeply"),
    (_audit(checks=[{"class_name": "a", "concept": "b", "level": "pass", "cue_d": [], "vis_effect": 1}]),
     "non-numeric score"),
])
def test_audit_diff_on_damaged_audit_json_exits_2(tmp_path, candidate, words):
    (tmp_path / "a.json").write_text(_audit())
    (tmp_path / "b.json").write_text(candidate)
    proc = run_cli("diff", tmp_path / "a.json", tmp_path / "b.json", "--out", tmp_path / "diff", timeout=120)
    assert_one_line(proc, 2, "audit diff", words)
    assert not (tmp_path / "diff").exists()


def test_audit_diff_without_provenance_still_compares(tmp_path):
    (tmp_path / "a.json").write_text(_audit(provenance=None))
    (tmp_path / "b.json").write_text(_audit(provenance={"started_at": 5}))
    proc = run_cli("diff", tmp_path / "a.json", tmp_path / "b.json", timeout=120)
    assert proc.returncode == 0, proc.stderr
