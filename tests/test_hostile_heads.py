"""Hostile corpus: where a classifier's scores are. A softmax that is not the very last layer (the
trained network nested in a wrapper, layers after the softmax) is found and its logits read; an
output that cannot be read as logits is refused (exit 2, one line); a model's NaN logits stop the
run instead of reading as "not tested"."""

import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import run_cli
from hostile_helpers import CONCEPTS, DEMO_MODEL, assert_one_line, refused_untouched, tiny_config, write_yaml

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")
from keras import layers  # noqa: E402

from audit.config import ModelConfig  # noqa: E402
from audit.errors import UserError  # noqa: E402
from audit.model.load import load_model  # noqa: E402

CLASSES = ("dumbbell", "barbell", "kettlebell", "ball", "racket", "bottle")
SHAPE = (64, 64, 3)


def _demo():
    return keras.saving.load_model(DEMO_MODEL, compile=False)


def _logits_model(demo=None):
    """The demo network with a linear head (its pre-softmax logits), as a model of its own."""
    demo = demo or _demo()
    head = demo.get_layer("predictions")
    dense = layers.Dense(6, name="logits")
    model = keras.Model(demo.inputs[0], dense(head.input))
    dense.set_weights(head.get_weights())
    return model


def _wrapped(demo):
    inputs = keras.Input(SHAPE)
    return keras.Model(inputs, demo(inputs))


def _behind_preprocessing(demo):  # the deployed form: pixels in [0, 255], scaled by the wrapper
    return keras.Sequential([keras.Input(SHAPE), layers.Rescaling(1 / 255), demo])


def _layers_after_softmax(demo):
    inputs = keras.Input(SHAPE)
    x = layers.Activation("linear")(demo(inputs))
    x = layers.Reshape((6,))(layers.Dropout(0.5)(x))
    return keras.Model(inputs, layers.Rescaling(100.0, offset=1.0)(x))  # percentages (plus one)


def _softmax_outside(demo):  # a trained network giving logits, its softmax added by the wrapper
    return keras.Sequential([keras.Input(SHAPE), _logits_model(demo), layers.Softmax()])


def _softmax_op(demo):  # keras.ops in a functional graph: an op, not a layer
    logits = _logits_model(demo)
    return keras.Model(logits.inputs[0], keras.ops.softmax(logits.outputs[0]))


# (id, how to build from the demo network, the pixel range the result expects)
# the plain demo file's decisive moves under tiny_config (automatic cutouts), in points
PLAIN_MOVES = 32.86

READ_THROUGH = [
    ("functional-wrapper", _wrapped, (0.0, 1.0)),
    ("sequential-with-preprocessing", _behind_preprocessing, (0.0, 255.0)),
    ("layers-after-the-softmax", _layers_after_softmax, (0.0, 1.0)),
    ("softmax-added-by-the-wrapper", _softmax_outside, (0.0, 1.0)),
    ("softmax-op", _softmax_op, (0.0, 1.0)),
]


@pytest.mark.parametrize("build, input_range", [c[1:] for c in READ_THROUGH], ids=[c[0] for c in READ_THROUGH])
def test_the_logits_and_the_concept_layer_are_found_through_wrappers(tmp_path, build, input_range):
    from audit.evidence.discover.contributions import head as replayed_head
    from audit.model.graph import activation_reader, feature_map_layers

    build(_demo()).save(tmp_path / "m.keras")
    plain = load_model(ModelConfig(DEMO_MODEL, CLASSES, None, (0.0, 1.0), None, False))
    loaded = load_model(ModelConfig(tmp_path / "m.keras", CLASSES, None, input_range, None, False))
    x = np.random.default_rng(0).random((4, *SHAPE)).astype("float32")
    features, logits = loaded.forward(x)
    plain_features, plain_logits = plain.forward(x)
    assert np.allclose(logits.numpy(), plain_logits.numpy(), atol=1e-4)  # logits, not probabilities
    assert loaded.feature_layer == "features" and "features" in feature_map_layers(loaded)
    assert np.allclose(features.numpy(), plain_features.numpy(), atol=1e-4)  # not the input pixels
    read, read_logits = activation_reader(loaded, ["features"])(x)
    assert np.allclose(read["features"].numpy(), plain_features.numpy(), atol=1e-4)  # DeepDream, the gallery
    assert np.allclose(read_logits.numpy(), plain_logits.numpy(), atol=1e-4)
    assert np.allclose(replayed_head(loaded)(features).numpy(), plain_logits.numpy(), atol=1e-4)  # discovery
    lo, hi = input_range  # the pixel-range check scores values in the file's own range, through the wrapper
    scores = loaded.predict_model_input(lo + (hi - lo) * x)
    assert np.array_equal(np.asarray(scores).argmax(1), plain_logits.numpy().argmax(1))


