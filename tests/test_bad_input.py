"""Bad input found in review: each is one line, exit 2, and nothing of the user's is touched."""

import json

import pytest
import yaml

from audit.gate.baseline import load_baseline
from conftest import ASSETS, run_cli, write_config


def _config(tmp_path, demo_model_path, mutate=None, **kw):
    path = write_config(tmp_path / "c.yaml", demo_model_path, tmp_path / "out", steps=4, restarts=1, **kw)
    if mutate:
        data = yaml.safe_load(path.read_text())
        mutate(data)
        path.write_text(yaml.safe_dump(data))
    return path


def _one_line_exit_2(proc, *words):
    """Exit 2 and one error line (stage timings may precede it on stderr), no traceback."""
    assert proc.returncode == 2, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("audit: error:")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr
    for w in words:
        assert w in errors[0]


@pytest.mark.parametrize("mutate, words", [
    (lambda d: d["model"].update(input_range=[float("nan"), 1]), "model.input_range"),
    (lambda d: d["model"].update(input_range=[0, float("inf")]), "model.input_range"),
    (lambda d: d["visualize"].update(classes=["dumbbell", "dumbbell"]), "'dumbbell' is listed twice"),
    (lambda d: d["visualize"].update(seed=-1), "visualize.seed"),
    (lambda d: d["concepts"]["bank"].update({"a/b": {"examples": str(ASSETS / "concepts" / "arm")}}),
     "not a usable concept name"),
    (lambda d: d["concepts"]["bank"].update({"_negatives": {"examples": str(ASSETS / "concepts" / "arm")}}),
     "not a usable concept name"),
])
def test_config_values_that_used_to_slip_through(tmp_path, demo_model_path, mutate, words):
    _one_line_exit_2(run_cli("validate", _config(tmp_path, demo_model_path, mutate)), words)


def test_classes_file_that_is_a_folder_or_empty(tmp_path, demo_model_path):
    (tmp_path / "empty.txt").write_text("\n\n")
    for target, words in ((tmp_path, "not a regular file"), (tmp_path / "empty.txt", "lists no class")):
        def mutate(d, target=target):
            d["model"].pop("classes")
            d["model"]["classes_file"] = str(target)
        _one_line_exit_2(run_cli("validate", _config(tmp_path, demo_model_path, mutate)), "model.classes_file", words)


def test_report_folder_never_replaces_a_folder_of_user_files(tmp_path, demo_model_path):
    precious = tmp_path / "work"
    precious.mkdir()
    (precious / "notes.txt").write_text("mine")
    path = _config(tmp_path, demo_model_path)
    _one_line_exit_2(run_cli("run", path, "--out", precious), "not an audit report")
    assert (precious / "notes.txt").read_text() == "mine"
    _one_line_exit_2(run_cli("dream", "--model", ASSETS / "models" / "demo_shortcut.keras", "--layer", "features",
                             "--steps", "1", "--out", precious), "not an audit report")


@pytest.mark.slow
def test_run_time_input_errors_name_the_config_file(tmp_path, demo_model_path):
    few = tmp_path / "few"
    few.mkdir()
    for p in sorted((ASSETS / "concepts" / "arm").iterdir())[:3]:
        (few / p.name).write_bytes(p.read_bytes())
    path = _config(tmp_path, demo_model_path, lambda d: d["concepts"]["bank"]["arm"].update(examples=str(few)))
    _one_line_exit_2(run_cli("run", path), str(path), "concepts.bank.arm.examples: only 3 images")


@pytest.mark.parametrize("flags, words", [
    (["--channels", "a,b"], "--channels"), (["--channels", "1,,2"], "--channels"),
    (["--input-range", "a,b"], "--input-range"), (["--seed", "-1"], "seed"),
    (["--channels", "1", "--guide", str(ASSETS / "concepts" / "arm" / "arm_000.png")], "--guide"),
])
@pytest.mark.slow
def test_dream_flags(tmp_path, flags, words):
    proc = run_cli("dream", "--model", ASSETS / "models" / "demo_shortcut.keras", "--layer", "features",
                   *flags, "--out", tmp_path / "d")
    _one_line_exit_2(proc, words)


