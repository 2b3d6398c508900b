"""Reading a Keras classifier's graph: its head (the layer that outputs the scores, a separate
softmax or sigmoid, a binary head read as two logits) and its feature maps (the concept layer, the
layers DeepDream and the layer gallery can read)."""

from __future__ import annotations

from typing import Callable

import numpy as np

from audit.config.model import ModelConfig
from audit.config.yaml_input import short_repr
from audit.errors import UserError
from audit.model.head import SQUASHES, Head
from audit.model.loaded import LoadedModel


def check_scores(dtype, name: str) -> None:
    """Class scores are real numbers: an integer output (a Discretization head, a class index) is
    not one score per class, and fails in the first compiled call if let through."""
    dtype = str(getattr(dtype, "name", dtype))
    if not dtype.startswith(("float", "bfloat")):
        raise UserError(f"model.path: {name} outputs {dtype} values, not one score per class (batch, classes); "
                        "audit needs an image classifier's real-valued scores (save it without the layer that "
                        "turns them into integers, e.g. a Discretization or an argmax)")


def looks_like_probabilities(values: np.ndarray) -> bool:
    """Several outputs, non-negative, summing to 1 on every image: a softmax's probabilities."""
    values = np.asarray(values, dtype=np.float64)
    return bool(values.shape[-1] > 1 and np.all(values >= 0) and np.allclose(values.sum(-1), 1.0, atol=1e-3))


def check_head(n_out_shape: tuple, activation: str, cfg: ModelConfig, name: str) -> bool:
    """Is the model a classifier the audit can read? Returns True for a binary head (one unit).
    A single output is a binary classifier's score only when it is a sigmoid or the config names
    two classes; otherwise (a regression, a bare score) no class can be audited: refused."""
    if len(n_out_shape) != 2:
        raise UserError(f"model.path: {name} outputs shape {tuple(n_out_shape)}, not one score per class "
                        "(batch, classes); audit needs an image classifier")
    if int(n_out_shape[-1]) != 1:
        return False
    two_names = cfg.classes is not None and len(cfg.classes) == 2
    if activation == "sigmoid" and two_names:
        return True
    if activation == "sigmoid":
        raise UserError(f"model.classes: {name} has one sigmoid output, a binary classifier; list two class "
                        "names, the negative class first (e.g. [no_cat, cat])")
    if activation in ("linear", "logit") and two_names:
        return True  # the config says this single score is a binary classifier's logit
    raise UserError(f"model.path: {name} has a single {activation} output: a regression or a bare score, not a "
                    "classifier; audit needs a softmax over classes or one sigmoid unit (binary; list two class "
                    "names, negative first)")


def binary_logits(z):
    """One logit z -> two-class logits (-z/2, +z/2): their softmax is exactly (1 - sigmoid(z),
    sigmoid(z)), so the audit reads the logit against its negation."""
    import tensorflow as tf

    return tf.concat([-0.5 * z, 0.5 * z], axis=-1)


def strip_final_activation(head: Head) -> str:
    """Make the head give its logits (turn a built-in softmax/sigmoid off on our in-memory copy);
    say how they are read in one phrase."""
    import keras

    layer = head.layer
    if head.builtin:
        layer.activation = keras.activations.linear
        text = f"pre-{head.activation} output of layer '{layer.name}'"
    elif head.activation in SQUASHES:
        text = f"input of the final {head.activation} layer"
    else:
        text = f"raw output of layer '{layer.name}' (no final softmax found)"
    if head.nested:
        text += f", inside the nested model '{'/'.join(head.nested)}'"
    if head.passed:
        text += f"; the layers after the {head.activation} are read through ({', '.join(head.passed)})"
    return text


def enter(head: Head, values):
    """The model's input values -> its nested network's input (the wrapper's layers before it)."""
    for sub_model in head.entry:
        values = sub_model(values, training=False)
    return values


