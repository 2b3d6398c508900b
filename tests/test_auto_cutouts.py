"""Automatic cutouts: a concept with examples but no cutouts is localized inside its own example
images and cut out as a soft RGBA mask, which the causal test then pastes like a hand-made one."""

import json

import numpy as np
import pytest

from audit.config import ModelConfig
from audit.images import load_folder
from audit.localize import auto_cutouts
from audit.model import load_model
from conftest import ASSETS, run_cli, write_config

CLASSES = ("dumbbell", "barbell", "kettlebell", "ball", "racket", "bottle")
CONCEPTS = ASSETS / "concepts"


@pytest.fixture(scope="module")
def shortcut_model():
    return load_model(ModelConfig(ASSETS / "models" / "demo_shortcut.keras", CLASSES, None, (0.0, 1.0), None, False))


def test_auto_cutouts_are_soft_masks_over_the_concept_and_leave_the_rest(shortcut_model):
    examples = load_folder(CONCEPTS / "arm", (64, 64), 3, "arm")
    negatives = load_folder(CONCEPTS / "_random", (64, 64), 3, "negatives")
    cut = auto_cutouts(shortcut_model, examples, negatives)
    alpha = cut[..., 3]
    assert cut.shape[1:] == (64, 64, 4) and len(cut) >= len(examples) // 2
    assert 0.0 <= alpha.min() and alpha.max() <= 1.0 and np.all(alpha.max(axis=(1, 2)) > 0.9)  # soft, peaks opaque
    assert np.all(alpha.mean(axis=(1, 2)) <= 0.5)  # a part of the image, never the whole of it
    # the arm is skin-toned: under the mask the pixels are far more skin-like than where it is transparent
    skin = np.array([0.85, 0.6, 0.45])

    def skin_distance(weights):
        return float((np.linalg.norm(cut[..., :3] - skin, axis=-1) * weights).sum() / weights.sum())
    assert skin_distance(alpha) < skin_distance(1.0 - alpha) - 0.1


def _auto_config(tmp_path, model, name):
    bank = {c: {"examples": str(CONCEPTS / c), "allowed_in": []} for c in ("arm", "stripes", "watermark")}
    bank["stripes"]["cutouts"] = str(CONCEPTS / "stripes_cutouts")  # hand-made cutouts take precedence
    return write_config(tmp_path / f"{name}.yaml", ASSETS / "models" / model, tmp_path / name, steps=16, restarts=2,
                        extra_bank=bank, concepts={"probes": str(CONCEPTS / "_probes")})


def test_without_cutouts_the_audit_finds_them_flags_the_shortcut_and_shows_what_it_pasted(tmp_path):
    proc = run_cli("run", _auto_config(tmp_path, "demo_shortcut.keras", "shortcut"), "--quiet", "--no-history")
    assert proc.returncode in (0, 1), proc.stderr
    out = tmp_path / "shortcut"
    result = json.loads((out / "audit.json").read_text())
    bank = {c["name"]: c for c in result["concepts"]["bank"]}
    assert bank["arm"]["cutouts"]["source"] == "auto" and bank["stripes"]["cutouts"]["source"] == "hand"
    assert all((out / rel).is_file() for rel in bank["arm"]["cutouts"]["images"])
    checks = {(c["class_name"], c["concept"]): c for c in result["checks"]}
    arm = checks[("dumbbell", "arm")]
    assert arm["level"] in ("fail", "warn") and arm["decided_by"].startswith("causal")
    assert all(c["level"] == "pass" for k, c in checks.items() if k[1] == "arm" and k[0] != "dumbbell")
    assert "automatic, found in the examples" in (out / "index.html").read_text()


def test_automatic_cutouts_raise_nothing_on_the_control_model(tmp_path):
    proc = run_cli("run", _auto_config(tmp_path, "demo_control.keras", "control"), "--quiet", "--no-history")
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "control" / "audit.json").read_text())
    assert result["findings"] == [] and result["evidence"]["mode"] == "causal"
