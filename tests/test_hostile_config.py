"""Hostile corpus: YAML files and config values. Each is refused by `audit run` before
TensorFlow is imported: exit 2, one bounded line, nothing written."""

import os
import shutil
import time

import pytest
import yaml

from conftest import run_cli
from hostile_helpers import CONCEPTS, assert_one_line, refused_untouched, tiny_config, write_yaml

BOMB = "".join(f"{c}: &{c} [{', '.join([f'*{p}'] * 9) if p else ', '.join(['lol'] * 9)}]\n"
               for p, c in zip([None, *"abcdefgh"], "abcdefghi"))  # 9^9 = 387 million items if expanded


def _yaml_text(tmp, text: bytes | str, name="c.yaml"):
    path = tmp / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def _base_text(tmp) -> str:
    return yaml.safe_dump(tiny_config(tmp), sort_keys=False)


YAML_CASES = [
    ("duplicate-trust-code", lambda t: _base_text(t).replace("model:\n", "model:\n  trust_code: false\n  trust_code: true\n"),
     ("trust_code' is given twice", "give each key once")),
    ("duplicate-section", lambda t: _base_text(t) + "visualize:\n  restarts: 2\n", ("'visualize' is given twice",)),
    ("duplicate-concept", lambda t: _base_text(t).replace(
        "    watermark:\n", f"    arm:\n      examples: {CONCEPTS / 'arm'}\n      allowed_in: [ball]\n    watermark:\n"),
     ("'arm' is given twice",)),
    ("alias-bomb-wrong-type", lambda t: BOMB + _base_text(t).replace("restarts: 1", "restarts: *i"),
     ("visualize.restarts: must be int",)),
    ("alias-bomb-class-list", lambda t: BOMB + _base_text(t).replace("  classes:\n", "  classes: *i\n  old_classes:\n"),
     ("model.classes: must be a list of names",)),
    ("non-utf8-bytes", lambda t: _base_text(t).encode() + b"# caf\xe9 (Latin-1)\n",
     ("not UTF-8 text",)),
    ("nul-byte", lambda t: _base_text(t).encode() + b"report:\x00\n", ("not UTF-8 text",)),
    ("python-object-tag", lambda t: _base_text(t) + "x: !!python/object/apply:os.system ['touch pwned']\n",
     ("not valid YAML",)),
    ("top-level-list", lambda t: "- model\n- visualize\n", ("must be a mapping",)),
    ("deeply-nested", lambda t: "a: " + "[" * 20000 + "]" * 20000 + "\n", ("YAML",)),
    ("unterminated", lambda t: "model: {path: [\n", ("not valid YAML",)),
    ("typo-trust-code", lambda t: _base_text(t).replace("model:\n", "model:\n  trust_cod: true\n"),
     ("unknown key", "trust_code")),
]


@pytest.mark.parametrize("make, words", [c[1:] for c in YAML_CASES], ids=[c[0] for c in YAML_CASES])
def test_hostile_yaml_is_refused_in_one_line(tmp_path, make, words):
    cfg = _yaml_text(tmp_path, make(tmp_path))
    started = time.monotonic()
    proc = refused_untouched(tmp_path, "run", cfg, words=words, timeout=60)
    assert time.monotonic() - started < 30  # the alias bomb used to take minutes and gigabytes
    assert len(proc.stderr) < 2500 and not (tmp_path / "pwned").exists()


def _set(section, key, value):
    def change(cfg):
        target = cfg
        for part in section.split("."):
            target = target.setdefault(part, {})
        target[key] = value
    return change


VALUE_CASES = [
    ("learning-rate-inf", _set("visualize", "learning_rate", float("inf")), "visualize.learning_rate: must be a finite"),
    ("learning-rate-1e300", _set("visualize", "learning_rate", 1e300), "visualize.learning_rate: invalid value"),
    ("learning-rate-nan", _set("visualize", "learning_rate", float("nan")), "visualize.learning_rate: must be a finite"),
    ("billion-restarts", _set("visualize", "restarts", 10**9), "visualize.restarts: invalid value 1000000000"),
    ("billion-steps", _set("visualize", "steps", 10**9), "visualize.steps"),
    ("billion-random-directions", _set("concepts", "random_directions", 10**9), "concepts.random_directions"),
    ("billion-max-examples", _set("concepts", "max_examples", 10**9), "concepts.max_examples"),
    ("terabyte-memory-budget", _set("visualize", "memory_budget_mb", 10**9), "visualize.memory_budget_mb"),
    ("huge-seed", _set("visualize", "seed", 2**64), "visualize.seed"),
    ("huge-jitter", _set("visualize", "jitter", 10**6), "visualize.jitter"),
    ("total-variation-1e300", _set("visualize", "total_variation", 1e300), "visualize.total_variation"),
    ("infinite-min-effect", _set("gate.fail", "cue_min_effect", float("inf")), "gate.fail.cue_min_effect"),
    ("nan-min-flip", _set("gate.causal.fail", "min_flip", float("nan")), "gate.causal.fail.min_flip"),
    ("infinite-tolerance", _set("gate.baseline_tolerance", "abs", float("inf")), "gate.baseline_tolerance.abs"),
    ("gallery-billion-steps", lambda c: c.update(layer_gallery={"steps": 10**9}), "layer_gallery.steps"),
    ("gallery-octaves", lambda c: c.update(layer_gallery={"octaves": 10**6}), "layer_gallery.octaves"),
    ("stop-probability-one", _set("visualize", "stop_probability", 1.0), "visualize.stop_probability"),
    ("huge-application-input", lambda c: c["model"].update(application="ResNet50", path=None,
                                                           input_size=[100000, 100000]), "model.input_size"),
    ("huge-class-name", lambda c: c["model"].update(classes=["x" * 10**6, "x" * 10**6]), "is listed twice"),
]


