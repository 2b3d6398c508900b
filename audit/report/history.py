"""The run history beside the reports: `history.json` (the truth) and `index.html` rendered
from it. Updated incrementally after each run, under a lock, and bounded in size.

Only files this tool wrote are updated: `history.json` carries the tool's signature (or is an
earlier version's history of exactly this shape), `index.html` its marker comment. Someone
else's file of that name is left alone and the history goes to `audit-history.json/.html`.
Entries are checked one by one: a hand-edited entry with the wrong types, or a report link
that is not a relative path (`javascript:...`), is dropped, never rendered.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from pathlib import Path
from urllib.parse import quote, urlsplit

from audit.errors import UserError
from audit.report.folder import overlap, write_text_atomic
from audit.result import clean

MAX_RUNS = 200
MARKER = "<!-- audit run history -->"
SIGNATURE = "audit run history"
MAX_HISTORY_BYTES = 64 * 2**20
ENTRY_TYPES = {"title": str, "model": str, "model_sha256": str, "started_at": str, "verdict": str,
               "findings": int, "fail": int, "warn": int, "baseline": str, "report": str}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def safe_link(link: str) -> bool:
    """A relative path to a file: no scheme (`javascript:`), no host, not absolute, no control characters."""
    if not isinstance(link, str) or not link or _CONTROL.search(link) or link[0] in "/\\" or link != link.strip():
        return False
    parts = urlsplit(link)
    return not parts.scheme and not parts.netloc


def _valid(entry) -> bool:
    return (isinstance(entry, dict) and set(entry) >= set(ENTRY_TYPES)
            and all(isinstance(entry[k], t) and not isinstance(entry[k], bool) for k, t in ENTRY_TYPES.items())
            and entry["verdict"] in ("pass", "warn", "fail") and safe_link(entry["report"]))


def read_runs(path: Path) -> list[dict] | None:
    """The valid runs of a history this tool wrote (missing: none yet), or None when the file is
    someone else's (or unreadable) and must be left alone."""
    if not path.exists():
        return []
    if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_HISTORY_BYTES:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("runs"), list):
        return None
    ours = data.get("tool") == SIGNATURE or (  # an earlier version wrote {"runs": [...]} with these keys
        set(data) == {"runs"} and all(isinstance(r, dict) and set(r) == set(ENTRY_TYPES) for r in data["runs"]))
    if not ours:
        return None
    return [{k: r[k] for k in ENTRY_TYPES} for r in data["runs"] if _valid(r)]


def _ours(page: Path) -> bool:
    if not page.exists():
        return True
    if page.is_symlink() or not page.is_file():
        return False
    with open(page, encoding="utf-8", errors="replace") as fh:
        return MARKER in fh.read(500)


def check_history_folder(root: Path, report_dir: Path, inputs, key: str = "--history") -> None:
    """The history adds history.json, index.html and a lock file to `root` (creating it): refuse a
    `root` that is or lies inside a path the run reads (a concept or probe folder, a SavedModel: those
    files would become part of it) or the run's report folder (the next run would refuse to replace a
    folder holding files it did not write). `root` may contain them: the reports' parent is the usual place."""
    for name, path in [("report.out", report_dir), *inputs]:
        how = None if path is None else overlap(root, path)
        if how in ("is", "lies inside"):
            raise UserError(f"{key}: {root} {how} {name} ({path}); the history writes history.json and index.html "
                            "there: choose a folder apart from the report and the inputs, e.g. the report's parent")


def record_run(result: dict, report_dir: Path, root: Path | None = None) -> Path:
    """Add one run to the history in `root` (default: report_dir's parent folder); returns the
    page that lists the runs. Opt-in: `audit run --history DIR`, or `audit.run(history=DIR)`."""
    root = Path(root).resolve() if root is not None else Path(report_dir).resolve().parent
    root.mkdir(parents=True, exist_ok=True)
    entry = clean({
        "title": result["title"], "model": result["model"]["name"], "model_sha256": result["model"]["sha256"],
        "started_at": result["provenance"]["started_at"], "verdict": result["verdict"],
        "findings": len(result["findings"]), "fail": result["summary"]["fail"], "warn": result["summary"]["warn"],
        "baseline": (result.get("baseline") or {}).get("state", "none"),
        "report": os.path.relpath(Path(report_dir).resolve() / "index.html", root).replace(os.sep, "/"),
    })
    with open(root / ".history.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path, page = root / "history.json", root / "index.html"
        runs = read_runs(path)
        if runs is None:  # someone else's history.json: never overwritten
            path, page = root / "audit-history.json", root / "audit-history.html"
            runs = read_runs(path)
            if runs is None:
                raise OSError(f"{root / 'history.json'} and {path} were not written by audit; left alone")
        runs = [entry, *runs][:MAX_RUNS]
        if not _ours(page):
            page = root / "audit-history.html"  # never overwrite someone else's index.html
            if not _ours(page):
                raise OSError(f"{page} was not written by audit; left alone")
        write_text_atomic(path, json.dumps({"tool": SIGNATURE, "runs": runs}, indent=1) + "\n")
        write_text_atomic(page, render_history(runs))
    return page


def render_history(runs: list[dict]) -> str:
    from audit.report.html import TEMPLATES

    links = [quote(r["report"], safe="/") if safe_link(r["report"]) else None for r in runs]
    return TEMPLATES.get_template("history.html.j2").render(runs=runs, links=links, max_runs=MAX_RUNS)
