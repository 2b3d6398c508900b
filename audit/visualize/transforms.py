"""Random geometric transforms of the rendered image, drawn anew every step.

An image that keeps its class only at one exact pixel alignment is a fragile, adversarial
pattern; asking the class to survive random shifts, zooms and small rotations every step
("transformation robustness", lucid) leaves patterns the network recognizes from anywhere.

Each transform is a function of uniform random numbers to a 3x3 matrix that maps output
pixel coordinates (centred) to input coordinates; `Transforms` composes them in order into
one matrix and resamples once (bilinear, edges reflected). The random numbers come from a
stateless generator keyed by (seed, step): the same run gives the same images, and every image
of a batch gets the same transform, so a class's images never depend on which other classes
run with it or how the batch is chunked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

PRESETS = ("standard", "none")
STANDARD_JITTER_SHARE = 0.05     # of the image side: 11 px at 224, 3 px at 64
STANDARD_SCALE = (0.9, 1.1)
STANDARD_ROTATE = 10.0           # degrees


@dataclass(frozen=True)
class Transform:
    name: str
    draws: int         # uniform numbers in [0, 1) it needs per step
    matrix: Callable   # tf: (draws,) uniforms -> (3, 3) output-to-input coordinate map


def jitter(pixels: int) -> Transform:
    """Shift by a whole number of pixels in [-pixels, pixels] on each axis."""
    import tensorflow as tf

    def matrix(u):
        shift = tf.floor(u * (2 * pixels + 1)) - pixels
        return tf.stack([[1.0, 0.0, -shift[0]], [0.0, 1.0, -shift[1]], [0.0, 0.0, 1.0]])

    return Transform(f"jitter {pixels} px", 2, matrix)


def scale(low: float, high: float) -> Transform:
    """Zoom by a factor drawn uniformly from [low, high] about the image centre."""
    import tensorflow as tf

    def matrix(u):
        inv = 1.0 / (low + (high - low) * u[0])
        return tf.stack([[inv, 0.0, 0.0], [0.0, inv, 0.0], [0.0, 0.0, 1.0]])

    return Transform(f"scale {low:g}-{high:g}", 1, matrix)


def rotate(degrees: float) -> Transform:
    """Rotate by an angle drawn uniformly from [-degrees, degrees] about the image centre."""
    import tensorflow as tf

    def matrix(u):
        angle = (2.0 * u[0] - 1.0) * (degrees * math.pi / 180.0)
        c, s = tf.cos(angle), tf.sin(angle)  # the inverse rotation maps output to input
        return tf.stack([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])

    return Transform(f"rotate {degrees:g} deg", 1, matrix)


@dataclass(frozen=True)
class Transforms:
    """Transforms applied in list order; empty = the image as rendered."""

    steps: tuple[Transform, ...] = ()
    seed: int = 0

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.steps]

    def matrix(self, step):
        """(3, 3) output-to-input map of the whole sequence at this step."""
        import tensorflow as tf

        u = tf.random.stateless_uniform([sum(t.draws for t in self.steps)], seed=tf.stack([
            tf.constant(self.seed, tf.int64), tf.cast(step, tf.int64)]))
        m, used = tf.eye(3), 0
        for t in self.steps:  # out = F_n(...F_1(in)): in = M_1 @ ... @ M_n @ out, M_i = F_i^-1
            m = m @ t.matrix(u[used:used + t.draws])
            used += t.draws
        return m

    def __call__(self, images, step):
        if not self.steps:
            return images
        return resample(images, self.matrix(step))


def _reflect(i, n: int):
    """Index i reflected into [0, n-1] (edge pixels not repeated: ... 2 1 | 0 1 2 ... n-1 | n-2 ...)."""
    import tensorflow as tf

    if n == 1:
        return tf.zeros_like(i)
    period = 2 * (n - 1)
    i = tf.math.floormod(i, period)
    return tf.where(i > n - 1, period - i, i)


def resample(images, matrix):
    """Bilinear resampling of (N, H, W, C) images through a 3x3 output-to-input map (centred
    coordinates), the same for every image: one sparse (HW x HW, 4 weights a row) matrix product,
    whose gradient reaches the input image (TensorFlow's ImageProjectiveTransform has none for
    its image) and costs less than gathering pixels."""
    import tensorflow as tf

    _, h, w, c = images.shape
    ys, xs = tf.meshgrid(tf.range(h, dtype=tf.float32) - (h - 1) / 2, tf.range(w, dtype=tf.float32) - (w - 1) / 2,
                         indexing="ij")
    src = matrix @ tf.stack([tf.reshape(xs, [-1]), tf.reshape(ys, [-1]), tf.ones([h * w])])
    x, y = src[0] + (w - 1) / 2, src[1] + (h - 1) / 2
    x0, y0 = tf.floor(x), tf.floor(y)
    fx, fy = x - x0, y - y0
    x0, y0 = tf.cast(x0, tf.int64), tf.cast(y0, tf.int64)
    columns, weights = [], []
    for dy, wy in ((0, 1.0 - fy), (1, fy)):
        for dx, wx in ((0, 1.0 - fx), (1, fx)):
            columns.append(_reflect(y0 + dy, h) * w + _reflect(x0 + dx, w))
            weights.append(wy * wx)
    rows = tf.repeat(tf.range(h * w, dtype=tf.int64), 4)
    indices = tf.stack([rows, tf.reshape(tf.stack(columns, 1), [-1])], 1)
    sampler = tf.sparse.SparseTensor(indices, tf.reshape(tf.stack(weights, 1), [-1]), [h * w, h * w])
    flat = tf.reshape(tf.transpose(images, [1, 2, 0, 3]), [h * w, -1])  # pixels x (image, channel)
    out = tf.sparse.sparse_dense_matmul(sampler, flat)
    return tf.transpose(tf.reshape(out, [h, w, -1, c]), [2, 0, 1, 3])


def preset(name: str, side: int) -> dict:
    """A preset's settings for an image whose shorter side is `side` pixels."""
    if name == "none":
        return {}
    if name == "standard":
        return {"jitter": max(1, round(STANDARD_JITTER_SHARE * side)), "scale": STANDARD_SCALE,
                "rotate": STANDARD_ROTATE}
    raise ValueError(f"unknown transforms preset {name!r}; expected one of {PRESETS}")


def build(settings: dict, seed: int) -> Transforms:
    """{jitter: px, scale: (low, high), rotate: degrees} (any subset) -> jitter, scale, rotate in that order."""
    steps = []
    if settings.get("jitter"):
        steps.append(jitter(int(settings["jitter"])))
    if settings.get("scale") and tuple(settings["scale"]) != (1.0, 1.0):
        steps.append(scale(*map(float, settings["scale"])))
    if settings.get("rotate"):
        steps.append(rotate(float(settings["rotate"])))
    return Transforms(tuple(steps), seed)
