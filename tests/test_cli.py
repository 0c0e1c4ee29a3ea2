"""The command line in-process (main(argv)) and, once, the installed console script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from cuda_here import ORT_CUDA_PROBLEM

from actexport import catalog
from actexport.cli import main


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("actexport: error: ")
    return err[0]


def test_list_json(capsys):
    assert main(["list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == [a.id for a in catalog.CATALOG]
    assert {"id": "leaky_relu_0.1", "module": "LeakyReLU(negative_slope=0.1)",
            "formula": "x if x > 0 else 0.1 * x"} in rows


@pytest.mark.parametrize(
    "argv, message",
    [
        (["verify", "relu7"], "unknown activation 'relu7'; known: "),
        (["verify"], "name activation ids or --all"),
        (["verify", "--all", "relu"], "ids or --all, not both"),
        (["verify", "relu", "--formats", "onnx,tflite"], "unknown format 'tflite'; valid: onnx, torchscript, pt2"),
        (["verify", "relu", "--providers", "tpu"], "unknown provider 'tpu'; valid: cpu, cuda"),
        (["verify", "relu", "--dtypes", "int8"], "unknown dtype 'int8'; valid: float16, bfloat16, float32, float64"),
        (["verify", "relu", "--opset", "7"], "invalid opset 7 for the dynamo exporter; valid: 18.."),
        (["verify", "relu", "--opset", "x"], "invalid opset 'x': give integers"),
        (["export", "relu", "--opset", "99"], "invalid opset 99"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(capsys, argv, message):
    assert main(argv) == 2
    assert message in _one_error_line(capsys)


def test_bad_artifact_dir_is_exit_2(capsys, tmp_path):
    assert main(["verify", "--artifacts", str(tmp_path / "nope")]) == 2
    assert "does not exist" in _one_error_line(capsys)
    (tmp_path / "manifest.json").write_text("[1, 2")
    assert main(["verify", "--artifacts", str(tmp_path)]) == 2
    assert "is not valid JSON" in _one_error_line(capsys)


@pytest.mark.skipif(ORT_CUDA_PROBLEM is None, reason="onnxruntime's CUDA provider loads on this machine")
@pytest.mark.parametrize("command", ["verify", "bench"])
def test_cuda_asked_for_without_provider_is_exit_4(capsys, command):
    assert main([command, "relu", "--providers", "cuda", "--formats", "onnx"]) == 4
    line = _one_error_line(capsys)
    assert "--providers cuda: ort:cuda is not available: " + ORT_CUDA_PROBLEM in line and "onnxruntime-gpu" in line


def test_bench_exits_4_when_the_provider_falls_back_at_load(capsys, monkeypatch):
    from actexport.runtimes import ProviderMissing
    from actexport.runtimes.onnxrt import OrtRuntime

    def load(self, path):
        raise ProviderMissing("asked for CUDAExecutionProvider but onnxruntime runs ['CPUExecutionProvider']")

    monkeypatch.setattr(OrtRuntime, "provider_unavailable", lambda self: None)
    monkeypatch.setattr(OrtRuntime, "load", load)
    argv = ["bench", "relu", "--providers", "cuda", "--formats", "onnx", "--sizes", "1e3", "--in-process"]
    assert main(argv) == 4
    assert "ort:cuda: asked for CUDAExecutionProvider but onnxruntime runs" in _one_error_line(capsys)



def test_export_to_an_unusable_directory_writes_nothing(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["export", "relu", "--out", str(blocker / "models")]) == 2
    assert "is not a directory" in _one_error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_report_to_a_missing_directory_is_refused_before_work(capsys, tmp_path):
    assert main(["verify", "relu", "--json", str(tmp_path / "no" / "r.json")]) == 2
    assert "--json" in _one_error_line(capsys)


def test_export_then_verify_artifacts_with_json_and_junit(tmp_path, capsys):
    out = tmp_path / "models"
    assert main(["export", "leaky_relu", "softmax", "--out", str(out)]) == 0
    assert "wrote 6 artifacts" in capsys.readouterr().out
    js, xml = tmp_path / "r.json", tmp_path / "r.xml"
    assert main(["verify", "--artifacts", str(out), "--json", str(js), "--junit", str(xml)]) == 0
    text = capsys.readouterr().out
    assert "10 cells: 10 pass" in text  # eager, onnx.reference, ort:cpu, torchscript, pt2 for each
    doc = json.loads(js.read_text())
    assert doc["schema"] == 1 and doc["summary"]["counts"]["pass"] == 10
    assert {"torch", "onnxruntime"} <= doc["environment"]["versions"].keys()
    assert {c["activation"] for c in doc["cells"]} == {"leaky_relu", "softmax"}
    suite = ET.parse(xml).getroot().find("testsuite")
    assert suite.get("tests") == "10" and suite.get("failures") == "0"


def test_export_reports_an_artifact_it_could_not_produce(tmp_path, capsys, replace_row):
    # Declared in the catalog: reported, not a failure of the export step.
    assert main(["export", "rrelu", "--formats", "onnx", "--out", str(tmp_path / "m")]) == 0
    assert "rrelu / onnx / float32: xfail (declared): " in capsys.readouterr().err
    replace_row("rrelu", xfails=())
    assert main(["export", "rrelu", "--formats", "onnx", "--out", str(tmp_path / "n")]) == 3
    assert "rrelu / onnx / float32: error: DispatchError" in capsys.readouterr().err


def test_explain_groups_deviations_by_activation(capsys):
    assert main(["verify", "softsign", "--formats", "onnx", "--explain", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "softsign: Softsign()" in out
    assert "float32 eager eager:cpu: xfail, side pytorch: x=inf: exact 1.0, pytorch nan (" in out
    assert "float32 onnx@18 ort:cpu: xfail, side pytorch: x=inf: exact 1.0, pytorch nan, artifact nan, " in out
    assert "special values, float32 ort:cpu: x=+inf: NaN out, exact 1" in out


def test_all_with_artifacts_expects_the_whole_catalog(tmp_path, capsys):
    out = tmp_path / "models"
    assert main(["export", "relu", "--formats", "pt2", "--out", str(out)]) == 0
    assert main(["verify", "--artifacts", str(out), "--formats", "pt2", "--quiet"]) == 0  # what DIR holds
    assert main(["verify", "--all", "--artifacts", str(out), "--formats", "pt2", "--quiet"]) == 3
    assert "manifest.json lists no pt2 float32 artifact for sigmoid" in capsys.readouterr().out


def _console_script() -> str:
    exe = Path(sys.executable).parent / "actexport"
    return str(exe) if exe.exists() else shutil.which("actexport") or pytest.skip("actexport is not installed")


def test_installed_console_script_runs_quietly(tmp_path):
    """The real entry point: exit code, table on stdout, and none of the exporters' noise."""
    env = {**os.environ, "COLUMNS": "200"}
    p = subprocess.run([_console_script(), "verify", "gelu", "--formats", "onnx", "--json", str(tmp_path / "r.json")],
                       capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "3 cells: 3 xfail" in p.stdout and "exit code 0" in p.stdout
    assert p.stderr == "", p.stderr  # no torch.onnx progress, warnings or logging
    assert "torch.onnx" not in p.stdout


def test_bench_writes_json_and_plot(tmp_path, capsys):
    js, png, opt = tmp_path / "b.json", tmp_path / "b.png", tmp_path / "optimised"
    assert main(["bench", "silu", "--formats", "onnx", "--sizes", "1e3", "--json", str(js), "--plot", str(png),
                 "--save-optimized", str(opt)]) == 0
    out = capsys.readouterr().out
    assert "median µs at 1e+03 elements" in out and "geometric mean" in out
    doc = json.loads(js.read_text())
    assert {r["runtime"] for r in doc["rows"]} == {"eager:cpu", "eager.out:cpu", "ort:cpu"}
    assert all(r["size"] == 1000 and r["median_s"] > 0 for r in doc["rows"] if r["status"] == "ok")
    assert "stopping_rule" in doc and doc["floor"][0]["size"] == 1000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert doc["graphs"]["silu"]["optimized"]["op_types"] == {"com.microsoft:QuickGelu": 1}
    assert (opt / "silu.optimized.onnx").is_file()


@pytest.mark.parametrize("argv, message", [
    (["--sizes", "1e3,abc"], "invalid --sizes size 'abc'"),
    (["--sizes", "0"], "invalid --sizes size '0'"),
    (["--sizes", "1.5"], "invalid --sizes size '1.5'"),
    (["--dtype", "float32,float16"], "--dtype takes one dtype"),
    (["--opset", "18,20"], "bench takes one --opset"),
    (["--threads", "0"], "invalid --threads 0"),
    (["--providers", "tpu"], "unknown provider 'tpu'"),
])
def test_bench_bad_usage_is_exit_2(capsys, argv, message):
    assert main(["bench", "relu", *argv]) == 2
    assert message in _one_error_line(capsys)


def test_bench_plot_to_a_missing_directory_is_refused_before_work(tmp_path, capsys):
    assert main(["bench", "relu", "--plot", str(tmp_path / "no" / "b.png")]) == 2
    assert "--plot" in _one_error_line(capsys)


def test_verify_latency_adds_the_bench_figures_to_the_report(tmp_path, capsys):
    js = tmp_path / "r.json"
    assert main(["verify", "relu", "--formats", "onnx", "--latency", "1e3", "--json", str(js)]) == 0
    assert "median µs at 1e+03 elements" in capsys.readouterr().out
    (latency,) = json.loads(js.read_text())["latency"]
    assert {r["runtime"] for r in latency["rows"] if r["status"] == "ok"} == {"eager:cpu", "eager.out:cpu", "ort:cpu"}
    assert all(r["ratio_floor"] > 0 for r in latency["rows"] if r["status"] == "ok")


@pytest.mark.parametrize("argv, message", [
    (["relu7"], "unknown activation 'relu7'"),
    (["relu", "--formats", "tflite"], "unknown format 'tflite'"),
    (["relu", "--opset", "99"], "invalid opset 99"),
    (["relu", "--dtypes", "int8"], "unknown dtype 'int8'"),
    (["relu", "--jobs", "0"], "invalid --jobs 0"),
    (["relu", "--timeout", "0"], "invalid --timeout 0"),
])
def test_export_bad_input_writes_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "models"
    assert main(["export", *argv, "--out", str(out)]) == 2
    assert message in _one_error_line(capsys)
    assert not out.exists()


@pytest.mark.parametrize("how", ["factory", "plugin"])
def test_sys_exit_in_user_code_never_passes_the_gate(tmp_path, monkeypatch, capsys, how):
    if how == "factory":
        argv = ["verify", "--module", "builtins:exit", "--input-shape", "2,3", "--in-process"]
    else:
        (tmp_path / "exits_on_import.py").write_text("import sys\nsys.exit(0)\n")
        monkeypatch.syspath_prepend(str(tmp_path))
        monkeypatch.setenv("ACTEXPORT_PLUGINS", "exits_on_import")
        argv = ["verify", "relu", "--in-process"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    code = "None" if how == "factory" else "0"  # exit() with no argument raises SystemExit(None)
    assert err == [f"actexport: error: a module, factory or plugin called sys.exit({code}); the run stopped there "
                   "and is not a pass"], err


@pytest.mark.parametrize("argv, message", [
    (["verify", "relu", "--timeout", "inf"], "invalid --timeout inf: give seconds in (0, 86400]"),
    (["verify", "relu", "--jobs", "100000"], "invalid --jobs 100000: give a number of worker processes in 1.."),
    (["export", "relu", "--formats", ""], "no format given; valid: onnx, torchscript, pt2"),
    (["verify", "relu", "--dtypes", " , "], "no dtype given; valid:"),
])
def test_values_that_would_run_nothing_or_forever_are_usage_errors(tmp_path, capsys, argv, message):
    assert main([*argv, "--cache-dir", str(tmp_path / "c")] + (["--out", str(tmp_path / "m")] if argv[0] == "export"
                                                               else [])) == 2
    assert message in _one_error_line(capsys)
    assert not (tmp_path / "m").exists(), "nothing is written by a run that was refused"


@pytest.mark.parametrize("content, message", [
    ('{"schema": 1, "artifacts": [{"opset": ' + "9" * 5000 + "}]}", "is not valid JSON (ValueError"),
    ("[" * 100000 + "]" * 100000, "is not valid JSON (RecursionError"),
])
def test_manifests_that_break_the_json_parser_are_one_line(tmp_path, capsys, content, message):
    (tmp_path / "manifest.json").write_text(content)
    assert main(["check", str(tmp_path)]) == 2
    assert message in _one_error_line(capsys)


@pytest.mark.parametrize("plugin, message", [
    ("import no_such_module_anywhere\n", "plugin 'bad_plugin' ($ACTEXPORT_PLUGINS) failed to import: "
                                         "ModuleNotFoundError"),
    ("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n", "the process was killed by SIGSEGV (signal 11)"),
])
def test_a_plugin_that_fails_or_crashes_on_import_is_one_line(tmp_path, monkeypatch, capsys, plugin, message):
    (tmp_path / "bad_plugin.py").write_text(plugin)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))  # the probe imports it in a process of its own
    monkeypatch.setenv("ACTEXPORT_PLUGINS", "bad_plugin")
    assert main(["verify", "relu", "--quiet"]) == 2
    assert message in _one_error_line(capsys)


