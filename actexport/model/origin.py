"""Where a model's deviation starts: the layer at fault, and what the catalog knows about it.

The float64 reference runs once with a hook on every leaf module, recording what each call received
and returned. Each leaf is then exported alone, in the same format, exporter and dtype, and run in
the same runtime *on the reference's own inputs to it* (rounded to the dtype): its error there is
its own, not one it inherited. The first leaf over budget (judged as the model's outputs are, at
its output's scale, against eager PyTorch's error on the same leaf) is the origin; a deviation no
leaf shows alone is the composition's (propagation and accumulation), and is reported as such.

Leaves that are catalog activations are tried first, in execution order (they are where exports
are known to deviate); then the others, up to MAX_LEAVES calls.
"""

from __future__ import annotations

import copy
import tempfile
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from actexport.dtypes import to_numpy
from actexport.exporters.onnx import OnnxExporter
from actexport.model import criterion
from actexport.model.spec import Input, Model

MAX_LEAVES = 64  # leaf calls tried alone; each is an export and a load
MAX_SECONDS = 60.0


@dataclass(frozen=True)
class Call:
    path: str
    module: nn.Module  # the float64 reference's leaf
    inputs: tuple[torch.Tensor, ...]
    output: torch.Tensor


def leaf_calls(reference: nn.Module, model: Model, tensors: list[torch.Tensor]) -> list[Call]:
    """Every call of a leaf module whose arguments are tensors and whose result is one tensor."""
    calls: list[Call] = []
    handles = []
    for path, m in reference.named_modules():
        if path and not any(True for _ in m.children()):
            def hook(mod, args, kwargs, out, path=path):
                if (not kwargs and args and all(isinstance(a, torch.Tensor) for a in args)
                        and isinstance(out, torch.Tensor)):
                    calls.append(Call(path, mod, tuple(a.detach().clone() for a in args), out.detach().clone()))
            handles.append(m.register_forward_hook(hook, with_kwargs=True))
    try:
        with torch.no_grad():
            model.call(reference, tensors)
    finally:
        for h in handles:
            h.remove()
    return calls


def catalog_row(module: nn.Module):
    """The catalog activation this leaf is (the row with the same constructor arguments, else the
    first of its class), or None."""
    rows = _rows_by_class().get(type(module), [])
    same = [a for repr_, a in rows if repr_ == repr(module)]
    return next(iter(same or [a for _, a in rows]), None)


@lru_cache(maxsize=1)
def _rows_by_class() -> dict[type, list]:
    """Catalog rows by module class, with their modules' reprs: built once, not per leaf call."""
    from actexport import catalog
    out: dict[type, list] = {}
    for a in catalog.CATALOG:
        module = a.module()
        out.setdefault(type(module), []).append((repr(module), a))
    return out


def _leaf_model(call: Call, dtype: str, float_module: nn.Module) -> Model:
    leaf = copy.deepcopy(float_module)
    inputs = tuple(Input(f"input{n}", False, str(t.dtype).removeprefix("torch."), tuple(t.shape), (), 0.0, 0.0, 0.0, 0.0)
                   for n, t in enumerate(call.inputs))
    example = tuple(t.to(getattr(torch, dtype)) if t.is_floating_point() else t for t in call.inputs)
    return Model(call.path or "module", "", None, inputs, example, ("output",), builder=lambda: copy.deepcopy(leaf))


