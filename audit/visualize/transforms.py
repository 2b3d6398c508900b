"""Random geometric transforms of the rendered image, drawn anew every step for every image.

An image that keeps its class only at one exact pixel alignment is a fragile, adversarial
pattern; asking the class to survive random shifts, zooms and small rotations every step
("transformation robustness", lucid) leaves patterns the network recognizes from anywhere.

Each transform maps uniform random numbers to 3x3 matrices that take output pixel coordinates
(centred) to input coordinates. `Transforms.sample` draws one image's whole sequence on the host,
from a generator the loop seeds with (seed, class, restart) alone, composed in order into one
matrix per step; in the graph `Transforms.__call__` resamples each image once through its
matrix (bilinear, edges reflected). So the same run gives the same images, a class's images never
depend on which other classes run with it or how the batch is chunked (an image's matrices are
computed alone, never in a batch whose size would change the rounding), and the restarts of a
class see different views (with one shared draw per batch, restarts from nearly flat starts
converged to nearly the same image on the demo).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

PRESETS = ("standard", "none")
STANDARD_JITTER_SHARE = 0.05     # of the image side: 11 px at 224, 3 px at 64
STANDARD_SCALE = (0.9, 1.1)
STANDARD_ROTATE = 10.0           # degrees


@dataclass(frozen=True)
class Transform:
    name: str
    draws: int         # uniform numbers in [0, 1) it needs per step
    matrix: Callable   # numpy: (S, draws) uniforms -> (S, 3, 3) output-to-input coordinate maps


def _affine(a, b, c, d, e, f) -> np.ndarray:
    """(S, 3, 3) matrices [[a, b, c], [d, e, f], [0, 0, 1]] from (S,) arrays."""
    zero, one = np.zeros_like(a), np.ones_like(a)
    return np.stack([a, b, c, d, e, f, zero, zero, one], axis=1).reshape(-1, 3, 3)


def jitter(pixels: int) -> Transform:
    """Shift by a whole number of pixels in [-pixels, pixels] on each axis."""

    def matrix(u):
        shift = np.floor(u * (2 * pixels + 1)) - pixels
        one, zero = np.ones(len(u)), np.zeros(len(u))
        return _affine(one, zero, -shift[:, 0], zero, one, -shift[:, 1])

    return Transform(f"jitter {pixels} px", 2, matrix)


def scale(low: float, high: float) -> Transform:
    """Zoom by a factor drawn uniformly from [low, high] about the image centre."""

    def matrix(u):
        inv = 1.0 / (low + (high - low) * u[:, 0])
        zero = np.zeros_like(inv)
        return _affine(inv, zero, zero, zero, inv, zero)

    return Transform(f"scale {low:g}-{high:g}", 1, matrix)


def rotate(degrees: float) -> Transform:
    """Rotate by an angle drawn uniformly from [-degrees, degrees] about the image centre."""

    def matrix(u):
        angle = (2.0 * u[:, 0] - 1.0) * (degrees * math.pi / 180.0)
        c, s, zero = np.cos(angle), np.sin(angle), np.zeros_like(angle)
        return _affine(c, s, zero, -s, c, zero)  # the inverse rotation maps output to input

    return Transform(f"rotate {degrees:g} deg", 1, matrix)


@dataclass(frozen=True)
class Transforms:
    """Transforms applied in list order; empty = the image as rendered."""

    steps: tuple[Transform, ...] = ()

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.steps]

    def sample(self, rng: np.random.Generator, count: int) -> np.ndarray:
        """(count, 3, 3) float32: one image's output-to-input maps for `count` steps (identity if empty)."""
        m = np.broadcast_to(np.eye(3), (count, 3, 3))
        u = rng.random((count, sum(t.draws for t in self.steps)))
        used = 0
        for t in self.steps:  # out = F_n(...F_1(in)): in = M_1 @ ... @ M_n @ out, M_i = F_i^-1
            m = m @ t.matrix(u[:, used:used + t.draws])
            used += t.draws
        return m.astype(np.float32)

    def __call__(self, images, matrices):
        """(N, H, W, C) images, each seen through its (N, 3, 3) map."""
        if not self.steps:
            return images
        return resample(images, matrices)


