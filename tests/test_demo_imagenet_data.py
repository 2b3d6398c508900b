"""The real-network demo's data: real shipped photos, a CJK watermark concept and its Latin-text
control, drawn deterministically, cutouts whose alpha holds only the text."""

import numpy as np
import pytest
from PIL import Image

from audit.demo import imagenet

COUNTS = {"examples": 3, "cutouts": 3, "probes": 4, "negatives": 4}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return imagenet.build(tmp_path_factory.mktemp("dim") / "demo", seed=0, counts=COUNTS)


def _arrays(folder):
    return [np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))]


def test_folders_hold_the_requested_images(built):
    for name, key in (("probes", "probes"), ("negatives", "negatives"), ("cjk_watermark", "examples"),
                      ("cjk_watermark_cutouts", "cutouts"), ("latin_text", "examples"),
                      ("latin_text_cutouts", "cutouts")):
        images = _arrays(built / name)
        assert len(images) == COUNTS[key], name
        assert all(im.shape[:2] == (imagenet.SIZE, imagenet.SIZE) for im in images)


def test_cutouts_are_text_alone_with_partial_opacity(built):
    for name in ("cjk_watermark_cutouts", "latin_text_cutouts"):
        for rgba in _arrays(built / name):
            assert rgba.shape[-1] == 4
            alpha = rgba[..., 3] / 255.0
            covered = (alpha > 0).mean()
            assert 0.005 < covered < 0.25, (name, covered)   # strokes, not an empty or a full patch
            assert alpha.max() < 0.85                           # a watermark: see-through


def test_probes_are_real_photos_disjoint_from_negatives(built):
    probes, negatives = _arrays(built / "probes"), _arrays(built / "negatives")
    assert all(p.std() > 10 for p in probes)   # real content, not flat fills
    assert not any(np.array_equal(p, n) for p in probes for n in negatives)
    assert set(imagenet.PROBE_PHOTOS) & set(imagenet.photo_pool())  # the shipped photos were found


def test_same_seed_same_files(built, tmp_path):
    again = imagenet.build(tmp_path / "again", seed=0, counts=COUNTS)
    for a, b in zip(sorted(built.rglob("*.png")), sorted(again.rglob("*.png"))):
        assert a.read_bytes() == b.read_bytes()


def test_refuses_to_replace_a_folder_it_did_not_write(tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(SystemExit):
        imagenet.build(foreign, counts=COUNTS)
    assert (foreign / "notes.txt").read_text() == "keep me"
