"""The `gate:` section: the thresholds that turn statistics into pass / warn / fail, the causal
test's thresholds (which `discover.warn` / `discover.fail` read too), and the baseline tolerance."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from audit.config.reader import Section, optional_number, within

# How far the deciding statistic may rise before it counts as a regression: max(causal, shift or
# abs, rel x |baseline value|). Set from honest retrains of the demo models (benchmarks/retrain,
# docs/evidence.md), between the 95th and 99th percentiles of their absolute changes: the flip difference
# (`causal`) 0.034 / 0.077, the causal and in-class shifts (`shift`) 0.31-0.37 / 0.54-0.60.
DEFAULT_TOLERANCE = {"causal": 0.06, "shift": 0.45, "abs": 3.5, "rel": 0.5}
EVIDENCE = ("visualization", "cue", "both", "either")


@dataclass(frozen=True)
class GateLevel:
    cue_max_p: float
    cue_min_effect: float
    vis_max_p: float
    vis_min_effect: float


# Calibrated on the validity benchmark (no control model's check reaches 0.35) and on
# EfficientNet-Lite0 with a CJK stock-photo watermark (docs/evidence.md, "Validity").
SHIFT_FAIL, SHIFT_WARN = 0.5, 0.35


@dataclass(frozen=True)
class CausalLevel:
    """Thresholds of an insertion (paste) test: Holm-adjusted p, and flip difference or shift
    (either suffices). The gate's causal checks and `discover.warn` / `discover.fail` read them."""

    max_p: float      # Holm-adjusted p of the paired test on the per-probe shift
    min_flip: float   # flip rate of the concept paste minus that of the control paste
    min_shift: float | None = None  # or: the class's log-probability shift in logit spreads (causal.py);
                                    # None = only flips decide


# the defaults of gate.causal (and of discover.warn / discover.fail when they are turned on)
CAUSAL_FAIL = CausalLevel(0.01, 0.15, SHIFT_FAIL)
CAUSAL_WARN = CausalLevel(0.05, 0.05, SHIFT_WARN)


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
    causal_fail: CausalLevel = CAUSAL_FAIL  # decide checks that have a causal test
    causal_warn: CausalLevel = CAUSAL_WARN
    observational_can_fail: bool = False  # without a causal test a check reaches `warn` at most
    baseline_causal: float = DEFAULT_TOLERANCE["causal"]
    baseline_shift: float = DEFAULT_TOLERANCE["shift"]   # the causal and in-class shifts

    @property
    def baseline_tolerance(self) -> dict:
        return {"causal": self.baseline_causal, "shift": self.baseline_shift, "abs": self.baseline_abs,
                "rel": self.baseline_rel}


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


def parse_gate(sec: Section) -> GateConfig:
    evidence = sec.get("evidence", str, "both", check=lambda v: v in EVIDENCE, fix=f"use one of: {', '.join(EVIDENCE)}")
    # The visualization test compares one concept direction with random ones, so it cannot reach
    # small p-values after correction; by default it is judged on its effect alone (see docs/evidence.md).
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
    causal_fail = parse_causal_level(causal.section("fail"), CAUSAL_FAIL)
    causal_warn = parse_causal_level(causal.section("warn"), CAUSAL_WARN)
    causal.finish()
    observational_can_fail = sec.get("observational_can_fail", bool, default=False)
    sec.finish()
    return GateConfig(evidence, fail, warn, baseline, abs_tol, rel_tol, on_missing, causal_fail, causal_warn,
                      observational_can_fail, causal_tol, shift_tol)


def parse_causal_level(sec: Section, default: CausalLevel, shift_may_be_null: bool = True) -> CausalLevel:
    """`max_p`, `min_flip`, `min_shift` over `default`. `gate.causal` may set `min_shift: null` (only
    flips decide); `discover.warn` / `discover.fail` may not (null there means the default)."""
    max_p = float(sec.get("max_p", (int, float), default.max_p, check=lambda v: 0 < v <= 1,
                          fix="use a probability in (0, 1]"))
    min_flip = float(sec.get("min_flip", (int, float), default.min_flip, check=lambda v: 0 <= v <= 1,
                             fix="use a share of probe images in [0, 1]"))
    if shift_may_be_null:
        min_shift = optional_number(sec, "min_shift", default.min_shift, lambda v: 0 < v <= 1,
                                    "use a shift in (0, 1] logit spreads, or `null` to let only flips decide")
    else:
        min_shift = float(sec.get("min_shift", (int, float), default.min_shift, check=lambda v: 0 < v <= 1,
                                  fix="use a shift in (0, 1] logit spreads"))
    out = CausalLevel(max_p, min_flip, min_shift)
    sec.finish()
    return out