def find(model: Model, fmt: str, runtime_factory, dtype: str, tensors: list[torch.Tensor], opset: int | None,
         exporter: str, runtime_name: str) -> dict:
    """The origin record of a cell that deviates (see the module's docstring)."""
    from actexport.formats import format_of
    from actexport.model import run
    from actexport.model.export import export

    start = time.perf_counter()
    reference = model.build(dtype).to(torch.float64)
    calls = leaf_calls(reference, model, [t.to(torch.float64) if t.is_floating_point() else t for t in tensors])
    in_dtype = dict(model.build(dtype).named_modules())
    known = [catalog_row(c.module) is not None for c in calls]
    ordered = [c for c, k in zip(calls, known) if k] + [c for c, k in zip(calls, known) if not k]
    tried, alone = 0, 0  # leaf calls tried, and of those, the ones that exported and ran alone
    with tempfile.TemporaryDirectory(prefix="actexport-origin-") as tmp:
        for n, call in enumerate(ordered[:MAX_LEAVES]):
            if time.perf_counter() - start > MAX_SECONDS:
                break
            tried += 1
            leaf = _leaf_model(call, dtype, in_dtype[call.path])
            result = export(leaf, fmt, dtype, Path(tmp) / f"leaf{n}-{format_of(fmt).filename}", opset, exporter)
            if not result.ok:
                continue
            rt = runtime_factory()
            try:
                rt.load(result.path)
                got = run.outputs(leaf, rt, leaf.example)[0]
            except Exception:  # noqa: BLE001  (a leaf that does not run alone says nothing about the origin)
                continue
            finally:
                rt.close()
            alone += 1
            with torch.no_grad():
                eager = to_numpy(leaf.build(dtype)(*leaf.example))
            ref = call.output.numpy()
            local = criterion.figures("output", dtype, ["local"], [got], [ref], [eager])
            if not local.ok and not local.vacuous:
                record = _record(call, local, fmt, runtime_name, dtype, result.onnx, tried)
                if result.details.get("op_types"):  # the layer as the exported graph has it
                    record["graph_ops"] = result.details["op_types"]
                return record
    skipped = tried - alone
    untried = len(ordered) - tried
    return {"module_path": None, "op": None, "catalog": None, "local_max_ulp": None, "tried": tried,
            "note": f"none of the {alone} leaf calls run alone deviates on its reference inputs: the deviation "
                    "builds up across layers (propagation and accumulation), it has no single origin"
                    + (f"; {skipped} did not export or run alone" if skipped else "")
                    + (f"; {untried} not tried (limits: {MAX_LEAVES} calls, {MAX_SECONDS:g} s)" if untried else "")}


def _record(call: Call, local: criterion.OutputFigures, fmt: str, runtime_name: str, dtype: str,
            onnx: OnnxExporter | None, tried: int) -> dict:
    row = catalog_row(call.module)
    record = {"module_path": call.path, "op": type(call.module).__name__, "catalog": row.id if row else None,
              "local_max_ulp": round(local.ulp_at_scale, 3) if np.isfinite(local.ulp_at_scale) else None,
              "local_budget_ulp": round(local.budget_ulp, 3), "local_nonfinite": local.nonfinite, "tried": tried}
    if row is not None:
        from actexport.judge import Subject, declaration
        declared = declaration(row, Subject(fmt, runtime_name, dtype, onnx))
        if declared is not None:
            record["declaration"] = declared.reason
        record["formula"] = row.formula
        record["avoid"] = avoidances(row, fmt, runtime_name, dtype)
    return record


def avoidances(row, fmt: str, runtime_name: str, dtype: str) -> list[str]:
    """Settings under which the catalog declares no deviation for this activation in this runtime."""
    from actexport.catalog import UsageError
    from actexport.exporters.onnx import EXPORTERS
    from actexport.judge import Subject, declaration
    from actexport.translations import PROFILES

    out = []
    if fmt == "onnx":
        for base in EXPORTERS:
            for graphs in PROFILES:
                try:
                    exporter = OnnxExporter.of(base, graphs)
                except UsageError:  # a combination torch.onnx does not offer
                    continue
                if declaration(row, Subject(fmt, runtime_name, dtype, exporter)) is None:
                    out.append(f"--exporter {base} --graphs {graphs}")
    for other in ("torchscript", "pt2"):
        if other != fmt and declaration(row, Subject(other, f"{other}:cpu", dtype)) is None:
            out.append(f"the {other} format")
    return out
