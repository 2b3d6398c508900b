"""Scale benchmark: the audit of a real network (EfficientNet-Lite0, 224 px) at 10, 100 and 1000
classes, locally and on a local Ray instance, through the CLI as a user runs it.

    python benchmarks/scale/run.py [--runs 10:local,100:local,1000:local,10:ray1,10:ray2,...]

A realistic config: five concepts (the watermark demo's `cjk_watermark` and `latin_text` with
cutouts, a `date_stamp` with cutouts, and `frame_border` and `red_sticker` with examples only, so
their cutouts are found automatically), 100 real-photo probes, 100 negatives, every visualization
setting at its default (so the default `visualize.budget` decides who gets the full treatment).
Classes: the five published watermark classes plus a seeded sample (all 1000 at 1000).

Recorded per run: wall time, image-steps spent (audit.json), stage times, peak RSS of the process
tree (driver, Ray's processes and workers; summed RSS counts shared pages more than once, so it
is an upper bound), verdict and findings. From the runs, a projection of the 1000-class audit on
N machines: the stages Ray shards (visualization) divide by N, the others do not.
Results: benchmarks/results/scale.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "benchmarks" / ".cache" / "scale"
RESULTS = ROOT / "benchmarks" / "results"
WATERMARK = ("cardboard box / carton", "monitor", "broom", "apron", "safe")
DEFAULT_RUNS = "10:local,100:local,1000:local,10:ray1,10:ray2,100:ray1,100:ray2"
SHARDED = ("visualize preview", "visualize")  # the stages the Ray backend spreads over workers


def draw_concepts(data: Path, out: Path, seed: int = 0) -> dict[str, dict]:
    """Three more concepts, drawn over the demo's negative photos: a camera date stamp (with
    cutouts), a coloured frame border and a red round sticker (examples only)."""
    from PIL import Image, ImageDraw, ImageFont

    from audit.demo.imagenet import LATIN_FONTS, _font_path, composite

    negatives = sorted((data / "negatives").glob("*.png"))
    rng = np.random.default_rng([seed, 31])
    font = ImageFont.truetype(_font_path(LATIN_FONTS), 18)

    def stamp() -> np.ndarray:
        layer = Image.new("RGBA", (224, 224), (0, 0, 0, 0))
        text = f"'{rng.integers(98, 100)} {rng.integers(1, 13):02d} {rng.integers(1, 29):02d}"
        ImageDraw.Draw(layer).text((224 - 110 + rng.integers(-8, 9), 224 - 30 + rng.integers(-6, 5)), text,
                                   font=font, fill=(255, 140, 0, 235))
        return np.asarray(layer)

    def frame() -> np.ndarray:
        layer = Image.new("RGBA", (224, 224), (0, 0, 0, 0))
        width, colour = int(rng.integers(8, 16)), tuple(int(v) for v in rng.integers(0, 256, 3))
        ImageDraw.Draw(layer).rectangle([0, 0, 223, 223], outline=colour + (255,), width=width)
        return np.asarray(layer)

    def sticker() -> np.ndarray:
        layer = Image.new("RGBA", (224, 224), (0, 0, 0, 0))
        r, cx, cy = int(rng.integers(14, 26)), int(rng.integers(30, 194)), int(rng.integers(30, 194))
        ImageDraw.Draw(layer).ellipse([cx - r, cy - r, cx + r, cy + r], fill=(220, 20, 30, 255))
        return np.asarray(layer)

    bank = {}
    for name, draw, cutouts in (("date_stamp", stamp, True), ("frame_border", frame, False),
                                ("red_sticker", sticker, False)):
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(30):
            photo = np.asarray(Image.open(negatives[(i * 3) % len(negatives)]).convert("RGB"))
            Image.fromarray(composite(photo, draw())).save(folder / f"{name}_{i:02d}.png")
        bank[name] = {"examples": str(folder), "allowed_in": []}
        if cutouts:
            (out / f"{name}_cutouts").mkdir(exist_ok=True)
            for i in range(30):
                Image.fromarray(draw()).save(out / f"{name}_cutouts" / f"{name}_{i:02d}.png")
            bank[name]["cutouts"] = str(out / f"{name}_cutouts")
    return bank


def prepare() -> tuple[Path, Path, dict, list[str]]:
    """The converted model, the demo data and the extra concepts (cached)."""
    from audit.demo.imagenet import build
    from audit.model.pretrained.models import CLASSES_FILE, ensure_model

    model = ensure_model("efficientnet-lite0")
    data = build(CACHE / "demo_imagenet_data")
    bank = {name: {"examples": str(data / name), "cutouts": str(data / f"{name}_cutouts"), "allowed_in": []}
            for name in ("cjk_watermark", "latin_text")}
    bank.update(draw_concepts(data, CACHE / "concepts"))
    classes = [line.strip() for line in model.with_name(CLASSES_FILE).read_text().splitlines() if line.strip()]
    return model, data, bank, classes


def write_config(n: int, backend: str, workers: int, model: Path, data: Path, bank: dict,
                 classes: list[str]) -> Path:
    import yaml

    if n >= len(classes):
        chosen = None
    else:
        rest = [c for c in classes if c not in WATERMARK]
        picks = np.random.default_rng(0).choice(len(rest), n - len(WATERMARK), replace=False)
        chosen = list(WATERMARK) + [rest[i] for i in sorted(picks)]
    cfg = {"model": {"path": str(model), "classes_file": str(model.with_name("imagenet_classes.txt")),
                     "input_range": [0, 255]},
           "visualize": {"seed": 0, **({"classes": chosen} if chosen else {})},
           "concepts": {"negatives": str(data / "negatives"), "probes": str(data / "probes"), "bank": bank},
           "report": {"out": str(CACHE / "reports" / f"{n}_{backend}{workers}")}}
    if backend == "ray":
        cfg["execution"] = {"backend": "ray", "workers": workers}
    path = CACHE / "configs" / f"{n}_{backend}{workers}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


TICKS = os.sysconf("SC_CLK_TCK")


def _tree_usage(root: int) -> tuple[float, float]:
    """(summed VmRSS in MB, summed CPU seconds) of `root` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        pid, ppid = int(entry), int(fields.get("PPid", "0").strip() or 0)
        children.setdefault(ppid, []).append(pid)
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0] or 0)
        try:
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            cpu[pid] = (int(stat[11]) + int(stat[12])) / TICKS  # utime + stime
        except (OSError, IndexError, ValueError):
            pass
    total, seconds, stack = 0, 0.0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        seconds += cpu.get(pid, 0.0)
        stack.extend(children.get(pid, []))
    return total / 1024, seconds


