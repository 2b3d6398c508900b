"""Procedural "gym" images drawn with scikit-image.

Every image is a pure function of a seed, so the demo data, the ground-truth
interventions (the same scene with and without an arm) and the concept folders
are reproducible bit for bit. Images are float32 RGB in [0, 1].
"""

from __future__ import annotations

import numpy as np
from skimage import draw

SIZE = 64
CLASSES = ("dumbbell", "barbell", "kettlebell", "ball", "racket", "bottle")

SKIN_TONES = np.array(
    [[0.96, 0.80, 0.69], [0.91, 0.72, 0.58], [0.80, 0.58, 0.43],
     [0.66, 0.45, 0.31], [0.49, 0.33, 0.22], [0.36, 0.24, 0.16]],
    dtype=np.float32,
)
METAL = np.array([[0.15, 0.15, 0.17], [0.35, 0.35, 0.38], [0.6, 0.6, 0.63],
                  [0.55, 0.1, 0.1], [0.1, 0.2, 0.5]], dtype=np.float32)


def _paint(img, rr, cc, color):
    keep = (rr >= 0) & (rr < img.shape[0]) & (cc >= 0) & (cc < img.shape[1])
    img[rr[keep], cc[keep]] = color


def _bar(img, p0, p1, width, color):
    """A filled rotated rectangle from point p0 to p1 (row, col) of the given width."""
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    d = p1 - p0
    n = np.array([-d[1], d[0]]) / (np.hypot(*d) + 1e-9) * width / 2
    corners = np.array([p0 + n, p1 + n, p1 - n, p0 - n])
    rr, cc = draw.polygon(corners[:, 0], corners[:, 1], shape=img.shape[:2])
    _paint(img, rr, cc, color)


def _unit(angle):
    return np.array([np.sin(angle), np.cos(angle)])


def background(rng: np.random.Generator, clutter: int | None = None) -> np.ndarray:
    """A muted gradient with sensor noise and a few unrelated geometric shapes."""
    base = rng.uniform(0.25, 0.85, size=3)
    tilt = rng.uniform(-0.25, 0.25, size=3)
    ramp = np.linspace(-0.5, 0.5, SIZE)[:, None, None]
    if rng.random() < 0.5:
        ramp = ramp.transpose(1, 0, 2)
    img = base + tilt * ramp + rng.normal(0, 0.02, size=(SIZE, SIZE, 3))
    img = np.clip(img, 0, 1)
    n = rng.integers(0, 3) if clutter is None else clutter
    for _ in range(n):
        color = rng.uniform(0.0, 1.0, size=3)
        color[2] = max(color[2], color[0])  # keep clutter away from skin hues
        r, c = rng.uniform(0, SIZE, size=2)
        if rng.random() < 0.5:
            rr, cc = draw.disk((r, c), rng.uniform(2, 6), shape=img.shape[:2])
            _paint(img, rr, cc, color)
        else:
            ang = rng.uniform(0, np.pi)
            _bar(img, (r, c), np.array([r, c]) + 10 * _unit(ang), rng.uniform(2, 5), color)
    return img.astype(np.float32)


def _dumbbell(img, rng, center, angle):
    half = rng.uniform(6, 8)
    axis = _unit(angle)
    color = METAL[rng.integers(len(METAL))]
    _bar(img, center - half * axis, center + half * axis, 2.5, METAL[2])
    plate_h = rng.uniform(9, 13)
    for s in (-1, 1):
        p = center + s * half * axis
        _bar(img, p, p + s * 4 * axis, plate_h, color)
    return center  # where a hand grips it


def _barbell(img, rng, center, angle):
    half = rng.uniform(20, 27)
    axis = _unit(angle)
    color = METAL[rng.integers(len(METAL))]
    _bar(img, center - half * axis, center + half * axis, 2.5, METAL[2])
    plate_h = rng.uniform(10, 15)
    for s in (-1, 1):
        p = center + s * (half - 7) * axis
        _bar(img, p, p + s * 4 * axis, plate_h, color)
    return center + rng.uniform(-8, 8) * axis


