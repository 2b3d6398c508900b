"""The `discover:` config section: `discover: true` (the defaults), `false`/absent (off), or a
mapping. Parsed with the config module's own section reader, so errors name file and key."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from audit.config.gate import CAUSAL_FAIL, CAUSAL_WARN, CausalLevel, parse_causal_level


@dataclass(frozen=True)
class DiscoverConfig:
    probes: Path | None = None   # class sub-folders from the training distribution (default: concepts.probes)
    patterns: int = 3            # per class
    examples: int = 6            # top probe images shown (and promoted) per pattern
    cutout_images: int = 12      # top probe images cut out per pattern and pasted by the insertion test
    min_probes: int = 8          # a class needs this many probe images of its own
    visualize: bool = True       # a picture of each pattern, made like the class visualizations
    restarts: int = 1
    min_kept: float = 0.5        # warn/fail only if this share of the class's images stays in the class without it
    # None: every pattern stays `review`. Measured on the validity benchmark, no rule tried separated a
    # planted cue from the parts of the class's own object (docs/evidence.md, "Discovery: measured"), so `warn` is opt-in.
    # Set, they are insertion-test thresholds read like gate.causal's, with its defaults (CAUSAL_WARN/FAIL).
    warn: CausalLevel | None = None
    fail: CausalLevel | None = None  # None: a discovered pattern never fails the gate


def parse_discover(top) -> DiscoverConfig | None:
    """`top`: the config's top-level section reader (audit.config.reader.Section)."""
    if not top.has("discover"):
        return None
    value = top.data["discover"]
    if value is None or isinstance(value, bool):
        top.used.add("discover")
        return DiscoverConfig() if value else None
    sec = top.section("discover")

    def whole(name, default, low, high):
        return sec.get(name, int, default, check=lambda v: low <= v <= high,
                       fix=f"use a whole number from {low} to {high}")

    out = DiscoverConfig(
        probes=sec.path_value("probes", required=False, must="dir"),
        patterns=whole("patterns", 3, 1, 10),
        examples=whole("examples", 6, 4, 50),
        cutout_images=whole("cutout_images", 12, 2, 200),
        min_probes=whole("min_probes", 8, 4, 10_000),
        visualize=sec.get("visualize", bool, True),
        restarts=whole("restarts", 1, 1, 16),
        min_kept=float(sec.get("min_kept", (int, float), 0.5, check=lambda v: 0 <= v <= 1,
                                  fix="use a share of probe images in [0, 1]")),
        warn=_level(sec, "warn", CAUSAL_WARN),
        fail=_level(sec, "fail", CAUSAL_FAIL),
    )
    sec.finish()
    return out


def _level(sec, name: str, default: CausalLevel) -> CausalLevel | None:
    """Off unless given; the log-odds rise may warn, never fail, as in gate.causal."""
    return parse_causal_level(sec.section(name), default, log_odds_allowed=name == "warn") if sec.has(name) else None


def add_discover_flags(parser) -> None:
    """The flags of `audit discover` that build a run config without a file (read by
    audit/flows/discover.py's from_flags into the same sections, through the same validation)."""
    parser.add_argument("config", type=Path, nargs="?")
    parser.add_argument("--model", type=Path, help="a .keras/.h5 file or SavedModel folder")
    parser.add_argument("--probes", type=Path, help="probe images, one sub-folder per class (a validation sample)")
    parser.add_argument("--classes-file", type=Path, help="class names, one per line, in output order")
    parser.add_argument("--input-range", help="pixel range the model expects, e.g. 0,255 (default: read from the "
                        "model)")
    parser.add_argument("--preprocessing", help="a keras.applications preprocessing name instead of --input-range")
    parser.add_argument("--trust-code", action="store_true", help="let Keras run code stored in the model file")
    parser.add_argument("--negatives", type=Path, help="unrelated images for the control pastes (default: the other "
                        "classes' probes)")
    parser.add_argument("--classes", help="comma-separated class names to examine (default: every probe sub-folder)")
    parser.add_argument("--patterns", type=int, help="patterns per class (default 3)")
    parser.add_argument("--steps", type=int, help="visualization steps per pattern (default 128)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--no-visualize", action="store_true", help="no picture of each pattern")
    parser.add_argument("--out", type=Path, help="report folder (default: reports/discovery, or report.out + "
                        "'-discovery' with a CONFIG)")
    parser.add_argument("--quiet", action="store_true")
