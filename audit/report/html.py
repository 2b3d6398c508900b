"""index.html: one self-contained file (inline CSS, images as data: URIs, no network)."""

from __future__ import annotations

from pathlib import Path

import jinja2
import numpy as np
import yaml
from PIL import Image

from audit.images import data_uri

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("audit.report", "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
    trim_blocks=True, lstrip_blocks=True,
)


def _fmt(value, spec=".2f"):
    return "n/a" if value is None else format(value, spec)


_ENV.filters["fmt"] = _fmt


def _thumb(folder: Path, rel: str, max_side: int = 128) -> str:
    with Image.open(folder / rel) as im:
        return data_uri(np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0, max_side)


def _cell_color(check: dict) -> str:
    return {"fail": "#f8c9c4", "warn": "#fbe7b5", "allowed": "#e4e8ee"}.get(check["level"], "#ffffff")


def render(result: dict, folder: Path) -> str:
    folder = Path(folder)
    by_pair = {(c["class_name"], c["concept"]): c for c in result["checks"]}
    classes = [c["name"] for c in result["visualization"]["classes"]]
    concepts = [c["name"] for c in result["concepts"]["bank"]]
    thumbs = {rel: _thumb(folder, rel) for cls in result["visualization"]["classes"] for rel in cls["images"]}
    for concept in [*result["concepts"]["bank"], result["concepts"]["negatives"]]:
        for rel in concept["examples"]:
            thumbs[rel] = _thumb(folder, rel)
    for entry in result.get("layer_gallery", []):
        thumbs[entry["image"]] = _thumb(folder, entry["image"], 160)
    return _ENV.get_template("report.html.j2").render(
        r=result, classes=classes, concepts=concepts, by_pair=by_pair, thumbs=thumbs, cell_color=_cell_color,
        config_yaml=yaml.safe_dump(result["config"]["content"], sort_keys=False),
    )


def render_dream(result: dict, folder: Path) -> str:
    folder = Path(folder)
    images = dict(result["images"])
    if result.get("guide"):
        images["guide"] = result["guide"]["image"]
    thumbs = {key: _thumb(folder, rel, 512) for key, rel in images.items()}
    return _ENV.get_template("dream.html.j2").render(
        r=result, thumbs=thumbs, config_yaml=yaml.safe_dump(result["config"]["content"], sort_keys=False))
