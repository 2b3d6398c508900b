"""Class visualization: batched gradient ascent on class logits, from random starting parameters.

All (class, restart) images of a chunk are optimized together by one compiled
TensorFlow function that runs many steps per call (a graph-side loop); the host
only syncs at progress intervals. What is optimized comes from a `Recipe`
(audit/visualize/): a parameterization renders the parameters into pixels in [0, 1],
random transforms move the rendered image before the model sees it, penalties are
subtracted from the class logit. The loop knows none of their details: Adam on the
parameters, then the parameterization's projection.

Each restart's starting parameters depend only on (seed, class index, restart), and its
random transforms only on those and the step, so a class's images do not change when other
classes are added or removed or the batch is chunked differently.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from audit.config.visualize import VisualizeConfig
from audit.model.load import LoadedModel
from audit.visualize.recipe import Recipe, from_config

SYNC_EVERY = 16  # steps per compiled call: fewer host round-trips, still a live progress bar


@dataclass
class Visualizations:
    class_indices: np.ndarray  # (C,) indices into the model's classes
    images: np.ndarray         # (C, R, H, W, ch) float32 in [0, 1]
    logits: np.ndarray         # (C, R, K) logits of the final images
    target_logit_trace: np.ndarray  # (C, R, T+1) target logit at the start and at each sync point
    steps_taken: np.ndarray    # (C, R) steps each image was optimized before it reached the stop probability
    steps: int


def start_parameters(recipe: Recipe, seed: int, class_index: int, restart: int) -> np.ndarray:
    return recipe.param.init(np.random.default_rng([seed, class_index, restart]))


def view_matrices(recipe: Recipe, seed: int, class_index: int, restart: int, steps: int) -> np.ndarray:
    """(steps, 3, 3): the random transform of one image at every step."""
    return recipe.transforms.sample(np.random.default_rng([seed, class_index, restart, 1]), steps)


def _step_function(model: LoadedModel, recipe: Recipe, learning_rate: float, stop_probability: float | None):
    import tensorflow as tf

    lr, b1, b2, eps = learning_rate, 0.9, 0.999, 1e-8
    render, transform, penalty, project = recipe.param.render, recipe.transforms, recipe.penalties, recipe.param.project
    stop = stop_probability or 2.0  # 2.0: a probability never reaches it, so never stop early

    def objective(params, targets, views):
        pixels = render(params)
        _, logits = model.forward(transform(pixels, views))
        picked = tf.one_hot(targets, tf.shape(logits)[1], dtype=logits.dtype)
        target = tf.reduce_sum(logits * picked, axis=1)
        probability = tf.reduce_sum(tf.nn.softmax(logits) * picked, axis=1)
        return target - penalty(pixels), target, probability

    @tf.function(reduce_retracing=True)
    def run(params, m, v, targets, views, active, taken, t0, n):
        """n Adam steps on the active images; an image that reaches the stop probability is frozen
        (the probability comes from the forward pass the gradient needs anyway). views: (N, n, 3, 3)
        transform matrices of each image at each of the n steps."""
        trace = tf.zeros_like(targets, dtype=tf.float32)
        for i in tf.range(n):
            t = tf.cast(t0 + i + 1, tf.float32)
            # only the parameters are differentiated: not recording the weights saves the tape work
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(params)
                score, target, probability = objective(params, targets, views[:, i])
                total = tf.reduce_sum(score)
            grad = tape.gradient(total, params)
            trace = target
            active = tf.logical_and(active, probability < stop)
            if not tf.reduce_any(active):
                break
            m = b1 * m + (1 - b1) * grad
            v = b2 * v + (1 - b2) * tf.square(grad)
            step = lr * (m / (1 - b1 ** t)) / (tf.sqrt(v / (1 - b2 ** t)) + eps)
            moving = tf.reshape(tf.cast(active, params.dtype), [-1] + [1] * (len(params.shape) - 1))
            params = project(params + moving * step)
            taken += tf.cast(active, tf.int32)
        return params, m, v, trace, active, taken

    return run


def chunk_size(model: LoadedModel, budget_mb: int, total: int) -> int:
    return int(max(1, min(total, budget_mb * 2**20 // max(model.activation_bytes_per_image, 1))))


def visualize_classes(model: LoadedModel, cfg: VisualizeConfig, progress: bool = True, recipe: Recipe | None = None,
                      on_sync=None) -> Visualizations:
    """Optimize cfg.restarts images per class with `recipe` (default: the one `cfg` describes).
    `on_sync(steps_done, jobs, images)`, if given, sees the rendered images of the jobs (indices
    into class x restart, row-major) still being optimized at every host sync."""
    import tensorflow as tf
    from tqdm import tqdm

    recipe = recipe or from_config(cfg, model.input_shape)
    names = cfg.classes or model.classes
    class_indices = np.array([model.classes.index(n) for n in names], dtype=np.int32)
    R, shape = cfg.restarts, model.input_shape
    jobs = [(c, r) for c in range(len(class_indices)) for r in range(R)]
    targets = np.array([class_indices[c] for c, _ in jobs], dtype=np.int32)
    views = np.stack([view_matrices(recipe, cfg.seed, int(class_indices[c]), r, cfg.steps) for c, r in jobs])
    size = chunk_size(model, cfg.memory_budget_mb, len(jobs))
    run = _step_function(model, recipe, cfg.learning_rate, cfg.stop_probability)
    render = tf.function(recipe.param.render, reduce_retracing=True)
    syncs = -(-cfg.steps // SYNC_EVERY)
    images = np.empty((len(jobs),) + shape, np.float32)
    taken = np.zeros(len(jobs), np.int32)
    trace = np.empty((len(jobs), syncs + 1), np.float32)
    bar = tqdm(total=cfg.steps * len(jobs), unit="img-step", unit_scale=True, desc="visualize",
               disable=not progress or not sys.stderr.isatty(), leave=False, mininterval=0.5)
    for lo in range(0, len(jobs), size):
        chunk = np.arange(lo, min(lo + size, len(jobs)))
        idx = chunk  # the chunk's images still being optimized
        # drawn per chunk: all of a 1000-class run's starting spectra at once would not fit the budget
        params = tf.constant(np.stack([start_parameters(recipe, cfg.seed, int(class_indices[jobs[j][0]]), jobs[j][1])
                                       for j in idx]))
        m, v = tf.zeros_like(params), tf.zeros_like(params)
        trace[idx, 0] = model.forward(render(params))[1].numpy()[np.arange(len(idx)), targets[idx]]
        done = 0
        for k in range(1, syncs + 1):
            n = min(SYNC_EVERY, cfg.steps - done)
            trace[chunk, k] = trace[chunk, k - 1]  # a stopped image keeps its last value
            if len(idx):
                params, m, v, last, active, took = run(
                    params, m, v, tf.constant(targets[idx]), tf.constant(views[idx, done:done + n]),
                    tf.ones(len(idx), tf.bool),
                    tf.zeros(len(idx), tf.int32), tf.constant(done), tf.constant(n))
                active = active.numpy()
                taken[idx] += took.numpy()
                trace[idx, k] = last.numpy()
                if on_sync is not None:
                    on_sync(done + n, idx, render(params).numpy())
                if not active.all():  # drop converged images from the batch: later steps cost less
                    images[idx[~active]] = render(tf.boolean_mask(params, ~active)).numpy()
                    keep = tf.constant(np.flatnonzero(active))
                    params, m, v = (tf.gather(a, keep) for a in (params, m, v))
                    idx = idx[active]
            done += n
            bar.update(n * len(chunk))
        if len(idx):
            images[idx] = render(params).numpy()
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
