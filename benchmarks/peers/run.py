"""Time to a recognizable image: the audit engine vs tf-keras-vis and xplique on EfficientNet-Lite0.

    python benchmarks/peers/run.py [--classes 12] [--maco-classes 3] [--steps 256] [--settings ...]
    python benchmarks/peers/run.py --render      # only rewrite the .md/.png from the .json

One run, every tool/setting in its own child process, one after the other: Lite0 (224 px, pixels
0..255) makes one image per class for a fixed list of ImageNet classes (the recognizability
benchmark's class list: its 12 named classes, then classes drawn with seed 0 when --classes > 12;
MaCo, one class per run and 32 crops a step, gets every k-th of them), keeping the image at steps
32, 64, 128 and 256; EfficientNet-Lite2 (trained independently, 260 px)
judges every snapshot: top-1 / top-5 accuracy of the intended class (benchmarks/recognizability/run.py's
measure). The audit engine runs in the project's venv (audit/visualize/optimize.py + audit/visualize/: the
default recipe, Fourier + standard transforms, and the raw mode); the peers run in their own venv
(benchmarks/speed/peers_env.sh) through benchmarks/peers/peer.py, which documents their settings.

Definitions (per setting):
* ms per image-step: median time of one optimizer update, after warm-up, divided by the images the
  update moves (all classes in one batch; the engine in chunks of its memory budget; MaCo one
  image, 32 crops, per update). Measured inside the long run itself.
* recognizable at s steps: Lite2 puts the target class in its top 5 for >= 80% of the classes
  (RECOGNIZABLE_TOP5) on the images after s steps, judged as 8-bit images (what a user saves).
* steps to recognizable: the first checkpoint (32, 64, 128, 256) that is recognizable, else none.
  MaCo's checkpoints before its last are part-way through a schedule set by nb_steps, not what a
  run of that many steps returns: for it only the last counts (the first recognizable checkpoint
  is reported apart, as recognizable_mid_schedule_at).
* seconds to recognizable: steps x ms per image-step: the machine time one class's image costs at
  the batch's throughput (a user visualizing N classes waits about N times that).

Results are cached per setting in benchmarks/.cache/peers/ under a key of the setting, classes,
steps and the code that makes the images, so a rerun after a failure only redoes what is missing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CACHE = ROOT / "benchmarks" / ".cache" / "peers"
RESULTS = ROOT / "benchmarks" / "results"
SNAPSHOTS = (32, 64, 128, 256)
# settings whose schedule depends on the number of steps (MaCo's crop size falls from 50% to 5% over
# nb_steps): an image part-way through is not what a user running that many steps gets, so only
# the last checkpoint counts for "steps to recognizable"
SCHEDULED = ("xplique-maco",)
RECOGNIZABLE_TOP5 = 0.8
ENGINE = {"engine-default": {}, "engine-raw": {"parameterization": "pixels", "transforms": "none"}}
PEERS = ("tf-keras-vis", "xplique-fourier", "xplique-fourier-224", "xplique-maco")
LABELS = {"engine-default": "audit engine, default (Fourier + standard transforms)",
          "engine-raw": "audit engine, raw (pixels, no transforms)",
          "tf-keras-vis": "tf-keras-vis, defaults",
          "xplique-fourier": "xplique optimize, defaults (Fourier, 512 px)",
          "xplique-fourier-224": "xplique optimize, Fourier at 224 px",
          "xplique-maco": "xplique MaCo, defaults"}


def recognizability():
    """benchmarks/recognizability/run.py as a module: its class list, model loading and configs."""
    spec = importlib.util.spec_from_file_location("recognizability_run", ROOT / "benchmarks/recognizability/run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- the engine's child process

def child_engine(setting: str, targets: list[int], steps: int, out: Path) -> None:
    """The engine on the same classes, in the format peer.py writes (uint8 snapshots + timing)."""
    import tensorflow as tf

    from audit.visualize.optimize import class_visualizations

    rec = recognizability()
    tf.config.experimental.enable_op_determinism()
    model = rec.load("efficientnet-lite0")
    names = [model.classes[t] for t in targets]
    cfg = rec.visualize_config(ENGINE[setting], names, steps)
    snaps, stamps = {}, []

    def on_sync(done, jobs, images):  # every SYNC_EVERY steps of the chunk still running
        stamps.append((time.perf_counter(), done, len(jobs)))
        if done in SNAPSHOTS or done == steps:
            snaps.setdefault(done, np.zeros((len(names),) + images.shape[1:], np.uint8))[jobs] = \
                (np.clip(images, 0, 1) * 255 + 0.5).astype(np.uint8)

    load = os.getloadavg()[0]
    start = time.perf_counter()
    class_visualizations(model, cfg, progress=False, on_sync=on_sync)
    seconds = time.perf_counter() - start
    laps = []  # per image-step, between syncs of the same chunk; a chunk's first sync includes tracing
    for (t0, d0, _), (t1, d1, n) in zip(stamps, stamps[1:]):
        if d1 > d0 and d0 > 0:
            laps.append(1000 * (t1 - t0) / ((d1 - d0) * n))
    np.savez_compressed(out, **{f"step{s}": a for s, a in sorted(snaps.items())})
    from importlib.metadata import version
    out.with_suffix(".json").write_text(json.dumps({
        "setting": setting, "library": "audit", "library_version": version("keras-shortcut-audit"),
        "tensorflow": tf.__version__,
        "targets": targets, "steps": steps, "snapshots": sorted(snaps), "ms_per_image_step": float(np.median(laps)),
        "ms_laps_quartiles": np.percentile(laps, [25, 50, 75]).round(2).tolist(), "seconds": seconds,
        "image_size": list(model.input_shape[:2]), "load_average_at_start": load,
        "recipe": {"parameterization": cfg.parameterization, "transforms": str(cfg.transforms),
                   "learning_rate": cfg.learning_rate, "total_variation": cfg.total_variation,
                   "memory_budget_mb": cfg.memory_budget_mb}}, indent=1))


# ---------------------------------------------------------------- the driver

def run_child(argv: list[str], out: Path, python: str = sys.executable, timeout: int = 7200) -> dict:
    """Run one setting; its result, or {"error": ...} (a failing tool never stops the benchmark)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}
    out.unlink(missing_ok=True)
    try:
        proc = subprocess.run([python, *argv, "--out", str(out)], env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    if proc.returncode != 0 or not out.exists() or not out.with_suffix(".json").exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"error": " | ".join(tail) or f"exit code {proc.returncode}"}
    return json.loads(out.with_suffix(".json").read_text())


