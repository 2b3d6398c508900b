"""Discovery (audit/evidence/discover/): with an empty concept bank, the demo's shortcut model shows the
arm in dumbbell as an unnamed pattern with a significant insertion test; a pattern promoted to a
concept makes the next run fail the gate; bad input exits 2 and touches nothing."""

import json

import numpy as np
import pytest
import yaml
from PIL import Image

from conftest import ASSETS, run_cli

CLASSES = ["dumbbell", "barbell", "kettlebell", "ball", "racket", "bottle"]


@pytest.fixture(scope="module")
def validation(tmp_path_factory):
    """A validation sample drawn like the shortcut model's training set (arms on 95% of dumbbells)."""
    from audit.demo.build import write_validation

    return write_validation(tmp_path_factory.mktemp("validation") / "probes", per_class=20)


def _config(path, out, probes, **extra):
    cfg = {"model": {"path": str(ASSETS / "models" / "demo_shortcut.keras"), "classes": CLASSES,
                     "input_range": [0, 1]},
           "visualize": {"restarts": 1, "steps": 16, "raw_images": 0},
           "concepts": {"negatives": str(ASSETS / "concepts" / "_random"), "bank": {}},
           "discover": {"probes": str(probes)}, "layer_gallery": False, "report": {"out": str(out)}}
    for key, value in extra.items():
        cfg[key] = value
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def discovery_run(tmp_path_factory, validation):
    folder = tmp_path_factory.mktemp("discover")
    out = folder / "report"
    return run_cli("run", _config(folder / "audit.yaml", out, validation), "--no-progress"), out


def _arm_masks(validation):
    """{probe pixels: arm mask} for the dumbbell probes: each scene drawn again without its arm."""
    from audit.demo.build import VALIDATION_SEED
    from audit.demo.drawing import scene

    masks = {}
    for f in sorted((validation / "dumbbell").glob("*.png")):
        seed = VALIDATION_SEED + int(f.stem.split("_")[1])
        arm = np.abs(scene("dumbbell", seed, True) - scene("dumbbell", seed, False)).max(-1) > 0.05
        masks[np.asarray(Image.open(f).convert("RGB")).tobytes()] = arm
    return masks


@pytest.mark.slow
def test_empty_bank_run_surfaces_the_arm_in_dumbbell_with_a_significant_insertion_test(discovery_run, validation):
    import jsonschema

    proc, out = discovery_run
    assert proc.returncode == 0, proc.stderr  # discovered patterns never fail the gate unless configured
    result = json.loads((out / "audit.json").read_text())
    jsonschema.validate(result, json.loads((ASSETS.parents[1] / "schema" / "audit.schema.json").read_text()))
    assert result["checks"] == [] and result["verdict"] == "pass"
    found = result["discovered"]
    assert {e["class_name"] for e in found} == set(CLASSES)
    assert all(e["level"] == "review" for e in found)  # warn is opt-in (discover.warn)
    order = [(0 if e["level"] == "warn" else 1, -max(m["moves"] for m in e["causal"].values() if m)) for e in found]
    assert order == sorted(order)  # worst first
    masks = _arm_masks(validation)
    best = 0.0
    for e in (e for e in found if e["class_name"] == "dumbbell"):
        coverage = []
        for rel in e["cutouts"]:
            rgba = np.asarray(Image.open(out / rel))
            assert rgba.shape[-1] == 4 and (out / rel).is_file()
            arm = masks.get(rgba[..., :3].tobytes())
            if arm is not None and arm.any():
                coverage.append(((rgba[..., 3] > 127) & arm).sum() / arm.sum())
        if min(m["p_adjusted"] for m in e["causal"].values() if m) < 0.01 and coverage:
            best = max(best, float(np.mean(coverage)))
    # a significant dumbbell pattern whose cutouts hold most of the arm's pixels
    assert best >= 0.5, best
    html = (out / "index.html").read_text()
    assert "Unnamed patterns to review" in html and "class <b>dumbbell</b>" in html


