"""What drives a class logit, position by position: the last feature map's contributions.

For a head that is linear in the feature map (global average pooling or flattening, then a
Dense layer: every audited architecture here, EfficientNet-Lite included) the class logit is
exactly sum over positions and channels of feature x d logit / d feature, plus the bias. That
product, kept per position and channel, says which channels at which places push the logit
up. With a non-linear head it is the first-order (gradient x input) approximation.

The gradient is taken through the layers after the feature layer, replayed one by one on the
feature map: a Keras functional model does not hand out gradients with respect to one of its
own intermediate outputs.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from audit.model.load import LoadedModel

MAX_HEAD_ERROR = 1e-3  # the replayed head must give the model's own logits (relative)


def head(model: LoadedModel) -> Callable:
    """tf: feature map -> class logits, the model's layers after its feature layer. ValueError
    when they are not a simple chain (a skip connection around the feature layer) or hidden."""
    from audit.model.graph import binary_logits

    km = model.keras_model
    if km is None or model.feature_layer not in [layer.name for layer in km.layers]:
        raise ValueError("the model's feature layer is not a layer discovery can start from (a SavedModel hides "
                         "its layers)")
    start = km.get_layer(model.feature_layer)
    last = model.head.logits._keras_history[0]  # the layer giving the logits (before a separate softmax)
    chain, layer = [], last
    while layer is not start:
        inbound = getattr(layer, "input", None)
        history = getattr(inbound, "_keras_history", None)
        if history is None or isinstance(inbound, (list, tuple)):
            raise ValueError(f"the layers after the feature layer {start.name!r} are not a simple chain "
                             f"(at {layer.name!r}); discovery needs a head like pooling + Dense")
        chain.append(layer)
        layer = history[0]
    chain.reverse()

    def run(features):
        x = features
        for step in chain:
            x = step(x, training=False)
        return binary_logits(x) if model.binary_head else x

    return run


def _checked_head(model: LoadedModel, features, logits) -> Callable:
    run = head(model)
    replay = run(features).numpy()
    scale = max(float(np.abs(logits).max()), 1.0)
    if float(np.abs(replay - logits).max()) > MAX_HEAD_ERROR * scale:
        raise ValueError("the layers after the feature layer do not reproduce the model's logits when replayed")
    return run


def _grad_and_features(model: LoadedModel, images: np.ndarray, class_index: int, batch_size: int):
    import tensorflow as tf

    run = None
    for i in range(0, len(images), batch_size):
        features, logits = model.predict(tf.constant(images[i:i + batch_size], tf.float32))
        if len(features.shape) != 4:
            raise ValueError("the feature layer has no spatial map")
        run = run or _checked_head(model, features, logits.numpy())
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(features)
            target = tf.reduce_sum(run(features)[:, class_index])
        yield features.numpy(), tape.gradient(target, features).numpy()


def class_contributions(model: LoadedModel, images: np.ndarray, class_index: int, batch_size: int) -> np.ndarray:
    """(n, h, w, D) float32: feature x gradient of the class logit at the feature layer.
    `batch_size` images per call (audit.model.load.gradient_batch_size)."""
    return np.concatenate([(f * g).astype(np.float32)
                           for f, g in _grad_and_features(model, images, class_index, batch_size)])


def mean_gradient(model: LoadedModel, images: np.ndarray, class_index: int, batch_size: int) -> np.ndarray:
    """(h, w, D) mean d class logit / d feature over the images (constant for a linear head)."""
    total = sum(g.sum(0) for _, g in _grad_and_features(model, images, class_index, batch_size))
    return (total / len(images)).astype(np.float32)
