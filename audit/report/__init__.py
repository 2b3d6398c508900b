"""Renderers: each reads the plain `audit.json` dict and writes one output format.
Adding an output touches no other stage."""

from __future__ import annotations

import json
from pathlib import Path

from audit.report import csv_table, html, junit, markdown

RENDERERS = {  # per kind of result: its source file and the outputs rendered from it
    "audit": ("audit.json", {
        "index.html": html.render,
        "junit.xml": junit.render,
        "summary.md": markdown.render,
        "scores.csv": csv_table.render,
    }),
    "dream": ("dream.json", {"index.html": html.render_dream}),
    "discovery": ("discovery.json", {"index.html": html.render_discovery}),
}


def render_all(folder: Path) -> None:
    """Render every output of a report folder from its audit.json (or dream.json)."""
    folder = Path(folder)
    kind = next((k for k, (source, _) in RENDERERS.items() if (folder / source).exists()), "dream")
    source, renderers = RENDERERS[kind]
    result = json.loads((folder / source).read_text())
    for name, render in renderers.items():
        (folder / name).write_text(render(result, folder), encoding="utf-8")
