"""The `gate:` section: the thresholds that turn statistics into pass / warn / fail, the causal
test's thresholds (which `discover.warn` / `discover.fail` read too), and the baseline tolerance."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from audit.config.reader import Section, optional_number, within

# How far the deciding statistic may rise before it counts as a regression: max(moves, rel x
# |baseline value|) for a check a paste test decides, max(abs, rel x |baseline value|) for an
# observational one. Set from honest retrains of the demo models (benchmarks/retrain, docs/evidence.md).
DEFAULT_TOLERANCE = {"moves": 6.0, "abs": 3.5, "rel": 0.5}
EVIDENCE = ("visualization", "cue", "both", "either")


@dataclass(frozen=True)
class GateLevel:
    cue_max_p: float
    cue_min_effect: float
    vis_max_p: float
    vis_min_effect: float


@dataclass(frozen=True)
class CausalLevel:
    """Thresholds of a paste test (causal.py, inclass.py) for one level: the points of probes the
    concept moves into the class beyond the control paste, or (warn only) the class's log-odds rise,
    each with its Holm-adjusted p. The gate's causal checks and `discover.warn` / `discover.fail` read them."""

    max_p: float                        # Holm-adjusted p of the paired test
    min_moves: float                    # points of predictions moved into the class, beyond the control paste
    min_log_odds: float | None = None   # "responds": the class's log-odds rise (nats); None = off

    def reached(self, m: dict, p_moves: float, p_log_odds: float) -> str | None:
        """"moves" or "responds" when a probe set's measures `m` (causal.Measures.at) reach this
        level, else None. Responding needs the class's log-odds to rise by `min_log_odds` both on its
        own and beyond the other classes' rise, and its probability to rise."""
        if p_moves <= self.max_p and m["moves"] >= self.min_moves:
            return "moves"
        if (self.min_log_odds is not None and p_log_odds <= self.max_p and m["prob_rise"] > 0
                and min(m["log_odds"], m["log_odds_beyond"]) >= self.min_log_odds):
            return "responds"
        return None


# The defaults of gate.causal (and of discover.warn / discover.fail when they are turned on). Fail:
# the highest threshold that kept 100% recall with no false fail on the validity benchmark's
# training-seed-0 models (hand cutouts), checked on its seed-1 models (docs/evidence.md, "Validity").
# Log-odds warn: 0.5 nats, the largest that still flags all five published watermark classes on
# EfficientNet-Lite0 (0.60-1.08 nats there; 0.3 warned on 6% of the benchmark's clean pairs, 0.5 on 5%).
# A log-odds rise alone never fails.
CAUSAL_FAIL = CausalLevel(0.01, 12.0)
CAUSAL_WARN = CausalLevel(0.05, 5.0, 0.5)


@dataclass(frozen=True)
class GateConfig:
    evidence: str
    fail: GateLevel
    warn: GateLevel
    baseline: Path | None = None     # the last released model's audit.json
    # a check's deciding statistic may rise this much (effect units; paste-tested checks: baseline_moves
    # points) or `rel` x its baseline value, whichever is larger (baseline.py)
    baseline_abs: float = DEFAULT_TOLERANCE["abs"]
    baseline_rel: float = DEFAULT_TOLERANCE["rel"]
    baseline_missing: str = "fail"   # what a requested but missing/incompatible baseline does
    causal_fail: CausalLevel = CAUSAL_FAIL  # decide checks that have a causal test
    causal_warn: CausalLevel = CAUSAL_WARN
    observational_can_fail: bool = False  # without a causal test a check reaches `warn` at most
    baseline_moves: float = DEFAULT_TOLERANCE["moves"]        # points of probes moved

    @property
    def baseline_tolerance(self) -> dict:
        return {"moves": self.baseline_moves, "abs": self.baseline_abs, "rel": self.baseline_rel}


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
    moves_tol = float(tol.get("moves", (int, float), DEFAULT_TOLERANCE["moves"], check=lambda v: 0 <= v <= 100,
                              fix="use percentage points of probes in [0, 100]"))
    abs_tol = float(tol.get("abs", (int, float), DEFAULT_TOLERANCE["abs"], check=within(0, 1e6),
                            fix="use a finite effect size >= 0"))
    rel_tol = float(tol.get("rel", (int, float), DEFAULT_TOLERANCE["rel"], check=within(0, 1e6),
                            fix="use a finite fraction >= 0"))
    tol.finish()
    on_missing = sec.get("baseline_missing", str, "fail", check=lambda v: v in ("fail", "warn"),
                         fix="use `fail` or `warn`")
    causal = sec.section("causal")
    causal_fail = parse_causal_level(causal.section("fail"), CAUSAL_FAIL, log_odds_allowed=False)
    causal_warn = parse_causal_level(causal.section("warn"), CAUSAL_WARN, log_odds_allowed=True)
    causal.finish()
    observational_can_fail = sec.get("observational_can_fail", bool, default=False)
    sec.finish()
    return GateConfig(evidence, fail, warn, baseline, abs_tol, rel_tol, on_missing, causal_fail, causal_warn,
                      observational_can_fail, moves_tol)


def parse_causal_level(sec: Section, default: CausalLevel, log_odds_allowed: bool) -> CausalLevel:
    """`max_p`, `min_moves` and (where `log_odds_allowed`: a warn level) `min_log_odds` over `default`;
    `min_log_odds: null` turns the log-odds warning off."""
    max_p = float(sec.get("max_p", (int, float), default.max_p, check=lambda v: 0 < v <= 1,
                          fix="use a probability in (0, 1]"))
    min_moves = float(sec.get("min_moves", (int, float), default.min_moves, check=lambda v: 0 <= v <= 100,
                              fix="use percentage points of probes in [0, 100]"))
    min_log_odds = None
    if log_odds_allowed:
        min_log_odds = optional_number(sec, "min_log_odds", default.min_log_odds, lambda v: 0 < v <= 100,
                                       "use a log-odds rise in nats (> 0), or `null` to warn on moved predictions only")
    out = CausalLevel(max_p, min_moves, min_log_odds)
    sec.finish()
    return out
