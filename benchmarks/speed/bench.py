"""Speed benchmark: the audit engine vs tf-keras-vis and xplique, side by side in one run.

    python benchmarks/speed/bench.py [--quick] [--no-peers] [--out benchmarks/results/speed.json]

Every measurement runs in its own child process (so peak resident memory is that
measurement's alone): a float32 matmul peak, then per model (MobileNetV2 224 and ResNet50 224
with weights=None and 1000 logits, and the demo CNN) the engine's ms/step for 8 classes, its
FLOPs per image-step counted from the TensorFlow graph (forward plus backward to the input),
the steps it needs to reach class probability 0.99, and the same for the peers (in their own
virtual environment, see peers_env.sh). Then the engine variants we tried, and the scale run:
`audit run` (the CLI) on a 1000-class model auditing 10, 100 and 1000 classes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CACHE = ROOT / "benchmarks" / ".cache" / "speed"
DEMO = ROOT / "audit" / "demo" / "assets" / "models" / "demo_shortcut.keras"
MODELS = ("mobilenetv2", "resnet50", "demo")
BATCH = 8
STOP = 0.99


# ---------------------------------------------------------------- child measurements

def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_matmul(_args) -> dict:
    import numpy as np
    import tensorflow as tf

    n, reps = 2048, 20
    a = tf.constant(np.random.default_rng(0).standard_normal((n, n)).astype(np.float32))
    b = tf.constant(np.random.default_rng(1).standard_normal((n, n)).astype(np.float32))

    @tf.function
    def chain(x, y):
        for _ in range(reps):  # unrolled: one call, no host round-trips between matmuls
            x = tf.matmul(x, y) * 1e-3
        return x

    chain(a, b).numpy()
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        chain(a, b).numpy()
        best = min(best, time.perf_counter() - t)
    return {"n": n, "gflops": 2 * n**3 * reps / best / 1e9}


def _load(model_name: str):
    """The model as the engine sees it, with weights shared with the peers through an .npz."""
    import keras
    import numpy as np

    from audit.config import ModelConfig
    from audit.model.load import load_model

    if model_name == "demo":
        return load_model(ModelConfig(DEMO, None, None, (0.0, 1.0), None, False))
    arch = {"mobilenetv2": "MobileNetV2", "resnet50": "ResNet50"}[model_name]
    pre = {"mobilenetv2": "mobilenet_v2", "resnet50": "resnet50"}[model_name]
    keras.utils.set_random_seed(0)
    loaded = load_model(ModelConfig(None, None, None, None, pre, False, arch, None, (224, 224)))
    weights = weights_file(model_name)
    if weights.exists():
        with np.load(weights) as npz:
            loaded.keras_model.set_weights([npz[f"arr_{i}"] for i in range(len(npz.files))])
    else:
        weights.parent.mkdir(parents=True, exist_ok=True)
        np.savez(weights, *loaded.keras_model.get_weights())
    return loaded


def weights_file(model_name: str) -> Path:
    return CACHE / f"{model_name}.weights.npz"


def graph_flops(model, shape) -> tuple[float, float]:
    """FLOPs per image of the forward pass and of forward + backward to the input, summed over
    the ops the result depends on (TensorFlow's registered per-op counts; elementwise ops count 0)."""
    import tensorflow as tf
    from tensorflow.python.framework import ops

    def count(fn):
        cf = tf.function(fn).get_concrete_function(tf.TensorSpec((1,) + shape, tf.float32))
        seen, stack, total = set(), [t.op for t in cf.outputs], 0
        while stack:
            op = stack.pop()
            if op.name in seen:
                continue
            seen.add(op.name)
            stack.extend(i.op for i in op.inputs)
            try:
                total += ops.get_stats_for_node_def(cf.graph, op.node_def, "flops").value or 0
            except ValueError:  # no statistics registered for this op type
                pass
        return float(total)

    def forward(x):
        return model.forward(x)[1]

    def ascent(x):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(x)
            s = tf.reduce_sum(model.forward(x)[1][:, 0])
        return tape.gradient(s, x)

    return count(forward), count(ascent)


def _targets(n_classes: int) -> list[int]:
    return [i % n_classes if BATCH > n_classes else i * n_classes // BATCH for i in range(BATCH)]


def _config(model, steps: int, stop=None, classes=None):
    from audit.config import VisualizeConfig

    if classes is None and len(model.classes) < BATCH:  # the demo's 6 classes: 4 classes x 2 restarts
        classes = model.classes[:BATCH // 2]
    names = classes or tuple(model.classes[i] for i in _targets(len(model.classes)))
    restarts = max(1, BATCH // len(names))
    # the loop in the seed's raw mode, as the Speed numbers in docs/performance.md were measured; the readable
    # default's cost per step is in the recognizability benchmark
    return VisualizeConfig(classes=names, restarts=restarts, steps=steps, learning_rate=0.05, seed=0, jitter=0,
                           total_variation=0.0, memory_budget_mb=4096, stop_probability=stop,
                           parameterization="pixels", transforms="none")


def child_engine(args) -> dict:
    import numpy as np
    import tensorflow as tf

    from audit.visualize import optimize
    from audit.visualize.objectives import target_logit

    variant = args.variant
    if variant == "threads-2-1":  # must precede any TensorFlow op
        tf.config.threading.set_intra_op_parallelism_threads(2)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    elif variant == "sync-every-step":
        optimize.SYNC_EVERY = 1
    tf.config.experimental.enable_op_determinism()
    model = _load(args.model)
    rss_built = peak_rss_mib()
    # steady state, as for the peers: the engine's compiled loop after tracing, timed per call of
    # SYNC_EVERY steps (one host sync each, as in a real run); the median call
    cfg = _config(model, optimize.SYNC_EVERY)
    from audit.visualize.recipe import from_config

    recipe = from_config(cfg, model.input_shape)  # pixels, no transforms: the raw mode's parameters are pixels
    gradient = optimize.ascent_gradient(optimize.model_reader(model, ()), target_logit(), recipe.param.render,
                                        recipe.transforms, recipe.penalties)
    run = optimize.adam_steps(gradient, recipe.param.project, cfg.learning_rate, cfg.stop_probability)
    vis = optimize.class_visualizations(model, _config(model, 2), progress=False)  # warms the runtime
    pixels = tf.constant(vis.images.reshape((-1,) + model.input_shape))
    targets = tf.constant(np.repeat(vis.class_indices, vis.images.shape[1]))
    state = [pixels, tf.zeros_like(pixels), tf.zeros_like(pixels)]
    calls = 2 if args.quick or args.model != "demo" else 8
    n = optimize.SYNC_EVERY if args.model == "demo" else min(4, optimize.SYNC_EVERY)
    laps = []
    for i in range(calls + 1):  # the first call traces
        t = time.perf_counter()
        views = tf.constant(np.tile(np.eye(3, dtype=np.float32), (len(targets), n, 1, 1)))  # identity views
        out = run(*state, targets, views, tf.ones(len(targets), tf.bool), tf.zeros(len(targets), tf.int32),
                  tf.constant(i * n), tf.constant(n))
        out[0].numpy()
        laps.append(time.perf_counter() - t)
        state = list(out[:3])
    ms = 1000 * float(np.median(laps[1:])) / n
    n_images = len(targets)
    out = {"model": args.model, "variant": variant, "batch": n_images, "ms_per_step": ms,
           "image_steps_per_s": n_images * 1000 / ms, "rss_after_build_mib": rss_built,
           "steps_timed": calls * n, "ms_laps": [1000 * t / n for t in laps[1:]]}
    if variant == "default":
        fwd, both = graph_flops(model, model.input_shape)
        out.update(forward_gflop_per_image=fwd / 1e9, step_gflop_per_image=both / 1e9,
                   gflops=both * n_images / (ms / 1000) / 1e9)
        if not args.quick:  # 224 models: capped at 64 steps to keep the run short
            limit = 256 if args.model == "demo" else 64
            conv = optimize.class_visualizations(model, _config(model, limit, stop=STOP), progress=False)
            out["convergence"] = _convergence(conv, limit)
    out["peak_rss_mib"] = peak_rss_mib()
    return out


def _convergence(vis, limit: int) -> dict:
    import numpy as np

    p = np.exp(vis.logits - vis.logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    reached = np.take_along_axis(p, vis.class_indices[:, None, None], -1)[..., 0] >= STOP
    steps = [int(s) if ok else None for s, ok in zip(vis.steps_taken.ravel(), reached.ravel())]
    done = sorted(s for s in steps if s is not None)
    return {"threshold": STOP, "limit": limit, "steps_per_image": steps,
            "median": done[len(done) // 2] if len(done) * 2 > len(steps) else None,
            "reached": len(done), "images": len(steps)}


CHILDREN = {"matmul": child_matmul, "engine": child_engine}


# ---------------------------------------------------------------- the run

def run_child(*argv: str, python: str = sys.executable, script: Path = Path(__file__), timeout=3600) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}
    out = CACHE / "child.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    t = time.perf_counter()
    proc = subprocess.run([python, str(script), *argv, "--json", str(out)], env=env, capture_output=True,
                          text=True, timeout=timeout)
    if proc.returncode != 0 or not out.exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"error": " | ".join(tail), "argv": list(argv)}
    result = json.loads(out.read_text())
    result["wall_s"] = time.perf_counter() - t
    return result


def scale_runs(quick: bool) -> list[dict]:
    """`audit run` on a 1000-class CNN: wall time and peak memory for 10 / 100 / 1000 classes."""
    model = CACHE / "cnn1000.keras"
    if not model.exists():
        subprocess.run([sys.executable, "-c", _MAKE_CNN1000.format(path=model)], check=True,
                       env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    rows = []
    for n in ((10, 100) if quick else (10, 100, 1000)):
        config = CACHE / f"scale_{n}.yaml"
        out = CACHE / f"scale_{n}_report"
        concepts = ROOT / "audit" / "demo" / "assets" / "concepts"
        names = CACHE / "cnn1000_classes.txt"
        names.write_text("".join(f"c{i}\n" for i in range(1000)))
        config.write_text(
            f"model: {{path: {model}, classes_file: {names}, input_range: [0, 1]}}\n"
            f"visualize: {{classes: [{', '.join(f'c{i}' for i in range(n))}], restarts: 1, steps: 32,"
            f" memory_budget_mb: 256}}\n"
            f"concepts: {{negatives: {concepts / '_random'}, bank: {{arm: {{examples: {concepts / 'arm'}}}}}}}\n"
            f"layer_gallery: false\n"
            f"report: {{out: {out}}}\n")
        t = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable, "-m", "audit", "run", str(config),
                               "--quiet", "--no-history"], capture_output=True, text=True,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)})
        wall = time.perf_counter() - t
        timing = json.loads((out / "audit.json").read_text())["timing_seconds"] if (out / "audit.json").exists() else {}
        rows.append({"classes": n, "exit_code": proc.returncode, "wall_s": wall,
                     "visualize_s": timing.get("visualize"),
                     "peak_rss_mib": int(proc.stderr.strip().splitlines()[-1]) / 1024,
                     "image_steps": n * 32})
    return rows


_MAKE_CNN1000 = """
import keras
keras.utils.set_random_seed(0)
inp = keras.Input((64, 64, 3))
x = keras.layers.Conv2D(32, 3, activation="relu", padding="same")(inp)
x = keras.layers.MaxPooling2D()(x)
x = keras.layers.Conv2D(64, 3, activation="relu", padding="same")(x)
x = keras.layers.MaxPooling2D()(x)
x = keras.layers.Conv2D(128, 3, activation="relu", padding="same")(x)
x = keras.layers.GlobalAveragePooling2D()(x)
out = keras.layers.Dense(1000, activation="softmax")(x)
keras.Model(inp, out).save("{path}")
"""


def peers_python() -> dict[str, str]:
    env = subprocess.run(["bash", str(HERE / "peers_env.sh")], capture_output=True, text=True)
    if env.returncode != 0:
        print("peers: environment setup failed:", (env.stderr or env.stdout).strip().splitlines()[-1:],
              file=sys.stderr)
        return {}
    found = {}
    for tool, venv in (("tf-keras-vis", "peers-venv-tfkv"), ("xplique", "peers-venv-xplique"),
                       ("tf-keras-vis", "peers-venv"), ("xplique", "peers-venv")):
        py = ROOT / "benchmarks" / ".cache" / venv / "bin" / "python"
        if py.exists() and tool not in found:
            found[tool] = str(py)
    return found


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    import importlib.metadata as md
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "tensorflow": md.version("tensorflow-cpu") if _has("tensorflow-cpu") else md.version("tensorflow"),
            "keras": md.version("keras"), "date": dt.date.today().isoformat()}


