"""The visualization budget (docs/guide.md, "Visualization budget"): a model with more classes than the
budget can visualize in full still gets an audit, every class gets an image, the classes a test
implicates get the full treatment, and the report says what was skipped."""

import json

import pytest

import audit
from audit.visualize import budget
from conftest import ROOT

FAST = {"visualize": {"restarts": 2, "steps": 32}, "layer_gallery": False}
CLASSES = ["dumbbell", "barbell", "kettlebell", "ball", "racket", "bottle"]


def test_a_model_that_fits_the_budget_gets_the_full_treatment_for_every_class():
    p = budget.plan(n_classes=10, restarts=8, steps=128, raw_images=1, budget=40_000, preview_steps=32)
    assert not p.previews and p.full_cost == 10 * 9 * 128


def test_over_budget_every_class_gets_a_preview_and_implicated_classes_come_first():
    p = budget.plan(n_classes=1000, restarts=8, steps=128, raw_images=1, budget=40_000, preview_steps=32)
    assert p.previews and p.preview_steps == 32
    names = [f"c{i}" for i in range(1000)]
    implicated, sampled = budget.choose_full(p, names, ["c900", "c5"], sample=8, seed=0, per_class=9 * 128)
    room = (40_000 - 1000 * 32) // (9 * 128)  # what the previews left: 6 full classes
    assert implicated == ["c5", "c900"] and len(sampled) == room - 2
    assert not set(sampled) & {"c5", "c900"}
    # the sample is seeded: the same config picks the same classes, another seed others
    assert budget.choose_full(p, names, ["c900", "c5"], 8, 0, 9 * 128)[1] == sampled
    assert budget.choose_full(p, names, ["c900", "c5"], 8, 1, 9 * 128)[1] != sampled


def test_implicated_classes_that_do_not_fit_are_named_in_the_statement():
    p = budget.plan(n_classes=100, restarts=8, steps=128, raw_images=0, budget=5_000, preview_steps=32)
    implicated, sampled = budget.choose_full(p, [f"c{i}" for i in range(100)], ["c1", "c2", "c3"], 8, 0, 1024)
    assert implicated == ["c1"] and sampled == []
    text = budget.statement(p, 100, ["c1", "c2", "c3"], implicated, sampled, spent=4_224)
    assert "2 implicated class(es) did not fit" in text and "c2, c3" in text and "visualize.budget" in text


def test_a_budget_below_one_preview_per_class_is_stretched_and_says_so():
    p = budget.plan(n_classes=1000, restarts=8, steps=128, raw_images=0, budget=1_000, preview_steps=32)
    assert p.preview_steps == budget.MIN_PREVIEW_STEPS
    assert "was exceeded" in budget.statement(p, 1000, [], [], [], spent=8_000)


@pytest.fixture(scope="module")
def budgeted(tmp_path_factory):
    """The demo's shortcut model audited with a budget too small for its 6 classes x 2 x 32."""
    out = tmp_path_factory.mktemp("budget") / "report"
    cfg = audit.load_config(ROOT / "configs" / "demo.yaml",
                            overrides={**FAST, "visualize": {**FAST["visualize"], "budget": 500, "full_sample": 1,
                                                             "preview_steps": 16}})
    return audit.run(cfg, out=out, history=None), out


@pytest.mark.slow
def test_over_budget_the_audit_still_finds_the_shortcut_and_shows_every_class(budgeted):
    result, out = budgeted
    data = json.loads((out / "audit.json").read_text())
    assert result.verdict == "fail" and ("dumbbell", "arm") in {(f["class_name"], f["concept"])
                                                               for f in data["findings"] if f["level"] == "fail"}
    classes = {c["name"]: c for c in data["visualization"]["classes"]}
    assert list(classes) == CLASSES  # every class, in the model's order
    assert classes["dumbbell"]["treatment"] == "full" and len(classes["dumbbell"]["images"]) == 2
    previews = [c for c in classes.values() if c["treatment"] == "preview"]
    assert previews and all(len(c["images"]) == 1 and c["steps_taken"] == [16] for c in previews)
    for c in classes.values():
        assert all((out / rel).is_file() for rel in c["images"])
    b = data["visualization"]["budget"]
    # the failing class first, then classes with warnings (worst first), as far as the budget goes
    assert b["implicated"][0] == "dumbbell" and b["preview_steps"] == 16
    assert set(b["implicated"]) <= {f["class_name"] for f in data["findings"]}
    # spent = what the loop ran: 6 previews x 16, each full class 2 x 32 + 1 raw x 32
    assert b["spent"] == 6 * 16 + (len(b["implicated"]) + len(b["sampled"])) * 3 * 32


@pytest.mark.slow
def test_over_budget_every_output_says_what_was_skipped(budgeted):
    _, out = budgeted
    said = json.loads((out / "audit.json").read_text())["visualization"]["budget"]["statement"]
    assert "show their preview only" in said
    assert said in (out / "summary.md").read_text()
    assert said in (out / "junit.xml").read_text()
    assert "Visualization budget:" in (out / "index.html").read_text()


def test_budget_null_means_no_cap_and_a_bad_budget_names_the_key():
    cfg = audit.load_config(ROOT / "configs" / "demo.yaml", overrides={"visualize": {"budget": None}})
    assert cfg.visualize.budget is None
    with pytest.raises(audit.UserError, match=r"visualize\.budget"):
        audit.load_config(ROOT / "configs" / "demo.yaml", overrides={"visualize": {"budget": 0}})
