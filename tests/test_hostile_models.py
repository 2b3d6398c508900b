"""Hostile corpus: model files. A SavedModel is code; a single output is not silently a pass;
files that inflate, hide ops or have the wrong shape are refused with one line (exit 2)."""

import json
import os
import zipfile

import numpy as np
import pytest

from conftest import run_cli
from hostile_helpers import DEMO_MODEL, no_staging_left, refused_untouched, tiny_config, write_yaml

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")
from keras import layers  # noqa: E402


def _tiny(path, head="softmax", units=3, size=16, inputs_shape=None):
    keras.utils.set_random_seed(0)
    inputs = keras.Input(inputs_shape or (size, size, 3))
    x = layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    if head == "map":  # a segmentation-like output: one score per pixel and class
        out = layers.Conv2D(units, 1, activation="softmax")(x)
    else:
        out = layers.Dense(units, activation=head, name="head")(layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, out)
    if str(path).endswith(("keras", "h5")):
        model.save(path)
    else:
        model.export(path, verbose=False)
    return path


def _writer_savedmodel(folder, victim):
    """A SavedModel whose serving function writes a file: a SavedModel is a program."""
    class Writer(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 16, 16, 3], tf.float32)])
        def serve(self, x):
            tf.io.write_file(str(victim), "written by the model's graph")
            return {"probabilities": tf.nn.softmax(tf.reduce_mean(x, [1, 2]))}
    module = Writer()
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})
    return folder


def test_a_savedmodel_that_writes_files_is_refused_without_trust_code(tmp_path):
    victim = tmp_path / "written_by_the_model.txt"
    model = _writer_savedmodel(tmp_path / "sm", victim)
    cfg = write_yaml(tmp_path, tiny_config(tmp_path, model, classes=["a", "b", "c"]))
    for command in ("validate", "run"):
        refused_untouched(tmp_path, command, cfg, words=("SavedModel", "trust_code: true"))
    assert not victim.exists()


@pytest.mark.slow
def test_an_exported_savedmodel_with_variables_is_audited_when_trusted(tmp_path):
    """`model.export()` output, trusted: its variables must outlive the loader (was exit 3)."""
    keras.saving.load_model(DEMO_MODEL).export(tmp_path / "demo_sm", verbose=False)
    cfg = tiny_config(tmp_path, tmp_path / "demo_sm", model={"trust_code": True})
    proc = run_cli("run", write_yaml(tmp_path, cfg), "--quiet", "--no-history")
    assert proc.returncode == 1, proc.stderr[-3000:]
    result = json.loads((tmp_path / "out" / "audit.json").read_text())
    assert [(f["class_name"], f["concept"]) for f in result["findings"]] == [("dumbbell", "arm")]
    assert result["findings"][0]["cue_d"] == pytest.approx(1.69, abs=0.02)  # same as the .keras file
    assert result["model"]["logits_source"] == "log of SavedModel probabilities"


@pytest.mark.slow
def test_a_binary_sigmoid_head_is_audited_as_the_logit_against_its_negation(tmp_path):
    """The demo network with one sigmoid unit z = dumbbell logit - mean of the others: the arm
    raises z, so the gate fails (it used to pass: cue d was 0 by construction)."""
    demo = keras.saving.load_model(DEMO_MODEL)
    head = demo.get_layer("predictions")
    kernel, bias = (np.asarray(w) for w in head.get_weights())
    z_kernel = kernel[:, :1] - kernel[:, 1:].mean(1, keepdims=True)
    z_bias = bias[:1] - bias[1:].mean(keepdims=True)
    features = keras.Model(demo.inputs[0], head.input)
    out = layers.Dense(1, activation="sigmoid", name="binary")(features.output)
    binary = keras.Model(features.inputs[0], out)
    binary.get_layer("binary").set_weights([z_kernel, z_bias])
    binary.save(tmp_path / "binary.keras")
    cfg = tiny_config(tmp_path, tmp_path / "binary.keras", classes=["other", "dumbbell"])
    proc = run_cli("run", write_yaml(tmp_path, cfg), "--quiet", "--no-history")
    assert proc.returncode == 1, proc.stderr[-3000:]
    result = json.loads((tmp_path / "out" / "audit.json").read_text())
    arm = {c["class_name"]: c for c in result["checks"] if c["concept"] == "arm"}
    assert arm["dumbbell"]["level"] == "fail" and arm["dumbbell"]["cue_d"] > 1.0
    assert arm["other"]["cue_d"] == pytest.approx(-arm["dumbbell"]["cue_d"], abs=1e-3)  # its negation
    assert "negation" in result["model"]["logits_source"]


