"""benchmarks/gpu_check.py, the GPU validation script: its summary reads the reports verify and bench write."""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

import numpy as np

from actexport.bench import StoppingRule, bench
from actexport.catalog import Budget
from actexport.compare import across_devices
from actexport.report import Cell, DeviceRecord, Report

_PATH = Path(__file__).parent.parent / "benchmarks" / "gpu_check.py"
_SPEC = importlib.util.spec_from_file_location("gpu_check", _PATH)
gpu_check = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(gpu_check)


def test_parity_table_counts_cells_per_dtype_and_runtime_and_names_disagreeing_pairs():
    x = np.array([np.nan, 1.0], np.float32)
    cpu = np.array([np.nan, 1.0], np.float32)
    pair = DeviceRecord("gelu", "float16", "onnx", 18, "ort", "cuda", "CUDAExecutionProvider", 1,
                        across_devices([x], [cpu], [np.array([0.0, 1.0], np.float32)], Budget(1, 0.0), "cuda"))
    same = replace(pair, activation="relu", agreement=across_devices([x], [cpu], [cpu], Budget(1, 0.0), "cuda"))
    cells = [Cell("gelu", "GELU()", "onnx", "ort:cuda", "float16", "fail", device="cuda"),
             Cell("gelu", "GELU()", "onnx", "ort:cpu", "float16", "pass"),
             Cell("relu", "ReLU()", "onnx", "ort:cpu", "float16", "pass")]
    lines = gpu_check.parity_lines(Report(cells=cells, devices=[pair, same]).to_dict())
    assert lines[0].split()[2:] == ["pass", "fail", "xfail", "xpass", "error", "skip", "unavailable"]
    assert lines[1].split() == ["float16", "ort:cuda", "0", "1", "0", "0", "0", "0", "0"]
    assert lines[2].split() == ["float16", "ort:cpu", "2", "0", "0", "0", "0", "0", "0"]
    assert lines[3] == ("float16: cuda against cpu (the same artifact on both devices): 2 runtime pairs, "
                        "1 bit-identical, 0 within budget of each other, 1 disagree")


def test_latency_lines_give_ratios_to_eager_and_to_the_floor():
    fast = StoppingRule(warmup_calls=1, warmup_s=0.0, min_samples=5, min_s=0.0, min_step=3, max_s=0.02)
    doc = bench(["relu", "tanh"], formats=("onnx",), sizes=(1000,), rule=fast, dram_bytes=1 << 20).to_dict()
    (line,) = gpu_check.latency_lines([doc], "cpu")
    assert line.startswith("float32 1e+03 on ") and "(2 activations)" in line
    assert "ort:cpu / eager:cpu: geomean" in line and "ort / copy floor: geomean" in line
    assert gpu_check.latency_lines([doc], "cuda") == []  # no CUDA rows ran here
