"""index.html: one self-contained file (inline CSS, images as data: URIs, no network)."""

from __future__ import annotations

from pathlib import Path

import jinja2
import numpy as np
import yaml
from PIL import Image

from audit.images import data_uri
from audit.report.decisive import decisive_short, decisive_text
from audit.result import PROBE_SETS

TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("audit.report", "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
    trim_blocks=True, lstrip_blocks=True,
)


def _fmt(value, spec=".2f"):
    return "n/a" if value is None else format(value, spec)


def _probability(value):
    """A class probability on a finding card: a confident network moves a tiny probability (0.0001 ->
    0.0003, a real shortcut's response on EfficientNet-Lite0), which three decimals would show as 0.000 twice."""
    return _fmt(value, ".3f" if value is None or value >= 0.01 else ".1e")


def _pair(tests: dict | None, key: str, spec: str) -> str:
    """A paste test's measure on the probes and on the hard probes, e.g. "+22.0 / +31.5"."""
    if not tests:
        return ""
    return " / ".join(_fmt((tests.get(s) or {}).get(key), spec) for s in PROBE_SETS)


TEMPLATES.filters["fmt"] = _fmt
TEMPLATES.filters["pair"] = _pair
TEMPLATES.filters["probability"] = _probability
TEMPLATES.filters["decisive"] = decisive_text
TEMPLATES.filters["decisive_short"] = decisive_short
GALLERY_THUMBNAIL_BUDGET = 1200  # embedded class visualizations in one report, at most (~3 KB each)
LARGE_REPORT_BYTES = 5 * 2**20   # a page above this says so at its top
FINDING_IMAGES = 10              # findings shown with their images (the rest are listed in text)


def _thumb(folder: Path, rel: str, max_side: int = 128, jpeg: bool = False) -> str:
    with Image.open(folder / rel) as im:
        return data_uri(np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0, max_side, jpeg)


def _cell_color(check: dict) -> str:
    return {"fail": "#f8c9c4", "warn": "#fbe7b5", "allowed": "#e4e8ee"}.get(check["level"], "#ffffff")


def gallery_thumbnails_per_class(n_classes: int, restarts: int) -> int:
    """Embedded thumbnails per class: all of them for small models, fewer as classes grow,
    so a 1000-class report stays a few MB (the full-size PNGs sit beside it as files)."""
    return max(1, min(restarts, GALLERY_THUMBNAIL_BUDGET // max(n_classes, 1)))


def _gallery_order(classes: list[dict]) -> list[dict]:
    """Classes with the full treatment first (where a test pointed), previews after; stable."""
    return sorted(classes, key=lambda c: c.get("treatment") == "preview")


def render(result: dict, folder: Path) -> str:
    folder = Path(folder)
    by_pair = {(c["class_name"], c["concept"]): c for c in result["checks"]}
    classes = [c["name"] for c in result["visualization"]["classes"]]
    concepts = [c["name"] for c in result["concepts"]["bank"]]
    per_class = gallery_thumbnails_per_class(len(classes), result["visualization"]["restarts"])
    large = len(classes) > 100
    thumbs = {rel: _thumb(folder, rel, 40 if large else 128, jpeg=large) for cls in result["visualization"]["classes"]
              for rel in cls["images"][:per_class] + cls.get("raw_images", [])[:1 if not large else 0]}
    for finding in result["findings"][:FINDING_IMAGES]:  # the first findings show their class's images
        for cls in result["visualization"]["classes"]:
            if cls["name"] == finding["class_name"]:
                thumbs.update({rel: _thumb(folder, rel) for rel in cls["images"][:4] if rel not in thumbs})
    for concept in [*result["concepts"]["bank"], result["concepts"]["negatives"]]:
        for rel in concept["examples"]:
            thumbs[rel] = _thumb(folder, rel)
    for concept in result["concepts"]["bank"]:
        for rel in (concept.get("cutouts") or {}).get("images", []):
            thumbs[rel] = _thumb(folder, rel)
    for finding in result["findings"][:FINDING_IMAGES]:
        for ex in finding.get("causal_examples", []):
            thumbs.update({ex[kind]: _thumb(folder, ex[kind]) for kind in ("probe", "concept", "control")})
    for entry in result.get("layer_gallery", []):
        thumbs[entry["image"]] = _thumb(folder, entry["image"], 160)
    thumbs.update(discovered_thumbnails(folder, result))
    def page(size_warning):
        return TEMPLATES.get_template("report.html.j2").render(
            r=result, classes=classes, concepts=concepts, by_pair=by_pair, thumbs=thumbs, cell_color=_cell_color,
            config_yaml=yaml.safe_dump(result["config"]["content"], sort_keys=False), size_warning=size_warning,
            finding_images=FINDING_IMAGES, gallery=_gallery_order(result["visualization"]["classes"]),
            discovered=result.get("discovered") or [], discovered_images=DISCOVERED_IMAGES,
            causal=any(c.get("causal") for c in result["checks"]),
            inclass=any(c.get("inclass") for c in result["checks"]))

    html = page(None)
    if len(html.encode()) > LARGE_REPORT_BYTES:  # measured on the page itself, then said on it
        html = page(f"this page is {len(html.encode()) / 2**20:.1f} MB; {per_class} of "
                    f"{result['visualization']['restarts']} visualizations per class are embedded, the rest are "
                    "linked files in images/; with many classes the tables dominate: filter audit.json instead.")
    return html


DISCOVERED_IMAGES = 20  # discovered patterns shown with their images (worst first); the rest in text


def discovered_thumbnails(folder: Path, result: dict) -> dict[str, str]:
    thumbs = {}
    for e in (result.get("discovered") or [])[:DISCOVERED_IMAGES]:
        rels = [ex["highlight"] for ex in e["examples"]] + e["cutouts_shown"] + e["visualizations"]
        rels += [ex[k] for ex in e["insertion_examples"] for k in ("probe", "pattern", "control")]
        thumbs.update({rel: _thumb(folder, rel, 96, jpeg=True) for rel in rels})  # ~22 images per pattern
    return thumbs


def render_discovery(result: dict, folder: Path) -> str:
    """index.html of `audit discover`: the patterns, worst first, and provenance."""
    folder = Path(folder)
    return TEMPLATES.get_template("discovery.html.j2").render(
        r=result, thumbs=discovered_thumbnails(folder, result), discovered=result["discovered"],
        discovered_images=DISCOVERED_IMAGES)


def render_dream(result: dict, folder: Path) -> str:
    folder = Path(folder)
    images = dict(result["images"])
    if result.get("guide"):
        images["guide"] = result["guide"]["image"]
    thumbs = {key: _thumb(folder, rel, 512) for key, rel in images.items()}
    return TEMPLATES.get_template("dream.html.j2").render(
        r=result, thumbs=thumbs, config_yaml=yaml.safe_dump(result["config"]["content"], sort_keys=False))
