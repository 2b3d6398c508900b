"""Discovery on the validity benchmark, with an empty concept bank.

    python benchmarks/discovery/run.py [--smoke] [--jobs 1] [--out benchmarks/results/discovery.json]

For each of the validity benchmark's 30 models (benchmarks/validity/run.py trains them; they are
reused from its cache) a validation sample is drawn from the model's own training distribution
(the same planted cues at the same rho, a seed no training or test set uses, 40 per class, in
class sub-folders) and `audit discover` runs on it through the CLI with the benchmark's
background negatives for the control pastes. No concept is named anywhere.

Scored against the benchmark's ground truth:
* found: for every relying (cue, class) pair (pasting the cue flips >= half of the other classes'
  held-out images), does the class have a discovered pattern whose cutouts overlap the cue's
  pixels (mean IoU >= 0.3 over its cutouts cut from probes that carry the cue; the benchmark knows
  each probe's cue mask) and whose insertion test is significant (Holm-adjusted p <= 0.05)?
* controls: on rho = 0 models, patterns above `review`;
* top-ranked patterns that are not cues: each class's pattern 1 (largest share of its evidence)
  and every `warn` pattern, matched against every cue present in its cutouts' probes.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "benchmarks" / "validity"))
import data  # noqa: E402
import run as validity  # noqa: E402

CACHE = ROOT / "benchmarks" / ".cache" / "discovery"
PROBES_PER_CLASS = 40
PROBE_SEED = 9100      # + training seed; validity uses 1000+ (train), 5000+ (test), 7000-8500 (bank)
IOU_MIN, P_MAX = 0.3, 0.05
CUE_ALPHA = 0.03       # a pixel belongs to the cue where its alpha exceeds this (the faint cue is 0.06)


def probes_for(name: str, rho: float, seed: int) -> tuple[Path, np.ndarray, dict]:
    """Class sub-folders drawn like the training set; returns (folder, images, cue masks {cue: (N, H, W)})."""
    labels = np.repeat(np.arange(len(data.CLASSES)), PROBES_PER_CLASS)
    images, planted = data.plant(labels, rho, validity.cue_targets(seed), seed=PROBE_SEED + seed)
    masks = {cue: (data.cue_cutouts(cue, len(labels), PROBE_SEED + seed)[..., 3] > CUE_ALPHA) & planted[:, j, None, None]
             for j, cue in enumerate(data.CUES)}
    folder = CACHE / "probes" / name
    if not (folder / "done").exists():
        for k, cls in enumerate(data.CLASSES):
            data.save_folder(images[labels == k], folder / cls)
        (folder / "done").write_text("")
    return folder, images, masks


def discover(model: Path, arch: str, probes: Path, seed: int, version: str | None = None) -> dict:
    out = CACHE / "runs" / (version or validity.code_version()) / f"{model.stem}_a{seed}"
    if version and not (out / "discovery.json").exists():
        raise SystemExit(f"no cached run of code version {version} for {model.stem}")
    if not (out / "discovery.json").exists():
        classes = CACHE / "classes.txt"
        classes.write_text("\n".join(data.CLASSES) + "\n")
        lo, hi = validity.INPUT_RANGE[arch]
        bank = validity.write_bank()
        cmd = [sys.executable, "-m", "audit", "discover", "--model", str(model), "--probes", str(probes),
               "--classes-file", str(classes), f"--input-range={lo:g},{hi:g}", "--negatives",
               str(bank / "_negatives"), "--seed", str(seed), "--out", str(out), "--quiet"]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        if proc.returncode not in (0, 1):
            raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.strip()[-600:]}")
    return json.loads((out / "discovery.json").read_text()) | {"folder": str(out)}


def cue_overlap(result: dict, entry: dict, images: np.ndarray, masks: dict) -> dict[str, float]:
    """Mean IoU with each cue over the pattern's cutouts whose source probe carries that cue."""
    from PIL import Image

    index = {(np.asarray(img * 255 + 0.5, np.uint8)).tobytes(): i for i, img in enumerate(images)}
    ious = {cue: [] for cue in data.CUES}
    for rel in entry["cutouts"]:
        rgba = np.asarray(Image.open(Path(result["folder"]) / rel))
        i = index.get(rgba[..., :3].tobytes())
        if i is None:
            continue
        region = rgba[..., 3] > 127
        for cue in data.CUES:
            m = masks[cue][i]
            if m.any():
                ious[cue].append(float((region & m).sum() / max((region | m).sum(), 1)))
    return {cue: float(np.mean(v)) for cue, v in ious.items() if v}


