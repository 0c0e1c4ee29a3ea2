"""`actexport merge`: the JSON reports of `verify --shard K/N` pieces made into the report of one run.

A merged report must say what the single run would have said, so the pieces must be of one run:
the same versions and options, the same selection cut the same N ways, each shard exactly once,
and together every unit of the selection. Anything else is refused (one line, exit 2) rather than
merged into a report that passes over cells nobody ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from actexport.catalog import UsageError
from actexport.report import Report
from actexport.report.reader import ReportFileError, read


@dataclass(frozen=True)
class Piece:
    """One shard's report, and what its environment says of the shard."""

    path: Path
    report: Report
    index: int
    count: int
    selection: tuple[str, ...]
    units: tuple[tuple[str, str], ...]


def merge(paths: list[Path]) -> Report:
    """The pieces' cells and records in the single run's order; UsageError when they are not one run."""
    if not paths:
        raise UsageError("merge needs the JSON reports of the shards: actexport merge REPORT...")
    pieces = [_piece(Path(p)) for p in paths]
    _same_run(pieces)
    first = pieces[0]
    by_index: dict[int, Piece] = {}
    for p in pieces:
        if p.index in by_index:
            raise UsageError(f"{p.path} and {by_index[p.index].path} are both shard {p.index}/{p.count}")
        by_index[p.index] = p
    missing = [str(k) for k in range(1, first.count + 1) if k not in by_index]
    if missing:
        raise UsageError(f"shard(s) {', '.join(missing)} of {first.count} missing: merge needs every shard's report")
    dtypes = first.report.environment["options"]["dtypes"]
    expected = [(i, d) for i in first.selection for d in dtypes]
    covered = [u for p in pieces for u in p.units]
    if sorted(covered) != sorted(expected):
        raise UsageError(f"the shards' units do not make the selection's {len(expected)} activation x dtype units "
                         f"once each ({len(covered)} given): pieces of different runs or versions of actexport")
    # NOTE: the single run orders everything activation-major, then dtype; within a unit the
    # piece kept the single run's order, and sorted() is stable.
    place = {u: n for n, u in enumerate(expected)}

    def unit_order(items: list, key=lambda x: (x.activation, x.dtype)) -> list:
        return sorted(items, key=lambda x: place.get(key(x), len(place)))

    ordered = sorted(pieces, key=lambda p: p.index)
    env = {k: v for k, v in first.report.environment.items() if k not in ("shard", "runtimes", "warnings")}
    runtimes: dict = {}
    for p in ordered:
        for name, settings in p.report.environment.get("runtimes", {}).items():
            runtimes.setdefault(name, settings)
    warnings = list(dict.fromkeys(w for p in ordered for w in p.report.environment.get("warnings", [])))
    env.update({**({"runtimes": runtimes} if runtimes else {}), **({"warnings": warnings} if warnings else {}),
                "merged": [{"shard": f"{p.index}/{p.count}", "wall_seconds": round(p.report.wall_seconds, 3),
                            "cells": len(p.report.cells)} for p in ordered]})
    return Report(
        cells=unit_order([c for p in ordered for c in p.report.cells]),
        exports=unit_order([e for p in ordered for e in p.report.exports], key=lambda e: (e["activation"], e["dtype"])),
        graphs=unit_order([g for p in ordered for g in p.report.graphs]),
        devices=unit_order([d for p in ordered for d in p.report.devices]),
        environment=env,
        # the shards ran side by side: the run took as long as its slowest one
        wall_seconds=max(p.report.wall_seconds for p in pieces),
        problems=[x for p in ordered for x in p.report.problems],
    )


def _piece(path: Path) -> Piece:
    try:
        report = read(path)
    except ReportFileError as e:
        raise UsageError(str(e)) from None
    shard = report.environment.get("shard")
    if shard is None:
        raise UsageError(f"{path}: not a shard's report (verify --shard K/N writes one)")
    try:
        index, count = shard["index"], shard["count"]
        selection = tuple(shard["selection"])
        units = tuple((u[0], u[1]) for u in shard["units"])
        if not (isinstance(index, int) and isinstance(count, int) and 1 <= index <= count) or not all(
                isinstance(x, str) for u in units for x in (*u, *selection)):
            raise ValueError
    except (KeyError, TypeError, IndexError, ValueError):
        raise UsageError(f"{path}: its shard record is not one verify --shard writes") from None
    return Piece(path, report, index, count, selection, units)


def _same_run(pieces: list[Piece]) -> None:
    first = pieces[0]
    for p in pieces[1:]:
        for what, mine, theirs in (
                ("versions", first.report.environment["versions"], p.report.environment["versions"]),
                ("options", first.report.environment["options"], p.report.environment["options"])):
            if mine != theirs:
                key = next(k for k in sorted(set(mine) | set(theirs)) if mine.get(k) != theirs.get(k))
                raise UsageError(f"{p.path} and {first.path} differ in {what}: {key} {theirs.get(key)!r} against "
                                 f"{mine.get(key)!r}; merge only the shards of one run")
        if p.count != first.count:
            raise UsageError(f"{p.path} is a shard of {p.count} and {first.path} of {first.count}: "
                             "merge only the shards of one run")
        if p.selection != first.selection:
            raise UsageError(f"{p.path} and {first.path} cover different activations: merge only the shards of one run")
