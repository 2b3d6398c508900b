"""The CI examples in the README run: the same commands, in the same order, as CI would.

The install step (`python -m pip install .`) is checked, not re-run: the test suite already
runs inside that installation. `uses:` steps (checkout, artifact upload) are GitHub's."""

import os
import re
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import yaml

from conftest import ROOT

DOCS = ROOT / "docs" / "ci"
INSTALL = "python -m pip install ."


def _env(**extra):
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": bin_dir + os.pathsep + os.environ["PATH"], **extra}


def test_readme_shows_the_tested_examples():
    readme = (ROOT / "README.md").read_text()
    for name in ("github-actions.yml", "gitlab-ci.yml"):
        assert (DOCS / name).read_text().strip() in readme, f"README's copy of docs/ci/{name} is stale"


def test_github_actions_example_uploads_the_report_then_fails_the_job(tmp_path):
    steps = yaml.safe_load((DOCS / "github-actions.yml").read_text())["jobs"]["audit"]["steps"]
    outputs, summary = tmp_path / "outputs", tmp_path / "summary.md"
    env = _env(GITHUB_ACTIONS="true", GITHUB_OUTPUT=str(outputs), GITHUB_STEP_SUMMARY=str(summary))
    state = {}
    upload_seen = False
    for step in steps:
        if "uses" in step:
            upload_seen |= step["uses"].startswith("actions/upload-artifact")
            if upload_seen:
                assert step.get("if") == "always()"
                assert (ROOT / step["with"]["path"] / "demo" / "index.html").exists()  # what would be uploaded
            continue
        if step["run"].strip() == INSTALL:
            continue
        condition = step.get("if")
        if condition:
            assert condition == "steps.audit.outputs.exit_code != '0'"
            if state.get("exit_code") == "0":
                continue
        script = re.sub(r"\$\{\{ steps\.audit\.outputs\.exit_code \}\}", state.get("exit_code", ""), step["run"])
        proc = subprocess.run(["bash", "-e", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=600)
        if step.get("id") == "audit":
            assert proc.returncode == 0, proc.stderr  # the audit step itself never fails the job
            state = dict(line.split("=", 1) for line in outputs.read_text().split())
            assert "::error title=audit%3A 'arm' in class 'dumbbell'" in proc.stdout
        else:
            assert proc.returncode == 1 and "audit exited with 1" in proc.stdout
    assert upload_seen and state == {"exit_code": "1"}
    assert "| fail | dumbbell | arm |" in summary.read_text()


def test_gitlab_example_fails_the_job_and_keeps_the_junit_report(tmp_path):
    job = yaml.safe_load((DOCS / "gitlab-ci.yml").read_text())["model-audit"]
    assert job["artifacts"]["when"] == "always"
    codes = []
    for line in job["script"]:
        if line == INSTALL:
            continue
        codes.append(subprocess.run(["bash", "-c", line], cwd=ROOT, env=_env(), capture_output=True,
                                    text=True, timeout=600).returncode)
    assert codes == [1]  # the job fails ...
    junit = ET.parse(ROOT / job["artifacts"]["reports"]["junit"]).getroot()  # ... and its report is there
    assert int(junit.get("failures")) == 1
