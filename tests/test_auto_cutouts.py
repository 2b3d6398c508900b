"""Automatic cutouts: a concept with examples but no cutouts is localized inside its own example
images and cut out as a soft RGBA mask, which the causal test then pastes like a hand-made one."""

import json

import numpy as np
import pytest

from audit.config import ModelConfig
from audit.images import load_folder
from audit.evidence.localize import auto_alphas, auto_cutouts
from audit.model.load import load_model
from conftest import ASSETS, run_cli, write_config

CLASSES = ("dumbbell", "barbell", "kettlebell", "ball", "racket", "bottle")
CONCEPTS = ASSETS / "concepts"


@pytest.fixture(scope="module")
def shortcut_model():
    return load_model(ModelConfig(ASSETS / "models" / "demo_shortcut.keras", CLASSES, None, (0.0, 1.0), None, False))


def test_auto_cutouts_are_soft_masks_over_the_concept_and_leave_the_rest(shortcut_model):
    # examples whose concept mask is known: the hand-made arm cutouts pasted onto negative images
    arm = load_folder(CONCEPTS / "arm_cutouts", (64, 64), 3, "arm", alpha=True)
    negatives = load_folder(CONCEPTS / "_random", (64, 64), 3, "negatives")
    backgrounds = negatives[np.arange(len(arm)) % len(negatives)][::-1]
    examples = backgrounds * (1 - arm[..., 3:]) + arm[..., :3] * arm[..., 3:]
    truth = arm[..., 3] > 0.5
    cut = auto_cutouts(shortcut_model, examples, negatives)
    assert cut.shape[1:] == (64, 64, 4) and len(cut) >= 0.9 * len(arm)  # nearly every example shows the arm
    alpha = auto_alphas(shortcut_model, examples, negatives)
    kept = alpha.mean(axis=(1, 2)) >= 0.005
    assert 0.0 <= alpha.min() and alpha.max() <= 1.0 and np.all(alpha[kept].max(axis=(1, 2)) > 0.9)  # soft, peaks 1
    assert np.all(alpha.mean(axis=(1, 2)) <= 0.5)  # a part of the image, never the whole of it
    covered = (alpha * truth).sum() / truth.sum()  # how much of the arm the cutout carries
    inside = (alpha * truth).sum() / alpha.sum()   # how much of the cutout is arm, vs the arm's share of the image
    # measured: 63% of the arm covered, 19% of the alpha on it (the arm is 6% of the image; the
    # coarse feature map alone: 47% and 22%); a mask placed at random would cover about its own mean
    # opacity (~21%) with 6% on the arm
    assert covered > 0.5 and inside > 2 * truth.mean(), (covered, inside, truth.mean())
    assert np.allclose(cut[..., :3], examples[kept]) and np.allclose(cut[..., 3], alpha[kept])  # own pixels


def _auto_config(tmp_path, model, name):
    bank = {c: {"examples": str(CONCEPTS / c), "allowed_in": []} for c in ("arm", "stripes", "watermark")}
    bank["stripes"]["cutouts"] = str(CONCEPTS / "stripes_cutouts")  # hand-made cutouts take precedence
    return write_config(tmp_path / f"{name}.yaml", ASSETS / "models" / model, tmp_path / name, steps=16, restarts=2,
                        extra_bank=bank, concepts={"probes": str(CONCEPTS / "_probes")})


@pytest.mark.slow
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
    # in no other class does the found arm fail, nor move decisions enough to warn (it may respond)
    others = [c for k, c in checks.items() if k[1] == "arm" and k[0] != "dumbbell"]
    assert all(c["level"] == "pass" or c["decided_by"] == "causal_responds" for c in others)
    assert "automatic, found in the examples" in (out / "index.html").read_text()


@pytest.mark.slow
def test_automatic_cutouts_fail_nothing_on_the_control_model(tmp_path):
    proc = run_cli("run", _auto_config(tmp_path, "demo_control.keras", "control"), "--quiet", "--no-history")
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "control" / "audit.json").read_text())
    # nothing fails. Measured 2026-12-08: the found arm moves 14.0 +- 7.8 points of the hard probes into
    # barbell (adj. p 0.011), a warning one step from the fail line (docs/limits.md)
    assert all(f["level"] == "warn" for f in result["findings"]), result["findings"]
    assert result["evidence"]["mode"] == "causal"
