"""Reading and writing images: PNG files, folders of examples, embedded thumbnails; and the
plain values of images shown to a reviewer, which evidence computes and the report writes."""

from __future__ import annotations

import base64
import io
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from audit.errors import UserError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")  # 16-bit grayscale PNGs open as these
CUTOUT_MIN_COVER = 0.005  # a cutout must paste at least this much (mean opacity over the image)
CUTOUT_MAX_COVER = 0.9    # and leave something of the probe: a cutout is the concept alone


def to_uint8(img: np.ndarray) -> np.ndarray:
    if img.ndim == 3 and img.shape[-1] == 1:  # grayscale models: PIL wants (H, W)
        img = img[..., 0]
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def png_bytes(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(to_uint8(img)).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def save_png(path: Path, img: np.ndarray) -> None:
    Path(path).write_bytes(png_bytes(img))


def data_uri(img: np.ndarray, max_side: int = 128, jpeg: bool = False) -> str:
    """A small thumbnail as a data: URI, so the HTML report needs no other file. PNG keeps
    pixels exact; JPEG is 3x smaller on noise-like visualizations (large reports)."""
    pil = Image.fromarray(to_uint8(img))
    if max(pil.size) > max_side:
        pil.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    elif max(pil.size) < 96:  # tiny model inputs: upscale crisply so pixels stay visible
        factor = max(1, 96 // max(pil.size))
        pil = pil.resize((pil.size[0] * factor, pil.size[1] * factor), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    if jpeg:
        pil.convert("RGB").save(buf, format="JPEG", quality=70)
    else:
        pil.save(buf, format="PNG", optimize=True)
    kind = "jpeg" if jpeg else "png"
    return f"data:image/{kind};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _open_regular(path: Path, key: str):
    """Open a regular file for reading; a FIFO, socket or device named like an image would block
    (or never end), so it is refused (checked on the open file: no race with a swap)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise UserError(f"{key}: cannot read image {path}: {exc.strerror}; remove or replace the file") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UserError(f"{key}: {path} is not a regular file (a FIFO, device or folder); remove it")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def _eight_bit(im: Image.Image, path: Path, key: str) -> Image.Image:
    """16-bit grayscale (which PIL would clip to white when converting) as 8-bit; other
    high-precision modes are refused rather than misread."""
    if im.mode in SIXTEEN_BIT_MODES:
        gray = np.asarray(im, dtype=np.float64) / 65535.0
        return Image.fromarray((np.clip(gray, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8), "L")
    if im.mode not in ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBa", "La", "CMYK", "YCbCr", "LAB", "HSV"):
        raise UserError(f"{key}: {path} has pixel mode {im.mode!r}, which is not read; save it as 8-bit RGB(A)")
    return im


def load_image(path: Path, channels: int, key: str, size: tuple[int, int] | None = None,
               alpha: bool = False) -> np.ndarray:
    """One image as float32 (H, W, channels [+ 1 alpha]) in [0, 1]; `size` is (height, width)."""
    try:
        with _open_regular(Path(path), key) as fh, Image.open(fh) as im:
            if alpha and "A" not in im.getbands() and "transparency" not in im.info:
                raise UserError(f"{key}: {path} has no transparency; cutouts are RGBA PNGs of the concept "
                                "alone (transparent elsewhere)")
            im = _eight_bit(im, Path(path), key)
            im = im.convert(("LA" if channels == 1 else "RGBA") if alpha else ("L" if channels == 1 else "RGB"))
            if size is not None and im.size != (size[1], size[0]):
                im = im.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            arr = np.asarray(im, dtype=np.float32) / 255.0
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise UserError(f"{key}: cannot read image {path}: {exc}; remove or replace the file") from None
    return arr[..., None] if channels == 1 and not alpha else arr


def list_images(folder: Path, key: str = "images") -> list[Path]:
    """The image files of a folder, by name; anything named like an image that is not a
    regular file (a FIFO, a device, a folder) is refused: reading it could block forever."""
    paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    for p in paths:
        try:
            regular = stat.S_ISREG(p.stat().st_mode)
        except OSError as exc:  # e.g. a dangling symbolic link
            raise UserError(f"{key}: cannot read {p} ({exc.strerror}); remove or replace it") from None
        if not regular:
            raise UserError(f"{key}: {p} is not a regular file (a FIFO, device or folder); remove it")
    return paths


def check_cutout(cutout: np.ndarray, path: Path, key: str) -> None:
    """A cutout pastes the concept and leaves the rest of the probe: refuse an alpha that pastes
    (almost) nothing, or that covers (almost) everything (an opaque image, an inverted mask)."""
    cover = float(cutout[..., -1].mean())
    if cover < CUTOUT_MIN_COVER:
        raise UserError(f"{key}: {path} is (almost) fully transparent (mean opacity {cover:.2%}), so nothing would "
                        "be pasted; give RGBA cutouts opaque on the concept, transparent elsewhere")
    if cover > CUTOUT_MAX_COVER:
        raise UserError(f"{key}: {path} is opaque over {cover:.0%} of the image (no cutout, or an inverted alpha); "
                        "give RGBA cutouts opaque on the concept, transparent elsewhere")


def load_folder(folder: Path, size: tuple[int, int], channels: int, key: str,
                limit: int | None = None, alpha: bool = False, sample_seed: int | None = None) -> np.ndarray:
    """Every image in `folder`, resized to the model input, as float32 in [0, 1]
    (with `alpha`: RGBA cutouts, the last channel their opacity). Over `limit`: the first
    files by name, or with `sample_seed` a seeded random sample (files named by class must
    not leave whole classes out)."""
    paths = list_images(folder, key)
    if not paths:
        raise UserError(f"{key}: folder {folder} has no images ({', '.join(sorted(IMAGE_SUFFIXES))}); "
                        "add example images or fix the path")
    if limit is not None and sample_seed is not None and len(paths) > limit:
        rng = np.random.default_rng([sample_seed, 13])
        paths = [paths[i] for i in sorted(rng.choice(len(paths), limit, replace=False))]
    elif limit is not None:
        paths = paths[:limit]
    images = np.stack([load_image(p, channels, key, size, alpha) for p in paths])
    if alpha:
        for path, cutout in zip(paths, images):
            check_cutout(cutout, path, key)
    return images


@dataclass(frozen=True)
class PasteExamples:
    """Probes before a paste, with the concept (or pattern) pasted in and with its control paste,
    and the class's probability on each: what a finding card shows."""

    before: np.ndarray     # (n, H, W, ch)
    pasted: np.ndarray     # (n, H, W, ch)
    control: np.ndarray    # (n, H, W, ch)
    p_before: np.ndarray   # (n,) the class's probability on each
    p_pasted: np.ndarray
    p_control: np.ndarray


@dataclass(frozen=True)
class PatternImages:
    """What a discovered pattern's card shows: the probes that use it most with the pattern
    highlighted, its cutouts, its visualizations and its insertion pastes."""

    class_index: int
    pattern: int
    examples: np.ndarray          # (e, H, W, ch) the probes of the class that use it most
    highlights: np.ndarray        # (e, H, W, ch) the same, dimmed outside the pattern's region
    contributions: np.ndarray     # (e,) its contribution to the class logit in each
    cutouts: np.ndarray           # (m, H, W, ch + 1) RGBA
    pictures: np.ndarray | None   # (restarts, H, W, ch) its visualizations (None: not made)
    pastes: PasteExamples | None  # other classes' probes with its region pasted in (None: no insertion test)
