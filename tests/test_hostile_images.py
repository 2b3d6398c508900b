"""Hostile corpus: images and image folders (cutouts, bit depths, FIFOs, degenerate negatives)."""

import shutil

import numpy as np
import pytest
from PIL import Image

from audit.errors import UserError
from audit.images import load_folder
from hostile_helpers import CONCEPTS, refused_untouched, tiny_config, write_yaml


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
