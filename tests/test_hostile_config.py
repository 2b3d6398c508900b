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
    # the issue's case: it passed validate and the run reached 5 GB in 29 s
    ("billion-raw-images", _set("visualize", "raw_images", 10**9),
     "visualize.raw_images: invalid value 1000000000; use a whole number from 0 (none) to 1000"),
    ("billion-steps", _set("visualize", "steps", 10**9), "visualize.steps"),
    ("billion-random-directions", _set("concepts", "random_directions", 10**9), "concepts.random_directions"),
    ("billion-max-examples", _set("concepts", "max_examples", 10**9), "concepts.max_examples"),
    ("terabyte-memory-budget", _set("visualize", "memory_budget_mb", 10**9), "visualize.memory_budget_mb"),
    ("huge-seed", _set("visualize", "seed", 2**64), "visualize.seed"),
    ("huge-jitter", _set("visualize", "jitter", 10**6), "visualize.jitter"),
    ("total-variation-1e300", _set("visualize", "total_variation", 1e300), "visualize.total_variation"),
    ("infinite-min-effect", _set("gate.fail", "cue_min_effect", float("inf")), "gate.fail.cue_min_effect"),
    ("nan-min-moves", _set("gate.causal.fail", "min_moves", float("nan")),
     "gate.causal.fail.min_moves: must be a finite"),
    ("infinite-min-log-odds", _set("gate.causal.warn", "min_log_odds", float("inf")),
     "gate.causal.warn.min_log_odds: must be a finite"),
    ("infinite-tolerance", _set("gate.baseline_tolerance", "abs", float("inf")), "gate.baseline_tolerance.abs"),
    ("nan-moves-tolerance", _set("gate.baseline_tolerance", "moves", float("nan")),
     "gate.baseline_tolerance.moves: must be a finite"),
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


# --- An alias bomb at every key (issue 26, defect 7) --------------------------------------------------------
# A bounded quote of a wrongly typed value was added where the first round found it; execution.workers,
# execution.backend and visualize.transforms.scale still formatted the whole expansion (60 s, 2.2 GB). These
# tests put the bomb at every key a config has, each in a child process with a memory cap, so a path that
# formats the expansion fails here in seconds (MemoryError, timeout) instead of exhausting the machine.

MEMORY_CAP = 1536 * 2**20  # far above what validating a config takes, far below what formatting a bomb takes


def _full_config(tmp):
    """A config that loads, with every key of every section set (so the bomb at any key is reached)."""
    cfg = tiny_config(tmp)
    cfg["model"]["trust_code"] = False
    cfg["visualize"].update(classes=["dumbbell"], learning_rate=0.05, parameterization="fourier", total_variation=0.0,
                            transforms={"jitter": 2, "scale": [0.9, 1.1], "rotate": 5}, raw_images=1,
                            memory_budget_mb=512, stop_probability=None, budget=1000, preview_steps=8, full_sample=1)
    cfg["concepts"].update(layer="auto", max_examples=50, probes=str(CONCEPTS / "_probes"), auto_cutouts=True,
                           control="mask")
    cfg["concepts"]["bank"]["arm"].update(cutouts=str(CONCEPTS / "arm_cutouts"), allowed_in=["ball"])
    fail = {"max_p": 0.01, "min_moves": 15.0}                        # a log-odds rise never fails
    warn = {"max_p": 0.05, "min_moves": 5.0, "min_log_odds": 0.3}
    cfg["gate"].update(fail={"cue_max_p": 0.01, "cue_min_effect": 1.0, "vis_max_p": 1.0, "vis_min_effect": 1.0},
                       warn={"cue_max_p": 0.05, "cue_min_effect": 0.5, "vis_max_p": 1.0, "vis_min_effect": 0.5},
                       causal={"fail": dict(fail), "warn": dict(warn)}, baseline=str(tmp / "none.json"),
                       baseline_tolerance={"moves": 6.0, "abs": 3.5, "rel": 0.5},
                       baseline_missing="warn")
    cfg["discover"] = {"probes": str(CONCEPTS / "_probes"), "patterns": 2, "examples": 4, "cutout_images": 4,
                       "min_probes": 4, "visualize": False, "restarts": 1, "min_kept": 0.5, "warn": dict(warn),
                       "fail": dict(fail)}
    cfg["layer_gallery"] = {"layers": "auto", "count": 2, "octaves": 1, "octave_scale": 1.4, "steps": 2,
                            "step_size": 0.02, "smoothing": 0.0, "jitter": 1, "memory_budget_mb": 64}
    cfg["report"]["title"] = "t"
    cfg["execution"] = {"backend": "local", "address": None, "workers": 1, "retries": 0, "shards_per_worker": 1}
    return cfg


