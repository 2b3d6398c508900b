"""`audit run`, one stage after another, each a small function on the previous stages' typed values:

    load model -> inputs -> probes -> visualize -> score concepts -> cutouts -> causal and in-class
    tests -> discover -> gate -> full treatment (over the budget) -> layer gallery -> pastes shown
    -> image files -> audit.json (record.py, with the verdict: gate/verdict.py) -> every other output.

One way, plain data (flows/stages.py), each stage timed."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from audit.config.load import Config, run_inputs
from audit.errors import UserError
from audit.evidence.causal import causal_scores, log_probs
from audit.evidence.concepts import ConceptScores, score_concepts
from audit.evidence.discover.stage import DiscoveryRun, discovery_for_audit
from audit.evidence.examples import finding_examples, pattern_images
from audit.evidence.inclass import inclass_scores
from audit.evidence.localize import auto_cutouts
from audit.execution.shards import preflight, visualize
from audit.flows.common import Timer, now
from audit.flows.dream import layer_gallery
from audit.flows.record import audit_record, audit_sections
from audit.flows.stages import CausalTests, ClassImages, Cutouts, Evidence, Probed, Shown, Written
from audit.gate.baseline import baseline_section
from audit.gate.findings import gate_checks
from audit.gate.verdict import decide
from audit.inputs.bank import ConceptSet, InputBank, load_inputs
from audit.inputs.probes import probe_accuracy, refuse_unscored
from audit.model.input_range import check_probe_predictions
from audit.model.load import load_model
from audit.model.loaded import LoadedModel, forward_batch_size
from audit.report import render_all
from audit.report.discovered import write_discovered_images
from audit.report.folder import check_replaceable, staged_folder
from audit.report.images import (make_image_folders, write_causal_examples, write_class_images,
                                 write_concept_examples, write_cutouts)
from audit.result import dumps
from audit.version import __version__
from audit.visualize import budget
from audit.visualize.optimize import Visualizations, class_visualizations
from audit.visualize.recipe import from_config, raw as raw_recipe


@dataclass(frozen=True)
class Run:
    """What every stage of one run shares."""

    cfg: Config
    timer: Timer
    progress: bool
    log: Callable[[str], None]


def run_audit(cfg: Config, out: Path | None = None, progress: bool = True, log=print,
              baseline: Path | None = None) -> tuple[dict, int, Path]:
    """Run the whole audit and write the report folder; returns (result, exit code, folder)."""
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    out = Path(out) if out is not None else cfg.report.out
    check_replaceable(out, inputs=run_inputs(cfg, baseline))  # before the work, not after it
    preflight(cfg.execution)
    try:
        return _run(cfg, out, progress, log, baseline)
    except UserError as exc:
        if str(exc).startswith(str(cfg.source)):
            raise
        raise UserError(f"{cfg.source}: {exc}") from None


def _run(cfg: Config, out: Path, progress: bool, log, baseline: Path | None) -> tuple[dict, int, Path]:
    started = now()
    run = Run(cfg, Timer(log), progress, log)
    log(f"audit {__version__}: {cfg.source.name}")
    model = load_stage(run)
    inputs = inputs_stage(run, model)
    probed = probes_stage(run, model, inputs)
    images = visualize_stage(run, model)
    scores = score_stage(run, model, images, inputs, probed)
    cutouts = cutouts_stage(run, model, inputs, probed)
    tests = causal_stage(run, model, inputs, probed, cutouts, images)
    discovery = discover_stage(run, model, inputs, images)
    checks = gate_stage(run, scores, inputs, tests)
    images = full_treatment_stage(run, model, images, checks)
    evidence = Evidence(cfg, model, inputs, probed, images, scores, cutouts, tests, discovery, checks)
    with staged_folder(out) as staging:
        gallery = gallery_stage(run, model, staging)
        with run.timer.stage("write images"):  # with the pastes shown: the run's stages keep their names
            shown = examples_stage(evidence)
            written = write_stage(staging, evidence, shown, gallery)
        result = record_stage(run, evidence, shown, written, baseline, started)
        (staging / "audit.json").write_text(dumps(result))
        render_all(staging)
    log(f"  {'total':<18} {sum(run.timer.seconds.values()):7.2f} s")
    return result, result["exit_code"], out


def load_stage(run: Run) -> LoadedModel:
    with run.timer.stage("load model"):
        return load_model(run.cfg.model, run.cfg.concepts.layer)


def inputs_stage(run: Run, model: LoadedModel) -> InputBank:
    with run.timer.stage("load concepts"):
        return load_inputs(run.cfg, model.input_shape, model.classes)


def probes_stage(run: Run, model: LoadedModel, inputs: InputBank) -> Probed:
    """The probes' own predictions: accuracy, and a stop before any test when they say the pixel
    range or the class order is wrong (a wrong one gives wrong verdicts)."""
    batch = forward_batch_size(model, run.cfg.visualize.memory_budget_mb)  # forward-only stages: images per call
    probes = inputs.probes
    if probes is None:
        return Probed(batch, None, None)
    with run.timer.stage("probes"):
        clean = log_probs(model, probes.images, batch)
        refuse_unscored(clean, probes, run.cfg.concepts.probes)
        report = probe_accuracy(clean.argmax(1), probes, model.classes)
        if probes.labels is not None:
            predict = None if model.keras_model is None else model.predict_model_input
            report["sanity"] = check_probe_predictions(predict, probes.images, probes.labels, model.classes,
                                                       model.input_range, clean.argmax(1),
                                                       report["top_prediction_share"])
    return Probed(batch, clean, report)


def _visualize_raw(run: Run, model: LoadedModel, names: list[str], count: int) -> Visualizations | None:
    """The seed's unregularized mode, for the report only (not evidence)."""
    if not count:
        return None
    with run.timer.stage("visualize raw"):
        return class_visualizations(model, dataclasses.replace(run.cfg.visualize, restarts=count, classes=tuple(names)),
                                    progress=run.progress, recipe=raw_recipe(model.input_shape))


