"""YAML config -> validated, typed `Config`.

Validated once, here, at the edge: every problem becomes a `UserError` that names
the file, the key path and the fix. Paths are resolved relative to the config file.
Inner code trusts these values.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit.config.reader import (Section, check_class_names, name_list, names_or_keyword, optional_number,
                                  read_class_names, read_yaml, within)
from audit.errors import UserError
from audit.config.execution import ExecutionConfig, parse_execution
from audit.config.yaml_input import short_repr

# architecture -> its preprocessing (the keras.applications module with its preprocess_input)
APPLICATIONS = {
    "MobileNet": "mobilenet", "MobileNetV2": "mobilenet_v2", "MobileNetV3Small": "mobilenet_v3",
    "MobileNetV3Large": "mobilenet_v3", "ResNet50": "resnet50", "ResNet101": "resnet", "ResNet152": "resnet",
    "ResNet50V2": "resnet_v2", "ResNet101V2": "resnet_v2", "ResNet152V2": "resnet_v2", "VGG16": "vgg16",
    "VGG19": "vgg19", "InceptionV3": "inception_v3", "InceptionResNetV2": "inception_resnet_v2",
    "Xception": "xception", "DenseNet121": "densenet", "DenseNet169": "densenet", "DenseNet201": "densenet",
    "EfficientNetB0": "efficientnet", "EfficientNetB1": "efficientnet", "EfficientNetB2": "efficientnet",
    "EfficientNetV2B0": "efficientnet_v2", "EfficientNetV2S": "efficientnet_v2", "ConvNeXtTiny": "convnext",
    "ConvNeXtSmall": "convnext", "NASNetMobile": "nasnet",
}

# How far the deciding statistic may rise before it counts as a regression: max(causal, shift or
# abs, rel x |baseline value|). Set from honest retrains of the demo models (benchmarks/retrain,
# README), between the 95th and 99th percentiles of their absolute changes: the flip difference
# (`causal`) 0.034 / 0.077, the causal and in-class shifts (`shift`) 0.31-0.37 / 0.54-0.60.
DEFAULT_TOLERANCE = {"causal": 0.06, "shift": 0.45, "abs": 3.5, "rel": 0.5}


@dataclass(frozen=True)
class DreamSettings:
    octaves: int = 4
    octave_scale: float = 1.4
    steps: int = 32          # per octave
    step_size: float = 0.02  # in [0, 1] pixel units, after gradient normalization
    smoothing: float = 0.0   # weight of the total-variation descent relative to the objective's ascent
    jitter: int = 8          # random shift of the tile grid, pixels
    seed: int = 0
    memory_budget_mb: int = 2048  # bounds how many tiles go through the model per call


PREPROCESSING = ("mobilenet", "mobilenet_v2", "mobilenet_v3", "resnet50", "resnet", "resnet_v2", "vgg16", "vgg19",
                 "inception_v3", "xception", "densenet", "efficientnet", "efficientnet_v2",
                 "convnext", "nasnet", "inception_resnet_v2", "regnet")
EVIDENCE = ("visualization", "cue", "both", "either")
CONCEPT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
# Upper bounds that stop a typo (or a hostile config) from asking for days of work or
# gigabytes of memory before anything is checked; far above any sensible audit.
MAX_RESTARTS = 1000
MAX_STEPS = 100_000
MAX_EXAMPLES = 100_000
MAX_RANDOM_DIRECTIONS = 100_000
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class ModelConfig:
    path: Path | None                # a model file or SavedModel folder, or
    classes: tuple[str, ...] | None
    classes_file: Path | None
    input_range: tuple[float, float] | None
    preprocessing: str | None
    trust_code: bool
    application: str | None = None   # a keras.applications architecture, with
    weights: str | None = None       # None (random), "imagenet" (Keras' cache) or a weights file
    input_size: tuple[int, int] | None = None  # for an application: (height, width)


@dataclass(frozen=True)
class TransformSettings:
    """Random transforms of the image every step (audit/visualize/transforms.py)."""

    jitter: int = 0                         # shift, whole pixels in [-jitter, jitter]
    scale: tuple[float, float] = (1.0, 1.0)  # zoom factor range
    rotate: float = 0.0                     # degrees in [-rotate, rotate]


# image-steps (one image, one gradient step) of class visualization an audit may spend by default:
# ~20 min of EfficientNet-Lite0 at 224 px on 2 cores; every model up to ~40 classes x 8 x 128 fits
DEFAULT_BUDGET = 40_000
PARAMETERIZATIONS = ("fourier", "pixels")
TRANSFORM_PRESETS = ("standard", "none")
DEFAULT_PARAMETERIZATION = "fourier"
DEFAULT_TRANSFORMS = "standard"


@dataclass(frozen=True)
class VisualizeConfig:
    classes: tuple[str, ...] | None  # None = all
    restarts: int
    steps: int
    learning_rate: float
    seed: int
    jitter: int            # the transforms' jitter in pixels (0 = the preset's or none)
    total_variation: float  # smoothness penalty weight (audit/visualize/penalties.py for its unit)
    memory_budget_mb: int
    stop_probability: float | None = None  # an image stops once its class probability reaches this
    parameterization: str = DEFAULT_PARAMETERIZATION  # "fourier" | "pixels" (audit/visualize/param.py)
    transforms: str | TransformSettings = DEFAULT_TRANSFORMS  # a preset name or explicit settings
    raw_images: int = 1  # per class, from the seed's raw mode, shown beside the others (not evidence)
    budget: int | None = DEFAULT_BUDGET  # image-steps for all class visualizations (audit/visualize/budget.py)
    preview_steps: int = 32  # over budget: every class first gets one image of this many steps
    full_sample: int = 8     # over budget: besides implicated classes, this many sampled ones get the full treatment


@dataclass(frozen=True)
class ConceptConfig:
    name: str
    examples: Path
    allowed_in: tuple[str, ...]
    cutouts: Path | None = None  # RGBA images of the concept alone, for the causal test


@dataclass(frozen=True)
class ConceptsConfig:
    layer: str  # "auto" or a layer name
    negatives: Path
    bank: tuple[ConceptConfig, ...]
    max_examples: int
    random_directions: int
    probes: Path | None = None  # in-distribution images the causal test pastes cutouts onto
    auto_cutouts: bool = True   # concepts without cutouts get them from their examples (localize.py)
    control: str = "mask"       # control paste: the cutout's own alpha, or a footprint blob (causal.py)


@dataclass(frozen=True)
class GateLevel:
    cue_max_p: float
    cue_min_effect: float
    vis_max_p: float
    vis_min_effect: float


# Calibrated on the validity benchmark (no control model's check reaches 0.35) and on
# EfficientNet-Lite0 with a CJK stock-photo watermark (README, "Validity").
SHIFT_FAIL, SHIFT_WARN = 0.5, 0.35


@dataclass(frozen=True)
class CausalLevel:
    max_p: float      # Holm-adjusted p of the paired test on the per-probe shift
    min_flip: float   # flip rate of the concept paste minus that of the control paste
    min_shift: float | None = None  # or: the class's log-probability shift in logit spreads (causal.py);
                                    # None = only flips decide


@dataclass(frozen=True)
class GateConfig:
    evidence: str
    fail: GateLevel
    warn: GateLevel
    baseline: Path | None = None     # the last released model's audit.json
    # a check's deciding statistic may rise this much (flip difference / effect units) or `rel` x
    # its baseline value, whichever is larger; defaults measured on honest retrains (baseline.py)
    baseline_abs: float = DEFAULT_TOLERANCE["abs"]
    baseline_rel: float = DEFAULT_TOLERANCE["rel"]
    baseline_missing: str = "fail"   # what a requested but missing/incompatible baseline does
    causal_fail: CausalLevel = CausalLevel(0.01, 0.15, SHIFT_FAIL)  # decide checks that have a causal test
    causal_warn: CausalLevel = CausalLevel(0.05, 0.05, SHIFT_WARN)
    observational_can_fail: bool = False  # without a causal test a check reaches `warn` at most
    baseline_causal: float = DEFAULT_TOLERANCE["causal"]
    baseline_shift: float = DEFAULT_TOLERANCE["shift"]   # the causal and in-class shifts

    @property
    def baseline_tolerance(self) -> dict:
        return {"causal": self.baseline_causal, "shift": self.baseline_shift, "abs": self.baseline_abs,
                "rel": self.baseline_rel}


@dataclass(frozen=True)
class GalleryConfig:
    """The report's layer gallery: what each depth paints, dreamed from the same noise."""

    layers: tuple[str, ...] | None  # None = `count` layers spread from early to late
    count: int
    settings: DreamSettings


