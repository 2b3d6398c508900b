"""Parameterizations, transforms and penalties (audit/visualize/), each on its own."""

import numpy as np
import pytest
import tensorflow as tf

from audit.visualize import param, transforms as tr
from audit.visualize.penalties import Penalties, total_variation


def test_color_matrix_is_the_sqrt_covariance_of_natural_photos():
    import skimage.data as data

    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket(), data.stereo_motorcycle()[0]]
    estimate = param.estimate_color_sqrt_covariance(photos)
    assert np.allclose(param.COLOR_SQRT_COVARIANCE, estimate, atol=1e-3)
    # luminance first: the first column is the largest and weighs every channel positively
    norms = np.linalg.norm(param.COLOR_SQRT_COVARIANCE, axis=0)
    assert norms[0] == pytest.approx(1.0, abs=1e-3) and np.all(norms[1:] < norms[0])
    assert np.all(param.COLOR_SQRT_COVARIANCE[:, 0] > 0)


def _high_frequency_share(img):
    """Share of the (mean-removed) power above half the Nyquist frequency."""
    x = img.mean(-1) - img.mean()
    power = np.abs(np.fft.fft2(x)) ** 2
    f = np.sqrt(np.fft.fftfreq(x.shape[0])[:, None] ** 2 + np.fft.fftfreq(x.shape[1])[None] ** 2)
    return power[f > 0.25].sum() / power.sum()


@pytest.mark.parametrize("shape", [(64, 64, 3), (45, 60, 3), (32, 32, 1)])
def test_fourier_renders_valid_natural_looking_images_of_any_size(shape):
    p = param.fourier(shape)
    rng = np.random.default_rng(0)
    params = np.stack([p.init(rng) for _ in range(2)])
    assert params.shape == (2,) + p.param_shape
    # start: a nearly flat grey
    start = p.render(tf.constant(params)).numpy()
    assert start.shape == (2,) + shape and abs(start.mean() - 0.5) < 0.02 and start.std() < 0.05
    # equal-sized coefficients everywhere (what Adam's equal-sized steps make) give a 1/f image:
    # valid pixels, and much less high-frequency power than pixel noise (equal power per octave)
    img = p.render(tf.constant(0.3 * rng.standard_normal((1,) + p.param_shape), tf.float32)).numpy()[0]
    assert 0.0 < img.min() and img.max() < 1.0 and img.std() > 0.05
    noise = rng.random(shape)
    assert _high_frequency_share(noise) > 0.7
    assert _high_frequency_share(img) < 0.45


def test_pixels_are_the_parameters_projected_into_range():
    p = param.pixels((8, 8, 3))
    x = tf.constant(np.linspace(-1, 2, 2 * 8 * 8 * 3).reshape(2, 8, 8, 3), tf.float32)
    assert np.array_equal(p.render(x).numpy(), x.numpy())
    projected = p.project(x).numpy()
    assert projected.min() == 0.0 and projected.max() == 1.0


def _ramp(h=16, w=20, c=3):
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([(x * 7 + y * 3 + k) % 11 / 10.0 for k in range(c)], -1)[None].astype(np.float32)


def test_jitter_shifts_by_whole_pixels_and_reflects_at_the_edges():
    img = _ramp()
    shift = tr.jitter(3).matrix(np.array([[6 / 7 + 1e-3, 0.0]]))  # x: +3 px, y: -3 px
    out = tr.resample(tf.constant(img), tf.constant(shift, tf.float32)).numpy()
    assert np.array_equal(out[0, :-3, 3:], img[0, 3:, :-3])          # moved right and up, exactly
    assert np.array_equal(out[0, :-3, 2], img[0, 3:, 1])             # left edge: reflected, not wrapped


def test_identity_and_a_quarter_turn_are_exact():
    img = _ramp(12, 12)
    assert np.allclose(tr.resample(tf.constant(img), tf.eye(3)[None]).numpy(), img, atol=1e-6)
    quarter = tr.rotate(90.0).matrix(np.array([[1.0]]))  # +90 degrees
    out = tr.resample(tf.constant(img), tf.constant(quarter, tf.float32)).numpy()[0]
    assert any(np.allclose(out, np.rot90(img[0], k), atol=1e-5) for k in (1, 3))


