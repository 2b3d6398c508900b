"""One peer library visualizing ImageNet classes of a real Keras 3 network; run inside the peer venv
(benchmarks/speed/peers_env.sh), never imports `audit`. Driven by benchmarks/peers/run.py:

    python peer.py --setting {tf-keras-vis,xplique-fourier,xplique-fourier-224,xplique-maco} \
        --model LITE0.keras --targets 1,2,3 --steps 256 --snapshots 32,64,128,256 --out OUT.npz
    python peer.py --model LITE0.keras --dump-logits OUT.npz   # the cross-venv logits check

Every setting optimizes the network's *logits* (the `logits` Dense layer; the file's last layer is a
separate Softmax, which both libraries' docs say to remove), over the network's own pixel range
0..255, with the library's documented defaults otherwise:

tf-keras-vis   ActivationMaximization(logits_model)(CategoricalScore(targets), seed_input=uniform(N, 224,
  224, 3) over 0..255, input_range=(0, 255), steps=S); defaults: input_modifiers=[Jitter(4),
  Rotate2D(1)], regularizers=[TotalVariation2D(1.0), Norm(0.3, p=1)], RMSprop(1.0, rho 0.999).
  All N classes in one batch. Snapshot = the clipped image its callbacks get (= what it returns).
xplique-fourier   optimize(Objective.neuron(logits_model, -1, targets), values_range=(0, 255),
  nb_steps=S, save_every=...): defaults Adam(0.05), use_fft=True, fft_decay=0.85, std=0.01, sigmoid,
  transformations="standard", custom_shape=(512, 512): images are optimized at 512 px, and the
  returned 512 px image is what is judged. All N classes in one batch.
xplique-fourier-224   the same with custom_shape=None (optimized at the network's 224 px).
xplique-maco   maco(Objective.neuron(logits_model, -1, target), values_range=(0, 255), nb_steps=S):
  MaCo (Fel et al. 2023) has one objective per call, so classes run one after the other; defaults
  Nadam(1.0), nb_crops=32 crops of the image per step, noise 0.08, box size falling linearly from
  50% to 5% of the image over the nb_steps, custom_shape=(512, 512), magnitude = xplique's stored
  ImageNet spectrum. The box schedule depends on nb_steps: a snapshot at step s < S is the image
  part-way through a S-step schedule, not what a run with nb_steps=s would give.

Timing: a hook stamps time.perf_counter() after every optimizer update (xplique: the optimizer's
apply_gradients; tf-keras-vis: a callback). ms per image-step = median interval after the first
`--warmup` steps (tracing) / images per update. Snapshots are rendered inside the hook, at most
once per 32 steps, so the median is not affected.

Output: OUT.npz with step<s> = (N, H, W, 3) uint8 images at every snapshot (what a user would save
as PNG), and OUT.json with times and the library's versions.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from importlib.metadata import version
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

LO, HI = 0.0, 255.0  # EfficientNet-Lite0's input range (its first layer does (x - 127) / 128)


def logits_model(path: str):
    model = keras.saving.load_model(path, compile=False)
    return keras.Model(model.inputs, model.get_layer("logits").output)


def to_uint8(images) -> np.ndarray:
    x = (np.asarray(images, np.float32) - LO) / (HI - LO)
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


class Recorder:
    """Per-update timestamps and the snapshots at the requested steps."""

    def __init__(self, snapshots: list[int]):
        self.snapshots, self.times, self.images = set(snapshots), [], {}

    def tick(self, step: int, render) -> None:
        """step: updates done so far (1-based); render(): the image the library would return now."""
        self.times.append(time.perf_counter())
        if step in self.snapshots:
            self.images.setdefault(step, []).append(to_uint8(render()))


def run_tf_keras_vis(model, targets, steps, rec: Recorder) -> None:
    from tf_keras_vis.activation_maximization import ActivationMaximization
    from tf_keras_vis.activation_maximization.callbacks import Callback
    from tf_keras_vis.utils.scores import CategoricalScore

    class Tick(Callback):
        def __call__(self, i, values, *args, **kwargs):
            rec.tick(i + 1, lambda: values[0])

    seed = tf.random.uniform((len(targets), *model.input_shape[1:]), LO, HI)
    ActivationMaximization(model)(CategoricalScore(targets), seed_input=seed, input_range=(LO, HI), steps=steps,
                                  callbacks=[Tick()])


def _hooked_adam(tick):
    optimizer = tf.keras.optimizers.Adam(0.05)  # = optimize()'s own default, made here to hook it
    apply = optimizer.apply_gradients

    def apply_and_tick(grads_and_vars, *a, **k):
        grads_and_vars = list(grads_and_vars)
        out = apply(grads_and_vars, *a, **k)
        tick(grads_and_vars[0][1])
        return out

    optimizer.apply_gradients = apply_and_tick
    return optimizer


def run_xplique_fourier(model, targets, steps, rec: Recorder, custom_shape=(512, 512)) -> None:
    from xplique.features_visualizations import Objective, optim, optimize

    found, make_step, done = {}, optim._get_optimisation_step, [0]

    def capture(objective_function, nb_outputs, image_param, *a, **k):
        found["image_param"] = image_param  # optimize()'s own map from its variable to the returned image
        return make_step(objective_function, nb_outputs, image_param, *a, **k)

    def tick(variable):
        done[0] += 1
        rec.tick(done[0], lambda: found["image_param"](variable))

    optim._get_optimisation_step = capture
    try:
        images, _ = optimize(Objective.neuron(model, -1, list(targets)), optimizer=_hooked_adam(tick),
                             values_range=(LO, HI), nb_steps=steps, custom_shape=custom_shape)
    finally:
        optim._get_optimisation_step = make_step
    # the hook renders what optimize() returns: check it on the last image
    assert np.array_equal(to_uint8(images[-1]), rec.images[steps][-1]), "hooked image != returned image"


def run_xplique_maco(model, targets, steps, rec: Recorder) -> None:
    import importlib

    from xplique.features_visualizations import Objective

    # the package re-exports the function `maco` under the module's name: fetch the module itself
    maco_module = importlib.import_module("xplique.features_visualizations.maco")

    step_fn = maco_module.maco_optimisation_step
    for target in targets:
        found, done = {}, [0]

        def capture(model_, objective_function, magnitude, phase, *a, **k):
            found["magnitude"], found["phase"] = magnitude, phase
            return step_fn(model_, objective_function, magnitude, phase, *a, **k)

        def render():
            return maco_module.maco_image_parametrization(found["magnitude"], found["phase"], (LO, HI))[None]

        optimizer = tf.keras.optimizers.Nadam(1.0)  # = maco()'s own default, made here to hook it
        apply = optimizer.apply_gradients

        def apply_and_tick(grads_and_vars, *a, **k):
            out = apply(grads_and_vars, *a, **k)
            done[0] += 1
            rec.tick(done[0], render)
            return out

        optimizer.apply_gradients = apply_and_tick
        maco_module.maco_optimisation_step = capture
        try:
            image, _ = maco_module.maco(Objective.neuron(model, -1, int(target)), optimizer=optimizer,
                                        values_range=(LO, HI), nb_steps=steps)
        finally:
            maco_module.maco_optimisation_step = step_fn
        assert np.array_equal(to_uint8(image[None]), rec.images[steps][-1]), "hooked image != returned image"


SETTINGS = {
    "tf-keras-vis": ("tf-keras-vis", run_tf_keras_vis),
    "xplique-fourier": ("xplique", run_xplique_fourier),
    "xplique-fourier-224": ("xplique", lambda *a: run_xplique_fourier(*a, custom_shape=None)),
    "xplique-maco": ("xplique", run_xplique_maco),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--setting", choices=sorted(SETTINGS))
    ap.add_argument("--model", required=True)
    ap.add_argument("--targets", help="comma-separated class indices")
    ap.add_argument("--steps", type=int, default=256)
    ap.add_argument("--snapshots", default="32,64,128,256")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--dump-logits", type=Path, help="write the logits of a fixed input to this .npz and exit")
    args = ap.parse_args()
    tf.random.set_seed(0)
    np.random.seed(0)  # MaCo draws its starting phase from numpy's global generator
    model = logits_model(args.model)
    if args.dump_logits:
        x = np.random.default_rng(0).uniform(LO, HI, (2, *model.input_shape[1:])).astype("float32")
        np.savez(args.dump_logits, logits=model(x, training=False).numpy())
        return 0
    if not (args.setting and args.targets and args.out):
        ap.error("--setting, --targets and --out are required")
    targets = [int(t) for t in args.targets.split(",")]
    snapshots = sorted({int(s) for s in args.snapshots.split(",") if int(s) <= args.steps} | {args.steps})
    library, run = SETTINGS[args.setting]
    rec = Recorder(snapshots)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    run(model, targets, args.steps, rec)
    seconds = time.perf_counter() - start
    per_call = 1 if args.setting == "xplique-maco" else len(targets)  # images one update moves
    laps = []  # intervals between updates, per run of `steps` updates (MaCo: one run per class)
    for k in range(0, len(rec.times), args.steps):
        laps += np.diff(rec.times[k:k + args.steps])[args.warmup - 1:].tolist()
    ms = 1000 * statistics.median(laps) / per_call
    np.savez_compressed(args.out, **{f"step{s}": np.concatenate(rec.images[s]) for s in snapshots})
    info = {"setting": args.setting, "library": library, "library_version": version(library),
            "tensorflow": tf.__version__, "keras": keras.__version__, "targets": targets, "steps": args.steps,
            "snapshots": snapshots, "images_per_update": per_call, "ms_per_image_step": ms,
            "ms_laps_quartiles": (1000 * np.percentile(laps, [25, 50, 75])).round(1).tolist(), "seconds": seconds,
            "image_size": list(np.load(args.out)[f"step{args.steps}"].shape[1:3]),
            "load_average_at_start": load}
    args.out.with_suffix(".json").write_text(json.dumps(info, indent=1))
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
