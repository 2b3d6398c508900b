"""The package as a user installs it: a wheel with everything the demo needs, installed into a
new venv, run from outside the repository; and the packaged demo configs say what the
repository's configs/ say."""

import pytest
import subprocess
import sys
import zipfile

from audit.config import load_config
from conftest import DIST_NAME, ROOT, clean_env


@pytest.mark.slow
def test_the_wheel_holds_the_demo_its_configs_templates_and_schema(wheel_venv):
    _, dist = wheel_venv
    (wheel,) = dist.glob("keras_shortcut_audit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("audit/cli.py", "audit/api.py", "audit/demo/demo.yaml", "audit/demo/demo_control.yaml",
                   "audit/demo/assets/models/demo_shortcut.keras", "audit/demo/assets/models/demo_control.keras",
                   "audit/demo/assets/concepts/_probes/ball_000.png", "audit/report/templates/report.html.j2",
                   "audit/schema/audit.schema.json"):
        assert needed in names, needed
    assert not any(n.startswith(("tests/", "benchmarks/", "configs/")) for n in names)
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert f"Name: {DIST_NAME}" in text and "tensorflow-cpu" in text and "extra == \"cpu\"" in text


@pytest.mark.slow
def test_the_installed_wheel_runs_the_demo_outside_the_repository(wheel_venv, tmp_path):
    venv, _ = wheel_venv
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import audit; print(audit.__file__)"],
                           cwd=tmp_path, capture_output=True, text=True, env=clean_env())
    assert where.stdout.startswith(str(venv)), where.stdout + where.stderr  # the wheel's copy, not this repo
    proc = subprocess.run([str(venv / "bin" / "audit"), "demo", "--no-progress"], cwd=tmp_path,
                          capture_output=True, text=True, env=clean_env(), timeout=600)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # the demo's shortcut model fails the gate
    assert "fail: concept 'arm' in class 'dumbbell'" in proc.stdout
    assert (tmp_path / "audit-demo" / "demo" / "index.html").exists()
    assert f"config: {venv}" in proc.stdout  # the packaged config, read from the installed package
    assert not list((venv / "lib").glob("python*/site-packages/audit/reports"))  # nothing written into it


def _same_config(a, b):
    keep = lambda c: (c.model, c.visualize, c.concepts, c.gate, c.layer_gallery, c.report.title)  # noqa: E731
    return keep(a) == keep(b)


def test_packaged_demo_configs_match_the_repositorys():
    for name in ("demo", "demo_control"):
        assert _same_config(load_config(ROOT / "audit" / "demo" / f"{name}.yaml"),
                            load_config(ROOT / "configs" / f"{name}.yaml")), name


def test_without_tensorflow_the_cli_says_how_to_install_it(tmp_path):
    # TensorFlow is an extra: an environment without it gets one line and exit 2, not a traceback
    code = ("import sys; sys.modules['tensorflow'] = None; from audit.cli import main; "
            f"sys.exit(main(['run', 'configs/demo.yaml', '--out', {str(tmp_path / 'r')!r}]))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "pip install 'keras-shortcut-audit[cpu]'" in proc.stderr and not (tmp_path / "r").exists()
