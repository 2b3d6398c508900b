"""Objectives that compose: `layer_mean("conv3") + 0.5 * channels("conv4", [2, 7]) - 0.1 * ...`.

An objective names the layers it reads and maps their activations (plus the class logits)
to one score per image. Arithmetic builds new objectives and never changes its operands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Objective:
    name: str
    layers: frozenset[str]
    fn: Callable  # (acts: dict[str, Tensor], logits: Tensor) -> Tensor of shape (N,)

    def __call__(self, acts, logits):
        return self.fn(acts, logits)

    def __add__(self, other: "Objective") -> "Objective":
        return Objective(f"{self.name} + {other.name}", self.layers | other.layers,
                         lambda a, lg: self.fn(a, lg) + other.fn(a, lg))

    def __mul__(self, weight: float) -> "Objective":
        weight = float(weight)
        return Objective(f"{weight:g} * {self.name}", self.layers, lambda a, lg: weight * self.fn(a, lg))

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

    return Objective(f"mean({layer})", frozenset([layer]), lambda a, lg: tf.reduce_mean(_spatial_mean(a[layer]), -1))


def channels(layer: str, indices: list[int]) -> Objective:
    """Mean activation of chosen channels (feature detectors) of a layer."""
    import tensorflow as tf

    idx = [int(i) for i in indices]
    return Objective(f"{layer}[{','.join(map(str, idx))}]", frozenset([layer]),
                     lambda a, lg: tf.reduce_mean(tf.gather(_spatial_mean(a[layer]), idx, axis=-1), -1))


def neuron(layer: str, channel: int) -> Objective:
    """One unit: the channel at the centre of the feature map (or the unit of a dense layer)."""

    def fn(a, lg):
        t = a[layer]
        if len(t.shape) == 4:
            return t[:, t.shape[1] // 2, t.shape[2] // 2, channel]
        return t[:, channel]

    return Objective(f"{layer}@{channel}", frozenset([layer]), fn)


def class_logit(index: int, name: str | None = None) -> Objective:
    """A class's pre-softmax logit."""
    return Objective(f"logit({name or index})", frozenset(), lambda a, lg: lg[:, index])
