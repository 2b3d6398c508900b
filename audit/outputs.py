"""Writing a report folder atomically: everything goes to a hidden staging folder beside the
target, which replaces the target only once complete. A crash leaves the previous report
(or nothing), never a report that looks complete but is not."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from audit.errors import UserError


REPORT_MARKERS = ("audit.json", "dream.json", "crash.txt")


def check_replaceable(target: Path, key: str = "report.out") -> None:
    """A report folder may replace only an earlier report or an empty folder, never user files."""
    target = Path(target)
    if not target.exists():
        return
    if not target.is_dir():
        raise UserError(f"{key}: {target} is a file, not a report folder; choose another path")
    if any(target.iterdir()) and not any((target / m).exists() for m in REPORT_MARKERS):
        raise UserError(f"{key}: {target} holds files that are not an audit report; choose an empty or new "
                        "folder (a report replaces its whole folder)")


@contextlib.contextmanager
def staged_folder(target: Path):
    target = Path(target)
    check_replaceable(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    old = None
    if target.exists():
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        os.replace(target, old)
    os.replace(staging, target)
    os.chmod(target, 0o755)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_text_atomic(path: Path, text: str) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; reports are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