def find_feature_layer(head: Head, wanted: str):
    """The concept layer: by name, or the last feature map (rank 4) before the logits."""
    net = head.net
    names = [layer.name for layer in net.layers]
    if wanted != "auto":
        try:
            return net.get_layer(wanted)
        except ValueError:
            raise UserError(f"concepts.layer: the model has no layer {short_repr(wanted)}; use `auto` or one of: "
                            f"{', '.join(names[-12:])}") from None
    maps = feature_maps(head)
    # no feature map (e.g. an MLP): the input of the output layer is the concept space
    return maps[-1] if maps else head.layer


def feature_maps(head: Head) -> list:
    """Layers with a feature-map output (rank 4) computed by learned weights, input to output:
    skips the input itself and input-side rescaling."""
    found, learned = [], False
    for layer in head.net.layers:
        if layer is head.layer:
            break
        learned = learned or bool(layer.weights)
        try:
            if learned and len(layer.output.shape) == 4:
                found.append(layer)
        except (AttributeError, ValueError):
            continue
    return found


def activation_bytes(*models) -> int:
    """Bytes per image of every layer's output (a nested network: the wrapper's and its own)."""
    total = 0
    for layer in [layer for model in models for layer in model.layers]:
        try:
            shape = layer.output.shape
        except (AttributeError, ValueError):
            continue
        total += int(np.prod([d for d in shape[1:] if d]))
    return 4 * 3 * max(total, 1)  # float32, forward activations kept + gradients


def feature_map_layers(model: LoadedModel) -> list[str]:
    """Names of the model's feature-map layers, input to output (none for a bare SavedModel)."""
    return [] if model.head is None else [layer.name for layer in feature_maps(model.head)]


def _is_nonlinearity(layer) -> bool:
    """A layer whose output is taken after a nonlinearity: ReLU/ReLU6/LeakyReLU/ELU/PReLU layers,
    Activation layers, or layers with a built-in activation (Conv2D(..., activation="relu"))."""
    import keras

    if isinstance(layer, (keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.ELU, keras.layers.PReLU)):
        return True
    name = getattr(getattr(layer, "activation", None), "__name__", "linear")
    return name not in ("linear", "softmax", "log_softmax")


def activation_map_layers(model: LoadedModel) -> list[str]:
    """Feature-map layers taken after a nonlinearity, input to output. DeepDream on them shows
    what the network detects; a BatchNorm or a convolution without its activation is linear in
    its inputs, so raising its mean paints a flat colour, not a pattern."""
    if model.head is None:
        return []
    return [layer.name for layer in feature_maps(model.head) if _is_nonlinearity(layer)]


def activation_reader(model: LoadedModel, layers, key: str = "layer") -> Callable:
    """tf: pixels in [0, 1] -> ({layer name: activations}, logits) for the named layers."""
    import keras

    layers = sorted(layers)
    if model.keras_model is None:
        if layers:
            raise UserError(f"{key}: a SavedModel folder does not expose its layers; "
                            "use a class objective or give the model as a .keras file")
        return lambda pixels: ({}, model.forward(pixels)[1])
    km = model.keras_model
    outputs = []
    for name in layers:
        try:
            outputs.append(km.get_layer(name).output)
        except ValueError:
            names = [layer.name for layer in km.layers]
            listed = ", ".join(names) if len(names) <= 12 else f"{', '.join(names[:6])}, ..., {', '.join(names[-6:])}"
            raise UserError(f"{key}: the model has no layer {short_repr(name)}; layers: {listed}") from None
    graph = keras.Model(km.inputs[0], [*outputs, model.head.logits])

    def read(pixels):
        values = graph(model.to_model_space(pixels), training=False)
        if not isinstance(values, (list, tuple)):  # a single output comes back bare
            values = [values]
        logits = binary_logits(values[-1]) if model.binary_head else values[-1]
        return dict(zip(layers, values[:-1])), logits

    return read
