"""The verdict on one cell: its outputs against the exact reference, the side at fault, the
declaration that applies. Pure: arrays in, a Verdict out; no processes, no report.

A cell passes when every element is within the activation's budget of the exact value (rounded
once to the dtype). Otherwise it is xfail only if the activation declares the deviation for this
cell and nothing is left over budget once the declared region is set aside; anything beyond the
declaration fails the cell, and a declaration that no longer deviates is an xpass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from actexport.compare import Comparison, badness, classify, compare, merge, semantics
from actexport.report import Status

if TYPE_CHECKING:
    from actexport.catalog import Activation, Declared, XFail
    from actexport.exporters.onnx import OnnxExporter
    from actexport.inputs import Battery


@dataclass(frozen=True)
class Outputs:
    """One runtime's outputs on every battery, and whether they are within budget of exact."""

    values: list[np.ndarray]
    ok: bool


@dataclass(frozen=True)
class Subject:
    """What is judged: the cell's coordinates, as the declarations scope them."""

    format: str  # "eager" for PyTorch itself
    runtime: str | None  # None: no runtime (an export)
    dtype: str
    onnx: OnnxExporter | None = None  # what made an ONNX artifact (ExportResult.onnx)
    specification: bool = False  # the runtime is the format's specification (onnx.reference)


@dataclass(frozen=True)
class Verdict:
    status: Status
    reason: str
    ok: bool  # within budget of exact on every element
    vs_exact: Comparison  # over every battery
    worst_battery: str
    special: list[str] = field(default_factory=list)  # special-value semantics that differ from exact
    vs_torch: Comparison | None = None
    worst_torch: float | None = None  # eager PyTorch at the worst input
    worst_spec: float | None = None  # the specification at the worst input
    deviates: str = ""  # the side that deviates from exact: pytorch, export, runtime, both


def declaration(act: Activation, subject: Subject, no_artifact: bool = False) -> XFail | Declared | None:
    """The declarations of `act` that apply to the cell: of a missing artifact when `no_artifact`,
    else every numerical one (together: each excuses its own region)."""
    exporter = graphs = None
    if subject.format == "onnx":
        from actexport.exporters.onnx import OnnxExporter
        # NOTE: an artifact whose exporter is not recorded (a manifest that lists none) reads as
        # torch.onnx's stock dynamo graphs
        made_by = subject.onnx or OnnxExporter("dynamo", "stock")
        exporter, graphs = made_by.base, made_by.graphs
    # NOTE: runtime None (an export) matches only the declarations that name no runtime
    return act.xfail(subject.format, subject.runtime, subject.dtype, exporter, no_artifact=no_artifact, graphs=graphs)


def judge(act: Activation, subject: Subject, inputs: list[Battery], exact: list[np.ndarray],
          values: list[np.ndarray], torch_ref: Outputs | None = None, spec: Outputs | None = None) -> Verdict:
    """The verdict on `values` (one array per battery of `inputs`), against `exact`.

    torch_ref: eager PyTorch's outputs on the same inputs (None for eager PyTorch itself).
    spec: the format specification's outputs on the same artifact (None where there is none).
    """
    budget = act.budget(subject.dtype)
    parts = [compare(v, e, b.x, budget) for v, e, b in zip(values, exact, inputs)]
    c = merge(parts)
    k = parts.index(max(parts, key=badness))
    edges = next(i for i, b in enumerate(inputs) if b.name == "edges")
    special = semantics(inputs[edges].x, values[edges], exact[edges])

    vs_torch = worst_torch = worst_spec = None
    if torch_ref is not None:
        vs_torch = merge([compare(v, t, b.x, budget) for v, t, b in zip(values, torch_ref.values, inputs)])
        if c.worst_index is not None:
            worst_torch = float(torch_ref.values[k].astype(np.float64).reshape(-1)[c.worst_index])
    if spec is not None and c.worst_index is not None:
        worst_spec = float(spec.values[k].astype(np.float64).reshape(-1)[c.worst_index])
    deviates = side(subject, c.ok, torch_ref, vs_torch.ok if vs_torch is not None else None, spec)

    detail = f"vs exact ({inputs[k].name} inputs): {c.describe()}"
    if deviates:
        detail += f"; deviating side: {deviates}"
    if vs_torch is not None and not vs_torch.ok:
        detail += f"; {vs_torch.max_ulp} ULP from eager PyTorch"
    xfail = declaration(act, subject)
    status, reason = _status(act, budget, inputs, exact, values, c, xfail, detail, deviates)
    return Verdict(status, reason, c.ok, c, inputs[k].name, special, vs_torch, worst_torch, worst_spec, deviates)


def _status(act, budget, inputs, exact, values, c: Comparison, xfail, detail: str, deviates: str) -> tuple[Status, str]:
    if c.ok:
        if xfail:
            return Status.XPASS, f"declared deviation no longer happens ({xfail.reason}); remove the xfail"
        return Status.PASS, detail if (c.signed_zero_mismatch or deviates) else ""
    rest = beyond(act, budget, inputs, exact, values, xfail) if xfail else c
    if rest.ok:
        return Status.XFAIL, f"{xfail.reason} [{detail}]"
    if xfail:
        detail += (f"; beyond the declared deviation ({xfail.bounds()}): {rest.describe()}; "
                   f"declared: {xfail.reason}")
    return Status.FAIL, detail


def beyond(act: Activation, budget, inputs: list[Battery], exact: list[np.ndarray], values: list[np.ndarray],
           xfail) -> Comparison:
    """What is left over budget once the declaration's excused elements are set aside."""
    parts = []
    for v, e, b in zip(values, exact, inputs):
        el = classify(v, e, budget)
        # NOTE: located in the declarations' terms (x - max for softmax rows, GLU's gate b)
        xr = act.region_x(b.x)
        excused = xfail.excuses(xr, el.over, el.nan_bad | el.inf_bad, el.ulp, el.abs_err)
        parts.append(compare(v, e, xr, budget, only=~excused, elements=el))
    return merge(parts)


def side(subject: Subject, ok: bool, torch_ref: Outputs | None, agrees_with_torch: bool | None,
         spec: Outputs | None) -> str:
    """Which side deviates from the exact result: pytorch, export, runtime or both ("" if none)."""
    if subject.format == "eager":
        return "" if ok else "pytorch"
    torch_ok = torch_ref.ok if torch_ref is not None else True
    if ok:
        return "" if torch_ok else "pytorch"  # the artifact is right where PyTorch is not
    if not torch_ok:
        return "pytorch" if agrees_with_torch else "both"
    if spec is not None and not subject.specification:  # the format's specification ran the same artifact
        return "runtime" if spec.ok else "export"
    return "export"
