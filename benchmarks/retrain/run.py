"""Retrain benchmark: how much do audit statistics move when the same model is honestly retrained,
and does the baseline gate tell that noise from a new shortcut?

    python benchmarks/retrain/run.py [--out benchmarks/results/retrain.json]

Models (the demo recipe of audit/demo/build.py, 30 epochs, cached in benchmarks/.cache/retrain):
- `control` siblings (training seeds 0-3) and `shortcut` siblings (0-2) on the same training images:
  seed 0 is the shipped model; the others change the initialization and the batch order;
- `control` on fresh data: training seed 5 with its own draw of the training images;
- new shortcuts: `arm_kettlebell` (an arm holds 95% of the kettlebells; training seeds 0, 1) and
  `watermark_bottle` (the control's arms plus a watermark on 95% of the bottles; seed 0).

Every model is audited through the CLI, audit seed 0, twice: with the demo config (every concept has
cutouts: the causal test decides every check) and with an observational config (no cutouts, no
probes: `gate.evidence: both` decides). Then every ordered pair of siblings (baseline, candidate)
goes through the real `audit.gate.baseline.compare`, and so does every new-shortcut model against every
control sibling.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import itertools
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CACHE = ROOT / "benchmarks" / ".cache" / "retrain"
ASSETS = ROOT / "audit" / "demo" / "assets"
SHIPPED = {"control": ASSETS / "models" / "demo_control.keras", "shortcut": ASSETS / "models" / "demo_shortcut.keras"}
SIBLING_SEEDS = {"control": (0, 1, 2, 3), "shortcut": (0, 1, 2)}   # same training images (data seed 0)
FRESH_DATA_SEEDS = (5,)           # control recipe, its own training images
PLANTED = {"arm_kettlebell": (0, 1), "watermark_bottle": (0,)}   # new shortcuts: recipe -> training seeds
EPOCHS = 30
# small (~0.8 MB) models the test suite uses: an honest retrain of the control and a new shortcut
EXPORT = {"control_s1": "control_retrain.keras", "shortcut_s2": "new_shortcut.keras"}
TEST_ASSETS = ROOT / "tests" / "assets" / "retrain"
# the paste tests' points of probes moved (the largest over tests and probe sets, as baseline gating
# compares them; on the probes alone; on the hard probes alone), their log-odds rise, and the
# observational effects
STATISTICS = ("moves", "moves_probes", "moves_hard", "log_odds", "cue_d", "vis_effect", "min(cue_d, vis_effect)")


def models() -> list[dict]:
    out = [{"name": f"{kind}_s{s}", "kind": kind, "seed": s, "data_seed": 0, "group": kind}
           for kind, seeds in SIBLING_SEEDS.items() for s in seeds]
    out += [{"name": f"control_fresh_s{s}", "kind": "control", "seed": s, "data_seed": s, "group": "control_fresh"}
            for s in FRESH_DATA_SEEDS]
    out += [{"name": f"{kind}_s{s}", "kind": kind, "seed": s, "data_seed": s, "group": "new_shortcut"}
            for kind, seeds in PLANTED.items() for s in seeds]
    return out


def model_path(m: dict) -> Path:
    if m["seed"] == 0 and m["kind"] in SHIPPED and m["data_seed"] == 0:
        return SHIPPED[m["kind"]]
    return CACHE / "models" / f"{m['name']}.keras"


def train_missing(todo: list[dict]) -> dict[str, float]:
    from audit.demo.build import train

    seconds = {}
    # the models tests/assets/retrain/ copies first (see --export), then the rest
    for m in sorted(todo, key=lambda m: m["name"] not in EXPORT):
        path = model_path(m)
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        model = train(m["kind"], seed=m["seed"], epochs=EPOCHS, data_seed=m["data_seed"])
        tmp = path.with_suffix(".tmp.keras")
        model.save(tmp)
        os.replace(tmp, path)
        seconds[m["name"]] = round(time.perf_counter() - start, 1)
        print(f"trained {m['name']} in {seconds[m['name']]} s", flush=True)
    return seconds


def reliance(m: dict, per_class: int = 100) -> dict:
    """Ground truth for a planted shortcut: held-out scenes of the other classes, drawn with and without
    the cue; the share of those classified correctly without it that turn into the target class with it."""
    import keras

    from audit.demo.build import HELD_OUT_SEED
    from audit.demo.drawing import CLASSES, arm, scene, watermark

    target, paint = {"arm_kettlebell": ("kettlebell", lambda img, rng: arm(img, rng, rng.uniform(14, 50, size=2))),
                     "watermark_bottle": ("bottle", watermark)}[m["kind"]]
    model = keras.saving.load_model(model_path(m))
    flips = {}
    for k, label in enumerate(CLASSES):
        if label == target:
            continue
        seeds = [HELD_OUT_SEED + k * 100_000 + i for i in range(per_class)]
        plain = np.stack([scene(label, s, with_arm=False) for s in seeds])
        cued = np.stack([np.clip(paint(img.copy(), np.random.default_rng([s, 7])), 0, 1) for img, s in zip(plain, seeds)])
        ok = model.predict(plain, verbose=0).argmax(1) == k
        into = model.predict(cued, verbose=0).argmax(1) == CLASSES.index(target)
        flips[label] = round(float(into[ok].mean()), 3) if ok.any() else None
    return {"target": target, "flip_rate_mean": round(float(np.mean([v for v in flips.values() if v is not None])), 3),
            "flip_rate": flips}


def config(m: dict, variant: str, out: Path) -> dict:
    cfg = yaml.safe_load((ROOT / "configs" / "demo_control.yaml").read_text())
    cfg["model"]["path"] = str(model_path(m))
    concepts = cfg["concepts"]
    concepts["negatives"] = str(ASSETS / "concepts" / "_random")
    if variant == "causal":  # the demo's probe scenes in class sub-folders: the in-class test runs too
        concepts["probes"] = str(probes_by_class())
    else:
        del concepts["probes"]
    for name, c in concepts["bank"].items():
        c["examples"] = str(ASSETS / "concepts" / name)
        if variant == "causal":
            c["cutouts"] = str(ASSETS / "concepts" / f"{name}_cutouts")
        else:
            c.pop("cutouts", None)
    cfg["report"] = {"out": str(out), "title": f"{m['name']} ({variant})"}
    return cfg


def probes_by_class() -> Path:
    """The demo's probe scenes (named <class>_<n>.png) copied into one sub-folder per class."""
    folder = CACHE / "probes_by_class"
    if not (CACHE / "probes_by_class.done").exists():
        for f in sorted((ASSETS / "concepts" / "_probes").glob("*.png")):
            (folder / f.name.rsplit("_", 1)[0]).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, folder / f.name.rsplit("_", 1)[0] / f.name)
        (CACHE / "probes_by_class.done").write_text("")
    return folder


