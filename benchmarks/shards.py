"""`verify --all --dtypes all` in 4 shards against one run: the shard wall times, and the merge check.

Usage: python benchmarks/shards.py [--shards 4] [--single REPORT] [--keep DIR]

Runs the single run (or reads its report, --single: benchmarks/shard_costs.py writes one), then each
shard `--shard k/N` one after another, each cold (--no-cache) in a fresh process as a CI machine
would, then `actexport merge`. Prints each shard's wall time beside its cost in the model (shards.py)
and checks that the merged report has exactly the single run's cells (key and status) and exit code.
Exit 1 when the merge differs or the shards' wall times differ by 30% or more (issue "Where people
look"). A benchmark, not a unit test: minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from verify_speed import calibration

MATRIX = ["--all", "--dtypes", "all", "--quiet", "--no-cache"]
SPREAD = 0.30  # the slowest shard over the fastest, at most 1.3x


def _actexport(*args: str) -> tuple[int, float, str]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "actexport", *args], capture_output=True, text=True, check=False)
    return proc.returncode, time.perf_counter() - start, (proc.stdout + proc.stderr).strip().splitlines()[-1]


def _cells(path: Path) -> list[tuple[str, str, str, str, object, str]]:
    """What a run decided, cell by cell: seconds, artifact paths, cache and logs left out."""
    return [(c["activation"], c["format"], c["runtime"], c["dtype"], c["opset"], c["status"])
            for c in json.loads(path.read_text())["cells"]]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shards", type=int, default=4)
    p.add_argument("--single", type=Path, default=None, help="the single run's JSON report (else it is run)")
    p.add_argument("--keep", type=Path, default=None, help="keep the reports in DIR")
    args = p.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="actexport-shards-"))
    work.mkdir(parents=True, exist_ok=True)
    single = args.single
    if single is None:
        single = work / "single.json"
        code, seconds, last = _actexport("verify", *MATRIX, "--json", str(single))
        print(f"single run: {seconds:.0f} s, exit {code}: {last}")
    single_doc = json.loads(single.read_text())
    print(f"single run's report: {single_doc['summary']['cells']} cells in {single_doc['summary']['wall_seconds']:.0f} "
          f"s, exit code {single_doc['summary']['exit_code']}")
    walls, costs = [], []
    for k in range(1, args.shards + 1):
        loop = calibration()
        out = work / f"shard{k}.json"
        code, seconds, last = _actexport("verify", *MATRIX, "--shard", f"{k}/{args.shards}", "--json", str(out))
        record = json.loads(out.read_text())["environment"]["shard"]
        walls.append(seconds)
        costs.append(record["cost_ms"] / 1000)
        print(f"shard {k}/{args.shards}: {seconds:6.1f} s wall, {len(record['units']):3d} units, cost model "
              f"{costs[-1]:6.1f} s of work, exit {code} (calibration loop {loop:.2f} s): {last}")
    merged = work / "merged.json"
    code, _, last = _actexport("merge", *(str(work / f"shard{k}.json") for k in range(1, args.shards + 1)),
                               "--json", str(merged), "--quiet")
    same_cells = sorted(_cells(merged)) == sorted(_cells(single)) and _cells(merged) == _cells(single)
    same_code = code == single_doc["summary"]["exit_code"]
    spread = (max(walls) - min(walls)) / max(walls)
    print(f"merge: exit {code} ({'=' if same_code else '!='} the single run's); cells "
          f"{'identical (keys, statuses, order)' if same_cells else 'DIFFER'}: {last}")
    print(f"shard wall times {', '.join(f'{w:.1f}' for w in walls)} s: the fastest is {spread:.0%} below the slowest "
          f"(target < {SPREAD:.0%}); sum {sum(walls):.0f} s against the single run's "
          f"{single_doc['summary']['wall_seconds']:.0f} s")
    print(f"reports in {work}")
    return 0 if same_cells and same_code and spread < SPREAD else 1


if __name__ == "__main__":
    raise SystemExit(main())
