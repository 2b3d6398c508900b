"""Model intake: load a Keras classifier safely and expose its pre-softmax logits.

`LoadedModel.forward(pixels)` takes images in [0, 1] (the space the optimizer and the
concept folders live in), applies the model's own input scaling, and returns the
activations of the concept layer and the class logits, both differentiable.
"""

from __future__ import annotations

import hashlib
import os
import importlib
from pathlib import Path
from typing import Callable

import numpy as np

from audit.config.model import PREPROCESSING, ModelConfig
from audit.config.model_files import check_model_path
from audit.errors import UserError
from audit.model.graph import (activation_bytes, binary_logits, check_head, check_scores, enter, find_feature_layer,
                               looks_like_probabilities, strip_final_activation)
from audit.model.head import Head, find_head
# the stage's value and its batch sizes, defined in loaded.py (graph.py reads it too); imported from here as well
from audit.model.loaded import MAX_FORWARD_BATCH, LoadedModel, forward_batch_size, gradient_batch_size  # noqa: F401


def _compiled(forward: Callable) -> Callable:
    import tensorflow as tf

    return tf.function(forward, reduce_retracing=True)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        if path.is_dir():  # the name's own bytes: a name that is not UTF-8 is hashed as it is on disk
            h.update(os.fsencode(f.relative_to(path)) + b"\0")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def pixel_transform(cfg: ModelConfig) -> Callable:
    """[0, 1] pixels -> what the model was trained on."""
    if cfg.input_range is not None:
        lo, hi = cfg.input_range
        return lambda x: lo + (hi - lo) * x
    if cfg.preprocessing not in PREPROCESSING:  # the config allows only these; never import another module
        raise KeyError(cfg.preprocessing)
    module = importlib.import_module(f"keras.applications.{cfg.preprocessing}")
    return lambda x: module.preprocess_input(x * 255.0)


def load_keras(cfg: ModelConfig):
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


def _keras_forward(head: Head, cfg: ModelConfig, layer_name: str, binary: bool = False):
    import keras
    import tensorflow as tf

    logits_source = strip_final_activation(head)
    feature_layer = find_feature_layer(head, layer_name)
    name = feature_layer.name
    if feature_layer is head.layer:
        features, name = feature_layer.input, f"{feature_layer.name} (its input)"
    else:
        features = feature_layer.output
    graph = keras.Model(head.net.inputs[0], [features, head.logits])
    to_model_space = _to_net_space(head, cfg)

    def forward(pixels):
        feats, logits = graph(to_model_space(pixels), training=False)
        logits = tf.convert_to_tensor(logits)
        return tf.convert_to_tensor(feats), binary_logits(logits) if binary else logits

    return forward, logits_source, name


def _to_net_space(head: Head, cfg: ModelConfig) -> Callable:
    """[0, 1] pixels -> the input of the network the audit reads (through a wrapper's layers)."""
    to_model_space = pixel_transform(cfg)
    if not head.entry:
        return to_model_space
    return lambda pixels: enter(head, to_model_space(pixels))


def _refuse_probabilities(forward: Callable, input_shape: tuple, name: str, source: str) -> None:
    """The last guard: logits that sum to 1 on a few images are probabilities whose softmax was not
    found (a softmax of a softmax, one computed by an op or a custom layer). Read as logits they
    would open the gate, so the model is refused."""
    import tensorflow as tf

    images = tf.concat([tf.fill((1,) + input_shape, v) for v in (0.0, 0.5, 1.0)]
                       + [tf.random.stateless_uniform((2,) + input_shape, (0, 0))], 0)
    if looks_like_probabilities(forward(images)[1].numpy()):
        raise UserError(f"model.path: {name} gives probabilities: what the audit would read as its logits ({source}) "
                        "sums to 1 on every image, and the softmax that makes them cannot be undone; save the model "
                        "with its softmax as the last layer, or without it (raw logits)")


