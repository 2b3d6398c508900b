"""Baseline gating compares each check on the statistic that decided it, with tolerances measured
on honest retrains (benchmarks/retrain): a retrain passes against its sibling, a new shortcut fails.

A check a paste test decided is compared on the points of probes its concept moves into the class
(`moves`, the largest over the insertion and in-class tests and over the probes and their hard
copies), also where it only responds by log-odds (which may warn, never fail); tolerance
`gate.baseline_tolerance.moves`.

The two models in tests/assets/retrain/ are built by `python benchmarks/retrain/run.py --export`:
`control_retrain.keras` is the demo control's recipe and training images with training seed 1
(the shipped control is seed 0); `new_shortcut.keras` is the demo shortcut's recipe (an arm holds
95% of the dumbbells) with training seed 2: it learned the shortcut more weakly than the shipped
one (the old flip difference 0.09 instead of 0.17, when the gate alone only warned); on the hard
copies of the probes it moves about 19 points of them into dumbbell (the shipped one 32, the clean
control 1.5), so the gate now fails it alone, and the baseline comparison with the clean control
names it as a new fail (docs/evidence.md, "Baseline tolerances")."""

import pytest
import json
from pathlib import Path
from xml.etree import ElementTree as ET

import yaml

from audit.gate.baseline import DEFAULT_TOLERANCE, STATISTICS, compare, deciding_statistic
from conftest import ROOT, run_cli

RETRAIN = ROOT / "tests" / "assets" / "retrain"
GATE = {"evidence": "both", "warn": {"cue_min_effect": 0.5, "vis_min_effect": 0.5},
        "causal": {"warn": {"min_moves": 5.0, "min_log_odds": 0.3}}}
MOVES = STATISTICS["moves"]  # how reports name the paste tests' statistic


def _measures(moves=0.0, log_odds=0.0):
    """One probe set's paste-test measures (causal.Measures.at plus the Holm-adjusted p's)."""
    return {"counted": 50, "into": max(moves, 0.0) + 2.0, "into_control": 2.0, "moves": moves, "low": moves - 4.0,
            "high": moves + 4.0, "p": 0.5, "p_adjusted": 0.5, "log_odds": log_odds, "log_odds_beyond": log_odds,
            "log_odds_p": 0.5, "log_odds_p_adjusted": 0.5, "prob_rise": 1.0}


def _sets(probes=None, hard=None):
    """A paste test's {probe set: measures} from (moves, log_odds) pairs (None: that set not measured)."""
    return {"probes": probes and _measures(*probes), "hard": hard and _measures(*hard)}


def _check(level="pass", cue_d=0.0, vis_effect=0.0, moves=None, class_name="star", concept="grid",
           decided_by=None, causal=None, inclass=None):
    """A check; `moves` alone: the insertion test on the probes (no hard copies) decided it by moves."""
    if moves is not None:
        causal = _sets(probes=(moves, 0.0))
    tested = causal is not None or inclass is not None
    return {"class_name": class_name, "concept": concept, "level": level, "cue_d": cue_d, "vis_effect": vis_effect,
            "causal": causal, "inclass": inclass,
            "decided_by": decided_by or ("causal_moves" if tested else "observational"),
            "decided_on": "probes" if tested else None}


def _result(*checks):
    return {"gate": GATE, "checks": list(checks), "findings": [c for c in checks if c["level"] in ("fail", "warn")]}


def test_a_causal_check_is_compared_on_the_points_it_moves_not_on_cue_d():
    # the case: cue d -0.08 -> 3.68 on a check the causal test decided, passing both times
    before = _result(_check(cue_d=-0.08, vis_effect=0.2, moves=1.0))
    after = _result(_check(cue_d=3.68, vis_effect=2.5, moves=3.0))
    assert deciding_statistic(after["checks"][0], "both") == "moves"
    diff = compare(after, before)
    assert diff["regressions"] == [] and diff["new_findings"] == []
    tolerance = DEFAULT_TOLERANCE["moves"]
    risen = _result(_check(level="pass", cue_d=-0.08, moves=1.0 + tolerance + 2.0))
    (regression,) = compare(risen, before)["regressions"]
    assert regression["statistic"] == "moves" and regression["baseline"] == 1.0
    assert (f"{MOVES} 1.00 -> {3.0 + tolerance:.2f} (allowed rise {tolerance:.2f})"
            in regression["message"])
    assert "'grid' in class 'star'" in regression["message"]
    # a rise beyond tolerance that stays below the warn effect (gate.causal.warn.min_moves) is noise
    small = {**GATE, "causal": {"warn": {"min_moves": 20.0, "min_log_odds": 0.3}}}
    assert compare({**risen, "gate": small}, before)["regressions"] == []


