"""Penalties subtracted from the objective, in units that do not depend on resolution: the one
definition of total variation, used by the class visualizations (`visualize.total_variation`)
and by DeepDream (`dream.smoothing`) alike.

The class logit of an object does not change much when the same picture is shown at 64 or
224 px, so a penalty's weight can only mean the same at every size if the penalty does not
either. `total_variation` measures the image as a picture, not as a pixel grid: the summed
absolute difference between neighbours, divided by the image side, averaged over channels.
A sharp full-contrast edge across the whole image costs 1 at any resolution; uniform noise in
[0, 1] costs about (H + W) / 3 (150 at 224 px, 43 at 64 px), because finer noise has more edges.

Before this definition the sum was divided by the pixel count, so a weight meant H times less
(224 times less at 224 px): an old weight w is the new w / H.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Penalties:
    total_variation: float = 0.0

    def __call__(self, pixels):
        """(N,) penalty of (N, H, W, C) pixels in [0, 1] (0 when every weight is 0)."""
        import tensorflow as tf

        if not self.total_variation:
            return tf.zeros(tf.shape(pixels)[:1], pixels.dtype)
        return self.total_variation * total_variation(pixels)


def total_variation(pixels):
    """(N,) resolution-independent total variation: sum |dx| / H + sum |dy| / W, mean over channels."""
    import tensorflow as tf

    # the sizes from the tensor, not its static shape: DeepDream's octaves trace one function for many sizes
    h, w, c = tf.unstack(tf.cast(tf.shape(pixels)[1:], pixels.dtype))
    dx = tf.reduce_sum(tf.abs(pixels[:, :, 1:] - pixels[:, :, :-1]), axis=[1, 2, 3]) / h
    dy = tf.reduce_sum(tf.abs(pixels[:, 1:] - pixels[:, :-1]), axis=[1, 2, 3]) / w
    return (dx + dy) / c
