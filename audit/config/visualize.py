"""The `visualize:` section (class visualizations: restarts, steps, parameterization, transforms,
budget) and the DeepDream settings that `audit dream` and the report's layer gallery share."""

from __future__ import annotations

import math
from dataclasses import dataclass

from audit.config.reader import Section, names_or_keyword, within
from audit.config.yaml_input import short_repr

# Upper bounds that stop a typo (or a hostile config) from asking for days of work or
# gigabytes of memory before anything is checked; far above any sensible audit.
MAX_RESTARTS = 1000
MAX_RAW_IMAGES = MAX_RESTARTS  # raw-mode images per class are made like restarts, so bounded like them
MAX_STEPS = 100_000
MAX_SEED = 2**32 - 1

# image-steps (one image, one gradient step) of class visualization an audit may spend by default:
# ~20 min of EfficientNet-Lite0 at 224 px on 2 cores; every model up to ~40 classes x 8 x 128 fits
DEFAULT_BUDGET = 40_000
PARAMETERIZATIONS = ("fourier", "pixels")
TRANSFORM_PRESETS = ("standard", "none")
DEFAULT_PARAMETERIZATION = "fourier"
DEFAULT_TRANSFORMS = "standard"


@dataclass(frozen=True)
class TransformSettings:
    """Random transforms of the image every step (audit/visualize/transforms.py)."""

    jitter: int = 0                         # shift, whole pixels in [-jitter, jitter]
    scale: tuple[float, float] = (1.0, 1.0)  # zoom factor range
    rotate: float = 0.0                     # degrees in [-rotate, rotate]


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
class DreamSettings:
    octaves: int = 4
    octave_scale: float = 1.4
    steps: int = 32          # per octave
    step_size: float = 0.02  # in [0, 1] pixel units, after gradient normalization
    smoothing: float = 0.0   # weight of penalties.total_variation subtracted from the objective (its units)
    jitter: int = 8          # random shift of the tile grid, pixels
    seed: int = 0
    memory_budget_mb: int = 2048  # bounds how many tiles go through the model per call


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
        raw_images=sec.get("raw_images", int, 1, check=within(0, MAX_RAW_IMAGES),
                           fix=f"use a whole number from 0 (none) to {MAX_RAW_IMAGES}"),
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
            sec.fail(sec.key("transforms"), f"invalid value {short_repr(value)}", fix)
        return value
    if sec.data.get("jitter") is not None:
        sec.fail(sec.key("jitter"), "is given next to a `transforms` mapping", "move it into `transforms: {jitter: ...}`")
    t = sec.section("transforms")
    scale = t.get("scale", list, [1.0, 1.0], fix="write it as [low, high], e.g. [0.9, 1.1]")
    if len(scale) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                                  for v in scale) or not 0 < scale[0] <= scale[1]:
        t.fail(t.key("scale"), f"invalid range {short_repr(scale)}", "write it as [low, high] with 0 < low <= high")
    out = TransformSettings(
        jitter=t.get("jitter", int, 0, check=lambda v: v >= 0, fix="use a whole number of pixels >= 0"),
        scale=(float(scale[0]), float(scale[1])),
        rotate=float(t.get("rotate", (int, float), 0.0, check=lambda v: 0 <= v <= 180,
                           fix="use degrees from 0 to 180")))
    t.finish()
    return out


def _stop_probability(sec: Section) -> float | None:
    """Off (None) unless set: on the demo, images stopped at different points gave noisier
    visualization evidence than a fixed number of steps (docs/performance.md, "Speed")."""
    value = sec.get("stop_probability", (int, float), None, check=lambda v: 0 < v < 1,
                    fix="use a probability in (0, 1), or `null` to run every step")
    return None if value is None else float(value)


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