@dataclass(frozen=True)
class ReportConfig:
    out: Path
    title: str


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
    discover: Any = None  # audit.config.discover.DiscoverConfig when the `discover:` stage is on


def parse_model(sec: Section, classes_required: bool = True) -> ModelConfig:
    application = sec.get("application", str, fix="name a keras.applications architecture, e.g. ResNet50")
    path = sec.path_value("path", required=application is None)
    if path is not None and application is not None:
        sec.fail(sec.key("application"), "both `path` and `application` are given", "keep one of them")
    weights = None
    input_size = None
    if application is not None:

        if application not in APPLICATIONS:
            close = difflib.get_close_matches(application, list(APPLICATIONS), n=1)
            sec.fail(sec.key("application"), f"unknown architecture {short_repr(application)}",
                     f"did you mean `{close[0]}`?" if close else f"use one of: {', '.join(APPLICATIONS)}")
        weights = sec.get("weights", str, fix="write `imagenet`, a weights file path, or leave it out (random)")
        if weights is not None and weights != "imagenet":
            weights = str(sec.path_value("weights", must="file"))
            from audit.config.model_files import check_model_path

            try:  # a weights file must not inflate when loaded either
                check_model_path(Path(weights), False, sec.key("weights"))
            except UserError as exc:
                raise UserError(f"{sec.file}: {exc}") from None
        size = sec.get("input_size", list, fix="write it as [height, width]")
        if size is not None and (len(size) != 2 or not all(isinstance(v, int) and 32 <= v <= 4096 for v in size)):
            sec.fail(sec.key("input_size"), f"invalid size {short_repr(size)}",
                     "write it as [height, width], each from 32 to 4096")
        input_size = tuple(size) if size else None
    classes = name_list(sec, "classes", "list the class names in output order, e.g. [cat, dog]")
    classes_file = sec.path_value("classes_file", required=False, must="file")
    if classes is not None and classes_file is not None:
        sec.fail(sec.key("classes"), "both `classes` and `classes_file` are given", "keep one of them")
    if classes is None and classes_file is None and classes_required and application is None:
        sec.fail(sec.key("classes"), "is missing", "add `classes: [...]` or `classes_file: classes.txt`")
    if classes_file is not None:
        try:
            classes = read_class_names(classes_file)
        except (OSError, UnicodeDecodeError) as exc:
            sec.fail(sec.key("classes_file"), f"cannot read {classes_file} ({type(exc).__name__})",
                     "give a UTF-8 text file with one class name per line")
        if not classes:
            sec.fail(sec.key("classes_file"), f"{classes_file} lists no class", "write one class name per line")
    if classes is not None and len(set(classes)) != len(classes):
        sec.fail(sec.key("classes"), "class names repeat", "give each output a unique name")
    rng = sec.get("input_range", list, fix="write it as [low, high], e.g. [0, 1] or [0, 255]")
    if rng is not None and (len(rng) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                     and math.isfinite(v) for v in rng) or rng[0] >= rng[1]):
        sec.fail(sec.key("input_range"), f"invalid range {short_repr(rng)}",
                 "write it as [low, high] with low < high")
    pre = sec.get("preprocessing", str, check=lambda v: v in PREPROCESSING,
                  fix=f"use one of: {', '.join(PREPROCESSING)}")
    if rng is not None and pre is not None:
        sec.fail(sec.key("input_range"), "both `input_range` and `preprocessing` are given", "keep one of them")
    if rng is None and pre is None and application is not None:
        pre = APPLICATIONS[application]  # the architecture's own preprocessing
    # neither given: read from the model's own Rescaling/Normalization layer when it is loaded (model.py)
    trust = sec.get("trust_code", bool, default=False)
    if path is not None:
        from audit.config.model_files import check_model_path

        try:  # a SavedModel folder is code; a model file must not inflate when loaded
            check_model_path(path, trust, sec.key("path"))
        except UserError as exc:
            raise UserError(f"{sec.file}: {exc}") from None
    sec.finish()
    return ModelConfig(path, classes, classes_file, tuple(float(v) for v in rng) if rng else None, pre, trust,
                       application, weights, input_size)


