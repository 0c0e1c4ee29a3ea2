"""Exports in worker processes: the same bytes as in this process, each key once, results in order."""

from __future__ import annotations

import onnx
from torch import nn

from actexport import artifacts as art
from actexport import catalog
from actexport.pool import ExportJob, Exports


def _jobs(ids: list[str], out, fmt: str = "onnx") -> list[ExportJob]:
    return art.jobs(catalog.select(ids), (fmt,), ("float32",), out, (18,), "dynamo")


def test_workers_produce_the_bytes_this_process_produces(tmp_path, replace_row):
    # NOTE: the changed row exists in this process only: a worker, which rebuilds rows from the
    # catalog by id, would export plain ReLU; the key check sends it back here instead.
    replace_row("relu", factory=nn.Tanh)
    ids = ["sigmoid", "relu", "gelu", "softmax"]
    parallel, serial = _jobs(ids, tmp_path / "p"), _jobs(ids, tmp_path / "s")
    with Exports(parallel, None, workers=2) as exports:
        results = [exports.result(j) for j in parallel]
    with Exports(serial, None, isolate=False) as exports:  # in this process
        expected = [exports.result(j) for j in serial]
    assert [r.path for r in results] == [j.path for j in parallel]
    for got, want in zip(results, expected):
        assert got.ok and got.path.read_bytes() == want.path.read_bytes()
    relu = onnx.load(str(results[1].path))
    assert [n.op_type for n in relu.graph.node] == ["Tanh"]


def test_the_same_artifact_is_exported_once_per_run(tmp_path):
    act = catalog.get("relu")
    first = ExportJob(act, "onnx", "float32", 18, "dynamo", tmp_path / "a" / "model.onnx")
    second = ExportJob(act, "onnx", "float32", 18, "dynamo", tmp_path / "b" / "model.onnx")
    with Exports([first, second], None, workers=1) as exports:
        a, b = exports.result(first), exports.result(second)
    assert a.cache == "disabled" and b.cache.startswith("same artifact as relu")
    assert b.seconds == a.seconds  # not a second export: the first one's result, copied
    assert b.path == second.path and b.path.read_bytes() == a.path.read_bytes()
