"""Your own modules with --input-shape (one float input): --module package.module:factory. Models of
several inputs and outputs, the criterion and the layer at fault: test_model.py."""

from __future__ import annotations

import json

import pytest

from actexport import catalog
from actexport.cli import main
from actexport.modules import EagerFloat64, activation, parse_shape

MLP = ["--module", "actexport.examples:mlp", "--input-shape", "4,32"]


def test_the_example_mlp_verifies_in_every_format(tmp_path, capsys):
    js = tmp_path / "r.json"
    assert main(["verify", *MLP, "--quiet", "--json", str(js)]) == 0
    cells = json.loads(js.read_text())["cells"]
    # onnx.reference is a second vote on failing onnxruntime cells only (model/verify.py): no cell here
    assert {(c["runtime"], c["status"]) for c in cells} == {
        (rt, "pass") for rt in ("eager:cpu", "ort:cpu", "torchscript:cpu", "pt2:cpu")}
    # measured: within 4 ULP at the output's scale of the float64 reference; the budget is 16 at least
    assert max(c["max_ulp"] for c in cells) <= 8
    assert [o["name"] for o in cells[0]["outputs"]] == ["output"]
    assert "actexport.examples.mlp" not in {a.id for a in catalog.CATALOG}  # registered for the run only


def test_export_then_verify_the_deployed_module(tmp_path, capsys):
    out = tmp_path / "models"
    assert main(["export", *MLP, "--out", str(out)]) == 0
    doc = json.loads((out / "manifest.json").read_text())
    assert {e["id"] for e in doc["artifacts"]} == {"actexport.examples.mlp"} and len(doc["artifacts"]) == 3
    assert main(["verify", "--artifacts", str(out), *MLP, "--quiet"]) == 0
    assert main(["verify", "--artifacts", str(out), "--quiet"]) == 2  # which code to import is never guessed
    assert "pass the same --module and --input-shape" in capsys.readouterr().err


def test_the_reference_rounds_parameters_to_the_dtype_under_test():
    import numpy as np

    x = np.linspace(-3, 3, 4 * 32).reshape(4, 32)
    ref = EagerFloat64("actexport.examples:mlp")
    assert ref(x.astype(np.float64)).dtype == np.float64
    assert not np.array_equal(ref(x.astype(np.float16)), ref(x.astype(np.float64)))  # fp16 weights differ


@pytest.mark.parametrize("argv, message", [
    (["--module", "no_such_package_xyz:f", "--input-shape", "4,32"], "cannot import 'no_such_package_xyz'"),
    (["--module", "actexport.examples:nope", "--input-shape", "4,32"], "has no attribute 'nope'"),
    (["--module", "actexport.examples", "--input-shape", "4,32"], "give package.module:factory"),
    (["--module", "sample_models:NOT_CALLABLE", "--input-shape", "4"], "is not callable"),
    (["--module", "sample_models:not_a_module", "--input-shape", "4"], "returned int, not a torch.nn.Module"),
    (["--module", "sample_models:raises", "--input-shape", "4"], "the factory raised RuntimeError: boom"),
    (["--module", "actexport.examples:mlp"], "needs --inputs PKG.MOD:FN"),
    (["--module", "actexport.examples:mlp", "--input-shape", "4,32", "--inputs", "actexport.examples:image_inputs"],
     "not both"),
    (["--module", "actexport.examples:mlp", "--inputs", "sample_models:not_a_module"], "returned int"),
    (["--module", "actexport.examples:mlp", "--inputs", "sample_models:raises"], "the function raised RuntimeError"),
    (["--module", "actexport.examples:mlp", "--input-shape", "4,32", "--ulp", "3"], "--ulp applies to bench"),
    (["--module", "actexport.examples:mlp", "--input-shape", "4,32", "--input-range", "1,0"], "LO < HI"),
    (["--module", "actexport.examples:mlp", "--input-shape", "0,32"], "each 1..1048576"),
    (["--module", "actexport.examples:mlp", "--input-shape", "100000,100000"], "10000000000 elements"),
    (["--module", "actexport.examples:mlp", "--input-shape", "a,b"], "give sizes"),
    (["--module", "actexport.examples:mlp", "--input-shape", "4,32", "--dynamic-dims", "5"], "dims of a 2-d input"),
    (["relu", "--module", "actexport.examples:mlp", "--input-shape", "4,32"], "not both"),
    (["relu", "--input-shape", "4,32"], "--input-shape applies to --module only"),
    (["relu", "--inputs", "actexport.examples:image_inputs"], "--inputs applies to --module only"),
])
def test_bad_module_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "models"
    assert main(["export", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not out.exists()


def test_shape_parsing():
    assert parse_shape("4,32", "0") == ((4, 32), (1,))
    assert parse_shape("2,3,8", "0,2") == ((2, 3, 8), (1,))
    assert activation("actexport.examples:mlp", (4, 32), (1,)).budget("float32").ulp == 64


def test_check_a_directory_of_a_user_module(tmp_path, capsys):
    out = tmp_path / "models"
    assert main(["export", *MLP, "--out", str(out)]) == 0
    assert main(["check", str(out), *MLP, "--quiet"]) == 0
    assert main(["check", str(out), "--quiet"]) == 2


def _user_module(tmp_path, monkeypatch, source: str, name: str = "user_net"):
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


NET = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.l = nn.Linear(4, 4)

    def forward(self, x):
        return torch.{fn}(self.l(x))
"""


def test_the_cache_key_follows_a_user_modules_source(tmp_path, monkeypatch):
    import importlib

    from actexport import cache as ec

    name = _user_module(tmp_path, monkeypatch, NET.replace("{fn}", "relu"))
    before = ec.key(activation(f"{name}:Net", (2, 4), (1,)), "onnx", "float32", 18, "dynamo")
    (tmp_path / f"{name}.py").write_text(NET.replace("{fn}", "tanh"))  # same class, repr and weights
    importlib.invalidate_caches()
    importlib.reload(importlib.import_module(name))
    after = ec.key(activation(f"{name}:Net", (2, 4), (1,)), "onnx", "float32", 18, "dynamo")
    assert before != after


def test_a_factory_that_builds_different_weights_is_refused(tmp_path, monkeypatch, capsys):
    name = _user_module(tmp_path, monkeypatch, "from torch import nn\n\ndef make():\n    return nn.Linear(4, 4)\n",
                        "unseeded_net")
    assert main(["verify", "--module", f"{name}:make", "--input-shape", "2,4"]) == 2
    assert "builds different weights each call; seed it" in capsys.readouterr().err


def test_an_input_shape_the_module_cannot_take_is_exit_2(capsys):
    assert main(["verify", "--module", "actexport.examples:mlp", "--input-shape", "4,31"]) == 2
    assert "does not run on an input of shape input float32[4, 31]" in capsys.readouterr().err
    assert main(["verify", "--module", "actexport.examples:mlp", "--input-shape", "4,32", "--dynamic-dims", "1"]) == 2
    assert "does not run on an input of shape input [4, 64]" in capsys.readouterr().err
