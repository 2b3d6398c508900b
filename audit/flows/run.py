"""`audit run`: Config -> LoadedModel -> Visualizations -> ConceptScores (+ CausalScores)
-> checks + verdict -> audit.json -> every other output. One way, plain data, each stage timed."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from audit.version import __version__
from audit.flows.common import Timer, now, provenance
from audit.gate.baseline import baseline_section
from audit.evidence.causal import causal_scores, log_probs
from audit.evidence.concepts import ConceptSet, score_concepts
from audit.config.load import Config
from audit.evidence.discover.stage import discovery_for_audit
from audit.report.discovered import apply_discovered, discovery_record, write_discovered
from audit.flows.dream import layer_gallery
from audit.errors import UserError
from audit.gate.findings import gate_checks
from audit.inputs.folders import check_folders
from audit.images import load_folder
from audit.execution.shards import preflight, visualize
from audit.model.input_range import check_probe_predictions
from audit.evidence.inclass import inclass_scores
from audit.evidence.localize import auto_cutouts
from audit.model.load import LoadedModel, file_sha256, forward_batch_size, load_model
from audit.visualize.optimize import Visualizations, class_visualizations
from audit.report.folder import check_replaceable, staged_folder
from audit.inputs.probes import load_probes, probe_accuracy
from audit.report.images import write_cutouts, write_images, write_paste_examples
from audit.report import render_all
from audit.result import EXIT_CODES, MEANINGS, SCHEMA_VERSION, dumps, sort_findings, summarize
from audit.visualize import budget
from audit.visualize.recipe import from_config, raw as raw_recipe

def execution_record(cfg: Config) -> dict:
    """Where the work ran: provenance, not a result (a Ray run and a local run agree on results)."""
    e = cfg.execution
    return {"backend": e.backend, **({"address": e.address or "local instance", "workers": e.workers,
                                      "retries": e.retries} if e.backend == "ray" else {})}


def _visualize_raw(model: LoadedModel, v, names: list[str], count: int, timer: Timer,
                   progress: bool) -> Visualizations | None:
    """The seed's unregularized mode, for the report only (not evidence)."""
    if not count:
        return None
    with timer.stage("visualize raw"):
        return class_visualizations(model, dataclasses.replace(v, restarts=count, classes=tuple(names)),
                                    progress=progress, recipe=raw_recipe(model.input_shape))


def evidence_statement(checks: list[dict], cfg: Config) -> dict:
    """What the verdict rests on, said plainly in every output: a causal test (pastes on probes)
    or observational evidence only, which cannot tell "looks like" from "relies on"."""
    gated = [c for c in checks if c["level"] != "allowed"]
    causal = sum(c["decided_by"].startswith("causal") for c in gated)
    observational = len(gated) - causal
    cap = ("they can fail the gate (gate.observational_can_fail: true)" if cfg.gate.observational_can_fail else
           "they warn at most (set gate.observational_can_fail: true to let them fail)")
    if observational == 0:
        mode, text = "causal", "Every check was decided by the causal test (concept pastes on probe images)."
    elif causal == 0:
        why = ("no probes were given (concepts.probes)" if cfg.concepts.probes is None else
               "no concept has cutouts")
        mode, text = "observational", (
            f"This verdict rests on observational evidence only: {why}, so no check has a causal test. "
            f"Observational evidence (what concept images and class visualizations look like to the model) "
            f"cannot tell 'looks like' from 'relies on'; {cap}.")
    else:
        mode, text = "partial", (
            f"{observational} of {len(gated)} checks rest on observational evidence only (their concept has no "
            f"causal test); {cap}.")
    return {"mode": mode, "causal_checks": causal, "observational_checks": observational, "statement": text}


def check_variety(negatives: np.ndarray, folder: Path) -> None:
    """Negatives are the null every effect is measured against: copies of one image (or images
    that barely differ) give it no spread, and effects then explode to meaningless values."""
    distinct = len(np.unique((negatives * 255.0 + 0.5).astype(np.uint8).reshape(len(negatives), -1), axis=0))
    spread = float(negatives.std(axis=0).mean())
    if distinct < 10 or spread < 0.01:
        raise UserError(f"concepts.negatives: the images in {folder} are (almost) all the same ({distinct} distinct, "
                        f"pixel spread {spread:.4f}); give at least 10 varied, unrelated images")


