"""`audit discover`: discovery on its own, from a config or from flags (a model and probes in
class sub-folders are all it needs). Writes discovery.json, index.html and the images into a
report folder, atomically, like `audit run`."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from audit.config.concepts import DEFAULT_MAX_EXAMPLES
from audit.config.load import load_config
from audit.config.model import ModelConfig, parse_model
from audit.config.report import ReportConfig, parse_report
from audit.config.visualize import VisualizeConfig, parse_visualize
from audit.config.reader import Section
from audit.config.discover import DiscoverConfig, parse_discover
from audit.errors import UserError
from audit.config.yaml_input import flag_numbers, short_repr


@dataclass(frozen=True)
class DiscoverRunConfig:
    source: Path
    sha256: str
    raw: dict
    model: ModelConfig
    visualize: VisualizeConfig
    discover: DiscoverConfig
    probes: Path
    negatives: Path | None
    report: ReportConfig
    layer: str = "auto"

    def inputs(self) -> list[tuple[str, Path | None]]:
        """(key, path) of everything `audit discover` reads, which its report folder must stay apart from."""
        from audit.config.model import model_inputs

        return [*model_inputs(self.model), ("discover.probes", self.probes), ("negatives", self.negatives)]


def from_flags(args, cwd: Path) -> DiscoverRunConfig:
    """The config a user would have written, from flags; parsed by the same validation."""
    if not args.model or not args.probes:
        raise UserError("audit discover: give a CONFIG file, or --model MODEL and --probes DIR (one sub-folder "
                        "per class)")
    model = {"path": str(args.model), "trust_code": bool(args.trust_code)}
    if args.preprocessing:
        model["preprocessing"] = args.preprocessing
    elif args.input_range:
        model["input_range"] = flag_numbers(args.input_range, float, "audit discover", "--input-range", "0,255")
    if args.classes_file:
        model["classes_file"] = str(args.classes_file)
    visualize = {k: v for k, v in (("steps", args.steps), ("seed", args.seed)) if v is not None}
    if args.classes:
        visualize["classes"] = [c.strip() for c in args.classes.split(",")]
    discover = {"probes": str(args.probes), "visualize": not args.no_visualize}
    if args.patterns is not None:
        discover["patterns"] = args.patterns
    data = {"model": model, "visualize": visualize, "discover": discover,
            "report": {"out": str(args.out or "reports/discovery"), "title": f"Discovery: {args.model.name}"}}
    if args.negatives:
        data["negatives"] = str(args.negatives)
    source = cwd / "<command line>"
    try:
        return _parse(source, data, yaml.safe_dump(data, sort_keys=False).encode())
    except UserError as exc:  # the user wrote flags, not a file: say so
        raise UserError(str(exc).replace(f"{source}: ", "audit discover: ", 1)) from None


def _parse(source: Path, data: dict, text: bytes) -> DiscoverRunConfig:
    top = Section(source, data, "")
    model = parse_model(top.section("model"), classes_required=False)
    visualize = parse_visualize(top.section("visualize"))
    discover = parse_discover(top) or DiscoverConfig()
    negatives = top.path_value("negatives", required=False, must="dir")
    report = parse_report(top.section("report"), source)
    top.finish()
    return DiscoverRunConfig(source, hashlib.sha256(text).hexdigest(), data, model, visualize, discover,
                             discover.probes, negatives, report)


def from_config(path: Path, out: Path | None) -> DiscoverRunConfig:
    """An audit config: its model, visualization settings, `discover:` section (or the defaults),
    negatives, and probes (discover.probes, else concepts.probes)."""
    cfg = load_config(path)
    d = cfg.discover or DiscoverConfig()
    probes = d.probes or cfg.concepts.probes
    if probes is None:
        raise UserError(f"{cfg.source}: discover.probes: is missing; give a folder with one sub-folder per class")
    report = ReportConfig(out.resolve() if out else cfg.report.out.with_name(cfg.report.out.name + "-discovery"),
                          f"Discovery: {cfg.report.title}")
    return DiscoverRunConfig(cfg.source, cfg.sha256, cfg.raw, cfg.model, cfg.visualize, d, probes,
                             cfg.concepts.negatives, report, cfg.concepts.layer)


def _load(cfg: DiscoverRunConfig):
    """(model, probes in class sub-folders, negatives or None, the audited class indices)."""
    from audit.evidence.discover.stage import load_class_probes
    from audit.images import load_folder
    from audit.model.load import load_model

    model = load_model(cfg.model, cfg.layer)
    size, ch = model.input_shape[:2], model.input_shape[2]
    limit = DEFAULT_MAX_EXAMPLES  # concepts.max_examples' default; a config's own value is not read here
    probes = load_class_probes(model, cfg.probes, "discover.probes", limit, cfg.visualize.seed)
    negatives = None if cfg.negatives is None else load_folder(cfg.negatives, size, ch, "negatives", limit)
    names = cfg.visualize.classes or tuple(model.classes[i] for i in sorted(set(probes.labels.tolist())))
    for n in names:
        if n not in model.classes:
            raise UserError(f"visualize.classes: unknown class {short_repr(n)}; use names from the model's classes")
    return model, probes, negatives, [model.classes.index(n) for n in names]


def run_discover_command(cfg: DiscoverRunConfig, progress: bool, log) -> tuple[dict, Path]:
    """Load, discover, write the report folder; returns (discovery.json content, folder)."""
    import tensorflow as tf

    from audit.evidence.discover.stage import run_discovery
    from audit.evidence.examples import pattern_images
    from audit.flows.common import now
    from audit.flows.record import discovered_entries, discovery_sections, record_header, record_origin
    from audit.gate.verdict import decide
    from audit.model.loaded import forward_batch_size
    from audit.report import render_all
    from audit.report.discovered import write_discovered_images
    from audit.report.folder import check_replaceable, staged_folder
    from audit.result import dumps

    tf.config.experimental.enable_op_determinism()
    out = cfg.report.out
    check_replaceable(out, inputs=cfg.inputs())
    started, timing = now(), {}
    t = time.perf_counter()
    model, probes, negatives, indices = _load(cfg)
    timing["load"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    run = run_discovery(model, probes, cfg.probes, indices, cfg.discover, cfg.visualize, negatives, progress, log)
    timing["discover"] = round(time.perf_counter() - t, 3)
    with staged_folder(out) as staging:
        t = time.perf_counter()
        shown = pattern_images(model, run, forward_batch_size(model, cfg.visualize.memory_budget_mb))
        discovered = discovered_entries(model.classes, run, write_discovered_images(staging, shown))
        timing["write images"] = round(time.perf_counter() - t, 3)
        verdict = decide((), [e["level"] for e in discovered])
        result = {**record_header(cfg.report.title, "discovery"), "exit_code": verdict.exit_code,
                  **discovery_sections(model, run, cfg.discover, discovered),
                  **record_origin(cfg.source, cfg.sha256, cfg.raw, cfg.visualize.seed, started, finished_at=now()),
                  "timing_seconds": timing}
        (staging / "discovery.json").write_text(dumps(result))
        render_all(staging)
    return result, out