@pytest.mark.slow
def test_a_savedmodel_needing_an_unregistered_op_exits_2(tmp_path):
    from tensorflow.core.protobuf import saved_model_pb2

    folder = _tiny(tmp_path / "sm")
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((folder / "saved_model.pb").read_bytes())
    renamed = 0
    for function in proto.meta_graphs[0].graph_def.library.function:
        for node in function.node_def:
            if node.op == "Relu":
                node.op, renamed = "AuditNoSuchOp", renamed + 1
    assert renamed
    (folder / "saved_model.pb").write_bytes(proto.SerializeToString())
    cfg = write_yaml(tmp_path, tiny_config(tmp_path, folder, classes=["a", "b", "c"], model={"trust_code": True}))
    refused_untouched(tmp_path, "run", cfg, words=("not registered", "TensorFlow ops"))


def _keras_bomb(path):
    """A valid-looking .keras whose config.json inflates to 80 MB from ~80 KB."""
    _tiny(path)
    with zipfile.ZipFile(path) as src:
        members = {name: src.read(name) for name in src.namelist()}
    config = json.loads(members["config.json"])
    config["padding"] = " " * (80 * 2**20)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for name, data in members.items():
            dst.writestr(name, json.dumps(config) if name == "config.json" else data)
    return path


def _aggregate_bomb(path):
    """A valid .keras plus 3 members of 100 MiB of zeros: each under the per-member floor (256 MiB),
    300 MiB together from well under 1 MB (Keras extracts every member)."""
    _tiny(path)
    zeros = bytes(100 * 2**20)
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as dst:
        for i in range(3):
            dst.writestr(f"padding_{i}.bin", zeros)
    return path


def _h5_bomb(path):
    import h5py

    _tiny(path)
    with h5py.File(path, "a") as f:  # a gzip dataset of zeros: 400 MB in memory, ~400 KB on disk
        f.create_dataset("padding", shape=(100, 1024, 1024), dtype="float32", compression="gzip",
                         chunks=(1, 1024, 1024), fillvalue=0.0)
    return path


def _fifo(path):
    os.mkfifo(path)
    return path


def _folder_without_pb(path):
    path.mkdir()
    (path / "variables").mkdir()
    return path


# (id, how to make the model file, classes, config changes, words of the one-line error)
LOAD_CASES = [
    ("sigmoid-one-name", lambda p: _tiny(p / "m.keras", "sigmoid", 1), ["cat"], {}, ("two class names",)),
    ("linear-single-output", lambda p: _tiny(p / "m.keras", "linear", 1), ["price"], {}, ("regression",)),
    ("relu-single-output", lambda p: _tiny(p / "m.keras", "relu", 1), ["a", "b"], {}, ("single relu output",)),
    ("per-pixel-output", lambda p: _tiny(p / "m.keras", "map"), ["a", "b", "c"], {}, ("not one score per class",)),
    ("unsized-input", lambda p: _tiny(p / "m.keras", inputs_shape=(None, None, 3)), ["a", "b", "c"], {},
     ("not a fixed-size image",)),
    ("class-count", lambda p: _tiny(p / "m.keras"), ["a", "b"], {}, ("2 names given", "3 outputs")),
]


@pytest.mark.slow
@pytest.mark.parametrize("make, classes, changes, words", [c[1:] for c in LOAD_CASES], ids=[c[0] for c in LOAD_CASES])
def test_model_files_refused_at_load(tmp_path, make, classes, changes, words):
    model = make(tmp_path)
    cfg = write_yaml(tmp_path, tiny_config(tmp_path, model, classes=classes, model=changes))
    refused_untouched(tmp_path, "run", cfg, words=("model.", *words))


