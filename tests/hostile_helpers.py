"""Shared pieces of the hostile-input corpus (tests/test_hostile_*.py).

Every corpus case runs the real CLI in a subprocess and asserts three things: the exit code,
a one-line message (no traceback), and that nothing half-written or foreign was touched (the
whole temporary tree is compared before and after, and no hidden staging folder is left).
Most cases fail before TensorFlow is imported (config checks), so they take well under a
second; cases that need a model load or a run use tiny settings.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import yaml

from conftest import ASSETS, run_cli

DEMO_MODEL = ASSETS / "models" / "demo_shortcut.keras"
CONCEPTS = ASSETS / "concepts"
CLASSES = ["dumbbell", "barbell", "kettlebell", "ball", "racket", "bottle"]


def tiny_config(tmp: Path, model_path: Path = DEMO_MODEL, classes=None, **sections) -> dict:
    """The demo's config with tiny settings: 1 restart x 4 steps, no gallery, the gate on cue
    evidence (so the verdict does not depend on 4 steps of visualization), and observational
    evidence allowed to fail (no probes here: these runs need a failing verdict to guard)."""
    cfg = {
        "model": {"path": str(model_path), "input_range": [0, 1], "classes": list(classes or CLASSES)},
        "visualize": {"restarts": 1, "steps": 4, "seed": 0},
        "concepts": {"negatives": str(CONCEPTS / "_random"), "random_directions": 50, "bank": {
            "arm": {"examples": str(CONCEPTS / "arm"), "allowed_in": []},
            "watermark": {"examples": str(CONCEPTS / "watermark"), "allowed_in": []}}},
        "gate": {"evidence": "cue", "observational_can_fail": True},
        "layer_gallery": False,
        "report": {"out": str(tmp / "out")},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key].update(value)
        else:
            cfg[key] = value
    return cfg


def write_yaml(tmp: Path, cfg: dict, name: str = "c.yaml") -> Path:
    path = tmp / name
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under root: kind, size, content hash (files), so any change shows."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            full = Path(dirpath) / name
            rel = str(full.relative_to(root))
            st = full.lstat()
            if stat.S_ISREG(st.st_mode):
                out[rel] = ("file", st.st_size, hashlib.sha256(full.read_bytes()).hexdigest())
            elif stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(full))
            else:
                out[rel] = ("dir" if stat.S_ISDIR(st.st_mode) else "other", stat.S_IFMT(st.st_mode))
    return out


def error_lines(proc) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith("audit: error:")]


def assert_one_line(proc, code: int, *words: str) -> str:
    """Exit `code`, exactly one `audit: error:` line holding `words`, no traceback."""
    assert proc.returncode == code, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-3000:]}"
    errors = error_lines(proc)
    assert len(errors) == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    for w in words:
        assert w in errors[0], errors[0]
    return errors[0]


def no_staging_left(folder: Path) -> None:
    leftovers = [p.name for p in folder.iterdir() if ".staging-" in p.name or ".old-" in p.name]
    assert leftovers == [], leftovers


def refused_untouched(tmp: Path, *argv, words=(), timeout: int = 300, env=None):
    """Run the CLI on files under tmp: exit 2, one line with `words`, and tmp exactly as before."""
    before = snapshot(tmp)
    proc = run_cli(*argv, env=env, timeout=timeout)
    assert_one_line(proc, 2, *words)
    assert snapshot(tmp) == before, "the refused run changed files"
    no_staging_left(tmp)
    return proc