def test_a_factory_that_never_returns_meets_the_deadline(tmp_path, monkeypatch, capsys):
    (tmp_path / "forever.py").write_text("def factory():\n    while True:\n        pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["verify", "--module", "forever:factory", "--input-shape", "2,3", "--timeout", "2"]) == 2
    assert "did not finish within 2 s (--timeout)" in _one_error_line(capsys)


def test_exports_are_byte_identical_under_any_hash_seed(tmp_path):
    digests = []
    for seed in ("1", "2"):
        out = tmp_path / seed
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run([sys.executable, "-m", "actexport", "export", "prelu_3ch", "softplus_b2_t10", "--no-cache",
                        "--out", str(out)], env=env, check=True, capture_output=True)
        digests.append({p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("model.*"))})
    assert len(digests[0]) == 6 and digests[0] == digests[1]


def test_a_manifest_that_cannot_be_written_is_one_line_and_exit_3(tmp_path, monkeypatch, capsys):
    from actexport import publish

    def full(*_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(publish, "_exchange", full)
    monkeypatch.setattr(publish.os, "rename", full)
    assert main(["export", "relu", "--formats", "torchscript", "--out", str(tmp_path / "m"), "--in-process",
                 "--cache-dir", str(tmp_path / "c")]) == 3
    line = _one_error_line(capsys)
    assert f"cannot write {tmp_path / 'm'}" in line and "No space left on device" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"], "nothing half-written, no staging left"
