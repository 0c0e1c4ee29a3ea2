"""Bench: the stopping rule, floor arithmetic, eager out= variants, IO binding, and one small end-to-end run."""

from __future__ import annotations

import gc
import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from actexport import catalog
from actexport.artifacts import export_artifact
from actexport.bench import (
    BenchReport,
    BenchRow,
    Floor,
    StoppingRule,
    bench,
    bench_input,
    io_bytes,
    measure,
    plan_size,
)
from actexport.catalog import UsageError
from actexport.runtimes.eager import EagerRuntime
from actexport.runtimes.onnxrt import OrtRuntime
from actexport.runtimes.torch_common import out_variant, same_bits

HAS_CUDA = torch.cuda.is_available()

# A rule that keeps the end-to-end test to a fraction of a second per row.
FAST = StoppingRule(warmup_calls=1, warmup_s=0.0, min_samples=5, min_s=0.0, min_step=3, max_s=0.02)


class FakeClock:
    """A nanosecond clock that only moves when the timed function says how long it took."""

    def __init__(self, durations) -> None:
        self.now, self.durations, self.calls = 0, durations, 0

    def __call__(self) -> int:
        return self.now

    def work(self) -> None:
        self.now += self.durations(self.calls)
        self.calls += 1


def test_measure_orders_percentiles_and_converges_on_a_steady_function():
    clock = FakeClock(lambda k: (1000, 1100, 1200, 5000)[k % 4] * 1000)  # 1-5 ms, repeating
    t = measure(clock.work, clock=clock)
    assert t.median_s <= t.p90_s <= t.p99_s
    assert t.converged
    assert t.iterations >= StoppingRule().min_samples and t.warmup >= StoppingRule().warmup_calls
    assert 1.1e-3 <= t.median_s <= 1.2e-3


def test_measure_stops_unconverged_at_the_time_cap_when_the_median_keeps_moving():
    clock = FakeClock(lambda k: 100_000 + 20_000 * k)  # each call slower than the last
    rule = StoppingRule(max_s=0.5)
    t = measure(clock.work, rule, clock=clock)
    assert not t.converged
    assert rule.hard_min_samples <= t.iterations < rule.max_samples
    assert t.median_s <= t.p90_s <= t.p99_s


def test_measure_restores_the_garbage_collector():
    clock = FakeClock(lambda k: 1000)
    assert gc.isenabled()
    measure(clock.work, FAST, clock=clock)
    assert gc.isenabled()


def test_stopping_rule_is_stated_in_words():
    text = StoppingRule().describe()
    assert "2%" in text and "25 samples" in text and "1.5 s" in text


def test_floor_counts_the_real_bytes_read_and_written():
    x = torch.randn(8, 16)
    y = nn.GLU()(x)  # halves the last dim: writes half of what it reads
    assert io_bytes(x, y) == (512, 256)
    assert io_bytes(x.numpy(), nn.Softmax(-1)(x)) == (512, 512)
    floor = Floor("cpu", 128, copy_bytes=1024, median_s=1e-6, method="numpy.copyto", bandwidth=1024 / 1e-6)
    assert floor.seconds(768) == pytest.approx(0.75e-6)
    row = BenchRow("glu", "onnx", "ort:cpu", 128, "float32", "ok", bytes_read=512, bytes_written=256)
    assert row.bytes == 768 and row.device == "cpu"


def test_bench_input_keeps_static_dims_and_the_domain():
    x = bench_input(catalog.get("prelu_3ch"), 10_000, "float32")
    assert x.shape == (416, 3, 8) and x.dtype == np.float32
    g = bench_input(catalog.get("glu"), 1000, "float32")
    assert g.shape == (62, 16)
    lo, hi = catalog.get("softplus").domain
    s = bench_input(catalog.get("softplus"), 1000, "float32")
    assert lo <= s.min() and s.max() <= hi
    assert np.array_equal(s, bench_input(catalog.get("softplus"), 1000, "float32"))  # seeded


