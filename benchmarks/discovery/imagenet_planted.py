"""Discovery on a real network's own shortcut: does it surface stock-photo watermarks in "carton"?

    python benchmarks/discovery/imagenet_planted.py [--per-class 16] [--share 0.5]
        [--out benchmarks/results/discovery_imagenet_planted.json]

EfficientNet-Lite0, trained on ImageNet by others, learned that Chinese stock-photo watermarks
mean "carton" (ImageNet-W, Li et al. 2023; broom, safe, monitor and apron too: Bykov et al. 2023;
`make demo-imagenet` measures it with a named concept). Here nobody names it. Offline there are no
photos of cartons, so each audited class's sub-folder holds the photo crops (the real-network
demo's probe photos: scikit-image, scikit-learn, matplotlib) that Lite0 finds most like that class,
a disjoint set per class; then a watermark is drawn on `--share` of every class's crops, as a
validation set scraped from stock sites would have it. `audit discover` runs through the CLI with
the defaults and the demo's negatives for the control pastes.

Two conditions on the same crops, the text laid out alike (same size, place and opacity ranges):
* `cjk`: the Chinese stock-site phrases (the published shortcut);
* `latin`: Latin words in the same size, place and opacity (the control: any text overlay).

Audited classes: the five published ones and four unrelated ones (tench, daisy, espresso, space
shuttle). Scored like `make bench-discovery`: a class "has the text" when one of its patterns has a
significant insertion test (Holm-adjusted p <= 0.05) and cutouts that overlap the text (mean IoU >=
0.3 with the text's mask widened by 4 px, over the cutouts cut from crops that carry text); also
the share of the text's stroke pixels inside the cutouts' regions."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "discovery_imagenet_planted"
PUBLISHED = ("cardboard box / carton", "broom", "safe", "monitor", "apron")
UNRELATED = ("tench", "daisy", "espresso", "space shuttle")
POOL, SEED = 720, 31
IOU_MIN, P_MAX, WIDEN = 0.3, 0.05, 4


def crops(n: int, seed: int) -> np.ndarray:
    from audit.demo import imagenet as demo

    pool = demo.photo_pool()
    photos = [pool[name] for name in demo.PROBE_PHOTOS if name in pool]
    rng = np.random.default_rng([seed, 1])
    return np.stack([demo.random_crop(rng, photos[i % len(photos)]) for i in range(n)])


def assign(logp: np.ndarray, classes: list[int], per_class: int) -> dict[int, np.ndarray]:
    """Disjoint sets: in turn, each class takes the unused crop it finds most like itself."""
    taken, out = np.zeros(len(logp), bool), {c: [] for c in classes}
    for _ in range(per_class):
        for c in classes:
            order = np.argsort(-logp[:, c], kind="stable")
            i = next(int(i) for i in order if not taken[i])
            taken[i] = True
            out[c].append(i)
    return {c: np.array(v) for c, v in out.items()}


def text_layers(n: int, phrases, font: str, seed: int) -> np.ndarray:
    from audit.demo import imagenet as demo

    rng = np.random.default_rng([seed, 2])
    return np.stack([demo.text_layer(rng, phrases, font) for _ in range(n)])


def widen(mask: np.ndarray, px: int) -> np.ndarray:
    from scipy.ndimage import maximum_filter

    return maximum_filter(mask, size=2 * px + 1)


def score(report: Path, images: dict[bytes, int], strokes: np.ndarray, zone: np.ndarray, n_text: int) -> list[dict]:
    """Each discovered pattern with its overlap with the text (cutouts from text-bearing crops), and
    how many of its top `n_text` images (cutouts come in the order of the pattern's weight) carry text:
    `n_text` of them when the pattern picks out exactly the text-bearing crops."""
    from PIL import Image

    result = json.loads((report / "discovery.json").read_text())
    rows = []
    for e in result["discovered"]:
        ious, covered, carry = [], [], []
        for rel in e["cutouts"]:
            rgba = np.asarray(Image.open(report / rel))
            i = images.get(rgba[..., :3].tobytes())
            carry.append(i is not None and bool(strokes[i].any()))
            if not carry[-1]:
                continue
            region = rgba[..., 3] > 127
            ious.append(float((region & zone[i]).sum() / max((region | zone[i]).sum(), 1)))
            covered.append(float((region & strokes[i]).sum() / strokes[i].sum()))
        rows.append({k: e[k] for k in ("class_name", "pattern", "level", "share", "kept_without", "causal_flip",
                                       "causal_flip_control", "causal_shift", "causal_logp_rise",
                                       "causal_p_adjusted")}
                    | {"cutouts": len(e["cutouts"]), "cutouts_with_text": int(sum(carry)),
                       "text_in_top": int(sum(carry[:n_text])),
                       "text_iou": float(np.mean(ious)) if ious else 0.0,
                       "text_covered": float(np.mean(covered)) if covered else 0.0})
    return rows


def has_text(r: dict) -> bool:
    p = r["causal_p_adjusted"]
    return r["text_iou"] >= IOU_MIN and p is not None and p <= P_MAX


def markdown(out: dict) -> str:
    m = out["machine"]
    lines = [f"Discovery on EfficientNet-Lite0's own watermark shortcut, {m['date']}, {m['cpu']} ({m['cores']} cores): "
             f"{out['design']['per_class']} crops per class, text on {out['design']['share']:.0%} of them; "
             f"`audit discover` with the defaults.", "",
             f"Per condition: is the text found (a significant pattern with text IoU >= {IOU_MIN}); the pattern "
             f"that best picks out the text-bearing crops (how many of its top {out['design']['n_text']} images carry "
             "text), its IoU with the text's zone and the share of the text's strokes inside its regions; and its "
             "insertion test (causal shift, Holm-adjusted p).", "",
             "| class | published | cjk: found | text in top | IoU / strokes | shift, adj. p | "
             "latin: found | text in top | IoU / strokes | shift, adj. p |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name in out["classes"]:
        cells = []
        for cond in ("cjk", "latin"):
            rows = [r for r in out["conditions"][cond]["patterns"] if r["class_name"] == name]
            best = max(rows, key=lambda r: (r["text_in_top"], r["text_iou"]))
            p = best["causal_p_adjusted"]
            cells += ["**yes**" if any(has_text(r) for r in rows) else "no",
                      f"{best['text_in_top']} / {out['design']['n_text']}",
                      f"{best['text_iou']:.2f} / {best['text_covered']:.2f}",
                      f"{best['causal_shift']:.2f}, {p:.1e}" if p is not None else "untested"]
        lines.append(f"| {name} | {'yes' if name in PUBLISHED else 'no'} | " + " | ".join(cells) + " |")
    for cond in ("cjk", "latin"):
        c = out["conditions"][cond]
        lines.append(f"\n`{cond}`: {c['found_published']} / {len(PUBLISHED)} published classes and "
                     f"{c['found_unrelated']} / {len(UNRELATED)} unrelated ones have a significant pattern on the "
                     f"text; discover {c['seconds']:.0f} s ({c['seconds_per_class']:.1f} s per class).")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-class", type=int, default=16)
    ap.add_argument("--share", type=float, default=0.5, help="share of each class's crops that carry the text")
    ap.add_argument("--rescore", action="store_true", help="score the reports already in .cache, do not rerun")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "discovery_imagenet_planted.json"))
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from PIL import Image

    from audit.evidence.causal import log_probs
    from audit.demo import imagenet as demo
    from imagenet import lite0_and_demo_data  # noqa: E402 (this folder's real-network discovery benchmark)

    sys.path.insert(0, str(ROOT / "benchmarks" / "validity"))
    from run import _cpu  # noqa: E402

    model, model_path, classes_path, data = lite0_and_demo_data()
    names = model.classes
    audited = [names.index(n) for n in PUBLISHED + UNRELATED]

    pool = crops(POOL, SEED)
    logp = log_probs(model, pool.astype(np.float32) / 255.0, 16)  # the audit's images are in [0, 1]
    chosen = assign(logp, audited, args.per_class)
    n_text = int(round(args.share * args.per_class))
    fonts = {"cjk": (demo.CJK_PHRASES, demo._font_path(demo.CJK_FONTS)),
             "latin": (demo.LATIN_PHRASES, demo._font_path(demo.LATIN_FONTS))}
    out = {"machine": {"cpu": _cpu(), "cores": os.cpu_count(), "python": platform.python_version(),
                       "date": dt.date.today().isoformat()},
           "design": {"per_class": args.per_class, "share": args.share, "n_text": n_text, "pool": POOL, "seed": SEED,
                      "iou_min": IOU_MIN, "p_max": P_MAX, "widen_px": WIDEN},
           "classes": [names[c] for c in audited],
           "class_log_prob_of_crops": {names[c]: float(np.median(logp[chosen[c], c])) for c in audited},
           "conditions": {}}
    for cond, (phrases, font) in fonts.items():
        # the same seed for both conditions: the layout is drawn alike, the phrases and the font differ
        layers = text_layers(len(audited) * n_text, phrases, font, SEED)
        folder, report = CACHE / cond / "probes", CACHE / cond / "report"
        if not args.rescore:
            shutil.rmtree(CACHE / cond, ignore_errors=True)
        images, strokes, index, k = [], [], {}, 0
        for c in audited:
            sub = folder / str(c)  # by class index: "cardboard box / carton" cannot be a folder name
            sub.mkdir(parents=True, exist_ok=args.rescore)
            for j, i in enumerate(chosen[c]):
                img, mask = pool[i], np.zeros(pool.shape[1:3], bool)
                if j < n_text:
                    img, mask = demo.composite(img, layers[k]), layers[k][..., 3] > 25
                    k += 1
                if not args.rescore:
                    Image.fromarray(img).save(sub / f"crop_{j:02d}.png")
                index[img.tobytes()] = len(images)
                images.append(img)
                strokes.append(mask)
        strokes = np.stack(strokes)
        zone = np.stack([widen(m, WIDEN) for m in strokes])
        started = time.perf_counter()
        command = [sys.executable, "-m", "audit", "discover", "--model", str(model_path), "--probes", str(folder),
                   "--classes-file", str(classes_path), "--input-range", "0,255", "--negatives",
                   str(data / "negatives"), "--out", str(report), "--quiet"]
        proc = (subprocess.CompletedProcess(command, 0, "", "") if args.rescore else
                subprocess.run(command, capture_output=True, text=True, cwd=ROOT))
        wall = time.perf_counter() - started
        if proc.returncode not in (0, 1):
            print(proc.stderr[-2000:])
            return 3
        rows = score(report, index, strokes, zone, n_text)
        timing = json.loads((report / "discovery.json").read_text())["timing_seconds"]
        found = {names[c]: any(has_text(r) for r in rows if r["class_name"] == names[c]) for c in audited}
        out["conditions"][cond] = {
            "found": found, "found_published": int(sum(found[n] for n in PUBLISHED)),
            "found_unrelated": int(sum(found[n] for n in UNRELATED)),
            "seconds": float(timing["discover"]), "seconds_per_class": float(timing["discover"]) / len(audited),
            "wall_seconds": round(wall, 1), "report": str(report), "patterns": rows}
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    table = markdown(out)
    path.with_suffix(".md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
