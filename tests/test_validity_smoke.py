"""The validity benchmark's smoke subset, end to end through the CLI: a plain CNN trained with
every cue perfectly correlated with its class (rho = 1) must fail the gate on each cue it
relies on (measured by pasting the cue onto held-out images), and the same CNN trained with the
cues uncorrelated (rho = 0, the control) must raise nothing."""

import pytest
import json
import subprocess
import sys

from conftest import ROOT


@pytest.mark.slow
def test_smoke_subset_catches_planted_cues_and_stays_quiet_on_the_control(tmp_path):
    out = tmp_path / "validity.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "validity" / "run.py"), "--smoke",
                           "--cache", str(tmp_path / "cache"), "--out", str(out)],
                          capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    rows = [r for r in result["rows"] if r["variant"] == "default"]
    planted = [r for r in rows if r["planted"] and r["rho"] == 1.0]
    assert len(planted) == 5
    relied_on = [r for r in planted if r["truth_kind"] == "relying"]  # the exact cue moves >= 25 points
    assert len(relied_on) >= 3, "the rho = 1 model should rely on most cues"
    assert all(r["level"] == "fail" for r in relied_on)
    control = [r for r in rows if r["rho"] == 0.0]
    assert len(control) == 30 and not any(r["level"] == "fail" for r in control)
    # no pair the exact cue moves by less than 2 points fails, on either split of the models
    summary = result["summary"]["default"]["all"]
    assert summary["false_fails_clean"] == 0 and summary["recall_relying"] == 1.0
    assert (out.with_suffix(".md")).read_text().startswith("Validity benchmark")
