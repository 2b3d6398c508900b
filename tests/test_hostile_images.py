"""Hostile corpus: images and image folders (cutouts, bit depths, FIFOs, degenerate negatives)."""

import os
import shutil

import numpy as np
import pytest
from PIL import Image

from audit.errors import UserError
from audit.images import load_folder, load_image
from hostile_helpers import CONCEPTS, DEMO_MODEL, refused_untouched, tiny_config, write_yaml


def _cutouts(tmp_path, alter=None, only_first=False):
    """A copy of the demo's arm cutouts, with `alter(rgba array) -> rgba array` applied."""
    folder = tmp_path / "arm_cutouts"
    shutil.copytree(CONCEPTS / "arm_cutouts", folder)
    for i, path in enumerate(sorted(folder.iterdir())):
        if alter is not None and (i == 0 or not only_first):
            rgba = np.asarray(Image.open(path).convert("RGBA")).copy()
            Image.fromarray(alter(rgba)).save(path)
    return folder


def _transparent(rgba):
    rgba[..., 3] = 0
    return rgba


def _inverted(rgba):
    rgba[..., 3] = 255 - rgba[..., 3]
    return rgba


def _opaque(rgba):
    rgba[..., 3] = 255
    return rgba


def _causal_config(tmp_path, cutouts):
    bank = {"arm": {"examples": str(CONCEPTS / "arm"), "cutouts": str(cutouts), "allowed_in": []}}
    return write_yaml(tmp_path, tiny_config(tmp_path, concepts={"bank": bank, "probes": str(CONCEPTS / "_probes")}))


@pytest.mark.parametrize("alter, only_first, words", [
    (_transparent, False, "fully transparent"),
    (_transparent, True, "fully transparent"),  # one empty cutout among good ones, named
    (_inverted, False, "opaque over"),
])
@pytest.mark.slow
def test_cutouts_that_paste_nothing_or_everything_exit_2(tmp_path, alter, only_first, words):
    """Fully transparent cutouts used to be accepted: nothing was pasted and the causal test
    then cleared the demo's real shortcut."""
    cutouts = _cutouts(tmp_path, alter, only_first)
    first = sorted(cutouts.iterdir())[0].name
    refused_untouched(tmp_path, "run", _causal_config(tmp_path, cutouts), "--no-history",
                      words=("concepts.bank.arm.cutouts", first, words))


def test_plausible_cutouts_load(tmp_path):
    """The demo's cutouts and a faint full-image overlay (the validity benchmark's checkerboard
    at alpha 0.06) are real cutouts; an opaque RGBA image is not."""
    assert load_folder(CONCEPTS / "arm_cutouts", (64, 64), 3, "k", alpha=True).shape[-1] == 4
    faint = tmp_path / "faint"
    faint.mkdir()
    checker = (np.indices((32, 32)).sum(0) % 2 * 255).astype(np.uint8)
    rgba = np.dstack([checker] * 3 + [np.full((32, 32), 15, np.uint8)])
    Image.fromarray(rgba).save(faint / "c.png")
    assert load_folder(faint, (32, 32), 3, "k", alpha=True).shape == (1, 32, 32, 4)
    with pytest.raises(UserError, match="opaque over 100%"):
        load_folder(_cutouts(tmp_path, _opaque), (64, 64), 3, "k", alpha=True)


def _png16(path, values):
    """A 16-bit grayscale PNG (PIL opens it in mode I;16)."""
    Image.fromarray(values.astype(np.uint16)).save(path)
    assert Image.open(path).mode == "I;16"
    return path


def test_16_bit_grayscale_pngs_are_read_not_white(tmp_path):
    """PIL clips 16-bit samples to 255 when converting: every such image used to load as white."""
    ramp = np.linspace(0, 65535, 64 * 64).reshape(64, 64)
    img = load_image(_png16(tmp_path / "ramp.png", ramp), 3, "k")
    assert img.shape == (64, 64, 3)
    assert np.allclose(img[..., 0], ramp / 65535.0, atol=1 / 255)
    assert np.allclose(img[..., 0], img[..., 2])
    gray = load_image(tmp_path / "ramp.png", 1, "k")
    assert gray.shape == (64, 64, 1) and abs(float(gray.mean()) - 0.5) < 0.01


def _negatives(tmp, cfg, make):
    folder = tmp / "negatives"
    folder.mkdir()
    make(folder)
    cfg["concepts"]["negatives"] = str(folder)


def _copies(folder):
    first = sorted((CONCEPTS / "_random").iterdir())[0]
    for i in range(12):
        shutil.copy(first, folder / f"copy{i:02d}.png")


def _almost_copies(folder):
    base = np.asarray(Image.open(sorted((CONCEPTS / "_random").iterdir())[0]).convert("RGB"), dtype=np.int16)
    for i in range(12):
        Image.fromarray(np.clip(base + (i % 2), 0, 255).astype(np.uint8)).save(folder / f"n{i:02d}.png")


def _with(damage):
    def make(folder):
        for p in sorted((CONCEPTS / "_random").iterdir())[:12]:
            shutil.copy(p, folder / p.name)
        damage(folder)
    return make


def _truncated(folder):
    data = (CONCEPTS / "arm" / sorted(p.name for p in (CONCEPTS / "arm").iterdir())[0]).read_bytes()
    (folder / "zz_truncated.png").write_bytes(data[: len(data) // 3])


def _text_as_png(folder):
    (folder / "zz_notes.png").write_text("not an image at all")


def _decompression_bomb(folder):
    Image.new("1", (14000, 14000)).save(folder / "zz_bomb.png")  # 196 megapixels, ~30 KB on disk


def _float_tiff_as_png(folder):
    Image.fromarray(np.zeros((8, 8), np.float32)).save(folder / "zz_float.png", format="TIFF")


NEGATIVE_CASES = [
    ("twelve-copies", _copies, ("concepts.negatives", "all the same", "1 distinct")),
    ("copies-differing-by-one-level", _almost_copies, ("concepts.negatives", "all the same")),
    ("truncated-png", _with(_truncated), ("concepts.negatives", "zz_truncated.png")),
    ("text-named-png", _with(_text_as_png), ("concepts.negatives", "zz_notes.png")),
    ("decompression-bomb", _with(_decompression_bomb), ("concepts.negatives", "zz_bomb.png")),
    ("tiff-named-png", _with(_float_tiff_as_png), ("concepts.negatives", "zz_float.png")),
]


@pytest.mark.slow
@pytest.mark.parametrize("make, words", [c[1:] for c in NEGATIVE_CASES], ids=[c[0] for c in NEGATIVE_CASES])
def test_unusable_negatives_exit_2(tmp_path, make, words):
    """Zero-variance negatives used to give effects of 1e11 or a crash (exit 3)."""
    cfg = tiny_config(tmp_path)
    _negatives(tmp_path, cfg, make)
    refused_untouched(tmp_path, "run", write_yaml(tmp_path, cfg), "--no-history", words=words, timeout=300)


@pytest.mark.parametrize("flag", ["--input", "--guide"])
def test_a_fifo_given_to_audit_dream_is_refused_not_waited_on(tmp_path, flag):
    os.mkfifo(tmp_path / "photo.png")
    argv = ["dream", "--model", DEMO_MODEL, "--layer", "features", "--steps", "1", "--out", tmp_path / "d"]
    argv += ["--input" if flag == "--input" else "--guide", tmp_path / "photo.png"]
    refused_untouched(tmp_path, *argv, words=("photo.png", "not a regular file"), timeout=120)
