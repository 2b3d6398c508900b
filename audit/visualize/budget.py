"""The visualization budget: who gets which treatment when a model has too many classes.

Visualizations are the one cost paid per class (every other test is a forward pass that scores
all classes at once). Counted in image-steps (one image, one gradient step), which do not depend
on the machine, so the same config plans the same work everywhere (timings would not).

* Everything fits: every class gets the full treatment (`restarts` x `steps`), as always.
* It does not: every class first gets a preview (one image, `preview_steps`), which is what the
  concept-in-visualization statistic compares across classes. Then the classes a test implicates
  (worst first), and a seeded sample of the others, get the full treatment while the budget lasts.
  What was not done is said in the report, not hidden.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_PREVIEW_STEPS = 8  # below this a preview is the random start, not a picture of the class


@dataclass(frozen=True)
class BudgetPlan:
    budget: int | None           # image-steps allowed (None: no cap)
    full_cost: int               # image-steps of the full treatment for every class
    preview_steps: int | None    # None: no preview pass (everything fits)

    @property
    def previews(self) -> bool:
        return self.preview_steps is not None


def plan(n_classes: int, restarts: int, steps: int, raw_images: int, budget: int | None,
         preview_steps: int) -> BudgetPlan:
    """Whether the full treatment of every class fits the budget, and if not, the preview length."""
    per_class = restarts * steps + raw_images * steps
    full_cost = n_classes * per_class
    if budget is None or full_cost <= budget:
        return BudgetPlan(budget, full_cost, None)
    # every class gets at least one image: a budget too small for that is stretched, and says so
    fit = max(MIN_PREVIEW_STEPS, min(preview_steps, budget // max(n_classes, 1)))
    return BudgetPlan(budget, full_cost, fit)


def implicated_classes(checks: list[dict]) -> list[str]:
    """Classes with a finding (fail or warn), worst first, each once."""
    from audit.result import sort_findings

    flagged = sort_findings([c for c in checks if c["level"] in ("fail", "warn")])
    return list(dict.fromkeys(c["class_name"] for c in flagged))


def choose_full(plan_: BudgetPlan, classes: list[str], implicated: list[str], sample: int, seed: int,
                per_class: int) -> tuple[list[str], list[str]]:
    """(implicated classes, sampled classes) that get the full treatment within what the previews
    left of the budget: implicated ones first, in the order given (worst first), then a seeded sample
    of the rest. Both lists keep the model's class order within them."""
    left = plan_.budget - len(classes) * plan_.preview_steps
    room = max(0, left // per_class)
    chosen_implicated = implicated[:room]
    others = [c for c in classes if c not in set(implicated)]
    rng = np.random.default_rng([seed, 23])
    picks = rng.permutation(len(others))[:max(0, min(sample, room - len(chosen_implicated)))]
    sampled = [others[i] for i in sorted(picks)]
    order = {c: i for i, c in enumerate(classes)}
    return sorted(chosen_implicated, key=order.get), sampled


def statement(plan_: BudgetPlan, n_classes: int, implicated: list[str], chosen_implicated: list[str],
              sampled: list[str], spent: int) -> str:
    """One plain line for every output: what was visualized, and what was skipped."""
    if not plan_.previews:
        return f"Every class got the full treatment ({spent:,} image-steps)."
    full = len(chosen_implicated) + len(sampled)
    missed = [c for c in implicated if c not in chosen_implicated]
    text = (f"Visualization budget {plan_.budget:,} image-steps (the full treatment of all {n_classes} classes would "
            f"take {plan_.full_cost:,}): every class got a {plan_.preview_steps}-step preview image; "
            f"{full} got the full treatment ({len(chosen_implicated)} implicated by a test, {len(sampled)} sampled); "
            f"{n_classes - full} show their preview only. Spent {spent:,} image-steps.")
    if missed:
        text += (f" {len(missed)} implicated class(es) did not fit and show a preview only: "
                 f"{', '.join(missed[:5])}{'...' if len(missed) > 5 else ''}; raise visualize.budget to see them.")
    if plan_.preview_steps * n_classes > plan_.budget:
        text += f" The budget is below one {plan_.preview_steps}-step preview per class, so it was exceeded."
    return text