@pytest.mark.parametrize("module", [nn.GELU(), nn.LeakyReLU(0.1)], ids=["gelu", "leaky_relu_0.1"])
def test_out_variant_of_a_single_kernel_is_bit_identical(module):
    t = torch.linspace(-8, 8, 4096).reshape(256, 16)
    variant = out_variant(module, t)
    assert variant.call is not None, variant.reason
    assert variant.op.endswith(".out")
    with torch.no_grad():
        assert same_bits(variant.call(), module(t))


def test_out_variant_of_a_composite_module_is_reported_not_faked():
    variant = out_variant(nn.Tanhshrink(), torch.randn(4, 16))
    assert variant.call is None
    assert "2 aten ops" in variant.reason and "tanh" in variant.reason


def test_eager_prepare_returns_what_run_returns():
    x = bench_input(catalog.get("gelu"), 4096, "float32")
    rt = EagerRuntime(catalog.get("gelu"), "float32")
    assert np.array_equal(rt.prepare(x)().numpy().view(np.int32), rt.run(x).view(np.int32))


@pytest.fixture(scope="module")
def sigmoid_onnx(tmp_path_factory) -> Path:
    result = export_artifact(catalog.get("sigmoid"), "onnx", "float32", tmp_path_factory.mktemp("bench"), 18, "dynamo")
    assert result.ok, result.error
    return result.path


def test_ort_prepare_with_io_binding_matches_run_bit_for_bit(sigmoid_onnx):
    rt = OrtRuntime("cpu", intra_op_threads=1)
    rt.load(sigmoid_onnx)
    x = bench_input(catalog.get("sigmoid"), 4096, "float32")
    call = rt.prepare(x)
    first = call().numpy().copy()
    assert np.array_equal(first.view(np.int32), rt.run(x).view(np.int32))
    assert np.array_equal(call().numpy().view(np.int32), first.view(np.int32))  # the bound output is reused
    info = rt.session_options_info
    assert info["intra_op_num_threads"] == 1 and info["graph_optimization_level"] == "ORT_ENABLE_ALL"
    assert {"inter_op_num_threads", "execution_mode"} <= info.keys()
    rt.close()


def test_ort_default_threads_are_unchanged(sigmoid_onnx):
    rt = OrtRuntime("cpu")
    rt.load(sigmoid_onnx)
    assert rt.session_options_info["intra_op_num_threads"] == 0  # onnxruntime's default
    rt.close()


def test_bench_end_to_end_json_plot_and_unavailable_cuda(tmp_path):
    exported: list[tuple[str, str]] = []
    ticks: list[str] = []

    def export(act, fmt, dtype, out_dir, opset, exporter):
        exported.append((act.id, fmt))
        return export_artifact(act, fmt, dtype, out_dir, opset, exporter)

    report = bench(["relu", "sigmoid"], formats=("onnx",), providers=("cpu", "cuda"), sizes=(1000,), rule=FAST,
                   dram_bytes=1 << 20, export=export, progress=ticks.append)
    assert len(ticks) == plan_size(["relu", "sigmoid"], ("onnx",), ("cpu", "cuda"), (1000,))
    assert sorted(exported) == [("relu", "onnx"), ("sigmoid", "onnx")]
    by = {(r.activation, r.runtime): r for r in report.rows}
    for act in ("relu", "sigmoid"):
        for rt in ("eager:cpu", "eager.out:cpu", "ort:cpu"):
            row = by[act, rt]
            assert row.status == "ok", row.reason
            assert row.median_s > 0 and row.ratio_floor > 0 and row.ratio_eager > 0 and row.bytes == 2 * 992 * 4
        assert by[act, "eager:cpu"].ratio_eager == 1.0
        assert report.graphs[act]["exported"]["nodes"] == 1
    if not HAS_CUDA:
        for rt in ("eager:cuda", "ort:cuda"):
            assert by["relu", rt].status == "unavailable" and by["relu", rt].reason

    path = tmp_path / "bench.json"
    report.write_json(path)

    def no_nan(value):
        raise AssertionError(f"{value} in the JSON")

    doc = json.loads(path.read_text(), parse_constant=no_nan)
    assert doc["stopping_rule"]["text"] and doc["environment"]["dram_copy_gbs"] > 0
    assert doc["environment"]["onnxruntime"]["intra_op_num_threads"] == 0
    assert {f["device"] for f in doc["floor"]} == {"cpu", "cuda"}
    assert len(doc["rows"]) == len(report.rows)

    plot = tmp_path / "bench.png"
    report.write_plot(plot)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    from rich.console import Console
    out = io.StringIO()
    report.render(Console(file=out, width=200))
    text = out.getvalue()
    assert "relu" in text and "ort:cpu" in text and "not judged" in text


