"""Baseline gating compares each check on the statistic that decided it, with tolerances measured
on honest retrains (benchmarks/retrain): a retrain passes against its sibling, a new shortcut fails.

The two models in tests/assets/retrain/ are built by `python benchmarks/retrain/run.py --export`:
`control_retrain.keras` is the demo control's recipe and training images with training seed 1
(the shipped control is seed 0); `new_shortcut.keras` is the demo shortcut's recipe (an arm holds
95% of the dumbbells) with training seed 2: it learned the shortcut more weakly than the shipped
one (causal flip difference 0.09 instead of 0.17), so the gate alone only warns; the baseline
comparison with the clean control is what fails it (docs/evidence.md, "Baseline tolerances")."""

import pytest
import json
from pathlib import Path
from xml.etree import ElementTree as ET

import yaml

from audit.gate.baseline import DEFAULT_TOLERANCE, compare, deciding_statistic
from conftest import ROOT, run_cli

RETRAIN = ROOT / "tests" / "assets" / "retrain"
GATE = {"evidence": "both", "warn": {"cue_min_effect": 0.5, "vis_min_effect": 0.5},
        "causal": {"warn": {"min_flip": 0.05}}}


def _check(level="pass", cue_d=0.0, vis_effect=0.0, causal_effect=None, class_name="star", concept="grid"):
    return {"class_name": class_name, "concept": concept, "level": level, "cue_d": cue_d, "vis_effect": vis_effect,
            "causal_effect": causal_effect}


def _result(*checks):
    return {"gate": GATE, "checks": list(checks), "findings": [c for c in checks if c["level"] in ("fail", "warn")]}


def test_a_causal_check_is_compared_on_its_flip_difference_not_on_cue_d():
    # the case: cue d -0.08 -> 3.68 on a check the causal test decided, passing both times
    before = _result(_check(cue_d=-0.08, vis_effect=0.2, causal_effect=0.01))
    after = _result(_check(cue_d=3.68, vis_effect=2.5, causal_effect=0.03))
    diff = compare(after, before)
    assert diff["regressions"] == [] and diff["new_findings"] == []
    tolerance = DEFAULT_TOLERANCE["causal"]
    risen = _result(_check(level="pass", cue_d=-0.08, causal_effect=0.01 + tolerance + 0.02))
    (regression,) = compare(risen, before)["regressions"]
    assert regression["statistic"] == "causal_effect" and regression["baseline"] == 0.01
    assert (f"causal flip difference 0.01 -> {0.03 + tolerance:.2f} (allowed rise {tolerance:.2f})"
            in regression["message"])
    assert "'grid' in class 'star'" in regression["message"]


def test_a_check_the_in_class_test_decided_is_compared_on_its_in_class_shift():
    def decided(shift, level="pass"):
        return {**_check(level=level, cue_d=0.1, causal_effect=0.0), "causal_shift": 0.05,
                "decided_by": "causal_inclass", "inclass_shift": shift}

    def result(shift):
        gate = {**GATE, "causal": {"warn": {"min_flip": 0.05, "min_shift": 0.35}}}
        return {**_result(decided(shift)), "gate": gate}

    assert deciding_statistic(decided(0.1), "both") == "inclass_shift"
    # the shifts have their own tolerance, measured on honest retrains (0.45, vs 0.06 for flips)
    tolerance = DEFAULT_TOLERANCE["shift"]
    assert tolerance > DEFAULT_TOLERANCE["causal"]
    assert compare(result(0.40), result(0.40 - tolerance + 0.02))["regressions"] == []  # within retrain noise
    (r,) = compare(result(0.40), result(-0.10))["regressions"]  # risen past tolerance to the warn line
    assert r["statistic"] == "inclass_shift" and "in-class shift -0.10 -> 0.40 (allowed rise 0.45)" in r["message"]
    # a baseline recorded before the shift tolerance existed gets the default
    assert compare(result(0.40), result(-0.10), {"causal": 0.06, "abs": 3.5, "rel": 0.5})["regressions"]


