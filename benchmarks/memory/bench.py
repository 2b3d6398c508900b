"""Memory benchmark: does `visualize.memory_budget_mb` bound an audit of a real network?

    python benchmarks/memory/bench.py [--budgets 2048,1024] [--out benchmarks/results/memory.json]

On EfficientNet-Lite0 (ImageNet, 224 px; converted by audit.model.pretrained, the `imagenet` extra),
each measurement in its own child process, so a peak resident set size is that measurement's:
- TensorFlow's own footprint (import tensorflow + keras + audit);
- the model's footprint on top: load it through the audit's model intake and run one forward
  pass, eager and compiled (what every stage does at least once);
- the visualization's ms per image-step (8 images, one chunk; tracing excluded: the time of 48
  steps minus that of 16, over 32 steps);
- `audit run` through the CLI with a realistic config (3 classes x 8 restarts x 16 steps, 3
  concepts with cutouts from the demo assets resized to 224, the demo's 90 probes, the default
  layer gallery, and the `discover` stage on the dumbbell and barbell probes as class sub-folders)
  at each budget: peak RSS and stage times.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "benchmarks" / ".cache" / "memory"
ASSETS = ROOT / "audit" / "demo" / "assets" / "concepts"
NETWORK = "efficientnet-lite0"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _load():
    from audit.config import ModelConfig
    from audit.model.load import load_model
    from audit.model.pretrained import ensure_model

    return load_model(ModelConfig(ensure_model(NETWORK), None, None, (0.0, 255.0), None, False))


def child_tensorflow(_args) -> dict:
    import keras  # noqa: F401
    import tensorflow as tf  # noqa: F401

    import audit.flows.run  # noqa: F401

    return {"peak_rss_mib": peak_rss_mib()}


def child_model(_args) -> dict:
    import numpy as np
    import tensorflow as tf

    model = _load()
    after_load = peak_rss_mib()
    image = tf.constant(np.random.default_rng(0).uniform(0, 1, (1,) + model.input_shape).astype(np.float32))
    model.forward(image)[1].numpy()
    model.predict(image)[1].numpy()
    return {"after_load_mib": after_load, "peak_rss_mib": peak_rss_mib(),
            "activation_mib_per_image_estimate": model.activation_bytes_per_image / 2**20}


def child_step_ms(_args) -> dict:
    from audit.config import VisualizeConfig
    from audit.visualize.optimize import class_visualizations

    model = _load()
    times = {}
    for steps in (16, 48):
        cfg = VisualizeConfig(classes=tuple(model.classes[i] for i in (543, 422, 967, 0)), restarts=2, steps=steps,
                              learning_rate=0.05, seed=0, jitter=0, total_variation=0.0, memory_budget_mb=2048,
                              stop_probability=None)
        t = time.perf_counter()
        class_visualizations(model, cfg, progress=False)
        times[steps] = time.perf_counter() - t
    images = 8
    return {"images": images, "ms_per_image_step": 1000 * (times[48] - times[16]) / (32 * images),
            "ms_per_step_of_8": 1000 * (times[48] - times[16]) / 32}


def child_audit(args) -> dict:
    """Runs the CLI as a grandchild: RUSAGE_CHILDREN is then that one process's peak."""
    config, out = Path(args[0]), Path(args[1])
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "audit", "run", str(config), "--out", str(out), "--no-progress",
                           "--no-history"], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"audit run exited {proc.returncode}: {proc.stderr[-2000:]}")
    result = json.loads((out / "audit.json").read_text())
    return {"peak_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, "wall_s": wall,
            "exit_code": proc.returncode, "stage_seconds": result["timing_seconds"],
            "gallery_layers": [g["layer"] for g in result["layer_gallery"]],
            "concept_layer": result["concepts"]["layer"]}


CHILDREN = {"tensorflow": child_tensorflow, "model": child_model, "step_ms": child_step_ms, "audit": child_audit}


