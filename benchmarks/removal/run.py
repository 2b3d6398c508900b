"""Why the audit has no removal test: two ways of finding a concept in a class's own images, measured.

    python benchmarks/removal/run.py [--out benchmarks/results/removal.json]

A removal test finds the concept inside a class's own probe images, fills it in, and measures the
class's drop. It is only as honest as the finding: a region that lands on the class's object
removes the object. This benchmark measures, on the embedded demo's two models (the shortcut model
relies on the arm for `dumbbell`; the control model relies on no concept), two localizers and one
removal design with a control that cancels whatever the fill destroys:

* localizers:
  - `concept_map`: the concept direction (examples minus negatives, at the concept layer, as the
    automatic cutouts use it) projected on each probe's feature map, sharpened with the pixel
    gradient (audit/evidence/localize.py) and capped at 1.5 times the cutouts' mean area; a probe shows the
    concept when its strongest cell beats 95% of the negatives' strongest cells;
  - `template`: masked normalized cross-correlation of every cutout over the probe (all
    translations); a probe shows the concept when its best match beats 95% of the negatives' best.
* removal: the found region filled with a negative image. Raw drop: the class's log-odds before
  minus after (nats). It includes whatever of the object the region covered.
* restore control: on the removed image, a concept cutout pasted at the found place (concept_map: a
  random cutout moved to the region's centre; template: the matched cutout where it matched) minus
  the same mask filled with another negative image: the class's log-odds difference per probe in
  the model's logit spreads, capped at +-1 (the in-class test's units). Both arms lose the same
  pixels, so the object's loss cancels; what remains is what having the concept there adds.

Ground truth: the demo's scenes are drawn with and without the arm from the same seed, so the arm's
true pixels and its true effect on each class's log-odds are known. Levels as the gate's
(`gate.causal` defaults: fail p_adj <= 0.01 and shift >= 0.5, warn p_adj <= 0.05 and shift >= 0.35;
Holm over each model's checks). Only dumbbell x arm on the shortcut model should be flagged.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from audit.evidence import localize, stats  # noqa: E402
from audit.evidence.causal import log_odds, log_probs, paste  # noqa: E402
from audit.demo.build import CLASSES  # noqa: E402
from audit.demo.drawing import scene  # noqa: E402

SHIFT_CAP = 1.0  # this rejected method's own unit (the audit's gate no longer uses it): logit spreads, capped


def logit_spread(lp: np.ndarray) -> float:
    """Median over images of the SD of the log-probabilities of the classes other than the top-1."""
    top = lp.argmax(1)
    rest = np.ones_like(lp, bool)
    rest[np.arange(len(top)), top] = False
    return float(max(np.median(lp[rest].reshape(len(top), -1).std(axis=1)), 1e-6))

ASSETS = ROOT / "audit" / "demo" / "assets"
PROBES_PER_CLASS = 60
PROBE_SEED = 40_000_000  # no demo training, held-out, probe or validation set uses it
CONCEPTS = ("arm", "stripes", "watermark")
DETECT_QUANTILE = 95
AREA_FACTOR = 1.5
FAIL, WARN = (0.01, 0.5), (0.05, 0.35)


def folder(path: Path, rgba: bool = False) -> np.ndarray:
    from PIL import Image

    from audit.images import list_images

    mode = "RGBA" if rgba else "RGB"
    return np.stack([np.asarray(Image.open(f).convert(mode), np.float32) / 255 for f in list_images(path)])


def load(kind: str):
    from audit.config import ModelConfig
    from audit.model.load import load_model

    return load_model(ModelConfig(path=ASSETS / "models" / f"demo_{kind}.keras", classes=tuple(CLASSES),
                                  classes_file=None, input_range=(0.0, 1.0), preprocessing=None, trust_code=False))


# ------------------------------------------------------------------ localizers

def concept_map_regions(model, probes, examples, negatives, cutouts):
    """(found (n,), alpha (n, H, W), restore RGBA (n, H, W, 4)) from the concept-layer map."""
    _, z_neg, mu, sd, direction = localize._standardizer(model, examples, negatives)
    probe_map = ((localize._feature_maps(model, probes) - mu) / sd) @ direction
    neg_map = z_neg @ direction
    floor = np.percentile(neg_map, localize.BACKGROUND_QUANTILE)
    strongest = probe_map.reshape(len(probe_map), -1).max(1)
    found = strongest > np.percentile(neg_map.reshape(len(neg_map), -1).max(1), DETECT_QUANTILE)
    soft = np.clip((probe_map - floor) / np.maximum(strongest - floor, 1e-12)[:, None, None], 0.0, 1.0)
    H, W = probes.shape[1:3]
    alpha = localize.unit_max(localize.smooth(localize.upsample(soft, (H, W)), sigma=H / probe_map.shape[1] / 3))

    import tensorflow as tf
    mu_t, sd_t, dir_t = (tf.constant(v, tf.float32) for v in (mu, sd, direction))
    grads = localize.pixel_gradients(
        lambda x: tf.reduce_sum(tf.reduce_mean((model.forward(x)[0] - mu_t) / sd_t, axis=(1, 2)) * dir_t, -1), probes)
    area = AREA_FACTOR * float(cutouts[..., -1].mean())
    alpha = np.stack([localize.cap_cover(a, area) for a in localize.sharpen(alpha, grads)])
    rng = np.random.default_rng(5)
    restore = np.stack([moved(cutouts[i], a) for i, a in zip(rng.integers(0, len(cutouts), len(probes)), alpha)])
    return found & (alpha.mean((1, 2)) >= localize.MIN_COVER), alpha, restore


def moved(cut: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The RGBA cutout translated so that its alpha's centre sits on the target alpha's centre."""
    H, W = target.shape
    yy, xx = np.mgrid[0:H, 0:W]

    def centre(a):
        return (a * yy).sum() / max(a.sum(), 1e-12), (a * xx).sum() / max(a.sum(), 1e-12)

    (cy, cx), (ty, tx) = centre(cut[..., -1]), centre(target)
    dy, dx = int(round(ty - cy)), int(round(tx - cx))
    out = np.zeros_like(cut)
    out[max(dy, 0):H + min(dy, 0), max(dx, 0):W + min(dx, 0)] = cut[max(-dy, 0):H - max(dy, 0),
                                                                    max(-dx, 0):W - max(dx, 0)]
    return out


