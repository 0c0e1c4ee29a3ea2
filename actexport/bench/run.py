"""bench(): checks the options, exports every artifact up front, then times the floors and each
activation's rows."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from actexport import artifacts as art
from actexport.bench.activation import Progress, ActivationBench
from actexport.bench.machine import DRAM_BYTES, cpu_seconds, other_share, environment
from actexport.bench.report import BenchReport
from actexport.bench.timing import DEFAULT_RULE, StoppingRule, measure_floor
from actexport.catalog import DTYPES, Activation, UsageError, select
from actexport.exporters import ExportResult
from actexport.exporters.onnx import DEFAULT_EXPORTER, DEFAULT_OPSET, check_opset
from actexport.formats import FORMATS, takes_opset
from actexport.runtimes import DEVICES, for_format

DEFAULT_SIZES = (1_000, 100_000, 1_000_000, 10_000_000)
Export = Callable[[Activation, str, str, Path, int, str], ExportResult]


def bench(
    ids: list[str] | None = None,
    formats: tuple[str, ...] = FORMATS,
    providers: tuple[str, ...] = ("cpu",),
    sizes: tuple[int, ...] = DEFAULT_SIZES,
    dtype: str = "float32",
    threads: int | None = None,
    opset: int = DEFAULT_OPSET,
    exporter: str | tuple[str, ...] = DEFAULT_EXPORTER,
    progress: Progress | None = None,
    export: Export | None = None,
    rule: StoppingRule = DEFAULT_RULE,
    dram_bytes: int = DRAM_BYTES,
    cache=None,
    workers: int | None = None,
    save_optimized: Path | None = None,
    isolate: bool = True,
    timeout: float | None = None,
) -> BenchReport:
    """Measures every activation x artifact x runtime x size; one failing row never stops the others.

    Per activation and size the rows are eager PyTorch's module call (`eager:<device>`), the same
    kernel writing into a preallocated output (`eager.out:<device>`, where the module is one ATen op
    with an out= overload), and each artifact in each runtime through `Runtime.prepare` (onnxruntime
    with IO binding; CUDA synchronised). onnx.reference is not benchmarked (a Python evaluator).
    Every figure is reported beside its ratio to the floor and to eager PyTorch (see `Floor`).

    Args:
        ids: activation ids; the whole catalog when empty or None.
        formats, providers, dtype, opset, exporter: as for verify. Several ONNX exporters (a tuple, e.g.
            stock and actexport graphs) are timed back to back per activation; each ONNX row records its
            graph profile (`BenchRow.graphs`), and tables name the rows of every exporter but the first
            after it (`ort+candidates:cpu`).
        sizes: element counts (each rounded down to whole rows of the activation's layout).
        threads: intra-op threads for both torch (torch.set_num_threads, restored afterwards) and
            onnxruntime; None keeps each library's default.
        progress: called with a short label after each row.
        export: substitute for `artifacts.export_artifact` (same signature); by default every
            artifact is produced up front, through `cache` and `workers` (see pool.Exports), and
            the worker processes are gone before the first measurement.
        rule: the stopping rule of every measurement.
        dram_bytes: the buffer size of the DRAM copy-bandwidth figure in the environment.
        cache: an ExportCache to reuse verified artifacts from (None: export everything).
        workers: processes exporting in parallel (default: one per core).
        save_optimized: a directory to keep onnxruntime's optimised graph of each ONNX artifact in
            (`<id>.optimized.onnx`; a diagnostic, not a deployable artifact).
    """
    exporters = (exporter,) if isinstance(exporter, str) else tuple(exporter)
    for e in exporters:
        _validate(formats, providers, sizes, dtype, threads, opset, e)
    acts = select(ids)
    tick = progress or (lambda label: None)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="actexport-bench-") as tmp:
        if export is None:
            export = _exported_up_front(acts, formats, dtype, Path(tmp), opset, exporters, cache, workers, isolate,
                                        timeout)
        return _bench(acts, formats, providers, sizes, dtype, threads, opset, exporters, tick, export, rule,
                      dram_bytes, Path(tmp), start, save_optimized)


def _exported_up_front(acts, formats, dtype, tmp: Path, opset, exporters, cache, workers, isolate=True,
                       timeout=None) -> Export:
    """Produces every artifact before anything is timed, and returns an `export` that hands them out."""
    from actexport.isolate import DEFAULT_TIMEOUT
    from actexport.pool import Exports
    todo = art.jobs(acts, formats, (dtype,), tmp, (opset,), exporters[0])
    for i, exporter in enumerate(exporters[1:], 1):  # ONNX only: the other formats have no exporter choice
        todo += art.jobs(acts, tuple(f for f in formats if takes_opset(f)), (dtype,), tmp / f"e{i}", (opset,),
                         exporter)
    with Exports(todo, cache, workers, timeout=timeout or DEFAULT_TIMEOUT, isolate=isolate) as exports:
        done = {(j.act.id, j.format, j.exporter if takes_opset(j.format) else None): exports.result(j) for j in todo}
    # NOTE: leaving the with-block shut the worker processes down: none competes with the timing.
    return lambda act, fmt, dtype, tmp, opset, exporter: done[(act.id, fmt, exporter if takes_opset(fmt) else None)]


def _bench(acts, formats, providers, sizes, dtype, threads, opset, exporters, tick, export, rule, dram_bytes,
           tmp: Path, start: float, save_optimized: Path | None) -> BenchReport:
    busy = cpu_seconds()
    saved_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        report = BenchReport(environment=environment(formats, providers, sizes, dtype, threads, opset,
                                                     list(exporters) if len(exporters) > 1 else exporters[0],
                                                     rule, dram_bytes), rule=rule)
        for device in providers:
            for n in sizes:
                report.floors.append(measure_floor(device, n, dtype, rule))
                tick(f"floor {device} {n}")
        for act in acts:
            ActivationBench(act, report, formats, providers, sizes, dtype, threads, tick, save_optimized).run(
                lambda a, fmt, exporter: export(a, fmt, dtype, tmp, opset, exporter), exporters)
    finally:
        torch.set_num_threads(saved_threads)
    report.wall_seconds = time.perf_counter() - start
    report.environment["other_cpu_share"] = other_share(busy, cpu_seconds(), report.wall_seconds)
    return report


def plan_size(ids: list[str] | None, formats: tuple[str, ...], providers: tuple[str, ...],
              sizes: tuple[int, ...]) -> int:
    """Number of progress steps bench() reports (floors, then one per row)."""
    acts = len(select(ids))
    per_size = len(providers) * (1 + 2 * acts)  # a floor, eager and eager.out on each device
    per_size += acts * sum(len(for_format(f, providers, reference=False)) for f in formats)
    return len(sizes) * per_size


def _validate(formats, providers, sizes, dtype, threads, opset, exporter) -> None:
    for what, values, valid in (("format", formats, FORMATS), ("provider", providers, DEVICES)):
        if not values:
            raise UsageError(f"no {what} given; valid: {', '.join(valid)}")
        bad = [v for v in values if v not in valid]
        if bad:
            raise UsageError(f"unknown {what} {bad[0]!r}; valid: {', '.join(valid)}")
    if dtype not in DTYPES:
        raise UsageError(f"unknown dtype {dtype!r}; valid: {', '.join(DTYPES)}")
    if not sizes or any(not isinstance(n, int) or isinstance(n, bool) or n < 1 for n in sizes):
        raise UsageError(f"sizes must be positive integers, got {list(sizes)!r}")
    if threads is not None and threads < 1:
        raise UsageError(f"threads must be >= 1, got {threads}")
    if any(takes_opset(f) for f in formats):
        check_opset(opset, exporter)
