"""The run records, built from the stages' values: audit.json (`audit run`), discovery.json
(`audit discover`) and dream.json (`audit dream`). Each begins with the same header and ends with
the config and provenance it was made from; one small function per section of audit.json."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from audit.config.load import Config
from audit.config.discover import DiscoverConfig
from audit.evidence.discover.stage import DiscoveryRun
from audit.flows.common import now, provenance
from audit.flows.stages import ClassImages, Evidence, Shown, Written
from audit.gate.verdict import Verdict
from audit.model.load import file_sha256
from audit.model.loaded import LoadedModel
from audit.result import MEANINGS, PROBE_SETS, SCHEMA_VERSION, moves_text, sort_findings, summarize
from audit.visualize import budget
from audit.visualize.optimize import Visualizations

DISCOVERED_ORDER = {"fail": 0, "warn": 1, "review": 2}


def record_header(title: str, kind: str | None = None) -> dict:
    """The first keys of every run record: the schema version, what kind of run (audit.json has
    none: it came first) and the title."""
    return {"schema_version": SCHEMA_VERSION, **({"kind": kind} if kind else {}), "title": title}


def record_origin(source: Path, sha256: str, raw: dict, seed: int, started: str, **more) -> dict:
    """The last keys of every run record: the config it ran (path, hash, content) and where, when
    and with what it ran (`more`: the record's own provenance, after `started_at`)."""
    return {"config": {"path": str(source), "sha256": sha256, "content": raw},
            "provenance": {**provenance(source, sha256, seed), "started_at": started, **more}}


def execution_record(cfg: Config) -> dict:
    """Where the work ran: provenance, not a result (a Ray run and a local run agree on results)."""
    e = cfg.execution
    return {"backend": e.backend, **({"address": e.address or "local instance", "workers": e.workers,
                                      "retries": e.retries} if e.backend == "ray" else {})}


def evidence_statement(checks: list[dict], cfg: Config, has_cutouts: bool) -> dict:
    """What the verdict rests on, said plainly in every output: a causal test (pastes on probes)
    or observational evidence only, which cannot tell "looks like" from "relies on". `has_cutouts`:
    some concept had cutouts (hand-made or found) to paste."""
    gated = [c for c in checks if c["level"] != "allowed"]
    causal = sum(c.get("decided_on") is not None for c in gated)
    observational = len(gated) - causal
    cap = ("they can fail the gate (gate.observational_can_fail: true)" if cfg.gate.observational_can_fail else
           "they warn at most (set gate.observational_can_fail: true to let them fail)")
    if observational == 0:
        mode, text = "causal", ("Every check was decided by a paste test (concept pastes on probe images), in points "
                                "of probes moved into the class.")
    elif causal == 0:
        why = ("no probes were given (concepts.probes)" if cfg.concepts.probes is None else
               "no concept has cutouts" if not has_cutouts else
               "no gated check's concept has cutouts, or every probe is already predicted as its class")
        mode, text = "observational", (
            f"This verdict rests on observational evidence only: {why}, so no check has a causal test. "
            f"Observational evidence (what concept images and class visualizations look like to the model) "
            f"cannot tell 'looks like' from 'relies on'; {cap}.")
    else:
        mode, text = "partial", (
            f"{observational} of {len(gated)} checks rest on observational evidence only (their concept has no "
            f"causal test); {cap}.")
    return {"mode": mode, "causal_checks": causal, "observational_checks": observational, "statement": text}


def with_examples(checks: list[dict], shown: Shown, written: Written) -> list[dict]:
    """The checks, each finding shown with pastes carrying them (`causal_examples`, and
    `causal_examples_own` when they are the class's own probes)."""
    pastes = {(ex.class_name, ex.concept): (paths, ex.own) for ex, paths in zip(shown.findings, written.causal)}
    out = []
    for c in checks:
        shown_with = pastes.get((c["class_name"], c["concept"]))
        out.append(c if shown_with is None else {**c, "causal_examples": shown_with[0],
                                                 "causal_examples_own": shown_with[1]})
    return out


def model_section(model: LoadedModel, cfg: Config) -> dict:
    return {
        "name": model.name, "path": str(model.path), "sha256": model.sha256,
        "input_shape": list(model.input_shape), "classes": list(model.classes),
        "logits_source": model.logits_source, "concept_layer": model.feature_layer,
        "input_range": list(model.input_range) if model.input_range else None,
        "input_range_source": "config" if cfg.model.input_range else "model layer" if model.input_range else None,
        "preprocessing": cfg.model.preprocessing, "trust_code": cfg.model.trust_code,
    }


def _softmax(logits: np.ndarray) -> np.ndarray:
    p = np.exp(logits - logits.max(-1, keepdims=True))
    return p / p.sum(-1, keepdims=True)


def _pass_entry(vis: Visualizations, c: int, paths: list[str]) -> dict:
    """One class's images of one pass and what the model makes of them."""
    idx = int(vis.class_indices[c])
    return {"images": paths, "target_logit": float(vis.logits[c, :, idx].mean()),
            "target_probability": float(_softmax(vis.logits[c])[:, idx].mean()),
            "logit_trace": [float(v) for v in vis.target_logit_trace[c].mean(0)],
            "steps_taken": [int(v) for v in vis.steps_taken[c]]}


def class_entries(classes: tuple[str, ...], images: ClassImages, written: Written) -> list[dict]:
    """Every class's images: the full treatment where it was given, else the preview."""
    entries = []
    for idx, treatment, passes in images.shown():
        (kind, vis, c), *raw = passes
        entry = {"name": classes[idx], "index": idx, "treatment": treatment,
                 **_pass_entry(vis, c, written.classes[(kind, idx)])}
        for kind, vis, c in raw:
            r = _pass_entry(vis, c, written.classes[(kind, idx)])
            entry.update(raw_images=r["images"], raw_target_probability=r["target_probability"])
        entries.append(entry)
    return entries


def budget_section(cfg: Config, images: ClassImages) -> dict:
    v, plan = cfg.visualize, images.plan
    spent = sum(int(x.steps_taken.sum()) for x in (images.preview, images.vis, images.raw) if x is not None)
    return {"image_steps": v.budget, "full_cost": plan.full_cost, "spent": spent,
            "preview_steps": plan.preview_steps, "full_sample": v.full_sample,
            "implicated": images.implicated, "sampled": images.sampled,
            "statement": budget.statement(plan, len(images.names), images.wanted, images.implicated,
                                          images.sampled, spent)}


def visualization_section(e: Evidence, written: Written) -> dict:
    v = e.cfg.visualize
    return {
        "restarts": v.restarts, "steps": v.steps, "stop_probability": v.stop_probability,
        "learning_rate": v.learning_rate, "seed": v.seed,
        "regularization": {"jitter": v.jitter, "total_variation": v.total_variation},
        **e.images.recipe.describe(),
        "raw_images": 0 if e.images.raw is None else v.raw_images,
        "budget": budget_section(e.cfg, e.images),
        "classes": class_entries(e.model.classes, e.images, written),
    }


def _cutout_entry(e: Evidence, k: int, images: list[str]) -> dict | None:
    cc, cut, source = e.cfg.concepts.bank[k], e.cutouts.images[k], e.cutouts.source[k]
    if source is None:
        note = e.cutouts.notes.get(cc.name)
        return None if note is None else {"source": None, "reason": note}
    entry = {"source": source, "count": len(cut), "images": images, "mean_opacity": float(cut[..., -1].mean())}
    if source == "hand":
        entry.update(path=str(cc.cutouts), sha256=file_sha256(cc.cutouts))
    return entry


def _probes_entry(e: Evidence) -> dict | None:
    probes, c = e.inputs.probes, e.cfg.concepts
    if probes is None:
        return None
    return {"path": str(c.probes), "count": len(probes.images), "sha256": file_sha256(c.probes),
            "layout": probes.layout, "pastes": e.tests.causal.pairs if e.tests.causal is not None else 0,
            **e.probed.report}


def concepts_section(e: Evidence, written: Written) -> dict:
    c, scores = e.cfg.concepts, e.scores
    return {
        "layer": e.model.feature_layer,
        "random_concepts": scores.random_concepts,
        "negatives": {"path": str(c.negatives), "count": scores.n_negatives, "sha256": file_sha256(c.negatives),
                      "examples": written.examples["_negatives"]},
        "bank": [{"name": concept.name, "path": str(cc.examples), "count": len(concept.images),
                  "sha256": file_sha256(cc.examples), "allowed_in": list(concept.allowed_in),
                  "separability": float(scores.separability[k]), "examples": written.examples[concept.name],
                  "cutouts": _cutout_entry(e, k, written.cutouts.get(concept.name, []))}
                 for k, (concept, cc) in enumerate(zip(e.inputs.concepts, c.bank))],
        "control": c.control,
        "probes": _probes_entry(e),
    }


def gate_section(cfg: Config) -> dict:
    g = cfg.gate
    return {"evidence": g.evidence, "fail": vars(g.fail), "warn": vars(g.warn),
            "causal": {"fail": vars(g.causal_fail), "warn": vars(g.causal_warn)},
            "observational_can_fail": g.observational_can_fail}


def audit_sections(e: Evidence, shown: Shown, written: Written) -> dict:
    """audit.json from `summary` to `evidence`: what was measured and how it was gated (the
    verdict, the baseline comparison and the provenance are added around it)."""
    checks = with_examples(e.checks, shown, written)
    return {
        "summary": summarize(checks),
        "findings": sort_findings(checks),
        "checks": checks,
        "model": model_section(e.model, e.cfg),
        "visualization": visualization_section(e, written),
        "concepts": concepts_section(e, written),
        "layer_gallery": written.gallery,
        "discovered": [] if e.discovery is None else discovered_entries(e.model.classes, e.discovery,
                                                                        written.patterns),
        "discovery": None if e.discovery is None else discovery_section(e.discovery, e.cfg.discover),
        "gate": gate_section(e.cfg),
        "evidence": evidence_statement(checks, e.cfg, any(c is not None for c in e.cutouts.images)),
    }


def audit_record(cfg: Config, sections: dict, verdict: Verdict, baseline: dict, started: str,
                 timing: dict) -> dict:
    """The whole audit.json, in its order."""
    return {
        **record_header(cfg.report.title),
        "verdict": verdict.level, "exit_code": verdict.exit_code, "verdict_reasons": list(verdict.reasons),
        **sections,
        "baseline": baseline,
        **record_origin(cfg.source, cfg.sha256, cfg.raw, cfg.visualize.seed, started,
                        execution=execution_record(cfg), finished_at=now()),
        "meanings": MEANINGS,
        "timing_seconds": timing,
    }


def _num(v) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)


