"""Concurrent report-folder swaps: N processes x R synchronized swaps of one folder.

Every swap must succeed and leave exactly one complete report and nothing beside it.
Usage: python benchmarks/stress/report_swaps.py [--processes 4] [--rounds 500] [--repeat 10]
"""
import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the swappers import `audit` from this checkout

# One run's report: a file and a file in a subfolder, so a mix of two runs' files would show.
SWAPPER = """
import sys, time
from audit.report.folder import staged_folder
target, start, rounds, me = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
while time.time() < start:
    pass
for i in range(rounds):
    with staged_folder(target) as stage:
        (stage / "audit.json").write_text(f"{me} {i}")
        (stage / "images").mkdir()
        (stage / "images" / "a.png").write_text(me)
"""


def swap_concurrently(target: Path, processes: int, rounds: int, start_in: float,
                      timeout: float | None = None) -> list[tuple[int, str]]:
    """Start `processes` swappers that all begin `start_in` seconds from now (so they collide) and
    each swap `target` `rounds` times; return every process's (exit code, stderr)."""
    start = time.time() + start_in
    procs = [subprocess.Popen([sys.executable, "-c", SWAPPER, str(target), str(start), str(rounds), f"p{k}"],
                              cwd=ROOT, stderr=subprocess.PIPE, text=True) for k in range(processes)]
    errors = [p.communicate(timeout=timeout)[1] for p in procs]
    return [(p.returncode, e) for p, e in zip(procs, errors)]


def one_round(processes: int, rounds: int) -> tuple[bool, str]:
    with tempfile.TemporaryDirectory() as tmp:
        outcomes = swap_concurrently(Path(tmp) / "report", processes, rounds, start_in=2)
        left = sorted(p.name for p in Path(tmp).iterdir())
        ok = all(code == 0 for code, _ in outcomes) and left == ["report"]
        return ok, "" if ok else f"exit codes {[code for code, _ in outcomes]}, left {left}: " + \
            " | ".join(e.strip().splitlines()[-1] for _, e in outcomes if e.strip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    failures = 0
    for k in range(args.repeat):
        ok, why = one_round(args.processes, args.rounds)
        failures += not ok
        print(f"repeat {k + 1}: {'ok' if ok else 'FAILED ' + why}", flush=True)
    total = args.processes * args.rounds * args.repeat
    print(f"{total} swaps by {args.processes} processes, {failures} failed repeat(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
