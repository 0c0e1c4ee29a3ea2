"""Measures what `--shard` balances: the seconds of work each activation x dtype takes in verify.

Usage: python benchmarks/shard_costs.py OUT.py [--json REPORT] [-- extra verify flags]

Runs `verify --all --dtypes all --no-cache` through the API in this process, and times per
activation x dtype what this process does (the exact reference and judging, serial) beside what
the workers did (each export's and each cell's seconds, from the report). Writes them as the data
module actexport/shard_costs.py is (one tuple of COLUMNS per unit). A benchmark, not a unit test:
it takes minutes on 2 cores, and a shared machine's figures drift, so only the proportions matter.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

from actexport.formats import FORMATS
from actexport.catalog import DTYPES
from actexport.verify import Options, verify
from actexport.verify import cells

COLUMNS = ("main", "eager", *(f"{f}_{part}" for f in FORMATS for part in ("export", "cells")))


def _timed(main: dict[tuple[str, str], float]) -> None:
    """Wraps ActivationRun's in-process steps so their seconds add up per unit."""
    init, judge = cells.ActivationRun.__init__, cells.ActivationRun.judge

    def timed_init(self, act, dtype, *args, **kw):
        start = time.perf_counter()
        init(self, act, dtype, *args, **kw)
        main[(act.id, dtype)] += time.perf_counter() - start

    def timed_judge(self):
        start = time.perf_counter()
        judge(self)
        main[(self.act.id, self.dtype)] += time.perf_counter() - start

    cells.ActivationRun.__init__ = timed_init  # type: ignore[method-assign]
    cells.ActivationRun.judge = timed_judge  # type: ignore[method-assign]


def render(rows: dict[tuple[str, str], tuple[float, ...]], wall: float) -> str:
    """The data module actexport/shard_costs.py."""
    total = sum(sum(row) for row in rows.values())
    lines = [f"{unit!r}: ({', '.join(f'{s:.2f}' for s in row)})," for unit, row in rows.items()]
    return (
        '"""Seconds of work per activation x dtype in `verify --all --dtypes all --no-cache`, the costs\n'
        "`--shard` balances (shards.py). Data, written by benchmarks/shard_costs.py: rerun it when the\n"
        "catalog, the formats or the exporters change much; only the proportions matter.\n\n"
        "main: the exact reference and judging, in the run's own process; eager: eager PyTorch's cells;\n"
        "<format>_export and <format>_cells: that format's export and its cells, in the workers. The first\n"
        "export of each worker also pays for starting the exporter (torch.onnx's dynamo: seconds), so the\n"
        'first activation in the catalog, sigmoid, looks dearer than it is.\n"""\n\n'
        f"# {len(rows)} units, {total:.0f} s of work in all, {wall:.0f} s wall (2 cores, 2 workers)\n"
        f"COLUMNS = {COLUMNS!r}\n\n"
        "SECONDS: dict[tuple[str, str], tuple[float, ...]] = {\n    " + "\n    ".join(lines) + "\n}\n")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="the cost module to write")
    p.add_argument("--json", type=Path, default=None, help="also keep the verify report here")
    args = p.parse_args()
    seconds: dict[tuple[str, str], float] = defaultdict(float)
    _timed(seconds)
    start = time.perf_counter()
    report = verify(None, Options(dtypes=DTYPES))
    wall = time.perf_counter() - start
    if args.json:
        report.write_json(args.json)
    table: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: dict.fromkeys(COLUMNS, 0.0))
    for key, s in seconds.items():
        table[key]["main"] += s
    for c in report.cells:
        table[(c.activation, c.dtype)]["eager" if c.format == "eager" else f"{c.format}_cells"] += c.seconds
    for e in report.exports:
        table[(e["activation"], e["dtype"])][f"{e['format']}_export"] += e["seconds"]
    rows = {unit: tuple(row[c] for c in COLUMNS) for unit, row in table.items()}
    args.out.write_text(render(rows, wall))
    total = sum(sum(row) for row in rows.values())
    print(f"{len(table)} units, {total:.0f} s of work, {wall:.0f} s wall; exit code {report.exit_code()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
