import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "audit" / "demo" / "assets"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def run_cli(*args, cwd=ROOT, env=None, timeout=600):
    """Run the real console entry point in a fresh process, as CI would."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "audit", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, env=full_env, timeout=timeout)


def write_config(path: Path, model_path: Path, out: Path, classes=None, steps=64, restarts=4, extra_bank=None,
                 **sections) -> Path:
    """A config like the demo's, pointing at `model`, with absolute paths."""
    import yaml

    bank = {
        "arm": {"examples": str(ASSETS / "concepts" / "arm"), "allowed_in": []},
        "stripes": {"examples": str(ASSETS / "concepts" / "stripes"), "allowed_in": ["racket"]},
        "watermark": {"examples": str(ASSETS / "concepts" / "watermark"), "allowed_in": []},
    }
    bank.update(extra_bank or {})
    cfg = {
        "model": {"path": str(model_path), "input_range": [0, 1],
                  "classes": classes or ["dumbbell", "barbell", "kettlebell", "ball", "racket", "bottle"]},
        "visualize": {"restarts": restarts, "steps": steps, "seed": 0},
        "concepts": {"negatives": str(ASSETS / "concepts" / "_random"), "bank": bank},
        "report": {"out": str(out)},
    }
    for key, value in sections.items():
        cfg.setdefault(key, {}).update(value)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def demo_model_path():
    return ASSETS / "models" / "demo_shortcut.keras"


@pytest.fixture(scope="session")
def shortcut_run(tmp_path_factory):
    """`audit run configs/demo.yaml` once per test session: (process, report folder)."""
    out = tmp_path_factory.mktemp("shortcut") / "report"
    return run_cli("run", ROOT / "configs" / "demo.yaml", "--out", out), out


@pytest.fixture(scope="session")
def control_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("control") / "report"
    return run_cli("run", ROOT / "configs" / "demo_control.yaml", "--out", out), out
