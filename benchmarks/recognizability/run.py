"""Recognizability benchmark: can an independent network name the class a visualization shows?

    python benchmarks/recognizability/run.py [--settings raw,default,...] [--classes 50] [--steps 256]

EfficientNet-Lite0 (224 px) makes one visualization per class for each visualization setting;
EfficientNet-Lite2, trained independently, judges them at its native 260 px (bilinear resize):
top-1 / top-5 accuracy of the intended class. Adversarial patterns that only the making network
reads do not transfer; images that show the object do. Also reported: Lite0's own probability of
the class after random crops and shifts of its image (is the pattern robust or a fragile
alignment?), and ms per image-step of each setting.

Classes: a fixed list (the issue's 12 classes) plus a seeded sample of the other ImageNet classes.
Images at 64, 128 and the last step are kept (the loop's on_sync hook), so one run also shows
how recognizability grows with steps. Each setting's images are cached in
benchmarks/.cache/recognizability/ under a key of the setting, the class list, the steps and the
code of audit/visualize + audit/visualize/optimize.py; a rerun only judges.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hashlib
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "benchmarks" / ".cache" / "recognizability"
RESULTS = ROOT / "benchmarks" / "results"
FIXED = ("dumbbell", "barbell", "tench", "basketball", "espresso", "daisy", "space shuttle", "cardboard box / carton",
         "monitor", "broom", "apron", "safe")
SNAPSHOTS = (64, 128)  # plus the last step
CROPS = 16             # random crops/shifts per image for the making model's own probability

# visualize overrides per setting ("default" = the config's defaults, whatever they are)
SETTINGS = {
    "raw": {"parameterization": "pixels", "transforms": "none"},
    "pixels+jitter8+tv4.5": {"parameterization": "pixels", "transforms": {"jitter": 8}, "total_variation": 4.5},
    "pixels+standard+tv4.5": {"parameterization": "pixels", "transforms": "standard", "total_variation": 4.5},
    "fourier": {"parameterization": "fourier", "transforms": "none"},
    "default": {},
}


def class_list(all_names: list[str], count: int, seed: int = 0) -> list[str]:
    rest = [n for n in all_names if n not in FIXED]
    picked = np.random.default_rng(seed).choice(len(rest), count - len(FIXED), replace=False)
    return list(FIXED) + [rest[i] for i in sorted(picked)]


def load(name: str):
    from audit.config import ModelConfig
    from audit.model.load import load_model
    from audit.model.pretrained.models import CLASSES_FILE, ensure_model

    path = ensure_model(name)
    classes = tuple(l.strip() for l in path.with_name(CLASSES_FILE).read_text().splitlines() if l.strip())
    # the converted network takes 0..255 RGB (its first layer does the original (x - 127) / 128)
    return load_model(ModelConfig(path, classes, None, (0.0, 255.0), None, False))


def visualize_config(overrides: dict, classes: list[str], steps: int, restarts: int = 1):
    from audit.config import load_config
    import yaml

    # the defaults come from the real config loader, so "default" is what users get
    base = {"model": {"path": str(ROOT / "audit/demo/assets/models/demo_shortcut.keras"), "input_range": [0, 1],
                      "classes": ["dumbbell", "barbell", "kettlebell", "ball", "racket", "bottle"]},
            "visualize": {"restarts": restarts, "steps": steps, "seed": 0, **overrides},
            "concepts": {"negatives": str(ROOT / "audit/demo/assets/concepts/_random"),
                         "bank": {"arm": {"examples": str(ROOT / "audit/demo/assets/concepts/arm")}}}}
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = CACHE / "_config.yaml"
    tmp.write_text(yaml.safe_dump(base))
    cfg = load_config(tmp).visualize
    return dataclasses.replace(cfg, classes=tuple(classes))


def code_version() -> str:
    h = hashlib.sha256()
    for f in sorted((ROOT / "audit" / "visualize").glob("*.py")):  # the loop (optimize.py) lives there since the move
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def make_images(model, cfg, key: str) -> dict:
    """Images of every class at the snapshot steps and at the end, cached by `key`."""
    from audit.visualize.optimize import class_visualizations

    file = CACHE / f"{key}.npz"
    if file.exists():
        with np.load(file) as z:
            return {k: z[k] for k in z.files}
    snaps: dict[int, np.ndarray] = {}

    def on_sync(done, jobs, images):
        if done in SNAPSHOTS:
            arr = snaps.setdefault(done, np.zeros((len(cfg.classes) * cfg.restarts,) + images.shape[1:], np.float32))
            arr[jobs] = images

    start = time.perf_counter()
    vis = class_visualizations(model, cfg, progress=True, on_sync=on_sync)
    seconds = time.perf_counter() - start
    out = {f"step{s}": a.reshape(vis.images.shape) for s, a in snaps.items()}
    out[f"step{cfg.steps}"] = vis.images
    out["seconds"] = np.array(seconds)
    np.savez_compressed(file.with_suffix(".tmp.npz"), **out)
    file.with_suffix(".tmp.npz").rename(file)
    return out


def judge(judge_model, images: np.ndarray, targets: np.ndarray) -> dict:
    """Top-1 / top-5 of the judge on (N, H, W, 3) images resized to its input size."""
    import tensorflow as tf

    size = judge_model.input_shape[:2]
    logits = np.concatenate([judge_model.forward(tf.image.resize(images[i:i + 16], size, "bilinear"))[1].numpy()
                             for i in range(0, len(images), 16)])
    rank = (logits > logits[np.arange(len(targets)), targets][:, None]).sum(1)
    return {"top1": float(np.mean(rank == 0)), "top5": float(np.mean(rank < 5)), "rank": rank.tolist(),
            "judge_top1_names": [judge_model.classes[i] for i in logits.argmax(1)]}


def own_probability(model, images: np.ndarray, targets: np.ndarray, seed: int = 0) -> np.ndarray:
    """Mean probability of the class under CROPS random crops (70-100% of the side, anywhere) resized
    back, and shifts (up to 1/8 of the side, reflected): is the pattern robust, or one exact alignment?"""
    import tensorflow as tf

    h, w = images.shape[1:3]
    rng = np.random.default_rng(seed)
    out = np.zeros(len(images))
    for k in range(CROPS):
        side = rng.uniform(0.7, 1.0)
        y0, x0 = rng.uniform(0, 1 - side, 2)
        boxes = np.tile([y0, x0, y0 + side, x0 + side], (len(images), 1)).astype(np.float32)
        view = tf.image.crop_and_resize(images, boxes, np.arange(len(images)), (h, w))
        dy, dx = rng.integers(-h // 8, h // 8 + 1, 2)
        view = np.roll(view.numpy(), (dy, dx), axis=(1, 2))
        for i in range(0, len(images), 16):
            logits = model.forward(tf.constant(view[i:i + 16]))[1].numpy()
            p = np.exp(logits - logits.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            out[i:i + 16] += p[np.arange(len(p)), targets[i:i + 16]] / CROPS
    return out


def contact_sheet(rows: list[tuple[str, np.ndarray]], names: list[str], path: Path, size: int = 112) -> None:
    """One row per setting, one column per class, labelled."""
    from PIL import Image, ImageDraw

    label_w, head = 130, 28
    sheet = Image.new("RGB", (label_w + size * len(names), head + size * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    for j, n in enumerate(names):
        draw.text((label_w + j * size + 2, 2 + 12 * (j % 2)), n[:18], fill="black")
    for i, (label, imgs) in enumerate(rows):
        draw.text((4, head + i * size + size // 2 - 6), label, fill="black")
        for j, img in enumerate(imgs):
            tile = Image.fromarray((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)).resize((size, size))
            sheet.paste(tile, (label_w + j * size, head + i * size))
    sheet.save(path, optimize=True)


def demo_model():
    from audit.config import ModelConfig
    from audit.model.load import load_model

    return load_model(ModelConfig(ROOT / "audit/demo/assets/models/demo_shortcut.keras",
                                  ("dumbbell", "barbell", "kettlebell", "ball", "racket", "bottle"), None, (0.0, 1.0),
                                  None, False))


def grid_sheet(images: np.ndarray, names: list[str], path: Path, cols: int = 10, size: int = 128) -> None:
    """Every class's image, `cols` to a row, each with its name above it."""
    from PIL import Image, ImageDraw

    rows, head = -(-len(names) // cols), 14
    sheet = Image.new("RGB", (cols * size, rows * (size + head)), "white")
    draw = ImageDraw.Draw(sheet)
    for k, (img, name) in enumerate(zip(images, names)):
        x, y = (k % cols) * size, (k // cols) * (size + head)
        draw.text((x + 2, y + 1), name[:22], fill="black")
        tile = Image.fromarray((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)).resize((size, size))
        sheet.paste(tile, (x, y + head))
    sheet.save(path, optimize=True)


def timing(model, cfg, steps: int = 32, images: int = 8) -> float:
    """ms per image-step of `images` images (one compiled run after a warm-up), so settings compare
    on the same footing even when the long runs shared the machine differently. With
    cfg.classes None (the demo): its classes x restarts, as in `make demo`."""
    from audit.visualize.optimize import class_visualizations

    small = dataclasses.replace(cfg, classes=cfg.classes[:images] if cfg.classes else None, steps=16)
    class_visualizations(model, small, progress=False)  # traces the loop
    start = time.perf_counter()
    class_visualizations(model, dataclasses.replace(small, steps=steps), progress=False)
    return 1000 * (time.perf_counter() - start) / (steps * images)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--settings", default=",".join(SETTINGS))
    ap.add_argument("--classes", type=int, default=50)
    ap.add_argument("--steps", type=int, default=256)
    ap.add_argument("--out", type=Path, default=RESULTS / "recognizability.json")
    ap.add_argument("--sheet", type=Path, default=RESULTS / "recognizability.png")
    ap.add_argument("--timing-rounds", type=int, default=3)
    args = ap.parse_args(argv)

    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    maker, judge_model = load("efficientnet-lite0"), load("efficientnet-lite2")
    names = class_list(list(maker.classes), args.classes)
    targets = np.array([maker.classes.index(n) for n in names])
    assert [judge_model.classes[t] for t in targets] == names
    version = code_version()
    report = {"date": dt.date.today().isoformat(), "machine": platform.platform(), "python": platform.python_version(),
              "tensorflow": tf.__version__, "maker": "efficientnet-lite0 (224 px)",
              "judge": "efficientnet-lite2 (260 px, bilinear resize)", "classes": names, "steps": args.steps,
              "restarts": 1, "seed": 0, "code_version": version, "settings": {}}
    configs, finals = {}, {}
    for setting in args.settings.split(","):
        cfg = configs[setting] = visualize_config(SETTINGS[setting], names, args.steps)
        described = {"parameterization": cfg.parameterization, "transforms": cfg.transforms if isinstance(
            cfg.transforms, str) else dataclasses.asdict(cfg.transforms), "total_variation": cfg.total_variation,
            "jitter": cfg.jitter, "learning_rate": cfg.learning_rate}
        key = hashlib.sha256(json.dumps([described, names, args.steps, version]).encode()).hexdigest()[:16]
        print(f"{setting}: {described}", flush=True)
        made = make_images(maker, cfg, key)
        row = {"settings": described, "cache_key": key, "seconds": float(made["seconds"]),
               "ms_per_image_step_long_run": 1000 * float(made["seconds"]) / (args.steps * len(names)),
               "by_steps": {}}
        for step in [s for s in SNAPSHOTS if s < args.steps] + [args.steps]:
            imgs = made[f"step{step}"][:, 0]
            own = own_probability(maker, imgs, targets)
            row["by_steps"][str(step)] = {**judge(judge_model, imgs, targets), "own_p_transformed": float(own.mean()),
                                          "own_p_transformed_per_class": own.round(4).tolist()}
        final = row["by_steps"][str(args.steps)]
        print(f"  top1 {final['top1']:.2f} top5 {final['top5']:.2f} own p {final['own_p_transformed']:.3f}", flush=True)
        report["settings"][setting] = row
        finals[setting] = made[f"step{args.steps}"][:, 0]
        write(report, args.out)
    if "default" in finals:
        grid_sheet(finals["default"], names, args.sheet)
    fixed = [names.index(n) for n in FIXED]
    contact_sheet([(k, v[fixed]) for k, v in finals.items()], list(FIXED), args.sheet.with_name(
        args.sheet.stem + "_fixed.png"), size=128)
    # timing last, settings interleaved over rounds (min per setting): the machine is shared, so
    # each setting sees the same mix of load
    demo = demo_model()
    demo_configs = {k: dataclasses.replace(c, classes=None, restarts=8) for k, c in configs.items()}
    best = {k: float("inf") for k in configs}
    best_demo = dict(best)
    for _ in range(args.timing_rounds):
        for setting, cfg in configs.items():
            best[setting] = min(best[setting], timing(maker, cfg))
            best_demo[setting] = min(best_demo[setting], timing(demo, demo_configs[setting], images=48))
    for setting in configs:
        report["settings"][setting]["ms_per_image_step"] = round(best[setting], 2)
        report["settings"][setting]["demo_ms_per_image_step"] = round(best_demo[setting], 3)
    write(report, args.out)
    print(markdown(report))
    return 0


def write(report: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    out.with_suffix(".md").write_text(markdown(report))


def markdown(report: dict) -> str:
    steps = report["steps"]
    lines = [f"Recognizability benchmark, {report['date']}: {len(report['classes'])} ImageNet classes, "
             f"{report['maker']} makes 1 image per class in {steps} steps, {report['judge']} judges.", "",
             "| setting | parameterization | transforms | TV | Lite2 top-1 | Lite2 top-5 | top-1 / top-5 at "
             f"{' / '.join(map(str, SNAPSHOTS))} steps | Lite0 own p (random crops/shifts) | ms/image-step Lite0 "
             "(8 images) | ms/image-step demo CNN (48 images) |",
             "|---|---|---|---:|---:|---:|---|---:|---:|---:|"]
    for name, row in report["settings"].items():
        s, by = row["settings"], row["by_steps"]
        final = by[str(steps)]
        early = " ; ".join(f"{by[str(k)]['top1']:.2f} / {by[str(k)]['top5']:.2f}" if str(k) in by else "-"
                           for k in SNAPSHOTS)
        t = s["transforms"] if isinstance(s["transforms"], str) else ", ".join(
            f"{k} {v}" for k, v in s["transforms"].items() if v and v != [1.0, 1.0] and v != (1.0, 1.0))
        if s["jitter"]:
            t += f" (jitter {s['jitter']})"
        ms = f"{row['ms_per_image_step']:.1f}" if "ms_per_image_step" in row else "-"
        demo_ms = f"{row['demo_ms_per_image_step']:.2f}" if "demo_ms_per_image_step" in row else "-"
        lines.append(f"| {name} | {s['parameterization']} | {t} | {s['total_variation']:g} | {final['top1']:.2f} | "
                     f"{final['top5']:.2f} | {early} | {final['own_p_transformed']:.3f} | {ms} | {demo_ms} |")
    lines += ["", "Classes: " + ", ".join(report["classes"]), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
