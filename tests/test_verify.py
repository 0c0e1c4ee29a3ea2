"""The matrix: judged against the exact reference; verify fails when an artifact computes something else."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import onnx
import pytest

from cuda_here import NO_ORT_CUDA, ORT_CUDA

from actexport import catalog
from actexport.artifacts import read_manifest, sha256
from actexport.catalog import DTYPES, UsageError, XFail
from actexport.cli import main
from actexport.runtimes import ProviderMissing, RuntimeUnavailable
from actexport.runtimes.onnxrt import OrtRuntime
from actexport.verify import Options, verify


def _cells(report, **match):
    return [c for c in report.cells if all(getattr(c, k) == v for k, v in match.items())]


def test_full_catalog_from_artifacts_passes(full_report):
    counts = full_report.counts()
    assert full_report.exit_code() == 0, [c.key + ": " + c.reason for c in full_report.cells
                                          if c.status in ("fail", "error", "xpass")]
    assert counts["xpass"] == counts["fail"] == counts["error"] == 0
    # eager, onnx.reference, ort:cpu, torchscript and pt2 for every activation
    assert len(full_report.cells) == 5 * len(catalog.CATALOG)
    assert counts["pass"] + counts["xfail"] == len(full_report.cells)  # float32 runs everywhere
    for c in full_report.cells:
        assert c.status == "pass" or c.reason, c.key


def test_xfail_exactly_where_a_deviation_is_declared(full_report):
    """A cell is xfail if and only if the catalog declares a deviation for it, within its bounds."""
    for c in full_report.cells:
        act = catalog.get(c.activation)
        kind, graphs = ("dynamo", "actexport") if c.format == "onnx" else (None, None)
        declared = act.xfail(c.format, c.runtime, c.dtype, kind, graphs=graphs) or act.xfail(
            c.format, c.runtime, c.dtype, kind, no_artifact=True, graphs=graphs)
        assert (c.status == "xfail") == (declared is not None), c.key


def test_cells_report_metrics_and_the_side_that_deviates(full_report):
    (gelu,) = _cells(full_report, activation="gelu", runtime="eager:cpu")
    assert gelu.status == "xfail" and gelu.deviates == "pytorch" and gelu.nan_mismatch >= 1
    assert "x=+inf: NaN out, exact +inf" in gelu.special
    (logsig,) = _cells(full_report, activation="logsigmoid", runtime="ort:cpu")
    assert logsig.deviates == "export" and logsig.inf_mismatch > 0 and logsig.worst_input is not None
    (sig,) = _cells(full_report, activation="sigmoid", runtime="ort:cpu")
    assert sig.deviates == "runtime" and sig.worst_spec is not None and sig.ran_on == "CPUExecutionProvider"
    (relu,) = _cells(full_report, activation="relu", format="pt2")
    assert relu.status == "pass" and relu.max_ulp == 0 and relu.elements > 0 and relu.torch_max_ulp == 0


def test_export_mode_runs_at_a_shape_unlike_the_example():
    report = verify(["leaky_relu_0.1", "softmax2d", "prelu_3ch", "glu", "softmax_dim0"], Options())
    assert report.exit_code() == 0, [c.key + c.reason for c in report.cells if c.status != "pass"]
    assert {c.status for c in report.cells} == {"pass", "xfail"}  # glu: onnxruntime's Sigmoid
    assert all(e["ok"] for e in report.exports)


def test_every_dtype_of_the_whole_catalog_exits_0():
    """The acceptance run: `actexport verify --all --dtypes all` on CPU (about 3 minutes here)."""
    report = verify(None, Options(dtypes=DTYPES))
    bad = [c.key + ": " + c.reason for c in report.cells if c.status in ("fail", "error", "xpass")]
    assert report.exit_code() == 0 and not bad, bad[:10]
    unavailable = _cells(report, status="unavailable")
    # onnxruntime 1.30 (not 1.32) also fuses float64 silu into QuickGelu, which has no float64 kernel.
    assert unavailable and all(c.dtype == "bfloat16" or "Erf" in c.reason or "QuickGeluFusion" in c.reason
                               for c in unavailable)
    assert {c.dtype for c in _cells(report, status="pass")} == set(DTYPES)


def test_several_opsets_show_graphs_and_compare_numerics():
    report = verify(["hardsigmoid"], Options(formats=("onnx",), opsets=(18, 21)))
    assert {c.opset for c in report.cells if c.format == "onnx"} == {18, 21}
    graphs = {g.opset: g for g in report.graphs}
    assert graphs[18].op_types == ["HardSigmoid"] and graphs[21].nodes == 1
    assert graphs[21].ort_cpu_max_ulp_vs_opset == {"18": 0}


def test_legacy_exporter_declarations_hold():
    ids = sorted({a.id for a in catalog.CATALOG for x in a.xfails if x.exporter == "legacy"})
    report = verify(ids, Options(formats=("onnx",), exporter="legacy", opsets=(17,)))
    assert report.exit_code() == 0, [c.key + c.reason for c in report.cells if c.status in ("fail", "error")]


def _set_manifest_sha(dir, rel_path):
    doc = read_manifest(dir)
    for e in doc["artifacts"]:
        if e["path"] == rel_path:
            e["sha256"] = sha256(dir / rel_path)
    (dir / "manifest.json").write_text(json.dumps(doc))


def test_verify_fails_when_the_onnx_slope_is_changed(artifacts_copy, tmp_path):
    path = artifacts_copy / "leaky_relu_0.1" / "model.onnx"
    model = onnx.load(str(path))
    (node,) = model.graph.node
    (alpha,) = [a for a in node.attribute if a.name == "alpha"]
    alpha.f = 0.2
    onnx.save(model, str(path))
    _set_manifest_sha(artifacts_copy, "leaky_relu_0.1/model.onnx")  # as if exported that way
    report_path = tmp_path / "r.json"
    rc = main(["verify", "leaky_relu_0.1", "--artifacts", str(artifacts_copy), "--json", str(report_path), "--quiet"])
    assert rc == 1
    cells = json.loads(report_path.read_text())["cells"]
    bad = [c for c in cells if c["status"] == "fail"]
    assert {(c["activation"], c["format"], c["runtime"]) for c in bad} == {
        ("leaky_relu_0.1", "onnx", "ort:cpu"), ("leaky_relu_0.1", "onnx", "onnx.reference")}
    assert all("ULP" in c["reason"] and c["deviates"] == "export" for c in bad)


def test_verify_fails_when_a_torchscript_module_is_swapped(artifacts_copy):
    shutil.copy(artifacts_copy / "relu" / "model.torchscript.pt", artifacts_copy / "leaky_relu" / "model.torchscript.pt")
    _set_manifest_sha(artifacts_copy, "leaky_relu/model.torchscript.pt")
    report = verify(["leaky_relu"], Options(), artifacts_dir=artifacts_copy)
    assert report.exit_code() == 1
    (bad,) = [c for c in report.cells if c.status != "pass"]
    assert (bad.format, bad.status, bad.deviates) == ("torchscript", "fail", "export")


def test_a_declaration_does_not_hide_a_larger_error(artifacts_copy):
    """sigmoid's ONNX cell is declared (onnxruntime's Sigmoid tail); a tanh in its place is not."""
    shutil.copy(artifacts_copy / "tanh" / "model.onnx", artifacts_copy / "sigmoid" / "model.onnx")
    _set_manifest_sha(artifacts_copy, "sigmoid/model.onnx")
    report = verify(["sigmoid"], Options(formats=("onnx",)), artifacts_dir=artifacts_copy)
    (ort_cell,) = _cells(report, runtime="ort:cpu")
    assert ort_cell.status == "fail" and "beyond the declared deviation" in ort_cell.reason
    assert report.exit_code() == 1


def test_a_declaration_does_not_excuse_a_missing_artifact(artifacts_copy):
    (artifacts_copy / "sigmoid" / "model.onnx").unlink()
    report = verify(["sigmoid"], Options(formats=("onnx",)), artifacts_dir=artifacts_copy)
    assert {c.status for c in _cells(report, format="onnx")} == {"error"}
    assert report.exit_code() == 3 and "missing" in _cells(report, runtime="ort:cpu")[0].reason


def test_a_changed_file_is_named_even_if_it_still_computes_right(artifacts_copy):
    path = artifacts_copy / "relu" / "model.onnx"
    path.write_bytes(path.read_bytes() + b"\0")
    report = verify(["relu"], Options(formats=("onnx",)), artifacts_dir=artifacts_copy)
    cells = _cells(report, format="onnx")
    assert cells and all(c.status == "error" and "relu/model.onnx changed since export" in c.reason for c in cells)
    assert report.exit_code() == 1


def test_a_missing_artifact_is_exit_3(artifacts_copy):
    (artifacts_copy / "tanh" / "model.pt2").unlink()
    report = verify(["tanh"], Options(formats=("pt2",)), artifacts_dir=artifacts_copy)
    assert report.exit_code() == 3 and "missing" in _cells(report, format="pt2")[0].reason


@pytest.mark.parametrize("doc, message", [
    ({"schema": 1, "artifacts": []}, "nothing to verify"),
    ({"schema": 1, "artifacts": [{"id": "relu7", "format": "onnx", "path": "x", "dtype": "float32", "sha256": "0",
                                  "opset": 18}]},
     "not in the catalog: relu7"),
])
def test_vacuous_or_foreign_manifests_are_refused(tmp_path, doc, message):
    (tmp_path / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(UsageError, match=message):
        verify(None, Options(), artifacts_dir=tmp_path)


@pytest.mark.parametrize("raised, status, code", [
    (ProviderMissing("asked for CUDAExecutionProvider but onnxruntime runs ['CPUExecutionProvider']"), "error", 4),
    # A dtype the provider has no kernel for is the artifact's limit there, not a missing provider.
    (RuntimeUnavailable("onnxruntime has no kernel: ... LeakyRelu(16) ... bfloat16"), "unavailable", 0),
])
def test_a_provider_asked_for_by_name_that_falls_back_is_exit_4(monkeypatch, raised, status, code):
    def load(self, path):
        raise raised

    monkeypatch.setattr(OrtRuntime, "provider_unavailable", lambda self: None)
    monkeypatch.setattr(OrtRuntime, "load", load)
    report = verify(["relu"], Options(formats=("onnx",), providers=("cuda",), providers_explicit=True,
                                      reference=False, isolate=False))  # the patch lives in this process
    (cell,) = _cells(report, runtime="ort:cuda")
    assert cell.status == status and report.exit_code() == code


def test_a_declared_deviation_that_stops_happening_is_an_xpass(replace_row):
    replace_row("relu", xfails=(XFail("imaginary; side: runtime", format="pt2", where=("[-1, 1]",), max_ulp=4),))
    report = verify(["relu"], Options(formats=("pt2",)))
    (cell,) = _cells(report, format="pt2")
    assert cell.status == "xpass" and "remove the xfail" in cell.reason
    assert report.exit_code() == 1


def test_a_declaration_whose_range_is_exceeded_fails(replace_row):
    """elu on onnxruntime loses digits for x in about [-0.134, 0) in float32; declared only for
    [-0.05, 0), the same deviation beyond -0.05 fails, naming where the declaration stops."""
    act = catalog.get("elu")
    narrowed = tuple(dataclasses.replace(x, where=("[-0.05, 0)",)) if x.runtime == "ort:cpu" and x.dtype == "float32"
                     else x for x in act.xfails)
    replace_row("elu", xfails=narrowed)
    report = verify(["elu"], Options(formats=("onnx",), reference=False))
    (cell,) = _cells(report, runtime="ort:cpu")
    assert cell.status == "fail" and "beyond the declared deviation (where [-0.05, 0)" in cell.reason
    worst = float(cell.reason.split("beyond the declared deviation")[1].split("worst at x=")[1].split(":")[0])
    assert -0.134 <= worst < -0.05  # the first element it does not excuse lies where it stopped declaring


def test_a_declaration_whose_size_is_exceeded_fails(replace_row):
    act = catalog.get("elu")
    shrunk = tuple(dataclasses.replace(x, max_abs=1e-9) if x.runtime == "ort:cpu" and x.dtype == "float32" else x
                   for x in act.xfails)
    replace_row("elu", xfails=shrunk)
    (cell,) = _cells(verify(["elu"], Options(formats=("onnx",), reference=False)), runtime="ort:cpu")
    assert cell.status == "fail" and "within None ULP or abs 1e-09" in cell.reason


def test_an_undeclared_export_failure_is_exit_3(replace_row):
    replace_row("rrelu", xfails=())
    report = verify(["rrelu"], Options(formats=("onnx",)))
    assert _cells(report, runtime="ort:cpu")[0].status == "error" and report.exit_code() == 3


def test_options_are_validated_before_anything_runs():
    with pytest.raises(UsageError, match="unknown dtype 'float8'"):
        verify(["relu"], Options(dtypes=("float8",)))
    with pytest.raises(UsageError, match="invalid opset 99"):
        verify(["relu"], Options(opsets=(99,)))


def test_oracle_limits_at_infinity():
    for id, x, want in (("gelu", -np.inf, 0.0), ("silu", -np.inf, 0.0), ("softsign", np.inf, 1.0),
                        ("mish", -np.inf, 0.0), ("gelu", np.inf, np.inf), ("logsigmoid", -np.inf, -np.inf)):
        got = catalog.get(id).oracle(np.array([x], np.float32))[0]
        assert got == want, (id, x, got)


def test_graph_records_show_what_onnxruntime_optimisation_did(full_report):
    by_id = {g.activation: g.optimisation for g in full_report.graphs}
    silu = by_id["silu"]
    assert silu.rewritten and "com.microsoft:QuickGelu" in silu.graph
    assert silu.numbers == 0  # measured: the fused kernel reproduces Sigmoid·Mul bit for bit
    assert silu.optimised_max_ulp_vs_exact == silu.unoptimised_max_ulp_vs_exact
    assert not by_id["relu"].rewritten


def test_an_optimisation_that_changes_numbers_is_named(monkeypatch):
    from actexport.runtimes.onnxrt import OrtRuntime as Ort

    # The unoptimised session returns one element changed by one ULP: the record must say so.
    real_infer = Ort.infer

    def nudged(self, x):
        y = real_infer(self, x)
        if self.optimization == "disable":
            y = y.copy()
            flat = y.reshape(-1)
            i = np.flatnonzero(np.isfinite(flat) & (np.abs(flat) < 0.5))[0]  # a finite value not at an extreme
            flat[i] = np.nextafter(flat[i], np.float32(np.inf), dtype=y.dtype)
        return y

    monkeypatch.setattr(Ort, "infer", nudged)
    report = verify(["tanh"], Options(formats=("onnx",), isolate=False))  # the patch lives in this process
    (record,) = report.graphs
    assert record.optimisation.numbers == 4  # one element of each of the four batteries
    assert record.optimisation.max_ulp_between == 1
    lines = report.optimisation_lines()
    assert "changed the numbers of 1" in lines[0] and lines[1].startswith("  tanh float32 opset 18: 4 elements differ")


def test_a_second_device_is_compared_with_cpu_and_shown_beside_it(monkeypatch):
    """The CUDA code path on a machine without CUDA: ort:cuda is onnxruntime's CPU provider returning
    a NaN where it should not, a +0 for -0 and one element 3 ULP away; verify must put CPU and the
    second device side by side and name each difference."""
    import io

    from rich.console import Console

    from actexport.runtimes import onnxrt

    real_load, real_run = OrtRuntime.load, OrtRuntime.run

    def load(self, path):
        device = self.device
        self.device, self.provider = "cpu", onnxrt.PROVIDERS["cpu"]
        try:
            real_load(self, path)
        finally:
            self.device, self.provider = device, onnxrt.PROVIDERS[device]

    def run(self, x):
        y = real_run(self, x)
        if self.device == "cuda":
            y, xs = y.copy(), x.reshape(-1)
            flat = y.reshape(-1)
            flat[(xs == 0) & np.signbit(xs)] = 0.0
            flat[xs == 1.0] = np.nan
            for i in np.flatnonzero((xs > 10) & (xs < 1e6))[:1]:
                for _ in range(3):
                    flat[i] = np.nextafter(flat[i], np.float32(np.inf))
        return y

    monkeypatch.setattr(OrtRuntime, "provider_unavailable", lambda self: None)
    monkeypatch.setattr(OrtRuntime, "load", load)
    monkeypatch.setattr(OrtRuntime, "run", run)
    report = verify(["relu"], Options(formats=("onnx",), providers=("cpu", "cuda"), reference=False,
                                      isolate=False))  # the patch lives in this process
    (eager_cuda,) = _cells(report, runtime="eager:cuda")
    assert eager_cuda.status == "unavailable" and "CUDA" in eager_cuda.reason  # no torch CUDA here
    (pair,) = report.devices  # eager:cuda did not run, so only onnxruntime has a pair
    assert (pair.runtime, pair.device, pair.format, pair.opset) == ("ort", "cuda", "onnx", 18)
    agreement = pair.agreement
    assert agreement.nan_mismatch >= 1 and agreement.max_ulp == 3 and not agreement.agree
    assert "x=-0: +0 on cuda, -0 on cpu" in agreement.special and "x=1: NaN on cuda, 1 on cpu" in agreement.special
    assert report.environment["runtimes"]["ort:cuda"]["provider"] == "CPUExecutionProvider"  # what really ran
    assert pair.ran_on == "CPUExecutionProvider"
    lines = report.device_lines()
    assert lines[0] == ("cuda against cpu (the same artifact on both devices): 1 runtime pairs, 0 bit-identical, "
                        "0 within budget of each other, 1 disagree")
    assert lines[1].startswith("  relu float32 onnx@18 ort: ") and "up to 3 ULP (budget 4)" in lines[1]
    out = io.StringIO()
    report.render(Console(file=out, width=200))
    assert "max ULP" in out.getvalue() and "cuda" in out.getvalue() and lines[1].strip() in out.getvalue()
    doc = report.to_dict()
    assert doc["devices"][0] == {"activation": "relu", "dtype": "float32", "format": "onnx", "opset": 18,
                                 "runtime": "ort", "device": "cuda", "ran_on": "CPUExecutionProvider",
                                 "budget_ulp": 4, **dataclasses.asdict(agreement)}


@pytest.mark.cuda
@pytest.mark.skipif(not ORT_CUDA, reason=NO_ORT_CUDA)
def test_a_dtype_without_a_cuda_kernel_is_unavailable_on_a_real_card():
    """onnxruntime's CUDA provider has bfloat16 Sigmoid but no bfloat16 LeakyRelu, nor has its CPU
    provider: that session fails in a memory-copy transformer, which must read as n/a, not an error."""
    report = verify(["leaky_relu", "sigmoid"], Options(formats=("onnx",), providers=("cuda",), providers_explicit=True,
                                                       dtypes=("bfloat16",), reference=False))
    cells = {c.activation: c for c in report.cells if c.runtime == "ort:cuda"}
    assert cells["leaky_relu"].status == "unavailable", cells["leaky_relu"].reason
    assert "LeakyRelu(bfloat16)" in cells["leaky_relu"].reason and "fails to load alone" in cells["leaky_relu"].reason
    assert cells["sigmoid"].status in ("pass", "xfail") and cells["sigmoid"].ran_on == "CUDAExecutionProvider"


def test_runtime_settings_are_recorded_once_per_runtime_and_cpu_has_no_device_pairs():
    report = verify(["relu"], Options())
    runtimes = report.environment["runtimes"]
    assert set(runtimes) == {"eager:cpu", "ort:cpu", "torchscript:cpu", "pt2:cpu"}  # onnx.reference has none
    assert runtimes["ort:cpu"]["provider"] == "CPUExecutionProvider"
    assert runtimes["ort:cpu"]["session_options"]["intra_op_num_threads"] == 1
    assert runtimes["pt2:cpu"]["device"] == "cpu" and report.devices == [] and report.device_lines() == []


@pytest.mark.cuda
@pytest.mark.skipif(not ORT_CUDA, reason=NO_ORT_CUDA)
def test_cuda_and_cpu_side_by_side_on_a_real_card():
    report = verify(["relu", "gelu", "softplus"], Options(providers=("cuda", "cpu"), providers_explicit=True,
                                                          dtypes=("float16", "float32")))
    assert report.exit_code() == 0, [c.key + ": " + c.reason for c in report.cells if c.status != "pass"]
    cuda = [c for c in report.cells if c.runtime.endswith(":cuda") and c.format != "eager"]
    assert cuda and all(c.ran_on in ("CUDAExecutionProvider", "cuda") for c in cuda if c.status == "pass")
    runtimes = report.environment["runtimes"]
    assert "device_id" in runtimes["ort:cuda"]["provider_options"] and runtimes["eager:cuda"]["device"] != "cpu"
    pairs = {(d.activation, d.dtype, d.runtime) for d in report.devices}
    assert ("relu", "float32", "ort") in pairs and ("relu", "float32", "eager") in pairs
    ran = {(c.activation, c.dtype, c.runtime) for c in report.cells if c.max_ulp is not None}
    both = {(a, d, rt.rpartition(":")[0]) for a, d, rt in ran
            if rt.endswith(":cuda") and (a, d, rt.replace(":cuda", ":cpu")) in ran}
    assert pairs == both  # one comparison for each runtime that ran on both devices
