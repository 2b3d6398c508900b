"""Contact sheet of the validity benchmark data, to eyeball shapes and cues.

    python -m benchmarks.validity.preview     # writes benchmarks/.cache/validity_preview.png

Rows: clean scenes per class; each cue applied to scenes; concept examples per cue;
cutouts per cue over a grey checkerboard (so alpha is visible).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from benchmarks.validity.data import (CLASSES, CUES, SIZE, apply_cue, concept_examples, cue_cutouts,
                                      paste, scenes)

OUT = Path(__file__).resolve().parents[1] / ".cache" / "validity_preview.png"
COLS, GAP, ZOOM, LABEL_W = 12, 2, 4, 110


def rows() -> list[tuple[str, np.ndarray]]:
    mixed = np.arange(COLS) % len(CLASSES)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    checker = np.where(((yy // 4 + xx // 4) % 2)[..., None], 0.8, 0.6).astype(np.float32)
    return ([(c, scenes(np.full(COLS, k), seed=k)) for k, c in enumerate(CLASSES)]
            + [(f"+{cue}", apply_cue(cue, scenes(mixed, seed=100), seed=100 + j)) for j, cue in enumerate(CUES)]
            + [(f"concept {cue}", concept_examples(cue, COLS, seed=200)) for cue in CUES]
            + [(f"cutout {cue}", paste(checker, cue_cutouts(cue, COLS, seed=300))) for cue in CUES])


def main() -> Path:
    named = rows()
    cell = SIZE + GAP
    sheet = np.ones((len(named) * cell, COLS * cell, 3), np.float32)
    for r, (_, imgs) in enumerate(named):
        for c, img in enumerate(imgs):
            sheet[r * cell:r * cell + SIZE, c * cell:c * cell + SIZE] = img
    big = (np.repeat(np.repeat(sheet, ZOOM, 0), ZOOM, 1) * 255 + 0.5).astype(np.uint8)
    canvas = Image.new("RGB", (LABEL_W + big.shape[1], big.shape[0]), "white")
    canvas.paste(Image.fromarray(big), (LABEL_W, 0))
    draw = ImageDraw.Draw(canvas)
    for r, (name, _) in enumerate(named):
        draw.text((4, r * cell * ZOOM + SIZE * ZOOM // 2 - 6), name, fill="black")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(OUT)
    return OUT


if __name__ == "__main__":
    print(main())
