"""The verdict: the one place where pass, warn or fail, the reasons for it and the exit code are
decided, from the gate's checks, the levels of discovered patterns and the baseline comparison.

* A check at the fail (warn) level makes the verdict fail (warn).
* A discovered pattern fails the gate only at the fail level, which needs `discover.fail` in the
  config; `warn` and `review` patterns never change the verdict.
* A baseline comparison that finds a new finding, a regression, or a finding of the baseline this
  audit did not check (`not_checked`: a silenced check is not a resolved one) fails the gate; a requested
  baseline that cannot be compared fails it too (`gate.baseline_missing: fail`, the default), or
  turns a pass into a warning.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

EXIT_CODES = {"pass": 0, "warn": 0, "fail": 1}
UNCOMPARED = ("missing", "incompatible")  # baseline states: asked for, but not compared


@dataclass(frozen=True)
class Verdict:
    level: str                # pass | warn | fail
    reasons: tuple[str, ...]  # why, most important first; empty for a clean pass

    @property
    def exit_code(self) -> int:
        """What `audit run` exits with: 0 pass or warn, 1 the gate failed."""
        return EXIT_CODES[self.level]


def decide(check_levels: Iterable[str], discovered_levels: Iterable[str] = (),
           baseline: dict | None = None) -> Verdict:
    """`baseline`: audit.json's `baseline` block (gate/baseline.py's `baseline_section`): its
    `state`, `fails_gate` and `reason`; None when no comparison was asked for."""
    levels = list(check_levels)
    level = "fail" if "fail" in levels else "warn" if "warn" in levels else "pass"
    reasons = [f"{n} finding(s) at the {lv} level" for lv in ("fail", "warn") if (n := levels.count(lv))]
    failing = list(discovered_levels).count("fail")
    if failing:
        reasons.append(f"{failing} discovered pattern(s) at the fail level")
        level = "fail"
    if baseline is not None:
        state = baseline["state"]
        if state == "compared" and baseline["fails_gate"]:
            reasons.append(f"baseline: {baseline['reason']}")
        elif state in UNCOMPARED:
            reasons.append(f"baseline {state}: {baseline['reason']}")
        if baseline["fails_gate"]:
            level = "fail"
        elif state in UNCOMPARED and level == "pass":
            level = "warn"
    return Verdict(level, tuple(reasons))
