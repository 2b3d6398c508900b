"""The visualization engine on the real demo model."""

import dataclasses

import numpy as np
import pytest

from audit.config import ModelConfig, VisualizeConfig
from audit.model.load import load_model
from audit.visualize import objectives
from audit.visualize.optimize import chunk_size, class_visualizations, schedule, visualize_classes
from audit.visualize.recipe import from_config
from conftest import ASSETS

CLASSES = ("dumbbell", "barbell", "kettlebell", "ball", "racket", "bottle")
# the seed's raw mode: the loop's mechanics are fastest to check here
BASE = VisualizeConfig(classes=None, restarts=2, steps=24, learning_rate=0.05, seed=0, jitter=0,
                       total_variation=0.0, memory_budget_mb=2048, parameterization="pixels", transforms="none")
READABLE = dataclasses.replace(BASE, parameterization="fourier", transforms="standard", steps=48)


@pytest.fixture(scope="module")
def model():
    return load_model(ModelConfig(ASSETS / "models" / "demo_shortcut.keras", CLASSES, None, (0.0, 1.0), None, False))


def test_ascent_raises_each_class_logit_from_noise(model):
    vis = class_visualizations(model, BASE, progress=False)
    assert vis.images.shape == (6, 2, 64, 64, 3)
    assert vis.images.min() >= 0.0 and vis.images.max() <= 1.0
    trace = vis.target_logit_trace
    assert np.all(trace[..., -1] > trace[..., 0])
    # each class's visualization is classified as that class
    assert np.all(vis.logits.argmax(-1) == np.arange(6)[:, None])


@pytest.mark.slow
def test_same_seed_same_images_other_seed_other_images(model):
    a = class_visualizations(model, BASE, progress=False)
    b = class_visualizations(model, BASE, progress=False)
    c = class_visualizations(model, dataclasses.replace(BASE, seed=1), progress=False)
    assert np.array_equal(a.images, b.images)
    assert not np.allclose(a.images, c.images)


@pytest.mark.slow
def test_a_class_does_not_depend_on_which_other_classes_run_or_on_chunking(model):
    full = class_visualizations(model, BASE, progress=False)
    one = class_visualizations(model, dataclasses.replace(BASE, classes=("ball",)), progress=False)
    assert np.allclose(one.images[0], full.images[3], atol=1e-4)
    tiny_budget = dataclasses.replace(BASE, memory_budget_mb=1)  # forces many chunks
    assert chunk_size(model, 1, 12) < 12
    chunked = class_visualizations(model, tiny_budget, progress=False)
    assert np.allclose(chunked.images, full.images, atol=1e-4)


@pytest.mark.slow
def test_opt_in_regularization_changes_the_images_and_smooths_them(model):
    plain = class_visualizations(model, BASE, progress=False)
    smooth = class_visualizations(model, dataclasses.replace(BASE, total_variation=50.0, jitter=2), progress=False)

    assert _tv(smooth.images) < _tv(plain.images)


def _tv(images):
    return np.abs(np.diff(images, axis=2)).mean() + np.abs(np.diff(images, axis=3)).mean()


@pytest.mark.slow
def test_fourier_with_transforms_reaches_each_class_with_smoother_images(model):
    raw = class_visualizations(model, dataclasses.replace(BASE, steps=48), progress=False)
    readable = class_visualizations(model, READABLE, progress=False)
    assert readable.images.min() > 0.0 and readable.images.max() < 1.0
    assert np.all(readable.logits.argmax(-1) == np.arange(6)[:, None])
    assert np.all(readable.target_logit_trace[..., -1] > readable.target_logit_trace[..., 0])
    assert _tv(readable.images) < 0.5 * _tv(raw.images)


@pytest.mark.slow
def test_fourier_with_transforms_is_deterministic_and_independent_of_the_batch(model):
    cfg = dataclasses.replace(READABLE, steps=16)
    full = class_visualizations(model, cfg, progress=False)
    # restarts see their own random views: they do not collapse onto one image
    assert np.abs(full.images[:, 0] - full.images[:, 1]).mean() > 1e-3
    again = class_visualizations(model, cfg, progress=False)
    assert np.array_equal(full.images, again.images)
    one = class_visualizations(model, dataclasses.replace(cfg, classes=("racket",)), progress=False)
    assert np.allclose(one.images[0], full.images[4], atol=1e-4)
    chunked = class_visualizations(model, dataclasses.replace(cfg, memory_budget_mb=1), progress=False)
    assert np.allclose(chunked.images, full.images, atol=1e-4)
    other_seed = class_visualizations(model, dataclasses.replace(cfg, seed=1), progress=False)
    assert not np.allclose(other_seed.images, full.images, atol=1e-2)


