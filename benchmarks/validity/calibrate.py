"""Choose the gate's fail threshold in points on one split of the validity models, report it on the other.

    python benchmarks/validity/calibrate.py [--variants default,auto] [--audit-seed 0]

Reads the audits `run.py` cached (run it first) and the ground truth of each model
(benchmarks/truth.py), re-decides every paste-tested check at each candidate `min_moves` (with the
p-values the audit recorded), and picks, on the calibration split (training seed 0), the highest
threshold with no false fail on a clean pair (< 2 points) and the highest recall on relying pairs
(>= 25 points). The table gives both splits for every candidate, so the choice can be checked.
On 2026-12-08 it chose 12 points for hand cutouts (`default`); with automatic cutouts no candidate
up to 15 avoids one false fail on the calibration split (docs/evidence.md, "Validity").
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run  # noqa: E402

CANDIDATES = (3.0, 5.0, 8.0, 10.0, 12.0, 15.0, 20.0)
MAX_P = 0.01  # the fail level's adjusted p (gate.causal.fail.max_p)


def fails(check: dict, min_moves: float, max_p: float = MAX_P) -> bool:
    return any(m and m["p_adjusted"] is not None and m["p_adjusted"] <= max_p and m["moves"] >= min_moves
               for test in ("causal", "inclass") for m in (check.get(test) or {}).values())


def pairs(variant: str, audit_seed: int) -> list[dict]:
    """One entry per (model, cue, class): its truth, split and audited check."""
    out = []
    for path in sorted((run.CACHE / "models").glob("*.keras")):
        arch, rho, seed = path.stem.split("_")[0], float(path.stem.split("_rho")[1].split("_")[0]), \
            int(path.stem.rsplit("_s", 1)[1])
        truth = json.loads(path.with_suffix(".truth.json").read_text())
        checks = run.run_audit(path, arch, audit_seed, variant)["checks"]
        for cue, t in truth["cues"].items():
            for cls, v in t["classes"].items():
                out.append({"model": path.stem, "seed": seed, "rho": rho, "kind": v["kind"], "points": v["points"],
                            "check": checks[(cls, cue)]})
    return out


def table(rows: list[dict]) -> dict:
    out = {}
    for split, keep in (("calibration", lambda r: r["seed"] == run.CALIBRATION_SEED),
                        ("held_out", lambda r: r["seed"] != run.CALIBRATION_SEED)):
        part = [r for r in rows if keep(r)]
        relying = [r for r in part if r["kind"] == "relying"]
        clean = [r for r in part if r["kind"] == "clean"]
        out[split] = {f"{t:g}": {"recall": sum(fails(r["check"], t) for r in relying) / max(len(relying), 1),
                                 "false_fails": sum(fails(r["check"], t) for r in clean),
                                 "relying": len(relying), "clean": len(clean)} for t in CANDIDATES}
    calib = out["calibration"]
    quiet = [t for t in CANDIDATES if calib[f"{t:g}"]["false_fails"] == 0]
    # the highest threshold with the best recall: the furthest from the clean pairs it can be
    best = max(quiet, key=lambda t: (calib[f"{t:g}"]["recall"], t)) if quiet else None
    out["chosen_min_moves"] = best
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default="default,auto")
    ap.add_argument("--audit-seed", type=int, default=0)
    ap.add_argument("--out", default=str(run.ROOT / "benchmarks" / "results" / "validity_calibration.json"))
    args = ap.parse_args(argv)
    result = {v: table(pairs(v, args.audit_seed)) for v in args.variants.split(",")}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    for v, r in result.items():
        print(f"{v}: chosen min_moves {r['chosen_min_moves']}")
        for split in ("calibration", "held_out"):
            print(f"  {split}: " + "  ".join(f"{t}: recall {x['recall']:.0%} ff {x['false_fails']}"
                                             for t, x in r[split].items()))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
