"""Report: the cells of one verify run -> terminal table, JSON, JUnit XML; the exit-code policy."""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from xml.etree import ElementTree as ET

from actexport.files import atomic_write

SCHEMA = 1


class Status(str, Enum):
    """What a cell came to. A member is its value wherever a string is (JSON, JUnit, f-strings)."""

    PASS = "pass"
    FAIL = "fail"
    XFAIL = "xfail"
    XPASS = "xpass"
    ERROR = "error"
    SKIP = "skip"
    UNAVAILABLE = "unavailable"

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


STATUSES = tuple(s.value for s in Status)

# Exit codes, documented in the README.
OK, FAILED, USAGE, NO_ARTIFACT, NO_PROVIDER = 0, 1, 2, 3, 4


def _figure(cells: list[Cell]) -> str:
    """A row's figure on one device: the largest ULP error where the exact value is normal, then what
    ULPs cannot say: the largest value returned as 0, and NaN/inf mismatches ("-" where nothing ran)."""
    ulps = [c.normal_ulp if c.normal_ulp is not None else c.max_ulp for c in cells]
    ran = [c for c, u in zip(cells, ulps) if u is not None]
    if not ran:
        return "-"  # NOTE: a 0 would read as perfect parity
    parts = [str(max(u for u in ulps if u is not None))]
    lost = max((c.zero_for for c in ran if c.zero_for), default=None)
    if lost:
        parts.append(f"0 for {lost:.2g}")
    special = max((c.nan_mismatch or 0) + (c.inf_mismatch or 0) for c in ran)
    if special:
        parts.append(f"{special} NaN/inf")
    return ", ".join(parts)


@dataclass
class Cell:
    """One cell of the matrix: activation x format x runtime x dtype."""

    activation: str
    module: str
    format: str
    runtime: str
    dtype: str
    status: str  # a Status (its value, once read back from JSON)
    reason: str = ""
    exporter: str = ""
    stage: str = ""  # where an error or unavailability arose: export, load, run
    opset: int | None = None
    # Against the exact reference (the verdict):
    max_abs: float | None = None
    max_ulp: int | None = None
    over_abs: float | None = None  # the largest absolute error among the elements over budget
    ulp_budget: int | None = None
    atol: float | None = None
    worst_input: float | None = None
    worst_expected: float | None = None  # the exact value at the worst input
    worst_actual: float | None = None
    worst_torch: float | None = None  # eager PyTorch at the worst input
    worst_spec: float | None = None  # onnx.reference at the worst input (ONNX cells)
    worst_battery: str | None = None
    nan_mismatch: int | None = None
    inf_mismatch: int | None = None
    signed_zero_mismatch: int | None = None
    # The readable figures (compare.Comparison): ULP where the exact value is normal, and the values
    # returned as 0 apart ("0 for 2.1e-09 at x=-20")
    normal_ulp: int | None = None
    zero_loss: int | None = None
    zero_for: float | None = None
    zero_at: float | None = None
    elements: int | None = None
    special: list[str] = field(default_factory=list)  # special-value semantics that differ from exact
    # Against eager PyTorch (reported beside the verdict):
    torch_max_ulp: int | None = None
    torch_max_abs: float | None = None
    deviates: str = ""  # the side that deviates from exact: pytorch, export, runtime, both
    ran_on: str = ""  # what really ran: the onnxruntime provider from get_providers(), or the device
    device: str = "cpu"  # the device asked for (a runtime without devices runs on CPU)
    artifact: str | None = None
    seconds: float = 0.0
    log: str = ""

    @property
    def key(self) -> str:
        fmt = self.format if self.opset is None else f"{self.format}@{self.opset}"
        return f"{self.activation} / {fmt} / {self.runtime} / {self.dtype}"


