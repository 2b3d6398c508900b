"""Shard the per-class work, run it on the configured backend, merge it back in class order."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from audit.config.model import ModelConfig
from audit.config.visualize import VisualizeConfig
from audit.config.execution import ExecutionConfig
from audit.model.load import LoadedModel
from audit.visualize.optimize import Visualizations, class_visualizations


def class_shards(names: tuple[str, ...], parts: int) -> list[tuple[str, ...]]:
    """Contiguous, nearly equal shards of the class list, in order."""
    parts = max(1, min(parts, len(names)))
    bounds = np.linspace(0, len(names), parts + 1).round().astype(int)
    return [tuple(names[a:b]) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def merge_visualizations(parts: list[Visualizations]) -> Visualizations:
    """Shards (in class order) -> one Visualizations, as if computed together."""
    if len(parts) == 1:
        return parts[0]
    return Visualizations(**{
        name: np.concatenate([getattr(p, name) for p in parts])
        for name in ("class_indices", "images", "logits", "target_logit_trace", "steps_taken")
    }, steps=parts[0].steps)


def preflight(execution: ExecutionConfig) -> None:
    """Checks that need no model: run before the work, so a bad address fails in seconds."""
    if execution.backend == "ray" and execution.address:
        from audit.execution.ray_backend import check_reachable

        check_reachable(execution.address)


def visualize(model: LoadedModel, model_cfg: ModelConfig, layer: str, cfg: VisualizeConfig,
              execution: ExecutionConfig, progress: bool = True, log=print) -> Visualizations:
    """Every audited class's visualizations, on the configured backend."""
    if execution.backend == "local":
        return class_visualizations(model, cfg, progress=progress)
    from audit.execution.ray_backend import visualize_on_ray

    names = tuple(cfg.classes or model.classes)
    shards = class_shards(names, execution.workers * execution.shards_per_worker)
    parts = visualize_on_ray(model_cfg, layer, [replace(cfg, classes=s) for s in shards], execution, log)
    return merge_visualizations(parts)
