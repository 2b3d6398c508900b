"""The labelled probes' sanity check: a wrong class order or pixel range gives a confident wrong
verdict, so it stops the run with the fix; a model that is simply bad goes on with a note."""

import numpy as np
import pytest

from audit.errors import UserError
from audit.model.input_range import check_probe_predictions, class_order_fit

CLASSES = ("ball", "barbell", "bottle", "dumbbell", "kettlebell", "racket")


def test_the_matching_of_names_to_outputs_is_found():
    labels = np.repeat(np.arange(6), 10)
    true_order = np.array([3, 1, 5, 0, 2, 4])  # label k is the model's output true_order[k]
    predicted = true_order[labels]
    predicted[::10] = 1  # a few mistakes
    order, acc = class_order_fit(labels, predicted, 6)
    assert list(order) == list(true_order) and acc == pytest.approx(0.9, abs=0.02)


def test_names_in_another_order_stop_the_run_with_the_order_that_fits():
    labels = np.repeat(np.arange(6), 10)
    predicted = np.array([3, 1, 5, 0, 2, 4])[labels]
    with pytest.raises(UserError) as err:
        check_probe_predictions(None, np.zeros((60, 4, 4, 3)), labels, CLASSES, None, predicted, 1 / 6)
    msg = str(err.value)
    assert msg.startswith("model.classes:") and "17% of the labelled probes right" in msg
    # output 0 is what the config calls `dumbbell` (its probes are predicted as output 0), and so on
    assert "[dumbbell, barbell, kettlebell, ball, racket, bottle]" in msg


def test_a_model_that_is_just_near_chance_goes_on_with_a_note():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(6), 30)
    predicted = rng.integers(0, 6, len(labels))  # no structure: no order or range makes it right
    note = check_probe_predictions(None, np.zeros((180, 4, 4, 3)), labels, CLASSES, None, predicted, 0.2)
    assert note is not None and "near chance" in note


def test_a_model_that_is_right_on_its_probes_passes_silently():
    labels = np.repeat(np.arange(6), 10)
    assert check_probe_predictions(None, np.zeros((60, 4, 4, 3)), labels, CLASSES, None, labels.copy(), 1 / 6) is None
