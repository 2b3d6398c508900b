"""Validity benchmark: does the gate catch planted shortcuts and stay quiet on clean models?

    python benchmarks/validity/run.py [--smoke] [--jobs 2] [--out benchmarks/results/validity.json]

Design (docs/evidence.md, "Validity"): six shape classes; each training set plants all five cues at
correlation rho, each cue on its own target class (the pairing is a permutation drawn from
the training seed; one class carries no cue), so every trained model gives five planted
(cue, class) cases and 25 unplanted ones. P(cue | target) = (1 + rho) / 2 and
P(cue | other class) = (1 - rho) / 2: rho = 0 is the control, where every cue appears in half
of every class. Models: rho x architecture x training seed, cached by name.

Ground truth for every (model, cue, class) comes from interventions on held-out clean scenes:
the flip rate (non-class images that become the class when the cue is pasted), the class
accuracy with and without the cue, and clean accuracy. The audit runs through its CLI on a
generated YAML config per model and audit seed, exactly as a user would run it.
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
sys.path.insert(0, str(HERE))
import data  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))
from truth import CLEAN, RELYING, exact_cue_truth  # noqa: E402

CACHE = ROOT / "benchmarks" / ".cache" / "validity"
RHOS = (0.0, 0.5, 0.8, 0.95, 1.0)
ARCHS = ("plain", "bn255", "residual")
TRAIN_SEEDS = (0, 1)
AUDIT_SEEDS = (0, 1, 2)
TRAIN_PER_CLASS, TEST_PER_CLASS, EPOCHS = 400, 200, 12
LEARNING_RATE = {"plain": 3e-3, "bn255": 3e-3, "residual": 1e-3}  # residual: 3e-3 did not learn
CALIBRATION_SEED = 0  # thresholds are chosen on the models of training seed 0, reported on the others
# the opt-in regularization the engine offers, run as a second variant
# "observational": no probes/cutouts, so the gate rests on visualizations + cue images alone (run with
#   gate.observational_can_fail: true, to measure what that evidence would do; by default it only warns)
# "regularized" = raw pixels + jitter 2 + total variation 1.0 in the units of its time, which were
#   32 times smaller at 32 px than today's resolution-independent ones: 1 / 32
# "auto": concept examples + probes but no cutouts: the audit finds the cutouts itself (localize.py)
VARIANTS = {"default": {}, "regularized": {"parameterization": "pixels", "transforms": {"jitter": 2},
                                           "total_variation": 0.03125}, "observational": {}, "auto": {},
            "classes": {}, "auto_classes": {}}  # *classes: probes in one sub-folder per class (in-class test)
INPUT_RANGE = {"plain": (0.0, 1.0), "bn255": (0.0, 255.0), "residual": (-1.0, 1.0)}


# ------------------------------------------------------------------ models

def build(arch: str, seed: int):
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inp = keras.Input((data.SIZE, data.SIZE, 3))
    # small on purpose: ~3 M multiply-adds per image keeps 30 models inside the time budget
    if arch == "plain":  # plain CNN ending in Dense(softmax), pixels in [0, 1]
        x = inp
        for filters in (16, 32, 64):
            x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
            x = layers.MaxPooling2D()(x)
        x = layers.Flatten()(x)
        out = layers.Dense(len(data.CLASSES), activation="softmax")(x)
    elif arch == "bn255":  # BatchNorm network fed 0..255 through its own Rescaling layer
        x = layers.Rescaling(1 / 255)(inp)
        for filters in (16, 32, 64):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
            x = layers.ReLU()(layers.BatchNormalization(momentum=0.9)(x))
            x = layers.MaxPooling2D()(x)
        x = layers.GlobalAveragePooling2D()(x)
        out = layers.Softmax()(layers.Dense(len(data.CLASSES))(x))
    elif arch == "residual":  # residual network, pixels in [-1, 1]
        x = layers.Conv2D(16, 3, padding="same", activation="relu")(inp)
        for filters, stride in ((16, 1), (32, 2), (64, 2)):
            y = layers.Conv2D(filters, 3, strides=stride, padding="same", activation="relu")(x)
            y = layers.Conv2D(filters, 3, padding="same")(y)
            skip = x if stride == 1 else layers.Conv2D(filters, 1, strides=stride)(x)
            x = layers.ReLU()(layers.Add()([y, skip]))
        x = layers.GlobalAveragePooling2D()(x)
        out = layers.Dense(len(data.CLASSES), activation="softmax")(x)
    else:
        raise ValueError(arch)
    model = keras.Model(inp, out, name=arch)
    model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE[arch]), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def to_input(arch: str, x01: np.ndarray) -> np.ndarray:
    lo, hi = INPUT_RANGE[arch]
    return (lo + (hi - lo) * x01).astype(np.float32)


def cue_targets(seed: int) -> dict[str, int]:
    """Which class each cue is planted on: a permutation drawn from the training seed."""
    order = np.random.default_rng([seed, 99]).permutation(len(data.CLASSES))
    return {cue: int(order[i]) for i, cue in enumerate(data.CUES)}


def model_name(arch: str, rho: float, seed: int) -> str:
    return f"{arch}_rho{rho:g}_s{seed}"


def train(arch: str, rho: float, seed: int, epochs: int = EPOCHS, per_class: int = TRAIN_PER_CLASS) -> Path:
    path = CACHE / "models" / f"{model_name(arch, rho, seed)}.keras"
    if path.exists():
        return path
    labels = np.repeat(np.arange(len(data.CLASSES)), per_class)
    x, _ = data.plant(labels, rho, cue_targets(seed), seed=1000 + seed)
    order = np.random.default_rng([seed, 7]).permutation(len(labels))
    model = build(arch, seed)
    model.fit(to_input(arch, x[order]), labels[order], epochs=epochs, batch_size=32, verbose=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.keras")
    model.save(tmp)
    tmp.replace(path)
    return path


def ground_truth(path: Path, arch: str, seed: int) -> dict:
    """Interventions on held-out clean scenes (a seed no training set uses), in decision units
    (benchmarks/truth.py): per cue and class, the points of images the exact cue moves into the
    class, on the plain scenes and on their hard copies, and the log-odds change."""
    import keras

    model = keras.saving.load_model(path, compile=False)
    K = len(data.CLASSES)
    labels = np.repeat(np.arange(K), TEST_PER_CLASS)
    clean = data.scenes(labels, seed=5000 + seed)

    def log_probs(x):
        p = model.predict(to_input(arch, x), batch_size=256, verbose=0).astype(np.float64)
        return np.log(np.maximum(p, np.finfo(np.float32).tiny))

    base = log_probs(clean).argmax(-1)
    truth = {"clean_accuracy": float((base == labels).mean()), "cues": {}}
    targets = cue_targets(seed)
    for cue in data.CUES:
        per_class = exact_cue_truth(log_probs, clean, lambda x, cue=cue: data.apply_cue(cue, x, seed=6000 + seed),
                                    list(range(K)), seed=6500 + seed)
        pasted = log_probs(data.apply_cue(cue, clean, seed=6000 + seed)).argmax(-1)
        t = targets[cue]
        own = labels == t
        truth["cues"][cue] = {
            "target": data.CLASSES[t],
            "classes": {data.CLASSES[c]: v for c, v in per_class.items()},
            "target_accuracy_without_cue": float((base[own] == t).mean()),
            "target_accuracy_with_cue": float((pasted[own] == t).mean()),
        }
    # the task is learnable; a model whose target classes fail without their cue learned only the cue
    truth["cue_only"] = [cue for cue, v in truth["cues"].items() if v["target_accuracy_without_cue"] < 0.5]
    return truth


# ------------------------------------------------------------------ the audit, through its CLI

def write_bank() -> Path:
    """Concept examples (the cue on backgrounds), cutouts (the cue alone, RGBA), negatives
    (backgrounds) and probes (clean in-distribution scenes): seeds no training or test set uses."""
    bank = CACHE / "bank"
    labels = np.repeat(np.arange(len(data.CLASSES)), 20)
    if not (bank / "_probes_by_class.done").exists():  # the same scenes as _probes, by class
        scenes = data.scenes(labels, seed=8500)
        for k, cls in enumerate(data.CLASSES):
            data.save_folder(scenes[labels == k], bank / "_probes_by_class" / cls)
        (bank / "_probes_by_class.done").write_text("")
    if (bank / "done").exists():
        return bank
    for k, cue in enumerate(data.CUES):
        data.save_folder(data.concept_examples(cue, 40, seed=7000 + k), bank / cue)
        data.save_folder(data.cue_cutouts(cue, 40, seed=7500 + k), bank / f"{cue}_cutouts")
    data.save_folder(data.backgrounds(100, seed=8000), bank / "_negatives")
    data.save_folder(data.scenes(labels, seed=8500), bank / "_probes")
    (bank / "done").write_text("")
    return bank


def write_config(model: Path, arch: str, audit_seed: int, variant: str, out: Path) -> Path:
    bank = write_bank()
    lo, hi = INPUT_RANGE[arch]
    reg = "".join(f"\n  {k}: {v}" for k, v in VARIANTS[variant].items())
    hand_cutouts = variant in ("default", "regularized", "classes")
    concepts = "\n".join(f"    {cue}: {{examples: {bank / cue}" + (f", cutouts: {bank / cue}_cutouts}}" if hand_cutouts
                                                                     else "}")
                          for cue in data.CUES)
    probes = f"\n  probes: {bank / ('_probes_by_class' if variant.endswith('classes') else '_probes')}" \
        if variant != "observational" else ""
    gate = "\ngate:\n  observational_can_fail: true" if variant == "observational" else ""
    config = out.parent / f"{out.name}.yaml"  # not with_suffix: "rho0.8_s1_a0" has a dot
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f"""# generated by benchmarks/validity/run.py
model:
  path: {model}
  classes: [{', '.join(data.CLASSES)}]
  input_range: [{lo:g}, {hi:g}]
