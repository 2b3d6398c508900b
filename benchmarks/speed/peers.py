"""Time the class visualization of peer libraries on the models our engine is benchmarked on.

Run with a peer venv's python (see peers_env.sh); it never imports `audit`:

    python peers.py --tool {tf-keras-vis,xplique} --model {mobilenetv2,resnet50,demo} \
        --batch 8 --steps 10 --warmup 2 [--weights W.npz] [--settings {defaults,bare}] \
        [--convergence] --json OUT.json
    python peers.py --model M [--weights W.npz] --dump-logits OUT.npz   # cross-venv weight check

The B images target classes [i*K//B] (i % K when B > K); one step = one update of all B images.
Pixel range handed to each peer = what the network expects: mobilenetv2 [-1, 1], resnet50 the
span of caffe preprocessing [-123.68, 151.061], demo [0, 1]. Everything else per setting:

tf-keras-vis  ActivationMaximization(model, model_modifier=ReplaceToLinear() for the demo's
  softmax head)(CategoricalScore(targets), seed_input=uniform(B,H,W,3) over the range,
  input_range=the range, ...); the demo's Keras 3 Sequential is first wrapped as a functional
  keras.Model(inputs, outputs) (same layers and weights) as ReplaceToLinear needs output_names.
  defaults: all other arguments left at theirs: input_modifiers=[Jitter(jitter=4),
    Rotate2D(degree=1)], regularizers=[TotalVariation2D(weight=1.0), Norm(weight=0.3, p=1)],
    optimizer=RMSprop(learning_rate=1.0, rho=0.999), steps=200 (for --convergence).
  bare: input_modifiers=[], regularizers=[] (same optimizer).
xplique  optimize(Objective.neuron(model, -1, targets), values_range=the range, ...), the
  demo's last activation set to linear first ("remove the softmax", its docs)
  defaults: all other arguments left at theirs: optimizer=Adam(0.05), use_fft=True,
    fft_decay=0.85, std=0.01, image_normalizer="sigmoid", transformations="standard",
    custom_shape=(512, 512) (images are optimized at 512x512 and resized to the input),
    regularizers=None, warmup_steps=False, nb_steps=256 (for --convergence).
  bare: use_fft=False, transformations=None, custom_shape=None (pixels at the model's input
    size). Not switchable: the sigmoid (the other normalizer, "clip", zeroes the gradient of
    half the pixels of its N(0, 0.01) start), colour recorrelation and per-image min-max rescale.

Timing: one call of warmup+steps steps; a hook stamps time.perf_counter() at the end of every
step (tf-keras-vis: a Callback; xplique: the optimizer's apply_gradients). ms_per_step is the
median of the `steps` intervals after the warmup steps, so tracing (xplique's tf.function) and
first-call costs fall in the warmup. tf-keras-vis runs eagerly (no tf.function).

--convergence: a second call with defaults and the peer's default number of steps; after every
step the target's softmax probability on the image the peer would return (tf-keras-vis: the
clipped values its callbacks get; xplique: optimize's own image_param applied to the variable,
resized to the input size, checked against optimize's returned image at the end). tf-keras-vis's
Rotate2D draws from an unseeded generator, so its defaults are not reproducible run to run.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time
from importlib.metadata import version
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

DEMO = Path(__file__).resolve().parents[2] / "audit/demo/assets/models/demo_shortcut.keras"
RANGES = {"mobilenetv2": (-1.0, 1.0), "resnet50": (-123.68, 151.061), "demo": (0.0, 1.0)}
THRESHOLD = 0.99


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return kib / 1024


def build_model(name: str, weights: str | None):
    if name == "demo":
        model = keras.saving.load_model(DEMO, compile=False)
    else:
        app = {"mobilenetv2": keras.applications.MobileNetV2, "resnet50": keras.applications.ResNet50}[name]
        model = app(weights=None, input_shape=(224, 224, 3), classes=1000, classifier_activation=None)
    if weights:
        with np.load(weights) as npz:  # np.savez(path, *arrays) names them arr_0..arr_N
            model.set_weights([npz[f"arr_{i}"] for i in range(len(npz.files))])
    return model


def targets_for(batch: int, classes: int) -> list[int]:
    return [i % classes if batch > classes else i * classes // batch for i in range(batch)]


class Probe:
    """Per-step timestamps and (for --convergence) the target-class probability of each image."""

    def __init__(self, logits_model, targets, input_hw, convergence: bool):
        self.times, self.probs = [], []
        self.model, self.hw, self.convergence = logits_model, input_hw, convergence
        self.targets = tf.constant(targets)

    def tick(self, image=None):
        self.times.append(time.perf_counter())
        if self.convergence:
            image = tf.image.resize(image, self.hw) if tuple(image.shape[1:3]) != self.hw else image
            p = tf.nn.softmax(self.model(image, training=False), axis=-1)
            self.probs.append(tf.gather(p, self.targets, axis=1, batch_dims=1).numpy())


def run_tf_keras_vis(model, targets, settings, steps, probe, lo, hi, softmax_head):
    from tf_keras_vis.activation_maximization import ActivationMaximization
    from tf_keras_vis.activation_maximization.callbacks import Callback
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
    from tf_keras_vis.utils.scores import CategoricalScore

    class Tick(Callback):
        def __call__(self, i, values, *args, **kwargs):
            probe.tick(values[0])

    if isinstance(model, keras.Sequential):  # ReplaceToLinear reads output_names, which Keras 3 Sequential lacks
        model = keras.Model(model.inputs, model.outputs)
    viz = ActivationMaximization(model, model_modifier=ReplaceToLinear() if softmax_head else None)
    probe.model = viz.model  # the linear-head copy
    seed = tf.random.uniform((len(targets), *model.input_shape[1:]), lo, hi)
    extra = {} if settings == "defaults" else {"input_modifiers": [], "regularizers": []}
    steps = {} if steps is None else {"steps": steps}
    viz(CategoricalScore(targets), seed_input=seed, input_range=(lo, hi), callbacks=[Tick()], **extra, **steps)


def run_xplique(model, targets, settings, steps, probe, lo, hi, softmax_head):
    from xplique.features_visualizations import Objective, optim, optimize

    if softmax_head:
        model.layers[-1].activation = keras.activations.linear
    probe.model = model
    found = {}
    make_step = optim._get_optimisation_step

    def capture(objective_function, nb_outputs, image_param, *a, **k):
        found["image_param"] = image_param  # the exact map from variable to returned image
        return make_step(objective_function, nb_outputs, image_param, *a, **k)

    optim._get_optimisation_step = capture
    optimizer = tf.keras.optimizers.Adam(0.05)  # = optimize()'s own default, made here to hook it
    apply = optimizer.apply_gradients

    def apply_and_tick(grads_and_vars, *a, **k):
        grads_and_vars = list(grads_and_vars)
        out = apply(grads_and_vars, *a, **k)
        probe.tick(found["image_param"](grads_and_vars[0][1]) if probe.convergence else None)
        return out

    optimizer.apply_gradients = apply_and_tick
    extra = {} if settings == "defaults" else {"use_fft": False, "transformations": None, "custom_shape": None}
    steps = {} if steps is None else {"nb_steps": steps}
    try:
        images, _ = optimize(Objective.neuron(model, -1, targets), optimizer=optimizer,
                             values_range=(lo, hi), **extra, **steps)
    finally:
        optim._get_optimisation_step = make_step
    if probe.convergence:  # the hook must have seen the image optimize() returns
        probe.tick(images[-1])
        assert np.allclose(probe.probs[-1], probe.probs[-2], atol=1e-5), "hooked image != returned image"
        probe.times.pop(), probe.probs.pop()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tool", choices=["tf-keras-vis", "xplique"])
    ap.add_argument("--model", required=True, choices=list(RANGES))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--weights")
    ap.add_argument("--settings", choices=["defaults", "bare"], default="defaults")
    ap.add_argument("--convergence", action="store_true")
    ap.add_argument("--json")
    ap.add_argument("--dump-logits", help="write the logits of a fixed input to this .npz and exit")
    args = ap.parse_args()
    if args.warmup < 1:
        ap.error("--warmup must be >= 1 (the first step traces / warms caches)")
    if args.convergence and args.settings != "defaults":
        ap.error("--convergence uses --settings defaults")

    tf.random.set_seed(0)
    np.random.seed(0)
    if args.tool:  # imported before the model is built, so rss_after_build counts the peer library too
        __import__({"tf-keras-vis": "tf_keras_vis.activation_maximization",
                    "xplique": "xplique.features_visualizations"}[args.tool])
    model = build_model(args.model, args.weights)
    lo, hi = RANGES[args.model]
    if args.dump_logits:
        x = np.random.default_rng(0).uniform(lo, hi, (2, *model.input_shape[1:])).astype("float32")
        np.savez(args.dump_logits, logits=model(x, training=False).numpy())
        return
    if not (args.tool and args.json):
        ap.error("--tool and --json are required")
    rss_build = rss_mib()
    classes = model.output_shape[-1]
    targets = targets_for(args.batch, classes)
    softmax_head = args.model == "demo"
    run = run_tf_keras_vis if args.tool == "tf-keras-vis" else run_xplique
    hw = tuple(model.input_shape[1:3])

    load = os.getloadavg()[0]  # other processes on the machine distort the timing
    probe = Probe(model, targets, hw, convergence=False)
    run(model, targets, args.settings, args.warmup + args.steps, probe, lo, hi, softmax_head)
    laps = np.diff(probe.times)[args.warmup - 1:]
    ms = 1000 * statistics.median(laps)

    convergence = None
    if args.convergence:
        probe = Probe(model, targets, hw, convergence=True)
        run(model, targets, "defaults", None, probe, lo, hi, softmax_head)
        probs = np.stack(probe.probs)  # (steps, B)
        first = [int(np.argmax(col >= THRESHOLD)) + 1 if (col >= THRESHOLD).any() else None for col in probs.T]
        reached = [s for s in first if s is not None]
        convergence = {
            "threshold": THRESHOLD, "steps_run": len(probs), "targets": targets,
            "first_step_at_threshold": first,
            "median_first_step": statistics.median(reached) if len(reached) == len(first) else None,
            "images_reaching": len(reached),
            "final_prob": [round(float(p), 4) for p in probs[-1]],
        }

    out = {
        "tool": args.tool, "tool_version": version(args.tool), "tensorflow": tf.__version__,
        "keras": keras.__version__, "model": args.model, "batch": args.batch, "settings": args.settings,
        "steps_timed": len(laps), "ms_per_step": round(ms, 1),
        "image_steps_per_s": round(args.batch * 1000 / ms, 2),
        "ms_laps": [round(1000 * x, 1) for x in laps],  # every timed step, to judge the noise
        "rss_after_build_mib": round(rss_build, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "convergence": convergence,
        "notes": (f"median of {len(laps)} per-step intervals after {args.warmup} warmup steps, stamped at the end "
                  f"of each step inside one call; pixel range {lo}..{hi}; weights "
                  f"{'from ' + Path(args.weights).name if args.weights else 'random init (seed 0)'}; "
                  f"targets {targets}; settings per peers.py docstring; 1-min load average {load:.2f} "
                  f"on {os.cpu_count()} CPUs when timing began"
                  + ("; softmax head replaced by linear" if softmax_head else "")
                  + ("; convergence: target softmax prob after every step on the image the peer would return "
                     "(resized to the input size when larger), median null unless all images reach it; "
                     "peak RSS includes the convergence run" if args.convergence else "")),
    }
    Path(args.json).write_text(json.dumps(out, indent=1))
    print(json.dumps({k: v for k, v in out.items() if k != "notes"}))


if __name__ == "__main__":
    main()
