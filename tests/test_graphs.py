"""Graph quality: op types as exported and after onnxruntime's optimisation, and the optimisation's numerics."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from actexport import catalog, graphs
from actexport.artifacts import export_artifact


@pytest.fixture(scope="module")
def silu_onnx(tmp_path_factory) -> Path:
    result = export_artifact(catalog.get("silu"), "onnx", "float32", tmp_path_factory.mktemp("graphs"), 18, "dynamo")
    assert result.ok, result.error
    return result.path


def test_analyse_reports_exported_and_optimised_graphs(silu_onnx, tmp_path):
    saved = tmp_path / "silu.optimized.onnx"
    record = graphs.analyse(silu_onnx, save_optimized=saved)
    assert record["exported"] == {"nodes": 2, "op_types": {"Mul": 1, "Sigmoid": 1}}
    optimized = record["optimized"]
    assert optimized["level"] == "ORT_ENABLE_ALL" and optimized["path"] == str(saved)
    assert optimized["nodes"] >= 1 and sum(optimized["op_types"].values()) == optimized["nodes"]
    # onnxruntime may fuse into its own contrib ops (com.microsoft:QuickGelu): reported, domain-qualified.
    assert record["ort_specific"] == [t for t in optimized["op_types"] if ":" in t]
    assert graphs.summary(onnx.load(str(saved)))["nodes"] == optimized["nodes"]


def test_analyse_without_saving_leaves_no_file(silu_onnx):
    record = graphs.analyse(silu_onnx)
    assert record["optimized"]["path"] is None
    assert sorted(p.name for p in silu_onnx.parent.iterdir()) == [silu_onnx.name]


def test_describe_is_one_readable_line():
    record = {"exported": {"nodes": 2, "op_types": {"Mul": 1, "Sigmoid": 1}},
              "optimized": {"nodes": 1, "op_types": {"com.microsoft:QuickGelu": 1}}}
    assert graphs.describe(record) == "2 nodes (Mul, Sigmoid) -> 1 node (com.microsoft:QuickGelu)"