@pytest.mark.slow
@pytest.mark.parametrize("build, input_range", [c[1:] for c in READ_THROUGH[:3]], ids=[c[0] for c in READ_THROUGH[:3]])
def test_a_wrapped_shortcut_model_fails_the_gate_like_the_plain_one(tmp_path, build, input_range):
    """The demo's shortcut network saved inside a wrapper or with layers after its softmax was
    audited on its probabilities with the input pixels as its concept layer, where no cutout is
    found: no causal test, and the run passed (exit 0) where the plain file fails (exit 1)."""
    build(_demo()).save(tmp_path / "wrapped.keras")
    cfg = tiny_config(tmp_path, tmp_path / "wrapped.keras", model={"input_range": list(input_range)},
                      concepts={"probes": str(CONCEPTS / "_probes")})  # cutouts found automatically
    cfg["gate"] = {}  # the default gate: observational evidence alone warns at most
    proc = run_cli("run", write_yaml(tmp_path, cfg), "--quiet", "--no-history")
    assert proc.returncode == 1, proc.stdout + proc.stderr[-3000:]
    result = json.loads((tmp_path / "out" / "audit.json").read_text())
    assert [(f["class_name"], f["concept"]) for f in result["findings"] if f["level"] == "fail"] == [("dumbbell", "arm")]
    finding = result["findings"][0]  # the plain file's numbers (tiny settings, automatic cutouts)
    assert finding["decided_by"] == "causal_moves" and finding["decisive_value"] == pytest.approx(PLAIN_MOVES, abs=0.5)
    assert finding["cue_d"] == pytest.approx(1.69, abs=0.02)
    assert result["model"]["concept_layer"] == "features" and result["evidence"]["mode"] == "causal"
    assert result["model"]["logits_source"].startswith("pre-softmax output of layer 'predictions'")


def _per_class_rescaling(path):
    demo = _demo()
    keras.Model(demo.inputs[0], layers.Rescaling([1.0, 2, 3, 4, 5, 6])(demo.outputs[0])).save(path)


def _softmax_of_softmax(path):
    demo = _demo()
    keras.Model(demo.inputs[0], layers.Softmax()(demo.outputs[0])).save(path)


def _discretized(path):
    demo = _demo()
    head = layers.Discretization(bin_boundaries=[-1.0, 0.0, 1.0])
    keras.Model(demo.inputs[0], head(_logits_model(demo).outputs[0])).save(path)


# (id, how to make the model file, words of the one-line error)
REFUSED = [
    ("per-class-rescaling-after-softmax", _per_class_rescaling, ("per-class or non-positive factor",)),
    ("softmax-of-softmax", _softmax_of_softmax, ("gives probabilities", "cannot be undone")),
    ("discretization-head", _discretized, ("int", "not one score per class")),
]