def _has(dist: str) -> bool:
    import importlib.metadata as md
    try:
        md.version(dist)
        return True
    except md.PackageNotFoundError:
        return False


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", choices=sorted(CHILDREN))
    ap.add_argument("--model", choices=MODELS)
    ap.add_argument("--variant", default="default")
    ap.add_argument("--json")
    ap.add_argument("--quick", action="store_true", help="fewer steps, no convergence, no 1000-class run")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated subset of " + ", ".join(MODELS))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "speed.json"))
    ap.add_argument("--render", action="store_true", help="only rewrite the .md table from the .json")
    args = ap.parse_args(argv)
    if args.render:
        Path(args.out).with_suffix(".md").write_text(markdown(json.loads(Path(args.out).read_text())))
        return 0
    if args.child:
        Path(args.json).write_text(json.dumps(CHILDREN[args.child](args)))
        return 0

    models = [m for m in args.models.split(",") if m in MODELS]
    started = time.perf_counter()
    result = {"machine": machine(), "batch": BATCH, "matmul": run_child("--child", "matmul")}
    print(f"matmul peak: {result['matmul'].get('gflops', float('nan')):.0f} GFLOP/s", flush=True)
    for m in models:  # make the shared weight files before the peers need them
        if m != "demo" and not weights_file(m).exists():
            run_child("--child", "engine", "--model", m, "--quick")
    result["engine"] = []
    for m in models:
        row = run_child("--child", "engine", "--model", m, *(["--quick"] if args.quick else []))
        result["engine"].append(row)
        print(f"engine {m}: {row.get('ms_per_step', float('nan')):.1f} ms/step", flush=True)
    result["variants"] = []
    for variant in ("sync-every-step", "threads-2-1"):
        for m in [m for m in ("mobilenetv2", "demo") if m in models]:
            row = run_child("--child", "engine", "--model", m, "--variant", variant)  # timed like the default
            result["variants"].append(row)
            print(f"variant {variant} {m}: {row.get('ms_per_step', float('nan')):.1f} ms/step", flush=True)
    result["peers"] = []
    if not args.no_peers:
        for tool, py in peers_python().items():
            for m in models:
                for settings in ("defaults", "bare"):
                    extra = ["--weights", str(weights_file(m))] if m != "demo" else []
                    # peers' convergence on the demo only: their default 200-256 steps take 10-15 min on a 224 model
                    conv = ["--convergence"] if settings == "defaults" and not args.quick and m == "demo" else []
                    row = run_child("--tool", tool, "--model", m, "--batch", str(BATCH), "--settings", settings,
                                    "--steps", "3" if args.quick or m != "demo" else "20", "--warmup", "2",
                                    *extra, *conv, python=py, script=HERE / "peers.py")
                    row.setdefault("tool", tool)
                    row.setdefault("model", m)
                    row.setdefault("settings", settings)
                    result["peers"].append(row)
                    print(f"{tool} {m} {settings}: {row.get('ms_per_step', float('nan')):.1f} ms/step", flush=True)
    result["scale"] = scale_runs(args.quick)
    for row in result["scale"]:
        print(f"scale {row['classes']} classes: {row['wall_s']:.1f} s, peak {row['peak_rss_mib']:.0f} MiB", flush=True)
    result["seconds"] = time.perf_counter() - started
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    table = markdown(result)
    out.with_suffix(".md").write_text(table)
    print(table)
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


