"""The Python API (docs/guide.md, "Python API"): `audit.run` and `audit.load_config`, as a notebook or a
training script calls them."""

import json
import subprocess
import sys

import pytest

import audit
from conftest import ROOT

FAST = {"visualize": {"restarts": 2, "steps": 16}, "layer_gallery": False}


def test_import_audit_and_load_config_do_not_import_tensorflow():
    code = ("import sys, audit; loaded = sorted(m for m in ('tensorflow', 'keras', 'numpy') if m in sys.modules); "
            "audit.load_config('configs/demo.yaml'); "
            "print(loaded, sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "[] []", proc.stdout + proc.stderr


def test_load_config_applies_overrides_and_names_the_file_and_key_of_a_mistake():
    cfg = audit.load_config(ROOT / "configs" / "demo.yaml", overrides=FAST)
    assert (cfg.visualize.restarts, cfg.visualize.steps, cfg.layer_gallery) == (2, 16, None)
    assert cfg.sha256 != audit.load_config(ROOT / "configs" / "demo.yaml").sha256  # provenance covers overrides
    with pytest.raises(audit.UserError, match=r"demo\.yaml: visualize\.stepz: unknown key; did you mean `steps`"):
        audit.load_config(ROOT / "configs" / "demo.yaml", overrides={"visualize": {"stepz": 3}})


@pytest.mark.slow
def test_run_returns_the_audit_json_data_with_verdict_exit_code_and_findings(tmp_path):
    control = audit.run(audit.load_config(ROOT / "configs" / "demo_control.yaml", overrides=FAST),
                        out=tmp_path / "control")
    assert isinstance(control, audit.AuditResult)
    # the control model moves no decision: nothing fails (a log-odds response may warn)
    assert (control.exit_code, control.passed) == (0, True) and control.verdict in ("pass", "warn")
    assert [f for f in control.findings if f["level"] == "fail"] == []
    assert all(f["decided_by"].endswith("_responds") for f in control.findings)
    assert control.report_dir == (tmp_path / "control").resolve()
    assert control.data == json.loads((tmp_path / "control" / "audit.json").read_text())
    assert control.history is None and sorted(p.name for p in tmp_path.iterdir()) == ["control"]

    shortcut = audit.run(audit.load_config(ROOT / "configs" / "demo.yaml", overrides=FAST), out=tmp_path / "candidate",
                         baseline=control.report_dir / "audit.json", history=tmp_path / "history")
    assert (shortcut.verdict, shortcut.exit_code, shortcut.passed) == ("fail", 1, False)
    assert [(f["class_name"], f["concept"]) for f in shortcut.findings if f["level"] == "fail"] == [("dumbbell", "arm")]
    assert shortcut.baseline["state"] == "compared" and shortcut.baseline["fails_gate"]
    assert shortcut["model"]["name"] == "demo_shortcut.keras"
    assert shortcut.history == tmp_path / "history" / "index.html" and shortcut.history.exists()
    assert "verdict='fail'" in repr(shortcut)


def test_bad_input_is_a_user_error_and_nothing_is_written(tmp_path):
    cfg = audit.load_config(ROOT / "configs" / "demo.yaml", overrides={**FAST, "concepts": {"layer": "no_such_layer"}})
    with pytest.raises(audit.UserError, match="no_such_layer"):
        audit.run(cfg, out=tmp_path / "r")
    assert not (tmp_path / "r").exists()
