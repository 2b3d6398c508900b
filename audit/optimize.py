"""Class visualization: batched gradient ascent on class logits, from random noise.

All (class, restart) images of a chunk are optimized together by one compiled
TensorFlow function that runs many steps per call (a graph-side loop); the host
only syncs at progress intervals. Pixels live in [0, 1] and are projected back
after every Adam step. By default nothing else constrains them: no blur, no
total variation, no jitter; those are opt-in (`visualize.jitter`,
`visualize.total_variation`).

Each restart's starting noise depends only on (seed, class index, restart), so a
class's images do not change when other classes are added or removed.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from audit.config import VisualizeConfig
from audit.model import LoadedModel

SYNC_EVERY = 16  # steps per compiled call: fewer host round-trips, still a live progress bar


@dataclass
class Visualizations:
    class_indices: np.ndarray  # (C,) indices into the model's classes
    images: np.ndarray         # (C, R, H, W, ch) float32 in [0, 1]
    logits: np.ndarray         # (C, R, K) logits of the final images
    target_logit_trace: np.ndarray  # (C, R, T+1) target logit at the start and at each sync point
    steps: int


def initial_noise(seed: int, class_index: int, restart: int, shape) -> np.ndarray:
    rng = np.random.default_rng([seed, class_index, restart])
    return np.clip(0.5 + 0.1 * rng.standard_normal(shape), 0.0, 1.0).astype(np.float32)


def _step_function(model: LoadedModel, cfg: VisualizeConfig):
    import tensorflow as tf

    lr, b1, b2, eps = cfg.learning_rate, 0.9, 0.999, 1e-8
    jitter, tv_weight = cfg.jitter, cfg.total_variation

    def objective(pixels, targets, step):
        view = pixels
        if jitter:
            shift = tf.random.stateless_uniform([2], seed=[cfg.seed, step], minval=-jitter,
                                                maxval=jitter + 1, dtype=tf.int32)
            view = tf.roll(pixels, shift=shift, axis=[1, 2])
        _, logits = model.forward(view)
        target = tf.reduce_sum(logits * tf.one_hot(targets, tf.shape(logits)[1], dtype=logits.dtype), axis=1)
        score = target
        if tv_weight:
            score -= tv_weight * tf.reduce_mean(tf.image.total_variation(pixels)[:, None], axis=1) / (
                float(np.prod(model.input_shape)))
        return score, target

    @tf.function(reduce_retracing=True)
    def run(pixels, m, v, targets, t0, n):
        trace = tf.zeros_like(targets, dtype=tf.float32)
        for i in tf.range(n):
            t = tf.cast(t0 + i + 1, tf.float32)
            with tf.GradientTape() as tape:
                tape.watch(pixels)
                score, target = objective(pixels, targets, t0 + i)
                total = tf.reduce_sum(score)
            grad = tape.gradient(total, pixels)
            m = b1 * m + (1 - b1) * grad
            v = b2 * v + (1 - b2) * tf.square(grad)
            step = lr * (m / (1 - b1 ** t)) / (tf.sqrt(v / (1 - b2 ** t)) + eps)
            pixels = tf.clip_by_value(pixels + step, 0.0, 1.0)
            trace = target
        return pixels, m, v, trace

    return run


def chunk_size(model: LoadedModel, budget_mb: int, total: int) -> int:
    return int(max(1, min(total, budget_mb * 2**20 // max(model.activation_bytes_per_image, 1))))


def visualize_classes(model: LoadedModel, cfg: VisualizeConfig, progress: bool = True) -> Visualizations:
    import tensorflow as tf
    from tqdm import tqdm

    names = cfg.classes or model.classes
    class_indices = np.array([model.classes.index(n) for n in names], dtype=np.int32)
    R, shape = cfg.restarts, model.input_shape
    jobs = [(c, r) for c in range(len(class_indices)) for r in range(R)]
    start = np.stack([initial_noise(cfg.seed, int(class_indices[c]), r, shape) for c, r in jobs])
    targets = np.array([class_indices[c] for c, _ in jobs], dtype=np.int32)
    size = chunk_size(model, cfg.memory_budget_mb, len(jobs))
    run = _step_function(model, cfg)
    syncs = -(-cfg.steps // SYNC_EVERY)
    images = np.empty_like(start)
    trace = np.empty((len(jobs), syncs + 1), np.float32)
    bar = tqdm(total=cfg.steps * len(jobs), unit="img-step", unit_scale=True, desc="visualize",
               disable=not progress or not sys.stderr.isatty(), leave=False, mininterval=0.5)
    for lo in range(0, len(jobs), size):
        hi = min(lo + size, len(jobs))
        pixels = tf.constant(start[lo:hi])
        m = tf.zeros_like(pixels)
        v = tf.zeros_like(pixels)
        tgt = tf.constant(targets[lo:hi])
        trace[lo:hi, 0] = model.forward(pixels)[1].numpy()[np.arange(hi - lo), targets[lo:hi]]
        done = 0
        for k in range(1, syncs + 1):
            n = min(SYNC_EVERY, cfg.steps - done)
            pixels, m, v, last = run(pixels, m, v, tgt, tf.constant(done), tf.constant(n))
            trace[lo:hi, k] = last.numpy()
            done += n
            bar.update(n * (hi - lo))
        images[lo:hi] = pixels.numpy()
    bar.close()
    logits = np.concatenate([model.forward(tf.constant(images[i:i + size]))[1].numpy()
                             for i in range(0, len(jobs), size)])
    C = len(class_indices)
    return Visualizations(
        class_indices=class_indices,
        images=images.reshape((C, R) + shape),
        logits=logits.reshape(C, R, -1),
        target_logit_trace=trace.reshape(C, R, syncs + 1),
        steps=cfg.steps,
    )
