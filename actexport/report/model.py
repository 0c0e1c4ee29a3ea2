"""A verify run's results: the Status of a cell, the Cell itself, the records beside the cells (an
ONNX graph, a runtime on two devices), and the Report that holds them with its counts and exit-code
policy. Output is elsewhere in the package (terminal, jsonfile, junit, html); the Report's methods of that
kind hand over to them."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from actexport.compare import Agreement
from actexport.graphs import Optimisation
from actexport.report import html, jsonfile, junit, terminal
from actexport.status import ARTIFACT_MISSING, STATUSES, Stage, Status

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
    status: Status
    reason: str = ""
    exporter: str = ""
    stage: Stage = Stage.NONE  # where an error or unavailability arose
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
    # A model's cells (model/): each output judged at its own scale, and where a deviation starts
    outputs: list[dict] = field(default_factory=list)
    origin: dict | None = None
    seconds: float = 0.0
    log: str = ""

    @property
    def key(self) -> str:
        fmt = self.format if self.opset is None else f"{self.format}@{self.opset}"
        return f"{self.activation} / {fmt} / {self.runtime} / {self.dtype}"


@dataclass(frozen=True)
class GraphRecord:
    """One ONNX graph of an activation in one dtype and opset: its nodes, and what onnxruntime's
    optimisation did to it."""

    activation: str
    dtype: str
    opset: int | None
    op_types: list[str] | None  # None: the export recorded none (it failed)
    nodes: int | None
    ort_cpu_max_ulp_vs_opset: dict[str, int] | None = None  # {first opset: ULP}, when several opsets ran
    optimisation: Optimisation | None = None
    optimisation_error: str | None = None  # why the optimisation could not be analysed

    def to_dict(self) -> dict:
        out: dict = {"activation": self.activation, "dtype": self.dtype, "opset": self.opset,
                     "op_types": self.op_types, "nodes": self.nodes}
        if self.ort_cpu_max_ulp_vs_opset is not None:
            out["ort_cpu_max_ulp_vs_opset"] = self.ort_cpu_max_ulp_vs_opset
        if self.optimisation is not None:
            out.update(self.optimisation.to_dict())
        elif self.optimisation_error is not None:
            out["optimisation"] = {"error": self.optimisation_error}
        return out


@dataclass(frozen=True)
class DeviceRecord:
    """A runtime on another device against itself on CPU: the same artifact, the same inputs."""

    activation: str
    dtype: str
    format: str
    opset: int | None
    runtime: str  # the family: "ort", "eager"
    device: str
    ran_on: str
    budget_ulp: int
    agreement: Agreement

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "agreement"}
        return {**out, **asdict(self.agreement)}

    @classmethod
    def from_dict(cls, d: dict) -> DeviceRecord:
        """A record as to_dict() wrote it (a JSON report read back)."""
        agreement = Agreement(**{f.name: d[f.name] for f in fields(Agreement)})
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name != "agreement"}, agreement=agreement)


@dataclass
class Report:
    """The cells of one verify run and what else it recorded; the counts and the exit code they come to."""

    cells: list[Cell] = field(default_factory=list)
    exports: list[dict] = field(default_factory=list)
    graphs: list[GraphRecord] = field(default_factory=list)
    devices: list[DeviceRecord] = field(default_factory=list)
    environment: dict = field(default_factory=dict)
    wall_seconds: float = 0.0
    latency: list = field(default_factory=list)  # bench.BenchReport per dtype, with verify --latency
    problems: list[str] = field(default_factory=list)  # findings outside any cell (check: extra files)

    def counts(self) -> dict[str, int]:
        c = Counter(str(cell.status) for cell in self.cells)
        return {s: c.get(s, 0) for s in STATUSES}

    def exit_code(self) -> int:
        """4 when a provider asked for by name did not run, 3 when an expected artifact could not be
        produced or is missing, 1 on fail/error/xpass, else 0."""
        if any(c.status == Status.ERROR and c.stage == Stage.PROVIDER for c in self.cells):
            return NO_PROVIDER
        if any(c.status == Status.ERROR and c.stage in ARTIFACT_MISSING for c in self.cells):
            return NO_ARTIFACT
        if any(c.status in ("fail", "error", "xpass") for c in self.cells) or self.problems:
            return FAILED
        return OK

    def to_dict(self) -> dict:
        return jsonfile.document(self)

    def write_json(self, path: Path) -> None:
        jsonfile.write(self, path)

    def write_junit(self, path: Path) -> None:
        junit.write(self, path)

    def write_html(self, path: Path) -> None:
        """One self-contained page (needs jinja2 and matplotlib: the `html` extra)."""
        html.write(self, path)

    def render(self, console, full: bool = False) -> None:
        terminal.render(self, console, full)

    def explain(self, console) -> None:
        terminal.explain(self, console)

    def summary_line(self) -> str:
        return terminal.summary_line(self)

    def optimisation_lines(self) -> list[str]:
        return terminal.optimisation_lines(self)

    def device_lines(self, every: bool = False) -> list[str]:
        return terminal.device_lines(self, every)
