"""A picture of each pattern: the visualization loop (audit/visualize/optimize.py, the same
parameterization, transforms and steps as the audit's class images) climbing the pattern's own
score at the feature map instead of a class logit.

A pattern's score on an image is its part of the class logit: the positive contributions
(feature x d logit / d feature) of the class, weighted by the pattern's channels. For a head
that is linear in the feature map the gradient is the same on every image, so the mean
gradient over the class's probes makes the score exact without a second derivative."""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from audit.config.visualize import VisualizeConfig
from audit.model.load import LoadedModel
from audit.visualize.objectives import Objective
from audit.visualize.optimize import Visualizations, schedule, visualize_classes
from audit.visualize.recipe import from_config


def pattern_scorer(gradients: list[np.ndarray], components: list[np.ndarray]) -> Callable:
    """tf: feature map (N, h, w, D) -> every pattern's score (N, P). gradients[p]: (h, w, D) mean
    d class logit / d feature of pattern p's class; components[p]: (D,)."""
    import tensorflow as tf

    grads = tf.constant(np.stack(gradients), tf.float32)       # (P, h, w, D)
    comps = tf.constant(np.stack(components), tf.float32)      # (P, D)

    def scores(features):
        # sum over positions and channels of relu(f * g_p) * h_p
        parts = tf.nn.relu(features[:, None] * grads[None])
        return tf.einsum("npyxd,pd->np", parts, comps)

    return scores


def pattern_objective(layer: str, gradients: list[np.ndarray], components: list[np.ndarray]) -> Objective:
    """Each image's own pattern (targets[i] = its index) at the feature map `layer`: the score
    `pattern_scorer` gives, computed for that pattern alone."""
    import tensorflow as tf

    grads = tf.constant(np.stack(gradients), tf.float32)
    comps = tf.constant(np.stack(components), tf.float32)

    def fn(acts, logits, targets):
        parts = tf.nn.relu(acts[layer] * tf.gather(grads, targets))
        return tf.einsum("nyxd,nd->n", parts, tf.gather(comps, targets))

    return Objective(f"pattern({layer})", frozenset([layer]), fn)


def visualize_patterns(model: LoadedModel, gradients: list[np.ndarray], components: list[np.ndarray],
                       cfg: VisualizeConfig, restarts: int, progress: bool = False) -> Visualizations:
    """One image per pattern and restart, made exactly like the class visualizations."""
    objective = pattern_objective(model.feature_layer, gradients, components)
    climb = dataclasses.replace(schedule(cfg), restarts=restarts, stop_probability=None)
    return visualize_classes(model, objective, from_config(cfg, model.input_shape), np.arange(len(components)),
                             climb, progress=progress)
