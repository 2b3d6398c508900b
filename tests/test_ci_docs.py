"""The CI examples in docs/ci.md run: the same commands, in the same order, as CI would, in a
user's own repository (a folder outside this one holding their model, concept folders, config
and last released audit.json).

The install step runs as written (`python -m pip install "keras-shortcut-audit[cpu]"`) in the venv
of the `wheel_venv` fixture, with pip pointed at the wheel built from this repository instead of
PyPI (PIP_NO_INDEX, PIP_FIND_LINKS). `uses:` steps (checkout, artifact upload) are GitHub's."""

import re
import shutil
import subprocess
from xml.etree import ElementTree as ET

import pytest
import yaml

from conftest import ASSETS, ROOT, clean_env

DOCS = ROOT / "docs" / "ci"
INSTALL = 'python -m pip install "keras-shortcut-audit[cpu]"'


def test_ci_page_shows_the_tested_examples():
    page = (ROOT / "docs" / "ci.md").read_text()
    for name in ("github-actions.yml", "gitlab-ci.yml", "model-audit.yaml"):
        assert (DOCS / name).read_text().strip() in page, f"docs/ci.md's copy of docs/ci/{name} is stale"


@pytest.fixture
def user_repo(tmp_path, control_run):
    """A user's repository: the demo's shortcut model as their classifier, the demo's concept folders
    as their audit data, the documented config, and the clean control's audit as the last release."""
    repo = tmp_path / "their-repo"
    (repo / "models").mkdir(parents=True)
    shutil.copy(ASSETS / "models" / "demo_shortcut.keras", repo / "models" / "classifier.keras")
    shutil.copy(ASSETS / "models" / "classes.txt", repo / "models" / "classes.txt")
    for theirs, ours in (("negatives", "_random"), ("probes", "_probes"), ("arm", "arm"), ("stripes", "stripes"),
                         ("watermark", "watermark")):
        shutil.copytree(ASSETS / "concepts" / ours, repo / "audit-data" / theirs)
        if not ours.startswith("_"):
            shutil.copytree(ASSETS / "concepts" / f"{ours}_cutouts", repo / "audit-data" / f"{theirs}_cutouts")
    shutil.copy(DOCS / "model-audit.yaml", repo / "model-audit.yaml")
    (repo / "releases" / "last").mkdir(parents=True)
    shutil.copy(control_run[1] / "audit.json", repo / "releases" / "last" / "audit.json")
    return repo


def _env(wheel_venv, **extra):
    venv, dist = wheel_venv
    return clean_env(PATH=f"{venv / 'bin'}:{clean_env()['PATH']}", PIP_NO_INDEX="1", PIP_FIND_LINKS=str(dist),
                     **extra)


@pytest.mark.slow
def test_github_actions_example_uploads_the_report_then_fails_the_job(user_repo, wheel_venv, tmp_path):
    steps = yaml.safe_load((DOCS / "github-actions.yml").read_text())["jobs"]["audit"]["steps"]
    outputs, summary = tmp_path / "outputs", tmp_path / "summary.md"
    env = _env(wheel_venv, GITHUB_ACTIONS="true", GITHUB_OUTPUT=str(outputs), GITHUB_STEP_SUMMARY=str(summary))
    state = {}
    upload_seen = install_seen = False
    for step in steps:
        if "uses" in step:
            upload_seen |= step["uses"].startswith("actions/upload-artifact")
            if upload_seen:
                assert step.get("if") == "always()"
                assert (user_repo / step["with"]["path"] / "index.html").exists()  # what would be uploaded
            continue
        condition = step.get("if")
        if condition:
            assert condition == "steps.audit.outputs.exit_code != '0'"
            if state.get("exit_code") == "0":
                continue
        script = re.sub(r"\$\{\{ steps\.audit\.outputs\.exit_code \}\}", state.get("exit_code", ""), step["run"])
        proc = subprocess.run(["bash", "-e", "-c", script], cwd=user_repo, env=env, capture_output=True, text=True,
                              timeout=600)
        if step["run"].strip() == INSTALL:
            install_seen = True
            assert proc.returncode == 0, proc.stdout + proc.stderr
        elif step.get("id") == "audit":
            assert proc.returncode == 0, proc.stderr  # the audit step itself never fails the job
            state = dict(line.split("=", 1) for line in outputs.read_text().split())
            assert "::error title=audit%3A 'arm' in class 'dumbbell'" in proc.stdout
            assert "::error title=audit baseline new fail 'arm' in 'dumbbell' moves (points of probes)" in proc.stdout
        else:
            assert proc.returncode == 1 and "audit exited with 1" in proc.stdout
    assert install_seen and upload_seen and state == {"exit_code": "1"}
    assert "| fail | dumbbell | arm |" in summary.read_text()


@pytest.mark.slow
def test_gitlab_example_fails_the_job_and_keeps_the_junit_report(user_repo, wheel_venv):
    job = yaml.safe_load((DOCS / "gitlab-ci.yml").read_text())["model-audit"]
    assert job["artifacts"]["when"] == "always" and job["script"][0] == INSTALL
    codes = [subprocess.run(["bash", "-c", line], cwd=user_repo, env=_env(wheel_venv), capture_output=True,
                            text=True, timeout=600).returncode for line in job["script"]]
    assert codes == [0, 1]  # installs, then the job fails ...
    junit = ET.parse(user_repo / job["artifacts"]["reports"]["junit"]).getroot()  # ... and its report is there
    assert int(junit.get("failures")) == 2  # dumbbell x arm, and the baseline (a new fail-level finding)
    assert (user_repo / job["artifacts"]["paths"][0] / "index.html").exists()


@pytest.mark.slow
def test_documented_demo_output_is_what_the_demo_prints(shortcut_run):
    shown = "$ audit run configs/demo.yaml\n"
    pages = [page for page in (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))) if shown in page.read_text()]
    assert ROOT / "README.md" in pages
    printed = shortcut_run[0].stdout.splitlines()
    for page in pages:
        text = page.read_text()
        block = text[text.index(shown):].split("```")[0].splitlines()[1:]
        block = block[:next(i for i, line in enumerate(block) if line.startswith("report: ")) + 1]
        assert block[:-1] == printed[:-1], page  # the verdict and every finding, as printed
        assert block[-1].startswith("report: ") and printed[-1].startswith("report: ") and len(block) == len(printed)
