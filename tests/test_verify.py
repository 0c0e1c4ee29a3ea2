"""The matrix: the full catalog passes, and verify can fail when an artifact computes something else."""

from __future__ import annotations

import json
import shutil

import onnx
import pytest

from actexport import catalog
from actexport.artifacts import read_manifest, sha256
from actexport.catalog import XFail
from actexport.cli import main
from actexport.verify import Options, verify


def test_full_catalog_from_artifacts_passes(full_report):
    counts = full_report.counts()
    assert full_report.exit_code() == 0, [c.key + ": " + c.reason for c in full_report.cells if c.status != "pass"]
    assert counts["xpass"] == counts["fail"] == counts["error"] == 0
    assert len(full_report.cells) == 3 * len(catalog.CATALOG)
    assert counts["pass"] >= 100
    for c in full_report.cells:
        assert c.status == "pass" or c.reason, c.key


def test_xfail_exactly_where_a_deviation_is_declared(full_report):
    """A cell is xfail if and only if the catalog declares a deviation for it, and it still happens."""
    xfailed = 0
    for c in full_report.cells:
        declared = catalog.get(c.activation).xfail(c.format, c.runtime, c.dtype, "dynamo" if c.format == "onnx" else None)
        assert (c.status == "xfail") == (declared is not None), c.key
        xfailed += c.status == "xfail"
    assert xfailed == 8


def test_cells_report_metrics_and_the_side_that_deviates(full_report):
    gelu = next(c for c in full_report.cells if c.activation == "gelu" and c.format == "onnx")
    assert gelu.status == "xfail" and gelu.deviates == "pytorch" and gelu.nan_mismatch == 1
    logsig = next(c for c in full_report.cells if c.activation == "logsigmoid" and c.format == "onnx")
    assert logsig.deviates == "artifact" and logsig.inf_mismatch > 0 and logsig.worst_input is not None
    relu = next(c for c in full_report.cells if c.activation == "relu" and c.format == "pt2")
    assert relu.status == "pass" and relu.max_ulp == 0 and relu.elements > 0


def test_export_mode_runs_at_a_shape_unlike_the_example():
    report = verify(["leaky_relu_0.1", "softmax2d", "prelu_3ch", "glu", "softmax_dim0"], Options())
    assert report.exit_code() == 0, [c.key + c.reason for c in report.cells if c.status != "pass"]
    assert {c.status for c in report.cells} == {"pass", "xfail"}  # glu: onnxruntime's Sigmoid
    assert all(e["ok"] for e in report.exports)


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
    assert [(c["activation"], c["format"], c["runtime"]) for c in bad] == [("leaky_relu_0.1", "onnx", "ort:cpu")]
    assert "ULP" in bad[0]["reason"] and bad[0]["deviates"] == "artifact"


def test_verify_fails_when_a_torchscript_module_is_swapped(artifacts_copy):
    shutil.copy(artifacts_copy / "relu" / "model.torchscript.pt", artifacts_copy / "leaky_relu" / "model.torchscript.pt")
    _set_manifest_sha(artifacts_copy, "leaky_relu/model.torchscript.pt")
    report = verify(["leaky_relu"], Options(), artifacts_dir=artifacts_copy)
    assert report.exit_code() == 1
    (bad,) = [c for c in report.cells if c.status != "pass"]
    assert (bad.format, bad.status) == ("torchscript", "fail")


def test_a_changed_file_is_named_even_if_it_still_computes_right(artifacts_copy):
    path = artifacts_copy / "relu" / "model.onnx"
    path.write_bytes(path.read_bytes() + b"\0")
    report = verify(["relu"], Options(formats=("onnx",)), artifacts_dir=artifacts_copy)
    (cell,) = report.cells
    assert cell.status == "error" and "relu/model.onnx changed since export" in cell.reason
    assert report.exit_code() == 1


def test_a_missing_artifact_is_exit_3(artifacts_copy):
    (artifacts_copy / "tanh" / "model.pt2").unlink()
    report = verify(["tanh"], Options(formats=("pt2",)), artifacts_dir=artifacts_copy)
    assert report.exit_code() == 3 and "missing" in report.cells[0].reason


def _replace_row(monkeypatch, id, **changes):
    fake = catalog.Activation(**{**catalog.get(id).__dict__, **changes})
    monkeypatch.setattr(catalog, "CATALOG", tuple(fake if a.id == id else a for a in catalog.CATALOG))
    monkeypatch.setattr(catalog, "_BY_ID", {**catalog._BY_ID, id: fake})


def test_a_declared_deviation_that_stops_happening_is_an_xpass(monkeypatch):
    _replace_row(monkeypatch, "relu", xfails=(XFail("imaginary; side: runtime", format="pt2"),))
    report = verify(["relu"], Options(formats=("pt2",)))
    (cell,) = report.cells
    assert cell.status == "xpass" and "remove the xfail" in cell.reason
    assert report.exit_code() == 1


def test_an_undeclared_export_failure_is_exit_3(monkeypatch):
    _replace_row(monkeypatch, "rrelu", xfails=())
    report = verify(["rrelu"], Options(formats=("onnx",)))
    assert report.cells[0].status == "error" and report.exit_code() == 3


def test_options_are_validated_before_anything_runs():
    with pytest.raises(catalog.UsageError, match="unknown dtype 'float8'"):
        verify(["relu"], Options(dtypes=("float8",)))
    with pytest.raises(catalog.UsageError, match="invalid opset 99"):
        verify(["relu"], Options(opset=99))