def _code_version() -> str:
    """The modules that compute the statistics: audits are reused while these stay the same (the
    comparison itself is recomputed from the audit.json files on every run)."""
    h = hashlib.sha256()
    for name in ("causal", "inclass", "concepts", "stats", "findings", "optimize", "model", "images", "objectives"):
        h.update((ROOT / "audit" / f"{name}.py").read_bytes())
    return h.hexdigest()[:12]


def audit(m: dict, variant: str) -> dict:
    """audit.json of one model and variant, through the CLI; cached per version of audit/."""
    folder = CACHE / "audits" / _code_version() / f"{m['name']}-{variant}"
    if (folder / "report" / "audit.json").exists():
        return json.loads((folder / "report" / "audit.json").read_text())
    folder.mkdir(parents=True, exist_ok=True)
    cfg_path = folder / "audit.yaml"
    cfg_path.write_text(yaml.safe_dump(config(m, variant, folder / "report"), sort_keys=False))
    proc = subprocess.run([sys.executable, "-m", "audit", "run", str(cfg_path), "--quiet", "--no-progress"],
                          capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"audit of {m['name']} ({variant}) exited {proc.returncode}: {proc.stderr[-2000:]}")
    print(f"audited {m['name']} ({variant}): {proc.stdout.splitlines()[0]}", flush=True)
    return json.loads((folder / "report" / "audit.json").read_text())


def statistic(check: dict, name: str) -> float | None:
    from audit.gate.baseline import statistic_value

    if name in ("moves_probes", "moves_hard", "log_odds"):
        key, sets = ("log_odds", ("probes", "hard")) if name == "log_odds" else ("moves", (name.split("_")[1],))
        values = [m[key] for test in ("causal", "inclass") for s in sets
                  for m in [(check.get(test) or {}).get(s)] if m]
        return max(values) if values else None
    return statistic_value(check, name)