def peers_python() -> tuple[str | None, str]:
    env = subprocess.run(["bash", str(ROOT / "benchmarks/speed/peers_env.sh")], capture_output=True, text=True)
    if env.returncode != 0:
        return None, "peer venv setup failed: " + " | ".join((env.stderr or env.stdout).strip().splitlines()[-2:])
    return str(ROOT / "benchmarks/.cache/peers-venv/bin/python"), env.stdout.strip().splitlines()[-1]


def cache_key(setting: str, targets: list[int], steps: int) -> str:
    h = hashlib.sha256(json.dumps([setting, targets, steps]).encode())
    code = [HERE / "peer.py"] if setting in PEERS else [
        HERE / "run.py", ROOT / "audit/visualize/optimize.py", *sorted((ROOT / "audit/visualize").glob("*.py"))]
    for f in code:
        h.update(f.read_bytes())
    return f"{setting}-{h.hexdigest()[:12]}"


def make(setting: str, targets: list[int], steps: int, peer_py: str | None) -> dict:
    out = CACHE / f"{cache_key(setting, targets, steps)}.npz"
    wanted = {s for s in SNAPSHOTS if s <= steps} | {steps}
    if out.exists() and out.with_suffix(".json").exists():
        cached = json.loads(out.with_suffix(".json").read_text())
        if wanted <= set(cached["snapshots"]):
            return {**cached, "cached": True, "npz": str(out)}
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + ".part.npz")
    if setting in ENGINE:
        row = run_child([__file__, "--child", setting, "--targets", ",".join(map(str, targets)),
                         "--steps", str(steps)], tmp)
    elif peer_py is None:
        return {"error": "no peer venv"}
    else:
        model = lite_path("efficientnet-lite0")
        row = run_child([str(HERE / "peer.py"), "--setting", setting, "--model", str(model), "--targets",
                         ",".join(map(str, targets)), "--steps", str(steps),
                         "--snapshots", ",".join(map(str, SNAPSHOTS))], tmp, python=peer_py)
    if "error" in row:  # nothing half-written stays in the cache
        tmp.unlink(missing_ok=True)
        tmp.with_suffix(".json").unlink(missing_ok=True)
        return row
    tmp.with_suffix(".json").rename(out.with_suffix(".json"))
    tmp.rename(out)
    return {**row, "cached": False, "npz": str(out)}


