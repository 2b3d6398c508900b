"""Writing a report folder atomically: everything goes to a hidden staging folder beside the
target, which replaces the target only once complete. A crash leaves the previous report
(or nothing), never a report that looks complete but is not.

A folder is replaced only when this tool wrote it: it holds a marker file with the tool's
signature listing every file the tool put there, and nothing else. A file named `audit.json`
is not proof (another tool may write one), and a user's file added to a report is never
deleted with it. Swaps of the same folder by concurrent runs are serialized by a lock.

The marker also says what kind of folder it is (KINDS): a report replaces only a report, and
`audit concept from-pattern` only a concept folder it wrote, so a run never replaces a concept
folder a config reads, nor promotion the report it reads from. Nor may an output folder be,
contain or lie inside a path the same command reads (check_outside_inputs).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import signal
import stat
import tempfile
import threading
from pathlib import Path

from audit.errors import UserError

MARKER = ".audit-report"
SIGNATURE = "audit report folder: written by the `audit` tool, replaced whole by its next run"
# What a marked folder holds: a report (of `audit run`, `dream` or `discover`: any may replace any),
# or a concept folder of `audit concept from-pattern`. Markers written before kinds existed have none:
# they are read as what they were written for (a concept folder is the one with pattern.json at its top).
KINDS = {"report": "an audit report folder", "concept": "a concept folder (written by `audit concept from-pattern`)"}
# Reports written before the marker existed: only these names, and audit.json/dream.json must
# carry this tool's provenance, so another tool's audit.json (or a user's file) never qualifies.
LEGACY_FILES = re.compile(r"(audit\.json|dream\.json|index\.html|junit\.xml|summary\.md|scores\.csv|crash\.txt"
                          r"|images/(classes|concepts|layers)/[^/]+\.png|images/(input|dream|guide)\.png)")
# errors of the environment, not of the tool: a full disk, a read-only or forbidden folder
ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR}


def _files(folder: Path) -> tuple[list[str], list[str]]:
    """(regular files, everything else: folders, symlinks, FIFOs...) under folder, relative POSIX paths."""
    files, other = [], []
    for root, dirs, names in os.walk(folder):
        for name in names + dirs:
            full = os.path.join(root, name)
            rel = os.path.relpath(full, folder).replace(os.sep, "/")
            (files if os.path.isfile(full) and not os.path.islink(full) else other).append(rel)
    return sorted(files), sorted(other)


def _marker(folder: Path) -> tuple[str, list[str]] | None:
    """(kind, the files the marker says this tool wrote), or None when there is no valid marker."""
    marker = folder / MARKER
    if marker.is_symlink() or not marker.is_file() or marker.stat().st_size > 16 * 2**20:
        return None
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("signature") != SIGNATURE or not isinstance(data.get("files"), list):
        return None
    files = [f for f in data["files"] if isinstance(f, str)]
    kind = data.get("kind", "concept" if "pattern.json" in files else "report")  # no kind: an older marker
    return (kind, files) if isinstance(kind, str) else None


def _manifest(folder: Path) -> list[str] | None:
    marker = _marker(folder)
    return None if marker is None else marker[1]


def folder_kind(folder: Path) -> str | None:
    """What the tool wrote in `folder` (a KINDS key, or an unknown kind of a later version), or None
    when it holds no marker (an empty folder; an earlier version's unmarked report is a `report`)."""
    marker = _marker(folder)
    if marker is not None:
        return marker[0]
    return "report" if _legacy_report(folder, _files(folder)[0]) else None


def _legacy_report(folder: Path, files: list[str]) -> bool:
    """An earlier version's report: only its own file names, with its own provenance inside."""
    if not files or not all(LEGACY_FILES.fullmatch(f) for f in files):
        return False
    sources = [f for f in ("audit.json", "dream.json") if f in files]
    if not sources or (folder / sources[0]).stat().st_size > 256 * 2**20:
        return False
    try:
        data = json.loads((folder / sources[0]).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(data, dict) and isinstance(data.get("provenance"), dict) and \
        data["provenance"].get("tool") == "audit"


def foreign_content(target: Path) -> str | None:
    """Why `target` may not be replaced (something this tool did not write), or None when it may."""
    files, other = _files(target)
    if not files and not other:
        return None
    manifest = _manifest(target)
    if manifest is None and not _legacy_report(target, files):
        return f"it has no {MARKER} marker of this tool (e.g. {(files or other)[0]})"
    written = set(files if manifest is None else manifest) | {MARKER}
    folders = {str(Path(f).parent.as_posix()) for f in written}
    folders |= {p.as_posix() for f in folders for p in Path(f).parents}
    unexpected = [f for f in files if f not in written] + [
        f for f in other if f not in folders or os.path.islink(target / f)]
    return f"{unexpected[0]} was not written by this tool" if unexpected else None


def check_replaceable(target: Path, key: str = "report.out", kind: str = "report", inputs=()) -> None:
    """A report folder may replace only a report this tool wrote or an empty folder, never user
    files (a concept folder only a concept folder); it must not be, contain or lie inside one of
    `inputs`, the (key, path) pairs the command reads; and its folder must be writable. Checked
    before the work, not after it, under the swap lock, so another run's swap in progress is never
    mistaken for foreign content."""
    target = Path(target)
    check_outside_inputs(target, inputs, key)
    with contextlib.ExitStack() as stack:
        with contextlib.suppress(OSError):  # no parent yet (nothing to race with), or unreadable
            stack.enter_context(_folder_lock(target.parent))
        _check_replaceable_locked(target, key, kind)


def check_outside_inputs(target: Path, inputs, key: str = "report.out") -> None:
    """An output folder is replaced whole: refuse one that is, contains or lies inside a path the same
    command reads (its model, image folders, baseline, source report), whatever its marker says."""
    for name, path in inputs:
        how = None if path is None else overlap(target, path)
        if how is not None:
            raise UserError(f"{key}: {target} {how} {name} ({path}), which this command reads; the output replaces "
                            "its whole folder: choose a folder apart from the inputs")


def overlap(target: Path, other: Path) -> str | None:
    """How `target` sits against `other` once links are resolved: "is", "lies inside", "contains" or None."""
    target, other = Path(os.path.realpath(target)), Path(os.path.realpath(other))
    return ("is" if target == other else "lies inside" if other in target.parents else
            "contains" if target in other.parents else None)


def _check_replaceable_locked(target: Path, key: str, kind: str = "report") -> None:
    try:
        mode = os.lstat(target).st_mode  # one look: the path may be swapped between two
    except (FileNotFoundError, NotADirectoryError):  # _check_writable says what is wrong with the parent
        mode = None
    if mode is not None and stat.S_ISLNK(mode):
        raise UserError(f"{key}: {target} is a symbolic link; give the folder it points to, or a new folder")
    if mode is not None:
        if not stat.S_ISDIR(mode):
            raise UserError(f"{key}: {target} is a file, not a report folder; choose another path")
        why = foreign_content(target)
        if why is not None:
            raise UserError(f"{key}: {target} holds files that are not an audit report ({why}); choose an empty "
                            "or new folder, or move those files out (a report replaces its whole folder)")
        found = folder_kind(target)
        if found is not None and found != kind:
            raise UserError(f"{key}: {target} is {KINDS.get(found, f'a folder of kind {found!r}')}, not "
                            f"{KINDS[kind]}; choose another folder (it is replaced only by its own kind)")
    _check_writable(target, key)


def _check_writable(target: Path, key: str) -> None:
    """Find out now, not after the work, whether the report can be written beside `target`."""
    parent = target.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    try:
        if not parent.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(parent))
        Path(tempfile.mkdtemp(prefix=f".{target.name}.probe-", dir=parent)).rmdir()
    except OSError as exc:
        raise UserError(f"{key}: cannot write a report at {target} ({exc.strerror or exc}); choose a writable "
                        "folder") from None


@contextlib.contextmanager
def _folder_lock(folder: Path):
    """An exclusive lock on the folder holding the report (no lock file is left behind)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def _signals_deferred():
    """SIGINT/SIGTERM/SIGHUP wait until the swap is done: a report folder is never left half-swapped.
    (Handlers, not a signal mask: TensorFlow's threads would receive a masked signal instead.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    handlers = {s: signal.signal(s, lambda signum, frame: pending.append(signum))
                for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in handlers.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)
        if pending:
            signal.raise_signal(pending[0])


def _write_marker(folder: Path, files: list[str] | None, kind: str = "report") -> None:
    (folder / MARKER).write_text(json.dumps({"signature": SIGNATURE, "kind": kind, "files": files}, indent=0) + "\n",
                                 encoding="utf-8")


def _remove(folder: Path) -> None:
    """Remove a folder of this tool's, its marker last (a half-removed folder stays recognizable)."""
    for child in folder.iterdir():
        if child.name != MARKER:
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
    (folder / MARKER).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        folder.rmdir()


def _prune_empty_folders(folder: Path) -> None:
    for root, dirs, names in os.walk(folder, topdown=False):
        for name in dirs:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                with contextlib.suppress(OSError):
                    os.rmdir(path)  # fails, as it should, when the folder is not empty


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_staging(target: Path) -> list[Path]:
    """Staging and swap leftovers of runs that were killed (SIGKILL, power loss): this tool's
    hidden folders beside `target`, marked as ours, whose process is gone."""
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(staging|old)-(\d+)-.+")
    removed = []
    for sibling in target.parent.iterdir():
        match = pattern.fullmatch(sibling.name)
        if (match and sibling.is_dir() and not sibling.is_symlink() and int(match.group(2)) != os.getpid()
                and not _pid_alive(int(match.group(2))) and (sibling / MARKER).is_file()):
            _remove_old(sibling) if match.group(1) == "old" else _remove(sibling)
            removed.append(sibling)
    return removed


def _as_user_error(exc: OSError, target: Path, key: str = "report.out") -> UserError | None:
    if exc.errno in ENVIRONMENT_ERRNOS:
        return UserError(f"{key}: cannot write the report at {target} ({exc.strerror}); free some space or "
                         "choose a writable folder (the previous report is untouched)")
    return None


@contextlib.contextmanager
def staged_folder(target: Path, kind: str = "report", key: str = "report.out"):
    """Stage a folder of this `kind` (KINDS) and swap it in whole at `target` (`key` names it in errors)."""
    target = Path(target)
    check_replaceable(target, key, kind)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _folder_lock(target.parent):
        clean_stale_staging(target)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-{os.getpid()}-", dir=target.parent))
    try:
        _write_marker(staging, None, kind)  # marked from the start, so a killed run's leftover can be recognized
        yield staging
        _prune_empty_folders(staging)  # the manifest lists files; an empty folder would look foreign
        _write_marker(staging, [f for f in _files(staging)[0] if f != MARKER], kind)
        # mkdtemp made it private; reports are meant to be shared. Set before the swap: once the lock
        # is released, `target` may already be another run's folder, or be mid-swap and absent.
        os.chmod(staging, 0o755)
    except OSError as exc:
        _remove(staging)
        error = _as_user_error(exc, target, key)
        if error is None:
            raise
        raise error from None
    except BaseException:
        _remove(staging)
        raise
    with _folder_lock(target.parent), _signals_deferred():
        try:
            if target.exists() or target.is_symlink():
                _check_replaceable_locked(target, key, kind)  # another process may have put something there
                old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-{os.getpid()}-", dir=target.parent))
                _write_marker(old, None)
                os.replace(target, old / "report")
                try:
                    os.replace(staging, target)
                except BaseException:
                    os.replace(old / "report", target)  # put the previous report back
                    raise
            else:
                old = None
                os.replace(staging, target)
        except BaseException:
            _remove(staging)
            raise
    if old is not None:
        _remove_old(old)


def _remove_old(old: Path) -> None:
    report = old / "report"
    if report.exists() and foreign_content(report) is None:
        shutil.rmtree(report, ignore_errors=True)
    if not report.exists():
        _remove(old)


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
