"""Hostile corpus: output folders against what the same command reads (issue 26, defect 3).

A folder's marker says what kind of folder the tool wrote there: a report replaces only a report,
`audit concept from-pattern` only a concept folder it wrote (markers written before kinds existed
are read as what they were written for). And no output folder may be, contain or lie inside one
of the command's own inputs. Each refusal is exit 2, one line naming the key, nothing touched."""

import json

import pytest
from PIL import Image

from audit.errors import UserError
from audit.report.folder import MARKER, staged_folder
from hostile_helpers import CONCEPTS, refused_untouched, run_cli, tiny_config, write_yaml


def _png(path, shade, alpha=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    mode, color = ("RGBA", (shade, 0, 0, 255)) if alpha else ("RGB", (shade, shade, 0))
    img = Image.new(mode, (16, 16), (0, 0, 0, 0) if alpha else (0, 0, 0))
    img.paste(color, (4, 4, 12, 12))
    img.save(path)


def _discovery_report(folder):
    """A report folder written by this tool, with one discovered pattern (dumbbell #1)."""
    with staged_folder(folder) as stage:
        examples = [f"images/discovered/dumbbell_1_ex{i}.png" for i in range(5)]
        for i, rel in enumerate(examples):
            _png(stage / rel, 40 * i + 20)
        _png(stage / "images/discovered/dumbbell_1_cut0.png", 200, alpha=True)
        (stage / "discovery.json").write_text(json.dumps({"provenance": {"tool": "audit"}, "discovered": [
            {"class_name": "dumbbell", "pattern": 1, "level": "review",
             "examples": [{"image": rel} for rel in examples], "cutouts": ["images/discovered/dumbbell_1_cut0.png"]}]}))
    return folder / "discovery.json"


def _promote(report, out):
    return run_cli("concept", "from-pattern", report, "dumbbell", 1, "armp", "--out", out)


def test_promotion_never_replaces_its_own_source_report(tmp_path):
    # the case: `--out R` deleted R's 237 files and exited 0
    report = _discovery_report(tmp_path / "R")
    refused_untouched(tmp_path, "concept", "from-pattern", report, "dumbbell", 1, "armp", "--out", tmp_path / "R",
                      words=("--out", "is the source report's folder"))
    refused_untouched(tmp_path, "concept", "from-pattern", report, "dumbbell", 1, "armp", "--out",
                      tmp_path / "R" / "images", words=("--out", "lies inside the source report's folder"))
    refused_untouched(tmp_path, "concept", "from-pattern", report, "dumbbell", 1, "armp", "--out", tmp_path,
                      words=("--out", "contains the source report's folder"))


def test_a_report_and_a_concept_folder_never_replace_each_other(tmp_path):
    report = _discovery_report(tmp_path / "R")
    other = tmp_path / "other-report"
    _discovery_report(other)
    refused_untouched(tmp_path, "concept", "from-pattern", report, "dumbbell", 1, "armp", "--out", other,
                      words=("--out", "is an audit report folder, not a concept folder"))
    concept = tmp_path / "armp"
    proc = _promote(report, concept)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((concept / MARKER).read_text())["kind"] == "concept"
    assert _promote(report, concept).returncode == 0  # its own kind: replaced
    cfg = write_yaml(tmp_path, tiny_config(tmp_path, report={"out": str(concept)}))
    refused_untouched(tmp_path, "run", cfg, words=("report.out", "is a concept folder", "not an audit report"))
    with pytest.raises(UserError, match="is a concept folder"):
        with staged_folder(concept):
            pass


def test_a_run_never_writes_its_report_over_or_into_what_it_reads(tmp_path):
    # the case: report.out is a concept folder the same config lists; the run read it, then replaced it
    concept = tmp_path / "armp"
    proc = _promote(_discovery_report(tmp_path / "R"), concept)
    assert proc.returncode == 0, proc.stderr
    bank = {"armp": {"examples": str(concept / "examples"), "allowed_in": []}}
    cfg = tiny_config(tmp_path, report={"out": str(concept)})
    cfg["concepts"]["bank"] = bank
    refused_untouched(tmp_path, "run", write_yaml(tmp_path, cfg),
                      words=("report.out", "contains concepts.bank.armp.examples", "which this command reads"))
    # inside a probe folder the report would become a class sub-folder of the next run
    probes = tmp_path / "probes"
    for i in range(20):
        _png(probes / f"p{i:02d}.png", 10 * i)
    cfg = tiny_config(tmp_path, report={"out": str(probes / "report")})
    cfg["concepts"]["probes"] = str(probes)
    refused_untouched(tmp_path, "run", write_yaml(tmp_path, cfg), words=("report.out", "lies inside concepts.probes"))
    # a report folder holding the baseline it is compared with (`--baseline` or gate.baseline)
    out = tmp_path / "out"
    _discovery_report(out)
    cfg = write_yaml(tmp_path, tiny_config(tmp_path))
    refused_untouched(tmp_path, "run", cfg, "--baseline", out / "audit.json",
                      words=("report.out", "contains --baseline"))
    cfg = write_yaml(tmp_path, tiny_config(tmp_path, gate={"baseline": str(out / "discovery.json")}))
    refused_untouched(tmp_path, "run", cfg, words=("report.out", "contains gate.baseline"))
    cfg = write_yaml(tmp_path, tiny_config(tmp_path, report={"out": str(CONCEPTS / "_random")}))
    refused_untouched(tmp_path, "run", cfg, words=("report.out", "is concepts.negatives"))


def test_the_run_history_is_never_written_into_what_the_run_reads_or_into_its_report(tmp_path):
    """`--history DIR` adds history.json and index.html to DIR: inside a probe folder it would become a
    class sub-folder of the next run, in a concept folder part of the concept, in the report folder
    files the next run refuses to replace. The reports' parent folder (containing them) stays fine."""
    import audit
    from audit.report.history import check_history_folder

    probes, examples = tmp_path / "probes", tmp_path / "arm"
    for i in range(20):
        _png(probes / f"p{i:02d}.png", 10 * i)
        _png(examples / f"a{i:02d}.png", 10 * i)
    cfg = tiny_config(tmp_path)
    cfg["concepts"]["probes"] = str(probes)
    cfg["concepts"]["bank"]["arm"]["examples"] = str(examples)
    path = write_yaml(tmp_path, cfg)
    for history, words in [(probes / "history", "lies inside concepts.probes"),
                           (examples, "is concepts.bank.arm.examples"),
                           (tmp_path / "out", "is report.out"),
                           (tmp_path / "out" / "runs", "lies inside report.out")]:
        refused_untouched(tmp_path, "run", path, "--history", history, words=("--history", words, "apart from"))
    with pytest.raises(UserError, match="^history: .* lies inside concepts.probes"):
        audit.run(path, history=probes / "history")  # the API refuses too, before any work
    check_history_folder(tmp_path, tmp_path / "out", [("concepts.probes", probes)])  # containing them: fine


def test_markers_written_before_kinds_are_read_as_what_they_were_written_for(tmp_path):
    """An older version wrote the same marker for both; a concept folder is the one with pattern.json."""
    concept = tmp_path / "old-concept"
    _png(concept / "examples" / "a_000.png", 50)
    (concept / "pattern.json").write_text("{}")
    (concept / MARKER).write_text(json.dumps({"signature": json.loads(_marker_of(tmp_path))["signature"],
                                              "files": ["examples/a_000.png", "pattern.json"]}))
    report = tmp_path / "old-report"
    report.mkdir()
    (report / "audit.json").write_text("{}")
    (report / MARKER).write_text(json.dumps({"signature": json.loads(_marker_of(tmp_path))["signature"],
                                             "files": ["audit.json"]}))
    with pytest.raises(UserError, match="is a concept folder"):
        with staged_folder(concept):
            pass
    with pytest.raises(UserError, match="is an audit report folder"):
        with staged_folder(report, kind="concept", key="--out"):
            pass
    with staged_folder(report) as stage:
        (stage / "audit.json").write_text("new")
    with staged_folder(concept, kind="concept", key="--out") as stage:
        (stage / "pattern.json").write_text("new")
    assert (report / "audit.json").read_text() == "new" and (concept / "pattern.json").read_text() == "new"


def _marker_of(tmp_path) -> str:
    folder = tmp_path / "probe-marker"
    with staged_folder(folder) as stage:
        (stage / "x.txt").write_text("x")
    return (folder / MARKER).read_text()
