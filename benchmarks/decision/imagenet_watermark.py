"""Does EfficientNet-Lite0 have the stock-photo watermark shortcut at the *decision* level?

The truth of issue #22's units, measured by the exact-cue intervention on the real network:
for each audited class c, the share of probe images whose top-1 prediction becomes c when the
CJK watermark is drawn on them, minus the share when the same alpha mask is filled with the
pixels of another photo (the audit's mask-matched control), in percentage points, with a
bootstrap 95% interval; beside it the mean log-odds change of c (nats), and the same two
numbers for a Latin-text watermark of the same layout (a control concept that must stay quiet).

Probes: crops of every photo the installed packages ship (scikit-image, scikit-learn,
matplotlib) at three scales, "plain", and the same crops made less confident in ways that keep
them natural, "hard" (ImageNet-W measured its +30 points for carton on validation images, far
less confident than curated crops): the audit's own hard copies (audit/evidence/hard.py: a
downscale, an occluder over a third of the image, a 50/50 blend of two crops, a zoom).

    python benchmarks/decision/imagenet_watermark.py [--per-photo 8] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from audit.demo.imagenet import (CJK_FONTS, CJK_PHRASES, LATIN_FONTS, LATIN_PHRASES, SIZE,  # noqa: E402
                                 _font_path, photo_pool, text_layer)
from audit.evidence.hard import hard_images  # noqa: E402
from audit.evidence.causal import log_odds  # noqa: E402

PUBLISHED = {"carton": 478, "monitor": 664, "broom": 462, "apron": 411, "safe": 771}
# classes nobody published for the watermark: two the audit warned on (candle, shopping basket),
# two where text belongs (street sign, book jacket), four unrelated
OTHERS = {"candle": 470, "shopping basket": 790, "street sign": 919, "book jacket": 921,
          "tabby cat": 281, "espresso": 967, "daisy": 985, "golden retriever": 207}
SCALES = (1.0, 0.6, 0.35)  # crop side as a share of the photo's shorter side
BOOTSTRAP = 2000


def crops(photos: dict[str, np.ndarray], per_photo: int, rng: np.random.Generator) -> np.ndarray:
    out = []
    for name in sorted(photos):
        img = photos[name]
        h, w = img.shape[:2]
        for scale in SCALES:
            side = max(32, int(min(h, w) * scale))
            for _ in range(per_photo):
                top, left = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
                crop = Image.fromarray(img[top:top + side, left:left + side]).resize((SIZE, SIZE),
                                                                                     Image.Resampling.BICUBIC)
                out.append(np.asarray(crop))
    return np.stack(out)


def layers(n: int, seed: int, phrases, font) -> np.ndarray:
    """One watermark per probe; the same seed gives the CJK and Latin layers the same draws."""
    return np.stack([text_layer(np.random.default_rng([seed, k]), phrases, font) for k in range(n)])


def paste(images: np.ndarray, rgba: np.ndarray, fill: np.ndarray | None = None) -> np.ndarray:
    a = rgba[..., 3:].astype(np.float32) / 255.0
    rgb = rgba[..., :3].astype(np.float32) if fill is None else fill.astype(np.float32)
    return (images.astype(np.float32) * (1 - a) + rgb * a + 0.5).astype(np.uint8)


def predict(model, images: np.ndarray, batch: int = 32) -> np.ndarray:
    """Log-probabilities over the 1000 classes. The converted Lite0 takes pixels in [0, 255] and
    ends in its softmax: its output is probabilities (float32, so floored at the smallest normal)."""
    import tensorflow as tf

    out = []
    for i in range(0, len(images), batch):
        probs = model(tf.constant(images[i:i + batch], tf.float32), training=False).numpy().astype(np.float64)
        out.append(np.log(np.maximum(probs, np.finfo(np.float32).tiny)))
    return np.concatenate(out)


def effect(clean, cue, control, c, rng) -> dict:
    """Over the probes the model does not put in c (benchmarks/truth.py's definition): the share the
    watermark moves into c minus the share the mask-matched control paste moves there (points), with a
    bootstrap 95% interval, and the mean log-odds change of c (nats), watermark minus control."""
    keep = clean.argmax(1) != c
    per_probe = 100 * ((cue.argmax(1)[keep] == c).astype(float) - (control.argmax(1)[keep] == c))
    odds = log_odds(cue[keep, c]) - log_odds(control[keep, c])
    idx = rng.integers(0, len(per_probe), size=(BOOTSTRAP, len(per_probe)))
    boot = per_probe[idx].mean(1)
    return {"share_points": round(float(per_probe.mean()), 2),
            "share_ci95": [round(float(np.percentile(boot, 2.5)), 2), round(float(np.percentile(boot, 97.5)), 2)],
            "share_cue": round(100 * float((cue.argmax(1)[keep] == c).mean()), 2),
            "share_control": round(100 * float((control.argmax(1)[keep] == c).mean()), 2),
            "share_clean": round(100 * float((clean.argmax(1) == c).mean()), 2),
            "log_odds_nats": round(float(odds.mean()), 3),
            "prob_rise_points": round(100 * float((np.exp(cue[keep, c]) - np.exp(control[keep, c])).mean()), 3)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-photo", type=int, default=8, help="crops per photo and scale")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    import keras

    from audit.model.pretrained import ensure_model

    started = time.time()
    model = keras.saving.load_model(ensure_model("efficientnet-lite0"), compile=False)
    rng = np.random.default_rng(args.seed)
    photos = photo_pool()
    plain = crops(photos, args.per_photo, rng)
    hard = hard_images(plain.astype(np.float32), np.arange(len(plain)), args.seed).round().astype(np.uint8)
    cjk = layers(len(plain), args.seed, CJK_PHRASES, _font_path(CJK_FONTS))
    latin = layers(len(plain), args.seed, LATIN_PHRASES, _font_path(LATIN_FONTS))
    fill = plain[rng.permutation(len(plain))]  # the control: the same masks, another crop's pixels
    classes = {**PUBLISHED, **OTHERS}
    results = {}
    for name, probes in (("plain", plain), ("hard", hard)):
        clean = predict(model, probes)
        runs = {"cjk": predict(model, paste(probes, cjk)), "cjk_control": predict(model, paste(probes, cjk, fill)),
                "latin": predict(model, paste(probes, latin)),
                "latin_control": predict(model, paste(probes, latin, fill))}
        confidence = float(np.exp(clean.max(1)).mean())
        results[name] = {"probes": len(probes), "mean_top1_probability": round(confidence, 3), "classes": {
            cname: {"index": c, "published": cname in PUBLISHED,
                    "cjk": effect(clean, runs["cjk"], runs["cjk_control"], c, rng),
                    "latin": effect(clean, runs["latin"], runs["latin_control"], c, rng)}
            for cname, c in classes.items()}}
        print(f"{name}: {len(probes)} probes, mean top-1 probability {confidence:.3f}")
        for cname, r in results[name]["classes"].items():
            print(f"  {cname:<17} cjk {r['cjk']['share_points']:+6.2f} pts {r['cjk']['share_ci95']} "
                  f"log-odds {r['cjk']['log_odds_nats']:+.2f} | latin {r['latin']['share_points']:+6.2f} pts "
                  f"log-odds {r['latin']['log_odds_nats']:+.2f}")
    record = {"benchmark": "decision/imagenet_watermark", "date": date.today().isoformat(),
              "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, 2 cores",
              "model": "efficientnet-lite0", "photos": sorted(photos), "scales": SCALES,
              "per_photo": args.per_photo, "seed": args.seed, "seconds": round(time.time() - started, 1),
              "results": results}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "decision_imagenet_watermark.json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"written: {args.out / 'decision_imagenet_watermark.json'} ({record['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
