"""actexport.testing written as a user would write it in their own test file."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from actexport.testing import ExportMismatch, assert_exports


class Classifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 4))

    def forward(self, features: torch.Tensor, scale: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self.body(features) * scale
        return {"logits": logits, "probs": logits.softmax(-1)}


def test_my_classifier_exports():
    torch.manual_seed(0)
    report = assert_exports(Classifier().eval(), (torch.randn(4, 16), torch.ones(4, 1)), formats=("onnx", "pt2"))
    assert {c.runtime for c in report.cells} == {"eager:cpu", "ort:cpu", "pt2:cpu"}
    assert all(c.status == "pass" for c in report.cells)


def test_the_fixture_keeps_the_report(actexport_exports, tmp_path):
    actexport_exports(nn.Sequential(nn.Linear(8, 8), nn.Tanh()), torch.randn(2, 8), formats=("torchscript",))
    (written,) = tmp_path.glob("actexport-*.json")
    assert {c["runtime"] for c in json.loads(written.read_text())["cells"]} == {"eager:cpu", "torchscript:cpu"}


def test_a_module_that_exports_wrong_fails_with_the_command_lines_report():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(8, 16), nn.LogSigmoid(), nn.Linear(16, 4))
    with pytest.raises(ExportMismatch) as failure:
        assert_exports(model, torch.randn(4, 8), formats=("onnx",))
    message = str(failure.value)
    assert "ort:cpu / float32: fail" in message and "starts at layer 1 (LogSigmoid, catalog logsigmoid" in message
    assert "exit code 1" in message  # the summary line the command line ends with


def test_bad_arguments_say_what_is_valid():
    with pytest.raises(ValueError, match="valid: onnx, torchscript, pt2"):
        assert_exports(nn.ReLU(), torch.randn(2, 2), formats=("tflite",))
