"""`audit init MODEL [--probes DIR]` writes a starter config that passes `audit validate` as written."""

import pytest
import shutil

import yaml

from conftest import ASSETS, run_cli
from test_probes import _class_folders, _rescaling_model


@pytest.mark.slow
def test_init_reads_classes_from_probe_folders_and_the_range_from_the_model(tmp_path):
    model = _rescaling_model(tmp_path / "m.keras")
    probes = _class_folders(tmp_path / "val")
    out = tmp_path / "configs" / "mine.yaml"
    proc = run_cli("init", model, "--probes", probes, "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "input range read from `rescaling`" in proc.stdout
    cfg = yaml.safe_load(out.read_text())
    assert cfg["model"]["classes"] == sorted(["dumbbell", "barbell", "kettlebell", "ball", "racket", "bottle"])
    assert cfg["model"]["input_range"] == [0, 255]
    text = out.read_text()
    assert "# arm:" in text and "cutouts:" in text and "allowed_in:" in text  # the commented concept entry
    proc = run_cli("validate", out)
    assert proc.returncode == 0 and "90 probes in 6 class folders" in proc.stdout, proc.stderr
    # nothing is overwritten
    proc = run_cli("init", model, "--out", out)
    assert proc.returncode == 2 and "exists" in proc.stderr


@pytest.mark.slow
def test_init_without_probes_names_classes_by_index_and_validates(tmp_path):
    shutil.copy(ASSETS / "models" / "demo_shortcut.keras", tmp_path / "m.keras")
    out = tmp_path / "audit.yaml"
    proc = run_cli("init", tmp_path / "m.keras", "--out", out)
    assert proc.returncode == 0, proc.stderr
    cfg = yaml.safe_load(out.read_text())
    assert cfg["model"]["classes"] == [str(i) for i in range(6)] and "probes" not in cfg["concepts"]
    assert "CHECK" in out.read_text()  # no Rescaling layer: the range is the user's to confirm
    proc = run_cli("validate", out)
    assert proc.returncode == 0 and "observational evidence only" in proc.stdout, proc.stderr


@pytest.mark.slow
def test_a_run_stops_when_the_sorted_folder_names_are_not_the_model_s_class_order(tmp_path):
    # the demo model's outputs are [dumbbell, barbell, kettlebell, ball, racket, bottle]; `audit init`
    # names them after the sorted probe folders, as image_dataset_from_directory would: every name wrong
    shutil.copy(ASSETS / "models" / "demo_shortcut.keras", tmp_path / "m.keras")
    probes = _class_folders(tmp_path / "val")
    out = tmp_path / "audit.yaml"
    assert run_cli("init", tmp_path / "m.keras", "--probes", probes, "--out", out).returncode == 0
    assert "CHECK: the order of the model's outputs" in out.read_text()
    proc = run_cli("run", out, "--quiet", "--no-history")
    assert proc.returncode == 2 and "model.classes" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert "[dumbbell, barbell, kettlebell, ball, racket, bottle]" in proc.stderr
    assert not (tmp_path / "reports").exists()
    # with the order the message gives, the same config runs
    cfg = yaml.safe_load(out.read_text())
    cfg["model"]["classes"] = ["dumbbell", "barbell", "kettlebell", "ball", "racket", "bottle"]
    cfg["visualize"].update(restarts=1, steps=8)
    cfg["layer_gallery"] = False
    out.write_text(yaml.safe_dump(cfg))
    proc = run_cli("run", out, "--quiet", "--no-history")
    assert proc.returncode in (0, 1), proc.stderr


@pytest.mark.slow
def test_init_takes_the_class_names_from_a_file_when_the_probes_cover_some_classes(tmp_path):
    shutil.copy(ASSETS / "models" / "demo_shortcut.keras", tmp_path / "m.keras")
    names = tmp_path / "classes.txt"
    names.write_text("dumbbell\nbarbell\nkettlebell\nball\nracket\nbottle\n")
    probes = _class_folders(tmp_path / "val")
    for cls in ("racket", "bottle", "ball"):  # a validation sample of three of the six classes
        shutil.rmtree(probes / cls)
    (probes / "barbell").rename(probes / "1")  # a folder may be named by its class index
    out = tmp_path / "audit.yaml"
    proc = run_cli("init", tmp_path / "m.keras", "--probes", probes, "--out", out)
    assert proc.returncode == 2 and "--classes-file" in proc.stderr  # 3 folders, 6 outputs: says what to do
    proc = run_cli("init", tmp_path / "m.keras", "--probes", probes, "--classes-file", names, "--out", out)
    assert proc.returncode == 0, proc.stderr
    cfg = yaml.safe_load(out.read_text())
    assert cfg["model"]["classes_file"] == "classes.txt" and "classes" not in cfg["model"]
    proc = run_cli("validate", out)
    assert proc.returncode == 0 and "45 probes in 3 class folders" in proc.stdout, proc.stderr
    (probes / "dumbell").mkdir()  # a folder that is no class of the model
    out.unlink()
    proc = run_cli("init", tmp_path / "m.keras", "--probes", probes, "--classes-file", names, "--out", out)
    assert proc.returncode == 2 and "'dumbell'" in proc.stderr and not out.exists()


@pytest.mark.slow
@pytest.mark.parametrize("name", [
    "rescaling\nexecution: {backend: ray, address: '10.9.8.7:6379'}\n#",  # the case
    "rescaling\x85execution: {backend: ray, address: '10.9.8.7:6379'}\u2028x: 1\x7f",  # YAML's other line breaks
], ids=["newline", "other-line-breaks"])
def test_a_layer_name_cannot_inject_keys_into_the_starter_config_or_lines_onto_the_console(tmp_path, name):
    """The issue's case: a Rescaling layer named with a newline wrote `execution: {backend: ray,
    address: ...}` into the config as a top-level key (the next run would connect there)."""
    import keras

    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1 / 255, name=name)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, activation="relu")(x))
    keras.Model(inputs, keras.layers.Dense(6, activation="softmax")(x)).save(tmp_path / "m.keras")
    out = tmp_path / "audit.yaml"
    proc = run_cli("init", tmp_path / "m.keras", "--out", out)
    assert proc.returncode == 0, proc.stderr
    cfg = yaml.safe_load(out.read_text())
    assert sorted(cfg) == ["concepts", "model", "report", "visualize"] and cfg["model"]["input_range"] == [0, 255]
    assert "10.9.8.7" in out.read_text()  # the name is there, as text inside one comment line
    assert [line for line in out.read_text().splitlines() if "10.9.8.7" in line][0].lstrip().startswith(
        "input_range: [0, 255]  # read from the model's layer")
    lines = proc.stdout.splitlines()
    assert len(lines) == 2 and "input range read from `rescaling\\" in lines[0] and "10.9.8.7" in lines[0], lines
    proc = run_cli("validate", out)
    assert proc.returncode == 0, proc.stderr
