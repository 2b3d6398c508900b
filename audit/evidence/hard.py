"""Hard probes: the user's probes made less confident in ways that keep them natural.

Curated probe photos are far more confident than what a model meets in deployment, so a cue that
moves real decisions may flip none of them: ImageNet-W measured the watermark's +30 points for
"carton" on validation images. Each probe gets one hard copy, one way in turn:

* a downscale to about 30% of its side and back (a small, blurry photo);
* a flat occluder of the image's own mean colour over about a third of its area;
* a 50/50 blend with another probe (two objects, neither clearly the subject);
* a zoom on a random half of the image (the object cut).

The copies are drawn from the seed alone and built per batch (`hard_images(probes, which, seed)`),
so they never all exist at once and a sharded run builds the same ones. Benchmarks build their
ground truth with the same function (benchmarks/decision, benchmarks/validity).
"""

from __future__ import annotations

import numpy as np

KINDS = ("downscale", "occlude", "blend", "zoom")
DOWNSCALE = 0.3   # side of the small copy, as a share of the image's
OCCLUDED = 0.58   # occluder side as a share of the image's: about a third of the area
ZOOMED = 0.5      # zoomed window side as a share of the image's


def _draws(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per probe: the partner of its blend and two positions in [0, 1), the same for any batch."""
    rng = np.random.default_rng([seed, 23])
    partner = (np.arange(n) + rng.integers(1, max(n, 2), n)) % max(n, 1)  # never the probe itself when n > 1
    return partner, rng.random(n), rng.random(n)


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import tensorflow as tf

    return tf.image.resize(image[None], size, method="bilinear", antialias=True)[0].numpy()


def _window(side: int, full: int, u: float) -> slice:
    start = int(u * (full - side + 1))
    return slice(start, start + side)


def hard_images(probes: np.ndarray, which: np.ndarray, seed: int) -> np.ndarray:
    """The hard copies of probes[which] (each probe's copy is the same whichever batch it is in)."""
    n, h, w = probes.shape[:3]
    partner, u, v = _draws(n, seed)
    out = np.empty((len(which),) + probes.shape[1:], probes.dtype)
    for j, i in enumerate(np.asarray(which, int)):
        img, kind = probes[i], KINDS[i % len(KINDS)]
        if kind == "downscale":
            small = _resize(img, (max(4, round(h * DOWNSCALE)), max(4, round(w * DOWNSCALE))))
            out[j] = _resize(small, (h, w))
        elif kind == "occlude":
            out[j] = img
            sh, sw = max(1, round(h * OCCLUDED)), max(1, round(w * OCCLUDED))
            out[j][_window(sh, h, u[i]), _window(sw, w, v[i])] = img.mean(axis=(0, 1))
        elif kind == "blend":
            out[j] = (img + probes[partner[i]]) / 2
        else:
            sh, sw = max(2, round(h * ZOOMED)), max(2, round(w * ZOOMED))
            out[j] = _resize(img[_window(sh, h, u[i]), _window(sw, w, v[i])], (h, w))
    return out
