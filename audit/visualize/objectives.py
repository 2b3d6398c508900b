"""Objectives that compose: `layer_mean("conv3") + 0.5 * channels("conv4", [2, 7]) - 0.1 * ...`.

An objective names the layers it reads and maps their activations (plus the class logits)
to one score per image. Arithmetic builds new objectives and never changes its operands.

Some objectives ask something different of each image of a batch: `target_logit` climbs image
i's own class, a discovered pattern's objective its own pattern. They read a per-image target
(an (N,) integer tensor the loop passes at every step, like lucid's `batch=` and xplique's
per-image masks), so one compiled loop serves every class or pattern at once and the targets
can change between calls without a retrace. Objectives that ask the same of every image
ignore it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Objective:
    name: str
    layers: frozenset[str]
    fn: Callable  # (acts: dict[str, Tensor], logits: Tensor, targets: (N,) int Tensor | None) -> (N,)

    def __call__(self, acts, logits, targets=None):
        return self.fn(acts, logits, targets)

    def __add__(self, other: "Objective") -> "Objective":
        return Objective(f"{self.name} + {other.name}", self.layers | other.layers,
                         lambda a, lg, t: self.fn(a, lg, t) + other.fn(a, lg, t))

    def __mul__(self, weight: float) -> "Objective":
        weight = float(weight)
        return Objective(f"{weight:g} * {self.name}", self.layers, lambda a, lg, t: weight * self.fn(a, lg, t))

    __rmul__ = __mul__

    def __neg__(self) -> "Objective":
        return self * -1.0

    def __sub__(self, other: "Objective") -> "Objective":
        return self + (-other)


def _spatial_mean(t):
    import tensorflow as tf

    return tf.reduce_mean(t, axis=list(range(1, len(t.shape) - 1))) if len(t.shape) > 2 else t


def layer_mean(layer: str) -> Objective:
    """Mean activation of a whole layer (classic DeepDream: amplify whatever it sees)."""
    import tensorflow as tf

    return Objective(f"mean({layer})", frozenset([layer]), lambda a, lg, t: tf.reduce_mean(_spatial_mean(a[layer]), -1))


def channels(layer: str, indices: list[int]) -> Objective:
    """Mean activation of chosen channels (feature detectors) of a layer."""
    import tensorflow as tf

    idx = [int(i) for i in indices]
    return Objective(f"{layer}[{','.join(map(str, idx))}]", frozenset([layer]),
                     lambda a, lg, t: tf.reduce_mean(tf.gather(_spatial_mean(a[layer]), idx, axis=-1), -1))


def neuron(layer: str, channel: int) -> Objective:
    """One unit: the channel at the centre of the feature map (or the unit of a dense layer)."""

    def fn(a, lg, targets):
        t = a[layer]
        if len(t.shape) == 4:
            return t[:, t.shape[1] // 2, t.shape[2] // 2, channel]
        return t[:, channel]

    return Objective(f"{layer}@{channel}", frozenset([layer]), fn)


def class_logit(index: int, name: str | None = None) -> Objective:
    """A class's pre-softmax logit."""
    return Objective(f"logit({name or index})", frozenset(), lambda a, lg, t: lg[:, index])


def target_logit() -> Objective:
    """Each image's own class logit: image i climbs class targets[i] (class visualizations)."""
    import tensorflow as tf

    def fn(a, logits, targets):
        # a one-hot product rather than a gather: the sum adds exact zeros, so the value is the
        # logit itself, and the class images recorded before objectives existed stay bit-identical
        picked = tf.one_hot(targets, tf.shape(logits)[1], dtype=logits.dtype)
        return tf.reduce_sum(logits * picked, axis=1)

    return Objective("logit(target)", frozenset(), fn)