def _reflect(i, n: int):
    """Index i reflected into [0, n-1] (edge pixels not repeated: ... 2 1 | 0 1 2 ... n-1 | n-2 ...)."""
    import tensorflow as tf

    if n == 1:
        return tf.zeros_like(i)
    period = 2 * (n - 1)
    i = tf.math.floormod(i, period)
    return tf.where(i > n - 1, period - i, i)


def resample(images, matrices):
    """Bilinear resampling of (N, H, W, C) images, each through its own 3x3 output-to-input map
    (centred coordinates): one sparse (NHW x NHW, 4 weights a row) matrix product, whose gradient
    reaches the input images (TensorFlow's ImageProjectiveTransform has none for its image) and
    costs less than gathering pixels."""
    import tensorflow as tf

    _, h, w, c = images.shape
    n = tf.shape(images, out_type=tf.int64)[0]
    ys, xs = tf.meshgrid(tf.range(h, dtype=tf.float32) - (h - 1) / 2, tf.range(w, dtype=tf.float32) - (w - 1) / 2,
                         indexing="ij")
    xs, ys, m = tf.reshape(xs, [1, -1]), tf.reshape(ys, [1, -1]), matrices[:, :2, :, None]  # affine: no 3rd row
    x = m[:, 0, 0] * xs + m[:, 0, 1] * ys + m[:, 0, 2] + (w - 1) / 2  # (N, HW) input coordinates
    y = m[:, 1, 0] * xs + m[:, 1, 1] * ys + m[:, 1, 2] + (h - 1) / 2
    x0, y0 = tf.floor(x), tf.floor(y)
    fx, fy = x - x0, y - y0
    x0, y0 = tf.cast(x0, tf.int64), tf.cast(y0, tf.int64)
    offset = tf.range(n)[:, None] * (h * w)  # image i's pixels are rows i*HW ... (i+1)*HW - 1
    columns, weights = [], []
    for dy, wy in ((0, 1.0 - fy), (1, fy)):
        for dx, wx in ((0, 1.0 - fx), (1, fx)):
            columns.append(offset + _reflect(y0 + dy, h) * w + _reflect(x0 + dx, w))
            weights.append(wy * wx)
    rows = tf.repeat(tf.range(n * h * w), 4)
    indices = tf.stack([rows, tf.reshape(tf.stack(columns, -1), [-1])], 1)
    sampler = tf.sparse.SparseTensor(indices, tf.reshape(tf.stack(weights, -1), [-1]), tf.stack([n * h * w] * 2))
    out = tf.sparse.sparse_dense_matmul(sampler, tf.reshape(images, [-1, c]))
    return tf.reshape(out, [-1, h, w, c])


def preset(name: str, side: int) -> dict:
    """A preset's settings for an image whose shorter side is `side` pixels."""
    if name == "none":
        return {}
    if name == "standard":
        return {"jitter": max(1, round(STANDARD_JITTER_SHARE * side)), "scale": STANDARD_SCALE,
                "rotate": STANDARD_ROTATE}
    raise ValueError(f"unknown transforms preset {name!r}; expected one of {PRESETS}")


def build(settings: dict) -> Transforms:
    """{jitter: px, scale: (low, high), rotate: degrees} (any subset) -> jitter, scale, rotate in that order."""
    steps = []
    if settings.get("jitter"):
        steps.append(jitter(int(settings["jitter"])))
    if settings.get("scale") and tuple(settings["scale"]) != (1.0, 1.0):
        steps.append(scale(*map(float, settings["scale"])))
    if settings.get("rotate"):
        steps.append(rotate(float(settings["rotate"])))
    return Transforms(tuple(steps))