def _dream_config():
    return {"model": {"path": str(tiny_config(CONCEPTS)["model"]["path"]), "input_range": [0, 1]},
            "dream": {"input": "noise", "size": [32, 32], "objective": [{"layer": "x", "weight": 1.0},
                                                                        {"layer": "x", "channels": [1]}],
                      "guide": {"image": str(next((CONCEPTS / "arm").iterdir())), "layer": "x", "top_k": 2,
                                "by": "mean"},
                      "octaves": 1, "octave_scale": 1.4, "steps": 2, "step_size": 0.02, "smoothing": 0.0,
                      "jitter": 1, "seed": 0},
            "report": {"out": "out", "title": "t"}}


def _key_paths(data, prefix=()):
    """Every key path of a config: sections and their keys, list items' keys included."""
    for key, value in data.items():
        yield prefix + (key,)
        if isinstance(value, dict):
            yield from _key_paths(value, prefix + (key,))
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            yield from _key_paths(value[0], prefix + (key, 0))


def _bombed(cfg, path, tmp, name) -> "Path":
    import copy

    cfg = copy.deepcopy(cfg)
    target = cfg
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = "@BOMB@"
    text = yaml.safe_dump(cfg, sort_keys=False).replace("'@BOMB@'", "*i")
    return _yaml_text(tmp, BOMB + text, name)


def _capped(*args, timeout=120):
    """A child Python (no TensorFlow is imported here) under MEMORY_CAP, killed after `timeout` seconds."""
    import resource
    import subprocess
    import sys

    from conftest import ROOT

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))

    return subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, preexec_fn=cap)


SWEEP = """
import json, sys, time
from audit.config.dream import load_dream_config
from audit.config.load import load_config
from audit.errors import UserError
for loader, path in json.load(open(sys.argv[1])):
    started = time.monotonic()
    try:
        (load_dream_config if loader == "dream" else load_config)(path)
        message = None
    except UserError as exc:
        message = str(exc)
    except BaseException as exc:
        message = "NOT A USER ERROR: " + type(exc).__name__
    print(json.dumps([path, round(time.monotonic() - started, 2), message]), flush=True)
"""


def test_an_alias_bomb_at_any_key_is_refused_in_one_bounded_line_within_seconds(tmp_path):
    import json

    from audit.config.dream import load_dream_config
    from audit.config.load import load_config

    configs = {"run": _full_config(tmp_path), "dream": _dream_config()}
    load_config(write_yaml(tmp_path, configs["run"], "full.yaml"))  # both load as they are: every key is reached
    load_dream_config(write_yaml(tmp_path, configs["dream"], "dream.yaml"))
    cases, keys = [], {}
    for loader, cfg in configs.items():
        for i, path in enumerate(_key_paths(cfg)):
            file = _bombed(cfg, path, tmp_path, f"{loader}-{i}.yaml")
            cases.append((loader, str(file)))
            keys[str(file)] = ".".join(str(p) for p in path)
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    proc = _capped("-c", SWEEP, tmp_path / "cases.json", timeout=300)
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(results) == len(cases) > 100, (len(results), proc.stderr[-2000:])
    for file, seconds, message in results:
        key = keys[file]
        assert message is not None and "NOT A USER ERROR" not in message, (key, message)
        assert key.split(".")[-1] in message, (key, message[:300])  # refused at the bombed key itself
        assert seconds < 5 and len(message) < 1000 and "\n" not in message, (key, seconds, message[:300])


@pytest.mark.parametrize("key", ["execution.workers", "execution.backend", "execution.retries",
                                 "execution.shards_per_worker", "visualize.transforms.scale",
                                 "visualize.transforms", "visualize.learning_rate", "gate.fail.cue_min_effect"])
def test_the_issue_s_alias_bombs_are_refused_by_validate_in_one_line(tmp_path, key):
    """The issue's cases through the CLI: `audit validate` ran over 60 s and passed 2.2 GB."""
    path = tuple(key.split("."))
    cfg = _full_config(tmp_path)
    started = time.monotonic()
    proc = _capped("-m", "audit", "validate", _bombed(cfg, path, tmp_path, "c.yaml"), timeout=60)
    assert time.monotonic() - started < 30
    assert_one_line(proc, 2, key)
    assert len(proc.stderr) < 1000
