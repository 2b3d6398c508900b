"""Release gating in CI: baselines, diff, schema, GitHub integration."""

import json
import shutil
from xml.etree import ElementTree as ET

import pytest

from audit.gate.baseline import STATISTICS
from audit.report.ci import append_step_summary, github_annotations
from conftest import ROOT, run_cli

jsonschema = pytest.importorskip("jsonschema")
SCHEMA = json.loads((ROOT / "audit" / "schema" / "audit.schema.json").read_text())


def _check(out, class_name, concept):
    (check,) = [c for c in json.loads((out / "audit.json").read_text())["checks"]
                if (c["class_name"], c["concept"]) == (class_name, concept)]
    return check


def _moves(check):
    """The points of probes a check's concept moves into its class: the largest over its paste tests
    (insertion, in-class) and probe sets (probes, hard copies)."""
    return max(m["moves"] for test in ("causal", "inclass") for m in (check[test] or {}).values() if m)


@pytest.mark.slow
def test_audit_json_matches_the_committed_schema(shortcut_run, control_run):
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    for _, out in (shortcut_run, control_run):
        jsonschema.validate(json.loads((out / "audit.json").read_text()), SCHEMA)


@pytest.mark.slow
def test_the_schema_rejects_a_result_without_a_verdict(shortcut_run):
    data = json.loads((shortcut_run[1] / "audit.json").read_text())
    del data["verdict"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, SCHEMA)


@pytest.mark.slow
def test_candidate_with_a_new_finding_fails_against_a_clean_baseline(control_run, tmp_path):
    baseline = control_run[1] / "audit.json"
    out = tmp_path / "candidate"
    proc = run_cli("run", ROOT / "configs" / "demo.yaml", "--baseline", baseline, "--out", out, "--quiet")
    assert proc.returncode == 1
    result = json.loads((out / "audit.json").read_text())
    base = result["baseline"]
    assert base["state"] == "compared" and base["fails_gate"]
    # the planted shortcut is the one new fail (the shortcut model's own warnings may be new too)
    (new,) = [f for f in base["new_findings"] if f["level"] == "fail"]
    assert (new["class_name"], new["concept"], new["level"], new["fails_gate"]) == ("dumbbell", "arm", "fail", True)
    # the causal test decided the check, so it is compared on the points of probes the concept moves
    assert new["statistic"] == "moves" and new["candidate"] == _moves(_check(out, "dumbbell", "arm"))
    assert new["baseline"] == _moves(_check(control_run[1], "dumbbell", "arm"))
    case = [c for c in ET.parse(out / "junit.xml").getroot().iter("testcase") if c.get("classname") == "audit.baseline"]
    assert len(case) == 1 and case[0].find("failure") is not None
    jsonschema.validate(result, SCHEMA)


@pytest.mark.slow
def test_same_model_against_itself_has_no_regression(control_run, tmp_path):
    out = tmp_path / "again"
    proc = run_cli("run", ROOT / "configs" / "demo_control.yaml", "--baseline", control_run[1] / "audit.json",
                   "--out", out, "--quiet")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    base = json.loads((out / "audit.json").read_text())["baseline"]
    assert base["state"] == "compared" and not base["fails_gate"]
    assert base["new_findings"] == [] and base["regressions"] == [] and base["checks_compared"] == 18


@pytest.mark.parametrize("content, state", [(None, "missing"), ('{"schema_version": 99}', "incompatible"),
                                            ("not json", "incompatible")])
@pytest.mark.slow
def test_a_missing_or_incompatible_baseline_is_never_a_silent_pass(tmp_path, content, state):
    baseline = tmp_path / "baseline.json"
    if content is not None:
        baseline.write_text(content)
    out = tmp_path / "out"
    proc = run_cli("run", ROOT / "configs" / "demo_control.yaml", "--baseline", baseline, "--out", out, "--quiet")
    assert proc.returncode == 1
    result = json.loads((out / "audit.json").read_text())
    assert result["verdict"] == "fail" and result["baseline"]["state"] == state
    assert f"baseline {state}" in (out / "summary.md").read_text().lower()
    assert f"baseline {state}" in (out / "index.html").read_text()


@pytest.mark.slow
def test_audit_diff_renders_markdown_and_html(shortcut_run, control_run, tmp_path):
    proc = run_cli("diff", control_run[1] / "audit.json", shortcut_run[1] / "audit.json")
    assert proc.returncode == 0
    before, after = (_moves(_check(run[1], "dumbbell", "arm")) for run in (control_run, shortcut_run))
    causal = json.loads((shortcut_run[1] / "audit.json").read_text())["gate"]["causal"]
    assert after >= causal["fail"]["min_moves"] and before < causal["warn"]["min_moves"]  # shortcut fails, control not
    assert f"new fail 'arm' in class 'dumbbell': {STATISTICS['moves']} {before:.2f} -> {after:.2f}" in proc.stdout
    proc = run_cli("diff", control_run[1] / "audit.json", shortcut_run[1] / "audit.json", "--out", tmp_path)
    assert proc.returncode == 0
    assert "dumbbell" in (tmp_path / "diff.html").read_text() and (tmp_path / "diff.md").exists()
    proc = run_cli("diff", tmp_path / "nope.json", shortcut_run[1] / "audit.json")
    assert proc.returncode == 2 and "does not exist" in proc.stderr


