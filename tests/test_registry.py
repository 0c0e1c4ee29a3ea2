"""The registries: a format is one row of formats.REGISTRY, a runtime one line of runtimes.RUNTIMES."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from actexport import formats, runtimes
from actexport.verify import Options, plan_size, verify

TOY = "toy_runtime:NumpyRuntime"  # tests/toy_runtime.py
HERE = Path(__file__).parent


def _cells(report, runtime: str) -> dict:
    return {c.activation: c for c in report.cells if c.runtime == runtime}


def test_a_toy_runtime_is_one_file_and_one_registry_line(monkeypatch):
    options = Options(formats=("onnx",), isolate=False)
    steps_before = plan_size(["relu", "sigmoid"], options)
    monkeypatch.setattr(runtimes, "RUNTIMES", [*runtimes.RUNTIMES, TOY])
    report = verify(["relu", "sigmoid"], options)
    toy = _cells(report, "toy:cpu")
    assert set(toy) == {"relu", "sigmoid"}
    # relu exports to one Relu node, which numpy computes exactly as the exact reference does
    assert toy["relu"].status == "pass" and toy["relu"].ran_on == "numpy" and toy["relu"].max_ulp == 0
    assert toy["relu"].device == "cpu" and toy["relu"].format == "onnx"
    # sigmoid's graph is not one the toy runs: n/a with the toy's own reason, nothing else is touched
    assert toy["sigmoid"].status == "unavailable" and "toy runtime runs one node" in toy["sigmoid"].reason
    assert _cells(report, "ort:cpu")["sigmoid"].status in ("pass", "xfail")
    # the progress plan counts the new runtime's cells
    assert plan_size(["relu", "sigmoid"], options) == steps_before + 2


def test_a_runtime_registered_by_a_plugin_runs_in_the_worker_processes(tmp_path):
    """From outside the package: a plugin registers the class, and every worker process imports it."""
    (tmp_path / "toy_plugin.py").write_text(f"import actexport.runtimes\nactexport.runtimes.register({TOY!r})\n")
    env = {**os.environ, "ACTEXPORT_PLUGINS": "toy_plugin",
           "PYTHONPATH": os.pathsep.join([str(tmp_path), str(HERE), os.environ.get("PYTHONPATH", "")])}
    out = tmp_path / "r.json"
    p = subprocess.run([sys.executable, "-m", "actexport", "verify", "relu", "--formats", "onnx", "--quiet",
                        "--json", str(out)], capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    cells = {c["runtime"]: c for c in json.loads(out.read_text())["cells"]}
    assert cells["toy:cpu"]["status"] == "pass" and cells["toy:cpu"]["ran_on"] == "numpy"


def test_a_runtime_registered_in_this_process_only_is_an_error_naming_the_plugin_route(monkeypatch):
    """Worker processes import the package afresh: a registry line added here alone is not theirs."""
    monkeypatch.setattr(runtimes, "RUNTIMES", [*runtimes.RUNTIMES, TOY])
    report = verify(["relu"], Options(formats=("onnx",)))
    toy = _cells(report, "toy:cpu")["relu"]
    assert toy.status == "error" and "must be registered by a plugin ($ACTEXPORT_PLUGINS)" in toy.reason, toy.reason
    assert _cells(report, "ort:cpu")["relu"].status == "pass"


@pytest.mark.parametrize("cls, why", [
    ("WrongFormat", "runs format 'tflite'"),
    ("NoFamily", "needs a family"),
    ("TakenFamily", "a runtime called 'ort' exists already"),
])
def test_register_refuses_a_runtime_it_could_not_place(tmp_path, monkeypatch, cls, why):
    (tmp_path / "bad_runtimes.py").write_text(
        "from actexport.runtimes import Runtime\n"
        "class WrongFormat(Runtime):\n    family, format = 'tf', 'tflite'\n"
        "class NoFamily(Runtime):\n    format = 'onnx'\n"
        "class TakenFamily(Runtime):\n    family, format = 'ort', 'onnx'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(runtimes, "RUNTIMES", list(runtimes.RUNTIMES))
    with pytest.raises(ValueError, match=why):
        runtimes.register(f"bad_runtimes:{cls}")
    assert f"bad_runtimes:{cls}" not in runtimes.RUNTIMES


def test_formats_name_their_files_and_exporters():
    onnx = formats.format_of("onnx")
    assert onnx.file_for(None) == "model.onnx" and onnx.file_for(20) == "model.opset20.onnx"
    assert formats.format_of("pt2").file_for(20) == "model.pt2"  # no opset, one file
    assert formats.format_of("torchscript").label("") == "torch.jit"
    assert onnx.label("dynamo") == "torch.onnx.export(dynamo=True)"
    with pytest.raises(ValueError, match="valid: onnx, torchscript, pt2"):
        formats.format_of("tflite")
