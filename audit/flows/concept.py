"""`audit concept from-pattern REPORT.json CLASS PATTERN NAME --out DIR`: a discovered pattern
becomes a concept folder a config can list (`NAME: {examples: DIR/examples, cutouts:
DIR/cutouts, allowed_in: [...]}`), so later runs gate on it like on any other concept.

The folder is written like a report folder (audit/report/folder.py): staged, then swapped in whole,
with the tool's marker; an existing folder is replaced only if this tool wrote it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from audit.config.concepts import MIN_EXAMPLES
from audit.errors import UserError


def _read_report(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: report not found; give the audit.json or discovery.json of a run with discovery")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise UserError(f"{path}: not a readable JSON report ({type(exc).__name__}); give the audit.json or "
                        "discovery.json of a run with discovery") from None
    if not isinstance(data, dict) or not isinstance(data.get("discovered"), list):
        raise UserError(f"{path}: has no `discovered` list; run `audit discover` or `audit run` with a `discover:` "
                        "section first")
    return data


def _find(data: dict, path: Path, class_name: str, pattern: int) -> dict:
    entries = [e for e in data["discovered"] if isinstance(e, dict) and e.get("class_name") == class_name]
    if not entries:
        names = sorted({str(e.get("class_name")) for e in data["discovered"] if isinstance(e, dict)})
        raise UserError(f"{path}: no discovered pattern in class {class_name!r}; classes with patterns: "
                        f"{', '.join(names) or 'none'}")
    for e in entries:
        if e.get("pattern") == pattern:
            return e
    have = ", ".join(str(e.get("pattern")) for e in entries)
    raise UserError(f"{path}: class {class_name!r} has no pattern {pattern}; its patterns are {have}")


def _source_file(report_dir: Path, rel, path: Path) -> Path:
    """A file the report lists, inside the report folder (never a path that leaves it)."""
    if not isinstance(rel, str):
        raise UserError(f"{path}: a listed image is not a file name; the report is damaged")
    full = (report_dir / rel).resolve()
    if report_dir.resolve() not in full.parents or not full.is_file() or full.is_symlink():
        raise UserError(f"{path}: {rel} is missing or outside the report folder; promote from a complete report")
    return full


def promote(report: Path, class_name: str, pattern: int, name: str, out: Path) -> dict:
    from audit.config.concepts import CONCEPT_NAME, CONCEPT_NAME_HINT
    from audit.report.folder import check_replaceable, staged_folder

    if not CONCEPT_NAME.fullmatch(name):
        raise UserError(f"audit concept from-pattern: NAME {name!r} is not a usable concept name; {CONCEPT_NAME_HINT}")
    data = _read_report(report)
    entry = _find(data, Path(report), class_name, pattern)
    folder = Path(report).parent
    examples = [_source_file(folder, e.get("image") if isinstance(e, dict) else None, report)
                for e in entry.get("examples", [])]
    cutouts = [_source_file(folder, rel, report) for rel in entry.get("cutouts", [])]
    if len(examples) < MIN_EXAMPLES or not cutouts:  # what `audit validate` asks of a concept folder
        raise UserError(f"{report}: pattern {pattern} of {class_name!r} has {len(examples)} example images and "
                        f"{len(cutouts)} cutouts; a concept needs at least {MIN_EXAMPLES} examples and 1 cutout")
    # the source report is read (its images) up to the swap: the concept folder must stay apart from it
    check_replaceable(Path(out), "--out", kind="concept", inputs=[("the source report's folder", folder)])
    with staged_folder(Path(out), kind="concept", key="--out") as staging:
        for sub, files in (("examples", examples), ("cutouts", cutouts)):
            (staging / sub).mkdir()
            for i, src in enumerate(files):
                shutil.copyfile(src, staging / sub / f"{name}_{i:03d}.png")
        (staging / "pattern.json").write_text(json.dumps({
            "concept": name, "source_report": str(Path(report).resolve()), "class_name": class_name,
            "pattern": pattern, "level": entry.get("level"), "causal": entry.get("causal"),
            "model_sha256": (data.get("model") or {}).get("sha256")}, indent=1) + "\n")
    out = Path(out)
    return {"examples": len(examples), "cutouts": len(cutouts),
            "yaml": f"{name}: {{examples: {out / 'examples'}, cutouts: {out / 'cutouts'}, allowed_in: []}}"}