def _ratio(r: float) -> str:
    return f"{r:.1f}x slower" if r >= 1 else f"{1 / r:.2f}x faster"


def _median_steps(c: dict | None) -> str:
    """Median first step at p >= 0.99 over the images, an image that never gets there counting as
    infinitely many steps (so the median is 'never' when half of them never do)."""
    if not c:
        return "–"
    steps = c.get("steps_per_image", c.get("first_step_at_threshold", []))
    ranked = sorted(float("inf") if v is None else v for v in steps)
    mid = (ranked[(len(ranked) - 1) // 2] + ranked[len(ranked) // 2]) / 2
    reached = sum(v is not None for v in steps)
    return f"{'never' if mid == float('inf') else f'{mid:g}'} ({reached}/{len(steps)} in {c.get('limit', c.get('steps_run'))})"


def markdown(r: dict) -> str:
    peak = r["matmul"].get("gflops")
    m = r["machine"]
    lines = [f"Speed benchmark, {m['date']}, {m['cpu']} ({m['cores']} cores), TensorFlow {m['tensorflow']}, "
             f"batch {r['batch']} classes; matmul peak {peak:.0f} GFLOP/s.", "",
             "| model | tool | settings | ms/step | image-steps/s | peak RSS MiB | GFLOP/s (% of matmul) | "
             "x engine speed | steps to p 0.99 (median; reached/images in steps) |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    engine = {row.get("model"): row for row in r["engine"]}
    for model in [m for m in MODELS if m in engine]:
        e = engine.get(model, {})
        rows = [("audit engine", "default", e)] + [(p["tool"], p["settings"], p) for p in r["peers"]
                                                  if p.get("model") == model]
        for tool, settings, row in rows:
            if "error" in row:
                lines.append(f"| {model} | {tool} | {settings} | error: {row['error'][:80]} | | | | | |")
                continue
            ms = row["ms_per_step"]
            gf = e.get("step_gflop_per_image", 0) * row.get("batch", r["batch"]) / (ms / 1000)
            conv = _median_steps(row.get("convergence"))
            ratio = ms / e["ms_per_step"] if e.get("ms_per_step") else float("nan")
            lines.append(f"| {model} | {tool} | {settings} | {ms:.1f} | {row['image_steps_per_s']:.1f} | "
                         f"{row['peak_rss_mib']:.0f} | {gf:.1f} ({100 * gf / peak:.0f}%) | "
                         f"{_ratio(ratio) if tool != 'audit engine' else '1.0'} | {conv} |")
    lines += ["", "| engine variant (tried) | model | ms/step | vs default |", "|---|---|---:|---:|"]
    for v in r["variants"]:
        base = engine.get(v.get("model"), {}).get("ms_per_step")
        if "error" in v:
            lines.append(f"| {v['argv']} | | error | |")
        else:
            if base:
                lines.append(f"| {v['variant']} | {v['model']} | {v['ms_per_step']:.1f} | "
                             f"{v['ms_per_step'] / base:.2f}x |")
    lines += ["", "| `audit run`, 1000-class CNN, classes audited | wall s | visualize s | peak RSS MiB | exit |",
              "|---:|---:|---:|---:|---:|"]
    for s in r["scale"]:
        lines.append(f"| {s['classes']} | {s['wall_s']:.1f} | {s['visualize_s'] or float('nan'):.1f} | "
                     f"{s['peak_rss_mib']:.0f} | {s['exit_code']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
