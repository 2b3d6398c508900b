"""The `model:` section: which network (a file, or a keras.applications architecture), its class
names, and the pixel values it expects (a range, a preprocessing, or read from the model)."""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from pathlib import Path

from audit.config.reader import Section, name_list, read_class_names
from audit.config.yaml_input import short_repr
from audit.errors import UserError

# The keras.applications modules whose preprocess_input a model may name (`model.preprocessing`);
# audit/model/load.py imports the one named.
PREPROCESSING = ("mobilenet", "mobilenet_v2", "mobilenet_v3", "resnet50", "resnet", "resnet_v2", "vgg16", "vgg19",
                 "inception_v3", "xception", "densenet", "efficientnet", "efficientnet_v2",
                 "convnext", "nasnet", "inception_resnet_v2", "regnet")

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


@dataclass(frozen=True)
class ModelConfig:
    path: Path | None                # a model file or SavedModel folder, or
    classes: tuple[str, ...] | None
    classes_file: Path | None
    input_range: tuple[float, float] | None
    preprocessing: str | None
    trust_code: bool
    application: str | None = None   # a keras.applications architecture, with
    weights: str | None = None       # None (random), "imagenet" (Keras' cache) or a weights file
    input_size: tuple[int, int] | None = None  # for an application: (height, width)


def model_inputs(model: ModelConfig) -> list[tuple[str, Path | None]]:
    """(key, path) of every file the model section makes a command read."""
    weights = Path(model.weights) if model.weights not in (None, "imagenet") else None
    return [("model.path", model.path), ("model.classes_file", model.classes_file), ("model.weights", weights)]


def parse_model(sec: Section, classes_required: bool = True) -> ModelConfig:
    application = sec.get("application", str, fix="name a keras.applications architecture, e.g. ResNet50")
    path = sec.path_value("path", required=application is None)
    if path is not None and application is not None:
        sec.fail(sec.key("application"), "both `path` and `application` are given", "keep one of them")
    weights, input_size = _application(sec, application) if application is not None else (None, None)
    classes, classes_file = _classes(sec, classes_required and application is None)
    rng, pre = _pixels(sec, application)
    # neither given: read from the model's own Rescaling/Normalization layer when it is loaded (model.py)
    trust = sec.get("trust_code", bool, default=False)
    if path is not None:
        _check_file(sec, path, trust, "path")  # a SavedModel folder is code; a model file must not inflate
    sec.finish()
    return ModelConfig(path, classes, classes_file, tuple(float(v) for v in rng) if rng else None, pre, trust,
                       application, weights, input_size)


def _check_file(sec: Section, path: Path, trust_code: bool, name: str) -> None:
    from audit.config.model_files import check_model_path

    try:
        check_model_path(path, trust_code, sec.key(name))
    except UserError as exc:
        raise UserError(f"{sec.file}: {exc}") from None


def _application(sec: Section, application: str) -> tuple[str | None, tuple[int, int] | None]:
    """(weights, input_size) of a keras.applications architecture."""
    if application not in APPLICATIONS:
        close = difflib.get_close_matches(application, list(APPLICATIONS), n=1)
        sec.fail(sec.key("application"), f"unknown architecture {short_repr(application)}",
                 f"did you mean `{close[0]}`?" if close else f"use one of: {', '.join(APPLICATIONS)}")
    weights = sec.get("weights", str, fix="write `imagenet`, a weights file path, or leave it out (random)")
    if weights is not None and weights != "imagenet":
        weights = str(sec.path_value("weights", must="file"))
        _check_file(sec, Path(weights), False, "weights")  # a weights file must not inflate when loaded either
    size = sec.get("input_size", list, fix="write it as [height, width]")
    if size is not None and (len(size) != 2 or not all(isinstance(v, int) and 32 <= v <= 4096 for v in size)):
        sec.fail(sec.key("input_size"), f"invalid size {short_repr(size)}",
                 "write it as [height, width], each from 32 to 4096")
    return weights, tuple(size) if size else None


def _classes(sec: Section, required: bool) -> tuple[tuple[str, ...] | None, Path | None]:
    """(class names, the file they were read from): `classes: [...]` or `classes_file:`."""
    classes = name_list(sec, "classes", "list the class names in output order, e.g. [cat, dog]")
    classes_file = sec.path_value("classes_file", required=False, must="file")
    if classes is not None and classes_file is not None:
        sec.fail(sec.key("classes"), "both `classes` and `classes_file` are given", "keep one of them")
    if classes is None and classes_file is None and required:
        sec.fail(sec.key("classes"), "is missing", "add `classes: [...]` or `classes_file: classes.txt`")
    if classes_file is not None:
        try:
            classes = read_class_names(classes_file)
        except (OSError, UnicodeDecodeError) as exc:
            sec.fail(sec.key("classes_file"), f"cannot read {classes_file} ({type(exc).__name__})",
                     "give a UTF-8 text file with one class name per line")
        if not classes:
            sec.fail(sec.key("classes_file"), f"{classes_file} lists no class", "write one class name per line")
    if classes is not None and len(set(classes)) != len(classes):
        sec.fail(sec.key("classes"), "class names repeat", "give each output a unique name")
    return classes, classes_file


def _pixels(sec: Section, application: str | None) -> tuple[list | None, str | None]:
    """(input_range, preprocessing): at most one of them; an application defaults to its own."""
    rng = sec.get("input_range", list, fix="write it as [low, high], e.g. [0, 1] or [0, 255]")
    if rng is not None and (len(rng) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                     and math.isfinite(v) for v in rng) or rng[0] >= rng[1]):
        sec.fail(sec.key("input_range"), f"invalid range {short_repr(rng)}",
                 "write it as [low, high] with low < high")
    pre = sec.get("preprocessing", str, check=lambda v: v in PREPROCESSING,
                  fix=f"use one of: {', '.join(PREPROCESSING)}")
    if rng is not None and pre is not None:
        sec.fail(sec.key("input_range"), "both `input_range` and `preprocessing` are given", "keep one of them")
    if rng is None and pre is None and application is not None:
        pre = APPLICATIONS[application]  # the architecture's own preprocessing
    return rng, pre
