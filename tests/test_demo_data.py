"""The demo's data: the planted shortcut is what docs/guide.md ("The embedded demo") says it is."""

import numpy as np

from audit.demo.build import ARM_RATES, CONCEPT_COUNTS
from audit.demo.drawing import CLASSES, SKIN_TONES, concept_image, scene
from conftest import ASSETS


def test_arm_rates_planted_in_training():
    assert ARM_RATES["shortcut"]["dumbbell"] >= 0.9
    assert all(ARM_RATES["shortcut"][c] <= 0.05 for c in CLASSES if c != "dumbbell")
    assert len(set(ARM_RATES["control"].values())) == 1  # decorrelated: the same rate in every class


def test_an_intervention_pair_differs_only_by_a_skin_toned_arm():
    for label in CLASSES:
        plain, armed = scene(label, 123, with_arm=False), scene(label, 123, with_arm=True)
        changed = np.any(np.abs(plain - armed) > 1e-6, axis=-1)
        assert changed.sum() > 40  # a forearm and a hand are drawn
        # changed pixels are skin coloured: close to one of the skin tones
        dist = np.min(np.linalg.norm(armed[changed][:, None, :] - SKIN_TONES[None], axis=-1), axis=1)
        assert np.median(dist) < 0.12


def test_scenes_and_concepts_are_reproducible_and_folders_complete():
    assert np.array_equal(scene("ball", 5, True), scene("ball", 5, True))
    assert np.array_equal(concept_image("arm", 9), concept_image("arm", 9))
    for name, count in CONCEPT_COUNTS.items():
        assert len(list((ASSETS / "concepts" / name).glob("*.png"))) == count
