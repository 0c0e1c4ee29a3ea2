"""One row of a bench run (activation x format x runtime x size), and the rule that flags a poor ONNX
graph."""

from __future__ import annotations

from dataclasses import dataclass

POOR_FACTOR = 2.0  # an ONNX graph this many times slower than eager PyTorch is flagged
POOR_MIN_SIZE = 100_000  # below this, fixed per-call overhead decides the ratio, not the graph


@dataclass(frozen=True)
class BenchRow:
    """One activation x format x runtime x size. Times in seconds; ratios to the floor and to eager
    PyTorch's module call on the same device at the same size."""

    activation: str
    format: str  # eager, onnx, torchscript, pt2
    runtime: str  # eager:cpu (module call), eager.out:cpu (preallocated output), ort:cpu, ...
    size: int  # the size asked for; `elements` is what the layout holds
    dtype: str
    status: str  # ok, unavailable, error
    reason: str = ""
    elements: int = 0
    shape: tuple[int, ...] = ()
    median_s: float | None = None
    p90_s: float | None = None
    p99_s: float | None = None
    iterations: int = 0
    converged: bool | None = None
    warmup: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    floor_s: float | None = None
    ratio_floor: float | None = None
    ratio_eager: float | None = None
    ran_on: str = ""
    op: str = ""  # eager.out rows: the ATen overload called with out=
    graphs: str = ""  # ONNX rows: the artifact's graph profile (translations.py)
    # NOTE: rows of a second ONNX exporter share their runtime with the first's: tables name them apart
    label: str = ""  # how tables name the row when its runtime does not (ort+candidates:cpu)

    @property
    def column(self) -> str:
        """The row's name in tables and summaries."""
        return self.label or self.runtime

    @property
    def bytes(self) -> int:
        return self.bytes_read + self.bytes_written

    @property
    def device(self) -> str:
        return self.runtime.rsplit(":", 1)[-1]