@pytest.mark.slow
@pytest.mark.parametrize("make, words", [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_heads_that_cannot_be_read_as_logits_are_refused_at_load(tmp_path, make, words):
    """An integer output used to crash in the first compiled call (exit 3); probabilities whose
    softmax cannot be undone were audited as logits."""
    make(tmp_path / "m.keras")
    cfg = write_yaml(tmp_path, tiny_config(tmp_path, tmp_path / "m.keras"))
    refused_untouched(tmp_path, "run", cfg, words=("model.path", "m.keras", *words))


MAGENTA = np.array([1.0, 0.0, 1.0], np.float32)


def _nan_on_marker(path):
    """The demo network whose logits are NaN when the top-left pixel is magenta, and exactly its
    own logits otherwise (built from safe layers: exp(500) is infinite in float32, inf - inf NaN)."""
    demo = _demo()
    inputs = demo.inputs[0]
    flat = layers.Reshape((int(np.prod(SHAPE)),))(inputs)
    marker = layers.Dense(1, activation="relu", name="marker")
    spike = layers.Activation("exponential")(marker(flat))           # inf on the marker, else 1
    nan = layers.Dense(6, use_bias=False, name="spread")(layers.Subtract()([spike, spike]))  # NaN, else 0
    logits = layers.Add()([_logits_model(demo).outputs[0], nan])
    model = keras.Model(inputs, layers.Activation("softmax")(logits))
    kernel = np.zeros((int(np.prod(SHAPE)), 1), np.float32)
    kernel[:3, 0] = 1e5 * np.array([1.0, -1.0, 1.0])  # r - g + b of pixel (0, 0): 2 only for magenta
    marker.set_weights([kernel, np.array([-1.995e5], np.float32)])
    model.get_layer("spread").set_weights([np.ones((1, 6), np.float32)])
    model.save(path)
    return path


@pytest.mark.slow
def test_nan_logits_on_some_probes_stop_the_run_naming_them(tmp_path):
    """6 of 90 probes marked: the causal test's statistics were all NaN, read as "no causal test",
    and the run passed on observational evidence (exit 0) where the plain network fails."""
    from PIL import Image

    probes = tmp_path / "probes"
    shutil.copytree(CONCEPTS / "_probes", probes)
    marked = sorted(probes.iterdir())[::15]
    for path in marked:
        pixels = np.array(Image.open(path).convert("RGB"))
        pixels[0, 0] = (255, 0, 255)
        Image.fromarray(pixels).save(path)
    bank = {"arm": {"examples": str(CONCEPTS / "arm"), "cutouts": str(CONCEPTS / "arm_cutouts"), "allowed_in": []},
            "watermark": {"examples": str(CONCEPTS / "watermark"), "allowed_in": []}}
    cfg = tiny_config(tmp_path, _nan_on_marker(tmp_path / "nan.keras"),
                      concepts={"bank": bank, "probes": str(probes)}, gate={"evidence": "both"})
    proc = run_cli("run", write_yaml(tmp_path, cfg), "--quiet", "--no-history")
    line = assert_one_line(proc, 2, "concepts.probes", f"{len(marked)} of 90 probe images", marked[0].name)
    assert "non-finite logits" in line and not (tmp_path / "out").exists()


def test_nan_logits_on_pastes_fail_closed(tmp_path):
    """Finite probes, NaN only once a paste puts the marker in: the causal and in-class tests used
    to come back NaN, which the gate reads as "not tested"."""
    from audit.evidence.causal import causal_scores
    from audit.evidence.inclass import inclass_scores

    model = load_model(ModelConfig(_nan_on_marker(tmp_path / "nan.keras"), CLASSES, None, (0.0, 1.0), None, False))
    rng = np.random.default_rng(0)
    probes = (0.5 * rng.random((30, *SHAPE))).astype("float32")  # r - g + b < 1.5: never the marker
    negatives = (0.5 * rng.random((10, *SHAPE))).astype("float32")
    cut = np.zeros((4, *SHAPE[:2], 4), np.float32)
    cut[:, :8, :8, :3], cut[:, :8, :8, 3] = MAGENTA, 1.0  # a magenta corner: every concept paste is NaN
    with pytest.raises(UserError, match=r"non-finite logits .* on 60 of 60 pastes of concept 'arm'"):
        causal_scores(model, [cut], probes, negatives, np.arange(6), 0, concepts=["arm"])
    _, clean = model.forward(probes)
    labels = clean.numpy().argmax(1)  # every probe its own class's: the in-class test pastes into all
    with pytest.raises(UserError, match=r"non-finite logits .* pastes of concept 'arm' into the classes' own"):
        inclass_scores(model, [cut], probes, labels, negatives, np.arange(6), 0, concepts=["arm"])


def test_nan_logits_in_discoverys_removal_test_fail_closed(tmp_path):
    """The removal test read predictions by argmax, which takes a NaN row for the class of its first
    NaN: filled regions that made the logits NaN read as a pattern kept by class 0 (kept 1.0) and
    removed from every other class, silently; with `discover.warn` or `fail` kept decides the level."""
    from audit.evidence.discover.run import Discovery, removal_test

    model = load_model(ModelConfig(_nan_on_marker(tmp_path / "nan.keras"), CLASSES, None, (0.0, 1.0), None, False))
    rng = np.random.default_rng(0)
    probes = (0.5 * rng.random((30, *SHAPE))).astype("float32")  # never the marker
    labels = model.forward(probes)[1].numpy().argmax(1)
    own = probes[labels == labels[0]][:4]
    alpha = np.zeros((len(own), *SHAPE[:2], 1), np.float32)
    alpha[:, :8, :8] = 1.0  # the pattern's region: the top-left corner
    pattern = Discovery(int(labels[0]), 1, 0.5, own, alpha[..., 0], np.ones(len(own)),
                        np.concatenate([own, alpha], -1), float("nan"), np.zeros((1, 1, 1)), np.zeros(1))
    negatives = np.broadcast_to(MAGENTA, (10, *SHAPE)).copy()  # the fill puts the marker in: NaN logits
    with pytest.raises(UserError, match=r"non-finite logits .* on 4 of 4 images discovered pattern 1 of .* "
                                        r"filled with an unrelated image \(removal test\)"):
        removal_test(model, [pattern], probes, labels, negatives, 0, 32)


def test_the_evidence_statement_says_why_no_check_was_tested():
    """Cutouts given but no gated check tested is not "no concept has cutouts"."""
    from audit.flows.record import evidence_statement

    cfg = SimpleNamespace(gate=SimpleNamespace(observational_can_fail=True),
                          concepts=SimpleNamespace(probes="probes"))
    checks = [{"level": "pass", "decided_by": "observational"}]
    assert "no concept has cutouts" in evidence_statement(checks, cfg, has_cutouts=False)["statement"]
    assert "no concept has cutouts" not in evidence_statement(checks, cfg, has_cutouts=True)["statement"]