@pytest.mark.parametrize("change, words", [c[1:] for c in VALUE_CASES], ids=[c[0] for c in VALUE_CASES])
def test_out_of_range_values_are_refused_up_front(tmp_path, change, words):
    cfg = tiny_config(tmp_path)
    change(cfg)
    proc = refused_untouched(tmp_path, "run", write_yaml(tmp_path, cfg), words=(words,), timeout=60)
    assert len(proc.stderr) < 2500


def test_a_classes_file_with_a_byte_order_mark(tmp_path):
    """Windows editors write a BOM; it used to become part of the first class name."""
    (tmp_path / "classes.txt").write_bytes("\ufeffdumbbell\nbarbell\nkettlebell\nball\nracket\nbottle\n".encode())
    cfg = tiny_config(tmp_path, visualize={"classes": ["dumbbell"]})
    cfg["model"].pop("classes")
    cfg["model"]["classes_file"] = str(tmp_path / "classes.txt")
    proc = run_cli("validate", write_yaml(tmp_path, cfg))
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "out").exists()


def _fifo_in(folder_name):
    def make(tmp, cfg):
        folder = tmp / folder_name
        folder.mkdir()
        for p in sorted((CONCEPTS / "arm").iterdir())[:5]:
            (folder / p.name).write_bytes(p.read_bytes())
        os.mkfifo(folder / "zz_pipe.png")
        cfg["concepts"]["bank"]["arm"]["examples"] = str(folder)
    return make


def _dangling_link(tmp, cfg):
    folder = tmp / "neg"
    folder.mkdir()
    for p in sorted((CONCEPTS / "_random").iterdir())[:12]:
        (folder / p.name).write_bytes(p.read_bytes())
    (folder / "gone.png").symlink_to(tmp / "nowhere.png")
    cfg["concepts"]["negatives"] = str(folder)


def _folder_named_png(tmp, cfg):
    folder = tmp / "probes"
    shutil.copytree(CONCEPTS / "_probes", folder)
    (folder / "inner.png").mkdir()
    cfg["concepts"]["probes"] = str(folder)


def _fifo_classes_file(tmp, cfg):
    os.mkfifo(tmp / "classes.txt")
    cfg["model"].pop("classes")
    cfg["model"]["classes_file"] = str(tmp / "classes.txt")


FOLDER_ENTRY_CASES = [
    ("fifo-in-concept-folder", _fifo_in("arm_copy"), ("concepts.bank.arm.examples", "zz_pipe.png", "not a regular file")),
    ("dangling-symlink-in-negatives", _dangling_link, ("concepts.negatives", "gone.png")),
    ("folder-named-like-an-image", _folder_named_png, ("concepts.probes", "inner.png", "not a regular file")),
    ("fifo-classes-file", _fifo_classes_file, ("model.classes_file", "not a regular file")),
]


@pytest.mark.parametrize("make, words", [c[1:] for c in FOLDER_ENTRY_CASES], ids=[c[0] for c in FOLDER_ENTRY_CASES])
@pytest.mark.parametrize("command", ["validate", "run"])
def test_entries_that_would_hang_a_read_are_refused(tmp_path, make, words, command):
    """A FIFO named *.png used to block the run forever; the timeout makes a hang a failure."""
    cfg = tiny_config(tmp_path)
    make(tmp_path, cfg)
    refused_untouched(tmp_path, command, write_yaml(tmp_path, cfg), words=words, timeout=60)


def test_a_huge_config_file_is_refused_without_parsing(tmp_path):
    path = tmp_path / "c.yaml"
    with open(path, "wb") as fh:
        fh.write(b"model: {}\n# " + b"x" * (20 * 2**20) + b"\n")
    refused_untouched(tmp_path, "validate", path, words=("is not a config file",), timeout=60)


def test_a_fifo_as_the_config_is_refused(tmp_path):
    os.mkfifo(tmp_path / "c.yaml")
    proc = run_cli("run", tmp_path / "c.yaml", timeout=60)
    assert_one_line(proc, 2, "config file not found")
