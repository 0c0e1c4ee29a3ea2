"""Latency of every activation x artifact x runtime x size, beside the memory-bandwidth floor and eager PyTorch."""

from __future__ import annotations

import gc
import json
import math
import os
import platform
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from actexport import artifacts as art
from actexport.catalog import DTYPES, Activation, UsageError, select
from actexport.formats import FORMATS, takes_opset
from actexport.exporters import ExportResult
from actexport.exporters.onnx import DEFAULT_EXPORTER, DEFAULT_OPSET, check_opset, split
from actexport.files import atomic_write, error_text, root_cause
from actexport.inputs import np_dtype, to_numpy, to_torch, torch_dtype
from actexport.runtimes import DEVICES, ProviderMissing, Runtime, RuntimeUnavailable, for_format

SCHEMA = 1
DEFAULT_SIZES = (1_000, 100_000, 1_000_000, 10_000_000)
DRAM_BYTES = 256 << 20  # large enough to defeat every cache level
POOR_FACTOR = 2.0  # an ONNX graph this many times slower than eager PyTorch is flagged
POOR_MIN_SIZE = 100_000  # below this, fixed per-call overhead decides the ratio, not the graph
OTHER_CPU_WARN = 0.1  # share of the machine's CPU time used by other processes that makes a run suspect
Progress = Callable[[str], None]
Export = Callable[[Activation, str, str, Path, int, str], ExportResult]


# -- timing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoppingRule:
    """When a measurement stops; `describe()` states it in words (and the JSON records it).

    Warm-up: at least `warmup_calls` calls and `warmup_s` seconds (at most `warmup_max_s`). Then
    each call is timed alone until there are `min_samples` samples and `min_s` seconds of them;
    from there the median of all samples is checked after every further quarter of samples (at
    least `min_step`), and the measurement has converged when it moved by less than `tolerance`
    since the previous check. It stops unconverged after `max_s` seconds of sampling (with at
    least `hard_min_samples` samples, so slow calls at large sizes take few iterations) or at
    `max_samples`.
    """

    warmup_calls: int = 5
    warmup_s: float = 0.02
    warmup_max_s: float = 0.5
    min_samples: int = 25
    min_s: float = 0.1
    min_step: int = 10
    tolerance: float = 0.02
    max_s: float = 1.5
    max_samples: int = 100_000
    hard_min_samples: int = 5

    def describe(self) -> str:
        return (
            f"warm-up of >= {self.warmup_calls} calls and >= {self.warmup_s * 1e3:g} ms (at most "
            f"{self.warmup_max_s:g} s); then every call timed alone (perf_counter_ns, gc disabled) until >= "
            f"{self.min_samples} samples and >= {self.min_s:g} s; then the median is re-checked after each "
            f"further 25% of samples (>= {self.min_step}) and the run has converged when it moved < "
            f"{self.tolerance:.0%} since the previous check; otherwise it stops unconverged after "
            f"{self.max_s:g} s of sampling (>= {self.hard_min_samples} samples) or {self.max_samples} samples"
        )


DEFAULT_RULE = StoppingRule()
# NOTE: a 256 MiB copy takes tens of ms: a handful of samples suffice and keep the run short.
DRAM_RULE = StoppingRule(warmup_calls=2, warmup_s=0.0, min_samples=5, min_s=0.0, min_step=3, max_s=1.0)


@dataclass(frozen=True)
class Timing:
    """Percentiles of per-call latency (seconds) and how the measurement ended."""

    median_s: float
    p90_s: float
    p99_s: float
    iterations: int
    converged: bool
    warmup: int


