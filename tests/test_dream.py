"""DeepDream: each capability does what a user relies on, on the real demo model."""

import json

import numpy as np
import pytest

from audit.visualize import objectives
from audit.config import ModelConfig
from audit.visualize.dream import DreamSettings, dream, octave_sizes, spread_layers, top_channels
from audit.images import load_image, save_png
from audit.visualize.penalties import total_variation
from audit.model.graph import activation_reader, feature_map_layers
from audit.model.load import load_model
from conftest import ASSETS, ROOT, run_cli

CLASSES = ("dumbbell", "barbell", "kettlebell", "ball", "racket", "bottle")
FAST = DreamSettings(octaves=2, octave_scale=1.5, steps=12, step_size=0.02, jitter=4, seed=0)


@pytest.fixture(scope="module")
def model():
    return load_model(ModelConfig(ASSETS / "models" / "demo_shortcut.keras", CLASSES, None, (0.0, 1.0), None, False))


@pytest.fixture(scope="module")
def photo():
    from audit.demo.drawing import scene

    return scene("ball", 5, with_arm=False)


def _value(model, objective, image):
    import tensorflow as tf

    acts, logits = activation_reader(model, objective.layers)(tf.constant(image[None]))
    return float(objective(acts, logits)[0])


@pytest.mark.parametrize("make", [
    lambda: objectives.layer_mean("features"),
    lambda: objectives.channels("conv2d_1", [3, 5]),
    lambda: objectives.neuron("features", 51),  # the unit most active at the centre of this photo
    lambda: objectives.class_logit(0, "dumbbell"),
    lambda: objectives.layer_mean("conv2d") + 0.5 * objectives.class_logit(4),
])
def test_dreaming_raises_the_chosen_objective(model, photo, make):
    objective = make()
    read = activation_reader(model, objective.layers)
    result = dream(read, objective, photo, (64, 64), FAST, progress=False)
    assert result.image.shape == photo.shape and 0 <= result.image.min() and result.image.max() <= 1
    assert _value(model, objective, result.image) > _value(model, objective, photo)
    assert all(end > start for start, end in zip(result.objective_start, result.objective_end))


def test_objectives_compose_without_changing_their_operands(model, photo):
    a, b = objectives.layer_mean("features"), objectives.class_logit(2)
    combined = a - 0.25 * b
    assert combined.layers == {"features"} and a.name == "mean(features)"
    expected = _value(model, a, photo) - 0.25 * _value(model, b, photo)
    assert _value(model, combined, photo) == pytest.approx(expected, rel=1e-4)


def test_octaves_set_the_size_schedule(model, photo):
    assert octave_sizes((64, 64), 3, 2.0) == [(16, 16), (32, 32), (64, 64)]
    objective = objectives.layer_mean("features")
    read = activation_reader(model, objective.layers)
    one = dream(read, objective, photo, (64, 64), DreamSettings(octaves=1, steps=4), progress=False)
    three = dream(read, objective, photo, (64, 64), DreamSettings(octaves=3, octave_scale=2.0, steps=4),
                  progress=False)
    assert one.sizes == [(64, 64)] and three.sizes == [(16, 16), (32, 32), (64, 64)]
    assert not np.allclose(one.image, three.image)


def test_images_larger_than_the_model_input_are_tiled(model, photo):
    big = np.tile(photo, (2, 3, 1))[:100, :150]
    objective = objectives.layer_mean("features")
    result = dream(activation_reader(model, objective.layers), objective, big, (64, 64), FAST, progress=False)
    assert result.image.shape == (100, 150, 3)
    assert result.objective_end[-1] > result.objective_start[-1]


@pytest.mark.slow
def test_tiles_in_groups_give_the_same_dream(model, photo):
    # a memory budget too small for all tiles at once sums the groups' gradients: same image
    big = np.tile(photo, (2, 3, 1))[:100, :150]  # 2 x 3 tiles of 64
    objective = objectives.layer_mean("features")
    read = activation_reader(model, objective.layers)
    together = dream(read, objective, big, (64, 64), FAST, progress=False)
    in_pairs = dream(read, objective, big, (64, 64), FAST, progress=False, tiles_per_call=2)
    assert np.abs(together.image - in_pairs.image).max() < 1e-4
    assert np.allclose(together.objective_end, in_pairs.objective_end, rtol=1e-4)


@pytest.mark.slow
def test_smoothing_lowers_total_variation(model, photo):
    # `smoothing` weighs the class visualizations' total variation (penalties.py) in the objective's units:
    # 0.003 of this layer's mean per full-contrast edge smooths the dream while the objective still climbs
    objective = objectives.layer_mean("conv2d_1")
    read = activation_reader(model, objective.layers)
    rough = dream(read, objective, photo, (64, 64), FAST, progress=False)
    smooth = dream(read, objective, photo, (64, 64), DreamSettings(**{**vars(FAST), "smoothing": 0.003}),
                   progress=False)
    assert float(total_variation(smooth.image[None])[0]) < 0.8 * float(total_variation(rough.image[None])[0])
    assert all(end > start for start, end in zip(smooth.objective_start, smooth.objective_end))


@pytest.mark.slow
def test_same_seed_same_dream(model, photo):
    objective = objectives.layer_mean("features")
    read = activation_reader(model, objective.layers)
    a = dream(read, objective, photo, (64, 64), FAST, progress=False)
    b = dream(read, objective, photo, (64, 64), FAST, progress=False)
    assert np.array_equal(a.image, b.image)


