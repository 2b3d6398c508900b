import pytest

from audit.report.folder import staged_folder


def test_a_crash_leaves_the_previous_report_untouched(tmp_path):
    target = tmp_path / "report"
    with staged_folder(target) as stage:
        (stage / "audit.json").write_text("first")
    with pytest.raises(RuntimeError):
        with staged_folder(target) as stage:
            (stage / "audit.json").write_text("half")
            raise RuntimeError("crash while writing")
    assert (target / "audit.json").read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["report"]  # no staging leftovers


def test_a_new_report_replaces_the_old_one_whole(tmp_path):
    target = tmp_path / "report"
    with staged_folder(target) as stage:
        (stage / "audit.json").write_text("first")
        (stage / "old-only.txt").write_text("x")
    with staged_folder(target) as stage:
        (stage / "audit.json").write_text("second")
    assert sorted(p.name for p in target.iterdir()) == [".audit-report", "audit.json"]


def test_a_folder_of_other_files_is_never_replaced(tmp_path):
    from audit.errors import UserError

    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not an audit report"):
        with staged_folder(tmp_path) as stage:
            (stage / "audit.json").write_text("x")
    assert (tmp_path / "notes.txt").read_text() == "mine"
