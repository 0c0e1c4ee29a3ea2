"""The timing engine: the stopping rule, per-call samples and their percentiles; and the floor, the
cheapest pass over the bytes an activation reads and writes."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from actexport.inputs import np_dtype, to_numpy, torch_dtype
from actexport.runtimes import Runtime


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