def measure(fn: Callable[[], object], rule: StoppingRule = DEFAULT_RULE,
            clock: Callable[[], int] = time.perf_counter_ns, sync: Callable[[], object] | None = None) -> Timing:
    """Times `fn` (one call per sample) under `rule`; `sync`, if given, is timed with each call.

    `clock` returns nanoseconds (injectable, for tests). The garbage collector is disabled while
    timing and restored afterwards.
    """
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = clock()
        warmup = 0
        while True:
            fn()
            if sync:
                sync()
            warmup += 1
            elapsed = (clock() - start) / 1e9
            if (warmup >= rule.warmup_calls and elapsed >= rule.warmup_s) or elapsed >= rule.warmup_max_s:
                break
        samples: list[int] = []
        begin = clock()
        checked: float | None = None  # the median at the previous check
        next_check = 0
        converged = False
        while True:
            t0 = clock()
            fn()
            if sync:
                sync()
            t1 = clock()
            samples.append(t1 - t0)
            n, elapsed = len(samples), (t1 - begin) / 1e9
            if n >= rule.min_samples and elapsed >= rule.min_s and n >= next_check:
                median = float(np.median(samples))
                if checked is not None and abs(median - checked) <= rule.tolerance * abs(checked):
                    converged = True
                    break
                checked, next_check = median, n + max(rule.min_step, n // 4)
            if (elapsed >= rule.max_s and n >= rule.hard_min_samples) or n >= rule.max_samples:
                break
    finally:
        if gc_was_enabled:
            gc.enable()
    p50, p90, p99 = np.percentile(np.asarray(samples, dtype=np.float64) / 1e9, [50, 90, 99])
    return Timing(float(p50), float(p90), float(p99), len(samples), converged, warmup)


def latency(rt: Runtime, x: np.ndarray, rule: StoppingRule = DEFAULT_RULE) -> Timing:
    """Latency of one loaded runtime on `x`, through its prepared (preallocated, synchronised) call."""
    return measure(rt.prepare(x), rule)


# -- the floor ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Floor:
    """Streaming bandwidth of one device at one size: the memory-bandwidth floor of elementwise work.

    An activation that reads R bytes and writes W bytes cannot beat (R + W) / bandwidth(n), where
    bandwidth(n) = 2 * n * itemsize / t(n) and t(n) is the fastest median, in the same run on the same
    machine, of passing n elements from a source into a preallocated destination of the same dtype:
    numpy.copyto, torch.Tensor.copy_, and torch.neg(out=) (a copy with a sign flip: the cheapest
    kernel through the same parallel elementwise machinery the activations use; on CUDA, the two torch
    ones, synchronised). At small sizes the call overhead of that pass is part of the floor, so it
    reads "the cheapest call that touches these bytes", not a pure bandwidth figure. A ratio below 1
    means an activation beat every such pass in this run (noise, or a cache effect): the floor is a
    measurement, not a theorem.
    """

    device: str
    size: int
    copy_bytes: int = 0  # bytes read + written by one copy
    median_s: float | None = None
    method: str = ""  # the fastest pass: numpy.copyto, torch.Tensor.copy_ or torch.neg(out=)
    bandwidth: float | None = None  # bytes per second
    reason: str = ""  # why there is no figure

    def seconds(self, nbytes: int) -> float | None:
        return nbytes / self.bandwidth if self.bandwidth else None


def copy_timings(n: int, dtype: str, device: str, rule: StoppingRule = DEFAULT_RULE) -> dict[str, Timing]:
    """Timings of passing n elements into a preallocated buffer (see `Floor`), by method."""
    out: dict[str, Timing] = {}
    tsrc = torch.ones(n, dtype=torch_dtype(dtype), device=device)
    tdst = torch.zeros_like(tsrc)
    if device == "cpu":
        src, dst = to_numpy(tsrc), to_numpy(tdst)  # views of the same memory: no extra buffers
        out["numpy.copyto"] = measure(lambda: np.copyto(dst, src), rule)
    sync = torch.cuda.synchronize if device == "cuda" else None
    out["torch.Tensor.copy_"] = measure(lambda: tdst.copy_(tsrc), rule, sync=sync)
    # NOTE: torch's copy_ does not always use every thread (at 1e7 floats on 2 cores it took 2.4 ms
    # where neg(out=) took 1.8 ms): without the elementwise pass the "floor" sat above real kernels.
    out["torch.neg(out=)"] = measure(lambda: torch.neg(tsrc, out=tdst), rule, sync=sync)
    return out


def measure_floor(device: str, size: int, dtype: str, rule: StoppingRule = DEFAULT_RULE) -> Floor:
    from actexport.runtimes.torch_common import device_unavailable
    reason = device_unavailable(device)
    if reason:
        return Floor(device, size, reason=reason)
    timings = copy_timings(size, dtype, device, rule)
    method, best = min(timings.items(), key=lambda kv: kv[1].median_s)
    nbytes = 2 * size * np_dtype(dtype).itemsize
    return Floor(device, size, nbytes, best.median_s, method, nbytes / best.median_s if best.median_s else None)


def io_bytes(x, y) -> tuple[int, int]:
    """Bytes read and written by one call: the real input and output tensors (numpy or torch).

    GLU writes half of what it reads; softmax reads its input once as far as DRAM is concerned.
    """
    # NOTE: parameters (PReLU's weights: a few bytes) are left out; they stay in cache.
    return int(x.nbytes), int(y.nbytes)


# -- inputs ------------------------------------------------------------------------------------


def bench_input(act: Activation, n: int, dtype: str) -> np.ndarray:
    """About n elements in the layout of the activation's example, seeded uniform over its domain.

    The first dim the activation leaves dynamic grows; every other dim keeps the example's size
    (so static dims such as PReLU's channels, and the reduced dim of a softmax, stay as exported),
    and n is rounded down to whole rows.
    """
    shape = list(act.shape)
    grow = next((i for i in range(len(shape)) if i not in act.static_dims), 0)
    rest = math.prod(d for i, d in enumerate(shape) if i != grow)
    shape[grow] = max(1, n // rest)
    rng = np.random.default_rng(zlib.crc32(f"{act.id}/bench/{n}".encode()))
    lo, hi = act.domain
    return rng.uniform(lo, hi, size=tuple(shape)).astype(np_dtype(dtype))


# -- rows and the report -----------------------------------------------------------------------


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

    @property
    def bytes(self) -> int:
        return self.bytes_read + self.bytes_written

    @property
    def device(self) -> str:
        return self.runtime.rsplit(":", 1)[-1]


@dataclass
class BenchReport:
    """Everything one bench() run measured, with its environment and stopping rule."""

    environment: dict
    rule: StoppingRule = DEFAULT_RULE
    floors: list[Floor] = field(default_factory=list)
    rows: list[BenchRow] = field(default_factory=list)
    graphs: dict[str, dict] = field(default_factory=dict)  # per activation: graphs.analyse() of its ONNX file
    wall_seconds: float = 0.0
    provider_problems: list[str] = field(default_factory=list)  # a provider that failed to load (exit 4 in the CLI)

    def floor(self, device: str, size: int) -> Floor | None:
        return next((f for f in self.floors if f.device == device and f.size == size), None)

    def runtimes(self) -> list[str]:
        return list(dict.fromkeys(r.runtime for r in self.rows))

    def sizes(self) -> list[int]:
        return sorted({r.size for r in self.rows})

    def geomeans(self) -> list[dict]:
        """Per runtime and size: geometric means of the ratios to eager and to the floor, over the
        activations measured (ok) in that runtime at that size."""
        out = []
        for size in self.sizes():
            for rt in self.runtimes():
                ok = [r for r in self.rows if r.size == size and r.runtime == rt and r.status == "ok"]
                out.append({"runtime": rt, "size": size, "activations": len(ok),
                            "ratio_eager": _geomean([r.ratio_eager for r in ok]),
                            "ratio_floor": _geomean([r.ratio_floor for r in ok])})
        return out

    def poor_graphs(self) -> list[dict]:
        """Activations whose ONNX graph on ort:cpu is more than POOR_FACTOR x slower than eager
        PyTorch at a measured size >= POOR_MIN_SIZE, with the graph as exported and as optimised."""
        from actexport.graphs import describe
        out: list[dict] = []
        for act in dict.fromkeys(r.activation for r in self.rows):
            slow = [r for r in self.rows if r.activation == act and r.format == "onnx" and r.runtime == "ort:cpu"
                    and r.status == "ok" and r.size >= POOR_MIN_SIZE and (r.ratio_eager or 0) > POOR_FACTOR]
            if slow:
                graph = self.graphs.get(act, {})
                out.append({"activation": act, "graph": describe(graph) if graph else "no graph record",
                            "ort_specific": graph.get("ort_specific", []),
                            "sizes": [{"size": r.size, "median_s": r.median_s, "ratio_eager": r.ratio_eager}
                                      for r in slow]})
        return out

    def to_dict(self) -> dict:
        return _clean({
            "schema": SCHEMA,
            "environment": self.environment,
            "stopping_rule": {"text": self.rule.describe(), **asdict(self.rule)},
            "floor": [{**asdict(f), "bandwidth_gbs": f.bandwidth / 1e9 if f.bandwidth else None} for f in self.floors],
            "rows": [{**asdict(r), "bytes": r.bytes} for r in self.rows],
            "graphs": self.graphs,
            "summary": {
                "rows": len(self.rows),
                "ok": sum(r.status == "ok" for r in self.rows),
                "converged": sum(bool(r.converged) for r in self.rows),
                "wall_seconds": round(self.wall_seconds, 3),
                "geomeans": self.geomeans(),
                "poor_graphs": self.poor_graphs(),
                "poor_graph_rule": f"onnx on ort:cpu median > {POOR_FACTOR:g} x eager:cpu at a size >= {POOR_MIN_SIZE}",
                "provider_problems": self.provider_problems,
            },
        })

    def write_json(self, path: Path) -> None:
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"
        atomic_write(Path(path), lambda tmp: tmp.write_text(text))

    def render(self, console) -> None:
        """Per size: a table activation x runtime of median µs with ×floor and ×eager; then the
        geometric means per runtime; then the poor graphs; then why rows have no figure."""
        from rich.markup import escape
        from rich.table import Table
        env = self.environment
        ort_threads = env.get("onnxruntime", {}).get("intra_op_num_threads", "-")
        console.print(
            f"actexport bench: {env.get('dtype')}, torch threads {env.get('torch_threads')}, onnxruntime "
            f"intra-op threads {ort_threads} (0 = default), DRAM copy {_num(env.get('dram_copy_gbs'))} GB/s",
            highlight=False, soft_wrap=True)
        other = env.get("other_cpu_share")
        if other is not None and other > OTHER_CPU_WARN:
            console.print(f"[yellow]warning[/]: other processes (or the hypervisor) used {other:.0%} of the CPU time "
                          "during the run: the figures are unreliable", highlight=False)
        runtimes = self.runtimes()
        devices = list(dict.fromkeys(f.device for f in self.floors if f.bandwidth))
        for size in self.sizes():
            rows = {(r.activation, r.runtime): r for r in self.rows if r.size == size}
            table = Table(title=f"median µs at {size:.0e} elements; xF: over the floor, xE: over eager (module "
                          "call) on the same device; ~: did not converge", title_justify="left")
            table.add_column("activation", no_wrap=True)
            for device in devices:
                table.add_column(f"floor\n{device} µs", justify="right")
            for rt in runtimes:
                table.add_column(rt.replace(":", "\n"), justify="right")
            for act in dict.fromkeys(r.activation for r in self.rows):
                floors = [next((r.floor_s for r in self.rows if r.activation == act and r.size == size
                                and r.device == device and r.floor_s), None) for device in devices]
                table.add_row(escape(act), *map(_us, floors), *[_cell(rows.get((act, rt))) for rt in runtimes])
            console.print(table)
        means = Table(title="geometric mean over activations: xE (over eager) / xF (over the floor)",
                      title_justify="left")
        means.add_column("runtime")
        for size in self.sizes():
            means.add_column(f"{size:.0e}", justify="right")
        by = {(g["runtime"], g["size"]): g for g in self.geomeans()}
        for rt in runtimes:
            means.add_row(rt, *[f"{_num(by[rt, s]['ratio_eager'])} / {_num(by[rt, s]['ratio_floor'])}"
                                if by.get((rt, s)) and by[rt, s]["activations"] else "-" for s in self.sizes()])
        console.print(means)
        poor = self.poor_graphs()
        if not any(s >= POOR_MIN_SIZE for s in self.sizes()):
            console.print(f"poor graphs: not judged (needs a size >= {POOR_MIN_SIZE:.0e})", highlight=False)
        elif not poor:
            console.print(f"poor graphs: none (no ONNX graph on ort:cpu > {POOR_FACTOR:g}x eager)", highlight=False)
        else:
            console.print(f"poor graphs (onnx on ort:cpu > {POOR_FACTOR:g}x eager:cpu at >= {POOR_MIN_SIZE:.0e}):")
            for p in poor:
                worst = max(p["sizes"], key=lambda s: s["ratio_eager"])
                console.print(f"  {p['activation']}: {_num(worst['ratio_eager'])}x eager at {worst['size']:.0e}; "
                              f"{p['graph']}", markup=False, highlight=False, soft_wrap=True)
        seen: set[tuple[str, str, str]] = set()
        for r in self.rows:
            if r.status != "ok" and (r.activation, r.runtime, r.reason) not in seen:
                seen.add((r.activation, r.runtime, r.reason))
                console.print(f"{r.activation} {r.runtime}: {r.status}: {r.reason}", markup=False,
                              highlight=False, soft_wrap=True)
        ok = [r for r in self.rows if r.status == "ok"]
        console.print(f"{len(self.rows)} rows, {len(ok)} measured, {sum(bool(r.converged) for r in ok)} converged, "
                      f"in {self.wall_seconds:.1f} s", highlight=False)

    def write_plot(self, path: Path) -> None:
        """PNG: latency against size, one panel per activation, one line per runtime, log-log, the
        floor dashed."""
        try:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
        except ImportError:
            raise UsageError("--plot needs matplotlib: pip install 'actexport[bench]'") from None
        # NOTE: Figure + the Agg canvas directly, not pyplot: no global backend state, no display needed.
        acts = list(dict.fromkeys(r.activation for r in self.rows))
        cols = min(6, max(1, len(acts)))
        nrows = max(1, -(-len(acts) // cols))
        fig = Figure(figsize=(3.2 * cols, 2.6 * nrows + 0.6), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(nrows, cols, squeeze=False)
        runtimes = self.runtimes()
        for ax, act in zip(axes.flat, acts):
            for i, rt in enumerate(runtimes):  # NOTE: a fixed colour per runtime across panels
                pts = sorted((r.elements, r.median_s * 1e6) for r in self.rows
                             if r.activation == act and r.runtime == rt and r.status == "ok")
                if pts:
                    ax.plot(*zip(*pts), marker="o", markersize=3, linewidth=1, label=rt, color=f"C{i % 10}")
            for device, color in zip(dict.fromkeys(f.device for f in self.floors), ("black", "grey")):
                floor = sorted({(r.elements, r.floor_s * 1e6) for r in self.rows
                                if r.activation == act and r.floor_s and r.device == device})
                if floor:
                    ax.plot(*zip(*floor), linestyle="--", color=color, linewidth=1, label=f"floor ({device})")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(act, fontsize=9)
            ax.tick_params(labelsize=7)
            ax.grid(True, which="major", alpha=0.3)
        for ax in list(axes.flat)[len(acts):]:
            ax.set_visible(False)
        handles: dict[str, object] = {}
        for ax in axes.flat:
            for h, label in zip(*ax.get_legend_handles_labels()):
                handles.setdefault(label, h)
        if handles:
            fig.legend(list(handles.values()), list(handles), loc="outside upper center", ncols=min(6, len(handles)),
                       fontsize=8)
        fig.supxlabel("elements", fontsize=9)
        fig.supylabel("median latency (µs)", fontsize=9)
        atomic_write(Path(path), lambda tmp: fig.savefig(tmp, format="png", dpi=100))


# -- the run -----------------------------------------------------------------------------------


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
            stock and actexport graphs) are timed back to back per activation; the rows of every one but
            the first are named after their graph profile (`ort+candidates:cpu`).
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
    busy = _cpu_seconds()
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
            _ActivationBench(act, report, formats, providers, sizes, dtype, threads, tick, save_optimized).run(
                lambda a, fmt, exporter: export(a, fmt, dtype, tmp, opset, exporter), exporters)
    finally:
        torch.set_num_threads(saved_threads)
    report.wall_seconds = time.perf_counter() - start
    report.environment["other_cpu_share"] = _other_share(busy, _cpu_seconds(), report.wall_seconds)
    return report


def _cpu_seconds() -> tuple[float, float] | None:
    """(CPU seconds the whole machine spent busy, including steal; CPU seconds of this process), or None
    where /proc/stat does not exist."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    busy = sum(fields[0:3]) + sum(fields[5:8])  # user nice system, irq softirq steal (guest is in user)
    return busy / os.sysconf("SC_CLK_TCK"), time.process_time()


def _other_share(before, after, wall: float) -> float | None:
    """The share of the machine's CPU time that other processes (or the hypervisor) used during the run."""
    # NOTE: contention distorts every figure: a torch thread pool waiting for a descheduled worker loses a
    # whole scheduler slice (measured on a 2-core VM: ReLU on 1e6 floats went from 0.2 ms to 8 ms), so it
    # is measured, recorded and warned about rather than guessed from the load average.
    if not before or not after or wall <= 0:
        return None
    other = (after[0] - before[0]) - (after[1] - before[1])
    return max(0.0, other) / (wall * (os.cpu_count() or 1))


def plan_size(ids: list[str] | None, formats: tuple[str, ...], providers: tuple[str, ...],
              sizes: tuple[int, ...]) -> int:
    """Number of progress steps bench() reports (floors, then one per row)."""
    acts = len(select(ids))
    per_size = len(providers) * (1 + 2 * acts)  # a floor, eager and eager.out on each device
    per_size += acts * sum(len(for_format(f, providers, reference=False)) for f in formats)
    return len(sizes) * per_size


def environment(formats, providers, sizes, dtype, threads, opset, exporter, rule, dram_bytes) -> dict:
    """Versions, CPU and thread settings, and the DRAM copy bandwidth, measured now."""
    env: dict = {
        "versions": art.versions(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "options": {"formats": list(formats), "providers": list(providers), "sizes": list(sizes),
                    "threads": threads, "opset": opset, "exporter": exporter},
        "dtype": dtype,
        "stopping_rule": rule.describe(),
    }
    try:
        from actexport.runtimes.onnxrt import session_options
        env["onnxruntime"] = session_options(threads)[1]
    except ImportError as e:
        env["onnxruntime"] = {"unavailable": str(e)}
    elements = max(1, dram_bytes // 4)
    timings = copy_timings(elements, "float32", "cpu", DRAM_RULE)
    method, best = min(timings.items(), key=lambda kv: kv[1].median_s)
    env["dram_copy"] = {"buffer_bytes": elements * 4, "method": method, "median_s": best.median_s,
                        "note": "GB/s = (bytes read + bytes written) / median copy time"}
    env["dram_copy_gbs"] = 2 * elements * 4 / best.median_s / 1e9 if best.median_s else None
    if "cuda" in providers and torch.cuda.is_available():
        env["cuda_device"] = torch.cuda.get_device_name()
        cuda = copy_timings(elements, "float32", "cuda", DRAM_RULE)["torch.Tensor.copy_"]
        env["cuda_copy_gbs"] = 2 * elements * 4 / cuda.median_s / 1e9 if cuda.median_s else None
    return env


class _ActivationBench:
    """The rows of one activation: eager and eager.out per device, then every artifact in every runtime."""

    def __init__(self, act: Activation, report: BenchReport, formats, providers, sizes, dtype, threads,
                 tick: Progress, save_optimized: Path | None = None) -> None:
        self.act, self.report, self.formats, self.providers = act, report, formats, providers
        self.save_optimized = save_optimized
        self.dtype, self.threads, self.tick = dtype, threads, tick
        self.inputs = {n: bench_input(act, n, dtype) for n in sizes}
        self.traffic = {n: self._traffic(x) for n, x in self.inputs.items()}
        self.rows: list[BenchRow] = []

    def run(self, export: Callable[[Activation, str, str], ExportResult], exporters: tuple[str, ...]) -> None:
        for device in self.providers:
            self._eager(device)
        for fmt in self.formats:
            for i, exporter in enumerate(exporters if takes_opset(fmt) else exporters[:1]):
                result = export(self.act, fmt, exporter)
                if fmt == "onnx" and result.ok and i == 0:
                    self.report.graphs[self.act.id] = self._graph(result)
                # NOTE: a runtime with a threads setting gets it here; torch's is set for the process
                for rt in for_format(fmt, self.providers, reference=False, threads=self.threads):
                    # NOTE: the rows of a second ONNX exporter are named after its graph profile
                    # (ort+candidates:cpu), and are timed right after the first's, on the same inputs.
                    name = rt.name.replace(":", f"+{split(exporter)[1]}:", 1) if i else rt.name
                    self._artifact(rt, result, name)
        self.report.rows.extend(self._with_ratios())

    def _traffic(self, x: np.ndarray) -> tuple[int, int] | None:
        """(bytes read, bytes written) of one call, from the real output of the module on CPU."""
        try:
            with torch.no_grad():
                y = self.act.module().to(torch_dtype(self.dtype))(to_torch(x))
            return io_bytes(x, y)
        except Exception:  # noqa: BLE001  (the eager rows say why the module does not run)
            return None

    def _graph(self, result: ExportResult) -> dict:
        from actexport.graphs import analyse
        try:
            keep = Path(self.save_optimized) / f"{self.act.id}.optimized.onnx" if self.save_optimized else None
            return {"opset": result.opset, **analyse(result.path, keep)}
        except Exception as e:  # noqa: BLE001
            return {"opset": result.opset, "error": root_cause(e)}

    def _row(self, fmt: str, runtime: str, n: int, status: str, reason: str = "", **kw) -> BenchRow:
        x = self.inputs[n]
        read, written = self.traffic[n] or (0, 0)
        return BenchRow(self.act.id, fmt, runtime, n, self.dtype, status, reason, int(x.size), tuple(x.shape),
                        bytes_read=read, bytes_written=written, **kw)

    def _measured(self, fmt: str, runtime: str, n: int, fn: Callable[[], object], **kw) -> BenchRow:
        t = measure(fn, self.report.rule)
        return self._row(fmt, runtime, n, "ok", median_s=t.median_s, p90_s=t.p90_s, p99_s=t.p99_s,
                         iterations=t.iterations, converged=t.converged, warmup=t.warmup, **kw)

    def _all_sizes(self, fmt: str, runtime: str, status: str, reason: str) -> None:
        for n in self.inputs:
            self.rows.append(self._row(fmt, runtime, n, status, reason))
            self.tick(f"{self.act.id} {runtime} {n}")

    def _eager(self, device: str) -> None:
        from actexport.runtimes.eager import EagerRuntime
        from actexport.runtimes.torch_common import device_unavailable
        name, out_name = f"eager:{device}", f"eager.out:{device}"
        reason = device_unavailable(device)
        if reason:
            self._all_sizes("eager", name, "unavailable", reason)
            self._all_sizes("eager", out_name, "unavailable", reason)
            return
        try:
            rt = EagerRuntime(self.act, self.dtype, device)
        except Exception as e:  # noqa: BLE001
            self._all_sizes("eager", name, "error", f"{error_text(e, 300)}")
            self._all_sizes("eager", out_name, "error", f"{error_text(e, 300)}")
            return
        self._settings(name, rt)
        try:
            for n, x in self.inputs.items():
                self._eager_size(rt, n, x, name, out_name)
        finally:
            rt.close()

    def _eager_size(self, rt: Runtime, n: int, x: np.ndarray, name: str, out_name: str) -> None:
        from actexport.runtimes.torch_common import out_variant
        device = rt.device
        try:
            self.rows.append(self._measured("eager", name, n, rt.prepare(x), ran_on=device))
        except Exception as e:  # noqa: BLE001
            self.rows.append(self._row("eager", name, n, "error", f"{error_text(e, 300)}"))
        self.tick(f"{self.act.id} {name} {n}")
        try:
            variant = out_variant(rt.module, to_torch(x).to(device))
            if variant.call is None:
                self.rows.append(self._row("eager", out_name, n, "unavailable", variant.reason, op=variant.op))
            else:
                self.rows.append(self._measured("eager", out_name, n, variant.call, ran_on=device, op=variant.op))
        except Exception as e:  # noqa: BLE001
            self.rows.append(self._row("eager", out_name, n, "error", f"{error_text(e, 300)}"))
        self.tick(f"{self.act.id} {out_name} {n}")

    def _artifact(self, rt: Runtime, result: ExportResult, name: str) -> None:
        fmt = result.format
        if result.unavailable or not result.ok:
            self._all_sizes(fmt, name, "unavailable", f"no artifact: {result.unavailable or result.error}")
            return
        reason = rt.unavailable()
        if reason:
            self._all_sizes(fmt, name, "unavailable", reason)
            return
        try:
            rt.load(result.path)
        except RuntimeUnavailable as e:
            self._all_sizes(fmt, name, "unavailable", str(e))
            if isinstance(e, ProviderMissing):  # it fell back to another device: no figure, and said so
                self.report.provider_problems.append(f"{name}: {e}")
            return
        except Exception as e:  # noqa: BLE001
            self._all_sizes(fmt, name, "error", f"load: {error_text(e, 300)}")
            rt.close()
            return
        self._settings(name, rt)
        try:
            for n, x in self.inputs.items():
                try:
                    self.rows.append(self._measured(fmt, name, n, rt.prepare(x), ran_on=rt.ran_on))
                except RuntimeUnavailable as e:
                    self.rows.append(self._row(fmt, name, n, "unavailable", str(e)))
                except Exception as e:  # noqa: BLE001
                    self.rows.append(self._row(fmt, name, n, "error", f"{error_text(e, 300)}"))
                self.tick(f"{self.act.id} {name} {n}")
        finally:
            # NOTE: closing drops the session and its (spinning) thread pool before the next runtime is timed.
            rt.close()

    def _settings(self, name: str, rt: Runtime) -> None:
        """What the runtime runs with (provider options, card), once per runtime in the environment."""
        if rt.settings:
            self.report.environment.setdefault("runtimes", {}).setdefault(name, rt.settings)

    def _with_ratios(self) -> list[BenchRow]:
        eager = {(r.device, r.size): r.median_s for r in self.rows if r.runtime.startswith("eager:") and r.median_s}
        out = []
        for r in self.rows:
            floor = self.report.floor(r.device, r.size)
            floor_s = floor.seconds(r.bytes) if floor and self.traffic[r.size] else None
            base = eager.get((r.device, r.size))
            out.append(replace(
                r, floor_s=floor_s,
                ratio_floor=r.median_s / floor_s if r.median_s and floor_s else None,
                ratio_eager=r.median_s / base if r.median_s and base else None))
        return out


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


def _geomean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v and v > 0]
    return math.exp(sum(math.log(v) for v in vals) / len(vals)) if vals else None


def _clean(o):
    """JSON has no NaN or infinity: such floats become None; tuples become lists."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {str(k): _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    if isinstance(o, Path):
        return str(o)
    return o


def _us(s: float | None) -> str:
    if s is None:
        return "-"
    us = s * 1e6
    return f"{us:.2f}" if us < 10 else f"{us:.1f}" if us < 100 else f"{us:,.0f}"


def _num(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.2f}" if v < 10 else f"{v:.1f}" if v < 100 else f"{v:,.0f}"


def _cell(r: BenchRow | None) -> str:
    if r is None:
        return ""
    if r.status != "ok":
        return "[dim]n/a[/]" if r.status == "unavailable" else "[bold red]error[/]"
    mark = "" if r.converged else "~"
    return f"{mark}{_us(r.median_s)}\n[dim]xF {_num(r.ratio_floor)} xE {_num(r.ratio_eager)}[/]"
