"""What the verdict rests on: without probes, every output says it is observational evidence
only, and a check without a causal test warns at most unless the config lets it fail."""

import pytest
import json
from xml.etree import ElementTree as ET

from conftest import run_cli, write_config


@pytest.mark.slow
def test_without_probes_the_audit_says_so_everywhere_and_does_not_fail_the_gate(tmp_path, demo_model_path):
    cfg = write_config(tmp_path / "c.yaml", demo_model_path, tmp_path / "out", steps=16, restarts=2,
                       gate={"evidence": "cue"})
    proc = run_cli("run", cfg, "--no-history", "--no-progress")
    assert proc.returncode == 0, proc.stderr  # the arm is found, but only observationally: a warning
    out = tmp_path / "out"
    result = json.loads((out / "audit.json").read_text())
    arm = next(c for c in result["checks"] if (c["class_name"], c["concept"]) == ("dumbbell", "arm"))
    assert arm["level"] == "warn" and arm["decided_by"] == "observational"
    assert result["evidence"]["mode"] == "observational" and result["evidence"]["causal_checks"] == 0
    said = "rests on observational evidence only"
    assert said in result["evidence"]["statement"] and said in proc.stdout
    assert said in (out / "summary.md").read_text() and said in (out / "index.html").read_text()
    suite = ET.parse(out / "junit.xml").getroot().find("testsuite")
    assert said in suite.find("system-out").text
    assert suite.find("properties/property[@name='evidence']").get("value") == "observational"
    assert "warn: concept 'arm' in class 'dumbbell' (cue d" in proc.stdout  # the statistic that decided it


@pytest.mark.slow
def test_observational_evidence_fails_the_gate_when_the_config_allows_it(tmp_path, demo_model_path):
    cfg = write_config(tmp_path / "c.yaml", demo_model_path, tmp_path / "out", steps=16, restarts=2,
                       gate={"evidence": "cue", "observational_can_fail": True})
    proc = run_cli("run", cfg, "--no-history", "--quiet")
    assert proc.returncode == 1, proc.stderr
    result = json.loads((tmp_path / "out" / "audit.json").read_text())
    assert ("dumbbell", "arm", "fail") in [(f["class_name"], f["concept"], f["level"]) for f in result["findings"]]
    assert result["gate"]["observational_can_fail"] is True
