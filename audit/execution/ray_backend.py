"""The Ray backend: one actor per worker loads the model once and visualizes class shards.

The driver connects to a cluster (`address: auto` or HOST:PORT) or starts a Ray instance on
this machine, creates `workers` actors (one GPU each when the cluster has GPUs), hands them
shards through an ordered pool, and gets back plain numpy arrays. A worker that dies is
restarted and its shard retried (`retries`); when a shard still cannot finish, the error
propagates and the audit fails closed (exit 3, crash report).

Fault injection for the tests: AUDIT_FAULT_KILL_WORKER=<file> makes the first worker that
starts a shard while <file> does not exist create it and exit hard (a real process death);
AUDIT_FAULT_KILL_WORKER=always makes every shard kill its worker.
"""

from __future__ import annotations

import os

from audit.errors import UserError

FAULT_ENV = "AUDIT_FAULT_KILL_WORKER"


def _maybe_die() -> None:
    target = os.environ.get(FAULT_ENV)
    if not target:
        return
    if target == "always":
        os._exit(17)
    try:
        fd = os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY)  # only one worker wins the race
    except FileExistsError:
        return
    os.close(fd)
    os._exit(17)


class VisualizeWorker:
    """Holds one loaded model; visualizes the shards it is given."""

    def __init__(self, model_cfg, layer: str):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import tensorflow as tf

        from audit.model.load import load_model

        tf.config.experimental.enable_op_determinism()  # as the driver does: same seed, same images
        self.model = load_model(model_cfg, layer)

    def visualize(self, cfg):
        from audit.visualize.optimize import class_visualizations

        _maybe_die()
        return class_visualizations(self.model, cfg, progress=False)


# An HTTP/2 client preface and an empty SETTINGS frame: a Ray cluster's address is its GCS, a gRPC
# (cleartext HTTP/2) server, which answers with a SETTINGS frame of its own (frame type 4).
HTTP2_HELLO = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Ray's own connect retries for minutes against a dead address, and forever against a TCP service
    that is not Ray: fail in seconds instead, unless the address answers as a gRPC server does."""
    import socket

    if address == "auto" or address.startswith("ray://"):
        return
    host, _, port = address.rpartition(":")
    fix = "start one (`ray start --head`) or fix the address (HOST:PORT or auto)"
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout) as conn:
            conn.sendall(HTTP2_HELLO)
            reply = b""
            try:
                while len(reply) < 9 and (chunk := conn.recv(9 - len(reply))):
                    reply += chunk
            except (TimeoutError, ConnectionResetError):  # silent, or hung up on the handshake
                pass
    except (OSError, ValueError):
        raise UserError(f"execution.address: cannot connect to a Ray cluster at {address}; {fix}") from None
    if len(reply) < 9 or reply[3] != 4:
        raise UserError(f"execution.address: {address} answers, but not as a Ray cluster (no gRPC handshake in "
                        f"{timeout:g} s); {fix}")


def _connect(execution, log):
    import ray

    env = {k: v for k, v in os.environ.items() if k == FAULT_ENV or k.startswith("TF_CPP")}
    runtime_env = {"env_vars": env} if env else None
    if ray.is_initialized():
        return False
    if execution.address:
        check_reachable(execution.address)
        try:
            ray.init(address=execution.address, runtime_env=runtime_env, log_to_driver=False,
                     logging_level="ERROR")
        except ConnectionError:
            raise UserError(f"execution.address: cannot connect to a Ray cluster at {execution.address}; "
                            "start one (`ray start --head`) or fix the address") from None
        log(f"  ray: connected to {execution.address} ({ray.cluster_resources().get('CPU', 0):.0f} CPUs)")
    else:
        # never more worker CPUs than the machine has: each worker holds a model and its own threads
        cpus = max(1, min(execution.workers, os.cpu_count() or 1))
        ray.init(num_cpus=cpus, runtime_env=runtime_env, log_to_driver=False,
                 include_dashboard=False, logging_level="ERROR")
        log(f"  ray: started a local instance with {cpus} worker CPUs")
    return True


def visualize_on_ray(model_cfg, layer: str, shard_cfgs: list, execution, log) -> list:
    """Visualizations of each shard config, in the given order."""
    import ray
    from ray.util import ActorPool

    started = _connect(execution, log)
    try:
        gpus = ray.cluster_resources().get("GPU", 0)
        options = {"num_cpus": 1, "num_gpus": 1 if gpus >= 1 else 0,
                   "max_restarts": execution.retries, "max_task_retries": execution.retries}
        actor = ray.remote(VisualizeWorker).options(**options)
        # one actor per shard at most, and no more than the cluster's CPUs (an actor that cannot be
        # placed would hold its shard forever): `workers: 64` for 6 classes started 64 model copies
        count = max(1, min(execution.workers, len(shard_cfgs), int(ray.cluster_resources().get("CPU", 1))))
        log(f"  ray: {count} workers for {len(shard_cfgs)} shards")
        workers = [actor.remote(model_cfg, layer) for _ in range(count)]
        pool = ActorPool(workers)
        results = list(pool.map(lambda w, cfg: w.visualize.remote(cfg), shard_cfgs))
        for w in workers:
            ray.kill(w)
        return results
    finally:
        if started:
            ray.shutdown()