def parse_visualize(sec: Section) -> VisualizeConfig:
    classes = names_or_keyword(sec, "classes", "all", "class names")
    out = VisualizeConfig(
        classes=classes,
        restarts=sec.get("restarts", int, 8, check=within(1, MAX_RESTARTS),
                         fix=f"use a whole number from 1 to {MAX_RESTARTS}"),
        steps=sec.get("steps", int, 128, check=within(1, MAX_STEPS), fix=f"use a whole number from 1 to {MAX_STEPS}"),
        learning_rate=float(sec.get("learning_rate", (int, float), 0.05, check=lambda v: 0 < v <= 1,
                                    fix="use a number in (0, 1] (pixel units; the default is 0.05)")),
        seed=sec.get("seed", int, 0, check=within(0, MAX_SEED), fix=f"use a whole number from 0 to {MAX_SEED}"),
        jitter=sec.get("jitter", int, 0, check=within(0, 1024), fix="use a whole number of pixels from 0 to 1024"),
        total_variation=float(sec.get("total_variation", (int, float), 0.0, check=within(0, 1e6),
                                      fix="use a number from 0 (off) to 1e6")),
        memory_budget_mb=sec.get("memory_budget_mb", int, 2048, check=within(1, 2**20),
                                 fix="use megabytes from 1 to 1048576"),
        stop_probability=_stop_probability(sec),
        parameterization=sec.get("parameterization", str, DEFAULT_PARAMETERIZATION,
                                 check=lambda v: v in PARAMETERIZATIONS,
                                 fix=f"use one of: {', '.join(PARAMETERIZATIONS)}"),
        transforms=_transforms(sec),
        raw_images=sec.get("raw_images", int, 1, check=lambda v: v >= 0, fix="use a whole number >= 0 (0 = none)"),
        budget=_budget(sec),
        preview_steps=sec.get("preview_steps", int, 32, check=within(8, MAX_STEPS),
                              fix=f"use a whole number from 8 to {MAX_STEPS}"),
        full_sample=sec.get("full_sample", int, 8, check=lambda v: v >= 0, fix="use a whole number >= 0"),
    )
    sec.finish()
    return out


