"""Automatic cutouts: find the concept inside its own example images and cut it out as a soft
RGBA mask, for concepts that have `examples` but no hand-made `cutouts`.

The concept direction (mean of the examples minus mean of the negatives, in the model's own
standardized activations at the concept layer, as in concepts.py) is projected onto every
position of an example's feature map: positions that look like the concept score high. The
map is compared with the same map on the negatives (a position scoring no higher than the
negatives' 95th percentile is background), scaled to [0, 1], upsampled to the input size and
smoothed. A feature-map cell is several pixels wide, so that coarse map alone misses thin cues
(a 2-px frame) and covers little of a cue on a deep network (14-59% of the cue's pixels on the
validity benchmark's residual network). So it is sharpened (`sharpen`): widened by an eighth of
the image and multiplied with the pixel gradient of the concept score (geometric mean); the
coarse map says where, the gradient which pixels there. That is the alpha; the cutout is the
example's own pixels under it. Discovery's pattern regions are made the same way.

The causal test pastes it next to a control paste of the same alpha filled with a negative
image. Because examples and negatives come from the same kind of scenes, the two pastes
differ by what the examples have and the negatives do not: the concept. So a mask need not
trace the concept exactly; it must contain it, and not much else.
"""

from __future__ import annotations

import numpy as np

from audit.model.load import LoadedModel

BACKGROUND_QUANTILE = 95   # a position scoring like the negatives' top 5% is not yet the concept
MAX_COVER = 0.5            # a cutout covers at most this share of the image (its strongest part)
MIN_COVER = 0.005          # below this an example shows no concept the model sees: it is skipped
BATCH = 32
WIDEN = 1 / 8              # the coarse map is widened by this share of the image side before sharpening
GRADIENT_SIGMA = 1 / 32    # the gradient is smoothed over this share of the image side (1 px at 32 px)
GRADIENT_QUANTILE = 99     # a pixel's gradient at this quantile of its image's counts as full strength


def _feature_maps(model: LoadedModel, images: np.ndarray, batch: int = BATCH) -> np.ndarray:
    """Concept-layer maps, `batch` images per compiled forward call (an eager call would keep every
    layer's output: on EfficientNet-Lite0, 32 images held 2 GB more than the budget allowed)."""
    import tensorflow as tf

    out = []
    for i in range(0, len(images), batch):
        out.append(model.predict(tf.constant(images[i:i + batch], tf.float32))[0].numpy())
    return np.concatenate(out).astype(np.float64)


