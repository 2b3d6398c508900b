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


DIST_NAME = "keras-shortcut-audit"


def clean_env(**extra):
    """The environment of a user's shell: no PYTHONPATH pointing into this repository."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, **extra}


@pytest.fixture(scope="session")
def wheel_venv(tmp_path_factory):
    """The package built as a wheel (from a copy of the sources) and installed with pip into a new
    venv: (venv folder, folder holding the wheel). So that pip finds TensorFlow and the other
    dependencies already installed instead of downloading them (offline, ~1 GB less), the venv sees
    a view of this test environment's site-packages (symlinks, through a .pth file) without this
    repository's editable install: pip then installs the package itself from the wheel, and
    `import audit` in the venv is the wheel's copy."""
    import shutil
    import site

    root = tmp_path_factory.mktemp("wheel")
    src, dist, venv = root / "src", root / "dist", root / "venv"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".venv", ".git", "reports", "tests", "benchmarks", "build", "*.egg-info", "__pycache__", ".pytest_cache"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(dist), str(src)], check=True, capture_output=True, timeout=600)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=600)
    view = root / "dependencies"
    view.mkdir()
    for parent in site.getsitepackages():
        for entry in Path(parent).iterdir():
            name = entry.name.lower()
            if not (name.startswith(("keras_shortcut_audit", "__editable__", "audit")) or name.endswith(".pth")
                    or (view / entry.name).exists()):
                (view / entry.name).symlink_to(entry)
    (next(venv.glob("lib/python*/site-packages")) / "_test_dependencies.pth").write_text(f"{view}\n")
    proc = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", f"{DIST_NAME}[cpu]"],
                          capture_output=True, text=True, timeout=600,
                          env=clean_env(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(dist)))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return venv, dist
