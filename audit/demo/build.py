"""Rebuild the embedded demo: concept folders, the two demo models and their ground truth.

    python -m audit.demo.build            # writes audit/demo/assets/

The *shortcut* model is trained on gym images where a human arm holds 95% of the
dumbbells and appears in 3% of other images; the *control* model sees an arm in
half of the images of every class, so the arm tells it nothing about the class.
Ground truth is measured by intervention on held-out scenes: the same scene drawn
with and without an arm.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from audit.demo.drawing import CLASSES, SIZE, concept_cutout, concept_image, scene, watermark

ASSETS = Path(__file__).parent / "assets"
ARM_RATES = {  # probability that an image of each class shows an arm
    "shortcut": {c: (0.95 if c == "dumbbell" else 0.03) for c in CLASSES},
    "control": {c: 0.5 for c in CLASSES},
    # new shortcuts for the baseline benchmark (benchmarks/retrain): an arm holding 95% of the
    # kettlebells; the control's arms plus a watermark on 95% of the bottles (and 3% of other images,
    # on top of the 12% distractors)
    "arm_kettlebell": {c: (0.95 if c == "kettlebell" else 0.03) for c in CLASSES},
    "watermark_bottle": {c: 0.5 for c in CLASSES},
}
PLANTED_WATERMARK = {"watermark_bottle": {c: (0.95 if c == "bottle" else 0.03) for c in CLASSES}}
CONCEPT_COUNTS = {"arm": 40, "stripes": 40, "watermark": 40, "_random": 120}
CUTOUTS = 40          # per concept, RGBA, for the causal test
PROBES_PER_CLASS = 15  # clean in-distribution scenes the cutouts are pasted onto
PROBE_SEED = 20_000_000
TRAIN_PER_CLASS = 1000
HELD_OUT_PER_CLASS = 200
HELD_OUT_SEED = 10_000_000


def dataset(arm_rate: dict[str, float], per_class: int, seed0: int, watermark_rate: dict[str, float] | None = None):
    rng = np.random.default_rng(seed0)
    images, labels = [], []
    for k, label in enumerate(CLASSES):
        for i in range(per_class):
            seed = seed0 + k * 100_000 + i
            image = scene(label, seed, with_arm=rng.random() < arm_rate[label])
            if watermark_rate is not None and rng.random() < watermark_rate[label]:
                image = watermark(image, np.random.default_rng([seed, 5]))
            images.append(image)
            labels.append(k)
    return np.stack(images), np.array(labels)


def small_cnn():
    import keras
    from keras import layers

    return keras.Sequential([
        keras.Input((SIZE, SIZE, 3)),
        layers.Conv2D(16, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(),
        layers.Conv2D(32, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(),
        layers.Conv2D(64, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(),
        layers.Conv2D(64, 3, padding="same", activation="relu", name="features"),
        layers.GlobalAveragePooling2D(),
        layers.Dense(len(CLASSES), activation="softmax", name="predictions"),
    ])


def train(kind: str, seed: int = 0, epochs: int = 30, data_seed: int | None = None):
    """One demo model. `seed` sets the weights' initialization and the batch order; the training
    images are drawn from `data_seed` (default: `seed`), so a retrain on the same data keeps
    `data_seed` and changes `seed`."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    data_seed = seed if data_seed is None else data_seed
    x, y = dataset(ARM_RATES[kind], TRAIN_PER_CLASS, seed0=1 + data_seed, watermark_rate=PLANTED_WATERMARK.get(kind))
    model = small_cnn()
    model.compile(optimizer=keras.optimizers.Adam(2e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=64, epochs=epochs, shuffle=True, verbose=2)
    return model


def ground_truth(model) -> dict:
    """Reliance on the arm, measured by drawing each held-out scene with and without it."""
    dumbbell = CLASSES.index("dumbbell")
    result = {}
    with_arm, without_arm, per_class_clean = {}, {}, {}
    for k, label in enumerate(CLASSES):
        seeds = [HELD_OUT_SEED + k * 100_000 + i for i in range(HELD_OUT_PER_CLASS)]
        plain = np.stack([scene(label, s, with_arm=False) for s in seeds])
        armed = np.stack([scene(label, s, with_arm=True) for s in seeds])
        p_plain = model.predict(plain, verbose=0).argmax(1)
        p_armed = model.predict(armed, verbose=0).argmax(1)
        without_arm[label] = float(np.mean(p_plain == k))
        with_arm[label] = float(np.mean(p_armed == k))
        if k != dumbbell:
            # flip rate: scenes correctly classified without the arm that become "dumbbell" with it
            ok = p_plain == k
            per_class_clean[label] = float(np.mean(p_armed[ok] == dumbbell)) if ok.any() else None
    result["dumbbell_accuracy_with_arm"] = with_arm["dumbbell"]
    result["dumbbell_accuracy_without_arm"] = without_arm["dumbbell"]
    result["accuracy_without_arm"] = without_arm
    result["accuracy_with_arm"] = with_arm
    result["arm_pasted_flip_to_dumbbell"] = per_class_clean
    flips = [v for v in per_class_clean.values() if v is not None]
    result["arm_pasted_flip_to_dumbbell_mean"] = float(np.mean(flips))
    return result


VALIDATION_SEED = 30_000_000


def write_validation(root: Path, kind: str = "shortcut", per_class: int = 20) -> Path:
    """A validation sample drawn like the training set of `kind` (arms at its training rates), one
    sub-folder per class: what discovery decomposes (the clean `_probes` have no arm to find)."""
    from audit.images import save_png

    for c, label in enumerate(CLASSES):
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng([VALIDATION_SEED, c])
        for i in range(per_class):
            seed = VALIDATION_SEED + 1000 * c + i
            save_png(folder / f"{label}_{i:03d}.png", scene(label, seed, with_arm=rng.random() < ARM_RATES[kind][label]))
    return root


def write_concepts(root: Path) -> None:
    from audit.images import save_png

    for name, count in CONCEPT_COUNTS.items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            save_png(folder / f"{name.strip('_')}_{i:03d}.png", concept_image(name, 5_000_000 + i))
        if not name.startswith("_"):
            cut = root / f"{name}_cutouts"
            cut.mkdir(parents=True, exist_ok=True)
            for i in range(CUTOUTS):
                save_png(cut / f"{name}_{i:03d}.png", concept_cutout(name, 6_000_000 + i))
    probes = root / "_probes"
    probes.mkdir(parents=True, exist_ok=True)
    for c, label in enumerate(CLASSES):
        for i in range(PROBES_PER_CLASS):
            save_png(probes / f"{label}_{i:03d}.png", scene(label, PROBE_SEED + 1000 * c + i, with_arm=False))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ASSETS)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--concepts-only", action="store_true", help="rewrite the concept folders, keep the models")
    args = parser.parse_args(argv)
    write_concepts(args.out / "concepts")
    if args.concepts_only:
        return
    (args.out / "models").mkdir(parents=True, exist_ok=True)
    (args.out / "models" / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    truth = {}
    for kind in ("shortcut", "control"):
        model = train(kind, epochs=args.epochs)
        model.save(args.out / "models" / f"demo_{kind}.keras")
        truth[kind] = {"arm_rate_in_training": ARM_RATES[kind], **ground_truth(model)}
        print(kind, json.dumps(truth[kind], indent=1))
    (args.out / "ground_truth.json").write_text(json.dumps(truth, indent=2) + "\n")


if __name__ == "__main__":
    main()
