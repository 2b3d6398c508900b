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
    steps_taken: np.ndarray    # (C, R) steps each image was optimized before it reached the stop probability
    steps: int


def initial_noise(seed: int, class_index: int, restart: int, shape) -> np.ndarray:
    rng = np.random.default_rng([seed, class_index, restart])
    return np.clip(0.5 + 0.1 * rng.standard_normal(shape), 0.0, 1.0).astype(np.float32)


def _step_function(model: LoadedModel, cfg: VisualizeConfig):
    import tensorflow as tf

    lr, b1, b2, eps = cfg.learning_rate, 0.9, 0.999, 1e-8
    jitter, tv_weight = cfg.jitter, cfg.total_variation
    stop = cfg.stop_probability or 2.0  # 2.0: a probability never reaches it, so never stop early

    def objective(pixels, targets, step):
        view = pixels
        if jitter:
            shift = tf.random.stateless_uniform([2], seed=[cfg.seed, step], minval=-jitter,
                                                maxval=jitter + 1, dtype=tf.int32)
            view = tf.roll(pixels, shift=shift, axis=[1, 2])
        _, logits = model.forward(view)
        picked = tf.one_hot(targets, tf.shape(logits)[1], dtype=logits.dtype)
        target = tf.reduce_sum(logits * picked, axis=1)
        probability = tf.reduce_sum(tf.nn.softmax(logits) * picked, axis=1)
        score = target
        if tv_weight:
            score -= tv_weight * tf.image.total_variation(pixels) / float(np.prod(model.input_shape))
        return score, target, probability

    @tf.function(reduce_retracing=True)
    def run(pixels, m, v, targets, active, taken, t0, n):
        """n Adam steps on the active images; an image that reaches the stop probability is frozen
        (the probability comes from the forward pass the gradient needs anyway)."""
        trace = tf.zeros_like(targets, dtype=tf.float32)
        for i in tf.range(n):
            t = tf.cast(t0 + i + 1, tf.float32)
            # only the pixels are differentiated: not recording the weights saves the tape work
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(pixels)
                score, target, probability = objective(pixels, targets, t0 + i)
                total = tf.reduce_sum(score)
            grad = tape.gradient(total, pixels)
            trace = target
            active = tf.logical_and(active, probability < stop)
            if not tf.reduce_any(active):
                break
            m = b1 * m + (1 - b1) * grad
            v = b2 * v + (1 - b2) * tf.square(grad)
            step = lr * (m / (1 - b1 ** t)) / (tf.sqrt(v / (1 - b2 ** t)) + eps)
            moving = tf.cast(active, pixels.dtype)[:, None, None, None]
            pixels = tf.clip_by_value(pixels + moving * step, 0.0, 1.0)
            taken += tf.cast(active, tf.int32)
        return pixels, m, v, trace, active, taken

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
    images = start.copy()
    taken = np.zeros(len(jobs), np.int32)
    trace = np.empty((len(jobs), syncs + 1), np.float32)
    bar = tqdm(total=cfg.steps * len(jobs), unit="img-step", unit_scale=True, desc="visualize",
               disable=not progress or not sys.stderr.isatty(), leave=False, mininterval=0.5)
    for lo in range(0, len(jobs), size):
        chunk = np.arange(lo, min(lo + size, len(jobs)))
        idx = chunk  # the chunk's images still being optimized
        pixels = tf.constant(start[idx])
        m, v = tf.zeros_like(pixels), tf.zeros_like(pixels)
        trace[idx, 0] = model.forward(pixels)[1].numpy()[np.arange(len(idx)), targets[idx]]
        done = 0
        for k in range(1, syncs + 1):
            n = min(SYNC_EVERY, cfg.steps - done)
            trace[chunk, k] = trace[chunk, k - 1]  # a stopped image keeps its last value
            if len(idx):
                pixels, m, v, last, active, took = run(
                    pixels, m, v, tf.constant(targets[idx]), tf.ones(len(idx), tf.bool),
                    tf.zeros(len(idx), tf.int32), tf.constant(done), tf.constant(n))
                active = active.numpy()
                taken[idx] += took.numpy()
                trace[idx, k] = last.numpy()
                if not active.all():  # drop converged images from the batch: later steps cost less
                    images[idx[~active]] = tf.boolean_mask(pixels, ~active).numpy()
                    keep = tf.constant(np.flatnonzero(active))
                    pixels, m, v = (tf.gather(a, keep) for a in (pixels, m, v))
                    idx = idx[active]
            done += n
            bar.update(n * len(chunk))
        if len(idx):
            images[idx] = pixels.numpy()
    bar.close()
    logits = np.concatenate([model.forward(tf.constant(images[i:i + size]))[1].numpy()
                             for i in range(0, len(jobs), size)])
    C = len(class_indices)
    return Visualizations(
        class_indices=class_indices,
        images=images.reshape((C, R) + shape),
        logits=logits.reshape(C, R, -1),
        target_logit_trace=trace.reshape(C, R, syncs + 1),
        steps_taken=taken.reshape(C, R),
        steps=cfg.steps,
    )