def run_child(name: str, *args) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", name, *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"child {name} failed: {proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def write_config(budget: int) -> Path:
    import yaml

    from audit.model.pretrained import CLASSES_FILE, ensure_model

    model = ensure_model(NETWORK)
    bank = {c: {"examples": str(ASSETS / c), "cutouts": str(ASSETS / f"{c}_cutouts"), "allowed_in": []}
            for c in ("arm", "stripes", "watermark")}
    cfg = {"model": {"path": str(model), "classes_file": str(model.parent / CLASSES_FILE), "input_range": [0, 255]},
           "visualize": {"classes": ["dumbbell", "barbell", "espresso"], "restarts": 8, "steps": 16,
                         "memory_budget_mb": budget},
           "concepts": {"negatives": str(ASSETS / "_random"), "probes": str(ASSETS / "_probes"), "bank": bank}}
    # the discover stage needs probes in class sub-folders: the demo's dumbbell and barbell scenes
    by_class = CACHE / "probes_by_class"
    for cls in ("dumbbell", "barbell"):
        (by_class / cls).mkdir(parents=True, exist_ok=True)
        for f in sorted((ASSETS / "_probes").glob(f"{cls}_*.png")):
            shutil.copyfile(f, by_class / cls / f.name)
    cfg["discover"] = {"probes": str(by_class)}
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"lite0_budget{budget}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def markdown(r: dict) -> str:
    lines = [f"Memory benchmark, {r['date']}, {r['machine']}, TensorFlow {r['tensorflow']}: {NETWORK} (224 px).", "",
             f"- TensorFlow + Keras + audit imported: {r['tensorflow_mib']:.0f} MiB",
             f"- + the model loaded and one forward pass: {r['model']['peak_rss_mib']:.0f} MiB "
             f"(after loading: {r['model']['after_load_mib']:.0f} MiB)",
             f"- visualization: {r['step_ms']['ms_per_image_step']:.0f} ms per image-step "
             f"({r['step_ms']['ms_per_step_of_8']:.0f} ms per step of 8 images)", "",
             "| memory_budget_mb | peak RSS MiB | budget + footprint MiB | within | wall s | visualize s | "
             "score concepts s | causal s | gallery s | discover s |", "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    for run in r["audits"]:
        s, bound = run["stage_seconds"], run["budget_mb"] + r["model"]["peak_rss_mib"]
        lines.append(f"| {run['budget_mb']} | {run['peak_rss_mib']:.0f} | {bound:.0f} | "
                     f"{'yes' if run['peak_rss_mib'] <= bound else 'NO'} | {run['wall_s']:.0f} | "
                     f"{s.get('visualize', 0):.0f} | {s.get('score concepts', 0):.0f} | {s.get('causal test', 0):.0f} | "
                     f"{s.get('layer gallery', 0):.0f} | {s.get('discover', 0):.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        print(json.dumps(CHILDREN[sys.argv[2]](sys.argv[3:])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", default="2048,1024")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "memory.json")
    args = parser.parse_args()
    import tensorflow as tf

    started = time.perf_counter()
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.machine()) if Path("/proc/cpuinfo").exists() else ""
    import os

    result = {"date": dt.date.today().isoformat(), "machine": f"{cpu} ({os.cpu_count()} cores)",
              "tensorflow": tf.__version__, "network": NETWORK}
    result["tensorflow_mib"] = run_child("tensorflow")["peak_rss_mib"]
    result["model"] = run_child("model")
    print(f"footprint: TensorFlow {result['tensorflow_mib']:.0f} MiB, with the model {result['model']['peak_rss_mib']:.0f}")
    result["step_ms"] = run_child("step_ms")
    print(f"visualization: {result['step_ms']['ms_per_image_step']:.0f} ms per image-step")
    result["audits"] = []
    for budget in (int(b) for b in args.budgets.split(",")):
        run = run_child("audit", write_config(budget), CACHE / f"report_{budget}")
        run["budget_mb"] = budget
        result["audits"].append(run)
        print(f"audit run, budget {budget} MB: peak RSS {run['peak_rss_mib']:.0f} MiB, {run['wall_s']:.0f} s")
    result["bench_seconds"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
