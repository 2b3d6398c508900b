"""The peers benchmark (benchmarks/peers) turns judged snapshots into "steps to recognizable" as
docs/performance.md defines it, and a tool that crashes becomes an error row, not a crashed benchmark."""

import importlib.util
import sys

from conftest import ROOT

PEERS = ROOT / "benchmarks" / "peers"


def _module(name: str):
    sys.path.insert(0, str(PEERS))  # run.py and report.py import each other by file name
    spec = importlib.util.spec_from_file_location(f"bench_peers_{name}", PEERS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(ranks_by_step: dict, ms: float = 40.0) -> dict:
    """A judged setting: Lite2's rank (0 = top-1) of each class's target at each checkpoint."""
    by = {str(s): {"rank": r, "top1": sum(x == 0 for x in r) / len(r), "top5": sum(x < 5 for x in r) / len(r),
                   "own_top1": 1.0} for s, r in ranks_by_step.items()}
    return {"by_steps": by, "ms_per_image_step": ms, "targets": list(range(len(next(iter(ranks_by_step.values()))))),
            "library_version": "x", "image_size": [224, 224], "snapshots": sorted(ranks_by_step)}


def test_steps_to_recognizable_is_the_first_checkpoint_where_80_percent_are_in_the_judges_top5():
    run = _module("run")
    # 5 classes: 3/5 in the top 5 at 32 steps, 4/5 (= 80%) at 64, all at 128
    row = _row({32: [0, 3, 4, 9, 50], 64: [0, 1, 4, 4, 50], 128: [0, 0, 0, 1, 2]})
    assert run.summary(row) == {"steps_to_recognizable": 64, "seconds_to_recognizable": 64 * 40.0 / 1000}
    # on the classes at positions 3 and 4 only: 4 (rank 4 at 64) and 50 -> 1/2 at 64, 2/2 at 128
    assert run.summary(row, [3, 4])["steps_to_recognizable"] == 128
    never = _row({32: [9, 9, 0], 64: [9, 9, 0]})
    assert run.summary(never) == {"steps_to_recognizable": None, "seconds_to_recognizable": None}


def test_a_tool_that_crashes_is_recorded_as_an_error_row(tmp_path):
    run, report = _module("run"), _module("report")
    crash = tmp_path / "crash.py"
    crash.write_text("import sys\nraise ValueError('xplique: no such objective')\n")
    row = run.run_child([str(crash)], tmp_path / "out.npz")
    assert "ValueError: xplique: no such objective" in row["error"]

    ok = {**_row({32: [0, 1], 64: [0, 0]}), **run.summary(_row({32: [0, 1], 64: [0, 0]}))}
    result = {"machine": {"cpu": "cpu", "cores": 2, "tensorflow": "2", "load_average_at_start": 1.0},
              "date": "d", "peer_venv": "p", "classes": ["a", "b"], "targets": [0, 1], "steps": 64,
              "snapshots": [32, 64], "recognizable_top5": 0.8, "maco_class_positions": [0],
              "settings": {"engine-default": ok, "xplique-maco": {**row, "label": "xplique MaCo"}}}
    table = report.markdown(result)
    assert "| xplique MaCo | | | error: " in table and "ValueError: xplique: no such objective" in table
    # 40 ms x 32 steps = 1.3 s to recognizable
    assert ("| engine-default | x | 224x224 | 40.0 | 1.0x | 0.50 / 1.00 ; 1.00 / 1.00 | 1.00 | 32 | 1.3 | 1.0x | nan |"
            in table)