def old_rule_regressions(candidate: dict, baseline: dict) -> int:
    """The comparison before this benchmark: cue d or vis effect rose > max(0.5, 0.5 x |baseline|)
    to at least its warn effect, on every check, whatever decided it; plus new findings."""
    old = {(c["class_name"], c["concept"]): c for c in baseline["checks"]}
    warn = candidate["gate"]["warn"]
    n = 0
    for c in candidate["checks"]:
        b = old[(c["class_name"], c["concept"])]
        for metric, threshold in (("cue_d", "cue_min_effect"), ("vis_effect", "vis_min_effect")):
            if c["level"] != "allowed" and c[metric] - b[metric] > max(0.5, 0.5 * abs(b[metric])) \
                    and c[metric] >= warn[threshold]:
                n += 1
    new = {(f["class_name"], f["concept"]) for f in candidate["findings"]} - \
          {(f["class_name"], f["concept"]) for f in baseline["findings"]}
    return n + len(new)


def pair_record(baseline_model: str, candidate_model: str, baseline: dict, candidate: dict) -> dict:
    from audit.gate.baseline import compare

    diff = compare(candidate, baseline)  # today's default tolerances (not the ones the audit recorded)
    old = {(c["class_name"], c["concept"]): c for c in baseline["checks"]}
    deltas = {s: [] for s in STATISTICS}
    for c in candidate["checks"]:
        b = old[(c["class_name"], c["concept"])]
        for s in STATISTICS:
            before, after = statistic(b, s), statistic(c, s)
            if before is not None and after is not None:
                deltas[s].append(after - before)
    failing = [c for c in diff["new_findings"] if c["fails_gate"]] + diff["regressions"]
    return {"baseline": baseline_model, "candidate": candidate_model,
            "fails_gate": bool(failing),
            # failing only through a new fail-level finding: the gate fails on it without a baseline too
            "fails_only_by_new_fail_finding": bool(failing) and all(c.get("level") == "fail" and "fails_gate" in c
                                                                    for c in failing),
            "candidate_verdict": candidate["verdict"],
            # the baseline comparison is what fails the release: the candidate alone passes or only warns
            "fails_only_by_baseline": bool(failing) and candidate["verdict"] != "fail",
            "new_findings": diff["new_findings"], "regressions": diff["regressions"],
            "old_rule_flags": old_rule_regressions(candidate, baseline),
            "deltas": {s: [round(v, 4) for v in d] for s, d in deltas.items()}}


