"""The causal confirmation step: concept cutouts pasted onto probe images, against a
control paste of the same shapes filled with random images."""

import numpy as np
import pytest

from audit.evidence.causal import causal_scores, paste
from audit.config import ModelConfig
from audit.images import load_folder
from audit.model.load import load_model
from conftest import ASSETS, run_cli, write_config

CLASSES = ("dumbbell", "barbell", "kettlebell", "ball", "racket", "bottle")
CONCEPTS = ASSETS / "concepts"


@pytest.fixture(scope="module")
def folders():
    size = (64, 64)
    return {"probes": load_folder(CONCEPTS / "_probes", size, 3, "probes"),
            "negatives": load_folder(CONCEPTS / "_random", size, 3, "negatives"),
            **{c: load_folder(CONCEPTS / f"{c}_cutouts", size, 3, c, alpha=True)
               for c in ("arm", "stripes", "watermark")}}


def _scores(kind, folders, seed=0, batch_size=64):
    model = load_model(ModelConfig(ASSETS / "models" / f"demo_{kind}.keras", CLASSES, None, (0.0, 1.0), None, False))
    cutouts = [folders["arm"], folders["stripes"], None]  # watermark: no causal test
    return causal_scores(model, cutouts, folders["probes"], folders["negatives"], np.arange(6), seed,
                         batch_size=batch_size)


def test_cutouts_are_the_concept_alone(folders):
    arm = folders["arm"]
    assert arm.shape[-1] == 4
    coverage = (arm[..., 3] > 0.5).mean(axis=(1, 2))
    assert np.all(coverage > 0.02) and np.all(coverage < 0.5)  # an arm, not a whole image
    # pasting reproduces the painter on any background: opaque pixels carry the concept's colour
    canvas = np.full((1, 64, 64, 3), 0.3, np.float32)
    pasted = paste(canvas, arm[:1, ..., :3], arm[:1, ..., 3:])
    on = arm[0, ..., 3] > 0.99
    assert np.allclose(pasted[0][on], arm[0, ..., :3][on], atol=1e-6)


def test_the_planted_shortcut_flips_probes_and_the_look_alike_does_not(folders):
    s = _scores("shortcut", folders)
    arm, stripes = 0, 1
    dumbbell, racket = 0, 4
    # the arm turns other objects into dumbbells, well beyond a same-shaped patch of a random image
    assert s.flip[dumbbell, arm] - s.flip_control[dumbbell, arm] > 0.1
    assert s.p[dumbbell, arm] < 1e-6
    # stripes look like a racket's strings to the model (cue d 1.2) but do not make things rackets
    assert s.flip[racket, stripes] - s.flip_control[racket, stripes] < 0.03
    assert np.all(np.isnan(s.effect[:, 2]))  # no cutouts, no test


def test_the_control_model_is_not_moved_by_the_arm(folders):
    s = _scores("control", folders)
    assert np.nanmax(s.effect[:, 0]) < 0.05


def test_same_seed_same_numbers(folders):
    a, b = _scores("shortcut", folders, seed=3), _scores("shortcut", folders, seed=3)
    assert np.array_equal(a.flip, b.flip, equal_nan=True) and np.array_equal(a.p, b.p, equal_nan=True)


def test_a_smaller_memory_budget_gives_the_same_numbers(folders):
    # batches sized from the budget (pasted a batch at a time) must not change the statistics
    big, small = _scores("shortcut", folders, batch_size=64), _scores("shortcut", folders, batch_size=7)
    assert np.array_equal(big.flip, small.flip, equal_nan=True)
    assert np.array_equal(big.flip_control, small.flip_control, equal_nan=True)
    assert np.allclose(big.logp_rise, small.logp_rise, atol=1e-5, equal_nan=True)
    assert np.allclose(big.p, small.p, rtol=1e-3, atol=1e-12, equal_nan=True)


@pytest.mark.slow
def test_a_causal_check_is_decided_by_the_causal_test_and_reported(tmp_path, demo_model_path):
    import json

    bank = {"arm": {"examples": str(CONCEPTS / "arm"), "cutouts": str(CONCEPTS / "arm_cutouts"), "allowed_in": []},
            "stripes": {"examples": str(CONCEPTS / "stripes"), "cutouts": str(CONCEPTS / "stripes_cutouts"),
                        "allowed_in": []}}
    cfg = write_config(tmp_path / "c.yaml", demo_model_path, tmp_path / "out", steps=16, restarts=2,
                       extra_bank=bank, concepts={"probes": str(CONCEPTS / "_probes"), "auto_cutouts": False})
    proc = run_cli("run", cfg, "--quiet", "--no-history")
    assert proc.returncode == 1, proc.stderr
    result = json.loads((tmp_path / "out" / "audit.json").read_text())
    checks = {(c["class_name"], c["concept"]): c for c in result["checks"]}
    arm = checks[("dumbbell", "arm")]
    assert arm["level"] == "fail" and "pasting the concept" in arm["reason"]
    assert arm["causal_flip"] > arm["causal_flip_control"]
    # the look-alike is cleared by the intervention, not by an allowed_in entry
    assert checks[("racket", "stripes")]["level"] == "pass"
    assert checks[("dumbbell", "watermark")]["causal_flip"] is None  # no cutouts given, automatic ones off
    assert result["concepts"]["probes"]["count"] == 90
    html = (tmp_path / "out" / "index.html").read_text()
    assert "pasting the concept into probe images" in html and "causal flip (control)" in html


def test_probes_over_the_limit_are_a_seeded_sample_not_the_first_files(tmp_path):
    from audit.images import save_png

    for cls in ("a", "b", "c"):  # files named by class: the first 6 by name would all be "a"
        for i in range(6):
            save_png(tmp_path / f"{cls}_{i}.png", np.full((8, 8, 3), {"a": 0.0, "b": 0.5, "c": 1.0}[cls]))
    picked = load_folder(tmp_path, (8, 8), 3, "probes", limit=6, sample_seed=0)
    again = load_folder(tmp_path, (8, 8), 3, "probes", limit=6, sample_seed=0)
    assert len(picked) == 6 and np.array_equal(picked, again)
    assert len({float(v) for v in picked[:, 0, 0, 0]}) > 1  # more than one class


def test_the_shift_is_bounded_and_ignores_a_paste_that_only_lowers_the_probes_own_class():
    from audit.evidence.causal import class_shifts

    rise = np.array([[-4.0, 2.0, 2.0, 2.0], [-4.0, 2.0, 2.0, 5.0]])  # top-1 class 0 drops: all others rise
    shift = class_shifts(rise, np.array([0, 0]), spread=2.0)
    assert np.allclose(shift[0, 1:], 0.0)  # a rise shared by every other class is about none of them
    assert shift[1, 3] == pytest.approx(1.0)  # (5 - 2) / 2 = 1.5 spreads, capped at 1
    assert np.all(np.abs(shift) <= 1.0)


def test_the_arm_shifts_dumbbell_and_the_control_model_shifts_nothing_far(folders):
    s, control = _scores("shortcut", folders), _scores("control", folders)
    assert s.shift[0, 0] > 0.5 and np.all(np.abs(s.shift[:, :2]) <= 1)
    assert np.nanmax(control.shift) < 0.35  # below the warn threshold: the control model stays quiet