def _visualize(run: Run, model: LoadedModel, settings) -> Visualizations:
    cfg = run.cfg
    return visualize(model, cfg.model, cfg.concepts.layer, settings, cfg.execution, run.progress, run.log)


def visualize_stage(run: Run, model: LoadedModel) -> ClassImages:
    """Every class's visualizations; over the budget, a short preview of each first."""
    v = run.cfg.visualize
    recipe = from_config(v, model.input_shape)
    raw_count = v.raw_images if not recipe.is_raw else 0
    names = list(v.classes or model.classes)
    plan = budget.plan(len(names), v.restarts, v.steps, raw_count, v.budget, v.preview_steps)
    if plan.previews:  # too many classes for the budget: one short image each first
        with run.timer.stage("visualize preview"):
            preview = _visualize(run, model, dataclasses.replace(v, restarts=1, steps=plan.preview_steps))
        return ClassImages(names, recipe, plan, raw_count, preview, None, None)
    with run.timer.stage("visualize"):
        vis = _visualize(run, model, v)
    return ClassImages(names, recipe, plan, raw_count, None, vis, _visualize_raw(run, model, names, raw_count))


def score_stage(run: Run, model: LoadedModel, images: ClassImages, inputs: InputBank,
                probed: Probed) -> ConceptScores:
    with run.timer.stage("score concepts"):  # every class scored on the same kind of images
        return score_concepts(model, images.scored, inputs.concepts, inputs.negatives,
                              run.cfg.concepts.random_directions, run.cfg.visualize.seed, batch_size=probed.batch)


def cutouts_stage(run: Run, model: LoadedModel, inputs: InputBank, probed: Probed) -> Cutouts:
    """The hand-made cutouts, and with probes, cutouts found automatically for the other concepts."""
    images = list(inputs.cutouts)
    source = ["hand" if c is not None else None for c in images]
    notes = {}
    if inputs.probes is not None and run.cfg.concepts.auto_cutouts and None in source:
        with run.timer.stage("auto cutouts"):
            for k, concept in enumerate(inputs.concepts):
                if images[k] is not None:
                    continue
                try:
                    images[k] = auto_cutouts(model, concept.images, inputs.negatives, batch=probed.batch)
                    source[k] = "auto"
                except ValueError as exc:  # no spatial concept layer, or nothing found: no causal test
                    notes[concept.name] = str(exc)
    return Cutouts(images, source, notes)


def causal_stage(run: Run, model: LoadedModel, inputs: InputBank, probed: Probed, cutouts: Cutouts,
                 images: ClassImages) -> CausalTests:
    """Concept pastes on the probes; with class sub-folders, on each class's own probes too."""
    probes, cfg = inputs.probes, run.cfg
    if probes is None or all(c is None for c in cutouts.images):
        return CausalTests(None, None)
    class_indices, names = images.scored.class_indices, [c.name for c in inputs.concepts]
    with run.timer.stage("causal test"):
        causal = causal_scores(model, cutouts.images, probes.images, inputs.negatives, class_indices,
                               cfg.visualize.seed, clean=probed.clean, control=cfg.concepts.control,
                               batch_size=probed.batch, concepts=names)
    if probes.labels is None:
        return CausalTests(causal, None)
    with run.timer.stage("in-class test"):  # class sub-folders: the same pastes into each class's own images
        inclass = inclass_scores(model, cutouts.images, probes.images, probes.labels, inputs.negatives,
                                 class_indices, cfg.visualize.seed, control=cfg.concepts.control,
                                 batch_size=probed.batch, concepts=names)
    return CausalTests(causal, inclass)


