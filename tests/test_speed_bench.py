"""The speed benchmark's FLOP count (used for its GFLOP/s column) matches the arithmetic."""

import sys

import pytest

from audit.config import ModelConfig
from audit.model.load import load_model
from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks" / "speed"))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    import keras

    inp = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    out = keras.layers.Dense(5, activation="softmax")(keras.layers.Flatten()(x))
    path = tmp_path_factory.mktemp("m") / "tiny.keras"
    keras.Model(inp, out).save(path)
    return load_model(ModelConfig(path, None, None, (0.0, 1.0), None, False))


def test_forward_and_ascent_flops_match_the_multiply_adds(tiny):
    from bench import graph_flops

    conv = 8 * 8 * 4 * (3 * 3 * 3)  # multiply-adds per image
    dense = 8 * 8 * 4 * 5
    forward, step = graph_flops(tiny, (8, 8, 3))
    assert 2 * (conv + dense) <= forward <= 1.05 * 2 * (conv + dense)  # + bias adds
    # backward to the input costs about the forward's multiply-adds again; weight gradients
    # (which the ascent never needs) would push it to ~3x
    assert 1.75 * forward <= step <= 2.1 * forward
