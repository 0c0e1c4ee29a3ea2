"""The manifest: schema, checksums, merging, and refusing what is not a manifest."""

from __future__ import annotations

import json

import pytest

from actexport import artifacts, catalog
from actexport.artifacts import export_all, read_manifest, sha256, write_manifest
from actexport.catalog import UsageError


def test_manifest_lists_every_artifact_with_its_checksum(exported):
    doc = read_manifest(exported)
    assert doc["schema"] == 1
    assert {"torch", "onnx", "onnxruntime"} <= doc["versions"].keys()
    assert len(doc["artifacts"]) == 3 * len(catalog.CATALOG) - 1  # rrelu has no ONNX (dynamo exporter)
    for e in doc["artifacts"]:
        assert {"id", "module", "format", "path", "sha256", "dtype", "opset", "exporter", "inputs", "outputs"} <= e.keys()
        assert sha256(exported / e["path"]) == e["sha256"]
        assert (e["opset"] is not None) == (e["format"] == "onnx")
    onnx_entry = next(e for e in doc["artifacts"] if e["id"] == "leaky_relu_0.1" and e["format"] == "onnx")
    assert onnx_entry["module"] == "LeakyReLU(negative_slope=0.1)"
    assert onnx_entry["path"] == "leaky_relu_0.1/model.onnx" and onnx_entry["dtype"] == "float32"
    assert onnx_entry["inputs"][0]["dtype"] == "float32"


def test_exporting_a_subset_keeps_the_rest_of_the_manifest(artifacts_copy):
    before = {(e["id"], e["format"]) for e in read_manifest(artifacts_copy)["artifacts"]}
    export_all((catalog.get("relu"),), ("pt2",), ("float32",), artifacts_copy, (18,), "dynamo")
    after = read_manifest(artifacts_copy)["artifacts"]
    assert {(e["id"], e["format"]) for e in after} == before
    assert len(after) == len(before)


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "is not valid JSON"),
        ('{"schema": 2, "artifacts": []}', "is not an actexport manifest of schema 1"),
        ('{"schema": 1, "artifacts": [{"id": "relu"}]}', "without id/format/path/dtype/sha256"),
        ('{"schema": 1, "artifacts": [{"id": "r", "format": "onnx", "dtype": "float32", "sha256": "0",'
         ' "opset": 18, "path": "../../etc/passwd"}]}', "lists '../../etc/passwd': a path outside its directory"),
    ],
)
def test_bad_manifests_are_usage_errors(tmp_path, content, message):
    (tmp_path / "manifest.json").write_text(content)
    with pytest.raises(UsageError, match=message):
        read_manifest(tmp_path)


def test_missing_directory_and_manifest(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        read_manifest(tmp_path / "nope")
    with pytest.raises(UsageError, match="manifest.json' is missing"):
        read_manifest(tmp_path)


def test_unwritable_output_directory_writes_nothing(tmp_path, monkeypatch):
    # NOTE: CI runs as root, which writes into read-only directories, so the permission answer is
    # simulated rather than produced with chmod.
    monkeypatch.setattr(artifacts.os, "access", lambda path, mode: False)
    with pytest.raises(UsageError, match="cannot be written"):
        export_all((catalog.get("relu"),), ("onnx",), ("float32",), tmp_path / "models", (18,), "dynamo")
    assert list(tmp_path.iterdir()) == []


def test_output_path_that_is_a_file_writes_nothing(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(UsageError, match="is not a directory"):
        export_all((catalog.get("relu"),), ("onnx",), ("float32",), f / "models", (18,), "dynamo")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_manifest_write_is_atomic_json(tmp_path):
    path = write_manifest(tmp_path, [])
    assert json.loads(path.read_text())["artifacts"] == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]
