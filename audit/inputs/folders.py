"""What `audit run` will require of the image folders, checked by listing files only (no
TensorFlow, no decoding), so `audit validate` and `audit run` refuse the same configs."""

from __future__ import annotations

from audit.config.concepts import MIN_EXAMPLES
from audit.config.load import Config
from audit.errors import UserError
from audit.images import list_images
from audit.inputs.probes import scan_probes

MIN_NEGATIVES = 10


def check_folders(cfg: Config) -> dict:
    """Raise a UserError naming the key and the fix; return a summary of what was found."""
    c = cfg.concepts
    negatives = list_images(c.negatives)
    if len(negatives) < MIN_NEGATIVES:
        raise UserError(f"concepts.negatives: only {len(negatives)} images in {c.negatives}; give at least "
                        f"{MIN_NEGATIVES} (50+ recommended) unrelated images")
    for concept in c.bank:
        n = len(list_images(concept.examples))
        if n < MIN_EXAMPLES:
            raise UserError(f"concepts.bank.{concept.name}.examples: only {n} images in {concept.examples}; give at "
                            f"least {MIN_EXAMPLES} (20+ recommended)")
        if concept.cutouts is not None and not list_images(concept.cutouts):
            raise UserError(f"concepts.bank.{concept.name}.cutouts: folder {concept.cutouts} has no images; add "
                            "RGBA cutouts or remove the key (cutouts are then found automatically)")
    summary = {"negatives": len(negatives), "probes": None}
    if c.probes is not None:
        found = scan_probes(c.probes, cfg.model.classes)
        summary["probes"] = {"layout": "flat" if None in found else "class_folders",
                             "count": sum(len(v) for v in found.values()),
                             "classes": None if None in found else len(found)}
    if cfg.discover is not None:  # discovery reads each class's own images: class sub-folders only
        folder = cfg.discover.probes or c.probes
        key = "discover.probes" if cfg.discover.probes else "concepts.probes"
        if None in scan_probes(folder, cfg.model.classes, key):
            raise UserError(f"{key}: discovery needs probes in one sub-folder per class; {folder} is a flat folder")
    return summary
