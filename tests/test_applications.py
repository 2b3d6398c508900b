"""A real keras.applications architecture (random weights) through the whole CLI."""

import json

import pytest

from conftest import ASSETS, run_cli

keras = pytest.importorskip("keras")


@pytest.mark.slow
def test_resnet50_application_with_1000_classes_and_a_classes_file(tmp_path):
    # ResNet50 rather than MobileNetV2: with random weights MobileNet's activations vanish (~1e-11)
    (tmp_path / "classes.txt").write_text("\n".join(f"class_{i}" for i in range(1000)) + "\n")
    (tmp_path / "audit.yaml").write_text(f"""
model:
  application: ResNet50      # random weights; its own preprocessing (resnet50)
  input_size: [96, 96]
  classes_file: classes.txt
visualize:
  classes: [class_0, class_1, class_999]
  restarts: 2
  steps: 8
  # raw mode: 8 steps under random views of a random-weights network do not always climb
  parameterization: pixels
  transforms: none
concepts:
  negatives: {ASSETS / 'concepts' / '_random'}
  max_examples: 24
  bank:
    arm: {{examples: {ASSETS / 'concepts' / 'arm'}, allowed_in: [class_1]}}
report:
  out: out
""")
    proc = run_cli("run", tmp_path / "audit.yaml", "--quiet")
    assert proc.returncode in (0, 1), proc.stderr
    result = json.loads((tmp_path / "out" / "audit.json").read_text())
    assert result["model"]["logits_source"] == "pre-softmax output of layer 'predictions'"
    assert result["model"]["preprocessing"] == "resnet50"
    assert result["model"]["input_shape"] == [96, 96, 3]
    assert result["concepts"]["layer"] == "conv5_block3_out"  # last feature map before pooling
    assert [c["name"] for c in result["visualization"]["classes"]] == ["class_0", "class_1", "class_999"]
    levels = {(c["class_name"], c["concept"]): c["level"] for c in result["checks"]}
    assert levels[("class_1", "arm")] == "allowed" and len(levels) == 3
    for cls in result["visualization"]["classes"]:
        assert cls["logit_trace"][-1] > cls["logit_trace"][0]


@pytest.mark.slow
def test_grayscale_mlp_without_feature_maps(tmp_path):
    """Not every classifier is convolutional: the concept space falls back to the logits' input."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(32, activation="relu", name="hidden")(x)
    out = keras.layers.Dense(4, activation="softmax", name="probs")(x)
    keras.Model(inputs, out).save(tmp_path / "mlp.h5")
    (tmp_path / "audit.yaml").write_text(f"""
model: {{path: mlp.h5, classes: [a, b, c, d], input_range: [0, 255]}}
visualize: {{restarts: 2, steps: 20}}
concepts:
  negatives: {ASSETS / 'concepts' / '_random'}
  bank: {{stripes: {{examples: {ASSETS / 'concepts' / 'stripes'}}}}}
report: {{out: out}}
""")
    proc = run_cli("run", tmp_path / "audit.yaml", "--quiet")
    assert proc.returncode in (0, 1), proc.stderr
    result = json.loads((tmp_path / "out" / "audit.json").read_text())
    assert result["model"]["input_shape"] == [28, 28, 1]
    assert result["concepts"]["layer"] == "probs (its input)"  # the hidden layer is the concept space
    assert (tmp_path / "out" / result["visualization"]["classes"][0]["images"][0]).stat().st_size > 0


def test_application_with_a_local_weights_file(tmp_path):
    """Users with their own weights give `weights: FILE`; the model hash is the file's."""
    import numpy as np

    from audit.config import load_config
    from audit.errors import UserError
    from audit.model.load import file_sha256, load_model

    keras.utils.set_random_seed(1)
    mine = keras.applications.MobileNet(weights=None, input_shape=(64, 64, 3))
    mine.save_weights(tmp_path / "mine.weights.h5")
    config = f"""
model: {{application: MobileNet, weights: mine.weights.h5, input_size: [64, 64]}}
concepts:
  negatives: {ASSETS / 'concepts' / '_random'}
  bank: {{arm: {{examples: {ASSETS / 'concepts' / 'arm'}}}}}
"""
    (tmp_path / "a.yaml").write_text(config)
    loaded = load_model(load_config(tmp_path / "a.yaml").model)
    assert loaded.sha256 == file_sha256(tmp_path / "mine.weights.h5")
    assert np.array_equal(loaded.keras_model.get_layer("conv1").kernel, mine.get_layer("conv1").kernel)
    keras.applications.MobileNet(weights=None, input_shape=(64, 64, 3), alpha=0.5).save_weights(
        tmp_path / "other.weights.h5")
    (tmp_path / "b.yaml").write_text(config.replace("mine.weights.h5", "other.weights.h5"))
    with pytest.raises(UserError, match="check the weights file matches"):
        load_model(load_config(tmp_path / "b.yaml").model)


def test_unknown_application_is_a_config_error(tmp_path):
    (tmp_path / "a.yaml").write_text(f"""
model: {{application: ResNet51}}
concepts:
  negatives: {ASSETS / 'concepts' / '_random'}
  bank: {{arm: {{examples: {ASSETS / 'concepts' / 'arm'}}}}}
""")
    proc = run_cli("validate", tmp_path / "a.yaml")
    assert proc.returncode == 2 and "did you mean `ResNet50`" in proc.stderr
