"""DeepDream: gradient ascent on an image to amplify what a layer (or some of its channels,
or a class) responds to, at several scales.

* Octaves: the image is dreamed small first, then enlarged step by step; the detail
  dreamed so far is re-injected on top of the resized original at each scale.
* Tiled gradients: the model sees fixed-size tiles, so images of any size work; the tile
  grid is shifted at random each step (jitter) so tile seams do not show. At most
  `tiles_per_call` tiles go through the model at once (sized from the memory budget); the
  gradients of the groups are summed, which is the gradient of the summed objective.
* Smoothing: a total-variation penalty punishes pixels that differ too much from their
  neighbours (the seed's regularizer); off when `smoothing` is 0.
* Channel selection: `top_channels` picks the channels a guide image fires most, so a
  dream can emphasize one object instead of everything the layer knows.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np

from audit.config.visualize import DreamSettings
from audit.visualize.objectives import Objective


@dataclass
class DreamResult:
    image: np.ndarray                 # (h, w, c) in [0, 1]
    sizes: list[tuple[int, int]]      # the octave size schedule, smallest first
    objective_start: list[float] = field(default_factory=list)  # per octave, before its steps
    objective_end: list[float] = field(default_factory=list)    # per octave, after its steps


def octave_sizes(size: tuple[int, int], octaves: int, scale: float) -> list[tuple[int, int]]:
    h, w = size
    return [(max(1, round(h / scale**i)), max(1, round(w / scale**i))) for i in reversed(range(octaves))]


def tile_count(size: tuple[int, int], tile: tuple[int, int]) -> int:
    return -(-size[0] // tile[0]) * -(-size[1] // tile[1])


def _tiled_score(read, objective: Objective, img, tile: tuple[int, int], shift, lo=0, hi=None):
    """Objective summed over the model-sized tiles lo..hi of a (shifted, padded) image."""
    import tensorflow as tf

    th, tw = tile
    x = tf.roll(img[None], shift=shift, axis=[1, 2])
    h, w = tf.shape(x)[1], tf.shape(x)[2]
    ph, pw = (th - h % th) % th, (tw - w % tw) % tw
    x = tf.pad(x, [[0, 0], [0, ph], [0, pw], [0, 0]], constant_values=0.5)
    nh, nw = (h + ph) // th, (w + pw) // tw
    c = x.shape[-1]
    tiles = tf.reshape(tf.transpose(tf.reshape(x, [nh, th, nw, tw, c]), [0, 2, 1, 3, 4]), [-1, th, tw, c])
    acts, logits = read(tiles if hi is None else tiles[lo:hi])
    return tf.reduce_sum(objective(acts, logits))


def total_variation(img):
    import tensorflow as tf

    return tf.reduce_mean(tf.abs(img[1:] - img[:-1])) + tf.reduce_mean(tf.abs(img[:, 1:] - img[:, :-1]))


def _step_function(read, objective: Objective, tile, settings: DreamSettings, tiles_per_call: int):
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def tile_gradient(img, shift, lo, hi):
        with tf.GradientTape() as tape:
            tape.watch(img)
            score = _tiled_score(read, objective, img, tile, shift, lo, hi)
        return tape.gradient(score, img), score

    @tf.function(reduce_retracing=True)
    def update(img, grad):
        # normalized, so the step size means the same at every layer and for every objective
        grad /= tf.math.reduce_std(grad) + 1e-8
        if settings.smoothing:
            # the smoothness push has its own scale: `smoothing` is its weight relative to the objective's
            with tf.GradientTape() as tape:
                tape.watch(img)
                tv = total_variation(img)
            smooth = tape.gradient(tv, img)
            grad -= settings.smoothing * smooth / (tf.math.reduce_std(smooth) + 1e-8)
        return tf.clip_by_value(img + settings.step_size * grad, 0.0, 1.0)

    def step(img, shift):
        n = tile_count(tuple(img.shape[:2]), tile)
        grad = score = None
        for lo in range(0, n, tiles_per_call):
            g, sc = tile_gradient(img, shift, tf.constant(lo), tf.constant(min(lo + tiles_per_call, n)))
            grad, score = (g, sc) if grad is None else (grad + g, score + sc)
        return update(img, grad), score

    return step


def _score_function(read, objective: Objective, tile, tiles_per_call: int):
    """The objective over all tiles, without gradients, in groups of tiles_per_call."""
    import tensorflow as tf

    group = tf.function(lambda img, shift, lo, hi: _tiled_score(read, objective, img, tile, shift, lo, hi),
                        reduce_retracing=True)

    def score(img) -> float:
        n, no_shift = tile_count(tuple(img.shape[:2]), tile), tf.constant([0, 0], tf.int32)
        return float(sum(group(img, no_shift, tf.constant(lo), tf.constant(min(lo + tiles_per_call, n)))
                         for lo in range(0, n, tiles_per_call)))

    return score


def dream(read, objective: Objective, image: np.ndarray, tile: tuple[int, int], settings: DreamSettings,
          progress: bool = True, tiles_per_call: int | None = None) -> DreamResult:
    """`tiles_per_call`: most tiles per forward/backward call (None: all of them)."""
    import tensorflow as tf
    from tqdm import tqdm

    rng = np.random.default_rng([settings.seed, 11])
    base = tf.constant(image, tf.float32)
    sizes = octave_sizes(image.shape[:2], settings.octaves, settings.octave_scale)
    per_call = tiles_per_call or tile_count(image.shape[:2], tile)
    step = _step_function(read, objective, tile, settings, per_call)
    score = _score_function(read, objective, tile, per_call)
    result = DreamResult(image=image, sizes=sizes)
    detail = tf.zeros(sizes[0] + (image.shape[2],), tf.float32)
    bar = tqdm(total=settings.steps * len(sizes), desc="dream", unit="step", leave=False,
               disable=not progress or not sys.stderr.isatty())
    for size in sizes:
        scaled = tf.image.resize(base, size, method="bilinear")
        detail = tf.image.resize(detail, size, method="bilinear")
        img = tf.clip_by_value(scaled + detail, 0.0, 1.0)
        result.objective_start.append(score(img))
        for _ in range(settings.steps):
            j = settings.jitter
            shift = tf.constant(rng.integers(-j, j + 1, size=2) if j else [0, 0], tf.int32)
            img, _ = step(img, shift)
            bar.update(1)
        result.objective_end.append(score(img))
        detail = img - scaled
    bar.close()
    result.image = img.numpy()
    return result


def top_channels(read, layer: str, guide: np.ndarray, tile: tuple[int, int], k: int,
                 by: str = "mean") -> tuple[list[int], list[float]]:
    """The k channels of `layer` the guide image fires most: by mean activation over the image
    (channels spread over the object) or by max (channels that fire strongly anywhere)."""
    import tensorflow as tf

    resized = tf.image.resize(tf.constant(guide[None], tf.float32), tile, method="bilinear")
    acts, _ = read(resized)
    t = acts[layer]
    pool = tf.reduce_mean if by == "mean" else tf.reduce_max
    means = pool(t, axis=list(range(1, len(t.shape) - 1)))[0].numpy() if len(t.shape) > 2 else t[0].numpy()
    order = np.argsort(-means, kind="stable")[:k]
    return [int(i) for i in order], [float(means[i]) for i in order]


def spread_layers(candidates: list[str], count: int) -> list[str]:
    """`count` layers spread evenly from the first to the last candidate."""
    if len(candidates) <= count:
        return list(candidates)
    picks = np.linspace(0, len(candidates) - 1, count).round().astype(int)
    return [candidates[i] for i in sorted(set(picks))]


def noise_image(seed: int, size: tuple[int, int], channels: int) -> np.ndarray:
    rng = np.random.default_rng([seed, 13])
    return np.clip(0.5 + 0.1 * rng.standard_normal(size + (channels,)), 0, 1).astype(np.float32)
