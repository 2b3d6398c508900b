"""A picture of each pattern: the class-visualization engine (audit/visualize/optimize.py, the same
parameterization, transforms and steps as the audit's class images) climbing the pattern's own
score instead of a class logit.

A pattern's score on an image is its part of the class logit: the positive contributions
(feature x d logit / d feature) of the class, weighted by the pattern's channels. For a head
that is linear in the feature map the gradient is the same on every image, so the mean
gradient over the class's probes makes the score exact without a second derivative."""

from __future__ import annotations

import dataclasses

import numpy as np

from audit.config.visualize import VisualizeConfig
from audit.model.load import LoadedModel
from audit.visualize.optimize import Visualizations, visualize_classes


def pattern_model(model: LoadedModel, gradients: list[np.ndarray], components: list[np.ndarray]) -> LoadedModel:
    """A model whose "classes" are patterns: forward(pixels) -> (features, pattern scores (N, P)).
    gradients[p]: (h, w, D) mean d class logit / d feature of pattern p's class; components[p]: (D,)."""
    import tensorflow as tf

    grads = tf.constant(np.stack(gradients), tf.float32)       # (P, h, w, D)
    comps = tf.constant(np.stack(components), tf.float32)      # (P, D)
    base = model.forward

    def forward(pixels):
        features, _ = base(pixels)
        # (N, P): sum over positions and channels of relu(f * g_p) * h_p
        parts = tf.nn.relu(features[:, None] * grads[None])
        scores = tf.einsum("npyxd,pd->np", parts, comps)
        return features, scores

    names = tuple(f"pattern {p}" for p in range(len(components)))
    return dataclasses.replace(model, classes=names, forward=forward, infer=None)


def visualize_patterns(model: LoadedModel, gradients: list[np.ndarray], components: list[np.ndarray],
                       cfg: VisualizeConfig, restarts: int, progress: bool = False) -> Visualizations:
    """One image per pattern and restart, made exactly like the class visualizations."""
    patterned = pattern_model(model, gradients, components)
    settings = dataclasses.replace(cfg, classes=patterned.classes, restarts=restarts, stop_probability=None)
    return visualize_classes(patterned, settings, progress=progress)