def lite_path(name: str) -> Path:
    from audit.model.pretrained.models import ensure_model

    return ensure_model(name)


def logits_check(peer_py: str | None) -> dict:
    """Do the peer venv (TensorFlow 2.20) and the engine (audit's loader, TensorFlow 2.21) read the
    same network from the same .keras file? Logits of two fixed random 0..255 images."""
    import tensorflow as tf

    if peer_py is None:
        return {"error": "no peer venv"}
    path = lite_path("efficientnet-lite0")
    dump = CACHE / "peer_logits.npz"
    CACHE.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([peer_py, str(HERE / "peer.py"), "--model", str(path), "--dump-logits", str(dump)],
                          capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if proc.returncode != 0:
        return {"error": " | ".join(proc.stderr.strip().splitlines()[-2:])}
    peer = np.load(dump)["logits"]
    model = recognizability().load("efficientnet-lite0")
    x = np.random.default_rng(0).uniform(0.0, 255.0, (2, *model.input_shape)).astype("float32")
    ours = model.forward(tf.constant(x / 255.0))[1].numpy()  # the engine's view: pixels in [0, 1]
    return {"max_abs_logit_diff": float(np.abs(peer - ours).max()), "logit_scale": float(np.abs(ours).max()),
            "same_top5": bool((np.argsort(-peer)[:, :5] == np.argsort(-ours)[:, :5]).all())}


def judge_all(rows: dict, targets: list[int]) -> None:
    """Lite2's top-1 / top-5 of the target, and Lite0's own top-1, at every snapshot of every setting."""
    import tensorflow as tf

    rec = recognizability()
    judge, maker = rec.load("efficientnet-lite2"), rec.load("efficientnet-lite0")

    def ranks(model, images, tgt):
        size = model.input_shape[:2]
        logits = np.concatenate([model.forward(tf.image.resize(images[i:i + 8].astype(np.float32) / 255.0, size,
                                                               "bilinear", antialias=True))[1].numpy()
                                 for i in range(0, len(images), 8)])
        return (logits > logits[np.arange(len(tgt)), tgt][:, None]).sum(1), logits.argmax(1)

    for row in rows.values():
        if "error" in row:
            continue
        tgt = np.array(row["targets"])
        with np.load(row["npz"]) as z:
            row["by_steps"] = {}
            for s in row["snapshots"]:
                rank, top = ranks(judge, z[f"step{s}"], tgt)
                own, _ = ranks(maker, z[f"step{s}"], tgt)
                row["by_steps"][str(s)] = {"top1": float(np.mean(rank == 0)), "top5": float(np.mean(rank < 5)),
                                           "rank": rank.tolist(), "own_top1": float(np.mean(own == 0)),
                                           "judge_top1_names": [judge.classes[i] for i in top]}


def summary(row: dict, subset: list[int] | None = None) -> dict:
    """Steps and seconds to recognizable (module docstring), over all the row's classes or the
    positions `subset` of them."""
    first = None
    checkpoints = sorted(int(k) for k in row["by_steps"])
    for s in checkpoints:
        rank = np.array(row["by_steps"][str(s)]["rank"])
        rank = rank[subset] if subset is not None else rank
        if np.mean(rank < 5) >= RECOGNIZABLE_TOP5:
            first = s
            break
    if row.get("setting") in SCHEDULED and first != checkpoints[-1]:
        return {"steps_to_recognizable": None, "seconds_to_recognizable": None, "recognizable_mid_schedule_at": first}
    seconds = first * row["ms_per_image_step"] / 1000 if first else None
    return {"steps_to_recognizable": first, "seconds_to_recognizable": seconds}


def summarize(result: dict) -> None:
    for setting, row in result["settings"].items():
        if "by_steps" in row:
            row.update(summary(row))
            if setting != "xplique-maco":  # every setting on MaCo's classes too
                row["on_maco_classes"] = summary(row, result["maco_class_positions"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--classes", type=int, default=12)
    ap.add_argument("--maco-classes", type=int, default=3, help="MaCo (one class per run, 32 crops a step) "
                    "runs on every k-th class, this many of them")
    ap.add_argument("--steps", type=int, default=256)
    ap.add_argument("--settings", default=",".join([*ENGINE, *PEERS]))
    ap.add_argument("--out", type=Path, default=RESULTS / "peers_real.json")
    ap.add_argument("--render", action="store_true")
    ap.add_argument("--child", choices=sorted(ENGINE))
    ap.add_argument("--targets")
    args = ap.parse_args(argv)
    if args.child:
        child_engine(args.child, [int(t) for t in args.targets.split(",")], args.steps, args.out)
        return 0
    sys.path.insert(0, str(HERE))
    from report import write

    if args.render:  # the definitions may have changed since the run: recompute what derives from the judging
        result = json.loads(args.out.read_text())
        summarize(result)
        write(result, args.out)
        return 0

    started = time.perf_counter()
    rec = recognizability()
    names = [l.strip() for l in lite_path("efficientnet-lite0").with_name("imagenet_classes.txt").read_text()
             .splitlines() if l.strip()]
    classes = rec.class_list(names, args.classes)
    targets = [names.index(c) for c in classes]
    every = max(1, len(classes) // args.maco_classes)
    maco_positions = list(range(0, len(classes), every))[:args.maco_classes]
    peer_py, peer_line = peers_python()
    print(peer_line, flush=True)
    result = {"date": dt.date.today().isoformat(), "machine": machine(), "peer_venv": peer_line,
              "classes": classes, "targets": targets, "steps": args.steps, "snapshots": list(SNAPSHOTS),
              "recognizable_top5": RECOGNIZABLE_TOP5, "maco_class_positions": maco_positions,
              "logits_check": logits_check(peer_py), "settings": {}}
    print("logits check:", result["logits_check"], flush=True)
    for setting in args.settings.split(","):
        t = time.perf_counter()
        tgt = [targets[i] for i in maco_positions] if setting == "xplique-maco" else targets
        row = make(setting, tgt, args.steps, peer_py)
        row["wall_s"] = time.perf_counter() - t
        result["settings"][setting] = row
        print(f"{setting}: " + (row["error"] if "error" in row else
                                f"{row['ms_per_image_step']:.1f} ms/image-step, {row['seconds']:.0f} s"
                                f"{' (cached)' if row.get('cached') else ''}"), flush=True)
    judge_all(result["settings"], targets)
    summarize(result)
    result["seconds"] = time.perf_counter() - started
    write(result, args.out)
    print(args.out.with_suffix(".md").read_text())
    return 0


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    import tensorflow as tf
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "tensorflow": tf.__version__,
            "load_average_at_start": os.getloadavg()[0]}


if __name__ == "__main__":
    sys.exit(main())