def _budget(sec: Section) -> int | None:
    value = sec.get("budget", int, DEFAULT_BUDGET, check=lambda v: v >= 1,
                    fix="use a whole number of image-steps >= 1, or `null` for no cap")
    return None if "budget" in sec.data and sec.data["budget"] is None else value  # null: no cap


def _transforms(sec: Section) -> str | TransformSettings:
    """A preset name, or {jitter, scale, rotate}; the older `jitter` key may go with a preset only."""
    fix = f"use one of: {', '.join(TRANSFORM_PRESETS)}, or a mapping {{jitter: 8, scale: [0.9, 1.1], rotate: 10}}"
    value = sec.get("transforms", (str, dict), DEFAULT_TRANSFORMS, fix=fix)
    if isinstance(value, str):
        if value not in TRANSFORM_PRESETS:
            sec.fail(sec.key("transforms"), f"invalid value {value!r}", fix)
        return value
    if sec.data.get("jitter") is not None:
        sec.fail(sec.key("jitter"), "is given next to a `transforms` mapping", "move it into `transforms: {jitter: ...}`")
    t = sec.section("transforms")
    scale = t.get("scale", list, [1.0, 1.0], fix="write it as [low, high], e.g. [0.9, 1.1]")
    if len(scale) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                                  for v in scale) or not 0 < scale[0] <= scale[1]:
        t.fail(t.key("scale"), f"invalid range {scale!r}", "write it as [low, high] with 0 < low <= high")
    out = TransformSettings(
        jitter=t.get("jitter", int, 0, check=lambda v: v >= 0, fix="use a whole number of pixels >= 0"),
        scale=(float(scale[0]), float(scale[1])),
        rotate=float(t.get("rotate", (int, float), 0.0, check=lambda v: 0 <= v <= 180,
                           fix="use degrees from 0 to 180")))
    t.finish()
    return out


