"""Latency of every activation x artifact x runtime x size, beside the memory-bandwidth floor and eager PyTorch.

`bench()` (run.py) is the entry point; the other modules are its parts: `timing` (the stopping rule,
`measure()` and the floor), `inputs` (what a row feeds its activation), `machine` (the environment
record and other processes' CPU time), `activation` (the rows of one activation), `row` and `report`
(the data model and its JSON), `render` (terminal tables and the PNG plot).
"""

from __future__ import annotations

from actexport.bench.activation import Progress
from actexport.bench.inputs import bench_input, io_bytes
from actexport.bench.machine import DRAM_BYTES, DRAM_RULE, environment
from actexport.bench.render import OTHER_CPU_WARN
from actexport.bench.report import SCHEMA, BenchReport
from actexport.bench.row import POOR_FACTOR, POOR_MIN_SIZE, BenchRow
from actexport.bench.run import DEFAULT_SIZES, Export, bench, plan_size
from actexport.bench.timing import (
    DEFAULT_RULE,
    Floor,
    StoppingRule,
    Timing,
    copy_timings,
    latency,
    measure,
    measure_floor,
)

__all__ = [
    "DEFAULT_RULE", "DEFAULT_SIZES", "DRAM_BYTES", "DRAM_RULE", "OTHER_CPU_WARN", "POOR_FACTOR", "POOR_MIN_SIZE",
    "SCHEMA", "BenchReport", "BenchRow", "Export", "Floor", "Progress", "StoppingRule", "Timing", "bench",
    "bench_input", "copy_timings", "environment", "io_bytes", "latency", "measure", "measure_floor", "plan_size",
]
