"""End to end through the CLI, on the embedded demo models, as a CI job would run it."""

import csv
import json
from xml.etree import ElementTree as ET

import pytest

from conftest import ASSETS, ROOT, run_cli, write_config


@pytest.mark.slow
def test_shortcut_model_fails_on_dumbbell_x_arm_and_nothing_else(shortcut_run):
    proc, out = shortcut_run
    assert proc.returncode == 1, proc.stderr
    result = json.loads((out / "audit.json").read_text())
    assert result["verdict"] == "fail" and result["exit_code"] == 1
    assert [(f["class_name"], f["concept"]) for f in result["findings"] if f["level"] == "fail"] == [("dumbbell", "arm")]
    finding = result["findings"][0]  # worst first
    assert (finding["class_name"], finding["decided_by"]) == ("dumbbell", "causal_moves")
    # every other finding only responds: its log-odds rise, no decision moved
    assert all(f["decided_by"] == "causal_responds" for f in result["findings"][1:])
    assert finding["cue_d"] >= 1.0 and finding["cue_p_adjusted"] <= 0.01 and finding["vis_effect"] >= 1.0
    assert "FAIL" in proc.stdout and str(out / "index.html") in proc.stdout


@pytest.mark.slow
def test_control_model_passes(control_run):
    proc, out = control_run
    assert proc.returncode == 0, proc.stderr
    result = json.loads((out / "audit.json").read_text())
    # it moves no decision into any class: nothing fails, and what warns only responds (log-odds)
    assert result["verdict"] in ("pass", "warn") and result["exit_code"] == 0
    assert all(f["level"] == "warn" and f["decided_by"].endswith("_responds") for f in result["findings"])


@pytest.mark.slow
def test_every_output_exists_and_parses(shortcut_run):
    _, out = shortcut_run
    result = json.loads((out / "audit.json").read_text())
    assert result["schema_version"] == 2
    n = len(result["checks"])
    assert n == 6 * 3
    suite = ET.parse(out / "junit.xml").getroot()
    cases = suite.findall(".//testcase")
    assert len(cases) == n and int(suite.get("failures")) == 1
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    assert failed == ["dumbbell x arm"]
    durations = [float(c.get("time")) for c in cases]  # measured work, shared out over the checks
    stages = {k: v for k, v in result["timing_seconds"].items() if not k.startswith("score concept:")}
    assert all(t > 0 for t in durations) and sum(durations) <= sum(stages.values())
    with open(out / "scores.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == n and {r["level"] for r in rows} == {c["level"] for c in result["checks"]} >= {"fail", "pass"}
    md = (out / "summary.md").read_text()
    assert "FAIL" in md and "| fail | dumbbell | arm |" in md
    html = (out / "index.html").read_text()
    assert "dumbbell" in html and "data:image/png;base64," in html
    assert "http://" not in html and "https://" not in html  # self-contained, works offline
    vis = result["visualization"]
    assert vis["parameterization"] == "fourier" and vis["transforms"] == ["jitter 3 px", "scale 0.9-1.1", "rotate 10 deg"]
    assert vis["raw_images"] == 1  # the seed's raw mode, one image per class beside the readable ones
    for cls in vis["classes"]:
        assert len(cls["images"]) == 8 and all((out / p).is_file() for p in cls["images"])
        assert len(cls["raw_images"]) == 1 and (out / cls["raw_images"][0]).is_file()
        assert 0 <= cls["raw_target_probability"] <= 1
    assert html.count('class="raw"') == 6 and "raw mode" in html
    prov = result["provenance"]
    for key in ("tool_version", "python", "tensorflow", "keras", "config_sha256", "seed", "started_at"):
        assert prov[key] is not None
    assert len(result["model"]["sha256"]) == 64
    assert set(result["timing_seconds"]) >= {"load model", "visualize", "score concepts"}
    gallery = result["layer_gallery"]  # what each depth paints: early to late, from the same noise
    assert [g["layer"] for g in gallery] == ["conv2d", "conv2d_1", "conv2d_2", "features"]
    assert all((out / g["image"]).is_file() and g["objective_end"] > g["objective_start"] for g in gallery)
    assert "What each depth of the network paints" in html


@pytest.mark.slow
def test_same_seed_gives_the_same_audit(shortcut_run, tmp_path):
    _, first_out = shortcut_run
    out = tmp_path / "again"
    proc = run_cli("run", ROOT / "configs" / "demo.yaml", "--out", out, "--quiet")
    assert proc.returncode == 1
    a = json.loads((first_out / "audit.json").read_text())
    b = json.loads((out / "audit.json").read_text())
    for r in (a, b):
        for volatile in ("started_at", "finished_at", "command"):
            r["provenance"].pop(volatile)
        r.pop("timing_seconds")
    assert a == b
    for rel in a["visualization"]["classes"][0]["images"]:
        assert (first_out / rel).read_bytes() == (out / rel).read_bytes()


@pytest.mark.slow
def test_a_model_that_crashes_exits_3_with_an_error_report_not_a_result(tmp_path):
    keras = pytest.importorskip("keras")
    inputs = keras.Input((64, 64, 3))
    x = keras.layers.Lambda(lambda t: keras.ops.reshape(t, (-1, 7)))(inputs)  # fails on a real batch
    out = keras.layers.Dense(6, activation="softmax")(x)
    path = tmp_path / "crashy.keras"
    try:
        keras.Model(inputs, out).save(path)
    except Exception:  # pragma: no cover - Keras refused to even build it
        pytest.skip("Keras could not build the crashing model")
    cfg = write_config(tmp_path / "c.yaml", path, tmp_path / "out", model={"trust_code": True})
    proc = run_cli("run", cfg)
    assert proc.returncode == 3, proc.stderr
    assert "internal error" in proc.stderr
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == [".audit-report", "crash.txt", "junit.xml", "summary.md"]
    error = ET.parse(out / "junit.xml").getroot().find(".//testcase/error")
    assert error is not None and "Traceback" in error.text
    assert not (out / "audit.json").exists()  # nothing that could pass for a result


@pytest.mark.slow
def test_report_out_defaults_and_cli_override(tmp_path):
    cfg = write_config(tmp_path / "c.yaml", ASSETS / "models" / "demo_control.keras", tmp_path / "configured",
                       steps=8, restarts=1)
    proc = run_cli("run", cfg, "--out", tmp_path / "override", "--quiet")
    assert proc.returncode in (0, 1), proc.stderr
    assert (tmp_path / "override" / "audit.json").exists() and not (tmp_path / "configured").exists()


@pytest.mark.slow
def test_the_seeds_raw_mode_is_one_config_away_and_adds_no_extra_images(tmp_path):
    cfg = write_config(tmp_path / "c.yaml", ASSETS / "models" / "demo_shortcut.keras", tmp_path / "out", steps=8,
                       restarts=1, visualize={"parameterization": "pixels", "transforms": "none"})
    proc = run_cli("run", cfg, "--quiet", "--no-history")
    assert proc.returncode in (0, 1), proc.stderr
    result = json.loads((tmp_path / "out" / "audit.json").read_text())
    vis = result["visualization"]
    assert (vis["parameterization"], vis["transforms"], vis["raw_images"]) == ("pixels", [], 0)
    assert all("raw_images" not in cls for cls in vis["classes"])
    assert "no natural-image regularization" in (tmp_path / "out" / "index.html").read_text()