def _stop_probability(sec: Section) -> float | None:
    """Off (None) unless set: on the demo, images stopped at different points gave noisier
    visualization evidence than a fixed number of steps (README, "Speed")."""
    value = sec.get("stop_probability", (int, float), None, check=lambda v: 0 < v < 1,
                    fix="use a probability in (0, 1), or `null` to run every step")
    return None if value is None else float(value)


def _concepts(sec: Section, discovering: bool = False) -> ConceptsConfig:
    layer = sec.get("layer", str, "auto")
    negatives = sec.path_value("negatives", must="dir")
    bank_sec = sec.section("bank")
    if not bank_sec.data and not discovering:  # discovery needs no concept list
        sec.fail(sec.key("bank"), "is empty", "add at least one concept: `arm: {examples: DIR, allowed_in: []}`, "
                 "or turn on `discover: true` to look for patterns without a concept list")
    bank = []
    for name in bank_sec.data:
        # names become file names in the report; names starting with "_" are the tool's own
        if not isinstance(name, str) or not CONCEPT_NAME.fullmatch(name):
            bank_sec.fail(bank_sec.key(str(name)), "is not a usable concept name",
                          "use letters, digits, '-', '_' or '.', starting with a letter or digit")
        c = bank_sec.section(name)
        examples = c.path_value("examples", must="dir")
        allowed = name_list(c, "allowed_in", "list class names where the concept belongs, or [] for none") or ()
        cutouts = c.path_value("cutouts", required=False, must="dir")
        c.finish()
        bank.append(ConceptConfig(str(name), examples, allowed, cutouts))
    out = ConceptsConfig(
        layer=layer, negatives=negatives, bank=tuple(bank),
        max_examples=sec.get("max_examples", int, 200, check=within(4, MAX_EXAMPLES),
                             fix=f"use a whole number from 4 to {MAX_EXAMPLES}"),
        random_directions=sec.get("random_directions", int, 500, check=within(20, MAX_RANDOM_DIRECTIONS),
                                  fix=f"use a whole number from 20 to {MAX_RANDOM_DIRECTIONS}"),
        probes=sec.path_value("probes", required=False, must="dir"),
        auto_cutouts=sec.get("auto_cutouts", bool, default=True),
        control=sec.get("control", str, "mask", check=lambda v: v in ("mask", "footprint"),
                        fix="use `mask` (the cutout's own alpha) or `footprint` (a blob of the same place and opacity)"),
    )
    with_cutouts = [c.name for c in bank if c.cutouts is not None]
    if with_cutouts and out.probes is None:
        sec.fail(sec.key("probes"), f"is missing but concept {with_cutouts[0]!r} has cutouts",
                 "give `probes:` a folder of in-distribution images (any classes) to paste the cutouts onto")
    sec.finish()
    return out


