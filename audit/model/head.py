"""Where a Keras classifier's scores are: the softmax or sigmoid that turns its logits into
probabilities, found wherever it sits, and the logits before it.

A model is often saved as something built around the trained network: nested in a wrapper
(`Model(inp, trained(inp))`, `Sequential([preprocessing, trained])`), or with a layer after the
softmax (an `Activation("linear")`, a `Dropout`, a `Reshape` to the same shape, a `Rescaling`).
Read from its last layer only, such a model gives probabilities, and auditing them as logits
opens the gate. So the head is found by walking back from the output: through layers that are
identities at inference, into nested networks (whose own layers then hold the concept layer),
and, after a softmax or sigmoid, through a `Rescaling` by one positive factor (the probabilities
times a constant: the same model, whose logits are still the softmax's input)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audit.errors import UserError

SQUASHES = ("softmax", "sigmoid")
# identities at inference: the audit always calls the model with training=False
INFERENCE_IDENTITIES = ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianDropout",
                        "GaussianNoise", "AlphaDropout", "Identity", "ActivityRegularization")


@dataclass(frozen=True)
class Head:
    """The scores of a Keras classifier, as found by `find_head`."""

    net: object              # the Keras model holding the layers read: the model, or the network nested in it
    layer: object            # in `net`: the layer read last (a separate softmax/sigmoid layer, else the logits' own)
    logits: object           # KerasTensor in `net`'s graph: the scores before any softmax/sigmoid
    activation: str          # "softmax" or "sigmoid" when found, else the last layer's activation ("linear", ...)
    builtin: bool = False    # the softmax/sigmoid is `layer`'s own activation (Dense(..., activation="softmax"))
    entry: tuple = ()        # sub-models of the wrappers, outermost first: the model's input -> `net`'s input
    passed: tuple = ()       # names of the layers after the softmax/sigmoid read through
    nested: tuple = ()       # names of the nested networks descended into


def _op_squash(operation) -> str | None:
    """`keras.ops.softmax` / `keras.ops.sigmoid` called in a functional graph (an op, not a layer)."""
    kind = type(operation).__name__.lower()
    if kind in SQUASHES and type(operation).__module__.startswith("keras.src.ops") and \
            getattr(operation, "axis", -1) in (-1, None):
        return kind
    return None


def squash_of(layer) -> str | None:
    """"softmax"/"sigmoid" when the layer ends in one (a Softmax layer, an Activation layer, a
    built-in activation, or the op), else None."""
    import keras

    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    name = getattr(getattr(layer, "activation", None), "__name__", "")
    return name if name in SQUASHES else _op_squash(layer)


def _is_separate(layer) -> bool:
    """A squash that is its own layer or op (else a layer's built-in activation)."""
    import keras

    return isinstance(layer, (keras.layers.Softmax, keras.layers.Activation)) or _op_squash(layer) is not None


def activation_name(layer) -> str:
    return squash_of(layer) or getattr(getattr(layer, "activation", None), "__name__", "linear")


def _producer(tensor):
    """(operation, its node) that computed a symbolic tensor, or (None, None). Keras has no public
    way to walk a functional graph backwards; `_keras_history` and `_inbound_nodes` are how its
    own Functional model does it."""
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        return None, None
    operation = history[0]
    return operation, operation._inbound_nodes[history[1]]


def _only_input(node):
    tensors = list(getattr(node, "input_tensors", None) or [])
    return tensors[0] if len(tensors) == 1 else None


def _is_identity(layer, node) -> bool:
    """Does this call give its input back at inference?"""
    import keras

    if isinstance(layer, tuple(getattr(keras.layers, kind) for kind in INFERENCE_IDENTITIES)):
        return True
    if isinstance(layer, keras.layers.Activation):
        return activation_name(layer) == "linear"
    if isinstance(layer, (keras.layers.Reshape, keras.layers.Flatten)):
        return tuple(node.input_tensors[0].shape) == tuple(node.output_tensors[0].shape)
    return False


def _is_nested(layer) -> bool:
    import keras

    return isinstance(layer, keras.Model) and len(layer.inputs) == 1 and len(layer.outputs) == 1


class _Walk:
    """A walk back from a model's output: `t` is where it stands, in `net`'s graph."""

    def __init__(self, model):
        self.net, self.t, self.entry, self.passed, self.nested = model, model.outputs[0], [], [], []
        self.rescalings = []  # the Rescaling layers among `passed`

    def back(self, through_rescaling: bool):
        """Step back through identities, nested networks and (when allowed) Rescaling layers;
        returns the layer it stops at (None: no layer made the tensor)."""
        import keras

        while True:
            layer, node = _producer(self.t)
            inbound = _only_input(node) if node is not None else None
            if layer is None or inbound is None or squash_of(layer):
                return layer
            if _is_nested(layer):
                if inbound is not self.net.inputs[0]:
                    self.entry.append(keras.Model(self.net.inputs[0], inbound))
                self.nested.append(layer.name)
                self.net, self.t = layer, layer.outputs[0]
                continue
            rescaling = through_rescaling and isinstance(layer, keras.layers.Rescaling)
            if not (rescaling or _is_identity(layer, node)):
                return layer
            self.passed.append(layer.name)
            self.rescalings += [layer] if rescaling else []
            self.t = inbound


def _check_rescaling(layer, name: str) -> None:
    """After a softmax, a Rescaling by one positive factor (plus one offset) keeps the model's
    ranking: the probabilities up to a constant. A per-class or negative factor does not, and its
    logits cannot be read from the softmax's input."""
    scale = np.asarray(layer.scale, dtype=np.float64).ravel()
    offset = np.asarray(layer.offset, dtype=np.float64).ravel()
    if np.all(scale > 0) and np.ptp(scale) == 0 and np.ptp(offset) == 0:
        return
    raise UserError(f"model.path: {name} rescales its probabilities after the softmax (layer {layer.name!r}) by a "
                    "per-class or non-positive factor, which the audit cannot undo into logits; save the model "
                    "without that layer, or without the softmax (raw logits)")


def find_head(model, name: str) -> Head:
    """The head of a Keras classifier (see the module's docstring). Without a softmax or sigmoid the
    output is read as logits, as it is, unless it is a nested network's behind identities."""
    walk = _Walk(model)
    layer = walk.back(through_rescaling=True)
    squash = squash_of(layer) if layer is not None else None
    if squash is None:
        if layer is None or walk.rescalings or not walk.nested:
            return plain_head(model)
        return Head(walk.net, layer, walk.t, activation_name(layer), False, tuple(walk.entry), (), tuple(walk.nested))
    for rescaling in walk.rescalings:
        _check_rescaling(rescaling, name)
    passed = tuple(reversed(walk.passed))  # input to output
    if not _is_separate(layer):  # Dense(..., activation="softmax")
        return Head(walk.net, layer, walk.t, squash, True, tuple(walk.entry), passed, tuple(walk.nested))
    net, squash_layer = walk.net, layer
    walk.t = _only_input(_producer(walk.t)[1])  # a separate softmax layer's input: the logits
    walk.back(through_rescaling=False)
    shown = squash_layer if walk.net is net else _producer(walk.t)[0]
    if walk.t is None or shown is None:  # a masked softmax; a nested network giving its input back
        return plain_head(model)  # read as it is: the last guard (load.py) refuses probabilities
    return Head(walk.net, shown, walk.t, squash, False, tuple(walk.entry), passed, tuple(walk.nested))


def plain_head(model) -> Head:
    """The model's last layer, read as it is."""
    layer, _ = _producer(model.outputs[0])
    layer = layer if layer is not None else model.layers[-1]
    return Head(model, layer, model.outputs[0], activation_name(layer))