def run_one(config: Path) -> dict:
    report = CACHE / "reports" / config.stem
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "audit", "run", str(config), "--out", str(report), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak, cpu = [0.0], [0.0]
    load_before = os.getloadavg()[0]

    def watch():
        while proc.poll() is None:
            rss, seconds = _tree_usage(proc.pid)
            peak[0], cpu[0] = max(peak[0], rss), max(cpu[0], seconds)  # a worker that exits keeps its last count
            time.sleep(0.5)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - start
    watcher.join()
    # the machine is shared: the CPU time the run got, and the load around it, say how fair the wall time is
    row = {"config": config.stem, "exit_code": proc.returncode, "wall_s": round(wall, 1),
           "cpu_s": round(cpu[0], 1), "cores_used": round(cpu[0] / wall, 2),
           "load_before": round(load_before, 1), "load_after": round(os.getloadavg()[0], 1),
           "peak_rss_mb": round(peak[0]), "stdout": stdout.strip()[-400:]}
    if proc.returncode not in (0, 1):
        row["error"] = stderr.strip()[-800:]
        return row
    data = json.loads((report / "audit.json").read_text())
    b = data["visualization"]["budget"]
    row.update(classes=len(data["visualization"]["classes"]), verdict=data["verdict"],
               image_steps=b["spent"], full_treatment=len(b["implicated"]) + len(b["sampled"]) if b["preview_steps"]
               else len(data["visualization"]["classes"]), preview_steps=b["preview_steps"],
               stages=data["timing_seconds"], budget_statement=b["statement"],
               findings=[f"{f['level']}: {f['concept']} in {f['class_name']}" for f in data["findings"]],
               report_mb=round((report / "index.html").stat().st_size / 2**20, 2))
    return row