def _level(sec: Section, default: GateLevel) -> GateLevel:
    values = {}
    for name, value in default.__dict__.items():
        if name.endswith("max_p"):
            got = sec.get(name, (int, float), value, check=lambda v: 0 < v <= 1, fix="use a probability in (0, 1]")
        else:
            got = sec.get(name, (int, float), value, check=within(0, 1e6), fix="use a finite effect size >= 0")
        values[name] = float(got)
    sec.finish()
    return GateLevel(**values)


def _gate(sec: Section) -> GateConfig:
    evidence = sec.get("evidence", str, "both", check=lambda v: v in EVIDENCE, fix=f"use one of: {', '.join(EVIDENCE)}")
    # The visualization test compares one concept direction with random ones, so it cannot reach
    # small p-values after correction; by default it is judged on its effect alone (see README).
    fail = _level(sec.section("fail"), GateLevel(cue_max_p=0.01, cue_min_effect=1.0, vis_max_p=1.0, vis_min_effect=1.0))
    warn = _level(sec.section("warn"), GateLevel(cue_max_p=0.05, cue_min_effect=0.5, vis_max_p=1.0, vis_min_effect=0.5))
    # a baseline that does not exist is not a config error: it is an explicit state of the run
    raw = sec.get("baseline", str, fix="give the path of the last released model's audit.json")
    baseline = (sec.file.parent / raw).resolve() if raw else None
    tol = sec.section("baseline_tolerance")
    causal_tol = float(tol.get("causal", (int, float), DEFAULT_TOLERANCE["causal"], check=lambda v: 0 <= v <= 1,
                               fix="use a flip difference in [0, 1]"))
    shift_tol = float(tol.get("shift", (int, float), DEFAULT_TOLERANCE["shift"], check=lambda v: 0 <= v <= 2,
                              fix="use a shift in [0, 2] logit spreads"))
    abs_tol = float(tol.get("abs", (int, float), DEFAULT_TOLERANCE["abs"], check=within(0, 1e6),
                            fix="use a finite effect size >= 0"))
    rel_tol = float(tol.get("rel", (int, float), DEFAULT_TOLERANCE["rel"], check=within(0, 1e6),
                            fix="use a finite fraction >= 0"))
    tol.finish()
    on_missing = sec.get("baseline_missing", str, "fail", check=lambda v: v in ("fail", "warn"),
                         fix="use `fail` or `warn`")
    causal = sec.section("causal")
    causal_fail = _causal_level(causal.section("fail"), CausalLevel(0.01, 0.15, SHIFT_FAIL))
    causal_warn = _causal_level(causal.section("warn"), CausalLevel(0.05, 0.05, SHIFT_WARN))
    causal.finish()
    observational_can_fail = sec.get("observational_can_fail", bool, default=False)
    sec.finish()
    return GateConfig(evidence, fail, warn, baseline, abs_tol, rel_tol, on_missing, causal_fail, causal_warn,
                      observational_can_fail, causal_tol, shift_tol)


def _causal_level(sec: Section, default: CausalLevel) -> CausalLevel:
    out = CausalLevel(
        max_p=float(sec.get("max_p", (int, float), default.max_p, check=lambda v: 0 < v <= 1,
                            fix="use a probability in (0, 1]")),
        min_flip=float(sec.get("min_flip", (int, float), default.min_flip, check=lambda v: 0 <= v <= 1,
                               fix="use a share of probe images in [0, 1]")),
        min_shift=optional_number(sec, "min_shift", default.min_shift, lambda v: 0 < v <= 1,
                                   "use a shift in (0, 1] logit spreads, or `null` to let only flips decide"))
    sec.finish()
    return out


