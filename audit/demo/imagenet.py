"""Data for the real-network demo (`make demo-imagenet`): the published stock-photo watermark
shortcut of ImageNet classifiers (ImageNet-W, Li et al. CVPR 2023), rebuilt offline.

    python -m audit.demo.imagenet [--out .cache/demo_imagenet]

Everything is drawn from files that installed packages ship, deterministically from a seed:
- probes and negatives: random crops of the real photos in scikit-image, scikit-learn and
  matplotlib (coffee, chelsea, astronaut, rocket, china, flower, grace_hopper, ...);
- `cjk_watermark`: semi-transparent Chinese stock-photo watermark text (Debian's
  fonts-wqy-zenhei) over photo crops (examples) and alone as RGBA (cutouts);
- `latin_text`: the control concept, the same layout, opacity and size in Latin letters.

Probes and negatives come from disjoint photos, so the negatives are no copy of the probes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SIZE = 224
VERSION = 2  # bump when the drawing changes: cached folders are rebuilt
CJK_FONTS = ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", "/usr/share/fonts/wqy-zenhei/wqy-zenhei.ttc")
LATIN_FONTS = ("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
               "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
# phrases of the kind Chinese stock-photo sites stamp on previews ("image from the web",
# "all rights reserved", "photo gallery", site names)
CJK_PHRASES = ("图片来源网络", "版权所有", "摄图网", "千图网", "昵图网", "图虫创意", "汇图网", "素材中国",
               "全景视觉", "视觉中国", "禁止商用", "原创作品")
LATIN_PHRASES = ("garden view", "morning", "holiday", "city lights", "summer time", "river side",
                 "open house", "free style", "long road", "blue sky", "family day", "old town")
COUNTS = {"examples": 40, "cutouts": 40, "probes": 100, "negatives": 100}


def _skimage_photos() -> dict[str, np.ndarray]:
    import skimage.data as d

    photos = {n: getattr(d, n)() for n in ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field",
                                           "immunohistochemistry", "retina", "brick", "grass", "gravel",
                                           "camera", "moon", "coins", "clock", "cell")}
    photos["motorcycle"] = d.stereo_motorcycle()[0]
    return photos


def _other_photos() -> dict[str, np.ndarray]:
    photos = {}
    try:
        from sklearn.datasets import load_sample_images

        for name, img in zip(("china", "flower"), load_sample_images().images):
            photos[name] = img
    except ImportError:
        pass
    try:
        import matplotlib

        path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
        if path.exists():
            photos["grace_hopper"] = np.asarray(Image.open(path).convert("RGB"))
    except ImportError:
        pass
    return photos


def photo_pool() -> dict[str, np.ndarray]:
    """Every shipped photo as uint8 RGB (grayscale ones replicated), by name."""
    pool = {**_skimage_photos(), **_other_photos()}
    out = {}
    for name, img in sorted(pool.items()):
        img = np.asarray(img)
        if img.dtype == bool:
            continue
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=-1)
        out[name] = np.ascontiguousarray(img[..., :3]).astype(np.uint8)
    return out


# photos whose crops are probes; the rest are negatives (disjoint, and both sets mix colour
# photos with grayscale textures)
PROBE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "china", "flower", "motorcycle", "camera",
                "coins", "grass", "immunohistochemistry")


def random_crop(rng: np.random.Generator, img: np.ndarray, size: int = SIZE) -> np.ndarray:
    h, w = img.shape[:2]
    side = int(min(h, w) * rng.uniform(0.4, 1.0))
    top, left = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
    crop = Image.fromarray(img[top:top + side, left:left + side]).resize((size, size), Image.Resampling.BICUBIC)
    out = np.asarray(crop)
    return out[:, ::-1] if rng.random() < 0.5 else out


def _font_path(candidates: tuple[str, ...]) -> str:
    for path in candidates:
        if Path(path).exists():
            return path
    raise SystemExit(f"font not found (looked for {', '.join(candidates)}); install Debian's "
                     "fonts-wqy-zenhei and fonts-dejavu-core (`make demo-imagenet` does)")


def text_layer(rng: np.random.Generator, phrases: tuple[str, ...], font_path: str, size: int = SIZE) -> np.ndarray:
    """(size, size, 4) uint8: a stock-photo-style watermark, white text at partial opacity, one or
    two lines near the centre, with a thin dark outline as such watermarks have."""
    layer = Image.new("LA", (size, size), (0, 0))
    draw = ImageDraw.Draw(layer)
    lines = [phrases[i] for i in rng.choice(len(phrases), size=rng.integers(1, 3), replace=False)]
    px = int(rng.integers(22, 34))
    font = ImageFont.truetype(font_path, px)
    opacity = int(255 * rng.uniform(0.55, 0.8))
    y = size / 2 - len(lines) * px * 0.6 + rng.integers(-30, 31)
    for line in lines:
        x0, _, x1, _ = draw.textbbox((0, 0), line, font=font)
        x = (size - (x1 - x0)) / 2 + rng.integers(-25, 26)
        draw.text((x, y), line, font=font, fill=(255, opacity), stroke_width=1, stroke_fill=(60, opacity))
        y += px * 1.25
    la = np.asarray(layer)
    return np.dstack([la[..., 0], la[..., 0], la[..., 0], la[..., 1]])


def composite(photo: np.ndarray, rgba: np.ndarray) -> np.ndarray:
    a = rgba[..., 3:].astype(np.float32) / 255.0
    return (photo.astype(np.float32) * (1 - a) + rgba[..., :3].astype(np.float32) * a + 0.5).astype(np.uint8)


def _save(path: Path, arr: np.ndarray) -> None:
    Image.fromarray(arr).save(path, format="PNG")


def build(out: Path, seed: int = 0, counts: dict[str, int] | None = None) -> Path:
    """Write the demo folders into `out` (atomically: a finished folder or none)."""
    out = Path(out)
    counts = {**COUNTS, **(counts or {})}
    stamp = {"version": VERSION, "seed": seed, "counts": counts}
    if (out / "stamp.json").exists() and json.loads((out / "stamp.json").read_text()) == stamp:
        return out
    if out.exists() and not (out / "stamp.json").exists():
        raise SystemExit(f"{out} exists and was not written by this builder; remove it or pick --out")
    pool = photo_pool()
    probe_photos = [pool[n] for n in PROBE_PHOTOS if n in pool]
    negative_photos = [img for n, img in pool.items() if n not in PROBE_PHOTOS]
    cjk, latin = _font_path(CJK_FONTS), _font_path(LATIN_FONTS)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        rng = np.random.default_rng([seed, 1])
        folders = {}
        for name in ("probes", "negatives", "cjk_watermark", "cjk_watermark_cutouts", "latin_text",
                     "latin_text_cutouts"):
            folders[name] = staging / name
            folders[name].mkdir()
        for i in range(counts["probes"]):
            _save(folders["probes"] / f"probe_{i:03d}.png",
                  random_crop(rng, probe_photos[i % len(probe_photos)]))
        for i in range(counts["negatives"]):
            _save(folders["negatives"] / f"negative_{i:03d}.png",
                  random_crop(rng, negative_photos[i % len(negative_photos)]))
        for concept, phrases, font in (("cjk_watermark", CJK_PHRASES, cjk), ("latin_text", LATIN_PHRASES, latin)):
            crng = np.random.default_rng([seed, 2, len(concept)])
            for i in range(counts["examples"]):
                # examples show the concept on photos the probes never use
                photo = random_crop(crng, negative_photos[(i * 7) % len(negative_photos)])
                _save(folders[concept] / f"{concept}_{i:03d}.png",
                      composite(photo, text_layer(crng, phrases, font)))
            for i in range(counts["cutouts"]):
                _save(folders[f"{concept}_cutouts"] / f"{concept}_{i:03d}.png", text_layer(crng, phrases, font))
        # whole photos for `audit dream` (configs/dream_imagenet.yaml)
        (staging / "photos").mkdir()
        for name in ("chelsea", "coffee"):
            if name in pool:
                _save(staging / "photos" / f"{name}.png", pool[name])
        (staging / "stamp.json").write_text(json.dumps(stamp))
        if out.exists():
            shutil.rmtree(out)
        os.replace(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return out


# ImageNet-W's five classes (Li et al., CVPR 2023), as the classes file names them
PUBLISHED = ("cardboard box / carton", "monitor", "broom", "apron", "safe")


def check_demo(audit_json: Path) -> list[str]:
    """What `make demo-imagenet` expects of its audit, as problems (none: as expected). On
    EfficientNet-Lite0 the watermark moves no decision (benchmarks/decision), so each published
    class must be flagged (the log-odds response warns) and the Latin-text control must stay quiet."""
    import json

    checks = {(c["class_name"], c["concept"]): c for c in json.loads(audit_json.read_text())["checks"]}
    problems = [f"{cls} x cjk_watermark is {checks[cls, 'cjk_watermark']['level']}" for cls in PUBLISHED
                if (cls, "cjk_watermark") in checks and checks[cls, "cjk_watermark"]["level"] not in ("warn", "fail")]
    problems += [f"{cls} x latin_text is {c['level']}" for (cls, concept), c in checks.items()
                 if concept == "latin_text" and c["level"] in ("warn", "fail")]
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m audit.demo.imagenet", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(".cache") / "demo_imagenet")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--check", type=Path, metavar="AUDIT_JSON", help="check the demo's audit.json instead")
    args = parser.parse_args(argv)
    if args.check:
        problems = check_demo(args.check)
        for problem in problems:
            print(f"demo-imagenet: not as expected: {problem}")
        return 1 if problems else 0
    print(build(args.out, args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