@pytest.mark.slow
def test_a_promoted_pattern_gates_the_next_run_and_promotion_never_overwrites_foreign_files(discovery_run, tmp_path):
    _, out = discovery_run
    concept = tmp_path / "concepts" / "found"
    proc = run_cli("concept", "from-pattern", out / "audit.json", "dumbbell", 1, "found", "--out", concept)
    assert proc.returncode == 0, proc.stderr
    assert len(list((concept / "examples").glob("*.png"))) >= 4 and list((concept / "cutouts").glob("*.png"))
    again = run_cli("concept", "from-pattern", out / "audit.json", "dumbbell", 1, "found", "--out", concept)
    assert again.returncode == 0, again.stderr  # its own folder is replaced
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    for args in (("dumbbell", 1, "found", "--out", foreign), ("dumbbell", 9, "x", "--out", tmp_path / "a"),
                 ("nosuchclass", 1, "x", "--out", tmp_path / "b"), ("dumbbell", 1, "bad name", "--out", tmp_path / "c")):
        bad = run_cli("concept", "from-pattern", out / "audit.json", *args)
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr, bad.stderr
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"] and (foreign / "notes.txt").read_text() == "mine"
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    not_json = tmp_path / "x.json"
    not_json.write_text("{")
    assert run_cli("concept", "from-pattern", not_json, "dumbbell", 1, "x", "--out", tmp_path / "d").returncode == 2
    # the next run lists it like any concept, with clean probes for the causal test: the gate fails
    cfg = {"model": {"path": str(ASSETS / "models" / "demo_shortcut.keras"), "classes": CLASSES,
                     "input_range": [0, 1]},
           "visualize": {"restarts": 1, "steps": 16, "raw_images": 0},
           "concepts": {"negatives": str(ASSETS / "concepts" / "_random"),
                        "probes": str(ASSETS / "concepts" / "_probes"),
                        "bank": {"found": {"examples": str(concept / "examples"), "cutouts": str(concept / "cutouts"),
                                           "allowed_in": []}}},
           "layer_gallery": False, "report": {"out": str(tmp_path / "gated")}}
    (tmp_path / "gate.yaml").write_text(yaml.safe_dump(cfg))
    gated = run_cli("run", tmp_path / "gate.yaml", "--quiet")
    assert gated.returncode == 1, gated.stdout + gated.stderr
    findings = json.loads((tmp_path / "gated" / "audit.json").read_text())["findings"]
    assert [(f["class_name"], f["concept"], f["level"]) for f in findings][0] == ("dumbbell", "found", "fail")


@pytest.mark.slow
def test_discover_command_needs_only_a_model_and_class_folders_and_repeats_itself(validation, tmp_path):
    classes = tmp_path / "classes.txt"
    classes.write_text("\n".join(CLASSES) + "\n")
    out = tmp_path / "disc"
    proc = run_cli("discover", "--model", ASSETS / "models" / "demo_shortcut.keras", "--probes", validation,
                   "--classes-file", classes, "--input-range", "0,1", "--classes", "dumbbell,ball",
                   "--no-visualize", "--out", out)
    assert proc.returncode == 0, proc.stderr
    result = json.loads((out / "discovery.json").read_text())
    assert {e["class_name"] for e in result["discovered"]} == {"dumbbell", "ball"}
    assert all(e["visualizations"] == [] and e["causal"]["probes"]["p_adjusted"] is not None
               for e in result["discovered"])
    assert "Unnamed patterns to review" in (out / "index.html").read_text()
    again = run_cli("discover", "--model", ASSETS / "models" / "demo_shortcut.keras", "--probes", validation,
                    "--classes-file", classes, "--input-range", "0,1", "--classes", "dumbbell,ball",
                    "--no-visualize", "--out", tmp_path / "again", "--quiet")
    assert again.returncode == 0, again.stderr
    assert json.loads((tmp_path / "again" / "discovery.json").read_text())["discovered"] == result["discovered"]
    # a flat probe folder cannot say which images are a class's own
    flat = run_cli("discover", "--model", ASSETS / "models" / "demo_shortcut.keras", "--probes",
                   ASSETS / "concepts" / "_probes", "--classes-file", classes, "--input-range", "0,1",
                   "--out", tmp_path / "flat")
    assert flat.returncode == 2 and "sub-folder per class" in flat.stderr and not (tmp_path / "flat").exists()


@pytest.mark.slow
def test_discover_config_errors_name_the_key(tmp_path, validation):
    cfg = _config(tmp_path / "a.yaml", tmp_path / "out", validation)
    data = yaml.safe_load(cfg.read_text())
    data["discover"] = True  # the defaults, but no probes anywhere
    cfg.write_text(yaml.safe_dump(data))
    proc = run_cli("validate", cfg)
    assert proc.returncode == 2 and "discover" in proc.stderr and "sub-folder per class" in proc.stderr
    data["discover"] = {"probes": str(validation), "paterns": 3}
    cfg.write_text(yaml.safe_dump(data))
    proc = run_cli("validate", cfg)
    assert proc.returncode == 2 and "discover.paterns: unknown key" in proc.stderr and "patterns" in proc.stderr
    data["discover"] = {"probes": str(ASSETS / "concepts" / "_probes")}
    cfg.write_text(yaml.safe_dump(data))
    proc = run_cli("validate", cfg)
    assert proc.returncode == 2 and "discover.probes" in proc.stderr and "flat folder" in proc.stderr


