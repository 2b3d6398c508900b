"""Config validation: bad input is one line naming file and key, exit 2, no traceback."""

from pathlib import Path

import pytest
import yaml

from audit.config import load_config
from audit.errors import UserError
from conftest import ROOT, run_cli, write_config


def test_demo_configs_are_valid():
    for name in ("demo.yaml", "demo_control.yaml"):
        cfg = load_config(ROOT / "configs" / name)
        assert cfg.model.classes[0] == "dumbbell"
        assert {c.name for c in cfg.concepts.bank} >= {"arm", "stripes", "watermark"}
        assert cfg.model.path.exists() and cfg.report.out.is_absolute()


def _mutated(tmp_path, demo_model_path, mutate) -> Path:
    path = write_config(tmp_path / "c.yaml", demo_model_path, tmp_path / "out")
    data = yaml.safe_load(path.read_text())
    mutate(data)
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("mutate, key, words", [
    (lambda d: d["visualize"].update(stepz=10), "visualize.stepz", "did you mean `steps`"),
    (lambda d: d["visualize"].update(steps="many"), "visualize.steps", "must be int"),
    (lambda d: d["visualize"].update(restarts=0), "visualize.restarts", "from 1 to 1000"),
    (lambda d: d["model"].update(path="nope.keras"), "model.path", "does not exist"),
    (lambda d: d["model"].pop("classes"), "model.classes", "is missing"),
    (lambda d: d["model"].update(input_range=[1, 0]), "model.input_range", "low < high"),
    (lambda d: d["model"].update(preprocessing="bogus"), "model.preprocessing", "use one of"),
    (lambda d: d["concepts"]["bank"]["arm"].update(allowed_in=["dumbell"]),
     "concepts.bank.arm.allowed_in", "did you mean `dumbbell`"),
    (lambda d: d["concepts"].update(negatives="/no/such/dir"), "concepts.negatives", "does not exist"),
    (lambda d: d["concepts"].update(bank={}), "concepts.bank", "is empty"),
    (lambda d: d["gate"].update(evidence="vibes"), "gate.evidence", "use one of"),
    (lambda d: d["gate"].update(fail={"cue_max_p": 2}), "gate.fail.cue_max_p", "(0, 1]"),
    (lambda d: d.update(extra=1), "extra", "unknown key"),
    (lambda d: d["visualize"].update(stop_probability=1.5), "visualize.stop_probability", "(0, 1)"),
    (lambda d: d["concepts"]["bank"]["arm"].update(cutouts=str(ROOT / "audit/demo/assets/concepts/arm_cutouts")),
     "concepts.probes", "in-distribution images"),
    (lambda d: d["gate"].update(causal={"fail": {"min_moves": 150}}), "gate.causal.fail.min_moves",
     "percentage points of probes in [0, 100]"),
    (lambda d: d["gate"].update(causal={"warn": {"min_moves": -1}}), "gate.causal.warn.min_moves", "[0, 100]"),
    (lambda d: d["gate"].update(causal={"warn": {"min_log_odds": 0}}), "gate.causal.warn.min_log_odds",
     "or `null`"),
    # the flip and shift statistics are gone: their keys are refused, naming the keys that replace them
    (lambda d: d["gate"].update(causal={"fail": {"min_flip": 0.15}}), "gate.causal.fail.min_flip",
     "unknown key; allowed keys: max_p, min_moves"),
    (lambda d: d["gate"].update(causal={"warn": {"min_shift": 0.35}}), "gate.causal.warn.min_shift",
     "allowed keys: max_p, min_log_odds, min_moves"),
    # a log-odds rise alone may warn, never fail
    (lambda d: d["gate"].update(causal={"fail": {"min_log_odds": 1.0}}), "gate.causal.fail.min_log_odds",
     "unknown key"),
    (lambda d: d["gate"].update(baseline_tolerance={"moves": 101}), "gate.baseline_tolerance.moves", "[0, 100]"),
    # a log-odds response never fails through the baseline either: it has no tolerance
    (lambda d: d["gate"].update(baseline_tolerance={"log_odds": 0.5}), "gate.baseline_tolerance.log_odds",
     "unknown key"),
    (lambda d: d["gate"].update(baseline_tolerance={"shift": 0.45}), "gate.baseline_tolerance.shift",
     "allowed keys: abs, moves, rel"),
    (lambda d: d["gate"].update(baseline_tolerance={"causal": 0.06}), "gate.baseline_tolerance.causal",
     "unknown key"),
    # discover.warn / discover.fail read like gate.causal's levels
    (lambda d: d.update(discover={"fail": {"min_log_odds": 1.0}}), "discover.fail.min_log_odds", "unknown key"),
    (lambda d: d.update(discover={"warn": {"min_flip": 0.05}}), "discover.warn.min_flip", "unknown key"),
    (lambda d: d.update(discover={"warn": {"min_moves": 200}}), "discover.warn.min_moves", "[0, 100]"),
    (lambda d: d["visualize"].update(parameterization="fft"), "visualize.parameterization", "fourier, pixels"),
    (lambda d: d["visualize"].update(transforms="lucid"), "visualize.transforms", "standard, none"),
    (lambda d: d["visualize"].update(transforms={"jitter": 4, "rotat": 5}), "visualize.transforms.rotat",
     "did you mean `rotate`"),
    (lambda d: d["visualize"].update(transforms={"scale": [1.1, 0.9]}), "visualize.transforms.scale", "low <= high"),
    (lambda d: d["visualize"].update(transforms={"rotate": 400}), "visualize.transforms.rotate", "0 to 180"),
    (lambda d: d["visualize"].update(jitter=2, transforms={"rotate": 5}), "visualize.jitter",
     "move it into `transforms"),
    (lambda d: d["visualize"].update(raw_images=-1), "visualize.raw_images", "from 0 (none) to 1000"),
])
def test_bad_config_names_the_key_and_the_fix(tmp_path, demo_model_path, mutate, key, words):
    path = _mutated(tmp_path, demo_model_path, lambda d: (d.setdefault("gate", {}), mutate(d)))
    with pytest.raises(UserError) as err:
        load_config(path)
    message = str(err.value)
    assert message.startswith(f"{path}: {key}:"), message
    assert words in message and "\n" not in message


