"""Model intake: load a Keras classifier safely and expose its pre-softmax logits.

`LoadedModel.forward(pixels)` takes images in [0, 1] (the space the optimizer and the
concept folders live in), applies the model's own input scaling, and returns the
activations of the concept layer and the class logits, both differentiable.
"""

from __future__ import annotations

import hashlib
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from audit.config import ModelConfig
from audit.errors import UserError

# keras.applications module that owns each preprocessing name
_PREPROCESS_MODULES = {
    "mobilenet": "mobilenet", "mobilenet_v2": "mobilenet_v2", "mobilenet_v3": "mobilenet_v3",
    "resnet50": "resnet50", "resnet": "resnet", "resnet_v2": "resnet_v2", "vgg16": "vgg16", "vgg19": "vgg19",
    "inception_v3": "inception_v3", "xception": "xception", "densenet": "densenet",
    "efficientnet": "efficientnet", "efficientnet_v2": "efficientnet_v2", "convnext": "convnext",
    "nasnet": "nasnet", "inception_resnet_v2": "inception_resnet_v2", "regnet": "regnet",
}


@dataclass
class LoadedModel:
    """A classifier ready for gradient ascent: pixels in [0, 1] -> (features, logits)."""

    name: str
    path: Path
    sha256: str
    input_shape: tuple[int, int, int]   # H, W, C
    classes: tuple[str, ...]
    logits_source: str                  # how the logits were obtained (shown in the report)
    feature_layer: str
    forward: Callable                   # tf: pixels01 (N,H,W,C) -> (features (N,D...), logits (N,K))
    keras_model: object | None          # the loaded Keras model (None for a bare SavedModel)
    activation_bytes_per_image: int     # rough forward+backward memory, for chunking
    to_model_space: Callable            # tf: pixels in [0, 1] -> the model's input values
    input_range: tuple[float, float] | None = None  # as declared or read from the model (None: preprocessing)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode() + b"\0")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def pixel_transform(cfg: ModelConfig) -> Callable:
    """[0, 1] pixels -> what the model was trained on."""
    if cfg.input_range is not None:
        lo, hi = cfg.input_range
        return lambda x: lo + (hi - lo) * x
    module = importlib.import_module(f"keras.applications.{_PREPROCESS_MODULES[cfg.preprocessing]}")
    return lambda x: module.preprocess_input(x * 255.0)


def _load_keras(cfg: ModelConfig):
    import keras

    try:
        return keras.saving.load_model(cfg.path, compile=False, safe_mode=not cfg.trust_code)
    except ValueError as exc:
        if "safe_mode" in str(exc) or "unsafe" in str(exc).lower():
            raise UserError(f"model.path: {cfg.path.name} contains Python code (e.g. a Lambda layer) that safe "
                            "mode refuses to run; set `model.trust_code: true` only if you trust this file") from None
        raise UserError(f"model.path: cannot load {cfg.path}: {str(exc).splitlines()[0]}; "
                        "give a Keras 3 .keras, a legacy .h5, or a SavedModel folder") from None
    except (OSError, TypeError, KeyError) as exc:
        raise UserError(f"model.path: cannot load {cfg.path}: {str(exc).splitlines()[0] if str(exc) else exc!r}; "
                        "give a Keras 3 .keras, a legacy .h5, or a SavedModel folder") from None


def _output_layer(model):
    history = getattr(model.outputs[0], "_keras_history", None)
    return history[0] if history else model.layers[-1]


def _is_separate_squash(layer) -> bool:
    """A final Softmax layer, or an Activation("softmax"/"sigmoid") layer."""
    import keras

    act_name = getattr(getattr(layer, "activation", None), "__name__", "")
    return isinstance(layer, keras.layers.Softmax) or (
        isinstance(layer, keras.layers.Activation) and act_name in ("softmax", "sigmoid"))


def _strip_final_activation(model) -> str:
    """Make the model output its pre-activation logits; say how in one phrase."""
    import keras

    layer = _output_layer(model)
    act_name = getattr(getattr(layer, "activation", None), "__name__", "")
    if _is_separate_squash(layer):
        return "input of the final %s layer" % (act_name or "softmax")
    if act_name in ("softmax", "sigmoid"):
        # a Dense(..., activation="softmax"): turn the activation off on our in-memory copy
        layer.activation = keras.activations.linear
        return f"pre-{act_name} output of layer '{layer.name}'"
    return f"raw output of layer '{layer.name}' (no final softmax found)"


def _logits_tensor(model):
    layer = _output_layer(model)
    return layer.input if _is_separate_squash(layer) else model.outputs[0]