def _valid_correlation(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    from scipy.signal import fftconvolve

    return fftconvolve(image, kernel[::-1, ::-1], mode="valid")


def best_match(image: np.ndarray, cut: np.ndarray) -> tuple[float, np.ndarray]:
    """Masked normalized cross-correlation of one cutout (cropped to its alpha) over every
    translation inside the image -> (best score, the cutout placed there as full-frame RGBA)."""
    ys, xs = np.nonzero(cut[..., -1] > 0.1)
    if not len(ys):
        return -1.0, np.zeros_like(cut)
    t = cut[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    m, n = t[..., -1], t[..., -1].sum()
    num = var_f = var_t = 0.0
    for ch in range(image.shape[-1]):
        f, tc = image[..., ch], t[..., ch]
        mean_t = (m * tc).sum() / n
        s_f = _valid_correlation(f, m)
        num = num + _valid_correlation(f, m * tc) - mean_t * s_f
        var_f = var_f + np.maximum(_valid_correlation(f * f, m) - s_f ** 2 / n, 0.0)
        var_t = var_t + (m * (tc - mean_t) ** 2).sum()
    ncc = num / np.sqrt(np.maximum(var_f * var_t, 1e-12))
    y, x = np.unravel_index(np.argmax(ncc), ncc.shape)
    placed = np.zeros_like(cut)
    placed[y:y + t.shape[0], x:x + t.shape[1]] = t
    return float(ncc[y, x]), placed


def best_over(image: np.ndarray, cutouts: np.ndarray) -> tuple[float, np.ndarray]:
    return max((best_match(image, c) for c in cutouts), key=lambda sp: sp[0])


def template_regions(probes, negatives, cutouts):
    null = np.array([best_over(n, cutouts)[0] for n in negatives])
    matches = [best_over(p, cutouts) for p in probes]
    found = np.array([s for s, _ in matches]) > np.percentile(null, DETECT_QUANTILE)
    restore = np.stack([r for _, r in matches])
    return found, restore[..., -1], restore


# ------------------------------------------------------------------ the removal test

def removal(model, probes, c, found, alpha, restore, negatives, seed):
    lp = log_probs(model, probes)
    use = found & (lp.argmax(1) == c)
    out = {"found": int(found.sum()), "tested": int(use.sum())}
    if use.sum() < 5:
        return out
    rng = np.random.default_rng([seed, c])
    fill_a, fill_b = (negatives[rng.integers(0, len(negatives), int(use.sum()))] for _ in range(2))
    removed = paste(probes[use], fill_a, alpha[use][..., None])
    rgb, mask = restore[use][..., :-1], restore[use][..., -1:]
    with_concept = log_probs(model, paste(removed, rgb, mask))
    with_control = log_probs(model, paste(removed, fill_b, mask))
    after = log_probs(model, removed)
    per_probe = np.clip((log_odds(with_concept[:, c]) - log_odds(with_control[:, c])) / logit_spread(lp),
                        -SHIFT_CAP, SHIFT_CAP)
    out.update(raw_drop=float((log_odds(lp[use, c]) - log_odds(after[:, c])).mean()),
               kept=float((after.argmax(1) == c).mean()), shift=float(per_probe.mean()),
               p=stats.paired_p(per_probe), region_area=float(alpha[use].mean()))
    return out


def level(shift: float, p_adj: float) -> str:
    if p_adj <= FAIL[0] and shift >= FAIL[1]:
        return "fail"
    return "warn" if p_adj <= WARN[0] and shift >= WARN[1] else "pass"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "removal.json"))
    args = ap.parse_args(argv)
    started = time.perf_counter()
    negatives = folder(ASSETS / "concepts" / "_random")
    models = {kind: load(kind) for kind in ("shortcut", "control")}
    rows = []
    for concept in CONCEPTS:
        examples = folder(ASSETS / "concepts" / concept)
        cutouts = folder(ASSETS / "concepts" / f"{concept}_cutouts", True)
        for c, cls in enumerate(CLASSES):
            seeds = [PROBE_SEED + 1000 * c + i for i in range(PROBES_PER_CLASS)]
            with_arm = np.stack([scene(cls, s, with_arm=True) for s in seeds])
            without = np.stack([scene(cls, s, with_arm=False) for s in seeds])
            probes = with_arm if concept == "arm" else without  # stripes and watermark: the scenes' own distractors
            true_arm = np.abs(with_arm - without).sum(-1) > 0.05
            located = {"template": template_regions(probes, negatives, cutouts)}
            for kind, model in models.items():
                located["concept_map"] = concept_map_regions(model, probes, examples, negatives, cutouts)
                truth = float((log_odds(log_probs(model, with_arm)[:, c])
                               - log_odds(log_probs(model, without)[:, c])).mean())
                for design, (found, alpha, restore) in located.items():
                    row = {"model": kind, "design": design, "concept": concept, "class": cls,
                           "arm_truth_nats": truth if concept == "arm" else None,
                           **removal(model, probes, c, found, alpha, restore, negatives, seed=c)}
                    if concept == "arm" and found.any():
                        a = alpha[found]
                        row["precision"] = float(((a * true_arm[found]).sum((1, 2)) / a.sum((1, 2))).mean())
                    rows.append(row)
                print(kind, concept, cls, [(r["design"], r.get("shift")) for r in rows[-2:]], flush=True)
    for kind in models:
        for design in ("concept_map", "template"):
            tested = [r for r in rows if r["model"] == kind and r["design"] == design and "p" in r]
            for r, p in zip(tested, stats.holm(np.array([r["p"] for r in tested]))):
                r["p_adjusted"], r["level"] = float(p), level(r["shift"], float(p))
    result = {"date": dt.date.today().isoformat(), "machine": f"{platform.processor() or platform.machine()}",
              "seconds": round(time.perf_counter() - started, 1), "probes_per_class": PROBES_PER_CLASS, "rows": rows}
    out = Path(args.out)
    out.write_text(json.dumps(result, indent=1))
    out.with_suffix(".md").write_text(markdown(result))
    print(out.with_suffix(".md").read_text())
    return 0


