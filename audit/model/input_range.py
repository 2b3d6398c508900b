"""The pixel range a model expects, read from its own Rescaling or Normalization layer, and a
sanity check on labelled probes: a wrong range gives a confident wrong verdict (every probe
predicted as one class), so it stops the run with the fix instead."""

from __future__ import annotations

import numpy as np

from audit.errors import UserError

STANDARD = ((0.0, 1.0), (0.0, 255.0), (-1.0, 1.0))
LOOK_AT = 8  # input-side layers searched for a Rescaling / Normalization


def _snap(lo: float, hi: float) -> tuple[float, float]:
    """The standard range nearest to what a layer implies (e.g. (x - 127) / 128 -> [0, 255])."""
    if hi > 20:
        return (0.0, 255.0)
    return (-1.0, 1.0) if lo < -0.5 else (0.0, 1.0)


def range_from_layers(keras_model) -> tuple[tuple[float, float], str] | None:
    """((low, high), layer name) implied by the first Rescaling/Normalization layer, or None.
    A Rescaling maps x -> x * scale + offset onto [0, 1] (offset >= 0) or [-1, 1] (offset < 0);
    a Normalization's mean tells 0..255 inputs (mean > 2) from 0..1 ones."""
    import keras

    for layer in _input_side(keras_model)[:LOOK_AT]:
        if isinstance(layer, keras.layers.Rescaling):
            scale = float(np.mean(np.asarray(layer.scale, dtype=np.float64)))
            offset = float(np.mean(np.asarray(layer.offset, dtype=np.float64)))
            if scale <= 0:
                return None
            low_out = -1.0 if offset < 0 else 0.0
            return _snap((low_out - offset) / scale, (1.0 - offset) / scale), layer.name
        if isinstance(layer, keras.layers.Normalization):
            mean = getattr(layer, "mean", None)
            if mean is None:
                return None
            m = float(np.mean(np.asarray(mean, dtype=np.float64)))
            return ((0.0, 255.0) if m > 2.0 else (0.0, 1.0)), layer.name
    return None


def _input_side(keras_model) -> list:
    """The model's layers in order, a nested network's own layers in its place (a trained network
    saved inside a wrapper keeps its Rescaling inside)."""
    import keras

    out = []
    for layer in getattr(keras_model, "layers", []):
        out += _input_side(layer) if isinstance(layer, keras.Model) else [layer]
    return out


def check_declared_range(declared: tuple[float, float], keras_model) -> None:
    """A declared range that contradicts the model's own input layer is a config error."""
    found = range_from_layers(keras_model)
    if found is None:
        return
    (lo, hi), name = found
    if max(abs(declared[1]), 1e-9) / max(abs(hi), 1e-9) > 20 or max(abs(hi), 1e-9) / max(abs(declared[1]), 1e-9) > 20:
        raise UserError(f"model.input_range: {list(declared)} contradicts the model's own `{name}` layer, which "
                        f"expects pixels in [{lo:g}, {hi:g}]; set `input_range: [{lo:g}, {hi:g}]` (or leave it out "
                        "to read it from that layer)")


CHANCE_FACTOR = 1.5   # accuracy at most this times chance is "near chance"
DOMINANT_SHARE = 0.9  # one class taking this share of predictions (over >= 3 labelled classes)
POOR = 0.5            # below this accuracy the other standard ranges are tried


def class_order_fit(labels: np.ndarray, predicted: np.ndarray, n_classes: int) -> tuple[np.ndarray, float]:
    """(order, accuracy): the one-to-one matching of labelled classes to the model's outputs that
    gets the most probes right (order[label] = output index), and that accuracy."""
    from scipy.optimize import linear_sum_assignment

    counts = np.zeros((n_classes, n_classes))
    np.add.at(counts, (labels, predicted), 1.0)
    rows, cols = linear_sum_assignment(-counts)
    order = np.arange(n_classes)
    order[rows] = cols
    return order, float(counts[rows, cols].sum() / max(len(labels), 1))


def _class_order_error(labels: np.ndarray, predicted: np.ndarray, classes: tuple[str, ...],
                       accuracy: float) -> UserError | None:
    """A config whose class names are in another order than the model's outputs (the sorted
    folder names of image_dataset_from_directory for a model trained otherwise) makes the model
    look near chance on its own validation images, and every name in the report wrong."""
    order, fitted = class_order_fit(labels, predicted, len(classes))
    if fitted < max(2 * accuracy, POOR):
        return None
    moved = [(classes[c], classes[order[c]]) for c in np.unique(labels) if order[c] != c]
    if not moved:
        return None
    examples = ", ".join(f"the `{a}` probes are predicted as `{b}`" for a, b in moved[:3])
    fix = ""
    if len(np.unique(labels)) == len(classes):  # every output matched: the whole order is known
        names = [""] * len(classes)
        for c in range(len(classes)):
            names[order[c]] = classes[c]
        fix = f"; in the model's output order they would be [{', '.join(names)}]"
    return UserError(f"model.classes: the class names are not in the model's output order: the model gets "
                     f"{accuracy:.0%} of the labelled probes right as named, {fitted:.0%} with the names matched "
                     f"one to one ({examples}){fix}; list the classes in the order the model was trained with "
                     "(image_dataset_from_directory sorts folder names)")


def check_probe_predictions(predict, probes_01: np.ndarray, labels: np.ndarray, classes: tuple[str, ...],
                            declared: tuple[float, float] | None, predicted: np.ndarray,
                            top_share: float) -> str | None:
    """None when the labelled probes look sane. When the model does poorly on them, the other
    standard pixel ranges are tried: if one makes the model right (at least twice as accurate and
    >= 50%), the run stops (UserError naming model.input_range). Then the class names: if matching
    them to the outputs one to one makes the model as right, the run stops (UserError naming
    model.classes). If neither helps and the model is near chance or sends nearly everything to one
    class, a note for the report and the console (the audit goes on: the model itself may be that
    bad, e.g. one that learned only a shortcut). `predict`: the model's input values -> its class
    scores (None: other ranges are not tried)."""
    n_classes = len(classes)
    chance = 1.0 / n_classes
    present = len(np.unique(labels))
    if present < 2:
        return None
    accuracy = float((predicted == labels).mean())
    dominated = top_share >= DOMINANT_SHARE and present >= 3
    if accuracy >= POOR and not dominated:
        return None
    if predict is not None and declared is not None:
        best = None
        for lo, hi in STANDARD:
            if (lo, hi) == tuple(float(v) for v in declared):
                continue
            x = (lo + (hi - lo) * probes_01).astype(np.float32)
            acc = float((np.asarray(predict(x)).argmax(-1) == labels).mean())
            if best is None or acc > best[1]:
                best = ((lo, hi), acc)
        if best is not None and best[1] >= max(2 * accuracy, POOR):
            (lo, hi), acc = best
            raise UserError(f"model.input_range: with {[float(v) for v in declared]} the model gets {accuracy:.0%} of "
                            f"the labelled probes right (chance {chance:.0%}; one class takes {top_share:.0%} of the "
                            f"predictions), with [{lo:g}, {hi:g}] it gets {acc:.0%}; set `input_range: [{lo:g}, {hi:g}]`")
    if accuracy < POOR and (err := _class_order_error(labels, predicted, classes, accuracy)) is not None:
        raise err
    if accuracy <= CHANCE_FACTOR * chance or dominated:
        return (f"the model gets {accuracy:.0%} of its labelled probes right (chance {chance:.0%}) and one class takes "
                f"{top_share:.0%} of the predictions; no standard pixel range or class order does better, so the "
                "model itself is near chance on them")
    return None
