"""`--shard K/N`: one of N machines' share of a run, balanced by measured cost, not by count.

The unit of splitting is what a run schedules as one piece: an activation in one dtype for verify
and export (one ActivationRun, one artifact per format), an activation for bench (one dtype a run).
A float64 unit whose exact reference needs mpmath costs tens of times a relu one, so shards of
equal counts would finish far apart; the costs are measured (shard_costs.py, written by
benchmarks/shard_costs.py) and the units dealt out longest first, each to the lightest shard.
Every machine computes the same split from the same table: nothing is exchanged between them.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from actexport.catalog import UsageError
from actexport.shard_costs import COLUMNS, SECONDS

U = TypeVar("U")
Unit = tuple[str, str]  # (activation id, dtype)

# NOTE: integer milliseconds, so every machine sums the same numbers to the same loads (no float
# rounding order to differ) and no unit weighs nothing (an empty shard would take the next unit too).
_MS = {unit: [max(1, round(s * 1000)) for s in row] for unit, row in SECONDS.items()}
_COL = {name: i for i, name in enumerate(COLUMNS)}
# A unit the table does not know (a plugin's activation, a new row): the typical unit of its dtype.
_TYPICAL = {dtype: round(statistics.median(sum(row) for (_, d), row in _MS.items() if d == dtype))
            for dtype in {d for _, d in _MS}}
# bench times every row with the same stopping rule (at most ~2 s a measurement): its timing is the
# same for every activation, so only the exports up front differ; this stands for the timing.
BENCH_TIMING_MS = 20_000


@dataclass(frozen=True)
class Shard:
    """The K-th of N shares (1 <= K <= N)."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        m = re.fullmatch(r"\s*(\d{1,6})\s*/\s*(\d{1,6})\s*", text)
        if not m or not 1 <= int(m[1]) <= int(m[2]):
            raise UsageError(f"invalid --shard {text!r}: give K/N with 1 <= K <= N, e.g. --shard 1/4")
        return cls(int(m[1]), int(m[2]))

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def verify_cost(unit: Unit, formats: Sequence[str]) -> int:
    """Milliseconds of work of one activation x dtype in verify: the exact reference and judging in
    the main process, eager, and each format's export and cells."""
    row = _MS.get(unit)
    if row is None:
        return _TYPICAL.get(unit[1], 1000)
    parts = ["main", "eager", *(f"{f}_{p}" for f in formats for p in ("export", "cells"))]
    return sum(row[_COL[p]] for p in parts if p in _COL)


def export_cost(unit: Unit, formats: Sequence[str]) -> int:
    """Milliseconds of exporting one activation x dtype to `formats`."""
    row = _MS.get(unit)
    if row is None:
        return _TYPICAL.get(unit[1], 1000) // 2
    return sum(row[_COL[f"{f}_export"]] for f in formats if f"{f}_export" in _COL)


def bench_cost(id: str, formats: Sequence[str], dtype: str) -> int:
    return BENCH_TIMING_MS + export_cost((id, dtype), formats)


def assign(units: Sequence[U], count: int, cost: Callable[[U], int]) -> list[list[U]]:
    """The units dealt into `count` shards: longest first (ties: the earlier unit), each to the shard
    with the least cost so far (ties: the lower index); each shard keeps the units' own order."""
    order = sorted(range(len(units)), key=lambda i: (-cost(units[i]), i))
    loads = [0] * count
    members: list[list[int]] = [[] for _ in range(count)]
    for i in order:
        k = min(range(count), key=lambda s: (loads[s], s))
        loads[k] += cost(units[i])
        members[k].append(i)
    return [[units[i] for i in sorted(m)] for m in members]


def pick(units: Sequence[U], shard: Shard, cost: Callable[[U], int], what: str) -> list[U]:
    """This shard's units, in their order; a usage error when there are fewer units than shards
    (a shard with nothing to do would pass vacuously, and bench would read "no ids" as all)."""
    if shard.count > len(units):
        raise UsageError(f"--shard {shard}: {len(units)} {what} cannot make {shard.count} shards; give N <= {len(units)}")
    return assign(units, shard.count, cost)[shard.index - 1]


def record(shard: Shard, units: Sequence, selection: Sequence[str], cost: int) -> dict:
    """What a shard's report says of it, so that `merge` can check the pieces make one whole run."""
    return {"index": shard.index, "count": shard.count, "selection": list(selection),
            "units": [list(u) if isinstance(u, tuple) else u for u in units], "cost_ms": cost}