def _saved_model_forward(cfg: ModelConfig):
    """A bare SavedModel hides its layers: features are the outputs themselves, and when the
    outputs are probabilities we optimize log-probabilities (logits up to a per-image constant)."""
    import tensorflow as tf

    try:
        obj = tf.saved_model.load(str(cfg.path))
        fn = obj.signatures["serving_default"]
    except Exception as exc:  # noqa: BLE001 - which of these are the file's fault is decided below
        unregistered = "not registered" in str(exc)  # TensorFlow raises a RuntimeError for it
        if not (unregistered or isinstance(exc, (OSError, KeyError, ValueError, tf.errors.OpError))):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        fix = ("it needs TensorFlow ops this installation does not have (custom ops, or another TensorFlow "
               "version); export it with standard ops" if unregistered else
               "export it with a `serving_default` signature")
        raise UserError(f"model.path: cannot load SavedModel {cfg.path}: {first[:200]}; {fix}") from None
    inputs, outputs = fn.structured_input_signature[1], fn.structured_outputs
    if len(inputs) != 1 or len(outputs) != 1:
        raise UserError(f"model.path: the SavedModel {cfg.path.name} takes {len(inputs)} inputs and gives "
                        f"{len(outputs)} outputs; audit needs one image input and one class output")
    (arg_name, spec), = inputs.items()
    shape = tuple(spec.shape)
    _check_input(shape)
    to_model_space = pixel_transform(cfg)
    probe_in = tf.concat([tf.fill((1,) + shape[1:], v) for v in (0.0, 0.5, 1.0)]
                         + [tf.random.stateless_uniform((2,) + shape[1:], (0, 0))], 0)
    probe = fn(**{arg_name: tf.cast(to_model_space(probe_in), spec.dtype)})
    (out_name, probe_out), = probe.items()
    check_scores(probe_out.dtype, cfg.path.name)
    p = probe_out.numpy()
    unit = bool(np.all(p >= 0) and np.all(p <= 1))
    is_prob = looks_like_probabilities(p)
    binary = check_head(p.shape, "sigmoid" if unit else "linear", cfg, cfg.path.name)

    def forward(pixels):
        # through `obj`, not only `fn`: the signature's variables live as long as the loaded object
        out = obj.signatures["serving_default"](**{arg_name: tf.cast(to_model_space(pixels), spec.dtype)})[out_name]
        out = tf.cast(out, tf.float32)
        if binary and unit:  # a sigmoid probability -> its logit
            out = tf.math.log(tf.maximum(out, 1e-12)) - tf.math.log(tf.maximum(1.0 - out, 1e-12))
        if binary:
            out = binary_logits(out)
        logits = tf.math.log(tf.maximum(out, 1e-12)) if is_prob else out
        return logits, logits

    source = ("logit of the SavedModel's sigmoid probability, against its negation" if binary and unit else
              "SavedModel's single output as a logit, against its negation" if binary else
              "log of SavedModel probabilities" if is_prob else "raw SavedModel outputs")
    return forward, source, shape, binary


def load_model(cfg: ModelConfig, layer: str = "auto") -> LoadedModel:
    if cfg.application is not None:
        from audit.model.applications import build_application

        weights = cfg.weights or "random"
        sha = file_sha256(Path(cfg.weights)) if cfg.weights not in (None, "imagenet") else hashlib.sha256(
            f"keras.applications.{cfg.application}:{weights}".encode()).hexdigest()
        return _from_keras(build_application(cfg.application, cfg.weights, cfg.input_size), cfg, layer,
                           f"{cfg.application} ({weights} weights)", Path(cfg.application), sha)
    path = cfg.path
    check_model_path(path, cfg.trust_code)
    sha = file_sha256(path)
    if path.is_dir():
        if cfg.input_range is None and cfg.preprocessing is None:
            raise UserError("model.input_range: is missing, and a SavedModel hides the layers it could be read from; "
                            "add `input_range: [0, 1]` (or whatever the model expects)")
        return _from_saved_model(cfg, layer, sha)
    if path.suffix.lower() not in (".keras", ".h5", ".hdf5"):
        raise UserError(f"model.path: {path.name} has an unknown format; "
                        "give a .keras or .h5 file or a SavedModel folder")
    keras_model = load_keras(cfg)
    return _from_keras(keras_model, _with_input_range(cfg, keras_model), layer, path.name, path, sha)


def _with_input_range(cfg: ModelConfig, keras_model) -> ModelConfig:
    """The pixel range: as declared (checked against the model's own Rescaling/Normalization
    layer), or read from that layer when the config leaves it out."""
    from dataclasses import replace

    from audit.model.input_range import check_declared_range, range_from_layers

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


def _class_names(cfg: ModelConfig, n_out: int, binary: bool = False) -> tuple[str, ...]:
    n_out = 2 if binary else n_out
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
    check_scores(keras_model.outputs[0].dtype, name)
    head = find_head(keras_model, name)
    check_scores(head.logits.dtype, name)
    binary = check_head(tuple(keras_model.outputs[0].shape), head.activation, cfg, name)
    classes = _class_names(cfg, int(keras_model.outputs[0].shape[-1]), binary)
    forward, source, feature_layer = _keras_forward(head, cfg, layer, binary)
    if not binary:
        _refuse_probabilities(forward, input_shape, name, source)
    if binary:
        source += ", as a binary logit against its negation"
    models = (keras_model,) if head.net is keras_model else (keras_model, head.net)
    return LoadedModel(name=name, path=path, sha256=sha, input_shape=input_shape, classes=classes,
                       logits_source=source, feature_layer=feature_layer, forward=forward, keras_model=head.net,
                       activation_bytes_per_image=activation_bytes(*models),
                       to_model_space=_to_net_space(head, cfg), binary_head=binary, infer=_compiled(forward),
                       input_range=cfg.input_range, head=head,
                       enter=(lambda values: enter(head, values)) if head.entry else None)


def _from_saved_model(cfg: ModelConfig, layer: str, sha: str) -> LoadedModel:
    import tensorflow as tf

    path = cfg.path
    if layer != "auto":
        raise UserError("concepts.layer: a SavedModel folder does not expose its layers; "
                        "use `layer: auto` or give the model as a .keras file")
    forward, source, shape, binary = _saved_model_forward(cfg)
    input_shape = _check_input(shape)
    _, logits = forward(tf.zeros((1,) + input_shape))
    return LoadedModel(name=path.name, path=path, sha256=sha, input_shape=input_shape,
                       classes=_class_names(cfg, int(logits.shape[-1])), logits_source=source,
                       feature_layer="(model outputs)", forward=forward, keras_model=None,
                       activation_bytes_per_image=4 * 3 * 1_000_000, to_model_space=pixel_transform(cfg),
                       binary_head=binary, infer=_compiled(forward))