def test_scale_zooms_about_the_centre():
    img = np.zeros((1, 21, 21, 1), np.float32)
    img[0, 8:13, 8:13] = 1.0  # a 5 px square in the middle
    zoom = tf.constant(tr.scale(2.0, 2.0).matrix(np.array([[0.5]])), tf.float32)
    zoomed = tr.resample(tf.constant(img), zoom).numpy()[0, ..., 0]
    # input [7.5, 12.5] (where bilinear passes 0.5) lands on output (5, 15): a 9 x 9 square
    assert zoomed[10, 10] == 1.0 and (zoomed > 0.5).sum() == 81


def test_each_image_gets_its_own_transform_through_one_resample():
    img = _ramp(12, 12)
    both = np.concatenate([img, img[:, ::-1]])
    maps = tf.constant(np.concatenate([np.eye(3)[None], tr.rotate(90.0).matrix(np.array([[1.0]]))]), tf.float32)
    out = tr.resample(tf.constant(both), maps).numpy()
    assert np.allclose(out[0], img[0], atol=1e-6)
    assert any(np.allclose(out[1], np.rot90(img[0, :, ::-1], k), atol=1e-5) for k in (1, 3))


def test_transforms_are_sampled_per_image_from_its_generator_and_pass_gradients():
    t = tr.build(tr.preset("standard", 64))
    assert t.names == ["jitter 3 px", "scale 0.9-1.1", "rotate 10 deg"]
    a, b = (t.sample(np.random.default_rng([0, 5]), 20) for _ in range(2))
    assert a.shape == (20, 3, 3) and a.dtype == np.float32 and np.array_equal(a, b)
    assert not np.allclose(a, t.sample(np.random.default_rng([0, 6]), 20))  # another image
    assert not np.allclose(a[0], a[1])                                     # another step
    # each step's map is jitter, then zoom within [0.9, 1.1], then a rotation within 10 degrees
    linear = a[:, :2, :2].astype(np.float64)
    zoom = np.sqrt(np.abs(np.linalg.det(linear)))
    assert np.all((1 / 1.1 - 1e-6 <= zoom) & (zoom <= 1 / 0.9 + 1e-6))
    assert np.all(np.abs(np.degrees(np.arctan2(linear[:, 0, 1], linear[:, 0, 0]))) <= 10 + 1e-4)
    assert np.array_equal(tr.build({}).sample(np.random.default_rng(0), 3), np.broadcast_to(np.eye(3), (3, 3, 3)))
    x = tf.constant(np.random.default_rng(0).random((3, 64, 64, 3)), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = t(x, tf.constant(a[:3]))
        loss = tf.reduce_sum(y[:, 20:40, 20:40])
    grad = tape.gradient(loss, x).numpy()
    assert y.shape == x.shape
    # bilinear weights sum to 1 per output pixel: the gradient's total is the number of pixels summed
    assert grad.sum() == pytest.approx(3 * 20 * 20 * 3, rel=1e-4) and grad.min() >= 0
    assert tr.build(tr.preset("none", 64))(x, tf.constant(a[:3])) is x


def _disk(size):
    y, x = np.mgrid[0:size, 0:size] / size
    inside = ((x - 0.5) ** 2 + (y - 0.4) ** 2 < 0.3 ** 2).astype(np.float32)
    return np.stack([inside, 0.5 * inside, 1 - inside], -1)[None]


def test_total_variation_means_the_same_at_every_resolution():
    # a full-contrast edge across the whole image costs 1 in every channel, at any size
    for h, w in [(32, 32), (64, 48), (224, 224)]:
        edge = np.zeros((1, h, w, 3), np.float32)
        edge[:, :, w // 2:] = 1.0
        assert float(total_variation(tf.constant(edge))[0]) == pytest.approx(1.0)
    # the same picture at 64 and 224 px costs the same, within 5%
    small, large = (float(total_variation(tf.constant(_disk(s)))[0]) for s in (64, 224))
    assert small == pytest.approx(large, rel=0.05)
    # the old definition (divided by the pixel count) was H times smaller
    img = tf.constant(_disk(64))
    old = tf.image.total_variation(img) / float(np.prod(img.shape[1:]))
    assert float(total_variation(img)[0]) == pytest.approx(64 * float(old[0]), rel=1e-5)
    assert np.array_equal(Penalties(0.0)(img).numpy(), [0.0])
    assert float(Penalties(2.0)(img)[0]) == pytest.approx(2 * float(total_variation(img)[0]))