@pytest.mark.slow
def test_github_actions_annotations_and_step_summary(shortcut_run, tmp_path):
    summary = tmp_path / "step_summary.md"
    summary.write_text("earlier step\n")
    out = tmp_path / "gh"
    proc = run_cli("run", ROOT / "configs" / "demo.yaml", "--out", out, "--quiet",
                   env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)})
    assert proc.returncode == 1
    lines = [line for line in proc.stdout.splitlines() if line.startswith("::")]
    errors = [line for line in lines if line.startswith("::error")]
    assert errors == ["::error title=audit%3A 'arm' in class 'dumbbell'::" + errors[0].split("::", 2)[2]]
    assert lines[0] == errors[0]  # the fail first, then a warning per warn-level finding
    findings = json.loads((out / "audit.json").read_text())["findings"]
    assert [line.split(" ", 1)[0] for line in lines[1:]] == ["::warning"] * (len(findings) - 1)
    text = summary.read_text()
    assert text.startswith("earlier step\n") and "| fail | dumbbell | arm |" in text


def test_annotations_are_capped_worst_first():
    findings = [{"level": "warn", "concept": f"c{i}", "class_name": "x", "reason": "r\nmore"} for i in range(15)]
    findings.insert(0, {"level": "fail", "concept": "arm", "class_name": "dumbbell", "reason": "50% bad"})
    lines = github_annotations({"findings": findings, "baseline": None})
    assert len(lines) == 10 and lines[0].startswith("::error") and "50%25 bad" in lines[0]
    assert all(line.startswith("::warning") and "%0A" in line for line in lines[1:])


def test_step_summary_stays_under_githubs_limit(tmp_path):
    path = tmp_path / "summary"
    append_step_summary("| row |\n" * 300_000, str(path))
    assert path.stat().st_size < 1024 * 1024 and "truncated" in path.read_text()


def test_validate_does_not_need_the_baseline_to_exist(tmp_path):
    cfg = tmp_path / "demo.yaml"
    shutil.copy(ROOT / "configs" / "demo.yaml", cfg)
    text = cfg.read_text().replace("../audit/", str(ROOT / "audit") + "/").replace(
        "gate:\n", "gate:\n  baseline: releases/last/audit.json\n")
    cfg.write_text(text)
    assert run_cli("validate", cfg).returncode == 0


def test_run_history_is_updated_incrementally_and_bounded(tmp_path, monkeypatch):
    from audit.report import history

    result = {"title": "t", "model": {"name": "m.keras", "sha256": "a" * 64}, "verdict": "fail",
              "findings": [{}], "summary": {"fail": 1, "warn": 0}, "baseline": None,
              "provenance": {"started_at": "2026-11-24T00:00:00+00:00"}}
    monkeypatch.setattr(history, "MAX_RUNS", 3)
    for i in range(5):
        history.record_run({**result, "title": f"run {i}"}, tmp_path / f"r{i}")
    runs = json.loads((tmp_path / "history.json").read_text())["runs"]
    assert [r["title"] for r in runs] == ["run 4", "run 3", "run 2"]
    html = (tmp_path / "index.html").read_text()
    assert 'href="r4/index.html"' in html and "run 1" not in html


@pytest.mark.slow
def test_history_is_opt_in_and_the_run_says_where_it_went(tmp_path):
    out = tmp_path / "reports" / "r"
    proc = run_cli("run", ROOT / "configs" / "demo_control.yaml", "--out", out, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == ["r"]  # nothing beside the report
    assert "(history" not in proc.stdout
    proc = run_cli("run", ROOT / "configs" / "demo_control.yaml", "--out", out, "--quiet",
                   "--history", tmp_path / "runs")
    assert proc.returncode == 0, proc.stderr
    runs = json.loads((tmp_path / "runs" / "history.json").read_text())["runs"]
    verdict = json.loads((out / "audit.json").read_text())["verdict"]
    assert len(runs) == 1 and verdict in ("pass", "warn")  # exit 0
    assert runs[0]["verdict"] == verdict and runs[0]["report"] == "../reports/r/index.html"
    assert f"(history: {tmp_path / 'runs' / 'index.html'})" in proc.stdout


def test_an_observational_verdict_is_annotated_before_its_findings():
    evidence = {"mode": "observational", "statement": "This verdict rests on observational evidence only: ..."}
    findings = [{"level": "warn", "concept": "arm", "class_name": "dumbbell", "reason": "cue d 3"}]
    lines = github_annotations({"findings": findings, "baseline": None, "evidence": evidence})
    assert lines[0].startswith("::warning title=audit%3A observational evidence::This verdict rests on")
    assert lines[1].startswith("::warning title=audit%3A 'arm'")