def _kettlebell(img, rng, center, angle):
    r = rng.uniform(9, 12)
    color = METAL[rng.integers(len(METAL))]
    body = center + np.array([r * 0.4, 0])
    rr, cc = draw.disk(body, r, shape=img.shape[:2])
    _paint(img, rr, cc, color)
    handle = body - np.array([r * 1.05, 0])
    rr, cc = draw.ellipse(*handle, r * 0.55, r * 0.7, shape=img.shape[:2])
    _paint(img, rr, cc, color)
    rr, cc = draw.ellipse(*handle, r * 0.3, r * 0.45, shape=img.shape[:2])
    _paint(img, rr, cc, img[int(np.clip(handle[0] - r, 0, SIZE - 1)), int(np.clip(handle[1], 0, SIZE - 1))])
    return handle - np.array([r * 0.45, 0])


def _ball(img, rng, center, angle):
    r = rng.uniform(9, 13)
    color = rng.uniform(0.2, 1.0, size=3)
    rr, cc = draw.disk(center, r, shape=img.shape[:2])
    _paint(img, rr, cc, color)
    seam = center + 0.3 * r * _unit(angle + np.pi / 2)
    rr, cc = draw.ellipse(*seam, r * 0.9, r * 0.25, shape=img.shape[:2], rotation=angle)
    inside = (rr - center[0]) ** 2 + (cc - center[1]) ** 2 < (r - 1) ** 2
    _paint(img, rr[inside], cc[inside], 1.0 - color)
    return center + r * _unit(angle)


def _racket(img, rng, center, angle):
    axis = _unit(angle)
    head = center + 5 * axis
    frame = METAL[rng.integers(len(METAL))]
    rr, cc = draw.ellipse(*head, 11, 8, shape=img.shape[:2], rotation=-angle)
    _paint(img, rr, cc, frame)
    rr, cc = draw.ellipse(*head, 9, 6, shape=img.shape[:2], rotation=-angle)
    strings = np.where(((rr + cc) % 3 == 0) | ((rr - cc) % 3 == 0), 0.95, 0.6)
    keep = (rr >= 0) & (rr < SIZE) & (cc >= 0) & (cc < SIZE)
    img[rr[keep], cc[keep]] = strings[keep, None]
    grip_end = head - 24 * axis
    _bar(img, head - 10 * axis, grip_end, 3, frame)
    return head - 18 * axis


def _bottle(img, rng, center, angle):
    axis = _unit(angle)
    color = np.array([0.2, rng.uniform(0.4, 0.8), rng.uniform(0.4, 0.9)])
    _bar(img, center - 9 * axis, center + 7 * axis, rng.uniform(9, 12), color)
    _bar(img, center + 7 * axis, center + 13 * axis, 4, color * 0.8)
    _bar(img, center + 13 * axis, center + 15 * axis, 5, np.array([0.9, 0.9, 0.9]))
    return center - 2 * axis


OBJECTS = {"dumbbell": _dumbbell, "barbell": _barbell, "kettlebell": _kettlebell,
           "ball": _ball, "racket": _racket, "bottle": _bottle}


def arm(img, rng, grip, skin=None):
    """A skin-toned forearm entering from outside the frame with a hand at `grip`."""
    skin = SKIN_TONES[rng.integers(len(SKIN_TONES))] if skin is None else skin
    skin = np.clip(skin + rng.normal(0, 0.02, 3), 0, 1)
    angle = rng.uniform(0, 2 * np.pi)
    elbow = np.asarray(grip, float) + 40 * _unit(angle)
    _bar(img, elbow, grip, rng.uniform(6, 8), skin)
    rr, cc = draw.ellipse(*grip, 4.5, 3.5, shape=img.shape[:2], rotation=-angle)
    _paint(img, rr, cc, skin * 0.92)
    return img