def upsample(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(n, h, w) -> (n, H, W), bilinear, aligned corners of the receptive grid."""
    import tensorflow as tf

    up = tf.image.resize(maps[..., None].astype(np.float32), size, method="bilinear").numpy()[..., 0]
    return np.clip(up, 0.0, 1.0)


def smooth(alpha: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return np.stack([gaussian_filter(a, sigma) for a in alpha]) if sigma > 0 else alpha


def _standardizer(model: LoadedModel, examples: np.ndarray, negatives: np.ndarray, batch: int = BATCH):
    ex, neg = _feature_maps(model, examples, batch), _feature_maps(model, negatives, batch)
    if ex.ndim != 4:
        raise ValueError("the concept layer has no spatial map")
    flat_neg = neg.reshape(-1, neg.shape[-1])
    mu, sd = flat_neg.mean(0), flat_neg.std(0) + 1e-6
    z_ex, z_neg = (ex - mu) / sd, (neg - mu) / sd
    direction = z_ex.mean((0, 1, 2)) - z_neg.mean((0, 1, 2))
    direction /= max(np.linalg.norm(direction), 1e-12)
    return z_ex, z_neg, mu, sd, direction


def concept_maps(model: LoadedModel, examples: np.ndarray, negatives: np.ndarray, batch: int = BATCH
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Per-position concept scores of the examples (n, h, w) and of the negatives (m, h, w)."""
    z_ex, z_neg, _, _, direction = _standardizer(model, examples, negatives, batch)
    return z_ex @ direction, z_neg @ direction


def pixel_gradients(score, images: np.ndarray, batch: int = BATCH) -> np.ndarray:
    """(n, H, W): |d score / d pixel|, summed over colour channels, of each image; `score` maps a
    batch of pixels (tf) to one score per image."""
    import tensorflow as tf

    out = []
    for i in range(0, len(images), batch):
        x = tf.constant(images[i:i + batch], tf.float32)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(x)
            total = tf.reduce_sum(score(x))
        out.append(tf.reduce_sum(tf.abs(tape.gradient(total, x)), -1).numpy())
    return np.concatenate(out).astype(np.float64)


def unit_max(maps: np.ndarray) -> np.ndarray:
    """(n, H, W) maps each scaled so that its largest value is 1."""
    return maps / np.maximum(maps.reshape(len(maps), -1).max(1), 1e-12)[:, None, None]


def gradient_maps(model: LoadedModel, examples: np.ndarray, negatives: np.ndarray) -> np.ndarray:
    """|d concept score / d pixel| (summed over colour channels) of each example: (n, H, W)."""
    import tensorflow as tf

    _, _, mu, sd, direction = _standardizer(model, examples, negatives)
    mu, sd, direction = (tf.constant(v, tf.float32) for v in (mu, sd, direction))
    return pixel_gradients(
        lambda x: tf.reduce_sum(tf.reduce_mean((model.forward(x)[0] - mu) / sd, axis=(1, 2)) * direction, -1),
        examples)


def auto_cutouts(model: LoadedModel, examples: np.ndarray, negatives: np.ndarray, method: str = "sharpened",
                 batch: int = BATCH) -> np.ndarray:
    """(n, H, W, ch + 1) RGBA cutouts of the concept, from its examples (n, H, W, ch) in [0, 1].
    Examples where the model sees nothing of the concept are left out; raises ValueError when
    the concept layer has no spatial map or no example shows the concept."""
    alpha = auto_alphas(model, examples, negatives, method, batch)
    keep = alpha.mean((1, 2)) >= MIN_COVER
    if not keep.any():
        raise ValueError("no example image shows the concept at the concept layer")
    return np.concatenate([examples[keep], alpha[keep, ..., None]], -1).astype(np.float32)


def auto_alphas(model: LoadedModel, examples: np.ndarray, negatives: np.ndarray, method: str = "sharpened",
                batch: int = BATCH) -> np.ndarray:
    """(n, H, W) soft alpha of the concept in each example (see the module docstring). method
    "feature_map": the coarse map alone (kept to measure what sharpening adds)."""
    H, W = examples.shape[1:3]
    ex_map, neg_map = concept_maps(model, examples, negatives, batch)
    floor = np.percentile(neg_map, BACKGROUND_QUANTILE)
    top = ex_map.reshape(len(ex_map), -1).max(1)
    soft = np.clip((ex_map - floor) / np.maximum(top - floor, 1e-12)[:, None, None], 0.0, 1.0)
    # one feature-map cell spans H / h input pixels: smooth at a third of that
    alpha = unit_max(smooth(upsample(soft, (H, W)), sigma=H / ex_map.shape[1] / 3))
    if method == "sharpened":
        alpha = sharpen(alpha, gradient_maps(model, examples, negatives))
    return np.stack([cap_cover(a, MAX_COVER) for a in alpha])  # the strongest part of each map is fully opaque


def sharpen(coarse: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """(n, H, W) coarse alpha (upsampled from a feature map, peak 1) and |d score / d pixel| of the
    same images -> the coarse alpha (at most MAX_COVER of the image), widened by WIDEN of the
    image, times the gradient scaled to its GRADIENT_QUANTILE (geometric mean), peak 1."""
    H = coarse.shape[1]
    coarse = np.stack([cap_cover(a, MAX_COVER) for a in coarse])
    wide = np.clip(1.5 * unit_max(smooth(coarse, sigma=H * WIDEN)), 0.0, 1.0)
    g = smooth(gradients, sigma=max(H * GRADIENT_SIGMA, 0.5))
    full = np.percentile(g.reshape(len(g), -1), GRADIENT_QUANTILE, axis=1)
    return unit_max(np.sqrt(wide * np.clip(g / np.maximum(full, 1e-12)[:, None, None], 0.0, 1.0)))


def cap_cover(alpha: np.ndarray, cover: float) -> np.ndarray:
    """Keep the strongest part of an alpha map so that its mean is at most `cover`."""
    if alpha.mean() <= cover:
        return alpha
    cut = np.quantile(alpha, 1.0 - cover)
    return np.clip((alpha - cut) / max(alpha.max() - cut, 1e-12), 0.0, 1.0)
