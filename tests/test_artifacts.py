"""The manifest: schema, checksums, merging, and refusing what is not a manifest."""

from __future__ import annotations

import json

import pytest

from actexport import artifacts, catalog
from actexport.artifacts import export_all, read_manifest, sha256
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


def test_publishing_keeps_what_it_does_not_replace_and_leaves_nothing_beside_it(tmp_path):
    from actexport.publish import publish

    out, staged = tmp_path / "models", tmp_path / "staged"
    (out / "relu").mkdir(parents=True)
    (out / "README.md").write_text("kept")
    (out / "relu" / "model.onnx").write_text("old")
    (staged / "relu").mkdir(parents=True)
    (staged / "relu" / "model.onnx").write_text("new")
    new = {"id": "relu", "format": "onnx", "dtype": "float32", "opset": 18, "path": "relu/model.onnx", "sha256": "x"}
    publish(out, staged, [new], "manifest.json", {})
    assert (out / "README.md").read_text() == "kept" and (out / "relu" / "model.onnx").read_text() == "new"
    assert json.loads((out / "manifest.json").read_text())["artifacts"] == [new]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models", "staged"]


def test_concurrent_exports_into_one_folder_lose_nothing(tmp_path):
    import subprocess
    import sys

    ids = ["relu", "sigmoid", "tanh", "gelu", "silu", "mish", "elu", "selu"]
    out = tmp_path / "models"
    procs = [subprocess.Popen([sys.executable, "-m", "actexport", "export", i, "--formats", "torchscript",
                               "--in-process", "--no-cache", "--out", str(out)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in ids]
    assert [p.wait(timeout=300) for p in procs] == [0] * len(ids)
    listed = read_manifest(out)["artifacts"]
    assert sorted(e["id"] for e in listed) == sorted(ids)
    for e in listed:
        assert sha256(out / e["path"]) == e["sha256"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models"], "no staging folder is left"


def test_a_killed_export_leaves_the_old_or_the_new_folder_never_a_mix(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "models"
    argv = [sys.executable, "-m", "actexport", "export", "--formats", "torchscript", "--no-cache", "--out", str(out)]
    subprocess.run([*argv, "relu", "sigmoid"], check=True, capture_output=True)
    for delay in (0.5, 2.0, 3.0, 3.5, 4.5):  # NOTE: spread over the run: before, during and after publishing
        proc = subprocess.Popen([*argv, "relu", "tanh", "gelu"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        listed = read_manifest(out)["artifacts"]
        assert {"relu", "sigmoid"} <= {e["id"] for e in listed}, delay
        for e in listed:  # the manifest describes exactly the files beside it
            assert sha256(out / e["path"]) == e["sha256"], (delay, e["path"])
        deadline = time.monotonic() + 15
        while [p for p in tmp_path.iterdir() if p.name != "models"] and time.monotonic() < deadline:
            time.sleep(0.2)  # the killed run's forkserver removes its staging folder as it exits
        assert sorted(p.name for p in tmp_path.iterdir()) == ["models"], delay
