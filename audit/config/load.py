"""YAML config -> validated, typed `Config`.

Validated once, here, at the edge: every problem becomes a `UserError` that names
the file, the key path and the fix. Paths are resolved relative to the config file.
Inner code trusts these values. Each section has its own module (model, visualize, concepts,
gate, report, discover, execution); this one reads the file and puts them together.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit.config.concepts import ConceptsConfig, parse_concepts
from audit.config.discover import DiscoverConfig, parse_discover
from audit.config.execution import ExecutionConfig, parse_execution
from audit.config.gate import GateConfig, parse_gate
from audit.config.model import ModelConfig, model_inputs, parse_model
from audit.config.reader import Section, check_class_names, read_yaml
from audit.config.report import GalleryConfig, ReportConfig, parse_gallery, parse_report
from audit.config.visualize import VisualizeConfig, parse_visualize
from audit.errors import UserError


@dataclass(frozen=True)
class Config:
    source: Path
    sha256: str
    raw: dict = field(repr=False)
    model: ModelConfig
    visualize: VisualizeConfig
    concepts: ConceptsConfig
    gate: GateConfig
    layer_gallery: GalleryConfig | None
    report: ReportConfig
    execution: ExecutionConfig = ExecutionConfig()  # where the per-class work runs (local or Ray)
    discover: DiscoverConfig | None = None  # when the `discover:` stage is on


def _merged(data: Any, overrides: dict) -> Any:
    if not isinstance(data, dict):
        return overrides
    out = dict(data)
    for key, value in overrides.items():
        out[key] = _merged(out.get(key), value) if isinstance(value, dict) else value
    return out


def load_config(path: str | Path, overrides: dict | None = None) -> Config:
    """Read and validate a config file. `overrides` (the Python API's) are merged into the YAML
    before validation, key by key, e.g. {"visualize": {"steps": 32}}; paths in them are relative to
    the config file too. The config's sha256 then covers the overrides as well."""
    file, text, data = read_yaml(path)
    if overrides:
        data = _merged(data, overrides)
        text += b"\n# overrides: " + json.dumps(overrides, sort_keys=True, default=str).encode()
    top = Section(file, data, "")
    model = parse_model(top.section("model"))
    visualize = parse_visualize(top.section("visualize"))
    discover = parse_discover(top)
    concepts = parse_concepts(top.section("concepts"), discovering=discover is not None)
    if discover is not None and discover.probes is None and concepts.probes is None:
        raise UserError(f"{file}: discover: needs probe images in one sub-folder per class; give `discover.probes:` "
                        "(or `concepts.probes:`) a folder such as a sample of your validation set")
    gate = parse_gate(top.section("gate"))
    gallery = parse_gallery(top, visualize.seed, visualize.memory_budget_mb)
    report = parse_report(top.section("report"), file)
    top.used.add("execution")
    execution = parse_execution(top.data.get("execution"), str(file))
    top.finish()
    _check_class_names(file, model, visualize, concepts)
    return Config(file.resolve(), hashlib.sha256(text).hexdigest(), data, model, visualize, concepts, gate,
                  gallery, report, execution, discover)


def run_inputs(cfg: Config, baseline: Path | None = None) -> list[tuple[str, Path | None]]:
    """(key, path) of everything `audit run` reads, which its report folder must stay apart from;
    `baseline` is the one given instead of gate.baseline (`--baseline`)."""
    bank = [(f"concepts.bank.{c.name}.{what}", path) for c in cfg.concepts.bank
            for what, path in (("examples", c.examples), ("cutouts", c.cutouts))]
    return [*model_inputs(cfg.model), ("concepts.negatives", cfg.concepts.negatives),
            ("concepts.probes", cfg.concepts.probes), *bank,
            ("discover.probes", cfg.discover.probes if cfg.discover else None),
            ("--baseline", baseline) if baseline is not None else ("gate.baseline", cfg.gate.baseline)]


def _check_class_names(file: Path, model: ModelConfig, visualize: VisualizeConfig, concepts: ConceptsConfig) -> None:
    # without names (an application's ImageNet head), classes are called by their index: "0", "1", ...
    for key, names in [("visualize.classes", visualize.classes or ())] + [
            (f"concepts.bank.{c.name}.allowed_in", c.allowed_in) for c in concepts.bank]:
        if model.classes is not None:
            check_class_names(file, model.classes, key, names)
        elif not all(n.isdigit() for n in names):
            raise UserError(f"{file}: {key}: the model's classes are not named; use class indices "
                            "or add `model.classes_file`")