def test_visualize_defaults_and_the_older_keys_stay_valid(tmp_path, demo_model_path):
    from audit.config.visualize import DEFAULT_PARAMETERIZATION, DEFAULT_TRANSFORMS, TransformSettings

    cfg = load_config(_mutated(tmp_path, demo_model_path, lambda d: None))
    assert (cfg.visualize.parameterization, cfg.visualize.transforms) == (DEFAULT_PARAMETERIZATION, DEFAULT_TRANSFORMS)
    # a config written before parameterizations existed: jitter + total_variation, nothing else
    old = load_config(_mutated(tmp_path, demo_model_path,
                               lambda d: d["visualize"].update(jitter=2, total_variation=1.0)))
    assert (old.visualize.jitter, old.visualize.total_variation) == (2, 1.0)
    raw = load_config(_mutated(tmp_path, demo_model_path, lambda d: d["visualize"].update(
        parameterization="pixels", transforms={"jitter": 3, "scale": [0.9, 1.1], "rotate": 5})))
    assert raw.visualize.parameterization == "pixels"
    assert raw.visualize.transforms == TransformSettings(3, (0.9, 1.1), 5.0)


def test_the_causal_thresholds_are_in_points_and_nats_with_their_defaults(tmp_path, demo_model_path):
    from audit.config.gate import CAUSAL_FAIL, CAUSAL_WARN, DEFAULT_TOLERANCE, CausalLevel

    # the defaults in their units: points of probes moved, and (warn only) a log-odds rise in nats
    assert CAUSAL_FAIL.min_log_odds is None and CAUSAL_WARN.min_log_odds is not None  # a log-odds rise never fails
    assert 1 < CAUSAL_WARN.min_moves < CAUSAL_FAIL.min_moves <= 100 and CAUSAL_FAIL.max_p <= CAUSAL_WARN.max_p
    assert 1 < DEFAULT_TOLERANCE["moves"] <= 100 and set(DEFAULT_TOLERANCE) == {"moves", "abs", "rel"}
    gate = load_config(_mutated(tmp_path, demo_model_path, lambda d: None)).gate
    assert (gate.causal_fail, gate.causal_warn) == (CAUSAL_FAIL, CAUSAL_WARN)
    assert gate.baseline_tolerance == DEFAULT_TOLERANCE
    gate = load_config(_mutated(tmp_path, demo_model_path, lambda d: d.setdefault("gate", {}).update(
        causal={"fail": {"min_moves": 20}, "warn": {"max_p": 0.1, "min_log_odds": None}},
        baseline_tolerance={"moves": 8}))).gate
    assert gate.causal_fail == CausalLevel(CAUSAL_FAIL.max_p, 20.0, None)  # the rest keep their defaults
    assert gate.causal_warn == CausalLevel(0.1, CAUSAL_WARN.min_moves, None)  # null: the log-odds warning is off
    assert gate.baseline_tolerance == {**DEFAULT_TOLERANCE, "moves": 8.0}
    discover = load_config(_mutated(tmp_path, demo_model_path, lambda d: d.update(
        discover={"probes": str(ROOT / "audit/demo/assets/concepts/_probes"), "warn": {"min_moves": 10},
                  "fail": {"max_p": 0.001}}))).discover
    assert discover.warn == CausalLevel(CAUSAL_WARN.max_p, 10.0, CAUSAL_WARN.min_log_odds)
    assert discover.fail == CausalLevel(0.001, CAUSAL_FAIL.min_moves, None)


