"""Renderers: each reads the plain `audit.json` dict and writes one output format.
Adding an output touches no other stage."""

from __future__ import annotations

import json
from pathlib import Path

from audit.report import csv_table, html, junit, markdown

RENDERERS = {
    "index.html": html.render,
    "junit.xml": junit.render,
    "summary.md": markdown.render,
    "scores.csv": csv_table.render,
}


def render_all(folder: Path) -> None:
    """Render every output of a report folder from its audit.json."""
    folder = Path(folder)
    result = json.loads((folder / "audit.json").read_text())
    for name, render in RENDERERS.items():
        (folder / name).write_text(render(result, folder), encoding="utf-8")
