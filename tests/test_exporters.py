"""Exporters write self-contained artifacts atomically, never raise, and keep their noise to themselves."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
import torch

from actexport import catalog
from actexport.artifacts import artifact_path, export_artifact
from actexport.files import atomic_write, root_cause
from actexport.exporters import onnx as onnx_exporter
from actexport.exporters import torchscript


def test_onnx_artifact_is_checked_dynamic_and_records_its_opset(exported):
    path = exported / "leaky_relu_0.1" / "model.onnx"
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert [n.op_type for n in model.graph.node] == ["LeakyRelu"]
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert all(d.dim_param for d in dims), "every dim of an elementwise activation is dynamic"
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.onnx", "model.pt2", "model.torchscript.pt"]


def test_prelu_channels_stay_static(exported):
    model = onnx.load(str(exported / "prelu_3ch" / "model.onnx"))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[1].dim_value == 3 and dims[0].dim_param and dims[2].dim_param


@pytest.mark.parametrize("opset", [18, 21])
def test_requested_opset_is_the_one_recorded(tmp_path, opset):
    act = catalog.get("hardsigmoid")
    r = onnx_exporter.export(act, "float32", tmp_path / "m.onnx", opset=opset)
    assert r.ok, r.error
    assert r.opset == opset
    assert {o.version for o in onnx.load(str(r.path)).opset_import if o.domain == ""} == {opset}


def test_the_registry_built_once_changes_no_byte_and_is_undone(tmp_path, monkeypatch):
    import contextlib

    from torch.onnx._internal.exporter import _registration

    original = _registration.ONNXRegistry.__dict__["from_torchlib"]
    act = catalog.get("softplus_b2_t10")  # actexport's translation adds a custom function to the registry
    fast = [onnx_exporter.export(act, "float32", tmp_path / f"fast{n}.onnx", exporter="dynamo+actexport")
            for n in range(2)]
    assert _registration.ONNXRegistry.__dict__["from_torchlib"] is original
    monkeypatch.setattr(onnx_exporter, "_registry_built_once", contextlib.nullcontext)
    slow = onnx_exporter.export(act, "float32", tmp_path / "slow.onnx", exporter="dynamo+actexport")
    assert all(r.ok for r in [*fast, slow]), [r.error for r in [*fast, slow]]
    assert fast[0].details["translations"], "the case meant to exercise a custom translation has none"
    assert {r.path.read_bytes() for r in fast} == {slow.path.read_bytes()}


def test_invalid_opset_is_a_usage_error():
    with pytest.raises(catalog.UsageError, match=r"invalid opset 5 for the dynamo exporter; valid: 18\.\.\d+"):
        onnx_exporter.check_opset(5, "dynamo")


def test_export_noise_is_captured_not_printed(tmp_path, capfd):
    r = export_artifact(catalog.get("gelu"), "onnx", "float32", tmp_path, 18, "dynamo")
    out, err = capfd.readouterr()
    assert r.ok and out == "" and err == ""
    assert "torch.onnx" in r.log  # what the exporter printed is kept for the report


def test_failing_export_is_a_result_with_the_root_cause(tmp_path):
    r = export_artifact(catalog.get("rrelu"), "onnx", "float32", tmp_path, 18, "dynamo")
    assert not r.ok and r.path is None
    assert "rrelu_with_noise" in r.error
    assert not list(tmp_path.rglob("*.onnx")), "a failed export leaves no file behind"


def test_torchscript_unavailable_is_reported_not_raised(tmp_path, monkeypatch):
    monkeypatch.delattr(torch.jit, "script")
    r = torchscript.export(catalog.get("relu"), "float32", tmp_path / "m.pt")
    assert r.unavailable and "TorchScript" in r.unavailable and r.path is None


def test_torchscript_records_script_or_trace(tmp_path, monkeypatch):
    def no_script(*a, **k):
        raise RuntimeError("cannot script")

    monkeypatch.setattr(torch.jit, "script", no_script)
    r = torchscript.export(catalog.get("relu"), "float32", tmp_path / "m.pt")
    assert r.ok and r.exporter == "torch.jit.trace" and "cannot script" in r.details["script_error"]


def test_atomic_write_leaves_nothing_when_interrupted(tmp_path):
    target = tmp_path / "d" / "model.onnx"

    def crash(tmp: Path) -> None:
        tmp.write_bytes(b"half a model")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, crash)
    assert list((tmp_path / "d").iterdir()) == []


def test_atomic_write_refuses_sidecar_files(tmp_path):
    def with_sidecar(tmp: Path) -> None:
        tmp.write_bytes(b"graph")
        (tmp.parent / "weights.data").write_bytes(b"external")

    with pytest.raises(RuntimeError, match="expected only model.onnx"):
        atomic_write(tmp_path / "model.onnx", with_sidecar)
    assert list(tmp_path.iterdir()) == []


def test_root_cause_digs_through_wrappers():
    try:
        try:
            raise KeyError("inner detail")
        except KeyError as e:
            raise RuntimeError("\x1b[96mwrapper\x1b[0m") from e
    except RuntimeError as outer:
        assert root_cause(outer) == "KeyError: 'inner detail'"


def test_artifact_layout():
    act = catalog.get("relu")
    assert artifact_path(Path("m"), act, "onnx", "float32") == Path("m/relu/model.onnx")
    assert artifact_path(Path("m"), act, "pt2", "float16") == Path("m/relu/float16/model.pt2")
