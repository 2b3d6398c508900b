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

SWAPPER = """
import sys, time
from audit.report.folder import staged_folder
target, start, rounds, me = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
while time.time() < start:
    pass
for i in range(rounds):
    with staged_folder(target) as stage:
        (stage / "audit.json").write_text(f"{me} {i}")
"""


def one_round(processes: int, rounds: int) -> tuple[bool, str]:
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "report"
        start = time.time() + 2
        procs = [subprocess.Popen([sys.executable, "-c", SWAPPER, str(target), str(start), str(rounds), f"p{k}"],
                                  stderr=subprocess.PIPE, text=True) for k in range(processes)]
        errors = [p.communicate()[1] for p in procs]
        left = sorted(p.name for p in Path(tmp).iterdir())
        ok = all(p.returncode == 0 for p in procs) and left == ["report"]
        return ok, "" if ok else f"exit codes {[p.returncode for p in procs]}, left {left}: " + \
            " | ".join(e.strip().splitlines()[-1] for e in errors if e.strip())


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
