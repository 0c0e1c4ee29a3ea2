"""judge.judge without processes: arrays in, a Verdict out."""

from __future__ import annotations

import numpy as np
import pytest

from actexport import catalog
from actexport.exporters.onnx import OnnxExporter
from actexport.inputs import batteries
from actexport.judge import Outputs, Subject, judge

ORT = Subject("onnx", "ort:cpu", "float32", OnnxExporter("dynamo", "stock"))


@pytest.fixture(scope="module")
def sigmoid():
    act = catalog.get("sigmoid")
    inputs = batteries(act, "float32")
    exact = [act.oracle(b.x).astype(np.float32) for b in inputs]
    return act, inputs, exact


def _nudged(inputs, exact, where, by: float) -> list[np.ndarray]:
    """The exact values, moved by `by` (absolute) where where(x) holds."""
    out = []
    for b, e in zip(inputs, exact):
        v = e.copy()
        with np.errstate(invalid="ignore"):
            hit = where(b.x) & np.isfinite(e)
        v[hit] = (e[hit].astype(np.float64) + by).astype(np.float32)
        out.append(v)
    return out


def test_exact_values_pass_and_name_no_side(sigmoid):
    act, inputs, exact = sigmoid
    v = judge(act, Subject("onnx", "torchscript:cpu", "float32"), inputs, exact, exact)
    assert v.status == "pass" and v.ok and v.deviates == "" and v.vs_exact.max_ulp == 0


def test_a_declared_cell_that_no_longer_deviates_is_an_xpass(sigmoid):
    act, inputs, exact = sigmoid  # sigmoid on ort:cpu float32 is declared in [-88, -1.8]
    v = judge(act, ORT, inputs, exact, exact)
    assert v.status == "xpass" and "remove the xfail" in v.reason


def test_a_deviation_inside_the_declared_region_is_xfail_and_outside_it_fails(sigmoid):
    act, inputs, exact = sigmoid
    inside = _nudged(inputs, exact, lambda x: (x > -20) & (x < -10), 1e-7)  # declared: abs <= 2e-7 there
    v = judge(act, ORT, inputs, exact, inside)
    assert v.status == "xfail" and not v.ok, v.reason
    outside = _nudged(inputs, exact, lambda x: (x > 1) & (x < 2), 1e-5)
    v = judge(act, ORT, inputs, exact, outside)
    assert v.status == "fail" and "beyond the declared deviation" in v.reason, v.reason
    too_big = _nudged(inputs, exact, lambda x: (x > -20) & (x < -10), 1e-3)  # in the region, past its size
    assert judge(act, ORT, inputs, exact, too_big).status == "fail"


def test_the_side_at_fault_comes_from_pytorch_and_the_specification(sigmoid):
    act, inputs, exact = sigmoid
    wrong = _nudged(inputs, exact, lambda x: (x > 1) & (x < 2), 1e-5)
    subject = Subject("onnx", "toy:cpu", "float32", OnnxExporter("dynamo", "stock"))
    good, bad = Outputs(exact, True), Outputs(wrong, False)
    assert judge(act, subject, inputs, exact, wrong, torch_ref=good, spec=good).deviates == "runtime"
    assert judge(act, subject, inputs, exact, wrong, torch_ref=good, spec=bad).deviates == "export"
    assert judge(act, subject, inputs, exact, wrong, torch_ref=bad).deviates == "pytorch"  # agrees with torch
    assert judge(act, subject, inputs, exact, exact, torch_ref=bad).deviates == "pytorch"  # right where torch is not
    v = judge(act, subject, inputs, exact, wrong, torch_ref=good)
    assert v.status == "fail" and "ULP from eager PyTorch" in v.reason and v.worst_torch is not None
