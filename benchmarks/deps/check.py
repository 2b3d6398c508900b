"""Check the lowest dependency versions pyproject.toml claims: a fresh venv with them, the package
installed from a wheel, and both demo audits run from outside the repository.

    python benchmarks/deps/check.py            # `make check-deps`; ~3-6 minutes, downloads ~300 MB once

The highest versions are what `make test` runs. Results: benchmarks/results/deps.json and .md.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "benchmarks" / ".cache" / "deps"
# the lower ends of the ranges in pyproject.toml (TensorFlow through the `cpu` extra)
LOWEST = ["tensorflow-cpu==2.16.2", "keras==3.15.0", "numpy==1.26.4", "scipy==1.11.4", "pillow==10.0.1",
          "pyyaml==6.0.1", "jinja2==3.1.2", "tqdm==4.66.1", "h5py==3.10.0"]


def sh(*cmd, cwd=None, env=None, check=True) -> subprocess.CompletedProcess:
    print("$", " ".join(map(str, cmd)), flush=True)
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def build_wheel(dest: Path) -> Path:
    """A wheel built from a copy of the sources (nothing is written into the repository)."""
    src = dest / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv", ".git", "reports", ".cache", "tests",
                                                              "benchmarks", "build", "*.egg-info", "__pycache__"))
    sh(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", dest, src)
    return next(dest.glob("keras_shortcut_audit-*.whl"))


def main() -> None:
    start = time.perf_counter()
    venv = CACHE / "lowest"
    work = Path(tempfile.mkdtemp(prefix="audit-deps-"))
    try:
        wheel = build_wheel(work)
        if venv.exists():
            shutil.rmtree(venv)
        sh(sys.executable, "-m", "venv", venv)
        py = venv / "bin" / "python"
        install = time.perf_counter()
        sh(py, "-m", "pip", "install", "--quiet", *LOWEST, f"{wheel}[cpu]")
        install = time.perf_counter() - install
        versions = json.loads(sh(py, "-c", "import json, tensorflow as tf, keras, numpy; print(json.dumps("
                                 "{'tensorflow': tf.__version__, 'keras': keras.__version__, 'numpy': numpy.__version__}))"
                                 ).stdout)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        runs = {}
        for name, flags in (("demo", []), ("demo_control", ["--control"])):
            proc = sh(venv / "bin" / "audit", "demo", *flags, "--no-progress", "--out", work / name, cwd=work, env=env,
                      check=False)
            if not (work / name / "audit.json").exists():
                raise SystemExit(f"`audit demo {' '.join(flags)}` wrote no report:\n{proc.stdout}\n{proc.stderr[-3000:]}")
            result = json.loads((work / name / "audit.json").read_text())
            runs[name] = {"exit_code": proc.returncode, "verdict": result["verdict"],
                          "findings": [(f["class_name"], f["concept"], f["level"], f["causal_effect"])
                                       for f in result["findings"]],
                          "stdout": proc.stdout.splitlines()}
            print("\n".join(proc.stdout.splitlines()), flush=True)
        ok = runs["demo"]["exit_code"] == 1 and runs["demo_control"]["exit_code"] == 0 and \
            [f[:3] for f in runs["demo"]["findings"]] == [("dumbbell", "arm", "fail")]
        record = {"date": dt.date.today().isoformat(), "machine": platform.machine(), "python": platform.python_version(),
                  "pins": LOWEST, "installed": versions, "install_seconds": round(install, 1), "runs": runs,
                  "ok": ok, "wall_seconds": round(time.perf_counter() - start, 1)}
        out = ROOT / "benchmarks" / "results" / "deps.json"
        out.write_text(json.dumps(record, indent=1) + "\n")
        demo = runs["demo"]["findings"]
        out.with_suffix(".md").write_text(
            f"Lowest dependencies, {record['date']}: TensorFlow {versions['tensorflow']}, Keras {versions['keras']}, "
            f"NumPy {versions['numpy']}, Python {record['python']}: `audit demo` exit {runs['demo']['exit_code']} "
            f"(findings {demo}), `audit demo --control` exit {runs['demo_control']['exit_code']}: "
            f"{'OK' if ok else 'NOT OK'} (install {record['install_seconds']} s, total {record['wall_seconds']} s).\n")
        print(out.with_suffix(".md").read_text())
        if not ok:
            raise SystemExit(1)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
