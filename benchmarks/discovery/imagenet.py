"""Discovery on a real ImageNet network (EfficientNet-Lite0), offline: how long per class and what it finds.

    python benchmarks/discovery/imagenet.py [--classes 5] [--out benchmarks/results/discovery_imagenet.json]

Offline there are no ImageNet photos of the audited classes, so the class sub-folders are the
real-network demo's photo crops (`python -m audit.demo.imagenet`: scikit-image, scikit-learn and
matplotlib sample photos) grouped by Lite0's own top-1 prediction, keeping the classes with the
most crops; the demo's negatives fill the control pastes. `audit discover` runs on them through
the CLI with the default settings (3 patterns per class, 128 visualization steps)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "discovery_imagenet"


def lite0_and_demo_data():
    """(EfficientNet-Lite0 loaded for the audit, its .keras path, its class-name file, the real-network
    demo's data folder), converting and drawing them into .cache on first use."""
    from audit.config import ModelConfig
    from audit.model.load import load_model
    from audit.model.pretrained import ensure_model

    data = ROOT / ".cache" / "demo_imagenet_data"
    if not (data / "stamp.json").exists():
        subprocess.run([sys.executable, "-m", "audit.demo.imagenet", "--out", str(data)], check=True)
    model_path = ensure_model("efficientnet-lite0")
    classes_path = model_path.parent / "imagenet_classes.txt"
    names = tuple(classes_path.read_text().splitlines())
    model = load_model(ModelConfig(Path(model_path), names, None, (0.0, 255.0), None, False))
    return model, model_path, classes_path, data


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--classes", type=int, default=5)
    ap.add_argument("--min-images", type=int, default=8)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "discovery_imagenet.json"))
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    from audit.evidence.causal import log_probs
    from audit.images import list_images, load_image

    model, model_path, classes_path, data = lite0_and_demo_data()
    files = list_images(data / "probes") + list_images(data / "photos")
    images = np.stack([load_image(f, 3, "probes", model.input_shape[:2]) for f in files])
    top = log_probs(model, images, 16).argmax(1)
    counts = np.bincount(top, minlength=len(model.classes))
    # class sub-folders are named after the classes: a name with "/" cannot be one, skip those
    ranked = [int(c) for c in np.argsort(-counts, kind="stable") if "/" not in model.classes[c]]
    chosen = [c for c in ranked[:args.classes] if counts[c] >= args.min_images]
    folder = CACHE / "probes"
    shutil.rmtree(folder, ignore_errors=True)
    for c in chosen:
        (folder / model.classes[c]).mkdir(parents=True)
        for i in np.flatnonzero(top == c):
            shutil.copyfile(files[i], folder / model.classes[c] / files[i].name)
    out = CACHE / "report"
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "audit", "discover", "--model", str(model_path), "--probes",
                           str(folder), "--classes-file", str(classes_path), "--input-range", "0,255",
                           "--negatives", str(data / "negatives"), "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        print(proc.stderr[-2000:])
        return 3
    result = json.loads((out / "discovery.json").read_text())
    summary = {
        "classes": {model.classes[c]: int(counts[c]) for c in chosen},
        "wall_seconds": round(wall, 1), "timing_seconds": result["timing_seconds"],
        "seconds_per_class": round(result["timing_seconds"]["discover"] / max(len(chosen), 1), 1),
        "patterns": [{k: e[k] for k in ("class_name", "pattern", "level", "share", "kept_without", "causal_flip",
                                        "causal_flip_control", "causal_shift", "causal_logp_rise", "causal_p_adjusted")}
                     for e in result["discovered"]],
        "report": str(out),
    }
    Path(args.out).write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    print(proc.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
