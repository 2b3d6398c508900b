"""The in-class test: the concept pasted into the class's own probe images (class sub-folders),
against the control paste of the same masks."""

import numpy as np
import pytest

from audit.config import ModelConfig
from audit.demo.build import write_validation
from audit.images import load_folder
from audit.evidence.causal import log_odds
from audit.evidence.inclass import inclass_scores
from audit.model.load import load_model
from conftest import ASSETS

CLASSES = ("dumbbell", "barbell", "kettlebell", "ball", "racket", "bottle")
CONCEPTS = ASSETS / "concepts"


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    size = (64, 64)
    out = {"negatives": load_folder(CONCEPTS / "_random", size, 3, "negatives"),
           **{c: load_folder(CONCEPTS / f"{c}_cutouts", size, 3, c, alpha=True) for c in ("arm", "stripes", "watermark")}}
    for kind in ("shortcut", "control"):  # validation samples drawn like each model's training set
        root = write_validation(tmp_path_factory.mktemp(kind), kind, per_class=20)
        images = [load_folder(root / c, size, 3, c) for c in CLASSES]
        out[kind] = (np.concatenate(images), np.repeat(np.arange(6), [len(x) for x in images]))
    return out


def _scores(kind, folders, seed=0, batch_size=64):
    model = load_model(ModelConfig(ASSETS / "models" / f"demo_{kind}.keras", CLASSES, None, (0.0, 1.0), None, False))
    probes, labels = folders[kind]
    cutouts = [folders["arm"], folders["stripes"], folders["watermark"]]
    return inclass_scores(model, cutouts, probes, labels, folders["negatives"], np.arange(6), seed,
                          batch_size=batch_size)


def test_the_arm_the_shortcut_model_needs_for_dumbbell_moves_its_own_hard_probes(folders):
    s = _scores("shortcut", folders)
    probes, hard = s.sets["probes"], s.sets["hard"]
    assert probes.counted[0, 0] == 20  # every dumbbell probe, seen as dumbbell or not
    # 95% of them already show an arm, so a pasted second arm moves few of the plain ones; on the hard
    # copies (a third of the arm occluded, blended, cut) the arm holds many more in the class than the control
    assert hard.moves[0, 0] > 15 and hard.p[0, 0] < 0.01 and hard.moves[0, 0] == np.nanmax(hard.moves[0])
    assert np.all((probes.moves >= -100) & (probes.moves <= 100))


def test_the_control_model_trained_with_arms_everywhere_is_not_flagged(folders):
    s = _scores("control", folders)
    for m in s.sets.values():  # no check reaches the fail rule (12 points, p 0.01) even before Holm
        assert not np.any((m.moves >= 12) & (m.p <= 0.01)), np.round(m.moves, 1)


@pytest.mark.slow
def test_same_seed_same_numbers_at_any_memory_budget(folders):
    a, b = _scores("shortcut", folders, seed=3), _scores("shortcut", folders, seed=3, batch_size=7)
    for name in ("probes", "hard"):
        assert np.array_equal(a.sets[name].moves, b.sets[name].moves, equal_nan=True)
        assert np.allclose(a.sets[name].log_odds, b.sets[name].log_odds, atol=1e-5, equal_nan=True)


def test_log_odds_stay_finite_for_certain_predictions():
    lp = np.log(np.array([1.0, 1 - 1e-12, 0.5, 1e-300]))
    out = log_odds(lp)
    assert np.all(np.isfinite(out)) and out[0] > out[1] > out[2] > out[3]
    assert out[2] == pytest.approx(0.0, abs=1e-12)


def test_a_finding_the_in_class_test_decided_shows_the_class_s_own_images(folders, tmp_path):
    from audit.evidence.examples import finding_examples
    from audit.images import load_image
    from audit.inputs.bank import ConceptSet, InputBank
    from audit.inputs.probes import ProbeSet
    from audit.report.images import write_causal_examples

    model = load_model(ModelConfig(ASSETS / "models" / "demo_shortcut.keras", CLASSES, None, (0.0, 1.0), None, False))
    probes, labels = folders["shortcut"]
    cutouts = [folders["arm"], folders["stripes"], folders["watermark"]]
    s = inclass_scores(model, cutouts, probes, labels, folders["negatives"], np.arange(6), 0)
    check = {"class_name": "dumbbell", "concept": "arm", "level": "fail", "decided_by": "inclass_moves",
             "decided_on": "probes", "decisive_value": float(s.sets["probes"].moves[0, 0])}
    inputs = InputBank(folders["negatives"], [ConceptSet(name, folders[name], ()) for name in ("arm", "stripes",
                                                                                               "watermark")],
                       cutouts, ProbeSet(probes, labels, "class_folders"))
    [shown] = finding_examples(model, [check], inputs, cutouts, None, s, np.arange(6), 0, "mask", 64)
    assert shown.own is True and len(shown.pastes.before) == 3
    [written] = write_causal_examples(tmp_path, [(shown.class_index, shown.concept, shown.pastes)])
    dumbbells = probes[labels == 0]
    for ex in written:
        shown = load_image(tmp_path / ex["probe"], 3, "probe")
        assert np.abs(dumbbells - shown).max(axis=(1, 2, 3)).min() < 1 / 255 + 1e-6  # one of the class's own
        assert ex["p_concept"] > ex["p_control"]
