"""Past one machine: the same audit on a real local Ray cluster (started here with `ray start`)
gives the same audit.json as a local run; a worker that dies is retried; a run that cannot
finish fails closed."""

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_cli, write_config

pytest.importorskip("ray")
RAY = str(Path(sys.executable).parent / "ray")
# Ray >= 2.59 authenticates with a token: the cluster and every `audit run` share this one
RAY_ENV = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32), "RAY_USAGE_STATS_ENABLED": "0"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A real Ray head node on this machine, 2 CPUs, stopped after the module."""
    port = _free_port()
    temp = tmp_path_factory.mktemp("ray")
    env = {**os.environ, **RAY_ENV}
    start = subprocess.run([RAY, "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
                            "--disable-usage-stats", "--node-ip-address=127.0.0.1", f"--temp-dir={temp}"],
                           capture_output=True, text=True, env=env, timeout=180)
    assert start.returncode == 0, start.stderr[-2000:]
    yield f"127.0.0.1:{port}"
    subprocess.run([RAY, "stop", "--force"], capture_output=True, env=env, timeout=120)


@pytest.fixture(scope="module")
def config(tmp_path_factory, demo_model_path):
    tmp = tmp_path_factory.mktemp("exec")
    path = write_config(tmp / "audit.yaml", demo_model_path, tmp / "report", steps=16, restarts=2,
                        execution={"retries": 1})
    path.write_text(path.read_text() + "layer_gallery: false\n")
    return path


@pytest.fixture(scope="module")
def local_run(config, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "report"
    proc = run_cli("run", config, "--out", out, "--no-history")
    audit = json.loads((out / "audit.json").read_text())
    assert proc.returncode == audit["exit_code"] in (0, 1), proc.stderr[-2000:]
    return audit


def _results(audit: dict) -> dict:
    """Everything but when and where it ran."""
    return {k: v for k, v in audit.items() if k not in ("timing_seconds", "provenance")}


@pytest.mark.slow
def test_ray_run_equals_local_run(cluster, config, local_run, tmp_path):
    out = tmp_path / "report"
    proc = run_cli("run", config, "--out", out, "--no-history", "--backend", "ray", "--address", cluster,
                   "--workers", "2", env=RAY_ENV)
    assert proc.returncode == local_run["exit_code"], proc.stderr[-2000:]
    audit = json.loads((out / "audit.json").read_text())
    assert _results(audit) == _results(local_run)
    assert audit["provenance"]["execution"] == {"backend": "ray", "address": cluster, "workers": 2, "retries": 1}
    assert local_run["provenance"]["execution"] == {"backend": "local"}


@pytest.mark.slow
def test_more_workers_than_shards_or_cpus_starts_no_idle_model_copies(cluster, config, local_run, tmp_path):
    """`workers: 64` for 6 classes started 64 actors, each loading the model (9.6 GB in 40 s on 2
    cores); now at most one per shard and per cluster CPU (the test cluster has 2), same results."""
    out = tmp_path / "report"
    proc = run_cli("run", config, "--out", out, "--no-history", "--backend", "ray", "--address", cluster,
                   "--workers", "64", env=RAY_ENV)
    assert proc.returncode == local_run["exit_code"], proc.stderr[-2000:]
    assert "ray: 2 workers for " in proc.stderr + proc.stdout
    assert _results(json.loads((out / "audit.json").read_text())) == _results(local_run)


@pytest.mark.slow
def test_a_killed_worker_is_retried(cluster, config, local_run, tmp_path):
    marker = tmp_path / "killed-once"
    out = tmp_path / "report"
    proc = run_cli("run", config, "--out", out, "--no-history", "--backend", "ray", "--address", cluster,
                   env={**RAY_ENV, "AUDIT_FAULT_KILL_WORKER": str(marker)})
    assert marker.exists(), "the fault was not injected: a worker should have died"
    assert proc.returncode == local_run["exit_code"], proc.stderr[-2000:]
    assert _results(json.loads((out / "audit.json").read_text())) == _results(local_run)


@pytest.mark.slow
def test_a_run_that_cannot_finish_fails_closed(cluster, config, tmp_path):
    out = tmp_path / "report"
    proc = run_cli("run", config, "--out", out, "--no-history", "--backend", "ray", "--address", cluster,
                   env={**RAY_ENV, "AUDIT_FAULT_KILL_WORKER": "always"})
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "internal error" in proc.stderr
    assert (out / "crash.txt").exists() and not (out / "audit.json").exists()


@pytest.mark.parametrize("section, message", [
    ({"backend": "spark"}, "execution.backend: invalid value 'spark'"),
    ({"backend": "ray", "workers": 0}, "execution.workers: invalid value 0"),
    ({"backned": "ray"}, "execution.backned: unknown key"),
])
def test_bad_execution_section_is_a_one_line_error(tmp_path, demo_model_path, section, message):
    cfg = write_config(tmp_path / "audit.yaml", demo_model_path, tmp_path / "report", execution=section)
    proc = run_cli("validate", cfg)
    assert proc.returncode == 2
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "report").exists()


@pytest.mark.slow
def test_an_unreachable_cluster_is_an_input_error(config, tmp_path):
    out = tmp_path / "report"
    proc = run_cli("run", config, "--out", out, "--backend", "ray", "--address", f"127.0.0.1:{_free_port()}")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "execution.address: cannot connect" in proc.stderr
    assert "load model" not in proc.stderr  # checked before any work
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.slow
def test_an_address_that_is_not_a_ray_cluster_is_an_input_error_in_seconds(config, tmp_path):
    """A TCP service that accepts connections but is not Ray (here: one that never answers) passed the
    reachability check, and ray.init retried against it forever (no result after 330 s)."""
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    held = []
    threading.Thread(target=lambda: held.append(server.accept()), daemon=True).start()
    out = tmp_path / "report"
    try:
        proc = run_cli("run", config, "--out", out, "--backend", "ray", "--address",
                       f"127.0.0.1:{server.getsockname()[1]}", timeout=120)
    finally:
        server.close()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "answers, but not as a Ray cluster" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.slow
def test_without_ray_installed_the_error_says_how_to_get_it(tmp_path, demo_model_path):
    # a Python that cannot import ray: the project's venv with ray hidden from it
    shadow = tmp_path / "shadow"
    (shadow / "ray").mkdir(parents=True)
    (shadow / "ray" / "__init__.py").write_text("raise ImportError('no ray here')\n")
    cfg = write_config(tmp_path / "audit.yaml", demo_model_path, tmp_path / "report", execution={"backend": "ray"})
    proc = run_cli("validate", cfg, env={"PYTHONPATH": str(shadow)})
    assert proc.returncode == 2
    assert "pip install ray" in proc.stderr
    shutil.rmtree(shadow)