def rows_all(result: dict, design: str) -> list[dict]:
    return [r for r in result["rows"] if r["design"] == design]


def markdown(result: dict) -> str:
    lines = [f"Removal test designs on the embedded demo, {result['date']}: {result['probes_per_class']} probes per "
             f"class, {result['seconds']:.0f} s. Expected: only dumbbell x arm on the shortcut model flagged.", "",
             "| design | model | concept | class | found | tested | arm precision | arm truth (nats) | raw drop (nats) "
             "| restore shift | adj. p | level |", "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]

    def f(v, fmt):
        return "" if v is None else format(v, fmt)
    for r in sorted(result["rows"], key=lambda r: (r["design"], r["model"], r["concept"], r["class"])):
        lines.append(f"| {r['design']} | {r['model']} | {r['concept']} | {r['class']} | {r['found']} | {r['tested']} "
                     f"| {f(r.get('precision'), '.2f')} | {f(r.get('arm_truth_nats'), '+.2f')} "
                     f"| {f(r.get('raw_drop'), '.1f')} | {f(r.get('shift'), '.2f')} | {f(r.get('p_adjusted'), '.2g')} "
                     f"| {r.get('level', 'not tested')} |")
    flagged = [r for r in result["rows"] if r.get("level") in ("warn", "fail")]
    lines += ["", "Flagged (warn or fail): " + (", ".join(
        f"{r['design']} {r['model']} {r['class']} x {r['concept']} ({r['level']}, {r['shift']:.2f})" for r in flagged)
        or "none") + "."]
    for design in ("concept_map", "template"):
        rows = [r for r in result["rows"] if r["design"] == design and "shift" in r]
        real = [r for r in rows if (r["model"], r["class"], r["concept"]) == ("shortcut", "dumbbell", "arm")]
        rest = max((r for r in rows if r not in real), key=lambda r: r["shift"])
        lines.append(f"- {design}: dumbbell x arm on the shortcut model "
                     + (f"{real[0]['shift']:.2f} (adj. p {real[0]['p_adjusted']:.2g})" if real else "not tested")
                     + f"; largest elsewhere {rest['shift']:.2f} ({rest['model']} {rest['class']} x {rest['concept']}, "
                     f"adj. p {rest['p_adjusted']:.2g}); median arm precision "
                     f"{np.median([r['precision'] for r in rows_all(result, design) if 'precision' in r]):.2f}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