def test_an_observational_check_is_compared_on_the_evidence_the_gate_combined():
    assert deciding_statistic(_check(), "both") == "min(cue_d, vis_effect)"
    assert deciding_statistic(_check(), "cue") == "cue_d"
    before = _result(_check(cue_d=0.2, vis_effect=0.1))
    high = 0.2 + DEFAULT_TOLERANCE["abs"] + 0.5
    # cue d jumps but the visualizations do not lean: under `both` the weaker evidence decides
    assert compare(_result(_check(cue_d=high, vis_effect=0.3)), before)["regressions"] == []
    (r,) = compare(_result(_check(cue_d=high, vis_effect=high)), before)["regressions"]
    assert r["statistic"] == "min(cue_d, vis_effect)" and (r["baseline"], r["candidate"]) == (0.1, high)


def test_a_new_warning_within_retrain_tolerance_is_reported_but_does_not_fail():
    before = _result(_check(causal_effect=0.03))
    (new,) = compare(_result(_check(level="warn", causal_effect=0.06)), before)["new_findings"]
    assert not new["fails_gate"] and "within retrain tolerance" in new["message"]
    (new,) = compare(_result(_check(level="fail", causal_effect=0.16)), before)["new_findings"]
    assert new["fails_gate"]  # a new fail-level finding always fails


def _config(tmp_path, model, name):
    cfg = yaml.safe_load((ROOT / "configs" / "demo_control.yaml").read_text())
    cfg["model"]["path"] = str(model)
    for section, key in (("concepts", "negatives"), ("concepts", "probes")):
        cfg[section][key] = str((ROOT / "configs" / cfg[section][key]).resolve())
    for concept in cfg["concepts"]["bank"].values():
        for key in ("examples", "cutouts"):
            concept[key] = str((ROOT / "configs" / concept[key]).resolve())
    cfg["report"] = {"out": str(tmp_path / name), "title": name}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.mark.slow
def test_an_honest_retrain_passes_against_its_siblings_baseline(control_run, tmp_path):
    baseline = control_run[1] / "audit.json"
    proc = run_cli("run", _config(tmp_path, RETRAIN / "control_retrain.keras", "retrain"), "--baseline", baseline)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    base = json.loads((tmp_path / "retrain" / "audit.json").read_text())["baseline"]
    assert base["state"] == "compared" and not base["fails_gate"] and base["checks_compared"] == 18
    assert base["regressions"] == [] and not any(f["fails_gate"] for f in base["new_findings"])
    assert f"baseline: {baseline} (model demo_control.keras, verdict pass): " in proc.stdout


