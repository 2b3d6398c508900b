"""The report's image files: every class's visualizations, concept examples, the cutouts the
causal test pasted, and probes before/after the paste for the first findings. Written into the
staging folder; what audit.json records about them is returned as plain data."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from audit.evidence.causal import log_probs, paste, pastes
from audit.evidence.concepts import ConceptSet
from audit.images import save_png
from audit.model.load import MAX_FORWARD_BATCH, LoadedModel
from audit.visualize.optimize import Visualizations
from audit.result import sort_findings

CONCEPT_THUMBNAILS = 6


def _softmax(logits: np.ndarray) -> np.ndarray:
    p = np.exp(logits - logits.max(-1, keepdims=True))
    return p / p.sum(-1, keepdims=True)


def _class_entry(out: Path, model: LoadedModel, vis: Visualizations, c: int, kind: str) -> dict:
    """One class's images of one pass (written as PNGs) and what the model makes of them."""
    idx = int(vis.class_indices[c])
    paths = []
    for r in range(vis.images.shape[1]):
        rel = f"images/classes/{idx:04d}_{kind}{r}.png"
        save_png(out / rel, vis.images[c, r])
        paths.append(rel)
    probs = _softmax(vis.logits[c])
    return {"images": paths, "target_logit": float(vis.logits[c, :, idx].mean()),
            "target_probability": float(probs[:, idx].mean()),
            "logit_trace": [float(v) for v in vis.target_logit_trace[c].mean(0)],
            "steps_taken": [int(v) for v in vis.steps_taken[c]]}


def write_images(out: Path, model: LoadedModel, vis: Visualizations | None, bank: list[ConceptSet],
                  negatives: np.ndarray, raw: Visualizations | None,
                  preview: Visualizations | None) -> tuple[list[dict], dict[str, list[str]]]:
    """Every class's images: the full treatment where it was given, else the preview."""
    (out / "images" / "classes").mkdir(parents=True)
    (out / "images" / "concepts").mkdir(parents=True)
    full = {} if vis is None else {int(idx): c for c, idx in enumerate(vis.class_indices)}
    classes = []
    for idx in (preview or vis).class_indices:
        idx = int(idx)
        entry = {"name": model.classes[idx], "index": idx}
        if idx in full:
            entry.update(treatment="full", **_class_entry(out, model, vis, full[idx], "r"))
            if raw is not None:
                r = _class_entry(out, model, raw, full[idx], "raw")
                entry.update(raw_images=r["images"], raw_target_probability=r["target_probability"])
        else:
            p = list(preview.class_indices).index(idx)
            entry.update(treatment="preview", **_class_entry(out, model, preview, p, "preview"))
        classes.append(entry)
    examples = {}
    for concept in [*bank, ConceptSet("_negatives", negatives, ())]:
        examples[concept.name] = []
        for i in range(min(CONCEPT_THUMBNAILS, len(concept.images))):
            rel = f"images/concepts/{concept.name}_{i}.png"
            save_png(out / rel, concept.images[i])
            examples[concept.name].append(rel)
    return classes, examples


def checkerboard_view(cutout: np.ndarray) -> np.ndarray:
    """An RGBA cutout (H, W, ch + 1) over a grey checkerboard: what was pasted and where it is
    transparent, as a reviewer sees it."""
    h, w = cutout.shape[:2]
    checker = 0.45 + 0.1 * ((np.arange(h)[:, None] // 4 + np.arange(w)[None] // 4) % 2)[..., None]
    return paste(checker, cutout[..., :-1], cutout[..., -1:])


def write_cutouts(out: Path, bank: list[ConceptSet], cutouts: list, source: list) -> dict[str, list[str]]:
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


FINDINGS_WITH_PASTES = 10  # findings whose card shows probe images before/after the paste


def write_paste_examples(out: Path, model: LoadedModel, checks: list[dict], causal, cutouts: list, probes: np.ndarray,
                          negatives: np.ndarray, class_indices, concept_names: list[str], seed: int,
                          control: str, batch_size: int = MAX_FORWARD_BATCH, inclass=None) -> None:
    """For the first causal findings: a few probes, the concept paste that moved them to the class,
    and the control paste of the same probe; each with the class's probability. Added to the check.
    A check the in-class test decided shows the class's own probes (`causal_examples_own: true`)."""
    (out / "images" / "causal").mkdir(parents=True, exist_ok=True)
    names = [model.classes[i] for i in class_indices]
    flagged = [ch for ch in checks if ch["level"] in ("fail", "warn") and ch["decided_by"].startswith("causal")]
    for ch in sort_findings(flagged)[:FINDINGS_WITH_PASTES]:
        c, k = names.index(ch["class_name"]), concept_names.index(ch["concept"])
        own = ch["decided_by"] == "causal_inclass" and inclass is not None
        source = probes[inclass.own] if own else probes
        which = (inclass if own else causal).examples[c, k]
        which = which[which >= 0]
        if not len(which):
            continue
        concept_imgs, control_imgs, probe_idx = pastes(cutouts[k], source, negatives, seed, k, control, which)
        ch["causal_examples"] = write_paste_triplets(
            out, model, source[probe_idx], concept_imgs, control_imgs, int(class_indices[c]), "concept",
            f"images/causal/{class_indices[c]:04d}_{ch['concept']}_{{i}}_{{kind}}.png", batch_size)
        ch["causal_examples_own"] = own


def write_paste_triplets(out: Path, model: LoadedModel, before: np.ndarray, pasted: np.ndarray, control: np.ndarray,
                         class_index: int, pasted_kind: str, name: str, batch_size: int) -> list[dict]:
    """Each probe before, with the paste and with its control paste, as PNGs named `name` (with
    {i} and {kind}), beside the class's probability on each: what a finding card shows."""
    p = np.exp(log_probs(model, np.concatenate([before, pasted, control]), batch_size)[:, class_index])
    n = len(before)
    shown = []
    for i in range(n):
        entry = {}
        for j, (kind, img) in enumerate((("probe", before[i]), (pasted_kind, pasted[i]), ("control", control[i]))):
            rel = name.format(i=i, kind=kind)
            save_png(out / rel, img)
            entry[kind], entry[f"p_{kind}"] = rel, float(p[j * n + i])
        shown.append(entry)
    return shown
