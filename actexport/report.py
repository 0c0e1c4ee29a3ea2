"""Report: the cells of one verify run -> terminal table, JSON, JUnit XML; the exit-code policy."""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from xml.etree import ElementTree as ET

from actexport.exporters import atomic_write

SCHEMA = 1
STATUSES = ("pass", "fail", "xfail", "xpass", "error", "skip", "unavailable")

# Exit codes, documented in the README.
OK, FAILED, USAGE, NO_ARTIFACT, NO_PROVIDER = 0, 1, 2, 3, 4


@dataclass
class Cell:
    """One cell of the matrix: activation x format x runtime x dtype."""

    activation: str
    module: str
    format: str
    runtime: str
    dtype: str
    status: str
    reason: str = ""
    exporter: str = ""
    stage: str = ""  # where an error or unavailability arose: export, load, run
    max_abs: float | None = None
    max_ulp: int | None = None
    ulp_budget: int | None = None
    atol: float | None = None
    worst_input: float | None = None
    worst_expected: float | None = None
    worst_actual: float | None = None
    worst_battery: str | None = None
    exact_max_ulp: int | None = None  # artifact vs the exact float64 reference
    eager_exact_max_ulp: int | None = None  # eager PyTorch vs the exact float64 reference
    deviates: str = ""  # when artifact and PyTorch disagree: artifact, pytorch, both or neither
    nan_mismatch: int | None = None
    inf_mismatch: int | None = None
    signed_zero_mismatch: int | None = None
    elements: int | None = None
    artifact: str | None = None
    seconds: float = 0.0
    log: str = ""

    @property
    def key(self) -> str:
        return f"{self.activation} / {self.format} / {self.runtime} / {self.dtype}"


@dataclass
class Report:
    cells: list[Cell] = field(default_factory=list)
    exports: list[dict] = field(default_factory=list)
    environment: dict = field(default_factory=dict)
    wall_seconds: float = 0.0

    def counts(self) -> dict[str, int]:
        c = Counter(cell.status for cell in self.cells)
        return {s: c.get(s, 0) for s in STATUSES}

    def exit_code(self) -> int:
        """3 when an expected artifact could not be produced, 1 on fail/error/xpass, else 0."""
        if any(c.status == "error" and c.stage == "export" for c in self.cells):
            return NO_ARTIFACT
        if any(c.status in ("fail", "error", "xpass") for c in self.cells):
            return FAILED
        return OK

    def to_dict(self) -> dict:
        return {
            "schema": SCHEMA,
            "environment": self.environment,
            "summary": {
                "counts": self.counts(),
                "cells": len(self.cells),
                "wall_seconds": round(self.wall_seconds, 3),
                "exit_code": self.exit_code(),
            },
            "exports": self.exports,
            "cells": [{k: _finite(v) for k, v in asdict(c).items()} for c in self.cells],
        }

    def write_json(self, path: Path) -> None:
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False, default=_json_default) + "\n"
        atomic_write(Path(path), lambda tmp: tmp.write_text(text))

    def write_junit(self, path: Path) -> None:
        counts = self.counts()
        suite = ET.Element(
            "testsuite",
            name="actexport.verify",
            tests=str(len(self.cells)),
            failures=str(counts["fail"] + counts["xpass"]),
            errors=str(counts["error"]),
            skipped=str(counts["skip"] + counts["unavailable"] + counts["xfail"]),
            time=f"{self.wall_seconds:.3f}",
        )
        for c in self.cells:
            case = ET.SubElement(
                suite, "testcase", classname=f"actexport.{c.activation}",
                name=f"{c.format}/{c.runtime}/{c.dtype}", time=f"{c.seconds:.3f}",
            )
            if c.status in ("fail", "xpass"):
                ET.SubElement(case, "failure", message=f"{c.status}: {c.reason}"[:1000]).text = c.reason
            elif c.status == "error":
                ET.SubElement(case, "error", message=c.reason[:1000]).text = c.log or c.reason
            elif c.status in ("skip", "unavailable", "xfail"):
                ET.SubElement(case, "skipped", message=f"{c.status}: {c.reason}"[:1000])
        tree = ET.ElementTree(ET.Element("testsuites"))
        tree.getroot().append(suite)
        ET.indent(tree)
        atomic_write(Path(path), lambda tmp: tree.write(tmp, encoding="utf-8", xml_declaration=True))

    def render(self, console) -> None:
        """A matrix (activation x runtime) of status marks, then one line per cell that did not pass."""
        from rich.markup import escape  # noqa: PLC0415
        from rich.table import Table  # noqa: PLC0415

        marks = {"pass": "[green]ok[/]", "fail": "[bold red]FAIL[/]", "xfail": "[yellow]xfail[/]",
                 "xpass": "[bold red]XPASS[/]", "error": "[bold red]ERROR[/]", "skip": "[dim]skip[/]",
                 "unavailable": "[dim]n/a[/]"}
        columns = list(dict.fromkeys((c.format, c.runtime, c.dtype) for c in self.cells))
        rows = list(dict.fromkeys(c.activation for c in self.cells))
        by_key = {(c.activation, c.format, c.runtime, c.dtype): c for c in self.cells}
        multi_dtype = len({c.dtype for c in self.cells}) > 1
        table = Table(title="actexport verify", show_lines=False)
        table.add_column("activation")
        for fmt, rt, dt in columns:
            table.add_column(f"{fmt}\n{rt}" + (f"\n{dt}" if multi_dtype else ""), justify="center")
        table.add_column("max ULP", justify="right")
        for act in rows:
            cells = [by_key.get((act, *col)) for col in columns]
            worst = max((c.max_ulp or 0 for c in cells if c), default=0)
            table.add_row(escape(act), *[marks[c.status] if c else "" for c in cells], str(worst))
        console.print(table)
        for c in self.cells:
            if c.status != "pass":
                console.print(f"[bold]{escape(c.key)}[/]: {c.status}: {escape(c.reason)}", highlight=False,
                              soft_wrap=True)
        counts = ", ".join(f"{n} {s}" for s, n in self.counts().items() if n)
        console.print(f"{len(self.cells)} cells: {counts} in {self.wall_seconds:.1f} s; exit code {self.exit_code()}",
                      soft_wrap=True)


def _finite(v):
    """JSON has no NaN or infinity: such values (worst inputs are often special) become strings."""
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


def _json_default(o):
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
