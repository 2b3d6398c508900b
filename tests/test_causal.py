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


def test_the_planted_shortcut_moves_decisions_and_the_look_alike_does_not(folders):
    s = _scores("shortcut", folders)
    arm, stripes = 0, 1
    dumbbell, racket = 0, 4
    plain, hard = s.sets["probes"], s.sets["hard"]
    # the arm moves other objects into dumbbell, well beyond a same-shaped patch of a random image
    assert plain.moves[dumbbell, arm] > 10 and hard.moves[dumbbell, arm] > 20
    assert plain.moves[dumbbell, arm] == pytest.approx(plain.into[dumbbell, arm] - plain.into_control[dumbbell, arm])
    assert plain.low[dumbbell, arm] < plain.moves[dumbbell, arm] < plain.high[dumbbell, arm]
    assert plain.p[dumbbell, arm] < 1e-4 and hard.p[dumbbell, arm] < 1e-6
    # stripes look like a racket's strings to the model (cue d 1.2) but move no decision to racket
    assert abs(plain.moves[racket, stripes]) < 3 and abs(hard.moves[racket, stripes]) < 5
    assert np.all(np.isnan(plain.moves[:, 2])) and np.all(plain.counted[:, 2] != plain.counted[:, 2])  # no test


def test_hard_probes_are_less_confident_than_the_probes_and_made_from_them(folders):
    from audit.evidence.hard import hard_images

    model = load_model(ModelConfig(ASSETS / "models" / "demo_shortcut.keras", CLASSES, None, (0.0, 1.0), None, False))
    from audit.evidence.causal import log_probs

    probes = folders["probes"]
    hard = hard_images(probes, np.arange(len(probes)), seed=0)
    assert hard.shape == probes.shape and hard.min() >= -1e-6 and hard.max() <= 1 + 1e-6
    # one batch or another: each probe's hard copy is the same
    assert np.allclose(hard_images(probes, np.array([5, 2]), seed=0), hard[[5, 2]])
    confidence = [np.exp(log_probs(model, x).max(1)).mean() for x in (probes, hard)]
    assert confidence[1] < confidence[0] - 0.05


def test_the_control_model_is_not_moved_by_the_arm(folders):
    s = _scores("control", folders)
    assert np.nanmax(s.sets["probes"].moves[:, 0]) < 5 and np.nanmax(s.sets["hard"].moves[:, 0]) < 10


def test_same_seed_same_numbers(folders):
    a, b = _scores("shortcut", folders, seed=3), _scores("shortcut", folders, seed=3)
    for name in ("probes", "hard"):
        assert np.array_equal(a.sets[name].moves, b.sets[name].moves, equal_nan=True)
        assert np.array_equal(a.sets[name].p, b.sets[name].p, equal_nan=True)


def test_a_smaller_memory_budget_gives_the_same_numbers(folders):
    # batches sized from the budget (pasted a batch at a time) must not change the statistics
    big, small = _scores("shortcut", folders, batch_size=64), _scores("shortcut", folders, batch_size=7)
    for name in ("probes", "hard"):
        assert np.array_equal(big.sets[name].into, small.sets[name].into, equal_nan=True)
        assert np.array_equal(big.sets[name].into_control, small.sets[name].into_control, equal_nan=True)
        assert np.allclose(big.sets[name].log_odds, small.sets[name].log_odds, atol=1e-5, equal_nan=True)
        assert np.allclose(big.sets[name].p, small.sets[name].p, rtol=1e-3, atol=1e-12, equal_nan=True)


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
    assert arm["level"] == "fail" and arm["decided_by"] == "causal_moves" and "moves" in arm["reason"]
    decisive = arm["causal"][arm["decided_on"]]
    assert decisive["moves"] >= 15 and decisive["into"] > decisive["into_control"]
    assert arm["decisive_value"] == decisive["moves"]
    # the look-alike moves no decision: it never fails (it may warn where the model responds to it)
    assert checks[("racket", "stripes")]["level"] != "fail"
    assert checks[("racket", "stripes")]["decided_by"] in ("causal_moves", "causal_responds")
    assert checks[("dumbbell", "watermark")]["causal"] is None  # no cutouts given, automatic ones off
    assert result["concepts"]["probes"]["count"] == 90
    html = (tmp_path / "out" / "index.html").read_text()
    assert "of hard probes (" in html and "moves, probes / hard (points)" in html


def test_probes_over_the_limit_are_a_seeded_sample_not_the_first_files(tmp_path):
    from audit.images import save_png

    for cls in ("a", "b", "c"):  # files named by class: the first 6 by name would all be "a"
        for i in range(6):
            save_png(tmp_path / f"{cls}_{i}.png", np.full((8, 8, 3), {"a": 0.0, "b": 0.5, "c": 1.0}[cls]))
    picked = load_folder(tmp_path, (8, 8), 3, "probes", limit=6, sample_seed=0)
    again = load_folder(tmp_path, (8, 8), 3, "probes", limit=6, sample_seed=0)
    assert len(picked) == 6 and np.array_equal(picked, again)
    assert len({float(v) for v in picked[:, 0, 0, 0]}) > 1  # more than one class


def test_a_rise_shared_by_every_other_class_is_about_none_of_them():
    from audit.evidence.causal import beyond_others

    # the probe's own class 0 drops and every other class rises alike (log-probabilities of 4 classes)
    control = np.log(np.array([[0.97, 0.01, 0.01, 0.01]]))
    concept = np.log(np.array([[0.70, 0.10, 0.10, 0.10]]))
    beyond = beyond_others(concept, control, np.array([0]))
    assert np.allclose(beyond[0, 1:], 0.0, atol=1e-9)


def test_no_response_is_reported_when_the_class_probability_falls():
    from audit.config.gate import CAUSAL_WARN

    falls = {"moves": 0.0, "log_odds": 0.9, "log_odds_beyond": 0.9, "prob_rise": -0.4}
    assert CAUSAL_WARN.reached(falls, 1.0, 1e-9) is None
    assert CAUSAL_WARN.reached({**falls, "prob_rise": 0.2}, 1.0, 1e-9) == "responds"
    # a rise beyond the other classes is not enough when the class's own log-odds barely move
    assert CAUSAL_WARN.reached({**falls, "log_odds": 0.05, "prob_rise": 0.2}, 1.0, 1e-9) is None