def evaluate(model_info: dict, result: dict, images: np.ndarray, masks: dict) -> list[dict]:
    rows = []
    for e in result["discovered"]:
        overlap = cue_overlap(result, e, images, masks)
        best = max(overlap.items(), key=lambda kv: kv[1], default=(None, 0.0))
        rows.append({"model": model_info["name"], "arch": model_info["arch"], "rho": model_info["rho"],
                     "class": e["class_name"], "pattern": e["pattern"], "level": e["level"], "share": e["share"],
                     "kept_without": e["kept_without"], "causal_effect": e["causal_effect"],
                     "causal_shift": e["causal_shift"], "causal_p_adjusted": e["causal_p_adjusted"],
                     "best_cue": best[0], "best_iou": best[1], "iou": overlap})
    return rows


def opt_in_warn(r: dict) -> bool:
    """The opt-in `discover.warn` rule with its documented defaults (gate.causal's warn line, min_kept
    0.5), recomputed from each pattern's statistics: the default settings leave every pattern at review."""
    p, kept = r["causal_p_adjusted"], r["kept_without"]
    return (p is not None and p <= 0.05 and kept is not None and kept >= 0.5
            and ((r["causal_effect"] or 0.0) >= 0.05 or (r["causal_shift"] or 0.0) >= 0.35))


def summarize(models: list[dict], rows: list[dict]) -> dict:
    by_class = {}
    for r in rows:
        by_class.setdefault((r["model"], r["class"]), []).append(r)
    relying, found = [], []
    for m in models:
        for cue, truth in m["truth"]["cues"].items():
            for cls, flip in truth["flip_rate"].items():
                if flip < validity.RELIES:
                    continue
                hits = [r for r in by_class.get((m["name"], cls), [])
                        if r["iou"].get(cue, 0.0) >= IOU_MIN and r["causal_p_adjusted"] is not None
                        and r["causal_p_adjusted"] <= P_MAX]
                relying.append({"model": m["name"], "rho": m["rho"], "cue": cue, "class": cls, "flip_rate": flip,
                                "found": bool(hits), "best_iou": max((r["iou"].get(cue, 0.0)
                                                                     for r in by_class.get((m["name"], cls), [])),
                                                                    default=0.0),
                                "levels": sorted({r["level"] for r in hits}),
                                "found_warn_rule": any(opt_in_warn(r) for r in hits)})
                found.append(bool(hits))
    controls = [r for r in rows if r["rho"] == 0]
    first = [r for r in rows if r["pattern"] == 1]
    warn = [r for r in rows if opt_in_warn(r)]
    is_cue = lambda r: r["best_iou"] >= IOU_MIN  # noqa: E731
    return {
        "relying_pairs": len(relying), "relying_found": int(sum(found)),
        "relying_found_warn_rule": int(sum(p["found_warn_rule"] for p in relying)),
        "relying": relying,
        "control_patterns": len(controls), "control_above_review": int(sum(r["level"] != "review" for r in controls)),
        "control_warn_rule": int(sum(opt_in_warn(r) for r in controls)),
        "pattern1_total": len(first), "pattern1_not_cue": int(sum(not is_cue(r) for r in first)),
        "warn_total": len(warn), "warn_not_cue": int(sum(not is_cue(r) for r in warn)),
        "warn_not_cue_non_control": int(sum(not is_cue(r) for r in warn if r["rho"] > 0)),
    }


