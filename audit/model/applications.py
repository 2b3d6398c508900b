"""keras.applications architectures as models: `model.application: ResNet50` with
`weights: null` (random), `imagenet` (from Keras' local cache) or a weights file."""

from __future__ import annotations


def build_application(name: str, weights: str | None, input_size: tuple[int, int] | None):
    """The architecture with its classifier head (1000 ImageNet classes unless the weights say otherwise)."""
    import keras

    from audit.errors import UserError

    kwargs = {"weights": weights, "include_top": True, "classifier_activation": "softmax"}
    if input_size is not None:
        kwargs["input_shape"] = (*input_size, 3)
    try:
        return getattr(keras.applications, name)(**kwargs)
    except Exception as exc:  # download refused offline, wrong weights file, shape rules
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        hint = ("ImageNet weights are fetched from the network on first use; put them in Keras' cache "
                "(~/.keras/models) or give `weights:` a local file") if weights == "imagenet" else \
            "check the weights file matches the architecture and input_size"
        raise UserError(f"model.application: cannot build {name} (weights {weights}): {first}; {hint}") from None