def _cutout_entry(cc, cut: np.ndarray | None, source: str | None, images: list[str], note: str | None) -> dict | None:
    if source is None:
        return None if note is None else {"source": None, "reason": note}
    entry = {"source": source, "count": len(cut), "images": images,
             "mean_opacity": float(cut[..., -1].mean())}
    if source == "hand":
        entry.update(path=str(cc.cutouts), sha256=file_sha256(cc.cutouts))
    return entry


def apply_baseline(result: dict, path: Path | None, cfg: Config) -> None:
    """Add the baseline comparison; a new finding, a regression or (by default) a requested
    baseline that cannot be compared fails the gate."""
    section = baseline_section(result, path, cfg.gate.baseline_tolerance, cfg.gate.baseline_missing)
    result["baseline"] = section
    if section["state"] == "compared" and section["fails_gate"]:
        result["verdict_reasons"].append(f"baseline: {section['reason']}")
    elif section["state"] in ("missing", "incompatible"):
        result["verdict_reasons"].append(f"baseline {section['state']}: {section['reason']}")
    if section["fails_gate"]:
        result["verdict"], result["exit_code"] = "fail", EXIT_CODES["fail"]
    elif section["state"] in ("missing", "incompatible") and result["verdict"] == "pass":
        result["verdict"], result["exit_code"] = "warn", EXIT_CODES["warn"]


def run_audit(cfg: Config, out: Path | None = None, progress: bool = True, log=print,
              baseline: Path | None = None) -> tuple[dict, int, Path]:
    """Run the whole audit and write the report folder; returns (result, exit code, folder)."""
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    out = Path(out) if out is not None else cfg.report.out
    check_replaceable(out)  # before the work, not after it
    preflight(cfg.execution)
    try:
        return _run(cfg, out, progress, log, baseline)
    except UserError as exc:
        if str(exc).startswith(str(cfg.source)):
            raise
        raise UserError(f"{cfg.source}: {exc}") from None


