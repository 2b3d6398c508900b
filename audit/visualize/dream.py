"""DeepDream: gradient ascent on an image to amplify what a layer (or some of its channels,
or a class) responds to, at several scales.

* Octaves: the image is dreamed small first, then enlarged step by step; the detail
  dreamed so far is re-injected on top of the resized original at each scale.
* Tiled gradients: the model sees fixed-size tiles, so images of any size work; the tile
  grid is shifted at random each step (jitter) so tile seams do not show. At most
  `tiles_per_call` tiles go through the model at once (sized from the memory budget); the
  gradients of the groups are summed, which is the gradient of the summed objective.
* One ascent: each step climbs the gradient `optimize.ascent_gradient` gives, the one the class
  visualizations climb, with the tiles as the model's view of the image; only the update
  differs (a step normalized by the gradient's spread, instead of Adam).
* Smoothing: `smoothing` x the total variation of penalties.py (the class visualizations'
  `total_variation`, in the same units) is subtracted from the objective summed over the
  tiles; off when `smoothing` is 0.
* Channel selection: `top_channels` picks the channels a guide image fires most, so a
  dream can emphasize one object instead of everything the layer knows.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np

from audit.config.visualize import DreamSettings
from audit.visualize.objectives import Objective
from audit.visualize.optimize import ascent_gradient
from audit.visualize import param
from audit.visualize.penalties import Penalties


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


def tile_view(tile: tuple[int, int]):
    """The model's view of a DeepDream image: (pixels (1, H, W, ch), (shift, lo, hi)) -> tiles lo..hi
    of the image rolled by `shift` and padded with grey to whole tiles."""
    import tensorflow as tf

    th, tw = tile

    def view(pixels, window):
        shift, lo, hi = window
        x = tf.roll(pixels, shift=shift, axis=[1, 2])
        h, w = tf.shape(x)[1], tf.shape(x)[2]
        ph, pw = (th - h % th) % th, (tw - w % tw) % tw
        x = tf.pad(x, [[0, 0], [0, ph], [0, pw], [0, 0]], constant_values=0.5)
        nh, nw = (h + ph) // th, (w + pw) // tw
        c = x.shape[-1]
        tiles = tf.reshape(tf.transpose(tf.reshape(x, [nh, th, nw, tw, c]), [0, 2, 1, 3, 4]), [-1, th, tw, c])
        return tiles[lo:hi]

    return view


def _step_function(read, objective: Objective, tile, settings: DreamSettings, tiles_per_call: int,
                   image_shape: tuple[int, int, int]):
    """One DeepDream step: the shared ascent gradient (optimize.ascent_gradient) of the objective
    summed over the tiles, minus `smoothing` x the shared total variation (penalties.py) of the
    whole image, then a normalized step on the pixels."""
    import tensorflow as tf

    # what DeepDream changes: the pixels themselves, kept in [0, 1] (neither depends on the octave's size)
    image = param.pixels(image_shape)
    view = tile_view(tile)
    # the penalty is the image's, not a tile's: the first group of tiles carries it, once per step
    first, rest = (tf.function(ascent_gradient(read, objective, image.render, view, penalty), reduce_retracing=True)
                   for penalty in (Penalties(settings.smoothing), Penalties()))

    @tf.function(reduce_retracing=True)
    def update(img, grad):
        # normalized, so the step size means the same at every layer and for every objective
        grad /= tf.math.reduce_std(grad) + 1e-8
        return image.project(img + settings.step_size * grad)

    def step(img, shift):
        n = tile_count(tuple(img.shape[1:3]), tile)
        grad = None
        for lo in range(0, n, tiles_per_call):
            window = (shift, tf.constant(lo), tf.constant(min(lo + tiles_per_call, n)))
            g, _, _ = (rest if lo else first)(img, None, window)
            grad = g if grad is None else grad + g
        return update(img, grad)

    return step


def _score_function(read, objective: Objective, tile, tiles_per_call: int):
    """The objective over all tiles, without gradients, in groups of tiles_per_call."""
    import tensorflow as tf

    view = tile_view(tile)
    group = tf.function(lambda img, window: tf.reduce_sum(objective(*read(view(img, window)))), reduce_retracing=True)

    def score(img) -> float:
        n, no_shift = tile_count(tuple(img.shape[1:3]), tile), tf.constant([0, 0], tf.int32)
        return float(sum(group(img, (no_shift, tf.constant(lo), tf.constant(min(lo + tiles_per_call, n))))
                         for lo in range(0, n, tiles_per_call)))

    return score


def dream(read, objective: Objective, image: np.ndarray, tile: tuple[int, int], settings: DreamSettings,
          progress: bool = True, tiles_per_call: int | None = None) -> DreamResult:
    """`tiles_per_call`: most tiles per forward/backward call (None: all of them)."""
    import tensorflow as tf
    from tqdm import tqdm

    rng = np.random.default_rng([settings.seed, 11])
    base = tf.constant(image[None], tf.float32)
    sizes = octave_sizes(image.shape[:2], settings.octaves, settings.octave_scale)
    per_call = tiles_per_call or tile_count(image.shape[:2], tile)
    step = _step_function(read, objective, tile, settings, per_call, image.shape)
    score = _score_function(read, objective, tile, per_call)
    result = DreamResult(image=image, sizes=sizes)
    detail = tf.zeros((1,) + sizes[0] + (image.shape[2],), tf.float32)
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
            img = step(img, shift)
            bar.update(1)
        result.objective_end.append(score(img))
        detail = img - scaled
    bar.close()
    result.image = img[0].numpy()
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
