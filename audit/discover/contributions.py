"""What drives a class logit, position by position: the last feature map's contributions.

For a head that is linear in the feature map (global average pooling or flattening, then a
Dense layer: every audited architecture here, EfficientNet-Lite included) the class logit is
exactly sum over positions and channels of feature x d logit / d feature, plus the bias. That
product, kept per position and channel, says which channels at which places push the logit
up. With a non-linear head it is the first-order (gradient x input) approximation.
"""

from __future__ import annotations

import numpy as np

from audit.model import LoadedModel


def class_contributions(model: LoadedModel, images: np.ndarray, class_index: int, batch_size: int) -> np.ndarray:
    """(n, h, w, D) float32: feature x gradient of the class logit at the feature layer.
    `batch_size` images per forward + backward call (audit.model.gradient_batch_size)."""
    import tensorflow as tf

    out = []
    for i in range(0, len(images), batch_size):
        x = tf.constant(images[i:i + batch_size], tf.float32)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(x)
            features, logits = model.forward(x)
            target = tf.reduce_sum(logits[:, class_index])
        grad = tape.gradient(target, features)
        if grad is None or len(features.shape) != 4:
            raise ValueError("the feature layer has no spatial map that the class logit depends on")
        out.append((features * grad).numpy().astype(np.float32))
    return np.concatenate(out)
