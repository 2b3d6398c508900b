"""Hostile corpus: report folders. A folder is replaced only when this tool wrote it (its marker,
nothing unexpected inside); anything else is refused before any work, untouched."""

import json
import shutil
import os

import pytest

from audit.errors import UserError
from audit.report.folder import MARKER, clean_stale_staging, staged_folder
from conftest import run_cli
from hostile_helpers import CONCEPTS, refused_untouched, snapshot, tiny_config, write_yaml


def _our_report(folder):
    with staged_folder(folder) as stage:
        (stage / "audit.json").write_text('{"provenance": {"tool": "audit"}}')
        (stage / "images").mkdir()
        (stage / "images" / "a.png").write_bytes(b"png")


def _foreign_audit_json_and_user_files(out):
    out.mkdir()
    (out / "audit.json").write_text('{"tool": "another auditing tool", "score": 3}')
    (out / "thesis.tex").write_text("three years of work")
    (out / "data").mkdir()
    (out / "data" / "results.csv").write_text("a,b\n1,2\n")


def _only_foreign_audit_json(out):
    out.mkdir()
    (out / "audit.json").write_text('{"provenance": {"tool": "someone else"}}')


def _crash_txt_and_notes(out):
    out.mkdir()
    (out / "crash.txt").write_text("not ours")
    (out / "notes.md").write_text("mine")


def _our_report_plus_a_user_file(out):
    _our_report(out)
    (out / "review-notes.txt").write_text("the reviewer's notes, added to the report folder")


def _our_report_plus_a_user_folder(out):
    _our_report(out)
    (out / "empty-but-mine").mkdir()


def _our_report_plus_a_fifo(out):
    _our_report(out)
    os.mkfifo(out / "images" / "b.png")


def _symlink_to_a_folder(out):
    real = out.parent / "real"
    real.mkdir()
    (real / "keep.txt").write_text("mine")
    out.symlink_to(real)


def _a_file(out):
    out.write_text("a file where the report folder would go")


def _parent_is_a_file(out):
    out.parent.joinpath("blocker").write_text("a file, not a folder")
    return out.parent / "blocker" / "report"


def _legacy_report_with_a_user_file(out):
    out.mkdir()
    (out / "audit.json").write_text('{"provenance": {"tool": "audit"}}')
    (out / "index.html").write_text("<html></html>")
    (out / "my-notes.txt").write_text("mine")


FOLDER_CASES = [
    ("foreign-audit-json-and-user-files", _foreign_audit_json_and_user_files, ("no .audit-report marker",)),
    ("only-foreign-audit-json", _only_foreign_audit_json, ("not an audit report",)),
    ("crash-txt-and-notes", _crash_txt_and_notes, ("not an audit report",)),
    ("our-report-plus-user-file", _our_report_plus_a_user_file, ("review-notes.txt was not written by this tool",)),
    ("our-report-plus-user-folder", _our_report_plus_a_user_folder, ("empty-but-mine was not written",)),
    ("our-report-plus-fifo", _our_report_plus_a_fifo, ("images/b.png was not written",)),
    ("legacy-report-plus-user-file", _legacy_report_with_a_user_file, ("not an audit report",)),
    ("symlinked-report-folder", _symlink_to_a_folder, ()),  # run: "symbolic link"; dream resolves it: "not ours"
    ("report-out-is-a-file", _a_file, ("is a file",)),
    ("parent-is-a-file", _parent_is_a_file, ("cannot write a report",)),
]


@pytest.mark.parametrize("make, words", [c[1:] for c in FOLDER_CASES], ids=[c[0] for c in FOLDER_CASES])
@pytest.mark.parametrize("command", ["run", "dream"])
def test_report_folders_not_written_by_the_tool_are_never_replaced(tmp_path, make, words, command):
    out = make(tmp_path / "out") or tmp_path / "out"
    if command == "run":
        argv = ["run", write_yaml(tmp_path, tiny_config(tmp_path)), "--out", out]
    else:
        argv = ["dream", "--model", tiny_config(tmp_path)["model"]["path"], "--layer", "features", "--steps", "1",
                "--out", out]
    refused_untouched(tmp_path, *argv, words=("report.out", *words), timeout=120)


