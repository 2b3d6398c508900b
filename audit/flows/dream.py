"""`audit dream` and the audit report's layer gallery: configs -> dreams -> PNGs + dream.json."""

from __future__ import annotations

import time
from pathlib import Path

from audit.visualize import objectives
from audit.config.report import GalleryConfig
from audit.visualize.dream import DreamResult, dream, noise_image, spread_layers, top_channels
from audit.config.dream import DreamConfig, DreamTerm
from audit.config.yaml_input import short_repr
from audit.errors import UserError
from audit.images import load_image, save_png
from audit.model.graph import activation_map_layers, activation_reader, feature_map_layers
from audit.model.load import LoadedModel, gradient_batch_size, load_model
from audit.report.folder import check_replaceable, staged_folder


def _class_index(name: str, classes: tuple[str, ...]) -> int:
    """A class by name, or by index (unnamed classes are called "0", "1", ... anyway)."""
    if name in classes:
        return classes.index(name)
    if name.isdigit() and int(name) < len(classes):
        return int(name)
    raise UserError(f"dream.objective: unknown class {short_repr(name)}; use a name from model.classes or an index "
                    f"below {len(classes)}")


def build_objective(terms: tuple[DreamTerm, ...], classes: tuple[str, ...]) -> objectives.Objective | None:
    total = None
    for t in terms:
        if t.kind == "class":
            idx = _class_index(t.class_name, classes)
            term = objectives.class_logit(idx, t.class_name)
        elif t.kind == "channels":
            term = objectives.channels(t.layer, list(t.channels))
        elif t.kind == "neuron":
            term = objectives.neuron(t.layer, t.neuron)
        else:
            term = objectives.layer_mean(t.layer)
        term = term if t.weight == 1.0 else t.weight * term
        total = term if total is None else total + term
    return total


def _check_channels(read, layer: str, wanted, input_shape, key: str) -> None:
    import tensorflow as tf

    acts, _ = read(tf.fill((1,) + tuple(input_shape), 0.5))
    n = acts[layer].shape[-1]
    bad = [c for c in wanted if c >= n]
    if bad:
        raise UserError(f"{key}: layer {short_repr(layer)} has {n} channels; channel {bad[0]} does not exist")


def gallery_layers(model: LoadedModel, count: int) -> list[str]:
    """`count` layers spread from early to late: outputs of nonlinearities (any feature map if the
    model has none). The first one (the stem, right on the pixels: its dream is a flat colour or
    a colour grating) is left out when there are more than `count` to choose from."""
    candidates = activation_map_layers(model) or feature_map_layers(model)
    return spread_layers(candidates[1:] if len(candidates) > count else candidates, count)


def layer_gallery(model: LoadedModel, cfg: GalleryConfig, out: Path, progress: bool = False) -> list[dict]:
    """What each depth of the network paints from the same noise (model input size)."""
    maps = feature_map_layers(model)
    layers = list(cfg.layers) if cfg.layers else gallery_layers(model, cfg.count)
    tile = model.input_shape[:2]
    start = noise_image(cfg.settings.seed, tile, model.input_shape[2])
    (out / "images" / "layers").mkdir(parents=True, exist_ok=True)
    depth = {name: i for i, name in enumerate(maps)}
    entries = []
    for name in layers:
        objective = objectives.layer_mean(name)
        read = activation_reader(model, objective.layers, key="layer_gallery.layers")
        result = dream(read, objective, start, tile, cfg.settings, progress=progress,
                       tiles_per_call=gradient_batch_size(model, cfg.settings.memory_budget_mb))
        rel = f"images/layers/{len(entries):02d}_{name.replace('/', '_')}.png"
        save_png(out / rel, result.image)
        entries.append({"layer": name, "depth": depth.get(name), "image": rel,
                        "objective_start": result.objective_start[0], "objective_end": result.objective_end[-1]})
    return entries


def _dream_record(result: DreamResult) -> dict:
    return {"sizes": [list(s) for s in result.sizes], "objective_start": result.objective_start,
            "objective_end": result.objective_end}


def run_dream(cfg: DreamConfig, out: Path | None = None, progress: bool = True, log=print) -> tuple[dict, Path]:
    import tensorflow as tf

    from audit.flows.common import now
    from audit.flows.record import record_header, record_origin
    from audit.report import render_all
    from audit.result import dumps

    tf.config.experimental.enable_op_determinism()
    out = Path(out) if out is not None else cfg.report.out
    check_replaceable(out, inputs=cfg.inputs())
    started, t0 = now(), time.perf_counter()
    model = load_model(cfg.model, "auto")
    tile, channels_in = model.input_shape[:2], model.input_shape[2]
    if cfg.input is None:
        image = noise_image(cfg.settings.seed, cfg.size or tile, channels_in)
    else:
        image = load_image(cfg.input, channels_in, "dream.input", size=cfg.size)
    objective = build_objective(cfg.terms, model.classes)  # one name (or index) per model output
    guide_record, guide_image = None, None
    if cfg.guide is not None:
        guide_image = load_image(cfg.guide.image, channels_in, "dream.guide.image")
        read = activation_reader(model, [cfg.guide.layer], key="dream.guide.layer")
        chosen, means = top_channels(read, cfg.guide.layer, guide_image, tile, cfg.guide.top_k, cfg.guide.by)
        guided = objectives.channels(cfg.guide.layer, chosen)
        objective = guided if objective is None else objective + guided
        guide_record = {"image": "images/guide.png", "layer": cfg.guide.layer, "top_k": cfg.guide.top_k,
                        "by": cfg.guide.by, "channels": chosen, "activations": means}
    read = activation_reader(model, objective.layers, key="dream.objective")
    for t in cfg.terms:
        if t.kind in ("channels", "neuron"):
            _check_channels(read, t.layer, list(t.channels) or [t.neuron], model.input_shape, "dream.objective")
    log(f"dream: {objective.name} on {'noise' if cfg.input is None else cfg.input.name}, "
        f"{image.shape[1]}x{image.shape[0]}")
    result = dream(read, objective, image, tile, cfg.settings, progress=progress,
                   tiles_per_call=gradient_batch_size(model, cfg.settings.memory_budget_mb))
    with staged_folder(out) as staging:
        (staging / "images").mkdir()
        save_png(staging / "images" / "input.png", image)
        save_png(staging / "images" / "dream.png", result.image)
        if guide_image is not None:
            save_png(staging / "images" / "guide.png", guide_image)
        record = {
            "kind": "dream", **record_header(cfg.report.title, "dream"),  # dream.json has always begun with its kind
            "model": {"name": model.name, "path": str(model.path), "sha256": model.sha256,
                      "input_shape": list(model.input_shape), "logits_source": model.logits_source},
            "objective": objective.name, "guide": guide_record,
            "input": "noise" if cfg.input is None else str(cfg.input),
            "settings": vars(cfg.settings), **_dream_record(result),
            "warnings": ([] if any(e != b for b, e in zip(result.objective_start, result.objective_end)) else
                         ["the objective did not change: its units are inactive on this image (a ReLU gives no "
                          "gradient at zero); try `input: noise`, another layer or other channels"]),
            "images": {"input": "images/input.png", "dream": "images/dream.png"},
            **record_origin(cfg.source, cfg.sha256, cfg.raw, cfg.settings.seed, started, finished_at=now()),
            "timing_seconds": {"total": round(time.perf_counter() - t0, 3)},
        }
        (staging / "dream.json").write_text(dumps(record))
        render_all(staging)
    return record, out

