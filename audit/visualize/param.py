"""Image parameterizations: what the optimizer changes, and how that becomes an image.

* `pixels`: the parameters are the pixels themselves, projected back into [0, 1] after every
  step (the seed's raw mode). Nothing keeps neighbouring pixels alike, so on large networks
  the ascent finds high-frequency colour noise the network reads as the class.
* `fourier`: a 2-D spectrum per colour channel, scaled by 1/frequency. Natural images' amplitude
  falls about as 1/f, so equal-sized steps on every coefficient change the image the way natural
  images vary instead of pixel by pixel. The inverse FFT gives three *decorrelated* colour
  channels (luminance and two opponent chroma axes); a fixed matrix estimated from natural photos
  maps them to RGB, and a sigmoid keeps pixels in (0, 1) without a projection.

A parameterization is plain data (shapes and three functions); the optimization loop uses
only `init`, `render` and `project`, so it cannot tell them apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

NAMES = ("fourier", "pixels")

# sqrt of the RGB covariance of natural photos, as U diag(sqrt(s / s_max)) of its eigen-
# decomposition (columns: luminance, blue-red, a small green-magenta axis). Estimated by
# `estimate_color_sqrt_covariance()` from the five colour photos scikit-image ships
# (astronaut, chelsea, coffee, rocket, stereo_motorcycle); tests/test_param.py re-derives it.
COLOR_SQRT_COVARIANCE = np.array([[0.638, -0.313, 0.030],
                                  [0.583, 0.088, -0.081],
                                  [0.504, 0.294, 0.056]], np.float32)

FOURIER_INIT_SD = 0.01  # spectrum coefficients start tiny: the first image is a nearly flat grey
FOURIER_GAIN = 0.25     # the decorrelated image is scaled down before the sigmoid (lucid's 1/4)


@dataclass(frozen=True)
class Parameterization:
    name: str
    image_shape: tuple[int, int, int]          # H, W, channels of the rendered image
    param_shape: tuple[int, ...]               # one image's parameters
    init: Callable[[np.random.Generator], np.ndarray]  # one image's starting parameters (float32)
    render: Callable                           # tf: (N, *param_shape) -> (N, H, W, ch) pixels in [0, 1]
    project: Callable                          # tf: parameters after a step -> valid parameters


def make(name: str, image_shape: tuple[int, int, int]) -> Parameterization:
    if name == "pixels":
        return pixels(image_shape)
    if name == "fourier":
        return fourier(image_shape)
    raise ValueError(f"unknown parameterization {name!r}; expected one of {NAMES}")


def pixels(image_shape: tuple[int, int, int]) -> Parameterization:
    import tensorflow as tf

    def init(rng):
        return np.clip(0.5 + 0.1 * rng.standard_normal(image_shape), 0.0, 1.0).astype(np.float32)

    def render(p):
        return p

    def project(p):
        return tf.clip_by_value(p, 0.0, 1.0)

    return Parameterization("pixels", tuple(image_shape), tuple(image_shape), init, render, project)


def spectrum_scale(h: int, w: int, decay: float = 1.0) -> np.ndarray:
    """(h, w//2+1) amplitude per coefficient of a real 2-D FFT: 1/frequency^decay, with the
    frequency floored at one cycle per image (so the DC term does not blow up), times sqrt(h*w)
    so that the image's contrast does not depend on its size."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    freq = np.sqrt(fx * fx + fy * fy)
    return (np.sqrt(h * w) / np.maximum(freq, 1.0 / max(h, w)) ** decay).astype(np.float32)


def fourier(image_shape: tuple[int, int, int], decay: float = 1.0) -> Parameterization:
    import tensorflow as tf

    h, w, ch = image_shape
    scale = spectrum_scale(h, w, decay)
    param_shape = (2, ch) + scale.shape  # real and imaginary parts, per channel
    color = COLOR_SQRT_COVARIANCE if ch == 3 else np.eye(ch, dtype=np.float32)

    def init(rng):
        return (FOURIER_INIT_SD * rng.standard_normal(param_shape)).astype(np.float32)

    def render(p):
        spectrum = tf.complex(p[:, 0] * scale, p[:, 1] * scale)           # (N, ch, h, w//2+1)
        channels = tf.signal.irfft2d(spectrum, fft_length=[h, w])           # (N, ch, h, w)
        decorrelated = tf.transpose(channels, [0, 2, 3, 1]) * FOURIER_GAIN  # (N, h, w, ch)
        return tf.sigmoid(tf.tensordot(decorrelated, color.T, axes=1))

    def project(p):
        return p  # the sigmoid already keeps every pixel in range

    return Parameterization("fourier", tuple(image_shape), param_shape, init, render, project)


def estimate_color_sqrt_covariance(photos: list[np.ndarray]) -> np.ndarray:
    """U diag(sqrt(s / s_max)) from the eigendecomposition of the photos' RGB covariance
    (pixels in [0, 1]); each column's sign is chosen so that it sums to a positive number."""
    rgb = np.concatenate([np.asarray(p, np.float64).reshape(-1, 3) / 255.0 for p in photos])
    values, vectors = np.linalg.eigh(np.cov(rgb.T))
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    vectors *= np.sign(vectors.sum(axis=0))
    return vectors * np.sqrt(values / values[0])