@pytest.mark.slow
def test_a_planted_new_shortcut_fails_and_every_output_names_check_statistic_and_values(control_run, tmp_path):
    baseline = control_run[1] / "audit.json"
    summary = tmp_path / "step_summary.md"
    proc = run_cli("run", _config(tmp_path, RETRAIN / "new_shortcut.keras", "planted"), "--baseline", baseline,
                   env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = tmp_path / "planted"
    base = json.loads((out / "audit.json").read_text())["baseline"]
    assert base["fails_gate"] and json.loads((out / "audit.json").read_text())["summary"]["fail"] == 0  # only warns alone
    failing = [c for c in [*base["new_findings"], *base["regressions"]] if c.get("fails_gate", True)]
    assert [(c["class_name"], c["concept"]) for c in failing] == [("dumbbell", "arm")]
    (change,) = failing
    assert change["statistic"] == "causal_effect" and change["candidate"] - change["baseline"] > change["allowed_rise"]
    text = (f"'arm' in class 'dumbbell': causal flip difference {change['baseline']:.2f} -> "
            f"{change['candidate']:.2f}")
    assert text in proc.stdout                                              # console
    junit = ET.parse(out / "junit.xml").getroot()
    (case,) = [c for c in junit.iter("testcase") if c.get("classname") == "audit.baseline"]
    assert text in case.find("failure").get("message")                     # JUnit message
    titles = [line.split("::")[1] for line in proc.stdout.splitlines() if line.startswith("::error")]
    assert any("'arm' in 'dumbbell' causal flip difference" in t and f"{change['candidate']:.2f}" in t
               for t in titles), titles                                       # annotation title
    assert text in (out / "summary.md").read_text() and text in summary.read_text()   # Markdown
    assert text.replace("'", "&#39;").replace(">", "&gt;") in (out / "index.html").read_text()   # HTML


@pytest.mark.slow
def test_quiet_prints_only_the_verdict_and_the_report_path(control_run, tmp_path):
    proc = run_cli("run", _config(tmp_path, RETRAIN / "new_shortcut.keras", "planted"), "--baseline",
                   control_run[1] / "audit.json", "--quiet")
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith("FAIL: ") and lines[1].startswith("report: "), lines
    assert "causal flip difference" in lines[0]  # the verdict still names what failed


def test_a_baseline_finding_left_unchecked_is_not_resolved_and_fails_the_gate():
    from audit.gate.baseline import baseline_section
    from audit.gate.verdict import decide

    failing = _check(level="fail", cue_d=3.0, vis_effect=2.0, class_name="dumbbell", concept="arm")
    other = _check(level="pass", class_name="dumbbell", concept="watermark")
    elsewhere = _check(level="warn", cue_d=0.6, vis_effect=0.6, class_name="ball", concept="arm")
    baseline = _result(failing, other, elsewhere)
    # the concept left out of the bank: none of its checks is run, and none counts as fixed
    diff = compare(_result(other), baseline)
    assert diff["resolved_findings"] == []
    assert [(c["class_name"], c["concept"], c["level"]) for c in diff["not_checked"]] == [
        ("dumbbell", "arm", "fail"), ("ball", "arm", "warn")]
    assert "not in this audit's concepts.bank" in diff["not_checked"][0]["message"]
    # the class left out of visualize.classes
    (gone,) = compare(_result(elsewhere), _result(failing, elsewhere))["not_checked"]
    assert gone["class_name"] == "dumbbell" and "class is not audited (visualize.classes)" in gone["message"]
    # allowed_in keeps the check (level `allowed`): said in the config, it is resolved
    allowed = compare(_result({**failing, "level": "allowed"}, other), _result(failing, other))
    assert allowed["not_checked"] == [] and len(allowed["resolved_findings"]) == 1


@pytest.mark.slow
def test_a_silenced_shortcut_fails_against_its_baseline_in_every_output(tmp_path):
    """The issue's case: the same model, the failing concept removed from the bank (or its class from
    visualize.classes), passed against a baseline where the check fails: "2 resolved", exit 0."""
    import jsonschema

    from hostile_helpers import tiny_config, write_yaml

    first = run_cli("run", write_yaml(tmp_path, tiny_config(tmp_path / "b"), "base.yaml"), "--no-progress")
    assert first.returncode == 1 and "fail: concept 'arm' in class 'dumbbell'" in first.stdout, first.stderr
    baseline = tmp_path / "b" / "out" / "audit.json"
    silenced = tiny_config(tmp_path / "c")
    del silenced["concepts"]["bank"]["arm"]
    without_class = tiny_config(tmp_path / "d", visualize={"classes": ["barbell", "ball"]})
    for cfg, why in ((silenced, "its concept is not in this audit's concepts.bank"),
                     (without_class, "its class is not audited (visualize.classes)")):
        out = Path(cfg["report"]["out"])
        proc = run_cli("run", write_yaml(tmp_path, cfg, "cand.yaml"), "--baseline", baseline, "--no-progress",
                       env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")})
        assert proc.returncode == 1, proc.stdout + proc.stderr
        record = json.loads((out / "audit.json").read_text())
        base = record["baseline"]
        assert base["fails_gate"] and base["resolved_findings"] == [] and record["verdict"] == "fail"
        assert [(c["class_name"], c["concept"]) for c in base["not_checked"]] == [("dumbbell", "arm")]
        jsonschema.validate(record, json.loads((ROOT / "audit" / "schema" / "audit.schema.json").read_text()))
        text = f"not checked: fail 'arm' in class 'dumbbell' in the baseline, but {why}"
        (verdict,) = [line for line in proc.stdout.splitlines() if line.startswith("FAIL: ")]
        assert text in verdict                                                      # the verdict line
        assert "1 not checked" in proc.stdout and f"  {text}" in proc.stdout        # console details
        assert any(line.startswith("::error title=audit baseline not checked 'arm' in 'dumbbell'")
                   for line in proc.stdout.splitlines())                            # annotation
        (case,) = [c for c in ET.parse(out / "junit.xml").getroot().iter("testcase")
                   if c.get("classname") == "audit.baseline"]
        assert text in case.find("failure").get("message")                          # JUnit
        assert "0 resolved, 1 not checked" in (out / "summary.md").read_text()
        assert text in (out / "summary.md").read_text()                             # Markdown
        html = (out / "index.html").read_text()
        assert "1 not checked" in html and text.replace("'", "&#39;") in html       # HTML
        diff = run_cli("diff", baseline, out / "audit.json")                        # audit diff
        assert "0 resolved, 1 not checked" in diff.stdout and text in diff.stdout