def dream_settings(sec: Section, defaults: DreamSettings, seed: int | None = None) -> DreamSettings:
    out = DreamSettings(
        octaves=sec.get("octaves", int, defaults.octaves, check=within(1, 12), fix="use a whole number from 1 to 12"),
        octave_scale=float(sec.get("octave_scale", (int, float), defaults.octave_scale, check=within(1, 4),
                                   fix="use a number from 1 to 4, e.g. 1.4")),
        steps=sec.get("steps", int, defaults.steps, check=within(1, MAX_STEPS),
                      fix=f"use a whole number from 1 to {MAX_STEPS}"),
        step_size=float(sec.get("step_size", (int, float), defaults.step_size, check=lambda v: 0 < v <= 1,
                                fix="use a number in (0, 1], e.g. 0.02")),
        smoothing=float(sec.get("smoothing", (int, float), defaults.smoothing, check=within(0, 1e6),
                                fix="use a number from 0 (off) to 1e6")),
        jitter=sec.get("jitter", int, defaults.jitter, check=within(0, 1024), fix="use pixels from 0 to 1024"),
        seed=seed if seed is not None else sec.get("seed", int, defaults.seed, check=within(0, MAX_SEED),
                                                   fix=f"use a whole number from 0 to {MAX_SEED}"),
        memory_budget_mb=sec.get("memory_budget_mb", int, defaults.memory_budget_mb, check=within(16, 1_048_576),
                                 fix="use megabytes from 16 to 1048576"),
    )
    return out


def _gallery(top: Section, seed: int, budget_mb: int) -> GalleryConfig | None:
    if top.has("layer_gallery") and top.data["layer_gallery"] is False:
        top.used.add("layer_gallery")
        return None
    sec = top.section("layer_gallery")
    layers = names_or_keyword(sec, "layers", "auto", "layer names")
    count = sec.get("count", int, 4, check=lambda v: 1 <= v <= 16, fix="use a whole number from 1 to 16")
    settings = dream_settings(sec, DreamSettings(octaves=3, steps=24, jitter=4, memory_budget_mb=budget_mb), seed=seed)
    sec.finish()
    return GalleryConfig(layers, count, settings)


def parse_report(sec: Section, file: Path) -> ReportConfig:
    out = sec.get("out", str, "../reports/" + file.stem)
    title = sec.get("title", str, f"Audit of {file.stem}")
    sec.finish()
    return ReportConfig((file.parent / out).resolve(), title)


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
    from audit.config.discover import parse_discover

    discover = parse_discover(top)
    concepts = _concepts(top.section("concepts"), discovering=discover is not None)
    if discover is not None and discover.probes is None and concepts.probes is None:
        raise UserError(f"{file}: discover: needs probe images in one sub-folder per class; give `discover.probes:` "
                        "(or `concepts.probes:`) a folder such as a sample of your validation set")
    gate = _gate(top.section("gate"))
    gallery = _gallery(top, visualize.seed, visualize.memory_budget_mb)
    report = parse_report(top.section("report"), file)
    top.used.add("execution")
    execution = parse_execution(top.data.get("execution"), str(file))
    top.finish()
    # without names (an application's ImageNet head), classes are called by their index: "0", "1", ...
    for key, names in [("visualize.classes", visualize.classes or ())] + [
            (f"concepts.bank.{c.name}.allowed_in", c.allowed_in) for c in concepts.bank]:
        if model.classes is not None:
            check_class_names(file, model.classes, key, names)
        elif not all(n.isdigit() for n in names):
            raise UserError(f"{file}: {key}: the model's classes are not named; use class indices "
                            "or add `model.classes_file`")
    return Config(file.resolve(), hashlib.sha256(text).hexdigest(), data, model, visualize, concepts, gate,
                  gallery, report, execution, discover)