def stripes(img, rng):
    """A striped texture patch (a towel, a mat)."""
    h, w = rng.integers(16, 28, size=2)
    r0, c0 = rng.integers(0, SIZE - h), rng.integers(0, SIZE - w)
    yy, xx = np.mgrid[0:h, 0:w]
    ang = rng.uniform(0, np.pi)
    period = rng.uniform(3, 6)
    band = (np.sin((yy * np.cos(ang) + xx * np.sin(ang)) * 2 * np.pi / period) > 0)
    c1, c2 = rng.uniform(0, 1, size=(2, 3))
    img[r0:r0 + h, c0:c0 + w] = np.where(band[..., None], c1, c2)
    return img


def watermark(img, rng):
    """A light tag with dark glyph-like marks in one corner, like a stock-photo watermark."""
    h, w = 9, rng.integers(22, 30)
    r0 = 2 if rng.random() < 0.5 else SIZE - h - 2
    c0 = 2 if rng.random() < 0.5 else SIZE - w - 2
    img[r0:r0 + h, c0:c0 + w] = 0.5 * img[r0:r0 + h, c0:c0 + w] + 0.5 * 0.97
    c = c0 + 2
    while c < c0 + w - 3:
        gw = rng.integers(1, 3)
        top = r0 + rng.integers(1, 3)
        img[top:r0 + h - 2, c:c + gw] = 0.1
        c += gw + rng.integers(1, 3)
    return img


def scene(label: str, seed: int, with_arm: bool, distractors: bool = True) -> np.ndarray:
    """One training-style image of `label`; the arm is drawn from its own stream so the
    same seed gives the same scene with or without it (an intervention pair)."""
    rng = np.random.default_rng([seed, 1])
    img = background(rng)
    center = np.array([32.0, 32.0]) + rng.uniform(-6, 6, size=2)
    grip = OBJECTS[label](img, rng, center, rng.uniform(0, np.pi))
    if distractors:
        if rng.random() < 0.12:
            stripes(img, rng)
        if rng.random() < 0.12:
            watermark(img, rng)
    if with_arm:
        arm(img, np.random.default_rng([seed, 2]), grip)
    return np.clip(img, 0, 1).astype(np.float32)


def concept_image(name: str, seed: int) -> np.ndarray:
    """An example of a concept on the same kind of background as the negatives."""
    rng = np.random.default_rng([seed, 3])
    img = background(rng)
    if name == "arm":
        arm(img, rng, rng.uniform(14, 50, size=2))
    elif name == "stripes":
        stripes(img, rng)
    elif name == "watermark":
        watermark(img, rng)
    elif name != "_random":
        raise ValueError(f"unknown demo concept {name!r}")
    return np.clip(img, 0, 1).astype(np.float32)


def concept_cutout(name: str, seed: int) -> np.ndarray:
    """The concept alone as RGBA (for the causal paste test): drawn with the same random
    stream on a black and on a white canvas, then unmixed: where a painter blends colour c
    with opacity a, black gives a*c and white gives a*c + 1 - a."""
    painter = {"arm": lambda img, rng: arm(img, rng, rng.uniform(14, 50, size=2)),
               "stripes": stripes, "watermark": watermark}[name]
    on_black = painter(np.zeros((SIZE, SIZE, 3)), np.random.default_rng([seed, 4]))
    on_white = painter(np.ones((SIZE, SIZE, 3)), np.random.default_rng([seed, 4]))
    alpha = np.clip(1.0 - (on_white - on_black).mean(-1, keepdims=True), 0.0, 1.0)
    rgb = np.where(alpha > 1e-6, on_black / np.maximum(alpha, 1e-6), 0.0)
    return np.clip(np.concatenate([rgb, alpha], -1), 0, 1).astype(np.float32)