@pytest.mark.parametrize("content", [
    {"schema_version": 2}, {"schema_version": 2, "model": {"name": "m", "sha256": "x"}, "verdict": "pass",
                            "findings": [], "checks": [1, 2]},
    {"schema_version": 2, "model": {"name": "m", "sha256": "x"}, "verdict": "pass", "findings": [],
     "checks": [{"class_name": "a", "concept": "b", "level": "pass", "cue_d": "x", "vis_effect": 1}]},
])
def test_a_baseline_with_the_wrong_structure_is_incompatible_not_a_crash(tmp_path, content):
    path = tmp_path / "b.json"
    path.write_text(json.dumps(content))
    state, data, reason = load_baseline(path)
    assert state == "incompatible" and data is None and "not an audit result" in reason


def test_a_history_json_the_tool_did_not_write_is_left_alone(tmp_path):
    from audit.report import history

    result = {"title": "t", "model": {"name": "m.keras", "sha256": "a" * 64}, "verdict": "pass",
              "findings": [], "summary": {"fail": 0, "warn": 0}, "baseline": None,
              "provenance": {"started_at": "2026-11-24T00:00:00+00:00"}}
    for foreign in ('{"runs": 5}', '{"runs": [1]}', "garbage", '{"runs": [], "owner": "another tool"}'):
        (tmp_path / "history.json").write_text(foreign)
        page = history.record_run(result, tmp_path / "r")
        assert (tmp_path / "history.json").read_text() == foreign  # never overwritten as "damaged"
        assert page.name == "audit-history.html"
        assert json.loads((tmp_path / "audit-history.json").read_text())["runs"][0]["title"] == "t"
        (tmp_path / "audit-history.json").unlink()
    (tmp_path / "history.json").unlink()
    (tmp_path / "index.html").write_text("<html>a site's own page</html>")
    page = history.record_run(result, tmp_path / "r")
    assert page.name == "audit-history.html" and "a site's own" in (tmp_path / "index.html").read_text()


def test_validate_an_application_without_class_names(tmp_path):
    (tmp_path / "a.yaml").write_text(f"""
model: {{application: ResNet50}}
concepts:
  negatives: {ASSETS / 'concepts' / '_random'}
  bank: {{arm: {{examples: {ASSETS / 'concepts' / 'arm'}, allowed_in: ['7']}}}}
""")
    proc = run_cli("validate", tmp_path / "a.yaml")
    assert proc.returncode == 0 and "classes from the model" in proc.stdout


def test_resnet_v2_preprocessing_is_known():
    from audit.config import ModelConfig
    from audit.model.load import pixel_transform

    cfg = ModelConfig(None, ("a",), None, None, "resnet_v2", False)
    import numpy as np

    assert np.allclose(pixel_transform(cfg)(np.array([0.0, 1.0], "float32")), [-1.0, 1.0])


def test_non_finite_statistics_fail_the_gate_closed():
    import numpy as np

    from audit.config import GateConfig, GateLevel
    from audit.gate.findings import gate_checks
    from test_findings import _scores

    level = GateLevel(0.01, 1.0, 1.0, 1.0)
    scores = _scores(cue_d=[[np.nan, 0], [0, 0]], cue_p=[[0.5, 0.5], [0.5, 0.5]], vis_effect=[[0, 0], [0, 0]])
    with pytest.raises(FloatingPointError):
        gate_checks(scores, {"arm": (), "sky": ()}, GateConfig("both", level, level))


@pytest.mark.slow
def test_cutouts_without_transparency_exit_2_naming_the_folder(tmp_path, demo_model_path):
    def mutate(d):  # ordinary RGB example images given as cutouts
        d["concepts"]["probes"] = str(ASSETS / "concepts" / "_probes")
        d["concepts"]["bank"]["arm"]["cutouts"] = str(ASSETS / "concepts" / "arm")
    proc = run_cli("run", _config(tmp_path, demo_model_path, mutate), "--quiet", "--no-history")
    _one_line_exit_2(proc, "concepts.bank.arm.cutouts", "no transparency")
    assert not (tmp_path / "out").exists()
