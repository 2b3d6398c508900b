"""The `concepts:` section: the concept bank (examples, cutouts, where each concept belongs), the
negatives every effect is measured against, and the probe images the causal test pastes onto."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from audit.config.reader import Section, name_list, within
from audit.config.yaml_input import short_repr

CONCEPT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
# What CONCEPT_NAME accepts, as the fix an error gives (the config's bank and `audit concept from-pattern`)
CONCEPT_NAME_HINT = "use letters, digits, '-', '_' or '.', starting with a letter or digit"
# Upper bounds that stop a typo (or a hostile config) from asking for gigabytes of memory
# before anything is checked; far above any sensible audit.
MAX_EXAMPLES = 100_000
MAX_RANDOM_DIRECTIONS = 100_000
# Images read per folder when the config does not say (`concepts.max_examples`).
DEFAULT_MAX_EXAMPLES = 200
# The fewest example images a concept can be learned from (`audit validate` and `audit run` refuse
# fewer); `concepts.max_examples` may not cut a concept below it.
MIN_EXAMPLES = 4


@dataclass(frozen=True)
class ConceptConfig:
    name: str
    examples: Path
    allowed_in: tuple[str, ...]
    cutouts: Path | None = None  # RGBA images of the concept alone, for the causal test


@dataclass(frozen=True)
class ConceptsConfig:
    layer: str  # "auto" or a layer name
    negatives: Path
    bank: tuple[ConceptConfig, ...]
    max_examples: int
    random_directions: int
    probes: Path | None = None  # in-distribution images the causal test pastes cutouts onto
    auto_cutouts: bool = True   # concepts without cutouts get them from their examples (localize.py)
    control: str = "mask"       # control paste: the cutout's own alpha, or a footprint blob (causal.py)


def parse_concepts(sec: Section, discovering: bool = False) -> ConceptsConfig:
    layer = sec.get("layer", str, "auto")
    negatives = sec.path_value("negatives", must="dir")
    bank_sec = sec.section("bank")
    if not bank_sec.data and not discovering:  # discovery needs no concept list
        sec.fail(sec.key("bank"), "is empty", "add at least one concept: `arm: {examples: DIR, allowed_in: []}`, "
                 "or turn on `discover: true` to look for patterns without a concept list")
    bank = [_concept(bank_sec, name) for name in bank_sec.data]
    out = ConceptsConfig(
        layer=layer, negatives=negatives, bank=tuple(bank),
        max_examples=sec.get("max_examples", int, DEFAULT_MAX_EXAMPLES, check=within(MIN_EXAMPLES, MAX_EXAMPLES),
                             fix=f"use a whole number from {MIN_EXAMPLES} to {MAX_EXAMPLES}"),
        random_directions=sec.get("random_directions", int, 500, check=within(20, MAX_RANDOM_DIRECTIONS),
                                  fix=f"use a whole number from 20 to {MAX_RANDOM_DIRECTIONS}"),
        probes=sec.path_value("probes", required=False, must="dir"),
        auto_cutouts=sec.get("auto_cutouts", bool, default=True),
        control=sec.get("control", str, "mask", check=lambda v: v in ("mask", "footprint"),
                        fix="use `mask` (the cutout's own alpha) or `footprint` (a blob of the same place and opacity)"),
    )
    with_cutouts = [c.name for c in bank if c.cutouts is not None]
    if with_cutouts and out.probes is None:
        sec.fail(sec.key("probes"), f"is missing but concept {short_repr(with_cutouts[0])} has cutouts",
                 "give `probes:` a folder of in-distribution images (any classes) to paste the cutouts onto")
    sec.finish()
    return out


def _concept(bank_sec: Section, name) -> ConceptConfig:
    # names become file names in the report; names starting with "_" are the tool's own
    if not isinstance(name, str) or not CONCEPT_NAME.fullmatch(name):
        bank_sec.fail(bank_sec.key(str(name)), "is not a usable concept name", CONCEPT_NAME_HINT)
    c = bank_sec.section(name)
    examples = c.path_value("examples", must="dir")
    allowed = name_list(c, "allowed_in", "list class names where the concept belongs, or [] for none") or ()
    cutouts = c.path_value("cutouts", required=False, must="dir")
    c.finish()
    return ConceptConfig(str(name), examples, allowed, cutouts)
