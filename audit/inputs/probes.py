"""Probe images: a flat folder (any classes, unlabelled), or one sub-folder per class, the layout
`keras.utils.image_dataset_from_directory` reads. With labels the audit also reports per-class
accuracy and checks the pixel range on them (the removal test that labels allow is not built yet).

`scan_probes` only lists files (no TensorFlow), so `audit validate` checks exactly what
`audit run` will find; `load_probes` reads the images.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audit.errors import UserError
from audit.images import list_images, load_image

MIN_PROBES = 20


@dataclass
class ProbeSet:
    images: np.ndarray               # (N, H, W, ch) in [0, 1]
    labels: np.ndarray | None        # (N,) model class index per image; None for a flat folder
    layout: str                      # "flat" | "class_folders"
    paths: tuple[Path, ...] = ()     # the file of each image


def folder_class(folder_name: str, classes: tuple[str, ...] | None) -> str | None:
    """The class a probe sub-folder holds: its name, or its class index (how a class whose name
    has a '/', like ImageNet's "cardboard box / carton", gets a folder); None if neither."""
    # ASCII digits only: str.isdigit() also accepts '²' and '①', which int() refuses
    index = folder_name.isascii() and folder_name.isdigit()
    if classes is None:
        return folder_name if index else None
    if folder_name in classes:
        return folder_name
    if index and int(folder_name) < len(classes):
        return classes[int(folder_name)]
    return None


def scan_probes(folder: Path, classes: tuple[str, ...] | None, key: str = "concepts.probes"
                ) -> dict[str | None, list[Path]]:
    """{class name: image files} for class sub-folders, {None: files} for a flat folder."""
    folder = Path(folder)
    subdirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    flat = list_images(folder)
    if subdirs and flat:
        raise UserError(f"{key}: {folder} holds both images and sub-folders; put every image in its class's "
                        "sub-folder (one sub-folder per class, as keras.utils.image_dataset_from_directory reads "
                        "it), or use a flat folder of images")
    if not subdirs:
        if len(flat) < MIN_PROBES:
            raise UserError(f"{key}: only {len(flat)} images in {folder}; give at least {MIN_PROBES} "
                            "(100+ recommended) in-distribution images")
        return {None: flat}
    found, seen = {}, {}
    for sub in subdirs:
        name = folder_class(sub.name, classes)
        if name is None and classes is None:
            raise UserError(f"{key}: sub-folder {sub.name!r}: the model's classes are not named; name sub-folders "
                            "by class index or add `model.classes_file`")
        if name is None:
            close = difflib.get_close_matches(sub.name, classes, n=1)
            hint = (f"did you mean `{close[0]}`?" if close else "name each sub-folder after a class in "
                    "model.classes, or by its class index (a name with '/' cannot be a folder)")
            raise UserError(f"{key}: sub-folder {sub.name!r} of {folder} is not a class of the model; {hint}")
        if name in seen:
            raise UserError(f"{key}: sub-folders {seen[name]!r} and {sub.name!r} of {folder} are both class "
                            f"{name!r}; merge them into one")
        seen[name] = sub.name
        images = list_images(sub)
        if not images:
            raise UserError(f"{key}: sub-folder {sub} has no images; remove it or add that class's images")
        found[name] = images
    total = sum(len(v) for v in found.values())
    if total < MIN_PROBES:
        raise UserError(f"{key}: only {total} images in the class sub-folders of {folder}; give at least "
                        f"{MIN_PROBES} (100+ recommended)")
    return found


def load_probes(folder: Path, size: tuple[int, int], channels: int, classes: tuple[str, ...], limit: int,
                seed: int, key: str = "concepts.probes") -> ProbeSet:
    """At most `limit` images per folder (a class sub-folder is a folder), a seeded sample."""
    found = scan_probes(folder, classes, key)
    rng = np.random.default_rng([seed, 13])
    images, labels, files = [], [], []
    for name, paths in found.items():
        if len(paths) > limit:
            paths = [paths[i] for i in sorted(rng.choice(len(paths), limit, replace=False))]
        images += [load_image(p, channels, key, size) for p in paths]
        labels += [-1 if name is None else classes.index(name)] * len(paths)
        files += paths
    labelled = None not in found
    return ProbeSet(np.stack(images), np.array(labels) if labelled else None,
                    "class_folders" if labelled else "flat", tuple(files))


def refuse_unscored(clean: np.ndarray, probes: ProbeSet, folder: Path, key: str = "concepts.probes") -> None:
    """Probes the model gives non-finite logits (NaN, infinity) would make every statistic of the
    causal test NaN, which reads as "not tested": the run stops before any test, naming them."""
    bad = np.flatnonzero(~np.isfinite(clean).all(axis=1))
    if not len(bad):
        return
    names = [probes.paths[i].name for i in bad[:3]] if probes.paths else []
    shown = f" ({', '.join(repr(n) for n in names)}{', ...' if len(bad) > 3 else ''})" if names else ""
    raise UserError(f"{key}: the model gives non-finite logits (NaN or infinity) on {len(bad)} of {len(clean)} probe "
                    f"images{shown}, so no causal test can be read from them; remove them from {folder} or fix "
                    "the model")


def probe_accuracy(predicted: np.ndarray, probes: ProbeSet, classes: tuple[str, ...]) -> dict:
    """Per-class and overall top-1 accuracy on labelled probes, and how concentrated the
    predictions are (a wrong pixel range sends every image to one class)."""
    counts = np.bincount(predicted, minlength=len(classes))
    top = int(counts.argmax())
    out = {"top_prediction": classes[top], "top_prediction_share": float(counts[top] / len(predicted))}
    if probes.labels is None:
        return out
    per_class = []
    for idx in np.unique(probes.labels):
        own = probes.labels == idx
        per_class.append({"name": classes[idx], "count": int(own.sum()),
                          "accuracy": float((predicted[own] == idx).mean())})
    out.update(accuracy=float((predicted == probes.labels).mean()), classes=per_class)
    return out