def projection(rows: list[dict]) -> list[dict]:
    """The 1000-class audit on N machines, from the local 1000-class run's stage times: the sharded
    stages divide by N (at the efficiency the 2-worker Ray run reached on this machine, if run)."""
    base = next((r for r in rows if r["config"] == "1000_local1" and "stages" in r), None)
    if base is None:
        return []
    stages = {k: v for k, v in base["stages"].items() if not k.startswith("score concept:")}
    sharded = sum(v for k, v in stages.items() if k in SHARDED)
    serial = sum(stages.values()) - sharded
    overhead = base["wall_s"] - sum(stages.values())  # start-up: imports, model load outside stages
    return [{"machines": n, "wall_s_projected": round(overhead + serial + sharded / n, 1),
             "sharded_s": round(sharded / n, 1), "serial_s": round(serial + overhead, 1)} for n in (1, 2, 4, 8, 16)]


def write_markdown(result: dict, path: Path) -> None:
    lines = [f"# Scale benchmark ({result['date']}, {result['machine']})", "",
             "EfficientNet-Lite0 at 224 px, 5 concepts, 100 probes, default visualization settings "
             "(`make bench-scale`).", "",
             "| classes | backend | wall | CPU time (cores used) | image-steps | full treatment | peak RSS (tree) | verdict | report |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in result["runs"]:
        if "error" in r:
            lines.append(f"| {r['config']} | | failed (exit {r['exit_code']}) | | | | | | |")
            continue
        n, backend = r["config"].split("_", 1)
        lines.append(f"| {n} | {backend.replace('local1', 'local').replace('ray', 'ray x')} | "
                     f"{r['wall_s'] / 60:.1f} min | {r.get('cpu_s', 0) / 60:.1f} min ({r.get('cores_used', 'n/a')}) | "
                     f"{r['image_steps']:,} | {r['full_treatment']} | "
                     f"{r['peak_rss_mb']:,} MB | {r['verdict']} | {r['report_mb']} MB |")
    if result["projection"]:
        lines += ["", "Projection of the 1000-class audit on N machines (sharded stages / N):", "",
                  "| machines | wall (projected) |", "|---|---|"]
        lines += [f"| {p['machines']} | {p['wall_s_projected'] / 60:.1f} min |" for p in result["projection"]]
    path.write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default=DEFAULT_RUNS, help="N:local or N:rayW, comma-separated")
    ap.add_argument("--out", type=Path, default=RESULTS / "scale.json")
    args = ap.parse_args(argv)
    model, data, bank, classes = prepare()
    previous = json.loads(args.out.read_text())["runs"] if args.out.exists() else []
    rows = {r["config"]: r for r in previous}
    for spec in args.runs.split(","):
        n, how = spec.split(":")
        backend, workers = ("local", 1) if how == "local" else ("ray", int(how[3:] or 2))
        config = write_config(int(n), backend, workers, model, data, bank, classes)
        print(f"run {config.stem} ...", flush=True)
        row = run_one(config)
        print(json.dumps({k: v for k, v in row.items() if k not in ("stages", "stdout")}), flush=True)
        rows[config.stem] = row
    order = sorted(rows.values(), key=lambda r: (int(r["config"].split("_")[0]), r["config"]))
    result = {"date": dt.date.today().isoformat(), "machine": f"{os.cpu_count()}-core {platform.machine()} VM",
              "python": platform.python_version(), "runs": order, "projection": projection(order)}
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    write_markdown(result, args.out.with_suffix(".md"))
    print(args.out.with_suffix(".md").read_text())
    print(f"reports (to look at): {CACHE / 'reports'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
