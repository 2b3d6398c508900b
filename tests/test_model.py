"""Model intake on real Keras models saved in every supported format."""

import numpy as np
import pytest

from audit.config import ModelConfig
from audit.errors import UserError
from audit.model.load import load_model
from conftest import run_cli, write_config

keras = pytest.importorskip("keras")
from keras import layers  # noqa: E402

CLASSES = ("a", "b", "c")


def _cnn(final="dense-softmax", size=16):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((size, size, 3))
    x = layers.Conv2D(4, 3, activation="relu", name="conv1")(inputs)
    x = layers.Conv2D(6, 3, activation="relu", name="conv2")(x)
    x = layers.GlobalAveragePooling2D()(x)
    if final == "dense-softmax":
        out = layers.Dense(3, activation="softmax", name="head")(x)
    elif final == "softmax-layer":
        out = layers.Softmax()(layers.Dense(3, name="head")(x))
    elif final == "activation-layer":
        out = layers.Activation("softmax")(layers.Dense(3, name="head")(x))
    else:
        out = layers.Dense(3, name="head")(x)
    return keras.Model(inputs, out)


def _cfg(path, **kw):
    return ModelConfig(path=path, classes=kw.pop("classes", CLASSES), classes_file=None,
                       input_range=kw.pop("input_range", (0.0, 1.0)), preprocessing=kw.pop("preprocessing", None),
                       trust_code=kw.pop("trust_code", False))


def _reference_logits(model, x):
    head = model.get_layer("head")
    pen = keras.Model(model.inputs[0], head.input)(x)
    return np.asarray(pen) @ np.asarray(head.kernel) + np.asarray(head.bias)


@pytest.mark.parametrize("final", ["dense-softmax", "softmax-layer", "activation-layer", "linear"])
@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_logits_are_pre_softmax_in_every_file_format(tmp_path, final, suffix):
    model = _cnn(final)
    path = tmp_path / f"m{suffix}"
    model.save(path)
    loaded = load_model(_cfg(path))
    x = np.random.default_rng(0).random((5, 16, 16, 3)).astype("float32")
    feats, logits = loaded.forward(x)
    assert np.allclose(logits.numpy(), _reference_logits(model, x), atol=1e-4)
    assert loaded.feature_layer == "conv2" and tuple(feats.shape) == (5, 12, 12, 6)
    assert loaded.logits_source.startswith("raw output") == (final == "linear")
    assert loaded.sha256 and loaded.input_shape == (16, 16, 3)


def test_savedmodel_folder_uses_log_probabilities(tmp_path):
    model = _cnn("dense-softmax")
    model.export(tmp_path / "sm", verbose=False)
    loaded = load_model(_cfg(tmp_path / "sm", trust_code=True))
    x = np.random.default_rng(0).random((4, 16, 16, 3)).astype("float32")
    _, logits = loaded.forward(x)
    ref = _reference_logits(model, x)
    # log-softmax differs from the logits by a per-image constant
    diff = logits.numpy() - ref
    assert np.allclose(diff, diff[:, :1], atol=1e-3)
    assert "log" in loaded.logits_source


def test_input_range_and_preprocessing_map_unit_pixels():
    from audit.model.load import pixel_transform

    x = np.array([0.0, 0.5, 1.0], dtype="float32")
    assert np.allclose(pixel_transform(_cfg(None, input_range=(0.0, 255.0)))(x), [0, 127.5, 255])
    assert np.allclose(pixel_transform(_cfg(None, input_range=None, preprocessing="mobilenet_v2"))(x), [-1, 0, 1])


def test_class_count_mismatch_is_a_user_error(tmp_path):
    path = tmp_path / "m.keras"
    _cnn().save(path)
    with pytest.raises(UserError, match="3 outputs"):
        load_model(_cfg(path, classes=("a", "b")))


def test_named_concept_layer_and_unknown_layer(tmp_path):
    path = tmp_path / "m.keras"
    _cnn().save(path)
    assert load_model(_cfg(path), layer="conv1").feature_layer == "conv1"
    with pytest.raises(UserError, match="no layer 'convX'"):
        load_model(_cfg(path), layer="convX")


def _lambda_model(path, raise_at_call=False):
    inputs = keras.Input((8, 8, 3))
    fn = (lambda t: t / 0 + np.array("boom")) if raise_at_call else (lambda t: t * 2.0)
    x = layers.Lambda(fn)(inputs)
    out = layers.Dense(3, activation="softmax")(layers.Flatten()(x))
    keras.Model(inputs, out).save(path)


def test_code_in_a_model_file_is_refused_unless_trusted(tmp_path):
    path = tmp_path / "lambda.keras"
    _lambda_model(path)
    with pytest.raises(UserError, match="trust_code"):
        load_model(_cfg(path))
    assert load_model(_cfg(path, trust_code=True)).input_shape == (8, 8, 3)


def test_unreadable_model_file_exits_2(tmp_path):
    bogus = tmp_path / "broken.keras"
    bogus.write_bytes(b"this is not a zip file")
    cfg = write_config(tmp_path / "c.yaml", bogus, tmp_path / "out")
    proc = run_cli("run", cfg)
    assert proc.returncode == 2, proc.stderr
    assert "model.path" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()
