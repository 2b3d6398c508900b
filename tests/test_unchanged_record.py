"""The demo's audit.json does not change when code is only moved or reshaped: every value of both
demo runs equals the recorded one (tests/assets/golden, re-recorded when the gate began to decide in
points of probes moved, issue #22), apart from timings and provenance. A change that is meant to alter results
re-records the files (`python tests/test_unchanged_record.py`) and says so in its commit."""

import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "assets" / "golden"
VOLATILE = ("timing_seconds", "provenance")


def normalized(audit_json: Path) -> dict:
    data = {k: v for k, v in json.loads(audit_json.read_text()).items() if k not in VOLATILE}
    return json.loads(json.dumps(data, sort_keys=True).replace(str(ROOT) + "/", "<ROOT>/"))


def differences(expected, actual, path="audit.json") -> list[str]:
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = [f"{path}.{k}: missing" for k in expected.keys() - actual.keys()]
        out += [f"{path}.{k}: unexpected" for k in actual.keys() - expected.keys()]
        return out + [d for k in expected.keys() & actual.keys()
                      for d in differences(expected[k], actual[k], f"{path}.{k}")]
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"{path}: {len(expected)} items recorded, {len(actual)} now"]
        return [d for k, (e, a) in enumerate(zip(expected, actual)) for d in differences(e, a, f"{path}[{k}]")]
    if isinstance(expected, float) and isinstance(actual, float) and math.isnan(expected) and math.isnan(actual):
        return []
    return [] if expected == actual else [f"{path}: recorded {str(expected)[:80]!r}, now {str(actual)[:80]!r}"]


@pytest.mark.slow
@pytest.mark.parametrize("run", ["shortcut_run", "control_run"])
def test_the_demo_record_is_unchanged_apart_from_timings(run, request):
    proc, out = request.getfixturevalue(run)
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    name = {"shortcut_run": "demo", "control_run": "demo_control"}[run]
    expected = json.loads((GOLDEN / f"{name}_audit.json").read_text())
    actual = normalized(out / "audit.json")
    # the report folder is the one thing the test chooses (--out); the config's own value is recorded
    found = differences(expected, actual)
    assert found == [], "\n".join(found[:40])


if __name__ == "__main__":  # re-record from `make demo`'s reports
    for name in ("demo", "demo_control"):
        data = normalized(ROOT / "reports" / name / "audit.json")
        (GOLDEN / f"{name}_audit.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    sys.exit(0)
