"""Discovery -> report files (images/discovered/) and the `discovered` entries of audit.json,
worst first. Every path in an entry is relative to the report folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from audit.evidence.causal import pastes
from audit.evidence.discover import regions
from audit.evidence.discover.run import fill_source
from audit.evidence.discover.stage import DiscoveryRun
from audit.images import save_png
from audit.model.load import LoadedModel, forward_batch_size
from audit.report.images import checkerboard_view, write_paste_triplets
from audit.result import EXIT_CODES

FOLDER = "images/discovered"
LEVEL_ORDER = {"fail": 0, "warn": 1, "review": 2}
CUTOUTS_SHOWN = 6


def sort_discovered(entries: list[dict]) -> list[dict]:
    """Worst first: level, then how far the region alone moves other images into the class."""
    def key(e):
        shift = e["causal_shift"] if e["causal_shift"] is not None else -2.0
        return (LEVEL_ORDER[e["level"]], -shift, e["class_name"], e["pattern"])
    return sorted(entries, key=key)


def _summary(e: dict) -> str:
    if e["causal_p_adjusted"] is None:
        return f"{e['share']:.0%} of the class's evidence on its probes; no insertion test (no region found)"
    kept = ("no removal test (the model puts none of the probes it was cut from in the class)"
            if e["kept_without"] is None else f"the class keeps {e['kept_without']:.0%} of its own images without it")
    return (f"{e['share']:.0%} of the class's evidence on its probes; its region pasted onto other classes' probes "
            f"turns {e['causal_flip']:.0%} of them into the class (control {e['causal_flip_control']:.0%}), shift "
            f"{e['causal_shift']:.2f}, adj. p {e['causal_p_adjusted']:.2g}; {kept}")


def _num(v) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)


def write_discovered(out: Path, model: LoadedModel, run: DiscoveryRun, budget_mb: int) -> list[dict]:
    """Write each pattern's images and return the `discovered` entries, worst first."""
    (out / FOLDER).mkdir(parents=True, exist_ok=True)
    batch = forward_batch_size(model, budget_mb)
    entries = []
    for p, d in enumerate(run.patterns):
        stem = f"{FOLDER}/{d.class_index:04d}_p{d.pattern}"
        examples = []
        for i, (img, alpha, weight) in enumerate(zip(d.example_images, d.example_alphas, d.example_weights)):
            save_png(out / f"{stem}_example_{i}.png", img)
            save_png(out / f"{stem}_highlight_{i}.png", regions.highlight(img, alpha))
            examples.append({"image": f"{stem}_example_{i}.png", "highlight": f"{stem}_highlight_{i}.png",
                             "contribution": float(weight)})
        cutouts, shown = [], []
        for i, cut in enumerate(d.cutouts):
            save_png(out / f"{stem}_cutout_{i}.png", cut)  # RGBA, what a promoted concept gets
            cutouts.append(f"{stem}_cutout_{i}.png")
            if i < CUTOUTS_SHOWN:
                save_png(out / f"{stem}_cutout_{i}_shown.png", checkerboard_view(cut))
                shown.append(f"{stem}_cutout_{i}_shown.png")
        pictures = []
        if run.pictures is not None:
            for r, img in enumerate(run.pictures[p]):
                save_png(out / f"{stem}_vis_{r}.png", img)
                pictures.append(f"{stem}_vis_{r}.png")
        c = d.causal or {}
        entry = {
            "class_name": model.classes[d.class_index], "class_index": d.class_index, "pattern": d.pattern,
            "level": d.level, "share": d.share, "kept_without": _num(d.kept),
            "causal_effect": _num(c.get("effect")), "causal_flip": _num(c.get("flip")),
            "causal_flip_control": _num(c.get("flip_control")), "causal_shift": _num(c.get("shift")),
            "causal_logp_rise": _num(c.get("logp_rise")), "causal_p": _num(c.get("p")),
            "causal_p_adjusted": _num(c.get("p_adjusted")), "pastes": c.get("pastes", 0),
            "examples": examples, "cutouts": cutouts, "cutouts_shown": shown, "visualizations": pictures,
            "insertion_examples": _paste_examples(out, model, run, d, stem, batch),
        }
        entry["summary"] = _summary(entry)
        entries.append(entry)
    return sort_discovered(entries)


def _paste_examples(out: Path, model: LoadedModel, run: DiscoveryRun, d, stem: str, batch: int) -> list[dict]:
    """The pastes that moved other classes' probes most toward the class, beside their control."""
    if not d.shown_pastes:
        return []
    others = run.probes.labels != d.class_index
    probes = run.probes.images[others]
    source = fill_source(run.probes.images, run.probes.labels, run.negatives, d.class_index)
    which = np.array(d.shown_pastes)
    with_pattern, with_control, probe_idx = pastes(d.cutouts, probes, source, run.seed + d.pattern, 0, "mask", which)
    return write_paste_triplets(out, model, probes[probe_idx], with_pattern, with_control, d.class_index, "pattern",
                                f"{stem}_paste_{{i}}_{{kind}}.png", batch)


def discovery_record(run: DiscoveryRun, cfg) -> dict:
    """audit.json's `discovery`: what was run on what (the entries are in `discovered`)."""
    return {"probes": {"path": str(run.probes_path), "count": len(run.probes.images)},
            "control_fill": "negatives" if run.negatives is not None else "other classes' probes",
            "patterns_per_class": cfg.patterns, "skipped_classes": run.skipped,
            "levels": {"warn": None if cfg.warn is None else vars(cfg.warn),
                       "fail": None if cfg.fail is None else vars(cfg.fail),
                       "min_kept": cfg.min_kept}}


def apply_discovered(result: dict) -> None:
    """A discovered pattern reaches `fail` only when `discover.fail` is configured; then it fails
    the gate like a finding. `warn` and `review` patterns never change the verdict."""
    failing = [e for e in result.get("discovered", []) if e["level"] == "fail"]
    if failing:
        result["verdict_reasons"].append(f"{len(failing)} discovered pattern(s) at the fail level")
        result["verdict"], result["exit_code"] = "fail", EXIT_CODES["fail"]
