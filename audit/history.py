"""The run history beside the reports: `history.json` (the truth) and `index.html` rendered
from it. Updated incrementally after each run, under a lock, and bounded in size."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from audit.outputs import write_text_atomic

MAX_RUNS = 200
MARKER = "<!-- audit run history -->"


def record_run(result: dict, report_dir: Path, root: Path | None = None) -> Path:
    """Add one run to the history in `root` (default: report_dir's parent folder); returns the
    page that lists the runs. Opt-in: `audit run --history DIR`, or `audit.run(history=DIR)`."""
    root = Path(root).resolve() if root is not None else Path(report_dir).resolve().parent
    root.mkdir(parents=True, exist_ok=True)
    entry = {
        "title": result["title"], "model": result["model"]["name"], "model_sha256": result["model"]["sha256"],
        "started_at": result["provenance"]["started_at"], "verdict": result["verdict"],
        "findings": len(result["findings"]), "fail": result["summary"]["fail"], "warn": result["summary"]["warn"],
        "baseline": (result.get("baseline") or {}).get("state", "none"),
        "report": os.path.relpath(Path(report_dir).resolve() / "index.html", root),
    }
    with open(root / ".history.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = root / "history.json"
        try:
            runs = json.loads(path.read_text())["runs"] if path.exists() else []
        except (ValueError, KeyError, TypeError, OSError):
            runs = []
        if not isinstance(runs, list) or not all(isinstance(r, dict) and set(entry) <= set(r) for r in runs):
            runs = []  # a damaged history is rebuilt from this run on
        runs = [entry, *runs][:MAX_RUNS]
        write_text_atomic(path, json.dumps({"runs": runs}, indent=1) + "\n")
        page = root / "index.html"
        if page.exists() and MARKER not in page.read_text(errors="replace")[:500]:
            page = root / "audit-history.html"  # never overwrite someone else's index.html
        write_text_atomic(page, render_history(runs))
    return page


def render_history(runs: list[dict]) -> str:
    from audit.report.html import _ENV

    return _ENV.get_template("history.html.j2").render(runs=runs, max_runs=MAX_RUNS)