def test_only_a_report_this_tool_wrote_is_replaced(tmp_path):
    target = tmp_path / "report"
    _our_report(target)
    marker = json.loads((target / MARKER).read_text())
    assert marker["files"] == ["audit.json", "images/a.png"]
    with staged_folder(target) as stage:
        (stage / "audit.json").write_text("second")
    assert sorted(p.name for p in target.iterdir()) == [MARKER, "audit.json"]
    # an earlier version's report (no marker; only its own files, its own provenance) is replaced too
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "audit.json").write_text('{"provenance": {"tool": "audit"}}')
    (legacy / "images" / "classes").mkdir(parents=True)
    (legacy / "images" / "classes" / "0000_r0.png").write_bytes(b"png")
    with staged_folder(legacy) as stage:
        (stage / "audit.json").write_text("new")
    assert (legacy / "audit.json").read_text() == "new" and not (legacy / "images").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["legacy", "report"]


def test_a_user_file_added_to_a_report_survives_the_next_run(tmp_path):
    target = tmp_path / "report"
    _our_report(target)
    (target / "notes.txt").write_text("mine")
    before = snapshot(tmp_path)
    with pytest.raises(UserError, match="notes.txt was not written by this tool"):
        with staged_folder(target) as stage:
            (stage / "audit.json").write_text("x")
    assert snapshot(tmp_path) == before


def test_stale_staging_of_killed_runs_is_cleaned_and_nothing_else(tmp_path):
    import subprocess
    import sys

    target = tmp_path / "report"
    _our_report(target)
    # a run killed (SIGKILL) while writing leaves its staging folder behind
    code = ("import os, signal, sys; from audit.report.folder import staged_folder\n"
            "with staged_folder(sys.argv[1]) as s:\n"
            "    (s / 'audit.json').write_text('half')\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True)
    assert proc.returncode == -9
    stale = [p for p in tmp_path.iterdir() if ".staging-" in p.name]
    assert len(stale) == 1
    lookalike = tmp_path / ".report.staging-1-mine"  # a name like ours, but not marked as ours
    lookalike.mkdir()
    (lookalike / "keep.txt").write_text("mine")
    assert clean_stale_staging(target) == stale
    assert sorted(p.name for p in tmp_path.iterdir()) == [".report.staging-1-mine", "report"]
    assert (lookalike / "keep.txt").read_text() == "mine"
    # and the next real run does it by itself
    subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True)
    with staged_folder(target) as stage:
        (stage / "audit.json").write_text("next")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".report.staging-1-mine", "report"]


def test_a_file_name_that_is_not_utf8_is_hashed_by_its_bytes(tmp_path):
    """A probe or cutout named with bytes that are not UTF-8 passed `validate`, then the run's folder
    hash raised UnicodeEncodeError at its very end (exit 3, the previous report replaced by a crash
    report). The folder hash now reads the name's own bytes."""
    from audit.model.load import file_sha256

    folder = tmp_path / "probes"
    folder.mkdir()
    shutil.copy(CONCEPTS / "_probes" / "ball_000.png", os.path.join(os.fsencode(folder), b"caf\xe9.png"))
    first = file_sha256(folder)
    assert len(first) == 64 and first == file_sha256(folder)
    os.rename(os.path.join(os.fsencode(folder), b"caf\xe9.png"), os.path.join(os.fsencode(folder), b"caf\xe8.png"))
    assert file_sha256(folder) != first  # another name, another hash


@pytest.mark.slow
def test_a_run_with_a_non_utf8_probe_name_completes(tmp_path):
    probes = tmp_path / "probes"
    shutil.copytree(CONCEPTS / "_probes", probes)
    os.rename(probes / "ball_000.png", os.path.join(os.fsencode(probes), b"ball_\xff.png"))
    cfg = tiny_config(tmp_path, concepts={"probes": str(probes), "auto_cutouts": False})
    proc = run_cli("run", write_yaml(tmp_path, cfg), "--quiet", "--no-history")
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    assert (tmp_path / "out" / "audit.json").is_file() and not (tmp_path / "out" / "crash.txt").exists()