def _run(cfg: Config, out: Path, progress: bool, log, baseline: Path | None) -> tuple[dict, int, Path]:
    started = now()
    timer = Timer(log)
    log(f"audit {__version__}: {cfg.source.name}")
    with timer.stage("load model"):
        model = load_model(cfg.model, cfg.concepts.layer)
    with timer.stage("load concepts"):
        check_folders(cfg)  # what `audit validate` checks, before any image is decoded
        size, ch = model.input_shape[:2], model.input_shape[2]
        negatives = load_folder(cfg.concepts.negatives, size, ch, "concepts.negatives", cfg.concepts.max_examples)
        if len(negatives) < 10:
            raise UserError(f"concepts.negatives: only {len(negatives)} images in {cfg.concepts.negatives}; "
                            "give at least 10 (50+ recommended) unrelated images")
        check_variety(negatives, cfg.concepts.negatives)
        bank = [ConceptSet(c.name, load_folder(c.examples, size, ch, f"concepts.bank.{c.name}.examples",
                                               cfg.concepts.max_examples), c.allowed_in)
                for c in cfg.concepts.bank]
        for c in bank:
            if len(c.images) < 4:
                raise UserError(f"concepts.bank.{c.name}.examples: only {len(c.images)} images; give at least 4 "
                                "(20+ recommended)")
        cutouts = [None if c.cutouts is None else
                   load_folder(c.cutouts, size, ch, f"concepts.bank.{c.name}.cutouts", cfg.concepts.max_examples,
                               alpha=True) for c in cfg.concepts.bank]
        probes = None if cfg.concepts.probes is None else load_probes(
            cfg.concepts.probes, size, ch, model.classes, cfg.concepts.max_examples, cfg.visualize.seed)
    batch = forward_batch_size(model, cfg.visualize.memory_budget_mb)  # forward-only stages: images per call
    probe_report, clean = None, None
    if probes is not None:
        with timer.stage("probes"):
            clean = log_probs(model, probes.images, batch)
            probe_report = probe_accuracy(clean.argmax(1), probes, model.classes)
            if probes.labels is not None:  # a wrong pixel range or class order gives wrong verdicts: stop early
                note = check_probe_predictions(model.keras_model, probes.images, probes.labels, model.classes,
                                               model.input_range, clean.argmax(1),
                                               probe_report["top_prediction_share"])
                probe_report["sanity"] = note
    recipe = from_config(cfg.visualize, model.input_shape)
    v = cfg.visualize
    raw_n = v.raw_images if not recipe.is_raw else 0
    names = list(v.classes or model.classes)
    plan = budget.plan(len(names), v.restarts, v.steps, raw_n, v.budget, v.preview_steps)
    preview = None
    if plan.previews:  # too many classes for the budget: one short image each first
        with timer.stage("visualize preview"):
            preview = visualize(model, cfg.model, cfg.concepts.layer,
                                dataclasses.replace(v, restarts=1, steps=plan.preview_steps), cfg.execution,
                                progress, log)
        vis = raw = None
    else:
        with timer.stage("visualize"):
            vis = visualize(model, cfg.model, cfg.concepts.layer, v, cfg.execution, progress, log)
        raw = _visualize_raw(model, v, names, raw_n, timer, progress)
    class_indices = (preview or vis).class_indices  # every audited class, in the model's order
    with timer.stage("score concepts"):  # every class scored on the same kind of images
        scores = score_concepts(model, preview or vis, bank, negatives, cfg.concepts.random_directions, v.seed,
                                batch_size=batch)
    cutout_source = ["hand" if c is not None else None for c in cutouts]
    auto_notes = {}
    if probes is not None and cfg.concepts.auto_cutouts and None in cutout_source:
        with timer.stage("auto cutouts"):
            for k, concept in enumerate(bank):
                if cutouts[k] is not None:
                    continue
                try:
                    cutouts[k] = auto_cutouts(model, concept.images, negatives, batch=batch)
                    cutout_source[k] = "auto"
                except ValueError as exc:  # no spatial concept layer, or nothing found: no causal test
                    auto_notes[concept.name] = str(exc)
    causal = inclass = None
    if probes is not None and any(c is not None for c in cutouts):
        with timer.stage("causal test"):
            causal = causal_scores(model, cutouts, probes.images, negatives, class_indices, cfg.visualize.seed,
                                   clean=clean, control=cfg.concepts.control, batch_size=batch)
        if probes.labels is not None:  # class sub-folders: the same pastes into each class's own images
            with timer.stage("in-class test"):
                inclass = inclass_scores(model, cutouts, probes.images, probes.labels, negatives, class_indices,
                                         cfg.visualize.seed, clean=clean, control=cfg.concepts.control,
                                         batch_size=batch)
    discovery = None
    if cfg.discover is not None:
        with timer.stage("discover"):
            discovery = discovery_for_audit(model, cfg, negatives, class_indices, probes, progress, log)
    with timer.stage("gate"):
        checks, verdict = gate_checks(scores, {c.name: c.allowed_in for c in bank}, cfg.gate, causal, inclass)
    checks = [c.to_dict() for c in checks]
    wanted, implicated, sampled = [], [], []
    if plan.previews:  # the full treatment where a test points, and for a seeded sample, while the budget lasts
        wanted = budget.implicated_classes(checks)
        implicated, sampled = budget.choose_full(plan, names, wanted, v.full_sample, v.seed,
                                                 v.restarts * v.steps + raw_n * v.steps)
        full = [n for n in names if n in set(implicated) | set(sampled)]
        if full:
            with timer.stage("visualize"):
                vis = visualize(model, cfg.model, cfg.concepts.layer, dataclasses.replace(v, classes=tuple(full)),
                                cfg.execution, progress, log)
            raw = _visualize_raw(model, v, full, raw_n, timer, progress)
    spent = sum(int(x.steps_taken.sum()) for x in (preview, vis, raw) if x is not None)
    budget_record = {"image_steps": v.budget, "full_cost": plan.full_cost, "spent": spent,
                     "preview_steps": plan.preview_steps, "full_sample": v.full_sample,
                     "implicated": implicated, "sampled": sampled,
                     "statement": budget.statement(plan, len(names), wanted, implicated,
                                                   sampled, spent)}
    # per concept, kept with the other timings (not deterministic); JUnit durations come from them
    concept_seconds = {f"score concept: {name}": round(float(sec), 3) for name, sec in zip(scores.concepts, scores.seconds)}
    with staged_folder(out) as staging:
        gallery = []
        if cfg.layer_gallery is not None:
            with timer.stage("layer gallery"):
                gallery = layer_gallery(model, cfg.layer_gallery, staging)
        with timer.stage("write images"):
            classes, examples = write_images(staging, model, vis, bank, negatives, raw, preview)
            cutout_images = write_cutouts(staging, bank, cutouts, cutout_source)
            if causal is not None:
                write_paste_examples(staging, model, checks, causal, cutouts, probes.images, negatives,
                                      class_indices, [c.name for c in bank], cfg.visualize.seed,
                                      cfg.concepts.control, batch, inclass)
            discovered = [] if discovery is None else write_discovered(staging, model, discovery,
                                                                       cfg.visualize.memory_budget_mb)
        result = {
            "schema_version": SCHEMA_VERSION,
            "title": cfg.report.title,
            "verdict": verdict,
            "exit_code": EXIT_CODES[verdict],
            "verdict_reasons": [f"{n} finding(s) at the {lv} level" for lv in ("fail", "warn")
                                if (n := sum(c["level"] == lv for c in checks))],
            "summary": summarize(checks),
            "findings": sort_findings(checks),
            "checks": checks,
            "model": {
                "name": model.name, "path": str(model.path), "sha256": model.sha256,
                "input_shape": list(model.input_shape), "classes": list(model.classes),
                "logits_source": model.logits_source, "concept_layer": model.feature_layer,
                "input_range": list(model.input_range) if model.input_range else None,
                "input_range_source": ("config" if cfg.model.input_range else "model layer" if model.input_range
                                       else None),
                "preprocessing": cfg.model.preprocessing, "trust_code": cfg.model.trust_code,
            },
            "visualization": {
                "restarts": cfg.visualize.restarts, "steps": cfg.visualize.steps,
                "stop_probability": cfg.visualize.stop_probability,
                "learning_rate": cfg.visualize.learning_rate, "seed": cfg.visualize.seed,
                "regularization": {"jitter": cfg.visualize.jitter,
                                   "total_variation": cfg.visualize.total_variation},
                **recipe.describe(),
                "raw_images": 0 if raw is None else cfg.visualize.raw_images,
                "budget": budget_record,
                "classes": classes,
            },
            "concepts": {
                "layer": model.feature_layer,
                "random_concepts": scores.random_concepts,
                "negatives": {"path": str(cfg.concepts.negatives), "count": scores.n_negatives,
                              "sha256": file_sha256(cfg.concepts.negatives),
                              "examples": examples["_negatives"]},
                "bank": [{"name": c.name, "path": str(cc.examples), "count": len(c.images),
                          "sha256": file_sha256(cc.examples), "allowed_in": list(c.allowed_in),
                          "separability": float(scores.separability[k]), "examples": examples[c.name],
                          "cutouts": _cutout_entry(cc, cutouts[k], cutout_source[k], cutout_images.get(c.name, []),
                                                   auto_notes.get(c.name))}
                         for k, (c, cc) in enumerate(zip(bank, cfg.concepts.bank))],
                "control": cfg.concepts.control,
                "probes": None if probes is None else {
                    "path": str(cfg.concepts.probes), "count": len(probes.images),
                    "sha256": file_sha256(cfg.concepts.probes), "layout": probes.layout,
                    "pastes": causal.pairs if causal is not None else 0, **probe_report},
            },
            "layer_gallery": gallery,
            "discovered": discovered,
            "discovery": None if discovery is None else discovery_record(discovery, cfg.discover),
            "gate": {"evidence": cfg.gate.evidence, "fail": vars(cfg.gate.fail), "warn": vars(cfg.gate.warn),
                     "causal": {"fail": vars(cfg.gate.causal_fail), "warn": vars(cfg.gate.causal_warn)},
                     "observational_can_fail": cfg.gate.observational_can_fail},
            "evidence": evidence_statement(checks, cfg),
            "baseline": None,
            "config": {"path": str(cfg.source), "sha256": cfg.sha256, "content": cfg.raw},
            "provenance": {**provenance(cfg.source, cfg.sha256, cfg.visualize.seed), "started_at": started,
                           "execution": execution_record(cfg)},
            "meanings": MEANINGS,
            "timing_seconds": {**timer.seconds, **concept_seconds},
        }
        apply_discovered(result)
        apply_baseline(result, baseline or cfg.gate.baseline, cfg)
        result["provenance"]["finished_at"] = now()
        (staging / "audit.json").write_text(dumps(result))
        render_all(staging)
    log(f"  {'total':<18} {sum(timer.seconds.values()):7.2f} s")
    return result, result["exit_code"], out
