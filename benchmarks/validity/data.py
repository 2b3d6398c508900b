"""Small image datasets with planted cues for the validity benchmark.

Six shape classes on varied backgrounds (learnable by a small CNN without any cue) and
five cues that `plant` correlates with a chosen class at a chosen strength rho. Every cue
is an RGBA cutout alpha-composited onto the image, so `apply_cue(cue, x, s)` is by
construction `paste(x, cue_cutouts(cue, len(x), s))`, and the concept folders
(`concept_examples`) contain the very same kind of pixels. Everything is a pure function of
integer seeds; images are float32 RGB in [0, 1].

Scenes: one light shape (random colour, every channel >= 0.45, mean >= 0.35 above the
background's) of radius 0.2-0.32 SIZE at any angle, centred within +-0.15 SIZE of the image
centre, over a dark muted background (grey 0.05-0.3 with a slight tint, a linear gradient,
a soft blotch, 0-2 thin lines) plus sensor noise (sd 0.02). Light-on-dark and a moderate
background variety are deliberate: with [0, 1] inputs, a Conv-Conv-pool-Conv-pool-GAP
network trained for 8 epochs on 400 images per class stalls for several epochs when the
background is bright or very varied, and ends well below 90%.

Cues (pixel sizes for SIZE = 32; they scale with SIZE):
  object   a gold key with a dark outline, ~9x5 px (11x7 with the outline), any angle,
           centred >= 10 px from the image centre so it rarely covers the shape's middle
  tag      a watermark: a light, 80%-opaque 12x6 box of dark glyph strokes, always in the
           bottom-right corner (2-3 px from the edges, i.e. inside the frame cue)
  texture  a 9x9 patch of navy/cream diagonal stripes (period 4), away from the centre
  frame    a 2 px magenta border
  faint    a 1 px black/white checkerboard composited at alpha 0.06 over the whole image:
           x -> x + 0.06 (1 - x) or x - 0.06 x, i.e. +-0.03 at mid grey, +0.05/-0.01 on the
           dark backgrounds, +0.01/-0.05 on the light shapes (sensor noise sd is 0.02)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SIZE = 32
# No "square": at this budget (8 epochs, 400 per class) a small GAP CNN confused it with the
# circle and the triangle; three dots are as simple and far easier to tell apart.
CLASSES = ("circle", "dots", "triangle", "cross", "star", "ring")
CUES = ("object", "tag", "texture", "frame", "faint")

_SCENES, _BACKGROUNDS, _CUTOUTS, _PLANT, _CONCEPTS = range(1, 6)  # stream purposes
_S = SIZE / 32  # cue sizes are specified at 32 px
_YY, _XX = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
_MID = (SIZE - 1) / 2
NOISE = 0.02
FAINT_ALPHA = 0.06


def _rng(seed: int, purpose: int, *more: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), purpose, *more])


# --- geometry: signed distances in pixels (negative inside), antialiased by clip(0.5 - d) ---

def _local(centre, angle):
    """Pixel coordinates of every image in the frame of its own object (n, SIZE, SIZE) x 2."""
    dy, dx = _YY - centre[:, 0, None, None], _XX - centre[:, 1, None, None]
    c, s = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    return c * dy - s * dx, s * dy + c * dx


def _box(u, v, hu, hv):
    qu, qv = np.abs(u) - hu, np.abs(v) - hv
    return np.hypot(np.maximum(qu, 0), np.maximum(qv, 0)) + np.minimum(np.maximum(qu, qv), 0)


def _polygon(u, v, r, k):
    """Regular k-gon of circumradius r (exact inside, slightly rounded outside corners)."""
    a = np.arange(k) * 2 * np.pi / k
    return (u[..., None] * np.cos(a) + v[..., None] * np.sin(a)).max(-1) - r * np.cos(np.pi / k)


def _star(u, v, r, k=5, inner=0.38):
    # fold every point into the half-sector next to a tip; there the star is one half-plane
    phi = np.abs((np.arctan2(v, u) + np.pi / k) % (2 * np.pi / k) - np.pi / k)
    rho = np.hypot(u, v)
    eu, ev = inner * np.cos(np.pi / k) - 1, inner * np.sin(np.pi / k)  # tip -> inner vertex
    nu, nv = ev / np.hypot(eu, ev), -eu / np.hypot(eu, ev)
    return (rho * np.cos(phi) - r) * nu + rho * np.sin(phi) * nv


_SHAPES = {  # r is the radius of the shape's bounding circle, give or take
    "circle": lambda u, v, r: np.hypot(u, v) - 0.9 * r,
    "dots": lambda u, v, r: np.min([np.hypot(u - 0.6 * r * np.cos(a), v - 0.6 * r * np.sin(a)) - 0.36 * r
                                    for a in (0, 2 * np.pi / 3, 4 * np.pi / 3)], 0),
    "triangle": lambda u, v, r: _polygon(u, v, 1.3 * r, 3),
    "cross": lambda u, v, r: np.minimum(_box(u, v, r, 0.3 * r), _box(u, v, 0.3 * r, r)),
    "star": lambda u, v, r: _star(u, v, 1.2 * r),
    "ring": lambda u, v, r: np.abs(np.hypot(u, v) - 0.72 * r) - 0.26 * r,
}


def _over(img, colour, cover):
    cover = cover[..., None]
    return img * (1 - cover) + colour[:, None, None, :] * cover


# --- scenes ---

def _background(n, rng):
    """Dark muted gradient + a soft colour blotch + 0-2 thin lines; noise is added last (_finish).
    Dark and only mildly varied because a [0, 1]-input CNN with global average pooling learns
    light shapes on dark ground several times faster (see the module docstring)."""
    base = rng.uniform(0.05, 0.3, (n, 1, 1, 1)) + rng.uniform(-0.06, 0.06, (n, 1, 1, 3))
    angle = rng.uniform(0, 2 * np.pi, n)[:, None, None]
    ramp = ((np.cos(angle) * _YY + np.sin(angle) * _XX) / SIZE)[..., None]
    img = base + rng.uniform(-0.15, 0.15, (n, 1, 1, 3)) * ramp
    centre, sigma = rng.uniform(0, SIZE, (n, 2)), rng.uniform(0.15, 0.35, n) * SIZE
    d2 = (_YY - centre[:, 0, None, None]) ** 2 + (_XX - centre[:, 1, None, None]) ** 2
    img += np.exp(-d2 / (2 * sigma[:, None, None] ** 2))[..., None] * rng.uniform(-0.08, 0.08, (n, 1, 1, 3))
    img = np.clip(img, 0, 1)
    for _ in range(2):  # clutter: long thin lines, unlike any class or cue
        p0, angle = rng.uniform(0, SIZE, (n, 2)), rng.uniform(0, np.pi, n)
        length, colour = rng.uniform(0.3, 0.8, n) * SIZE, rng.uniform(0, 1, (n, 3))
        strength = rng.uniform(0.3, 0.9, n) * (rng.random(n) < 0.5)
        u, v = _local(p0, angle)
        d = np.hypot(u, v - np.clip(v, 0, length[:, None, None]))
        img = _over(img, colour, np.clip(1 - d, 0, 1) * strength[:, None, None])
    return img


def _finish(img, rng):
    return np.clip(img + rng.normal(0, NOISE, img.shape), 0, 1).astype(np.float32)


def _light_colour(ground, rng, min_gap=0.35):
    """Random colours whose mean is at least min_gap above the mean of the ground they sit on."""
    colour = rng.uniform(0.45, 1, ground.shape)
    for _ in range(50):
        bad = colour.mean(1) < ground.mean(1) + min_gap
        if not bad.any():
            break
        colour[bad] = rng.uniform(0.45, 1, (bad.sum(), 3))
    return colour


def scenes(labels: np.ndarray, seed: int) -> np.ndarray:
    """Clean scenes of the given class indices. Every random draw is per image and independent
    of the labels, so changing labels[j] changes image j only (same background, pose, colour)."""
    labels = np.asarray(labels)
    n = len(labels)
    rng = _rng(seed, _SCENES)
    img = _background(n, rng)
    centre = _MID + rng.uniform(-0.15, 0.15, (n, 2)) * SIZE
    radius = rng.uniform(0.2, 0.32, n) * SIZE
    angle = rng.uniform(0, 2 * np.pi, n)
    colour = _light_colour(img.mean((1, 2)), rng)
    for k, name in enumerate(CLASSES):
        i = np.flatnonzero(labels == k)
        u, v = _local(centre[i], angle[i])
        img[i] = _over(img[i], colour[i], np.clip(0.5 - _SHAPES[name](u, v, radius[i, None, None]), 0, 1))
    return _finish(img, rng)


def backgrounds(n: int, seed: int) -> np.ndarray:
    """Scene backgrounds without any shape or cue (the same distribution as in `scenes`)."""
    rng = _rng(seed, _BACKGROUNDS)
    return _finish(_background(n, rng), rng)


# --- cues as RGBA cutouts ---

def _jitter(colour, n, rng, sd=0.04):
    return np.clip(np.asarray(colour) + rng.normal(0, sd, (n, 3)), 0, 1)


def _away_from_centre(n, rng, half):
    """Centres of n cues of half-size `half`, inside the image, >= 0.32 SIZE from its centre."""
    angle = rng.uniform(0, 2 * np.pi, n)
    dist = rng.uniform(0.32, 0.5, n) * SIZE
    centre = _MID + dist[:, None] * np.stack([np.sin(angle), np.cos(angle)], 1)
    return np.clip(centre, half, SIZE - 1 - half)


def _place(patches, r0, c0):
    """Paste (n, h, w, 4) patches into empty (n, SIZE, SIZE, 4) canvases at top-left (r0, c0)."""
    n, h, w, _ = patches.shape
    out = np.zeros((n, SIZE, SIZE, 4), np.float32)
    rows = r0[:, None, None] + np.arange(h)[None, :, None]
    cols = c0[:, None, None] + np.arange(w)[None, None, :]
    out[np.arange(n)[:, None, None], rows, cols] = patches
    return out


def _rgba(rgb, alpha):
    rgb = np.broadcast_to(rgb, alpha.shape + (3,))
    return np.concatenate([rgb, alpha[..., None]], -1).astype(np.float32)


def _object(n, rng):
    s = _S
    u, v = _local(_away_from_centre(n, rng, 5 * s), rng.uniform(0, 2 * np.pi, n))
    d = np.minimum.reduce([
        np.abs(np.hypot(u, v + 2.6 * s) - 1.5 * s) - 0.7 * s,  # bow (ring with a hole)
        _box(u, v - 1.7 * s, 0.6 * s, 2.4 * s),  # shaft
        _box(u - 1.2 * s, v - 2.7 * s, 0.6 * s, 0.4 * s),  # bit: two teeth
        _box(u - 1.2 * s, v - 3.7 * s, 0.6 * s, 0.4 * s)])
    body = np.clip(0.5 - d, 0, 1)[..., None]
    gold = _jitter((0.98, 0.76, 0.12), n, rng)[:, None, None]
    dark = _jitter((0.22, 0.09, 0.03), n, rng, 0.02)[:, None, None]
    return _rgba(body * gold + (1 - body) * dark, np.clip(1.5 - d, 0, 1))


def _tag(n, rng):
    h, w, margin = round(6 * _S), round(12 * _S), round(2 * _S)
    # text-like columns: a gap, a full-height stroke, an upper or a lower stroke, or two bars
    kinds = rng.choice(5, (n, w - 2), p=[0.3, 0.25, 0.15, 0.15, 0.15])
    r = np.arange(h - 2)[None, None, :] / max(h - 3, 1)  # 0 at the top glyph row, 1 at the bottom
    ink = ((kinds[..., None] == 1) | ((kinds[..., None] == 2) & (r < 0.6))
           | ((kinds[..., None] == 3) & (r > 0.3)) | ((kinds[..., None] == 4) & ((r == 0) | (r == 1))))
    alpha = np.full((n, h, w), 0.8)
    alpha[:, 1:-1, 1:-1] = np.where(ink.transpose(0, 2, 1), 1.0, 0.8)
    paper, inkc = _jitter((0.94, 0.94, 0.92), n, rng, 0.02), _jitter((0.12, 0.12, 0.16), n, rng, 0.03)
    rgb = np.where((alpha == 1)[..., None], inkc[:, None, None], paper[:, None, None])
    r0 = SIZE - margin - h - rng.integers(0, 2, n)
    c0 = SIZE - margin - w - rng.integers(0, 2, n)
    return _place(_rgba(rgb, alpha), r0, c0)


def _texture(n, rng):
    k, period = round(9 * _S), max(2, round(4 * _S))
    top_left = np.round(_away_from_centre(n, rng, k / 2) - (k - 1) / 2).astype(int)
    rr, cc = np.mgrid[0:k, 0:k]
    band = ((rr + cc + rng.integers(0, period, n)[:, None, None]) % period) < period / 2
    navy, cream = _jitter((0.1, 0.13, 0.4), n, rng), _jitter((0.97, 0.92, 0.62), n, rng)
    rgb = np.where(band[..., None], navy[:, None, None], cream[:, None, None])
    return _place(_rgba(rgb, np.ones(band.shape)), top_left[:, 0], top_left[:, 1])


def _frame(n, rng):
    b = max(1, round(2 * _S))
    alpha = np.ones((SIZE, SIZE))
    alpha[b:-b, b:-b] = 0
    return _rgba(_jitter((0.92, 0.12, 0.62), n, rng)[:, None, None], np.broadcast_to(alpha, (n, SIZE, SIZE)))


def _faint(n, rng):
    # black/white at a small alpha rather than an additive +-a: an RGBA cutout can express it
    # exactly, and it never leaves [0, 1]
    checker = (_YY + _XX + rng.integers(0, 2, n)[:, None, None]) % 2
    return _rgba(checker[..., None], np.full(checker.shape, FAINT_ALPHA))


_CUTOUTS_BY_CUE = {"object": _object, "tag": _tag, "texture": _texture, "frame": _frame, "faint": _faint}


def _cue_index(cue):
    if cue not in CUES:
        raise ValueError(f"unknown cue {cue!r}; expected one of {CUES}")
    return CUES.index(cue)


def cue_cutouts(cue: str, n: int, seed: int) -> np.ndarray:
    """n RGBA cutouts (n, SIZE, SIZE, 4) of a cue; alpha says where and how strongly it covers."""
    return _CUTOUTS_BY_CUE[cue](n, _rng(seed, _CUTOUTS, _cue_index(cue)))


def paste(images: np.ndarray, cutouts: np.ndarray) -> np.ndarray:
    """Alpha-composite cutouts onto images (numpy broadcasting: pairwise, or one onto many)."""
    alpha = cutouts[..., 3:]
    return (images * (1 - alpha) + cutouts[..., :3] * alpha).astype(np.float32)


def apply_cue(cue: str, images: np.ndarray, seed: int) -> np.ndarray:
    """A new array: one fresh cue instance per image (`images` is not modified)."""
    return paste(images, cue_cutouts(cue, len(images), seed))


def plant(labels: np.ndarray, rho: float, cue_targets: dict[str, int],
          seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Training set: scenes(labels, seed) with each cue in `cue_targets` painted on with
    P(cue | label == target) = (1 + rho) / 2 and P(cue | label != target) = (1 - rho) / 2.

    Image i gets the same cue instance as apply_cue(cue, scenes(labels, seed), seed)[i], so
    that pair is the exact with/without intervention. Returns (images, cue_mask (N, len(CUES)))."""
    labels = np.asarray(labels)
    if not -1 <= rho <= 1:
        raise ValueError(f"rho must be in [-1, 1], got {rho}")
    for cue in cue_targets:
        _cue_index(cue)
    draws = _rng(seed, _PLANT).random((len(labels), len(CUES)))  # one column per cue, planted or not
    mask = np.zeros(draws.shape, bool)
    images = scenes(labels, seed)
    for j, cue in enumerate(CUES):
        if cue in cue_targets:
            mask[:, j] = draws[:, j] < np.where(labels == cue_targets[cue], (1 + rho) / 2, (1 - rho) / 2)
            images[mask[:, j]] = paste(images[mask[:, j]], cue_cutouts(cue, len(labels), seed)[mask[:, j]])
    return images, mask


def concept_examples(cue: str, n: int, seed: int) -> np.ndarray:
    """The cue pasted onto fresh backgrounds: a concept folder. Its own streams, so it shares
    no background or cue instance with backgrounds(n, seed) or cue_cutouts(cue, n, seed)."""
    rng = _rng(seed, _CONCEPTS, _cue_index(cue))
    return paste(_finish(_background(n, rng), rng), _CUTOUTS_BY_CUE[cue](n, rng))


def save_folder(images: np.ndarray, folder: Path) -> None:
    """PNGs 000.png, 001.png, ... (RGBA if the images have 4 channels)."""
    from audit.images import save_png

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    digits = max(3, len(str(len(images) - 1)))
    for i, img in enumerate(images):
        save_png(folder / f"{i:0{digits}d}.png", img)