def _pattern_moves(e: dict) -> float:
    sets = [m for m in (e.get("causal") or {}).values() if m]
    return max((m["moves"] for m in sets), default=-200.0)


def sort_discovered(entries: list[dict]) -> list[dict]:
    """Worst first: level, then how many points of other classes' probes the region alone moves into the class."""
    return sorted(entries, key=lambda e: (DISCOVERED_ORDER[e["level"]], -_pattern_moves(e), e["class_name"],
                                          e["pattern"]))


def _discovered_summary(e: dict) -> str:
    sets = {s: m for s, m in (e.get("causal") or {}).items() if m}
    if not sets:
        return f"{e['share']:.0%} of the class's evidence on its probes; no insertion test (no region found)"
    kept = ("no removal test (the model puts none of the probes it was cut from in the class)"
            if e["kept_without"] is None else f"the class keeps {e['kept_without']:.0%} of its own images without it")
    on, m = max(sets.items(), key=lambda item: item[1]["moves"])
    return (f"{e['share']:.0%} of the class's evidence on its probes; its region pasted onto other classes' probes "
            f"{moves_text('causal', on, m, e['class_name'])}, adj. p {m['p_adjusted']:.2g}; log-odds "
            f"{m['log_odds']:+.2f} nats; {kept}")


def discovered_entries(classes: tuple[str, ...], run: DiscoveryRun, images: list[dict]) -> list[dict]:
    """The `discovered` entries, worst first; `images`: per pattern, the paths its files were written to."""
    entries = []
    for d, files in zip(run.patterns, images):
        c = d.causal or {}
        entry = {
            "class_name": classes[d.class_index], "class_index": d.class_index, "pattern": d.pattern,
            "level": d.level, "share": d.share, "kept_without": _num(d.kept),
            "causal": {s: c.get(s) for s in PROBE_SETS} if c else None, "pastes": c.get("pastes", 0), **files,
        }
        entry["summary"] = _discovered_summary(entry)
        entries.append(entry)
    return sort_discovered(entries)


def discovery_section(run: DiscoveryRun, cfg: DiscoverConfig) -> dict:
    """audit.json's `discovery`: what was run on what (the entries are in `discovered`)."""
    return {"probes": {"path": str(run.probes_path), "count": len(run.probes.images)},
            "control_fill": "negatives" if run.negatives is not None else "other classes' probes",
            "patterns_per_class": cfg.patterns, "skipped_classes": run.skipped,
            "levels": {"warn": None if cfg.warn is None else vars(cfg.warn),
                       "fail": None if cfg.fail is None else vars(cfg.fail),
                       "min_kept": cfg.min_kept}}


def discovery_sections(model: LoadedModel, run: DiscoveryRun, cfg: DiscoverConfig, discovered: list[dict]) -> dict:
    """discovery.json between its header and its provenance."""
    return {"model": {"name": model.name, "path": str(model.path), "sha256": model.sha256,
                      "input_shape": list(model.input_shape), "classes": list(model.classes),
                      "feature_layer": model.feature_layer},
            "discovery": discovery_section(run, cfg),
            "discovered": discovered}
