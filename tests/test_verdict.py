"""The one verdict (gate/verdict.py): from the checks' levels, the discovered patterns' levels and
the baseline comparison; its reasons in that order, and the exit code."""

from audit.gate.verdict import decide


def _baseline(state, fails_gate, reason="why"):
    return {"state": state, "fails_gate": fails_gate, "reason": reason}


def test_the_worst_check_decides_and_each_level_is_a_reason():
    v = decide(["pass", "warn", "fail", "allowed", "warn"])
    assert (v.level, v.exit_code) == ("fail", 1)
    assert v.reasons == ("1 finding(s) at the fail level", "2 finding(s) at the warn level")
    assert decide(["pass", "warn"]).exit_code == 0 and decide(["allowed"]).level == "pass"
    assert decide([]).reasons == ()


def test_only_a_discovered_pattern_at_the_fail_level_changes_the_verdict():
    assert decide(["pass"], ["warn", "review"]).level == "pass"
    v = decide(["warn"], ["fail", "review", "fail"])
    assert (v.level, v.exit_code) == ("fail", 1)
    assert v.reasons == ("1 finding(s) at the warn level", "2 discovered pattern(s) at the fail level")


def test_a_baseline_that_fails_the_gate_fails_it_and_says_why_last():
    v = decide(["warn"], ["fail"], _baseline("compared", True, "new fail 'arm' in class 'x'"))
    assert v.level == "fail" and v.reasons[-1] == "baseline: new fail 'arm' in class 'x'"
    assert decide(["pass"], (), _baseline("compared", False)) == decide(["pass"])
    assert decide(["pass"], (), _baseline("none", False)) == decide(["pass"])


def test_a_baseline_that_cannot_be_compared_fails_or_turns_a_pass_into_a_warning():
    v = decide(["pass"], (), _baseline("missing", True, "x.json does not exist"))
    assert (v.level, v.reasons) == ("fail", ("baseline missing: x.json does not exist",))
    v = decide(["pass"], (), _baseline("incompatible", False, "schema 2"))
    assert (v.level, v.exit_code, v.reasons) == ("warn", 0, ("baseline incompatible: schema 2",))
    assert decide(["fail"], (), _baseline("missing", False)).level == "fail"  # never lowers a verdict
