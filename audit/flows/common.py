"""What every flow shares: stage timing and the provenance every record carries."""

from __future__ import annotations

import datetime as dt
import platform
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from audit.version import __version__


class Timer:
    def __init__(self, log):
        self.seconds: dict[str, float] = {}
        self.log = log

    @contextmanager
    def stage(self, name: str):
        start = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - start, 3)
        self.log(f"  {name:<18} {self.seconds[name]:7.2f} s")


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _git_commit(where: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def provenance(config_path: Path, config_sha256: str, seed: int) -> dict:
    import keras
    import tensorflow as tf

    return {
        "tool": "audit", "tool_version": __version__, "python": platform.python_version(),
        "tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__,
        "platform": platform.platform(), "git_commit": _git_commit(config_path.parent),
        "config_sha256": config_sha256, "seed": seed, "command": " ".join(sys.argv[1:]) or None,
    }
