"""benchmarks/results/peers_real.{json,md,png} from the result of benchmarks/peers/run.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

BASE = "engine-default"


def _ratio(x: float | None, base: float | None) -> str:
    if not x or not base:
        return "–"
    r = x / base
    return f"{r:.1f}x" if r >= 1 else f"{r:.2f}x"


def _fmt(x, spec: str) -> str:
    return "–" if x is None else format(x, spec)


def _steps(summary: dict) -> str:
    mid = summary.get("recognizable_mid_schedule_at")
    return _fmt(summary.get("steps_to_recognizable"), "d") + (
        f" (recognizable at step {mid} of its schedule, not at its end)" if mid else "")


def markdown(r: dict) -> str:
    m, snaps, rows = r["machine"], r["snapshots"], r["settings"]
    base = rows.get(BASE, {})
    check = r.get("logits_check", {})
    maco = [r["classes"][i] for i in r["maco_class_positions"]]
    lines = [
        f"Time to a recognizable image, {r['date']}, {m['cpu']} ({m['cores']} cores, shared; 1-min load "
        f"{m['load_average_at_start']:.1f} at start), engine on TensorFlow {m['tensorflow']}, peers: {r['peer_venv']}. "
        f"EfficientNet-Lite0 (224 px, pixels 0..255, logits) makes one image per class for {len(r['classes'])} "
        f"ImageNet classes in {r['steps']} steps; EfficientNet-Lite2 (260 px) judges the 8-bit images at "
        f"{', '.join(map(str, snaps))} steps. *Recognizable* = Lite2 top-5 holds the class for >= "
        f"{100 * r['recognizable_top5']:.0f}% of the classes; *steps to recognizable* = the first such checkpoint; "
        f"*s to recognizable* = steps x ms per image-step (machine time per class image). Run took "
        f"{r.get('seconds', 0) / 60:.0f} min.", "",
        "| tool, setting | version | image px | ms / image-step | x engine | Lite2 top-1 / top-5 at "
        + " / ".join(map(str, snaps)) + " steps | Lite0 own top-1 (last) | steps to recognizable | "
        "s to recognizable | x engine | 1-min load at start |",
        "|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|"]
    for name, row in rows.items():
        label = row.get("label", name)
        if "error" in row:
            error = row["error"] if len(row["error"]) <= 200 else "…" + row["error"][-200:]
            lines.append(f"| {label} | | | error: {error} | | | | | | | |")
            continue
        by = row["by_steps"]
        acc = " ; ".join(f"{by[str(s)]['top1']:.2f} / {by[str(s)]['top5']:.2f}" if str(s) in by else "–"
                         for s in snaps)
        n = len(row["targets"])
        size = "x".join(map(str, row["image_size"]))
        lines.append(
            f"| {label}{f' ({n} classes)' if n != len(r['classes']) else ''} | {row['library_version']} | {size} | "
            f"{row['ms_per_image_step']:.1f} | {_ratio(row['ms_per_image_step'], base.get('ms_per_image_step'))} | "
            f"{acc} | {by[str(r['steps'])]['own_top1']:.2f} | {_steps(row)} | "
            f"{_fmt(row['seconds_to_recognizable'], '.1f')} | "
            f"{_ratio(row['seconds_to_recognizable'], base.get('seconds_to_recognizable'))} | "
            f"{row.get('load_average_at_start', float('nan')):.1f} |")
    lines += ["", f"On MaCo's {len(maco)} classes only ({', '.join(maco)}): steps / s to recognizable",
              "", "| tool, setting | top-5 at " + " / ".join(map(str, snaps)) + " | steps | s |", "|---|---|---:|---:|"]
    positions = r["maco_class_positions"]
    for name, row in rows.items():
        if "by_steps" not in row:
            continue
        sub = row if name == "xplique-maco" else row.get("on_maco_classes", {})
        pick = slice(None) if name == "xplique-maco" else positions
        top5 = " / ".join(f"{np.mean(np.array(row['by_steps'][str(s)]['rank'])[pick] < 5):.2f}"
                          if str(s) in row["by_steps"] else "–" for s in snaps)
        lines.append(f"| {row.get('label', name)} | {top5} | {_steps(sub)} | "
                     f"{_fmt(sub.get('seconds_to_recognizable'), '.1f')} |")
    if "max_abs_logit_diff" in check:
        lines += ["", f"Same network on both sides: the peer venv's Keras loads the same .keras file; logits of two "
                  f"fixed random images differ by at most {check['max_abs_logit_diff']:.2e} (logits up to "
                  f"{check['logit_scale']:.1f}), same top-5: {check['same_top5']}."]
    elif check:
        lines += ["", f"Logits check failed: {check.get('error')}"]
    lines += ["", "Classes: " + ", ".join(r["classes"]), ""]
    return "\n".join(lines)


def contact_sheet(r: dict, path: Path, columns: int = 8, size: int = 96) -> None:
    """One row per setting, the last step's image of MaCo's classes then the next classes; under
    each tile Lite2's rank of the class (1 = its top-1)."""
    from PIL import Image, ImageDraw

    positions = list(r["maco_class_positions"])
    positions += [i for i in range(len(r["classes"])) if i not in positions][:columns - len(positions)]
    rows = [(n, row) for n, row in r["settings"].items() if "npz" in row and Path(row["npz"]).exists()]
    label_w, head, foot = 150, 26, 12
    sheet = Image.new("RGB", (label_w + size * len(positions), head + (size + foot) * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    for j, p in enumerate(positions):
        draw.text((label_w + j * size + 2, 2 + 12 * (j % 2)), r["classes"][p][:16], fill="black")
    for i, (name, row) in enumerate(rows):
        y = head + i * (size + foot)
        for k, part in enumerate(_wrap(name, 22)):
            draw.text((4, y + size // 2 - 12 + 12 * k), part, fill="black")
        with np.load(row["npz"]) as z:
            images = z[f"step{r['steps']}"]
        ranks = row["by_steps"][str(r["steps"])]["rank"]
        for j, p in enumerate(positions):
            k = row["targets"].index(r["targets"][p]) if r["targets"][p] in row["targets"] else None
            if k is None:
                continue
            tile = Image.fromarray(images[k]).resize((size, size), Image.Resampling.LANCZOS)
            sheet.paste(tile, (label_w + j * size, y))
            draw.text((label_w + j * size + 2, y + size), f"Lite2 rank {ranks[k] + 1}", fill="black")
    sheet.save(path, optimize=True)


def _wrap(text: str, width: int) -> list[str]:
    words, lines = text.split(), [""]
    for w in words:
        lines[-1:] = [lines[-1] + " " + w] if len(lines[-1]) + len(w) < width else [lines[-1], w]
    return [line.strip() for line in lines if line.strip()]


def write(r: dict, out: Path) -> None:
    from run import LABELS

    for name, row in r["settings"].items():
        row.setdefault("label", LABELS.get(name, name))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(r, indent=1))
    out.with_suffix(".md").write_text(markdown(r))
    contact_sheet(r, out.with_suffix(".png"))