def _find_feature_layer(model, wanted: str):
    """The concept layer: by name, or the last feature map (rank 4) before the logits."""
    names = [layer.name for layer in model.layers]
    if wanted != "auto":
        try:
            return model.get_layer(wanted)
        except ValueError:
            raise UserError(f"concepts.layer: the model has no layer {wanted!r}; use `auto` or one of: "
                            f"{', '.join(names[-12:])}") from None
    maps = _feature_maps(model)
    # no feature map (e.g. an MLP): the input of the output layer is the concept space
    return maps[-1] if maps else _output_layer(model)


def _feature_maps(model) -> list:
    """Layers with a feature-map output (rank 4) computed by learned weights, input to output:
    skips the input itself and input-side rescaling."""
    out_layer, found, learned = _output_layer(model), [], False
    for layer in model.layers:
        if layer is out_layer:
            break
        learned = learned or bool(layer.weights)
        try:
            if learned and len(layer.output.shape) == 4:
                found.append(layer)
        except (AttributeError, ValueError):
            continue
    return found


def _activation_bytes(model) -> int:
    total = 0
    for layer in model.layers:
        try:
            shape = layer.output.shape
        except (AttributeError, ValueError):
            continue
        total += int(np.prod([d for d in shape[1:] if d]))
    return 4 * 3 * max(total, 1)  # float32, forward activations kept + gradients


def _keras_forward(model, cfg: ModelConfig, layer_name: str):
    import keras
    import tensorflow as tf

    logits_source = _strip_final_activation(model)
    feature_layer = _find_feature_layer(model, layer_name)
    name = feature_layer.name
    if feature_layer is _output_layer(model):
        features, name = feature_layer.input, f"{feature_layer.name} (its input)"
    else:
        features = feature_layer.output
    graph = keras.Model(model.inputs[0], [features, _logits_tensor(model)])
    to_model_space = pixel_transform(cfg)

    def forward(pixels):
        feats, logits = graph(to_model_space(pixels), training=False)
        return tf.convert_to_tensor(feats), tf.convert_to_tensor(logits)

    return forward, logits_source, name


def _saved_model_forward(cfg: ModelConfig):
    """A bare SavedModel hides its layers: features are the outputs themselves, and when the
    outputs are probabilities we optimize log-probabilities (logits up to a per-image constant)."""
    import tensorflow as tf

    try:
        obj = tf.saved_model.load(str(cfg.path))
        fn = obj.signatures["serving_default"]
    except (OSError, KeyError, ValueError) as exc:
        raise UserError(f"model.path: cannot load SavedModel {cfg.path}: {str(exc).splitlines()[0]}; "
                        "export it with a `serving_default` signature") from None
    (arg_name, spec), = fn.structured_input_signature[1].items()
    shape = tuple(spec.shape)
    to_model_space = pixel_transform(cfg)
    probe = fn(**{arg_name: tf.cast(to_model_space(tf.fill((2,) + shape[1:], 0.5)), spec.dtype)})
    (out_name, probe_out), = probe.items()
    p = probe_out.numpy()
    is_prob = bool(np.all(p >= 0) and np.allclose(p.sum(-1), 1.0, atol=1e-3))

    def forward(pixels):
        out = fn(**{arg_name: tf.cast(to_model_space(pixels), spec.dtype)})[out_name]
        logits = tf.math.log(tf.maximum(out, 1e-12)) if is_prob else out
        return logits, logits

    source = "log of SavedModel probabilities" if is_prob else "raw SavedModel outputs"
    return forward, source, shape


def load_model(cfg: ModelConfig, layer: str = "auto") -> LoadedModel:
    if cfg.application is not None:
        from audit.applications import build_application

        weights = cfg.weights or "random"
        sha = file_sha256(Path(cfg.weights)) if cfg.weights not in (None, "imagenet") else hashlib.sha256(
            f"keras.applications.{cfg.application}:{weights}".encode()).hexdigest()
        return _from_keras(build_application(cfg.application, cfg.weights, cfg.input_size), cfg, layer,
                           f"{cfg.application} ({weights} weights)", Path(cfg.application), sha)
    path = cfg.path
    sha = file_sha256(path)
    if path.is_dir():
        if cfg.input_range is None and cfg.preprocessing is None:
            raise UserError("model.input_range: is missing, and a SavedModel hides the layers it could be read from; "
                            "add `input_range: [0, 1]` (or whatever the model expects)")
        return _from_saved_model(cfg, layer, sha)
    if path.suffix.lower() not in (".keras", ".h5", ".hdf5"):
        raise UserError(f"model.path: {path.name} has an unknown format; "
                        "give a .keras or .h5 file or a SavedModel folder")
    keras_model = _load_keras(cfg)
    return _from_keras(keras_model, _with_input_range(cfg, keras_model), layer, path.name, path, sha)


