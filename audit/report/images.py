"""The report's image files: every class's visualizations, concept examples, the cutouts the
causal test pasted, and probes before/after the paste for the first findings. Written into the
staging folder from plain arrays the earlier stages computed; what audit.json records about them
(their paths) is returned as plain data."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from audit.images import PasteExamples, save_png
from audit.inputs.bank import ConceptSet

CONCEPT_THUMBNAILS = 6
CAUSAL_FOLDER = "images/causal"


def make_image_folders(out: Path) -> None:
    (out / "images" / "classes").mkdir(parents=True)
    (out / "images" / "concepts").mkdir(parents=True)


def write_class_images(out: Path, images: np.ndarray, class_index: int, kind: str) -> list[str]:
    """One class's images of one pass (R, H, W, ch) as PNGs; their paths in the report folder."""
    paths = []
    for r in range(len(images)):
        rel = f"images/classes/{class_index:04d}_{kind}{r}.png"
        save_png(out / rel, images[r])
        paths.append(rel)
    return paths


def write_concept_examples(out: Path, concepts: Sequence[ConceptSet]) -> dict[str, list[str]]:
    """The first few example images of each concept: {concept name: paths}."""
    examples = {}
    for concept in concepts:
        examples[concept.name] = []
        for i in range(min(CONCEPT_THUMBNAILS, len(concept.images))):
            rel = f"images/concepts/{concept.name}_{i}.png"
            save_png(out / rel, concept.images[i])
            examples[concept.name].append(rel)
    return examples


def checkerboard_view(cutout: np.ndarray) -> np.ndarray:
    """An RGBA cutout (H, W, ch + 1) over a grey checkerboard: what was pasted and where it is
    transparent, as a reviewer sees it."""
    h, w = cutout.shape[:2]
    checker = 0.45 + 0.1 * ((np.arange(h)[:, None] // 4 + np.arange(w)[None] // 4) % 2)[..., None]
    alpha = cutout[..., -1:]
    return checker * (1.0 - alpha) + cutout[..., :-1] * alpha  # the causal test's alpha compositing


def write_cutouts(out: Path, bank: Sequence[ConceptSet], cutouts: Sequence, source: Sequence) -> dict[str, list[str]]:
    """A few cutouts per concept as the causal test pastes them, over a grey checkerboard."""
    written = {}
    for concept, cut, src in zip(bank, cutouts, source):
        if cut is None:
            continue
        written[concept.name] = []
        for i in range(min(CONCEPT_THUMBNAILS, len(cut))):
            rel = f"images/concepts/{concept.name}_{src}_cutout_{i}.png"
            save_png(out / rel, checkerboard_view(cut[i]))
            written[concept.name].append(rel)
    return written


def write_causal_examples(out: Path, shown: Sequence[tuple[int, str, PasteExamples]]) -> list[list[dict]]:
    """images/causal/: per finding shown (class index, concept, its pastes), the probes before and
    after the concept paste and its control paste, as the finding's card lists them."""
    (out / CAUSAL_FOLDER).mkdir(parents=True, exist_ok=True)
    return [write_paste_triplets(out, pastes, "concept",
                                 f"{CAUSAL_FOLDER}/{class_index:04d}_{concept}_{{i}}_{{kind}}.png")
            for class_index, concept, pastes in shown]


def write_paste_triplets(out: Path, pastes: PasteExamples, pasted_kind: str, name: str) -> list[dict]:
    """Each probe before, with the paste and with its control paste, as PNGs named `name` (with
    {i} and {kind}), beside the class's probability on each: what a finding card shows."""
    shown = []
    for i in range(len(pastes.before)):
        entry = {}
        for kind, img, p in (("probe", pastes.before[i], pastes.p_before[i]),
                             (pasted_kind, pastes.pasted[i], pastes.p_pasted[i]),
                             ("control", pastes.control[i], pastes.p_control[i])):
            rel = name.format(i=i, kind=kind)
            save_png(out / rel, img)
            entry[kind], entry[f"p_{kind}"] = rel, float(p)
        shown.append(entry)
    return shown
