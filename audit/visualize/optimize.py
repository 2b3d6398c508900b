"""The one optimization loop: batched gradient ascent on an objective, from random starting parameters.

`visualize_classes(model, objective, recipe, targets, schedule)` makes `schedule.restarts` images
per target. The objective (audit/visualize/objectives.py) scores each image against its own
target: `target_logit()` climbs image i's class (the audit's class visualizations); a discovered
pattern's objective climbs its pattern at the feature map (audit/evidence/discover/maximize.py).
What is optimized comes from a `Recipe` (audit/visualize/): a parameterization renders the
parameters into pixels in [0, 1], random transforms move the rendered image before the model
sees it, penalties are subtracted from the objective. The loop knows none of their details:
`ascent_gradient` (shared with DeepDream, audit/visualize/dream.py) differentiates objective
minus penalty through them, then Adam steps the parameters and the parameterization projects.

All images of a chunk are optimized together by one compiled TensorFlow function that runs many
steps per call (a graph-side loop); the host only syncs at progress intervals.

Each image's starting parameters depend only on (seed, target, restart), and its random
transforms only on those and the step, so a target's images do not change when other targets
are added or removed or the batch is chunked differently.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from audit.config.visualize import VisualizeConfig
from audit.model.graph import activation_reader
from audit.model.load import LoadedModel
from audit.visualize.objectives import Objective, target_logit
from audit.visualize.recipe import Recipe, from_config

SYNC_EVERY = 16  # steps per compiled call: fewer host round-trips, still a live progress bar


@dataclass
class Visualizations:
    class_indices: np.ndarray  # (C,) the targets: indices into the model's classes (or the patterns)
    images: np.ndarray         # (C, R, H, W, ch) float32 in [0, 1]
    logits: np.ndarray         # (C, R, K) class logits of the final images
    target_logit_trace: np.ndarray  # (C, R, T+1) objective (a class's: its logit) at the start and each sync
    steps_taken: np.ndarray    # (C, R) steps each image was optimized before it reached the stop probability
    steps: int


@dataclass(frozen=True)
class Schedule:
    """How the loop climbs: images per target, steps, Adam's rate, the seed of the random draws,
    the memory a chunk may take, and the class probability at which an image stops (None: never;
    it reads the targets as class indices)."""

    restarts: int
    steps: int
    learning_rate: float
    seed: int
    memory_budget_mb: int
    stop_probability: float | None = None


def schedule(cfg: VisualizeConfig) -> Schedule:
    return Schedule(cfg.restarts, cfg.steps, cfg.learning_rate, cfg.seed, cfg.memory_budget_mb, cfg.stop_probability)


def start_parameters(recipe: Recipe, seed: int, target: int, restart: int) -> np.ndarray:
    return recipe.param.init(np.random.default_rng([seed, target, restart]))


def view_matrices(recipe: Recipe, seed: int, target: int, restart: int, steps: int) -> np.ndarray:
    """(steps, 3, 3): the random transform of one image at every step."""
    return recipe.transforms.sample(np.random.default_rng([seed, target, restart, 1]), steps)


def model_reader(model: LoadedModel, layers) -> Callable:
    """tf: pixels -> ({layer: activations}, logits). The model's own forward pass when the objective
    reads nothing but the feature layer (one graph for class images and patterns alike)."""
    if set(layers) <= {model.feature_layer}:
        def read(pixels):
            features, logits = model.forward(pixels)
            return ({model.feature_layer: features} if layers else {}), logits

        return read
    return activation_reader(model, layers, key="objective")


def ascent_gradient(read: Callable, objective: Objective, render: Callable, view: Callable, penalties) -> Callable:
    """tf: (params, targets, view_args) -> (gradient, objective per model input, logits): the gradient
    with respect to the parameters of the summed objective, over what the model reads from
    view(render(params), view_args), minus the summed penalty of the rendered pixels. Every ascent
    here climbs this: class images (view = random transforms) and DeepDream (view = tiles)."""
    import tensorflow as tf

    def gradient(params, targets, view_args):
        # only the parameters are differentiated: not recording the weights saves the tape work
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(params)
            pixels = render(params)
            acts, logits = read(view(pixels, view_args))
            value = objective(acts, logits, targets)
            total = tf.reduce_sum(value) - tf.reduce_sum(penalties(pixels))
        return tape.gradient(total, params), value, logits

    return gradient


def adam_steps(gradient: Callable, project: Callable, learning_rate: float, stop_probability: float | None):
    """The compiled multi-step call: n Adam steps on the active images; an image whose target class
    reaches the stop probability is frozen (the probability comes from the forward pass the
    gradient needs anyway). views: (N, n, 3, 3) transform matrices of each image at each step."""
    import tensorflow as tf

    lr, b1, b2, eps = learning_rate, 0.9, 0.999, 1e-8

    @tf.function(reduce_retracing=True)
    def run(params, m, v, targets, views, active, taken, t0, n):
        trace = tf.zeros_like(targets, dtype=tf.float32)
        for i in tf.range(n):
            t = tf.cast(t0 + i + 1, tf.float32)
            grad, trace, logits = gradient(params, targets, views[:, i])
            if stop_probability is not None:
                picked = tf.one_hot(targets, tf.shape(logits)[1], dtype=logits.dtype)
                probability = tf.reduce_sum(tf.nn.softmax(logits) * picked, axis=1)
                active = tf.logical_and(active, probability < stop_probability)
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


@dataclass
class _Climb:
    """One visualize_classes call: what every chunk uses, and the arrays the chunks fill."""

    run: Callable
    render: Callable
    value: Callable            # eager: (params, targets) -> objective of the rendered, untransformed images
    starts: Callable           # job indices -> their starting parameters
    targets: np.ndarray        # (J,) per job
    views: np.ndarray          # (J, steps, 3, 3)
    steps: int
    image_shape: tuple
    on_sync: Callable | None
    bar: object
    images: np.ndarray = field(init=False)  # (J, H, W, ch) final images
    taken: np.ndarray = field(init=False)   # (J,) steps taken
    trace: np.ndarray = field(init=False)   # (J, syncs + 1) objective at the start and each sync

    def __post_init__(self):
        jobs, syncs = len(self.targets), -(-self.steps // SYNC_EVERY)
        self.images = np.empty((jobs,) + tuple(self.image_shape), np.float32)
        self.taken, self.trace = np.zeros(jobs, np.int32), np.empty((jobs, syncs + 1), np.float32)


def _climb_chunk(c: _Climb, chunk: np.ndarray) -> None:
    """Optimize the jobs `chunk` together; converged images leave the batch at a sync point."""
    import tensorflow as tf

    idx = chunk  # the chunk's images still being optimized
    params = c.starts(idx)
    m, v = tf.zeros_like(params), tf.zeros_like(params)
    c.trace[idx, 0] = c.value(params, c.targets[idx])
    done = 0
    for k in range(1, c.trace.shape[1]):
        n = min(SYNC_EVERY, c.steps - done)
        c.trace[chunk, k] = c.trace[chunk, k - 1]  # a stopped image keeps its last value
        if len(idx):
            params, m, v, last, active, took = c.run(
                params, m, v, tf.constant(c.targets[idx]), tf.constant(c.views[idx, done:done + n]),
                tf.ones(len(idx), tf.bool), tf.zeros(len(idx), tf.int32), tf.constant(done), tf.constant(n))
            active = active.numpy()
            c.taken[idx] += took.numpy()
            c.trace[idx, k] = last.numpy()
            if c.on_sync is not None:
                c.on_sync(done + n, idx, c.render(params).numpy())
            if not active.all():  # drop converged images from the batch: later steps cost less
                c.images[idx[~active]] = c.render(tf.boolean_mask(params, ~active)).numpy()
                keep = tf.constant(np.flatnonzero(active))
                params, m, v = (tf.gather(a, keep) for a in (params, m, v))
                idx = idx[active]
        done += n
        c.bar.update(n * len(chunk))
    if len(idx):
        c.images[idx] = c.render(params).numpy()


def visualize_classes(model: LoadedModel, objective: Objective, recipe: Recipe, targets, schedule: Schedule,
                      progress: bool = True, on_sync=None) -> Visualizations:
    """`schedule.restarts` images per target (an (T,) sequence of ints the objective reads per image),
    each climbing `objective` made by `recipe`. `on_sync(steps_done, jobs, images)`, if given, sees the
    rendered images of the jobs (indices into target x restart, row-major) still being optimized at
    every host sync."""
    import tensorflow as tf
    from tqdm import tqdm

    targets, R, shape = np.asarray(targets, np.int32), schedule.restarts, model.input_shape
    jobs = [(int(t), r) for t in targets for r in range(R)]
    read, render = model_reader(model, objective.layers), tf.function(recipe.param.render, reduce_retracing=True)
    gradient = ascent_gradient(read, objective, recipe.param.render, recipe.transforms, recipe.penalties)
    climb = _Climb(
        run=adam_steps(gradient, recipe.param.project, schedule.learning_rate, schedule.stop_probability),
        render=render, value=lambda p, t: objective(*read(render(p)), tf.constant(t)).numpy(),
        # drawn per chunk: all of a 1000-class run's starting spectra at once would not fit the budget
        starts=lambda idx: tf.constant(np.stack([start_parameters(recipe, schedule.seed, *jobs[j]) for j in idx])),
        targets=np.array([t for t, _ in jobs], np.int32),
        views=np.stack([view_matrices(recipe, schedule.seed, t, r, schedule.steps) for t, r in jobs]),
        steps=schedule.steps, image_shape=shape, on_sync=on_sync,
        bar=tqdm(total=schedule.steps * len(jobs), unit="img-step", unit_scale=True, desc="visualize",
                 disable=not progress or not sys.stderr.isatty(), leave=False, mininterval=0.5))
    size = chunk_size(model, schedule.memory_budget_mb, len(jobs))
    for lo in range(0, len(jobs), size):
        _climb_chunk(climb, np.arange(lo, min(lo + size, len(jobs))))
    climb.bar.close()
    logits = np.concatenate([model.forward(tf.constant(climb.images[i:i + size]))[1].numpy()
                             for i in range(0, len(jobs), size)])
    T = len(targets)
    return Visualizations(class_indices=targets, images=climb.images.reshape((T, R) + shape),
                          logits=logits.reshape(T, R, -1), target_logit_trace=climb.trace.reshape(T, R, -1),
                          steps_taken=climb.taken.reshape(T, R), steps=schedule.steps)


def class_visualizations(model: LoadedModel, cfg: VisualizeConfig, progress: bool = True,
                         recipe: Recipe | None = None, on_sync=None) -> Visualizations:
    """The audit's class images: cfg.restarts per class of cfg.classes (all: None), each climbing its own
    class logit, made with `recipe` (default: the one `cfg` describes)."""
    names = cfg.classes or model.classes
    class_indices = np.array([model.classes.index(n) for n in names], dtype=np.int32)
    return visualize_classes(model, target_logit(), recipe or from_config(cfg, model.input_shape), class_indices,
                             schedule(cfg), progress=progress, on_sync=on_sync)
