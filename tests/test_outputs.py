import pytest

from audit.outputs import staged_folder


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
        (stage / "old-only.txt").write_text("x")
    with staged_folder(target) as stage:
        (stage / "audit.json").write_text("second")
    assert sorted(p.name for p in target.iterdir()) == ["audit.json"]
