"""The `execution:` section: which backend runs the per-class work, and how."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from audit.config.yaml_input import short_repr
from audit.errors import UserError

BACKENDS = ("local", "ray")


@dataclass(frozen=True)
class ExecutionConfig:
    backend: str = "local"       # local | ray
    address: str | None = None   # ray: None = start a Ray instance on this machine; "auto"; "HOST:PORT"
    workers: int = 2             # ray: actors, each with the model loaded once
    retries: int = 2             # ray: restarts of a dead worker (and retries of its shard)
    shards_per_worker: int = 2   # ray: shards are smaller than workers' share, so a slow one is balanced


def parse_execution(data, where: str) -> ExecutionConfig:
    """The `execution:` section (or the same from CLI flags), validated; `where` names the source."""
    if data is None:
        return ExecutionConfig()
    if not isinstance(data, dict):
        raise UserError(f"{where}: execution: must be a mapping; write e.g. `execution: {{backend: ray, workers: 2}}`")
    allowed = {"backend", "address", "workers", "retries", "shards_per_worker"}
    for key in data:
        if key not in allowed:
            name = key if isinstance(key, str) and key.isprintable() and len(key) <= 64 else short_repr(key)
            raise UserError(f"{where}: execution.{name}: unknown key; allowed keys: {', '.join(sorted(allowed))}")
    backend = data.get("backend", "local")
    if backend not in BACKENDS:
        raise UserError(f"{where}: execution.backend: invalid value {short_repr(backend)}; use `local` or `ray`")
    address = data.get("address")
    if address is not None and (not isinstance(address, str) or not address.strip()):
        raise UserError(f"{where}: execution.address: must be `auto` or HOST:PORT; omit it to start Ray locally")
    out = {}
    for key, lo, hi in (("workers", 1, 4096), ("retries", 0, 100), ("shards_per_worker", 1, 1000)):
        value = data.get(key, getattr(ExecutionConfig, key))
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise UserError(f"{where}: execution.{key}: invalid value {short_repr(value)}; use a whole number from {lo} to {hi}")
        out[key] = value
    if backend == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise UserError(f"{where}: execution.backend: Ray is not installed; "
                            "install it (`pip install ray`) or use `backend: local`") from None
    return ExecutionConfig(backend=backend, address=address, **out)


def add_execution_flags(parser) -> None:
    """`audit run --backend/--address/--workers`: the `execution:` section from the command line."""
    parser.add_argument("--backend", choices=BACKENDS, help="where class visualization runs (overrides "
                        "execution.backend)")
    parser.add_argument("--address", help="Ray cluster: auto or HOST:PORT (default: start Ray on this machine)")
    parser.add_argument("--workers", type=int, help="Ray workers (actors), each loading the model once")


def with_execution_flags(cfg, args):
    """`cfg` (a Config) with the flags of add_execution_flags over its `execution:` section (same
    results, so the same config can run locally or on a cluster)."""
    flags = {"backend": args.backend, "address": args.address, "workers": args.workers}
    if all(v is None for v in flags.values()):
        return cfg
    merged = {**dataclasses.asdict(cfg.execution), **{k: v for k, v in flags.items() if v is not None}}
    return dataclasses.replace(cfg, execution=parse_execution(merged, "command line"))