def test_on_sync_sees_the_images_at_every_host_sync(model):
    seen = []
    vis = class_visualizations(model, dataclasses.replace(READABLE, steps=40, classes=("ball",)), progress=False,
                               on_sync=lambda done, jobs, images: seen.append((done, list(jobs), images.copy())))
    assert [d for d, _, _ in seen] == [16, 32, 40]
    assert all(jobs == [0, 1] for _, jobs, _ in seen)
    assert np.array_equal(seen[-1][2], vis.images[0])


def _target_probability(vis):
    p = np.exp(vis.logits - vis.logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    return np.take_along_axis(p, vis.class_indices[:, None, None], axis=-1)[..., 0]  # (C, R)


@pytest.mark.slow
def test_early_stop_freezes_each_image_at_the_first_step_it_reaches_the_probability(model):
    stop, steps = 0.99, 64
    early = class_visualizations(model, dataclasses.replace(BASE, steps=steps, stop_probability=stop), progress=False)
    full = class_visualizations(model, dataclasses.replace(BASE, steps=steps), progress=False)
    assert np.all(full.steps_taken == steps)
    assert np.all(early.steps_taken < steps)  # every demo class converges well before 64 steps
    assert np.all(_target_probability(early) >= stop)
    # per image: the frozen image is the one after exactly steps_taken steps, and one step fewer was not enough
    c, r = np.unravel_index(np.argmax(early.steps_taken), early.steps_taken.shape)
    n = int(early.steps_taken[c, r])
    assert n > 1
    one_class = dataclasses.replace(BASE, classes=(CLASSES[c],))
    exact = class_visualizations(model, dataclasses.replace(one_class, steps=n), progress=False)
    fewer = class_visualizations(model, dataclasses.replace(one_class, steps=n - 1), progress=False)
    assert np.allclose(exact.images[0, r], early.images[c, r], atol=1e-4)
    assert _target_probability(fewer)[0, r] < stop


@pytest.mark.slow
def test_the_loop_takes_any_objective_and_reads_each_images_own_target(model):
    # class images are the loop climbing target_logit() with the class indices as targets
    cfg = dataclasses.replace(READABLE, steps=16, classes=("ball", "racket"))
    recipe = from_config(cfg, model.input_shape)
    classes = class_visualizations(model, cfg, progress=False)
    direct = visualize_classes(model, objectives.target_logit(), recipe, [3, 4], schedule(cfg), progress=False)
    assert np.array_equal(direct.images, classes.images)
    # a layer's channel, read through the layer's own output: every image raises it, whatever its target
    channel = objectives.channels("conv2d_1", [5])
    vis = visualize_classes(model, channel, recipe, [0, 1], schedule(cfg), progress=False)
    assert np.all(vis.target_logit_trace[..., -1] > vis.target_logit_trace[..., 0])
    assert vis.logits.shape == (2, 2, 6)  # the model's class logits of the final images


@pytest.mark.slow
def test_a_pattern_picture_climbs_its_own_pattern_at_the_feature_map(model):
    import tensorflow as tf

    from audit.evidence.discover.maximize import pattern_scorer, visualize_patterns

    features = model.forward(tf.zeros((1,) + model.input_shape))[0]
    # three patterns on disjoint thirds of the channels (the gradient 1 everywhere: the score is their sum)
    grads = [np.ones(features.shape[1:], np.float32)] * 3
    comps = [(np.arange(features.shape[-1]) % 3 == p).astype(np.float32) for p in range(3)]
    cfg = dataclasses.replace(READABLE, steps=24)
    pictures = visualize_patterns(model, grads, comps, cfg, restarts=2)
    assert np.all(pictures.target_logit_trace[..., -1] > pictures.target_logit_trace[..., 0])
    flat = tf.constant(pictures.images.reshape((-1,) + model.input_shape))
    scores = pattern_scorer(grads, comps)(model.forward(flat)[0]).numpy().reshape(3, 2, 3)  # picture p, r: score q
    for p in range(3):  # a pattern's own pictures score it higher than the other patterns' pictures do
        others = [q for q in range(3) if q != p]
        assert scores[p, :, p].min() > scores[others][:, :, p].max()
    # the pictures of a pattern do not depend on which other patterns are drawn with it
    first_two = visualize_patterns(model, grads[:2], comps[:2], cfg, restarts=2)
    assert np.array_equal(first_two.images, pictures.images[:2])