def test_bench_refuses_unknown_providers_and_sizes():
    with pytest.raises(UsageError, match="unknown provider 'tpu'"):
        bench(["relu"], providers=("tpu",))
    with pytest.raises(UsageError, match="sizes"):
        bench(["relu"], sizes=(0,))


def test_poor_graphs_flags_slow_onnx_at_large_sizes_only():
    rows = [BenchRow("gelu", "onnx", "ort:cpu", 1_000_000, "float32", "ok", median_s=3e-3, ratio_eager=3.0),
            BenchRow("relu", "onnx", "ort:cpu", 1_000, "float32", "ok", median_s=3e-5, ratio_eager=5.0),
            BenchRow("relu", "onnx", "ort:cpu", 1_000_000, "float32", "ok", median_s=3e-4, ratio_eager=1.2)]
    graph = {"exported": {"nodes": 5, "op_types": {"Div": 1, "Erf": 1, "Mul": 2, "Add": 1}},
             "optimized": {"nodes": 5, "op_types": {"Div": 1, "Erf": 1, "Mul": 2, "Add": 1}}, "ort_specific": []}
    report = BenchReport(environment={}, rows=rows, graphs={"gelu": graph})
    (poor,) = report.poor_graphs()
    assert poor["activation"] == "gelu" and "5 nodes" in poor["graph"] and "Erf" in poor["graph"]


def test_plot_without_matplotlib_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(UsageError, match=r"--plot needs matplotlib: pip install 'actexport\[bench\]'"):
        BenchReport(environment={}).write_plot(tmp_path / "x.png")


@pytest.mark.cuda
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA device (and onnxruntime-gpu for the ort:cuda rows)")
def test_bench_on_cuda_times_with_synchronisation():
    report = bench(["gelu"], formats=("onnx", "pt2"), providers=("cuda",), sizes=(100_000,), rule=FAST,
                   dram_bytes=1 << 20)
    by = {r.runtime: r for r in report.rows}
    for rt in ("eager:cuda", "eager.out:cuda", "pt2:cuda"):
        assert by[rt].status == "ok" and by[rt].ratio_floor > 0, by[rt].reason
    assert by["ort:cuda"].status == "ok" or by["ort:cuda"].reason
    assert report.floor("cuda", 100_000).bandwidth > 0 and report.environment["cuda_copy_gbs"] > 0


def test_two_onnx_exporters_are_timed_back_to_back_under_their_profile_names():
    report = bench(["softshrink"], formats=("onnx",), sizes=(1000,), rule=FAST, dram_bytes=1 << 20,
                   exporter=("dynamo", "dynamo+candidates"))
    rows = {(r.runtime, r.graphs): r for r in report.rows}
    assert set(rows) == {("eager:cpu", ""), ("eager.out:cpu", ""), ("ort:cpu", "stock"), ("ort:cpu", "candidates")}
    assert rows["ort:cpu", "stock"].status == rows["ort:cpu", "candidates"].status == "ok"
    assert rows["ort:cpu", "candidates"].ratio_eager > 0  # both judged against the same eager row
    assert report.runtimes() == ["eager:cpu", "eager.out:cpu", "ort:cpu", "ort+candidates:cpu"]  # the tables' names
    (doc,) = [r for r in report.to_dict()["rows"] if r["graphs"] == "candidates"]
    assert (doc["runtime"], doc["label"]) == ("ort:cpu", "ort+candidates:cpu")
    assert report.environment["options"]["exporter"] == ["dynamo", "dynamo+candidates"]
    assert report.graphs["softshrink"]["exported"]["nodes"] == 7  # the first exporter's (stock) graph