def test_a_rise_on_the_hard_probes_or_the_in_class_test_is_compared_too():
    # `moves` is the largest over both paste tests and both probe sets, whichever decided the check
    before = _result(_check(causal=_sets(probes=(1.0, 0.0), hard=(2.0, 0.0)), inclass=_sets(probes=(0.0, 0.0))))

    def after(causal, inclass, decided_by):
        check = _check(causal=causal, inclass=inclass, decided_by=decided_by)
        return _result({**check, "decided_on": "hard"})

    hard = after(_sets(probes=(1.0, 0.0), hard=(12.0, 0.0)), _sets(probes=(0.0, 0.0)), "causal_moves")
    (r,) = compare(hard, before)["regressions"]
    assert r["statistic"] == "moves" and (r["baseline"], r["candidate"]) == (2.0, 12.0)
    assert f"{MOVES} 2.00 -> 12.00 (allowed rise 6.00)" in r["message"]
    # the in-class test decided it: its moves count, on either probe set
    inclass = after(_sets(probes=(1.0, 0.0), hard=(2.0, 0.0)), _sets(probes=(3.0, 0.0), hard=(11.0, 0.0)),
                    "inclass_moves")
    assert deciding_statistic(inclass["checks"][0], "both") == "moves"
    (r,) = compare(inclass, before)["regressions"]
    assert (r["baseline"], r["candidate"]) == (2.0, 11.0)
    # within retrain noise on every test and probe set: no regression
    quiet = after(_sets(probes=(6.0, 0.0), hard=(7.0, 0.0)), _sets(probes=(5.0, 0.0), hard=None), "inclass_moves")
    assert compare(quiet, before)["regressions"] == []


def test_a_log_odds_response_never_fails_the_gate_through_the_baseline():
    """A log-odds rise may warn, never fail: a check that only responds is compared on the points of
    probes it moves, so a response that grows (retrains of the toy move log-odds by a nat or more)
    is no regression and no failing new finding while no decision moves."""
    def responds(log_odds, level="warn", moves=1.0):
        return _check(level=level, cue_d=0.1, causal=_sets(probes=(moves, 0.1), hard=(2.0, log_odds)),
                      decided_by="causal_responds")

    def result(log_odds, **kw):
        return {**_result(responds(log_odds, **kw)), "gate": GATE}

    assert deciding_statistic(responds(0.4), "both") == "moves"
    assert compare(result(3.0), result(0.2))["regressions"] == []  # +2.8 nats, no decision moved
    (new,) = compare(result(3.0), _result(responds(0.2, level="pass")))["new_findings"]
    assert new["statistic"] == "moves" and not new["fails_gate"] and "within retrain tolerance" in new["message"]
    # once it moves decisions beyond the tolerance, it is a regression like any other
    (r,) = compare(result(3.0, moves=12.0), result(0.2))["regressions"]
    assert r["statistic"] == "moves"


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
    before = _result(_check(moves=3.0))
    (new,) = compare(_result(_check(level="warn", moves=6.0)), before)["new_findings"]
    assert not new["fails_gate"] and "within retrain tolerance" in new["message"]
    (new,) = compare(_result(_check(level="warn", moves=3.0 + DEFAULT_TOLERANCE["moves"] + 1.0)), before)["new_findings"]
    assert new["fails_gate"] and "within retrain tolerance" not in new["message"]
    (new,) = compare(_result(_check(level="fail", moves=16.0)), before)["new_findings"]
    assert new["fails_gate"]  # a new fail-level finding always fails
    (new,) = compare(_result(_check(level="fail", moves=4.0)), before)["new_findings"]
    assert new["fails_gate"]  # even within tolerance