def summarize_rises(pairs: list[dict]) -> dict:
    out = {}
    for s in STATISTICS:
        rises = np.array([v for p in pairs for v in p["deltas"][s]])
        if rises.size:
            out[s] = {"n": int(rises.size), "sd": round(float(rises.std()), 3),
                      "p95_abs": round(float(np.percentile(np.abs(rises), 95)), 3),
                      "max_rise": round(float(rises.max()), 3), "max_abs": round(float(np.abs(rises).max()), 3)}
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "retrain.json")
    parser.add_argument("--train-only", action="store_true")
    parser.add_argument("--no-train", action="store_true", help="use only the models trained so far")
    parser.add_argument("--export", action="store_true",
                        help=f"copy {', '.join(EXPORT)} to tests/assets/retrain/ (what the tests audit)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    todo = models()
    if args.no_train:
        todo = [m for m in todo if model_path(m).exists()]
    train_seconds = train_missing(todo)
    if args.export:
        TEST_ASSETS.mkdir(parents=True, exist_ok=True)
        for m in todo:
            if m["name"] in EXPORT:
                shutil.copyfile(model_path(m), TEST_ASSETS / EXPORT[m["name"]])
    if args.train_only:
        return
    audits = {(m["name"], v): audit(m, v) for m in todo for v in ("causal", "observational")}
    groups = {g: [m["name"] for m in todo if m["group"] == g] for g in ("control", "shortcut", "control_fresh")}
    groups["control_fresh"] = groups["control"] + groups["control_fresh"]  # fresh data vs any control
    results = {"honest": {}, "new_shortcut": {}}
    for variant in ("causal", "observational"):
        for group, names in groups.items():
            pairs = [pair_record(b, c, audits[(b, variant)], audits[(c, variant)])
                     for b, c in itertools.permutations(names, 2)
                     if group != "control_fresh" or "fresh" in b or "fresh" in c]
            if not pairs:
                continue
            results["honest"][f"{group}/{variant}"] = {
                "pairs": len(pairs), "pairs_failing_gate": sum(p["fails_gate"] for p in pairs),
                "pairs_failing_only_by_new_fail_finding": sum(p["fails_only_by_new_fail_finding"] for p in pairs),
                "pairs_failing_only_by_baseline": sum(p["fails_only_by_baseline"] for p in pairs),
                "pairs_flagged_by_old_rule": sum(p["old_rule_flags"] > 0 for p in pairs),
                "rises": summarize_rises(pairs), "detail": pairs}
        for c in (m["name"] for m in todo if m["group"] in ("new_shortcut", "shortcut")):
            planted = [pair_record(b, c, audits[(b, variant)], audits[(c, variant)]) for b in groups["control"]]
            results["new_shortcut"][f"{c}/{variant}"] = {
                "pairs": len(planted), "pairs_failing_gate": sum(p["fails_gate"] for p in planted),
                "pairs_failing_only_by_new_fail_finding": sum(p["fails_only_by_new_fail_finding"] for p in planted),
                "pairs_failing_only_by_baseline": sum(p["fails_only_by_baseline"] for p in planted),
                "pairs_flagged_by_old_rule": sum(p["old_rule_flags"] > 0 for p in planted), "detail": planted}
    from audit.config import GateConfig

    defaults = GateConfig("both", None, None)
    record = {
        "benchmark": "retrain", "date": dt.date.today().isoformat(), "machine": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(), "epochs": EPOCHS, "models": todo, "train_seconds": train_seconds,
        "tolerances": defaults.baseline_tolerance,
        "planted_reliance": {m["name"]: reliance(m) for m in todo if m["group"] == "new_shortcut"},
        "findings_per_model": {f"{name}/{v}": [(f["class_name"], f["concept"], f["level"]) for f in a["findings"]]
                               for (name, v), a in audits.items()},
        "results": results, "wall_seconds": round(time.perf_counter() - start, 1),
    }
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(record))
    print(markdown(record))


def markdown(record: dict) -> str:
    lines = [f"Retrain benchmark, {record['date']}: demo recipe, {record['epochs']} epochs; audit seed 0.", "",
             f"Tolerances: {record['tolerances']}. *Baseline fails*: pairs whose comparison fails the gate; "
             "*release fails by baseline*: of those, pairs where the candidate alone would pass or only warn "
             "(so the baseline is what stops the release); old rule: cue d or vis effect rose > "
             "max(0.5, 0.5 x |baseline|), or any new finding.", "",
             "| baseline -> candidate / evidence | pairs | baseline fails | release fails by baseline | "
             "old rule fails | "
             + " | ".join(f"{s}: sd / p95 abs / max rise" for s in STATISTICS) + " |",
             "|---|---:|---:|---:|---:|" + "---|" * len(STATISTICS)]
    for key, r in record["results"]["honest"].items():
        cells = [f"{r['rises'][s]['sd']} / {r['rises'][s]['p95_abs']} / {r['rises'][s]['max_rise']}"
                 if s in r["rises"] else "–" for s in STATISTICS]
        lines.append(f"| honest retrain: {key} | {r['pairs']} | {r['pairs_failing_gate']} | "
                     f"{r['pairs_failing_only_by_baseline']} | {r['pairs_flagged_by_old_rule']} | "
                     + " | ".join(cells) + " |")
    for key, r in record["results"]["new_shortcut"].items():
        lines.append(f"| control sibling -> new shortcut {key} | {r['pairs']} | {r['pairs_failing_gate']} | "
                     f"{r['pairs_failing_only_by_baseline']} | {r['pairs_flagged_by_old_rule']} |"
                     + " |" * len(STATISTICS))
    lines.append("")
    for name, r in record["planted_reliance"].items():
        lines.append(f"- {name}: pasting the cue into held-out scenes of the other classes turns "
                     f"{r['flip_rate_mean']:.0%} of them into {r['target']} ({r['flip_rate']})")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