# refused by the config check, before TensorFlow is even imported
CONFIG_CASES = [
    ("keras-config-bomb", lambda p: _keras_bomb(p / "bomb.keras"), {}, ("config.json inflates",)),
    ("h5-dataset-bomb", lambda p: _h5_bomb(p / "bomb.h5"), {}, ("inflates",)),
    ("keras-aggregate-bomb", lambda p: _aggregate_bomb(p / "bomb.keras"), {}, ("all", "files together", "inflates")),
    ("fifo-model", lambda p: _fifo(p / "m.keras"), {}, ("not a regular file",)),
    ("folder-without-pb", lambda p: _folder_without_pb(p / "sm"), {"trust_code": True}, ("without saved_model.pb",)),
    ("savedmodel-untrusted", lambda p: _tiny(p / "sm"), {}, ("SavedModel folder", "trust_code")),
    ("not-a-zip", lambda p: (p / "m.keras").write_bytes(b"PK\x03\x04 truncated") and p / "m.keras", {},
     ("cannot load",)),
    ("unknown-suffix", lambda p: (p / "m.onnx").write_bytes(b"\x08\x01") and p / "m.onnx", {}, ("unknown format",)),
]


@pytest.mark.parametrize("make, changes, words", [c[1:] for c in CONFIG_CASES], ids=[c[0] for c in CONFIG_CASES])
def test_model_files_refused_before_loading(tmp_path, make, changes, words):
    model = make(tmp_path)
    cfg = write_yaml(tmp_path, tiny_config(tmp_path, model, classes=["a", "b", "c"], model=changes))
    refused_untouched(tmp_path, "run", cfg, words=("model.path", *words), timeout=60)


@pytest.mark.slow
def test_a_lambda_layer_is_refused_without_trust_code(tmp_path):
    inputs = keras.Input((16, 16, 3))
    out = layers.Dense(3, activation="softmax")(layers.Flatten()(layers.Lambda(lambda t: t * 2.0)(inputs)))
    keras.Model(inputs, out).save(tmp_path / "lambda.keras")
    cfg = write_yaml(tmp_path, tiny_config(tmp_path, tmp_path / "lambda.keras", classes=["a", "b", "c"]))
    refused_untouched(tmp_path, "run", cfg, words=("Python code", "trust_code"))
    no_staging_left(tmp_path)


def test_savedmodel_forward_works_inside_a_compiled_function_after_gc(tmp_path):
    """The loaded SavedModel object is kept alive by forward itself (the optimizer calls it
    inside tf.function, where a dropped object's variables are already deleted)."""
    import gc

    from audit.config import ModelConfig
    from audit.model.load import load_model

    _tiny(tmp_path / "sm")
    loaded = load_model(ModelConfig(tmp_path / "sm", ("a", "b", "c"), None, (0.0, 1.0), None, True))
    gc.collect()
    logits = tf.function(lambda x: loaded.forward(x)[1])(tf.zeros((2, 16, 16, 3)))
    assert logits.shape == (2, 3) and np.all(np.isfinite(logits.numpy()))


def test_binary_heads_in_process(tmp_path):
    """Sigmoid and two-name linear single outputs become logits (-z/2, z/2): softmax = sigmoid."""
    from audit.config import ModelConfig
    from audit.model.load import load_model

    for head in ("sigmoid", "linear"):
        path = _tiny(tmp_path / f"{head}.keras", head, 1)
        loaded = load_model(ModelConfig(path, ("neg", "pos"), None, (0.0, 1.0), None, False))
        x = np.random.default_rng(0).random((4, 16, 16, 3)).astype("float32")
        _, logits = loaded.forward(x)
        model = keras.saving.load_model(path)
        z = keras.Model(model.inputs[0], model.get_layer("head").output)(x).numpy()
        if head == "sigmoid":
            z = np.log(z) - np.log1p(-z)
        assert np.allclose(logits.numpy(), np.concatenate([-z / 2, z / 2], 1), atol=1e-4)
        assert loaded.classes == ("neg", "pos") and loaded.binary_head
