"""The `report:` section (where the report folder goes, its title) and `layer_gallery:` (what each
depth of the network paints, shown in the report)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from audit.config.reader import Section, names_or_keyword
from audit.config.visualize import DreamSettings, dream_settings


@dataclass(frozen=True)
class GalleryConfig:
    """The report's layer gallery: what each depth paints, dreamed from the same noise."""

    layers: tuple[str, ...] | None  # None = `count` layers spread from early to late
    count: int
    settings: DreamSettings


@dataclass(frozen=True)
class ReportConfig:
    out: Path
    title: str


def parse_gallery(top: Section, seed: int, budget_mb: int) -> GalleryConfig | None:
    """`layer_gallery: false` turns it off; `top` is the config's top-level section."""
    if top.has("layer_gallery") and top.data["layer_gallery"] is False:
        top.used.add("layer_gallery")
        return None
    sec = top.section("layer_gallery")
    layers = names_or_keyword(sec, "layers", "auto", "layer names")
    count = sec.get("count", int, 4, check=lambda v: 1 <= v <= 16, fix="use a whole number from 1 to 16")
    settings = dream_settings(sec, DreamSettings(octaves=3, steps=24, jitter=4, memory_budget_mb=budget_mb), seed=seed)
    sec.finish()
    return GalleryConfig(layers, count, settings)


def parse_report(sec: Section, file: Path) -> ReportConfig:
    out = sec.get("out", str, "../reports/" + file.stem)
    title = sec.get("title", str, f"Audit of {file.stem}")
    sec.finish()
    return ReportConfig((file.parent / out).resolve(), title)