def markdown(r: dict) -> str:
    s, m = r["summary"], r["machine"]
    lines = [f"Discovery on the validity benchmark, {m['date']}, {m['cpu']} ({m['cores']} cores): {len(r['models'])} "
             f"models, empty concept bank, {PROBES_PER_CLASS} probes per class drawn like the training set; "
             f"{r['seconds']['total']:.0f} s this invocation ({r['seconds']['per_model_median']:.1f} s median per "
             f"model's `audit discover`; audit code version {r['design']['audit_code_version']}).", "",
             "| measure | value |", "|---|---:|",
             f"| relying (cue, class) pairs with a significant pattern on the cue (IoU >= {IOU_MIN}) | "
             f"**{s['relying_found']} / {s['relying_pairs']}** |",
             f"| ... of which the opt-in warn rule flags | {s['relying_found_warn_rule']} / {s['relying_pairs']} |",
             f"| patterns above review on rho = 0 controls, levels as run | **{s['control_above_review']} / "
             f"{s['control_patterns']}** |",
             f"| ... with the opt-in warn rule | {s['control_warn_rule']} / {s['control_patterns']} |",
             f"| pattern 1 of a class (largest share) that is not a cue | {s['pattern1_not_cue']} / {s['pattern1_total']} |",
             f"| patterns the opt-in warn rule flags that are not a cue (all models) | {s['warn_not_cue']} / {s['warn_total']} "
             f"({s['warn_not_cue_non_control']} at rho > 0) |", "",
             "| model | cue | class | flip rate | found | best IoU | opt-in warn rule |", "|---|---|---|---:|---|---:|---|"]
    for p in s["relying"]:
        lines.append(f"| {p['model']} | {p['cue']} | {p['class']} | {p['flip_rate']:.2f} | {'yes' if p['found'] else 'no'} "
                     f"| {p['best_iou']:.2f} | {'yes' if p['found_warn_rule'] else 'no'} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="2 models (plain, rho 0 and 1)")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--code-version", help="rescore the cached runs of this audit code version instead of running")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "discovery.json"))
    args = ap.parse_args(argv)
    started = time.perf_counter()
    grid = ([("plain", 0.0, 0), ("plain", 1.0, 0)] if args.smoke else
            [(a, r, s) for r in validity.RHOS for a in validity.ARCHS for s in validity.TRAIN_SEEDS])
    models = []
    for arch, rho, seed in grid:
        path = validity.train(arch, rho, seed)
        truth_file = path.with_suffix(".truth.json")
        if not truth_file.exists():
            truth_file.write_text(json.dumps(validity.ground_truth(path, arch, seed)))
        models.append({"name": path.stem, "arch": arch, "rho": rho, "seed": seed, "path": path,
                       "truth": json.loads(truth_file.read_text())})
    prepared = {m["name"]: probes_for(m["name"], m["rho"], m["seed"]) for m in models}

    def one(m):
        t = time.perf_counter()
        result = discover(m["path"], m["arch"], prepared[m["name"]][0], 0, args.code_version)
        return result, time.perf_counter() - t

    with cf.ThreadPoolExecutor(args.jobs) as pool:
        done = list(pool.map(one, models))
    rows, seconds = [], []
    for m, (result, sec) in zip(models, done):
        _, images, masks = prepared[m["name"]]
        rows += evaluate(m, result, images, masks)
        seconds.append(result["timing_seconds"].get("discover", sec))
    out = {
        "machine": {"cpu": validity._cpu(), "cores": os.cpu_count(), "python": platform.python_version(),
                    "date": dt.date.today().isoformat()},
        "design": {"probes_per_class": PROBES_PER_CLASS, "iou_min": IOU_MIN, "p_max": P_MAX,
                   "audit_code_version": args.code_version or validity.code_version(), "smoke": args.smoke},
        "models": [{k: m[k] for k in ("name", "arch", "rho", "seed")} for m in models],
        "summary": summarize(models, rows),
        "seconds": {"total": time.perf_counter() - started, "per_model_median": float(np.median(seconds))},
        "rows": rows,
    }
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    table = markdown(out)
    path.with_suffix(".md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
