"""Probes in the layout Keras users already have: one sub-folder per class (as
keras.utils.image_dataset_from_directory reads it); flat folders keep working."""

import json
import shutil

import pytest
import yaml

from conftest import ASSETS, ROOT, run_cli

PROBES = ASSETS / "concepts" / "_probes"


def _class_folders(dest, rename=None):
    for f in sorted(PROBES.iterdir()):  # the demo's probes are named <class>_<n>.png
        cls = f.name.rsplit("_", 1)[0]
        cls = (rename or {}).get(cls, cls)
        (dest / cls).mkdir(parents=True, exist_ok=True)
        shutil.copy(f, dest / cls / f.name)
    return dest


def _demo_config(tmp_path, probes):
    cfg = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text())
    for c in cfg["concepts"]["bank"].values():
        for key in ("examples", "cutouts"):
            c[key] = str((ROOT / "configs" / c[key]).resolve())
    cfg["model"]["path"] = str((ROOT / "configs" / cfg["model"]["path"]).resolve())
    cfg["concepts"]["negatives"] = str((ROOT / "configs" / cfg["concepts"]["negatives"]).resolve())
    cfg["concepts"]["probes"] = str(probes)
    cfg["visualize"].update(restarts=2, steps=16)
    cfg["layer_gallery"] = False
    cfg["report"]["out"] = str(tmp_path / "out")
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_class_folders_give_per_class_accuracy_in_every_output(tmp_path):
    cfg = _demo_config(tmp_path, _class_folders(tmp_path / "probes"))
    proc = run_cli("validate", cfg)
    assert proc.returncode == 0 and "90 probes in 6 class folders" in proc.stdout, proc.stderr
    proc = run_cli("run", cfg, "--quiet", "--no-history")
    assert proc.returncode == 1, proc.stderr
    result = json.loads((tmp_path / "out" / "audit.json").read_text())
    probes = result["concepts"]["probes"]
    assert probes["layout"] == "class_folders" and probes["count"] == 90
    assert [c["name"] for c in probes["classes"]] == list(result["model"]["classes"])
    assert all(c["count"] == 15 for c in probes["classes"]) and probes["accuracy"] > 0.7
    assert "probe-accuracy" in (tmp_path / "out" / "index.html").read_text()
    assert "top-1 accuracy" in (tmp_path / "out" / "summary.md").read_text()


@pytest.mark.parametrize("layout, message", [
    ("unknown class", "sub-folder 'dumbell' of"),
    ("mixed", "holds both images and sub-folders"),
    ("too few", "only 6 images in the class sub-folders"),
])
def test_validate_refuses_the_probe_folders_run_would_refuse(tmp_path, layout, message):
    probes = tmp_path / "probes"
    if layout == "unknown class":
        _class_folders(probes, rename={"dumbbell": "dumbell"})
    elif layout == "mixed":
        _class_folders(probes)
        shutil.copy(PROBES / "ball_000.png", probes / "stray.png")
    else:
        for cls in ("ball", "bottle"):
            (probes / cls).mkdir(parents=True)
            for i in range(3):
                shutil.copy(PROBES / f"{cls}_{i:03d}.png", probes / cls / f"{i}.png")
    cfg = _demo_config(tmp_path, probes)
    for command in ("validate", "run"):
        proc = run_cli(command, cfg, *(("--quiet", "--no-history") if command == "run" else ()))
        assert proc.returncode == 2 and message in proc.stderr and "concepts.probes" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()
