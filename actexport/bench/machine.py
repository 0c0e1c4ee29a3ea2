"""The machine a bench run measures on: versions, CPU and threads, DRAM copy bandwidth, and the CPU
time other processes took during the run (from /proc/stat)."""

from __future__ import annotations

import os
import platform
import time

import torch

from actexport import artifacts as art
from actexport.bench.timing import StoppingRule, copy_timings

DRAM_BYTES = 256 << 20  # large enough to defeat every cache level
# NOTE: a 256 MiB copy takes tens of ms: a handful of samples suffice and keep the run short.
DRAM_RULE = StoppingRule(warmup_calls=2, warmup_s=0.0, min_samples=5, min_s=0.0, min_step=3, max_s=1.0)


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


def cpu_seconds() -> tuple[float, float] | None:
    """(CPU seconds the whole machine spent busy, including steal; CPU seconds of this process), or None
    where /proc/stat does not exist."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    busy = sum(fields[0:3]) + sum(fields[5:8])  # user nice system, irq softirq steal (guest is in user)
    return busy / os.sysconf("SC_CLK_TCK"), time.process_time()


def other_share(before, after, wall: float) -> float | None:
    """The share of the machine's CPU time that other processes (or the hypervisor) used during the run."""
    # NOTE: contention distorts every figure: a torch thread pool waiting for a descheduled worker loses a
    # whole scheduler slice (measured on a 2-core VM: ReLU on 1e6 floats went from 0.2 ms to 8 ms), so it
    # is measured, recorded and warned about rather than guessed from the load average.
    if not before or not after or wall <= 0:
        return None
    other = (after[0] - before[0]) - (after[1] - before[1])
    return max(0.0, other) / (wall * (os.cpu_count() or 1))