def test_paths_are_relative_to_the_config_file(tmp_path):
    cfg = load_config(ROOT / "configs" / "demo.yaml")
    assert cfg.model.path == (ROOT / "audit/demo/assets/models/demo_shortcut.keras").resolve()


def test_cli_bad_config_exits_2_with_one_line_and_writes_nothing(tmp_path, demo_model_path):
    path = _mutated(tmp_path, demo_model_path, lambda d: d["visualize"].update(stepz=10))
    for command in ("validate", "run"):
        proc = run_cli(command, path)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "visualize.stepz" in lines[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_invalid_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    proc = run_cli("validate", bad)
    assert proc.returncode == 2 and "not valid YAML" in proc.stderr
    proc = run_cli("validate", tmp_path / "missing.yaml")
    assert proc.returncode == 2 and "config file not found" in proc.stderr


def test_validate_ok():
    proc = run_cli("validate", ROOT / "configs" / "demo.yaml")
    assert proc.returncode == 0 and "ok (6 classes, 3 concepts, 90 probes)" in proc.stdout


BUILT_BY_MAKE = "run `make demo-imagenet` first (it converts the network and draws the demo data)"


def _fresh_clone(tmp_path) -> Path:
    """The parts of a checkout before `make demo-imagenet`: its Makefile and configs, no .cache/."""
    import shutil

    clone = tmp_path / "clone"
    (clone / "configs").mkdir(parents=True)
    shutil.copy(ROOT / "Makefile", clone / "Makefile")
    for name in ("demo_imagenet.yaml", "dream_imagenet.yaml"):
        shutil.copy(ROOT / "configs" / name, clone / "configs" / name)
    return clone


def test_a_missing_derived_asset_names_the_command_that_builds_it(tmp_path, demo_model_path):
    clone = _fresh_clone(tmp_path)
    # the real-network configs on a fresh clone: the converted network is not there yet
    for command in ("run", "dream", "validate"):
        name = "dream_imagenet.yaml" if command == "dream" else "demo_imagenet.yaml"
        proc = run_cli(command, clone / "configs" / name)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1, proc.stderr
        assert "model.path: ../.cache/imagenet/efficientnet_lite0.keras does not exist" in lines[0]
        assert lines[0].endswith(BUILT_BY_MAKE), lines[0]
    # a concept folder of the drawn demo data: the same step
    path = write_config(clone / "configs" / "mine.yaml", demo_model_path, tmp_path / "out")
    data = yaml.safe_load(path.read_text())
    data["concepts"]["negatives"] = "../.cache/demo_imagenet_data/negatives"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(UserError, match="concepts.negatives: .* does not exist .*; " + BUILT_BY_MAKE.replace("(", r"\(")
                       .replace(")", r"\)")):
        load_config(path)
    # the same folder names outside a checkout with that Makefile target are the user's own: the usual fix
    (clone / "Makefile").write_text("demo:\n\ttrue\n")
    with pytest.raises(UserError, match="fix the path; paths are relative to the config file") as err:
        load_config(path)
    assert "make" not in str(err.value)