def test_a_baseline_from_before_the_paste_tests_had_decision_units_is_incompatible_not_compared(tmp_path):
    from audit.gate.baseline import load_baseline
    from audit.result import SCHEMA_VERSION

    def written(version, check):
        path = tmp_path / f"audit-{version}.json"
        path.write_text(json.dumps({**_result(check), "schema_version": version, "verdict": "pass",
                                    "model": {"name": "m.keras", "sha256": "a" * 64}}))
        return path

    assert SCHEMA_VERSION == 2
    state, data, reason = load_baseline(written(2, _check(causal=_sets(probes=(1.0, 0.1), hard=(2.0, 0.2)))))
    assert state == "compared" and data["checks"][0]["causal"]["hard"]["moves"] == 2.0
    # an audit.json of schema 1 (flip and shift): another schema, said so, never read as moves
    old = {**_check(), "causal_effect": 0.2, "causal_shift": 0.5, "inclass_shift": None}
    state, data, reason = load_baseline(written(1, old))
    assert (state, data) == ("incompatible", None) and "schema_version 1, this tool writes 2" in reason
    # measures that are not numbers, where compare() reads them
    for bad in ({"probes": {**_measures(), "moves": "20"}, "hard": None}, {"probes": [1.0]},
                {"probes": {**_measures(), "log_odds": None}, "hard": {**_measures(), "log_odds": True}}, [20.0]):
        state, _, reason = load_baseline(written(2, _check(inclass=bad)))
        assert state == "incompatible" and "a check has a non-numeric score" in reason, bad


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
    verdict = json.loads(baseline.read_text())["verdict"]
    assert f"baseline: {baseline} (model demo_control.keras, verdict {verdict}): " in proc.stdout


@pytest.mark.slow
def test_a_planted_new_shortcut_fails_and_every_output_names_check_statistic_and_values(control_run, tmp_path):
    baseline = control_run[1] / "audit.json"
    summary = tmp_path / "step_summary.md"
    proc = run_cli("run", _config(tmp_path, RETRAIN / "new_shortcut.keras", "planted"), "--baseline", baseline,
                   env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = tmp_path / "planted"
    record = json.loads((out / "audit.json").read_text())
    base = record["baseline"]
    # the weaker shortcut moves enough of the hard probes to fail alone (the old flip statistic only warned)
    assert base["fails_gate"] and [(c["class_name"], c["concept"]) for c in record["findings"]
                                   if c["level"] == "fail"] == [("dumbbell", "arm")]
    failing = [c for c in [*base["new_findings"], *base["regressions"]] if c.get("fails_gate", True)]
    (change,) = [c for c in failing if (c["class_name"], c["concept"]) == ("dumbbell", "arm")]
    assert change["statistic"] == "moves" and change["candidate"] - change["baseline"] > change["allowed_rise"]
    assert change["level"] == "fail" and change["candidate"] >= record["gate"]["causal"]["fail"]["min_moves"]
    text = f"'arm' in class 'dumbbell': {MOVES} {change['baseline']:.2f} -> {change['candidate']:.2f}"
    assert text in proc.stdout                                              # console
    junit = ET.parse(out / "junit.xml").getroot()
    (case,) = [c for c in junit.iter("testcase") if c.get("classname") == "audit.baseline"]
    assert text in case.find("failure").get("message")                     # JUnit message
    titles = [line.split("::")[1] for line in proc.stdout.splitlines() if line.startswith("::error")]
    assert any(f"'arm' in 'dumbbell' {MOVES}" in t and f"{change['candidate']:.2f}" in t
               for t in titles), titles                                       # annotation title
    assert text in (out / "summary.md").read_text() and text in summary.read_text()   # Markdown
    assert text.replace("'", "&#39;").replace(">", "&gt;") in (out / "index.html").read_text()   # HTML
    # and nothing else fails by the baseline: the clean control and the planted model differ by the shortcut only
    assert [(c["class_name"], c["concept"]) for c in failing] == [("dumbbell", "arm")], [c["message"] for c in failing]


@pytest.mark.slow
def test_quiet_prints_only_the_verdict_and_the_report_path(control_run, tmp_path):
    proc = run_cli("run", _config(tmp_path, RETRAIN / "new_shortcut.keras", "planted"), "--baseline",
                   control_run[1] / "audit.json", "--quiet")
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith("FAIL: ") and lines[1].startswith("report: "), lines
    assert f"'arm' in class 'dumbbell': {MOVES}" in lines[0]  # the verdict still names what failed


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
