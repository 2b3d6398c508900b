"""A discovered pattern's image files (images/discovered/): the probes that use it most with the
pattern highlighted, its cutouts, its visualizations and its insertion pastes, written from the
arrays discovery computed. Every path returned is relative to the report folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from audit.images import PatternImages, save_png
from audit.report.images import checkerboard_view, write_paste_triplets

FOLDER = "images/discovered"
CUTOUTS_SHOWN = 6


def write_discovered_images(out: Path, patterns: Sequence[PatternImages]) -> list[dict]:
    """Each pattern's images; per pattern, in the same order, what its `discovered` entry records
    about them."""
    (out / FOLDER).mkdir(parents=True, exist_ok=True)
    return [write_pattern_images(out, shown) for shown in patterns]


def write_pattern_images(out: Path, shown: PatternImages) -> dict:
    """One pattern's images, in the existing folder images/discovered/."""
    stem = f"{FOLDER}/{shown.class_index:04d}_p{shown.pattern}"
    examples = []
    for i, (img, highlight, weight) in enumerate(zip(shown.examples, shown.highlights, shown.contributions)):
        save_png(out / f"{stem}_example_{i}.png", img)
        save_png(out / f"{stem}_highlight_{i}.png", highlight)
        examples.append({"image": f"{stem}_example_{i}.png", "highlight": f"{stem}_highlight_{i}.png",
                         "contribution": float(weight)})
    cutouts, cutouts_shown = [], []
    for i, cut in enumerate(shown.cutouts):
        save_png(out / f"{stem}_cutout_{i}.png", cut)  # RGBA, what a promoted concept gets
        cutouts.append(f"{stem}_cutout_{i}.png")
        if i < CUTOUTS_SHOWN:
            save_png(out / f"{stem}_cutout_{i}_shown.png", checkerboard_view(cut))
            cutouts_shown.append(f"{stem}_cutout_{i}_shown.png")
    pictures = []
    for r, img in enumerate([] if shown.pictures is None else shown.pictures):
        save_png(out / f"{stem}_vis_{r}.png", img)
        pictures.append(f"{stem}_vis_{r}.png")
    insertion = [] if shown.pastes is None else write_paste_triplets(out, shown.pastes, "pattern",
                                                                     f"{stem}_paste_{{i}}_{{kind}}.png")
    return {"examples": examples, "cutouts": cutouts, "cutouts_shown": cutouts_shown, "visualizations": pictures,
            "insertion_examples": insertion}