def test_factorization_separates_a_cue_present_in_some_images_from_the_object_present_in_all():
    from audit.evidence.discover.patterns import decompose

    rng = np.random.default_rng(0)
    n, D = 40, 12
    contributions = np.zeros((n, 4, 4, D))
    contributions[:, 1:3, 1:3, :6] = rng.uniform(0.5, 1.0, (n, 2, 2, 6))      # the object: every image, centre
    has_cue = rng.random(n) < 0.6
    contributions[has_cue, 0, 3, 6:] = rng.uniform(2.0, 3.0, (has_cue.sum(), 6))  # the cue: a corner, some images
    found = decompose(contributions, 2)
    cue = int(np.argmax(found.components[:, 6:].sum(1)))
    assert found.components[cue, 6:].sum() > 0.9 and found.components[1 - cue, :6].sum() > 0.9
    assert found.weights[has_cue, cue].min() > 10 * max(found.weights[~has_cue, cue].max(), 1e-9)
    cue_map = found.maps[has_cue, cue]
    assert (cue_map.reshape(len(cue_map), -1).argmax(1) == 3).all()  # its region is the corner cell
    again = decompose(contributions, 2)
    assert np.array_equal(again.weights, found.weights)  # deterministic


def test_levels_stay_review_unless_warn_or_fail_is_configured_and_only_fail_changes_the_verdict():
    from audit.evidence.discover.run import Discovery, assign_levels
    from audit.config.discover import DiscoverConfig
    from audit.config.gate import CAUSAL_FAIL as FAIL, CAUSAL_WARN as WARN
    from audit.gate.verdict import decide

    def pattern(moves, p, kept):
        d = Discovery(0, 1, 0.5, *([np.zeros(0)] * 3), np.zeros((0, 2, 2, 4)), kept, np.zeros(1), np.zeros(1))
        hard = {"moves": moves, "p_adjusted": p, "log_odds": 0.0, "log_odds_beyond": 0.0, "prob_rise": 0.0,
                "log_odds_p_adjusted": 1.0}
        d.causal = {"probes": None, "hard": hard, "pastes": 40}
        return d

    # points of other classes' hard probes the region alone moves into the class
    strong, weak, needed = pattern(40.0, 1e-6, 0.9), pattern(8.0, 0.01, 0.9), pattern(40.0, 1e-6, 0.1)
    assign_levels([strong, weak, needed], DiscoverConfig())
    assert [d.level for d in (strong, weak, needed)] == ["review"] * 3
    assign_levels([strong, weak, needed], DiscoverConfig(warn=WARN))
    assert [d.level for d in (strong, weak, needed)] == ["warn", "warn", "review"]  # the class needs it: review
    assign_levels([strong, weak, needed], DiscoverConfig(warn=WARN, fail=FAIL))
    assert [d.level for d in (strong, weak, needed)] == ["fail", "warn", "review"]
    for levels, verdict in ((["warn", "review"], "pass"), (["fail"], "fail")):
        decided = decide([], levels)
        assert (decided.level, decided.exit_code) == (verdict, 1 if verdict == "fail" else 0)


@pytest.mark.slow
def test_a_failing_discovered_pattern_is_a_failure_in_junit_and_named_in_the_summary(discovery_run):
    """The exit code counts a pattern at discover.fail; the CI's test list and step summary must agree."""
    from xml.etree import ElementTree as ET

    from audit.gate.verdict import decide
    from audit.report import junit, markdown

    _, out = discovery_run
    result = json.loads((out / "audit.json").read_text())
    result["discovered"][0]["level"] = "fail"  # as discover.fail would set it
    verdict = decide([c["level"] for c in result["checks"]], [d["level"] for d in result["discovered"]])
    result.update(verdict=verdict.level, exit_code=verdict.exit_code, verdict_reasons=list(verdict.reasons))
    suite = ET.fromstring(junit.render(result, out)).find("testsuite")
    failed = [c for c in suite.iter("testcase") if c.find("failure") is not None]
    first = result["discovered"][0]
    assert [c.get("name") for c in failed] == [f"{first['class_name']} x unnamed pattern {first['pattern']}"]
    assert suite.get("failures") == "1" and int(suite.get("tests")) == len(result["checks"]) + 1
    assert "1 fail" in markdown.render(result, out) and result["exit_code"] == 1