def discover_stage(run: Run, model: LoadedModel, inputs: InputBank, images: ClassImages) -> DiscoveryRun | None:
    if run.cfg.discover is None:
        return None
    with run.timer.stage("discover"):
        return discovery_for_audit(model, run.cfg, inputs.negatives, images.scored.class_indices, inputs.probes,
                                   run.progress, run.log)


def gate_stage(run: Run, scores: ConceptScores, inputs: InputBank, tests: CausalTests) -> list[dict]:
    with run.timer.stage("gate"):
        checks = gate_checks(scores, inputs.allowed_in(), run.cfg.gate, tests.causal, tests.inclass)
    return [c.to_dict() for c in checks]


def full_treatment_stage(run: Run, model: LoadedModel, images: ClassImages, checks: list[dict]) -> ClassImages:
    """Over the budget: the full treatment where a test points, and for a seeded sample, while the
    budget lasts."""
    if not images.plan.previews:
        return images
    v = run.cfg.visualize
    wanted = budget.implicated_classes(checks)
    implicated, sampled = budget.choose_full(images.plan, images.names, wanted, v.full_sample, v.seed,
                                             v.restarts * v.steps + images.raw_count * v.steps)
    full = [n for n in images.names if n in set(implicated) | set(sampled)]
    vis = raw = None
    if full:
        with run.timer.stage("visualize"):
            vis = _visualize(run, model, dataclasses.replace(v, classes=tuple(full)))
        raw = _visualize_raw(run, model, full, images.raw_count)
    return dataclasses.replace(images, vis=vis, raw=raw, wanted=wanted, implicated=implicated, sampled=sampled)


def gallery_stage(run: Run, model: LoadedModel, staging: Path) -> list[dict]:
    if run.cfg.layer_gallery is None:
        return []
    with run.timer.stage("layer gallery"):
        return layer_gallery(model, run.cfg.layer_gallery, staging)


def examples_stage(e: Evidence) -> Shown:
    """The pastes a reviewer is shown beside the first causal findings and the discovered patterns."""
    cfg = e.cfg
    findings = [] if e.tests.causal is None else finding_examples(
        e.model, e.checks, e.inputs, e.cutouts.images, e.tests.causal, e.tests.inclass,
        e.images.scored.class_indices, cfg.visualize.seed, cfg.concepts.control, e.probed.batch)
    patterns = [] if e.discovery is None else pattern_images(e.model, e.discovery, e.probed.batch)
    return Shown(findings, patterns)


def write_stage(staging: Path, e: Evidence, shown: Shown, gallery: list[dict]) -> Written:
    """Every image file of the report folder."""
    make_image_folders(staging)
    classes = {(kind, idx): write_class_images(staging, vis.images[c], int(vis.class_indices[c]), kind)
               for idx, _, passes in e.images.shown() for kind, vis, c in passes}
    examples = write_concept_examples(staging, [*e.inputs.concepts, ConceptSet("_negatives", e.inputs.negatives, ())])
    cutouts = write_cutouts(staging, e.inputs.concepts, e.cutouts.images, e.cutouts.source)
    causal = [] if e.tests.causal is None else write_causal_examples(
        staging, [(ex.class_index, ex.concept, ex.pastes) for ex in shown.findings])
    patterns = [] if e.discovery is None else write_discovered_images(staging, shown.patterns)
    return Written(classes, examples, cutouts, causal, patterns, gallery)


def record_stage(run: Run, e: Evidence, shown: Shown, written: Written, baseline: Path | None,
                 started: str) -> dict:
    """audit.json: the sections, the baseline comparison, and the one verdict decided from them."""
    cfg = run.cfg
    sections = audit_sections(e, shown, written)
    comparison = baseline_section(sections, baseline or cfg.gate.baseline, cfg.gate.baseline_tolerance,
                                  cfg.gate.baseline_missing)
    verdict = decide([c["level"] for c in e.checks], [d["level"] for d in sections["discovered"]], comparison)
    # per concept, kept with the other timings (not deterministic); JUnit durations come from them
    concept_seconds = {f"score concept: {name}": round(float(sec), 3)
                       for name, sec in zip(e.scores.concepts, e.scores.seconds)}
    return audit_record(cfg, sections, verdict, comparison, started, {**run.timer.seconds, **concept_seconds})
