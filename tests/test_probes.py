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


@pytest.mark.slow
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
    # with labels, the concept is also pasted into each class's own images: the in-class test
    arm = next(c for c in result["checks"] if (c["class_name"], c["concept"]) == ("dumbbell", "arm"))
    assert all(m["counted"] == 15 for m in arm["inclass"].values())  # every dumbbell probe, in both probe sets
    assert max(m["moves"] for m in arm["inclass"].values()) >= 10, arm["inclass"]
    assert "in-class moves" in (tmp_path / "out" / "index.html").read_text()
    assert "inclass_hard_moves" in (tmp_path / "out" / "scores.csv").read_text().splitlines()[0]


def test_a_sub_folder_named_by_class_index_holds_that_class(tmp_path):
    # ImageNet's "cardboard box / carton" has a '/' and cannot be a folder name: its index can
    from audit.inputs.probes import scan_probes
    classes = ("dumbbell", "barbell", "kettlebell", "ball", "racket", "bottle")
    probes = _class_folders(tmp_path / "probes", rename={"barbell": "1"})
    found = scan_probes(probes, classes)
    assert sorted(found) == sorted(classes) and len(found["barbell"]) == 15
    assert all(p.parent.name == "1" for p in found["barbell"])
    proc = run_cli("validate", _demo_config(tmp_path, probes))
    assert proc.returncode == 0 and "90 probes in 6 class folders" in proc.stdout, proc.stderr


@pytest.mark.parametrize("layout, message", [
    ("unknown class", "sub-folder 'dumbell' of"),
    ("mixed", "holds both images and sub-folders"),
    ("too few", "only 6 images in the class sub-folders"),
    ("one class twice", "sub-folders '0' and 'dumbbell' of"),
])
@pytest.mark.slow
def test_validate_refuses_the_probe_folders_run_would_refuse(tmp_path, layout, message):
    probes = tmp_path / "probes"
    if layout == "unknown class":
        _class_folders(probes, rename={"dumbbell": "dumbell"})
    elif layout == "one class twice":  # class 0 is dumbbell
        _class_folders(probes)
        shutil.copytree(probes / "dumbbell", probes / "0")
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


@pytest.mark.slow
def test_a_wrong_pixel_range_stops_the_run_naming_model_input_range(tmp_path):
    # the demo model expects [0, 1]; at [-1, 1] it gets 28% of the labelled probes right (93% at [0, 1])
    cfg = _demo_config(tmp_path, _class_folders(tmp_path / "probes"))
    data = yaml.safe_load(cfg.read_text())
    data["model"]["input_range"] = [-1, 1]
    cfg.write_text(yaml.safe_dump(data))
    proc = run_cli("run", cfg, "--quiet", "--no-history")
    assert proc.returncode == 2, proc.stderr
    assert "model.input_range" in proc.stderr and "set `input_range: [0, 1]`" in proc.stderr
    assert not (tmp_path / "out").exists()


def _rescaling_model(path):
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1 / 255, name="rescaling")(inputs)  # not rescaling_1 on a second call
    x = keras.layers.Conv2D(8, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(8, 3, activation="relu")(x))
    keras.Model(inputs, keras.layers.Dense(6, activation="softmax")(x)).save(path)
    return path


@pytest.mark.slow
def test_the_input_range_is_read_from_a_rescaling_layer_and_a_contradiction_is_refused(tmp_path):
    from conftest import write_config

    model = _rescaling_model(tmp_path / "m.keras")
    cfg = write_config(tmp_path / "c.yaml", model, tmp_path / "out", steps=4, restarts=1)
    data = yaml.safe_load(cfg.read_text())
    data["model"].pop("input_range")  # read it from the model
    cfg.write_text(yaml.safe_dump(data))
    assert run_cli("validate", cfg).returncode == 0
    proc = run_cli("run", cfg, "--quiet", "--no-history")
    assert proc.returncode in (0, 1), proc.stderr
    model_info = json.loads((tmp_path / "out" / "audit.json").read_text())["model"]
    assert model_info["input_range"] == [0, 255] and model_info["input_range_source"] == "model layer"
    data["model"]["input_range"] = [0, 1]  # the mistake: this model rescales 0..255 itself
    data["report"]["out"] = str(tmp_path / "out2")
    cfg.write_text(yaml.safe_dump(data))
    proc = run_cli("run", cfg, "--quiet", "--no-history")
    assert proc.returncode == 2 and "model.input_range" in proc.stderr and "rescaling" in proc.stderr, proc.stderr
    assert "[0, 255]" in proc.stderr and not (tmp_path / "out2").exists()


@pytest.mark.slow
def test_a_model_near_chance_on_its_labelled_probes_is_said_on_the_console(tmp_path):
    # the probe images dealt into the class folders in turn: no pixel range or class order fits them
    probes = tmp_path / "probes"
    classes = ["dumbbell", "barbell", "kettlebell", "ball", "racket", "bottle"]
    for i, f in enumerate(sorted(PROBES.iterdir())):
        (probes / classes[i % 6]).mkdir(parents=True, exist_ok=True)
        shutil.copy(f, probes / classes[i % 6] / f.name)
    cfg = _demo_config(tmp_path, probes)
    proc = run_cli("run", cfg, "--no-history")
    assert proc.returncode in (0, 1), proc.stderr
    assert "probes: the model gets" in proc.stdout and "near chance" in proc.stdout
    result = json.loads((tmp_path / "out" / "audit.json").read_text())
    assert "near chance" in result["concepts"]["probes"]["sanity"]


def test_only_ascii_digits_name_a_class_by_index():
    """'²' and '①' pass str.isdigit() but not int(): such a folder is simply not an index."""
    from audit.inputs.probes import folder_class

    classes = ("dumbbell", "barbell", "kettlebell")
    assert folder_class("1", classes) == "barbell" and folder_class("1", None) == "1"
    assert [folder_class(name, c) for name in ("²", "①", "١") for c in (classes, None)] == [None] * 6