visualize:
  seed: {audit_seed}{reg}
concepts:
  negatives: {bank / '_negatives'}{probes}
  bank:
{concepts}{gate}
layer_gallery: false
report:
  out: {out}
""")
    return config


def code_version() -> str:
    """Audits are cached per version of the audit package: a changed method is re-run."""
    import hashlib

    h = hashlib.sha256()
    for f in sorted((ROOT / "audit").rglob("*.py")):
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def run_audit(model: Path, arch: str, audit_seed: int, variant: str) -> dict:
    out = CACHE / "audits" / code_version() / variant / f"{model.stem}_a{audit_seed}"
    if (out / "audit.json").exists():
        result = json.loads((out / "audit.json").read_text())
    else:
        config = write_config(model, arch, audit_seed, variant, out)
        proc = subprocess.run([sys.executable, "-m", "audit", "run", str(config), "--quiet", "--no-history"],
                              capture_output=True, text=True, cwd=ROOT,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        if proc.returncode not in (0, 1):
            raise RuntimeError(f"audit run {config} exited {proc.returncode}: {proc.stderr.strip()[-400:]}")
        result = json.loads((out / "audit.json").read_text())
    return {"verdict": result["verdict"], "seconds": result["timing_seconds"],
            "checks": {(c["class_name"], c["concept"]): c for c in result["checks"]}}


# ------------------------------------------------------------------ statistics

def auc(scores, labels) -> float | None:
    scores, labels = np.asarray(scores, float), np.asarray(labels, bool)
    pos, neg = scores[labels], scores[~labels]
    if not len(pos) or not len(neg):
        return None
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def gate_score(check: dict) -> float:
    """The number the gate decides on, for the AUROC: with a paste test, the most points of probes
    the concept moves into the class over both tests and probe sets; else (default `evidence: both`
    needs both effects) the smaller of cue d and visualization effect, below every paste score."""
    moves = [m["moves"] for test in ("causal", "inclass") for m in (check.get(test) or {}).values() if m]
    if moves:
        return max(moves)
    return min(check["cue_d"], check["vis_effect"]) - 1000.0


def split_summary(rows: list[dict]) -> dict:
    """Against the truth (benchmarks/truth.py), one audit seed per check: recall on relying pairs,
    false fails and warnings on clean ones, the band on its own, and the AUROC of the gate score."""
    relying = [r for r in rows if r["truth_kind"] == "relying"]
    clean = [r for r in rows if r["truth_kind"] == "clean"]
    band = [r for r in rows if r["truth_kind"] == "band"]
    return {
        "checks": len(rows), "relying_pairs": len(relying), "clean_pairs": len(clean), "band_pairs": len(band),
        "recall_relying": _rate([r["level"] == "fail" for r in relying]),
        "false_fails_clean": int(sum(r["level"] == "fail" for r in clean)),
        "warnings_clean": int(sum(r["level"] == "warn" for r in clean)),
        "band_fails": int(sum(r["level"] == "fail" for r in band)),
        "band_warns": int(sum(r["level"] == "warn" for r in band)),
        "auroc": auc([r["score"] for r in relying + clean], [True] * len(relying) + [False] * len(clean)),
        "false_fails_clean_list": [f"{r['model']} {r['cue']}->{r['class']} ({r['truth_points']:.1f} pts, "
                                   f"{r['decided_by']} {r['score']:.1f})" for r in clean if r["level"] == "fail"],
        "missed_relying_list": [f"{r['model']} {r['cue']}->{r['class']} ({r['truth_points']:.1f} pts, "
                                f"{r['level']} {r['decided_by']} {r['score']:.1f})"
                                for r in relying if r["level"] != "fail"],
    }


def summarize(rows: list[dict], variant: str) -> dict:
    """rows: one per (model, cue, class) with ground truth and the audit's checks per audit seed.
    Calibration split: training seed 0; held-out split: the other training seeds."""
    first = [r for r in rows if r["variant"] == variant]
    by_seed = {}
    for r in first:
        by_seed.setdefault((r["model"], r["cue"], r["class"]), []).append(r)
    seed0 = [v[0] for v in by_seed.values()]
    out = {"calibration": split_summary([r for r in seed0 if r["train_seed"] == CALIBRATION_SEED]),
           "held_out": split_summary([r for r in seed0 if r["train_seed"] != CALIBRATION_SEED]),
           "all": split_summary(seed0)}
    agree = [len({r["level"] == "fail" for r in v}) == 1 for v in by_seed.values() if len(v) > 1]
    out["seed_agreement"] = _rate(agree)
    return out


def _rate(flags) -> float | None:
    flags = list(flags)
    return float(np.mean(flags)) if flags else None


# ------------------------------------------------------------------ main

def main(argv=None) -> int:
    global CACHE
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="2 models (plain, rho 0 and 1), 1 audit seed, default only")
    ap.add_argument("--jobs", type=int, default=2, help="audits run in parallel")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "validity.json"))
    ap.add_argument("--cache", default=str(CACHE))
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of " + ", ".join(VARIANTS))
    ap.add_argument("--audit-seeds", default=",".join(map(str, AUDIT_SEEDS)), help="comma-separated audit seeds")
    args = ap.parse_args(argv)
    CACHE = Path(args.cache)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    started = time.perf_counter()
    if args.smoke:
        grid = [("plain", 0.0, 0), ("plain", 1.0, 0)]
        audit_seeds, variants = (0,), ("default",)
    else:
        grid = [(a, r, s) for r in RHOS for a in ARCHS for s in TRAIN_SEEDS]
        audit_seeds = tuple(int(v) for v in args.audit_seeds.split(","))
        variants = tuple(v for v in args.variants.split(",") if v in VARIANTS)

    models = {}
    t = time.perf_counter()
    for arch, rho, seed in grid:
        path = train(arch, rho, seed)
        truth_file = path.with_suffix(".truth.json")
        if not truth_file.exists():
            truth_file.write_text(json.dumps(ground_truth(path, arch, seed)))
        models[path.stem] = {"arch": arch, "rho": rho, "seed": seed, "path": path,
                             "truth": json.loads(truth_file.read_text())}
        print(f"model {path.stem}: clean accuracy {models[path.stem]['truth']['clean_accuracy']:.3f}", flush=True)
    train_seconds = time.perf_counter() - t

    t = time.perf_counter()
    jobs = [(name, v, a) for name in models for v in variants for a in audit_seeds]
    with cf.ThreadPoolExecutor(args.jobs) as pool:
        futures = {job: pool.submit(run_audit, models[job[0]]["path"], models[job[0]]["arch"], job[2], job[1])
                   for job in jobs}
        audits = {job: f.result() for job, f in futures.items()}
    audit_seconds = time.perf_counter() - t

    rows = []
    for (name, variant, audit_seed), audit in audits.items():
        m = models[name]
        targets = cue_targets(m["seed"])
        for cue in data.CUES:
            gt = m["truth"]["cues"][cue]
            for c, cls in enumerate(data.CLASSES):
                check = audit["checks"][(cls, cue)]
                t = gt["classes"][cls]
                rows.append({"model": name, "arch": m["arch"], "rho": m["rho"], "train_seed": m["seed"],
                             "variant": variant, "audit_seed": audit_seed, "cue": cue, "class": cls,
                             "planted": targets[cue] == c, "truth_points": t["points"], "truth_kind": t["kind"],
                             "truth_plain": t["moves_plain"], "truth_hard": t["moves_hard"],
                             "truth_log_odds": max(t["log_odds_plain"], t["log_odds_hard"]),
                             "level": check["level"], "score": gate_score(check), "cue_d": check["cue_d"],
                             "decided_by": check.get("decided_by"), "decided_on": check.get("decided_on"),
                             "decisive_value": check.get("decisive_value"),
                             "vis_effect": check["vis_effect"]})
    result = {
        "machine": {"cpu": _cpu(), "cores": os.cpu_count(), "python": platform.python_version(),
                    "date": dt.date.today().isoformat()},
        "design": {"rhos": sorted({m["rho"] for m in models.values()}), "archs": sorted({m["arch"] for m in models.values()}),
                   "train_seeds": sorted({m["seed"] for m in models.values()}), "audit_seeds": list(audit_seeds),
                   "variants": {v: VARIANTS[v] for v in variants},
                   "truth": {"relying_at_least_points": RELYING, "clean_below_points": CLEAN,
                             "calibration_train_seed": CALIBRATION_SEED},
                   "audit_code_version": code_version(), "train_per_class": TRAIN_PER_CLASS, "test_per_class": TEST_PER_CLASS, "epochs": EPOCHS,
                   "smoke": args.smoke},
        "models": [{"name": n, "arch": m["arch"], "rho": m["rho"], "train_seed": m["seed"],
                    "clean_accuracy": m["truth"]["clean_accuracy"], "cue_only": m["truth"]["cue_only"],
                    "planted": {cue: {"target": m["truth"]["cues"][cue]["target"],
                                      "points": m["truth"]["cues"][cue]["classes"][m["truth"]["cues"][cue]["target"]]["points"]}
                                for cue in data.CUES},
                    "verdicts": {f"{v}/seed{a}": audits[(n, v, a)]["verdict"] for v in variants for a in audit_seeds}}
                   for n, m in models.items()],
        "summary": {v: summarize(rows, v) for v in variants},
        "rows": rows,
        "seconds": {"train_and_truth": train_seconds, "audits": audit_seconds,
                    "total": time.perf_counter() - started, "audit_runs": len(jobs)},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # one line per check row keeps the file diffable and small
    rows_text = ",\n".join(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()})
                            for row in result.pop("rows"))
    out.write_text(json.dumps(result, indent=1)[:-2] + f',\n "rows": [\n{rows_text}\n ]\n}}\n')
    result["rows"] = json.loads(out.read_text())["rows"]
    table = markdown(result)
    out.with_suffix(".md").write_text(table)
    print(table)
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


def _cpu() -> str:
    return next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")), platform.processor())


def _fmt(v, spec=".2f") -> str:
    return "–" if v is None else format(v, spec)


def markdown(r: dict) -> str:
    m, d = r["machine"], r["design"]
    lines = [f"Validity benchmark, {m['date']}, {m['cpu']} ({m['cores']} cores): {len(r['models'])} models "
             f"(rho {', '.join(f'{x:g}' for x in d['rhos'])} x {', '.join(d['archs'])} x training seeds "
             f"{d['train_seeds']}), audit seeds {d['audit_seeds']}; this invocation {r['seconds']['total']:.0f} s "
             f"(models, ground truth and audits are reused from the cache when present). Truth: the exact cue on "
             f"held-out scenes, plain and hard; relying >= {RELYING:g} points, clean < {CLEAN:g}. Thresholds "
             f"chosen on training seed {CALIBRATION_SEED} (calibration), reported on the others (held out).", "",
             "| variant | split | relying pairs | recall | clean pairs | false fails | warnings on clean | "
             "band pairs (fail / warn) | AUROC |",
             "|---|---|---:|---:|---:|---:|---:|---|---:|"]
    for v, s in r["summary"].items():
        for split in ("calibration", "held_out"):
            x = s[split]
            lines.append(f"| {v} | {split} | {x['relying_pairs']} | {_fmt(x['recall_relying'], '.0%')} | "
                         f"{x['clean_pairs']} | {x['false_fails_clean']} | {x['warnings_clean']} | "
                         f"{x['band_pairs']} ({x['band_fails']} / {x['band_warns']}) | {_fmt(x['auroc'], '.3f')} |")
    shown = "default" if "default" in r["summary"] else next(iter(r["summary"]))
    lines += ["", f"Per model ({shown} variant, audit seed {d['audit_seeds'][0]}): planted cue -> truth points / "
              "gate level", "", "| model | clean acc | " + " | ".join(d_ for d_ in data.CUES) + " | verdict |",
              "|---|---:|" + "---|" * len(data.CUES) + "---|"]
    levels = {(x["model"], x["cue"]): x["level"] for x in r["rows"]
              if x["variant"] == shown and x["audit_seed"] == d["audit_seeds"][0] and x["planted"]}
    for mod in r["models"]:
        cells = [f"{mod['planted'][c]['points']:.0f} / {levels.get((mod['name'], c), '?')}" for c in data.CUES]
        first = next(iter(mod["verdicts"].values()))
        lines.append(f"| {mod['name']} | {mod['clean_accuracy']:.3f} | " + " | ".join(cells) + f" | {first} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