def test_guide_channels_are_the_ones_the_guide_fires(model):
    import keras

    from audit.demo.drawing import scene

    guide = scene("dumbbell", 7, with_arm=True)
    chosen, means = top_channels(activation_reader(model, ["features"]), "features", guide, (64, 64), k=5)
    probe = keras.Model(model.keras_model.inputs[0], model.keras_model.get_layer("features").output)
    direct = np.asarray(probe(guide[None])).mean(axis=(0, 1, 2))
    assert chosen == list(np.argsort(-direct)[:5])
    assert means == sorted(means, reverse=True)
    by_max, _ = top_channels(activation_reader(model, ["features"]), "features", guide, (64, 64), k=5, by="max")
    assert by_max == list(np.argsort(-np.asarray(probe(guide[None])).max(axis=(0, 1, 2)))[:5])
    # dreaming only those channels raises them on another image more than the rest of the layer
    photo = scene("bottle", 3, with_arm=False)
    objective = objectives.channels("features", chosen)
    result = dream(activation_reader(model, objective.layers), objective, photo, (64, 64), FAST, progress=False)
    before, after = (np.asarray(probe(x[None])).mean(axis=(0, 1, 2)) for x in (photo, result.image))
    others = [c for c in range(len(direct)) if c not in chosen]
    assert (after[chosen] - before[chosen]).mean() > (after[others] - before[others]).mean()


def test_layer_choice_helpers(model):
    layers = feature_map_layers(model)
    assert layers[0] == "conv2d" and layers[-1] == "features"
    picked = spread_layers(layers, 3)
    assert picked[0] == layers[0] and picked[-1] == layers[-1] and len(picked) == 3


def test_gallery_layers_on_the_demo_are_its_four_relu_convolutions(model):
    from audit.flows.dream import gallery_layers

    # every conv has its ReLU built in; with just `count` candidates none is left out
    assert gallery_layers(model, 4) == ["conv2d", "conv2d_1", "conv2d_2", "features"]
    assert gallery_layers(model, 3) == ["conv2d_1", "conv2d_2", "features"]  # more to choose from: no stem


@pytest.mark.slow
def test_dream_cli_with_a_config_file(tmp_path, photo):
    from audit.demo.drawing import scene

    save_png(tmp_path / "photo.png", photo)
    save_png(tmp_path / "guide.png", scene("dumbbell", 7, with_arm=True))
    (tmp_path / "dream.yaml").write_text(f"""
model: {{path: {ASSETS / 'models' / 'demo_shortcut.keras'}, classes_file: {ASSETS / 'models' / 'classes.txt'},
        input_range: [0, 1]}}
dream:
  input: photo.png
  size: [96, 128]
  objective:
    - {{layer: conv2d_2}}
    - {{class: dumbbell, weight: 0.1}}
  guide: {{image: guide.png, layer: features, top_k: 4}}
  octaves: 2
  steps: 8
report: {{out: out}}
""")
    proc = run_cli("dream", tmp_path / "dream.yaml", "--quiet")
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tmp_path / "out" / "dream.json").read_text())
    assert record["kind"] == "dream" and len(record["guide"]["channels"]) == 4
    assert "mean(conv2d_2)" in record["objective"] and "logit(dumbbell)" in record["objective"]
    assert record["sizes"][-1] == [96, 128]
    assert load_image(tmp_path / "out" / "images" / "dream.png", 3, "x").shape == (96, 128, 3)
    html = (tmp_path / "out" / "index.html").read_text()
    assert "data:image/png;base64," in html and "http://" not in html and "https://" not in html


@pytest.mark.slow
def test_dream_cli_with_flags_and_bad_input(tmp_path):
    model = ASSETS / "models" / "demo_shortcut.keras"
    proc = run_cli("dream", "--model", model, "--layer", "features", "--channels", "1,2", "--octaves", "2",
                   "--octave-scale", "2", "--size", "80,96", "--steps", "4", "--out", tmp_path / "flags", "--quiet")
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tmp_path / "flags" / "dream.json").read_text())
    assert record["sizes"] == [[40, 48], [80, 96]] and record["objective"] == "features[1,2]"
    for bad, words in ((["--layer", "nope"], "no layer 'nope'"), (["--layer", "features", "--channels", "999"],
                                                                      "channel 999 does not exist")):
        proc = run_cli("dream", "--model", model, *bad, "--steps", "2", "--out", tmp_path / "bad")
        assert proc.returncode == 2, proc.stderr
        assert words in proc.stderr and "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "bad").exists()


def test_dream_flags_without_a_layer_say_which_flag_is_missing(tmp_path):
    model = ASSETS / "models" / "demo_shortcut.keras"
    for flags, words in (([], "say what to amplify: --layer NAME"), (["--guide", model], "--guide needs --layer")):
        proc = run_cli("dream", "--model", model, *flags, "--out", tmp_path / "d")
        assert proc.returncode == 2 and words in proc.stderr, proc.stderr
        assert "<command line>" not in proc.stderr and "objective" not in proc.stderr
    assert not (tmp_path / "d").exists()


@pytest.mark.slow
def test_dream_on_a_keras_application(tmp_path):
    (tmp_path / "d.yaml").write_text("""
model: {application: ResNet50, input_size: [64, 64]}
dream: {input: noise, objective: [{layer: conv3_block1_out}], octaves: 1, steps: 3}
report: {out: out}
""")
    proc = run_cli("dream", tmp_path / "d.yaml", "--quiet")
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tmp_path / "out" / "dream.json").read_text())
    assert record["objective_end"][0] > record["objective_start"][0]


def test_layer_gallery_in_the_audit_report():
    # the demo audit (run by the end-to-end tests too) carries a gallery from early to late layers
    from audit.config import load_config

    cfg = load_config(ROOT / "configs" / "demo.yaml")
    assert cfg.layer_gallery is not None and cfg.layer_gallery.layers is None and cfg.layer_gallery.count == 4