def _with_input_range(cfg: ModelConfig, keras_model) -> ModelConfig:
    """The pixel range: as declared (checked against the model's own Rescaling/Normalization
    layer), or read from that layer when the config leaves it out."""
    from dataclasses import replace

    from audit.input_range import check_declared_range, range_from_layers

    if cfg.input_range is not None:
        check_declared_range(cfg.input_range, keras_model)
        return cfg
    if cfg.preprocessing is not None:
        return cfg
    found = range_from_layers(keras_model)
    if found is None:
        raise UserError("model.input_range: is missing and the model has no Rescaling or Normalization layer to "
                        "read it from; say what pixel values it expects: `input_range: [0, 1]` or `[0, 255]`")
    return replace(cfg, input_range=found[0])


def _check_input(shape) -> tuple[int, int, int]:
    if len(shape) != 4 or any(d is None for d in shape[1:]) or shape[-1] not in (1, 3):
        raise UserError(f"model.path: input shape {shape} is not a fixed-size image (N, H, W, 1 or 3); "
                        "export the model with a fixed input size")
    return tuple(int(d) for d in shape[1:])


def _class_names(cfg: ModelConfig, n_out: int) -> tuple[str, ...]:
    if cfg.classes is None:
        return tuple(str(i) for i in range(n_out))
    if n_out != len(cfg.classes):
        raise UserError(f"model.classes: {len(cfg.classes)} names given but the model has {n_out} outputs; "
                        "list one name per output, in order")
    return tuple(cfg.classes)


def _from_keras(keras_model, cfg: ModelConfig, layer: str, name: str, path: Path, sha: str) -> LoadedModel:
    if len(keras_model.inputs) != 1 or len(keras_model.outputs) != 1:
        raise UserError(f"model.path: {name} has {len(keras_model.inputs)} inputs and "
                        f"{len(keras_model.outputs)} outputs; audit needs one image input and one class output")
    input_shape = _check_input(tuple(keras_model.inputs[0].shape))
    classes = _class_names(cfg, int(keras_model.outputs[0].shape[-1]))
    forward, source, feature_layer = _keras_forward(keras_model, cfg, layer)
    return LoadedModel(name=name, path=path, sha256=sha, input_shape=input_shape, classes=classes,
                       logits_source=source, feature_layer=feature_layer, forward=forward, keras_model=keras_model,
                       activation_bytes_per_image=_activation_bytes(keras_model),
                       to_model_space=pixel_transform(cfg), input_range=cfg.input_range)


def _from_saved_model(cfg: ModelConfig, layer: str, sha: str) -> LoadedModel:
    import tensorflow as tf

    path = cfg.path
    if not (path / "saved_model.pb").exists():
        raise UserError(f"model.path: {path} is a folder without saved_model.pb; "
                        "give a .keras or .h5 file or a SavedModel folder")
    if layer != "auto":
        raise UserError("concepts.layer: a SavedModel folder does not expose its layers; "
                        "use `layer: auto` or give the model as a .keras file")
    forward, source, shape = _saved_model_forward(cfg)
    input_shape = _check_input(shape)
    _, logits = forward(tf.zeros((1,) + input_shape))
    return LoadedModel(name=path.name, path=path, sha256=sha, input_shape=input_shape,
                       classes=_class_names(cfg, int(logits.shape[-1])), logits_source=source,
                       feature_layer="(model outputs)", forward=forward, keras_model=None,
                       activation_bytes_per_image=4 * 3 * 1_000_000, to_model_space=pixel_transform(cfg))


def feature_map_layers(model: LoadedModel) -> list[str]:
    """Names of the model's feature-map layers, input to output (none for a bare SavedModel)."""
    return [] if model.keras_model is None else [layer.name for layer in _feature_maps(model.keras_model)]


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
            raise UserError(f"{key}: the model has no layer {name!r}; layers: {listed}") from None
    graph = keras.Model(km.inputs[0], [*outputs, _logits_tensor(km)])

    def read(pixels):
        values = graph(model.to_model_space(pixels), training=False)
        if not isinstance(values, (list, tuple)):  # a single output comes back bare
            values = [values]
        return dict(zip(layers, values[:-1])), values[-1]

    return read
