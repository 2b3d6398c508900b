"""keras.applications architectures as models: `model.application: ResNet50` with
`weights: null` (random), `imagenet` (from Keras' local cache) or a weights file."""

from __future__ import annotations

# architecture -> its preprocessing (the keras.applications module with its preprocess_input)
APPLICATIONS = {
    "MobileNet": "mobilenet", "MobileNetV2": "mobilenet_v2", "MobileNetV3Small": "mobilenet_v3",
    "MobileNetV3Large": "mobilenet_v3", "ResNet50": "resnet50", "ResNet101": "resnet", "ResNet152": "resnet",
    "ResNet50V2": "resnet_v2", "ResNet101V2": "resnet_v2", "ResNet152V2": "resnet_v2", "VGG16": "vgg16",
    "VGG19": "vgg19", "InceptionV3": "inception_v3", "InceptionResNetV2": "inception_resnet_v2",
    "Xception": "xception", "DenseNet121": "densenet", "DenseNet169": "densenet", "DenseNet201": "densenet",
    "EfficientNetB0": "efficientnet", "EfficientNetB1": "efficientnet", "EfficientNetB2": "efficientnet",
    "EfficientNetV2B0": "efficientnet_v2", "EfficientNetV2S": "efficientnet_v2", "ConvNeXtTiny": "convnext",
    "ConvNeXtSmall": "convnext", "NASNetMobile": "nasnet",
}


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