@dataclass
class Report:
    cells: list[Cell] = field(default_factory=list)
    exports: list[dict] = field(default_factory=list)
    graphs: list[dict] = field(default_factory=list)
    devices: list[dict] = field(default_factory=list)  # a runtime on CUDA against itself on CPU (across_devices)
    environment: dict = field(default_factory=dict)
    wall_seconds: float = 0.0
    latency: list = field(default_factory=list)  # bench.BenchReport per dtype, with verify --latency
    problems: list[str] = field(default_factory=list)  # findings outside any cell (check: extra files)

    def counts(self) -> dict[str, int]:
        c = Counter(cell.status for cell in self.cells)
        return {s: c.get(s, 0) for s in STATUSES}

    def exit_code(self) -> int:
        """4 when a provider asked for by name did not run, 3 when an expected artifact could not be
        produced or is missing, 1 on fail/error/xpass, else 0."""
        if any(c.status == "error" and c.stage == "provider" for c in self.cells):
            return NO_PROVIDER
        if any(c.status == "error" and c.stage in ("export", "missing", "crash") for c in self.cells):
            return NO_ARTIFACT
        if any(c.status in ("fail", "error", "xpass") for c in self.cells) or self.problems:
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
            "graphs": self.graphs,
            "devices": [{k: _finite(v) for k, v in d.items()} for d in self.devices],
            "problems": self.problems,
            "cells": [{k: _finite(v) for k, v in asdict(c).items()} for c in self.cells],
            **({"latency": [b.to_dict() for b in self.latency]} if self.latency else {}),
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
        """One matrix per dtype (activation x format/runtime) of status marks, then one line per
        cell that did not pass, then the summary."""
        from rich.markup import escape
        from rich.table import Table
        for dtype in dict.fromkeys(c.dtype for c in self.cells):
            cells = [c for c in self.cells if c.dtype == dtype]
            columns = list(dict.fromkeys((c.format, c.opset, c.runtime) for c in cells))
            by_key = {(c.activation, c.format, c.opset, c.runtime): c for c in cells}
            table = Table(title=f"actexport verify: {dtype}, judged against the exact reference")
            table.add_column("activation")
            for fmt, opset, rt in columns:
                table.add_column(f"{fmt}{'' if opset is None else '@' + str(opset)}\n{rt}", justify="center")
            devices = list(dict.fromkeys(c.device for c in cells))
            for device in devices:  # one max ULP column per device, so CPU and CUDA read side by side
                table.add_column("max ULP" if len(devices) == 1 else f"max ULP\n{device}", justify="right")
            table.caption = ("ULP figures count where the exact value is a normal number; '0 for v': a value v "
                             "returned as 0; NaN/inf: elements where one side is NaN or inf and the other is not")
            for act in dict.fromkeys(c.activation for c in cells):
                row = [by_key.get((act, *col)) for col in columns]
                # NOTE: "-" where nothing ran on the device: a 0 would read as perfect parity.
                worst = [_figure([c for c in row if c and c.device == d]) for d in devices]
                table.add_row(escape(act), *[_MARKS[c.status] if c else "" for c in row], *worst)
            console.print(table)
        for c in self.cells:
            if c.status != "pass":
                console.print(f"[bold]{escape(c.key)}[/]: {c.status}: {escape(c.reason)}", highlight=False,
                              soft_wrap=True)
        for line in self.optimisation_lines() + self.device_lines():
            console.print(line, markup=False, highlight=False, soft_wrap=True)
        for bench in self.latency:
            bench.render(console)
        for problem in self.problems:
            console.print(f"problem: {problem}", markup=False, highlight=False, soft_wrap=True)
        console.print(self.summary_line(), soft_wrap=True, highlight=False)

    def optimisation_lines(self) -> list[str]:
        """onnxruntime's graph optimisation: how many graphs it rewrote, and each one where that
        changed a number (the unoptimised and optimised graphs judged against exact)."""
        judged = [g for g in self.graphs if "numbers" in g.get("optimisation", {})]
        if not judged:
            return []
        rewritten = [g for g in judged if g["optimisation"]["rewritten"]]
        changed = [g for g in judged if g["optimisation"]["numbers"]]
        lines = [f"onnxruntime graph optimisation (ort:cpu, ORT_ENABLE_ALL): rewrote {len(rewritten)} of {len(judged)} "
                 f"ONNX graphs; changed the numbers of {len(changed)}"]
        for g in changed:
            o = g["optimisation"]
            lines.append(f"  {g['activation']} {g['dtype']} opset {g['opset']}: {o['numbers']} elements differ, up to "
                         f"{o['max_ulp_between']} ULP; vs exact {o['unoptimised_max_ulp_vs_exact']} ULP unoptimised, "
                         f"{o['optimised_max_ulp_vs_exact']} optimised ({o['graph']})")
        return lines

    def device_lines(self, every: bool = False) -> list[str]:
        """Each runtime on another device against itself on CPU (same artifact, same inputs): a count,
        then one line per pair that disagrees (beyond the budget, or on a special value); `every`:
        also the pairs that differ within budget."""
        if not self.devices:
            return []
        lines = []
        for device in dict.fromkeys(d["device"] for d in self.devices):
            pairs = [d for d in self.devices if d["device"] == device]
            same = sum(1 for d in pairs if not d["differ"])
            apart = [d for d in pairs if not d["agree"]]
            lines.append(f"{device} against cpu (the same artifact on both devices): {len(pairs)} runtime pairs, "
                         f"{same} bit-identical, {len(pairs) - same - len(apart)} within budget of each other, "
                         f"{len(apart)} disagree")
            for d in pairs:
                if d["agree"] and not (every and d["differ"]):
                    continue
                fmt = d["format"] if d["opset"] is None else f"{d['format']}@{d['opset']}"
                parts = [f"{d['differ']} of {d['elements']} elements differ, up to {d['max_ulp']} ULP "
                         f"(budget {d['budget_ulp']})"]
                parts += [f"{d[k]} {what}" for k, what in (("nan_mismatch", "NaN mismatch(es)"),
                                                           ("inf_mismatch", "inf mismatch(es)")) if d[k]]
                parts += d["special"]
                if "+" in d.get("ran_on", ""):  # some nodes of the device's session ran on CPU
                    parts.append(f"ran on {d['ran_on']}")
                lines.append(f"  {d['activation']} {d['dtype']} {fmt} {d['runtime']}: " + "; ".join(parts))
        return lines

    def summary_line(self) -> str:
        counts = ", ".join(f"{n} {s}" for s, n in self.counts().items() if n)
        problems = f", {len(self.problems)} problem(s) outside the cells" if self.problems else ""
        return f"{len(self.cells)} cells: {counts}{problems} in {self.wall_seconds:.1f} s; exit code {self.exit_code()}"

    def deviations(self) -> list[str]:
        """One line per deviation from the exact reference, grouped by activation."""
        lines: list[str] = []
        for act in dict.fromkeys(c.activation for c in self.cells):
            cells = [c for c in self.cells if c.activation == act]
            found = [c for c in cells if c.status in ("fail", "xfail", "xpass", "error") or c.deviates]
            specials = {(c.dtype, c.runtime, s) for c in cells for s in c.special}
            if not found and not specials:
                continue
            lines.append(f"{act}: {cells[0].module}")
            for c in found:
                fmt = c.format if c.opset is None else f"{c.format}@{c.opset}"
                where = f"{c.dtype} {fmt} {c.runtime}: {c.status}"
                if c.worst_input is None and c.max_ulp is None:
                    lines.append(f"  {where}: {c.reason}")
                    continue
                values = [f"exact {_num(c.worst_expected)}"]
                values += ([f"pytorch {_num(c.worst_actual)}"] if c.format == "eager" else
                           [f"pytorch {_num(c.worst_torch)}", f"artifact {_num(c.worst_actual)}"])
                if c.worst_spec is not None:
                    values.append(f"onnx.reference {_num(c.worst_spec)}")
                x = "x=" + _num(c.worst_input) if c.worst_input is not None else "element"
                lines.append(f"  {where}, side {c.deviates or 'none'}: {x}: {', '.join(values)} "
                             f"({c.max_ulp} ULP, budget {c.ulp_budget})")
            for dtype, runtime, text in sorted(specials):
                lines.append(f"  special values, {dtype} {runtime}: {text}")
        return lines

    def explain(self, console) -> None:
        console.print("Deviations from the exact reference (grouped by activation):", highlight=False)
        for line in self.deviations() or ["  none"]:
            console.print(line, markup=False, highlight=False, soft_wrap=True)
        for line in self.device_lines(every=True):
            console.print(line, markup=False, highlight=False, soft_wrap=True)
        rewritten = [g for g in self.graphs if g.get("optimisation", {}).get("rewritten")]
        if rewritten:
            console.print("ONNX graphs that onnxruntime rewrites (as exported -> as optimised):", highlight=False)
            for g in rewritten:
                o = g["optimisation"]
                effect = f"{o['numbers']} elements change" if o["numbers"] else "bit-identical outputs"
                console.print(f"  {g['activation']} {g['dtype']} opset {g['opset']}: {o['graph']}; {effect}",
                              markup=False, highlight=False, soft_wrap=True)
        multi = [g for g in self.graphs if "ort_cpu_max_ulp_vs_opset" in g]
        if multi:
            console.print("ONNX graphs by opset (op types, nodes; ort:cpu numerics against the first opset):")
            for act in dict.fromkeys(g["activation"] for g in self.graphs):
                for dtype in dict.fromkeys(g["dtype"] for g in self.graphs if g["activation"] == act):
                    gs = [g for g in self.graphs if g["activation"] == act and g["dtype"] == dtype]
                    parts = []
                    for g in gs:
                        diff = g.get("ort_cpu_max_ulp_vs_opset")
                        change = "" if diff is None else (
                            " identical" if not any(diff.values()) else f" differs by {max(diff.values())} ULP")
                        parts.append(f"opset {g['opset']}: {'+'.join(g['op_types'] or [])} ({g['nodes']} nodes){change}")
                    console.print(f"  {act} {dtype}: " + "; ".join(parts), markup=False, highlight=False,
                                  soft_wrap=True)


_MARKS = {"pass": "[green]ok[/]", "fail": "[bold red]FAIL[/]", "xfail": "[yellow]xfail[/]",
          "xpass": "[bold red]XPASS[/]", "error": "[bold red]ERROR[/]", "skip": "[dim]skip[/]",
          "unavailable": "[dim]n/a[/]"}


def _num(v: float | None) -> str:
    if v is None:
        return "-"
    if v == 0:
        return "-0" if math.copysign(1.0, v) < 0 else "0"
    return repr(v) if math.isfinite(v) else str(v)


def _finite(v):
    """JSON has no NaN or infinity: such values (worst inputs are often special) become strings."""
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


def _json_default(o):
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
